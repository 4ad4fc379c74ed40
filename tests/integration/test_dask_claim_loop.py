"""The claim loop as a fleet's worker runs it (``claim_partitions(worker=True)``), on a real
PostgreSQL DB and without Dask: it waits for a partition another machine's worker holds and
takes it over when that lease expires, from its cursor."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

import lakeshift
from lakeshift.control.records import Job
from lakeshift.control.repository import ControlDB
from lakeshift.engine.copy_options import CopyOptions, job_copy_options
from lakeshift.engine.jobrunner import claim_partitions, start_job_run
from lakeshift.engine.sync import SyncMode, SyncSettings, pass_run_settings, prepare_pass
from lakeshift.model import RunResult, TransferStats
from lakeshift.stores.base import StoreOptions


def _tree(tmp_path: Path, folders: tuple[str, ...]) -> Path:
    """``tmp_path/src`` with five small files f0..f4 in each of ``folders``."""
    src = tmp_path / "src"
    for p in folders:
        (src / p).mkdir(parents=True)
        for i in range(5):
            (src / p / f"f{i}").write_bytes(f"{p}{i}".encode())
    return src


def _died_in_b(db: ControlDB, job_id: int, run_id: int, listed: int) -> int:
    """A worker of run ``run_id`` died inside b/ after copying f0..f3 (its record says so),
    its last heartbeat at cursor b/f1, its lease lapsed: the id of its partition-run
    record."""
    b = next(r for r in db.partitions(job_id) if r["prefix"] == "b/")
    dead = db.start_partition_run(run_id, b["id"], 0.0)
    db.save_partition_run(dead, {"listed": listed, "copied": 4, "bytes_read": 8,
                                 "bytes_written": 8, "in_flight": 1})
    with db.engine.begin() as conn:
        conn.execute(text(
            "UPDATE lakeshift_partitions SET state = 'running', "
            "lease_owner = 'elsewhere:4242:dead', cursor = 'b/f1', attempts = 1, "
            "listed = 4, copied = 4, bytes = 8, cursor_copied = 2, cursor_bytes = 4, "
            "lease_expires = now() - interval '1 second' WHERE prefix = 'b/'"))
    return int(dead)


@pytest.mark.parametrize("worker", [True, False])
def test_a_worker_waits_for_a_lease_held_elsewhere_and_takes_it_over(
        pg_url: str, tmp_path: Path, worker: bool) -> None:
    src = _tree(tmp_path, ("a", "b"))
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="w", db=pg_url, prefix=["a/", "b/"])
    db = ControlDB(pg_url)
    try:
        job = db.job("w")
        # Partition b/ is held by a worker on another machine that died after f1: its
        # lease runs out in 3 s (the DB's clock).
        with db.engine.begin() as conn:
            conn.execute(text(
                "UPDATE lakeshift_partitions SET state = 'running', "
                "lease_owner = 'elsewhere:4242:dead', cursor = 'b/f1', attempts = 1, "
                "cursor_copied = 2, lease_expires = now() + interval '3 seconds' "
                "WHERE prefix = 'b/'"))
        opts = job_copy_options(job.options, concurrency=4, block_size=8 * 1024 * 1024)
        owner = "here:1:w"
        run_id = start_job_run(db, job, owner, 1, opts, 10.0)
        result = RunResult(run_id, stats=TransferStats(started=time.monotonic()))
        stopped = asyncio.run(claim_partitions(db, job, run_id, owner, result, 1, opts,
                                               StoreOptions(), lease_s=10.0, heartbeat_s=1.0,
                                               worker=worker))
        assert stopped is False
        rows = {r["prefix"]: r for r in db.partitions(job.id)}
        assert rows["a/"]["state"] == "succeeded"
        if not worker:
            # A plain `run` process ends with what it could claim.
            assert rows["b/"]["state"] == "running"
            return
        assert rows["b/"]["state"] == "succeeded"
        assert rows["b/"]["attempts"] == 2
        # Resumed after the cursor: b/f2..f4 copied now, b/f0..f1 counted once from before.
        assert (rows["b/"]["copied"], rows["b/"]["listed"]) == (5, 5)
        assert result.stats.copied == 5 + 3
        assert sorted(p.name for p in (tmp_path / "dst" / "b").iterdir()) == ["f2", "f3",
                                                                            "f4"]
    finally:
        db.close()


def test_a_worker_stops_at_a_checkpoint_when_the_run_is_no_longer_running(
        pg_url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    for i in range(40):
        (src / "a" / f"f{i:02d}").write_bytes(b"x" * 100)
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="s", db=pg_url)
    db = ControlDB(pg_url)
    try:
        job = db.job("s")
        opts = job_copy_options(job.options, concurrency=1, block_size=8 * 1024 * 1024,
                                max_requests_per_second=10)
        run_id = start_job_run(db, job, "driver:1:x", 1, opts, 10.0)
        result = RunResult(run_id, stats=TransferStats(started=time.monotonic()))

        async def main() -> bool:
            loop = asyncio.create_task(claim_partitions(
                db, job, run_id, "here:1:w", result, 1, opts, StoreOptions(), lease_s=10.0,
                heartbeat_s=1.0, worker=True))
            await asyncio.sleep(1.5)
            await asyncio.to_thread(db.finish_run, run_id, "interrupted", 0, 0, 0, 0)
            return await loop

        assert asyncio.run(main()) is True
        row = db.partitions(job.id)[0]
        assert (row["state"], row["lease_owner"]) == ("pending", None)
        assert row["cursor"] is not None and row["copied"] < 40
    finally:
        db.close()


def test_a_partition_taken_over_in_its_run_counts_each_object_once(
        pg_url: str, tmp_path: Path) -> None:
    """A worker of the run died inside b/ after copying f0..f3, its last heartbeat at cursor
    b/f1; the worker that takes b/ over lists it after b/f1.  The run's partition-run
    records (its progress, its row, a Dask run's summary) count f2 and f3 once: the dead
    worker's record keeps f0 and f1 (it counted 4, and the taker 3 more: 12 of 10)."""
    src = _tree(tmp_path, ("a", "b"))
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="t", db=pg_url, prefix=["a/", "b/"])
    db = ControlDB(pg_url)
    try:
        job = db.job("t")
        opts = job_copy_options(job.options, concurrency=4, block_size=8 * 1024 * 1024)
        run_id = start_job_run(db, job, "driver:1:x", 1, opts, 10.0)
        dead = _died_in_b(db, job.id, run_id, listed=5)
        result = RunResult(run_id, stats=TransferStats(started=time.monotonic()))
        asyncio.run(claim_partitions(db, job, run_id, "here:1:w", result, 1, opts,
                                     StoreOptions(), lease_s=10.0, heartbeat_s=1.0,
                                     worker=True))
        totals = db.run_record_totals(run_id)
        assert totals["copied"] + totals["skipped"] == totals["listed"] == 10
        assert totals["bytes_written"] == 2 * (totals["copied"])
        assert totals["taken_over"] == 1
        shown = db.partition_run(dead)
        assert shown is not None
        assert (shown["state"], shown["copied"], shown["listed"], shown["bytes_written"],
                shown["in_flight"]) == ("taken-over", 2, 2, 4, 0)
        progress = db.run_progress(job.id, run_id)
        assert progress["copied"] + progress["skipped"] == 10
        assert sum(r["copied"] + r["skipped"] for r in db.partitions(job.id)) == 10
    finally:
        db.close()


