"""Planning at scale on Dask (issue 14): ``plan --partition-by auto`` keys/s listed in this
process, and by a LocalCluster of 1 and 2 worker processes (scale/planner.py).

    .venv/bin/python bench/plan_dask.py [--objects 200000] [--flat 20000] [--target 10000]
                                        [--split-at 10000] [--workers 1,2]

The source is a local-disk tree (the workers of a LocalCluster see the same disk): folders
of 1,000 objects, and ``--flat`` objects directly in one folder whose names share a long
prefix (``flat/2024-06-01T00:00:…``), which the planner splits by its keys' next
characters.  (The local store reads a whole directory for each page of it, so a big flat
directory costs it O(n²): the flat part is kept modest.)  Each way plans the same source;
the partitions must come out the same.  The cluster's start is timed apart.  Everything
shares this machine's cores: the ratios show what the fleet machinery costs and gains on
one machine, not what N machines do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from lakeshift.plan.jobplan import plan_sources  # noqa: E402
from lakeshift.plan.partitioner import auto_partitions  # noqa: E402
from lakeshift.scale.cluster import ClusterSpec, open_fleet  # noqa: E402
from lakeshift.scale.planner import auto_partitions_on_dask  # noqa: E402
from lakeshift.stores.base import StoreOptions  # noqa: E402


def make_tree(root: Path, objects: int, flat_count: int) -> None:
    for n in range(objects - flat_count):
        folder = root / f"d{n // 1000:04d}"
        if n % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"obj{n % 1000:03d}.bin").touch()
    flat = root / "flat"
    flat.mkdir(parents=True)
    for i in range(flat_count):
        (flat / f"2024-06-01T00:00:{i * 7919 % 1_000_003:07d}.bin").touch()


def plan(src: str, target: int, split_at: int, auto: object) -> tuple[list[object], float]:
    t0 = time.monotonic()
    specs = asyncio.run(plan_sources([src], "/tmp/unused-dest/", StoreOptions(), (), "auto",
                                     target, auto=auto))  # type: ignore[arg-type]
    return list(specs), time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=200_000)
    ap.add_argument("--target", type=int, default=10_000)
    ap.add_argument("--flat", type=int, default=20_000)
    ap.add_argument("--split-at", type=int, default=10_000)
    ap.add_argument("--workers", default="1,2")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lakeshift-plan-dask-"))
    try:
        t0 = time.monotonic()
        make_tree(tmp / "src", args.objects, args.flat)
        os.sync()
        print(f"cores: {os.cpu_count()}; {args.objects:,} objects ({args.flat:,} flat) made "
              f"in {time.monotonic() - t0:.1f} s; target {args.target:,}, split at "
              f"{args.split_at:,}", flush=True)
        src = str(tmp / "src") + "/"

        async def here(store, cfg, planned, target, events):  # type: ignore[no-untyped-def]
            return await auto_partitions(store, planned, target, events=events,
                                         split_at=args.split_at)

        base, took = plan(src, args.target, args.split_at, here)
        print(f"one process: {args.objects / took:9,.0f} keys/s ({took:.1f} s, "
              f"{len(base)} partitions); x1.00", flush=True)
        for n in (int(w) for w in args.workers.split(",")):
            t1 = time.monotonic()
            fleet = open_fleet(ClusterSpec(local_workers=n))
            start = time.monotonic() - t1
            try:
                async def on_dask(store, cfg, planned, target, events):  # type: ignore[no-untyped-def]
                    return await auto_partitions_on_dask(fleet, cfg, planned, target,  # noqa: B023
                                                         events, args.split_at, store)

                specs, t = plan(src, args.target, args.split_at, on_dask)
            finally:
                fleet.close()
            assert specs == base, "the Dask plan differs from the in-process one"
            print(f"workers {n}:   {args.objects / t:9,.0f} keys/s ({t:.1f} s, cluster start "
                  f"{start:.1f} s); x{took / t:.2f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
