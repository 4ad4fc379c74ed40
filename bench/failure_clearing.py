"""What clearing passed failures adds to a partition's heartbeat, by the index it walks.

  python bench/failure_clearing.py                      # SQLite, 200,000 open failures
  python bench/failure_clearing.py --open 10000 --db postgresql+psycopg://…

One partition holds ``--open`` current failures (a run failed them all, its cursor before
the first).  A resumed run's heartbeats each move the cursor ``--step`` keys on: each
clears the failures of those keys (repo_base ``_clear_failures``).  Measured in one run,
each on the same rows: with version 10's index by key (``ix_lakeshift_failures_open_key``;
``…_c`` on PostgreSQL), then with version 9's by partition alone.  Each beat is timed with
its clearing and without it (the same heartbeat, the claim not noted), and the median
difference printed, with the ratio of the two indexes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from sqlalchemy import update  # noqa: E402

from lakeshift.control.repository import ControlDB, PartitionStats, Records  # noqa: E402
from lakeshift.control.schema import failures  # noqa: E402
from lakeshift.model import Failure, PartitionSpec  # noqa: E402

OWNER = "bench:1:a"
V10 = ("ix_lakeshift_failures_open_key", "ix_lakeshift_failures_open_key_c")
V9 = "ix_lakeshift_failures_partition_open"


def key(i: int) -> str:
    return f"p/k{i:08d}"


def seed(control: ControlDB, n: int) -> tuple[int, int]:
    job = control.create_job("bench", "az://c/", {}, [PartitionSpec("s3://b/", "p/", "",
                                                                    "az://c/")])
    [p] = control.partitions(job)
    run = control.start_run(job, OWNER, 1, {})
    control.claim(job, OWNER, 1, 60, run_id=run)
    for i in range(0, n, 10_000):
        control.add_records(p["id"], Records(job, run, [
            Failure(key(k), "forbidden", "denied", 1) for k in range(i, min(n, i + 10_000))]))
    control.finish(p["id"], OWNER, "failed", None, PartitionStats(), "failed", 1.0)
    control.finish_run(run, "failed", 0, 1, 0, 0)
    return job, int(p["id"])


def beats(control: ControlDB, job: int, p: int, step: int, count: int) -> tuple[float, float]:
    """Median ms of a heartbeat that clears ``step`` failures, and of the same without
    clearing, over ``count`` beats from a fresh claim at no cursor."""
    with control.engine.begin() as conn:
        conn.execute(update(failures).values(cleared_run_id=None))
    control.restart_partitions([p])
    run = control.start_run(job, OWNER, 1, {})
    control.claim(job, OWNER, 1, 60, run_id=run)
    noted = control._passing[p]
    with_clearing: list[float] = []
    without: list[float] = []
    for i in range(count):
        cursor = key((i + 1) * step - 1)
        control._passing.pop(p)
        t = time.perf_counter()
        control.heartbeat(p, OWNER, 60, cursor, PartitionStats())
        without.append(time.perf_counter() - t)
        control._passing[p] = noted
        t = time.perf_counter()
        control.heartbeat(p, OWNER, 60, cursor, PartitionStats())
        with_clearing.append(time.perf_counter() - t)
    control.finish(p, OWNER, "failed", None, PartitionStats(), "failed", 1.0)
    control.finish_run(run, "failed", 0, 1, 0, 0)
    return statistics.median(with_clearing) * 1000, statistics.median(without) * 1000


def use_index(control: ControlDB, version: int) -> None:
    with control.engine.begin() as conn:
        if version == 9:
            for name in V10:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {V9} ON lakeshift_failures "
                                 "(partition_id, cleared_run_id)")
        if control.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE lakeshift_failures")
        else:
            conn.exec_driver_sql("ANALYZE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--open", type=int, default=200_000, help="open failures (200000)")
    ap.add_argument("--step", type=int, default=100, help="keys a beat goes past (100)")
    ap.add_argument("--beats", type=int, default=20, help="beats timed per index (20)")
    ap.add_argument("--db", help="control DB URL (a scratch SQLite file unless given; a "
                                 "PostgreSQL DB given must be empty)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        control = ControlDB(a.db or f"sqlite:///{tmp}/bench.db", create=True)
        try:
            job, p = seed(control, a.open)
            results = {}
            for version in (10, 9):
                use_index(control, version)
                results[version] = beats(control, job, p, a.step, a.beats)
            print(f"{control.engine.dialect.name}: {a.open:,} open failures in the "
                  f"partition, {a.step} cleared a beat (median of {a.beats})")
            for version, (cleared, plain) in results.items():
                print(f"  version {version:>2} index: heartbeat {cleared:7.2f} ms, without "
                      f"clearing {plain:7.2f} ms: clearing adds {cleared - plain:7.2f} ms")
            added = {v: max(c - n, 1e-3) for v, (c, n) in results.items()}
            print(f"  clearing costs {added[9] / added[10]:.1f}× less with version 10's index")
        finally:
            control.close()


if __name__ == "__main__":
    main()