def test_a_partition_taken_over_from_an_earlier_run_leaves_that_run_s_record_alone(
        pg_url: str, tmp_path: Path) -> None:
    """Run 1's worker died inside b/ and run 1 was interrupted before the lease lapsed; run
    2 takes b/ over from its cursor.  Run 1's record of b/ is run 1's history (it did copy
    f0..f3): run 2's claim trims only its own run's records."""
    src = _tree(tmp_path, ("b",))
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="t1", db=pg_url, prefix=["b/"])
    db = ControlDB(pg_url)
    try:
        job = db.job("t1")
        opts = job_copy_options(job.options, concurrency=4, block_size=8 * 1024 * 1024)
        run1 = start_job_run(db, job, "driver:1:x", 1, opts, 10.0)
        dead = _died_in_b(db, job.id, run1, listed=4)
        db.finish_run(run1, "interrupted", 0, 0, 4, 8)
        run2 = start_job_run(db, job, "driver:1:x", 1, opts, 10.0)
        result = RunResult(run2, stats=TransferStats(started=time.monotonic()))
        asyncio.run(claim_partitions(db, job, run2, "here:1:w", result, 1, opts,
                                     StoreOptions(), lease_s=10.0, heartbeat_s=1.0,
                                     worker=True))
        kept = db.partition_run(dead)
        assert kept is not None
        assert (kept["copied"], kept["bytes_written"]) == (4, 8)
        assert db.run_record_totals(run2)["taken_over"] == 0
    finally:
        db.close()


