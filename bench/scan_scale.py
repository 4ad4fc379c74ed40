"""`lakeshift scan` of 100,000 and 1,000,000 keys on local disk: keys per second and peak RSS.

  python bench/scan_scale.py [--dir DIR] [--keep]

Local disk, not moto: moto answers ~230 requests/s on one core here, so putting 1,000,000
objects into it would take over an hour; a local tree of 1,000,000 empty files takes a
minute or two to make, and the scan walks it through the same listing path as every store
(engine/listing.py: pages of 1,000, the source root resolved as copy resolves it).  One file
in 1,000 has a name the destination rejects (a trailing dot), so the findings path runs too.
Each size is scanned in a fresh process under /usr/bin/time (peak RSS); memory must not grow
with the number of keys.  The tree is made under DIR (default: a temporary folder) and
removed at the end unless --keep.

Measured here (2 cores shared with five other helpers' test runs, load average ~8):
100,000 keys 57,546 keys/s, peak RSS 29 MB; 1,000,000 keys 11,738 keys/s, peak RSS 31 MB.
Memory stays flat; the slower rate at 1M is the walk's stat/getxattr on a tree whose 1M
inodes were not all in the cache (the cause was not isolated further).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
SIZES = (100_000, 1_000_000)
PER_FOLDER = 1000


def make_tree(root: Path, n: int) -> None:
    """``n`` empty files in folders of 1,000 (made once; a rerun with --dir reuses it)."""
    done = root.with_suffix(".made")  # beside the tree, not in it
    if done.exists() and int(done.read_text()) == n:
        return
    for d in range(n // PER_FOLDER):
        folder = root / f"d{d:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(PER_FOLDER):
            name = f"obj{d * PER_FOLDER + i:07d}" + ("." if i == 0 else ".bin")
            os.close(os.open(folder / name, os.O_CREAT | os.O_WRONLY, 0o644))
    done.write_text(str(n))


def child(root: str) -> None:
    import lakeshift

    t0 = time.monotonic()
    r = lakeshift.scan(root + "/")
    took = time.monotonic() - t0
    bad = r.finding("invalid-name")
    print(f"{r.objects:>9,} keys scanned in {took:.1f} s ({r.objects / took:,.0f} keys/s); "
          f"{r.listing_requests:,} listing pages; {len(r.by_prefix)} top-level prefixes "
          f"kept; {bad.objects if bad else 0:,} invalid names", flush=True)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
        return 0
    base = Path(sys.argv[sys.argv.index("--dir") + 1]) if "--dir" in sys.argv else \
        Path(tempfile.mkdtemp(prefix="lakeshift-scan-bench-"))
    try:
        for n in SIZES:
            root = base / f"k{n}"
            t0 = time.monotonic()
            make_tree(root, n)
            print(f"{n:>9,} files ready in {time.monotonic() - t0:.0f} s", flush=True)
            stats = Path(tempfile.mkstemp()[1])
            subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", str(stats), sys.executable,
                            __file__, "--child", str(root)], check=True)
            rss_kb, wall = stats.read_text().split()[-2:]
            stats.unlink()
            print(f"{'':>9}  peak RSS {int(rss_kb) / 1024:.0f} MB, wall {wall} s (process "
                  "start and imports included)", flush=True)
    finally:
        if "--keep" not in sys.argv:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
