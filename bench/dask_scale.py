"""Scale-out on Dask (issue 14): throughput with 1, 2 and 4 worker processes, each worker's
peak RSS, and claim statements per second on PostgreSQL with 8 concurrent claimers.

    .venv/bin/python bench/dask_scale.py [--objects 2000] [--size 16384] [--workers 1,2,4]
                                         [--partitions 100000] [--claimers 8]

Part 1 copies moto → local disk with ``run --dask local:N`` (a fresh moto and a fresh
PostgreSQL database for every N; the cluster's start-up is timed apart from the run).  The
emulator, PostgreSQL and the workers share this machine's cores, so the ratios show the
cost of the fleet machinery on one machine, not what N machines would do.
Part 2 plans one job of ``--partitions`` partitions and lets ``--claimers`` processes take
them one by one as the workers do (the claim statement with SKIP LOCKED, then the finish),
and checks that none was taken twice.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import REPO, Emulators, seed  # noqa: F401  (REPO puts the repo on sys.path)

from tests import servers


def fresh_db(pg: servers.Server) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.extra["url"], autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return str(pg.extra["url"]).rsplit("/", 1)[0] + "/" + name


def throughput(pg: servers.Server, workers: int, objects: int, size: int,
               partitions: int) -> dict[str, float]:
    import lakeshift
    from lakeshift.control.repository import ControlDB
    from lakeshift.engine.copy_options import job_copy_options
    from lakeshift.scale.cluster import ClusterSpec
    from lakeshift.scale.driver import run_on_dask
    from lakeshift.stores.base import StoreOptions

    emus = Emulators(azure=False)
    tmp = Path(tempfile.mkdtemp(prefix="lakeshift-dask-bench-"))
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(emus.env)  # the LocalCluster's workers inherit it
        s3 = emus.s3()
        s3.create_bucket(Bucket="src")
        per = objects // partitions
        prefixes = [f"p{i:03d}/" for i in range(partitions)]
        for p in prefixes:
            seed(s3, "src", p, per, size)
        db = fresh_db(pg)
        lakeshift.plan("s3://src/", str(tmp / "dest"), job="b", db=db, prefix=prefixes)
        control = ControlDB(db)
        job = control.job("b")
        opts = job_copy_options(job.options, concurrency=16)
        t0 = time.monotonic()
        out = asyncio.run(run_on_dask(control, job, ClusterSpec(local_workers=workers), 2,
                                      opts, StoreOptions(), lease_s=60, heartbeat_s=5))
        total = time.monotonic() - t0
        control.close()
        r = out.run
        assert r.exit_code == 0 and r.stats.copied == per * partitions, r
        run_s = r.stats.duration
        return {"workers": workers, "run_s": run_s, "startup_s": total - run_s,
                "files_s": r.stats.copied / run_s,
                "mib_s": r.stats.bytes_transferred / 2**20 / run_s,
                "rss_mib": max(rep.peak_rss for rep in out.reports) / 2**20,
                "tasks": len(out.reports)}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        emus.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _claimer(db: str, job_id: int, q: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from lakeshift.control.repository import ControlDB, PartitionStats
    from lakeshift.engine.jobrunner import owner_id

    control = ControlDB(db)
    owner = owner_id()
    n = 0
    while rows := control.claim(job_id, owner, 1, 60):
        control.finish(rows[0]["id"], owner, "succeeded", None, PartitionStats(), None, 0.0)
        n += 1
    control.close()
    q.put(n)


def claims(pg: servers.Server, partitions: int, claimers: int) -> dict[str, float]:
    from lakeshift.control.repository import ControlDB
    from lakeshift.model import PartitionSpec

    db = fresh_db(pg)
    control = ControlDB(db, create=True)
    specs = [PartitionSpec("s3://src/", f"p{i:06d}/", "", "file:///dest")
             for i in range(partitions)]
    job_id = control.create_job("claims", "file:///dest", {}, specs)
    q: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.Process(target=_claimer, args=(db, job_id, q))
             for _ in range(claimers)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    taken = [q.get() for _ in procs]
    wall = time.monotonic() - t0
    for p in procs:
        p.join()
    rows = control.partitions(job_id)
    control.close()
    twice = sum(1 for r in rows if r["attempts"] != 1)
    assert sum(taken) == partitions and twice == 0, (sum(taken), twice)
    return {"partitions": partitions, "claimers": claimers, "wall_s": wall,
            "claims_s": partitions / wall, "statements_s": 2 * partitions / wall,
            "per_claimer_min": min(taken), "per_claimer_max": max(taken)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=2000)
    ap.add_argument("--size", type=int, default=16 * 1024)
    ap.add_argument("--job-partitions", type=int, default=8)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--partitions", type=int, default=100_000)
    ap.add_argument("--claimers", type=int, default=8)
    a = ap.parse_args()
    pg = servers.start_postgres()
    try:
        print(f"cores: {os.cpu_count()}; moto, PostgreSQL and the workers share them")
        base = None
        for n in (int(x) for x in a.workers.split(",")):
            m = throughput(pg, n, a.objects, a.size, a.job_partitions)
            base = base or m["files_s"]
            print(f"workers {n}: {m['files_s']:7.1f} files/s {m['mib_s']:6.2f} MiB/s "
                  f"(run {m['run_s']:.1f} s, cluster start {m['startup_s']:.1f} s), "
                  f"peak RSS per worker {m['rss_mib']:.0f} MiB; x{m['files_s'] / base:.2f} "
                  "of 1 worker", flush=True)
        c = claims(pg, a.partitions, a.claimers)
        print(f"claims: {c['partitions']} partitions, {c['claimers']} claimers: "
              f"{c['claims_s']:.0f} claims/s ({c['statements_s']:.0f} statements/s: claim + "
              f"finish) in {c['wall_s']:.1f} s; per claimer {c['per_claimer_min']}–"
              f"{c['per_claimer_max']}; none taken twice")
    finally:
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