def _sync_pass(db: ControlDB, job: Job, owner: str, opts: CopyOptions,
               src: Path) -> tuple[int, SyncMode]:
    """A sync pass's run row and mode, as the driver makes them before its workers claim.
    Its window ends now, on a whole second: the sources' objects are older."""
    for f in src.rglob("*"):
        os.utime(f, (time.time() - 60, time.time() - 60))
    settings = SyncSettings(now=datetime.now(UTC), lag=timedelta(0))
    historical_start, historical_ids = prepare_pass(db, job, settings)
    run_id = start_job_run(db, job, owner, 1, opts, 10.0, pass_run_settings(settings))
    return run_id, SyncMode(db, job, settings, historical_start, historical_ids)


def test_a_sync_partition_taken_over_in_its_pass_counts_each_object_once(
        pg_url: str, tmp_path: Path) -> None:
    """A sync pass's worker died inside b/ after copying f0..f3, its last heartbeat at cursor
    b/f1.  The taker lists b/ from its start (the pass's window, not the cursor), so it
    counts all five: the partition's counters start from zero, not from the cursor's (7 of
    5), and the dead worker's record keeps nothing (12 of 10 in the pass's records)."""
    src = _tree(tmp_path, ("a", "b"))
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="s", db=pg_url, prefix=["a/", "b/"])
    db = ControlDB(pg_url)
    try:
        job = db.job("s")
        opts = job_copy_options(job.options, concurrency=4, block_size=8 * 1024 * 1024)
        run_id, mode = _sync_pass(db, job, "driver:1:x", opts, src)
        dead = _died_in_b(db, job.id, run_id, listed=5)
        result = RunResult(run_id, stats=TransferStats(started=time.monotonic()))
        asyncio.run(claim_partitions(db, job, run_id, "here:1:w", result, 1, opts,
                                     StoreOptions(), lease_s=10.0, heartbeat_s=1.0,
                                     mode=mode, worker=True))
        rows = {r["prefix"]: r for r in db.partitions(job.id)}
        assert [(rows[p]["listed"], rows[p]["copied"], rows[p]["bytes"])
                for p in ("a/", "b/")] == [(5, 5, 10), (5, 5, 10)]
        totals = db.run_record_totals(run_id)
        assert (totals["listed"], totals["copied"], totals["bytes_written"],
                totals["taken_over"]) == (10, 10, 20, 1)
        shown = db.partition_run(dead)
        assert shown is not None
        assert (shown["state"], shown["copied"], shown["listed"], shown["bytes_written"]) == (
            "taken-over", 0, 0, 0)
        assert (result.stats.copied, result.stats.listed) == (10, 10)
    finally:
        db.close()


