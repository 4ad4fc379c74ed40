"""Delta sync over 100,000 unchanged + 100 changed objects (local disk → local disk):
a full listing against --path-template.  Prints time, list requests and peak RSS of each
pass (each in its own process), and the ratios.

    .venv/bin/python bench/sync_scale.py [--objects 100000] [--changed 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import lakeshift
from lakeshift.engine import jobrunner
counts = {"list": 0}
real = jobrunner.open_store
class Counting:
    def __init__(self, s): self._s = s
    def __getattr__(self, n): return getattr(self._s, n)
    async def list_page(self, *a, **k):
        counts["list"] += 1
        return await self._s.list_page(*a, **k)
jobrunner.open_store = lambda cfg: Counting(real(cfg))
args = json.loads(sys.argv[1])
t = time.monotonic()
r = lakeshift.sync(**args)
print(json.dumps({"s": time.monotonic() - t, "lists": counts["list"],
                  "copied": r.run.stats.copied, "exit": r.exit_code,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def child(args: dict[str, object]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=100_000)
    ap.add_argument("--changed", type=int, default=100)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / "src"
        now = datetime.now(UTC)
        old = now - timedelta(days=30)
        hours = 24 * 28
        per_hour = -(-a.objects // hours)
        n = 0
        for h in range(hours):
            t = old - timedelta(hours=h)
            d = src / f"logs/{t:%Y/%m/%d/%H}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_hour):
                if n >= a.objects:
                    break
                p = d / f"f{i:04d}"
                p.write_bytes(b"x" * 64)
                os.utime(p, (old.timestamp(), old.timestamp()))
                n += 1
        results = {}
        for name, extra in (("full listing", {}),
                            ("path template", {"path_template": "logs/{yyyy}/{MM}/{dd}/{HH}/"})):
            db = f"sqlite:///{root}/{name.replace(' ', '_')}.db"
            dst = root / f"dst-{name.replace(' ', '_')}"
            child({"source": str(src), "destination": str(dst), "job": "b", "db": db,
                   "lag": "0"})
            hour = datetime.now(UTC) - timedelta(minutes=1)
            d = src / f"logs/{hour:%Y/%m/%d/%H}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(a.changed):
                (d / f"new-{name[0]}-{i}").write_bytes(b"y" * 64)
            time.sleep(1.1)
            results[name] = r = child({"job": "b", "db": db, "lag": "0", **extra})
            print(f"{name:>14}: {r['s']:.2f} s, {r['lists']} list requests, "
                  f"{r['copied']} copied, peak RSS {r['rss_mb']:.0f} MB", flush=True)
        f, t = results["full listing"], results["path template"]
        print(f"ratio full/template: time {f['s'] / t['s']:.1f}x, "
              f"list requests {f['lists'] / max(t['lists'], 1):.0f}x, "
              f"RSS {f['rss_mb'] / t['rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
