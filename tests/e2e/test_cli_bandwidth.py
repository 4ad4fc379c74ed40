"""`--max-bandwidth` as a user sees it: the cap holds from the first byte.

The bucket used to start full with a second's worth of bytes, so a 2 MiB/s cap moved about
3 s worth (6 MiB) in its first 2.1 s.  Here the destination folder is watched while `copy`
runs, and every window of a second or more between two looks must hold at most the cap's
worth plus 15 %, plus one object (a request is let through whole).  Upper bounds only: a
slow machine moves less, never more."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.e2e.cli import BIN

KiB = 1024
MiB = 1024 * KiB


def _moved(dst: Path) -> int:
    """Bytes of the files whole at the destination (a file appears by rename, whole)."""
    try:
        return sum(e.stat().st_size for e in os.scandir(dst)
                   if e.name.endswith(".bin") and e.is_file())
    except FileNotFoundError:
        return 0


def test_the_bandwidth_cap_holds_over_every_second_from_the_first_byte(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    size, files, cap = 128 * KiB, 24, 1 * MiB  # 3 MiB at 1 MiB/s: about 3 s
    for i in range(files):
        (src / f"f{i:02}.bin").write_bytes(os.urandom(size))
    # (start of a look, end of it, bytes seen): what was there at the start of a look is at
    # most what it saw, what was there at its end at least.
    looks: list[tuple[float, float, int]] = [(time.monotonic(), time.monotonic(), 0)]
    proc = subprocess.Popen([str(BIN), "copy", str(src), str(dst), "--max-bandwidth", "1MiB",
                             "--progress", "none"], env=local_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None:
            start = time.monotonic()
            seen = _moved(dst)
            looks.append((start, time.monotonic(), seen))
            time.sleep(0.02)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out + err
    end = time.monotonic()
    looks.append((end, end, _moved(dst)))
    assert looks[-1][2] == size * files
    worst = max(((later - earlier) / (cap * (t1 - s0)), later - earlier, t1 - s0)
                for s0, _, earlier in looks for _, t1, later in looks if t1 - s0 >= 1.0)
    over = [(b, round(w, 2)) for s0, _, earlier in looks for _, t1, later in looks
            if (w := t1 - s0) >= 1.0 and (b := later - earlier) > 1.15 * cap * w + size]
    assert not over, (f"more than the cap (+15 %, + one object) in {len(over)} windows, "
                      f"e.g. {over[:3]} (bytes, seconds); worst ratio {worst}")