@pytest.mark.parametrize("kind", ["copy", "sync"])
def test_a_claim_that_lost_its_lease_keeps_only_what_lay_before_its_saved_cursor(
        pg_url: str, tmp_path: Path, kind: str) -> None:
    """Another process took the partition over at the cursor this worker last saved (its
    lease had lapsed).  A copy run's taker counts what lies after the cursor, so this run's
    totals and its partition-run record keep only what lay before it (they counted it
    all); a sync pass's taker lists the partition from its start and counts every object,
    so this worker keeps none of it."""
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    for i in range(30):
        (src / "a" / f"f{i:02d}").write_bytes(b"x" * 100)
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="l", db=pg_url)
    db = ControlDB(pg_url)
    try:
        job = db.job("l")
        opts = job_copy_options(job.options, concurrency=1, block_size=8 * 1024 * 1024,
                                max_requests_per_second=10)
        owner = "here:1:l"
        if kind == "sync":
            run_id, mode = _sync_pass(db, job, owner, opts, src)
        else:
            run_id, mode = start_job_run(db, job, owner, 1, opts, 10.0), None
        result = RunResult(run_id, stats=TransferStats(started=time.monotonic()))
        stolen: list[int] = []

        async def main() -> None:
            loop = asyncio.create_task(claim_partitions(
                db, job, run_id, owner, result, 1, opts, StoreOptions(), lease_s=10.0,
                heartbeat_s=0.5, mode=mode))
            while not stolen:  # the first heartbeat that saved a cursor, then the theft
                await asyncio.sleep(0.1)
                with db.engine.begin() as conn:
                    stolen.extend(conn.execute(text(
                        "UPDATE lakeshift_partitions SET lease_owner = 'elsewhere:1:t', "
                        "lease_expires = now() + interval '1 hour' WHERE job_id = :j AND "
                        "lease_owner = :o AND cursor IS NOT NULL RETURNING cursor_copied"),
                        {"j": job.id, "o": owner}).scalars())
            await loop

        asyncio.run(main())
        assert 0 < stolen[0] < 30
        kept = stolen[0] if kind == "copy" else 0
        assert (result.stats.copied, result.stats.listed, result.stats.failed) == (kept, kept, 0)
        assert result.stats.copied_bytes == kept * 100
        record = db.run_record_totals(run_id)
        assert (record["copied"], record["bytes_written"], record["taken_over"]) == (
            kept, kept * 100, 1)
    finally:
        db.close()


def test_a_waiting_worker_waits_out_a_lost_db_connection(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While it waits for a partition another worker holds, the DB's connection is lost:
    the worker waits for the DB as it does everywhere else (it ended the worker's task)."""
    from lakeshift.control.db import ControlDBUnavailable

    src = _tree(tmp_path, ("a", "b"))
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="x", db=pg_url, prefix=["a/", "b/"])
    db = ControlDB(pg_url)
    try:
        job = db.job("x")
        with db.engine.begin() as conn:
            conn.execute(text(
                "UPDATE lakeshift_partitions SET state = 'running', "
                "lease_owner = 'elsewhere:4242:dead', attempts = 1, "
                "lease_expires = now() + interval '3 seconds' WHERE prefix = 'b/'"))
        lost: list[int] = []
        real = db.expire_dead_local

        def cut(*args: object) -> int:
            if len(lost) < 2:
                lost.append(1)
                raise ControlDBUnavailable("the control DB cannot be reached (cut)")
            return real(*args)  # type: ignore[arg-type]

        opts = job_copy_options(job.options, concurrency=4, block_size=8 * 1024 * 1024)
        owner = "here:1:w"
        run_id = start_job_run(db, job, owner, 1, opts, 10.0)
        monkeypatch.setattr(db, "expire_dead_local", cut)
        result = RunResult(run_id, stats=TransferStats(started=time.monotonic()))
        asyncio.run(claim_partitions(db, job, run_id, owner, result, 1, opts, StoreOptions(),
                                     lease_s=10.0, heartbeat_s=1.0, worker=True))
        assert len(lost) == 2
        assert [r["state"] for r in db.partitions(job.id)] == ["succeeded", "succeeded"]
    finally:
        db.close()
