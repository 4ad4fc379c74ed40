"""`lakeshift run`: claim partitions from the control DB, N at a time, each isolated.

Every partition is one pipeline run (engine/pipeline.py) over its prefix or key range,
listing after its cursor.  A heartbeat renews the leases and saves each partition's cursor
(its low watermark) and counters every few seconds, so a killed run resumes inside a
partition.  One partition failing marks it failed with its error; the others go on.

Here: :func:`run_job` (one run in this process) and :func:`claim_partitions` (the claim
loop, which a fleet's worker runs alone).  Its parts: a claimed partition and what the run
holds of it (engine/jobrunner_partition.py) and the run's life around the loop — its start,
last phase and end, the DB's patience (engine/jobrunner_run.py); their names are imported
from here as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import RowMapping

from lakeshift.control.records import Job
from lakeshift.control.repo_jobs import TAKEN_OVER
from lakeshift.control.repository import ControlDB, RunGone
from lakeshift.engine.events import Event, EventBus, ObjectDone, Subscriber
from lakeshift.engine.jobrunner_partition import (
    ActivePartition,
    ClaimedPartition,
    PartitionMode,
)
from lakeshift.engine.jobrunner_run import (
    copy_settings,
    count_remaining,
    job_deleted,
    last_phase,
    owner_id,
    partition_store,
    patiently,
    start_job_run,
    sync_adf,
)
from lakeshift.engine.limiter import Pacing
from lakeshift.engine.pipeline import CopyOptions, check_reachable, run_pipeline
from lakeshift.engine.pipeline_stats import StatsCounter
from lakeshift.engine.retry import RetryPolicy, retry_observer
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import ServerRoute
from lakeshift.errors import LakeshiftError
from lakeshift.model import RunResult, TransferStats
from lakeshift.plan.jobplan import partition_spec
from lakeshift.plan.source import destination_root
from lakeshift.stores.base import Store, StoreOptions
from lakeshift.stores.registry import open_store

__all__ = [
    "ActivePartition",
    "ClaimedPartition",
    "PartitionMode",
    "claim_partitions",
    "copy_settings",
    "count_remaining",
    "job_deleted",
    "last_phase",
    "owner_id",
    "patiently",
    "run_job",
    "start_job_run",
    "sync_adf",
]


async def run_job(db: ControlDB, job: Job, batch_count: int, opts: CopyOptions,
                  store_options: StoreOptions, subscribers: list[Subscriber] | None = None,
                  lease_s: float = 60.0, heartbeat_s: float = 5.0,
                  on_partition: Callable[[RowMapping, str, str | None], None] | None = None,
                  mode: PartitionMode | None = None, run_settings: dict[str, Any] | None = None,
                  before_close: Callable[[RunResult], Awaitable[None]] | None = None
                  ) -> RunResult:
    """One run of the job in this process: its run row, the claim loop, the run's end.

    ``before_close`` (sync --delete: the deletion phase) runs after the last partition and
    before the run's row is closed, so the row counts what it did and a concurrent pass
    sees the run live until then."""
    owner = owner_id()
    call = asyncio.to_thread
    run_id = await call(start_job_run, db, job, owner, batch_count, opts, lease_s,
                        run_settings)
    result = RunResult(run_id, stats=TransferStats(started=time.monotonic()))
    state = "interrupted"
    try:
        stopped = await claim_partitions(db, job, run_id, owner, result, batch_count, opts,
                                         store_options, subscribers, lease_s, heartbeat_s,
                                         on_partition, mode)
        if not stopped and before_close is not None:
            stopped = await last_phase(db, run_id, result, lease_s, heartbeat_s,
                                       before_close(result))
        state = "cancelled" if stopped else ("failed" if result.failed else "succeeded")
        result.cancelled = stopped
    except RunGone:
        raise job_deleted(job) from None
    finally:
        try:
            await call(db.finish_run, run_id, state, result.succeeded, result.failed,
                       result.stats.copied, result.stats.bytes_transferred)
        except RunGone:
            raise job_deleted(job) from None
    await call(count_remaining, db, job, result)
    return result


async def claim_partitions(db: ControlDB, job: Job, run_id: int, owner: str,
                           result: RunResult, batch_count: int, opts: CopyOptions,
                           store_options: StoreOptions,
                           subscribers: list[Subscriber] | None = None,
                           lease_s: float = 60.0, heartbeat_s: float = 5.0,
                           on_partition: Callable[[RowMapping, str, str | None], None]
                           | None = None, mode: PartitionMode | None = None,
                           worker: bool = False, pacing: Pacing | None = None) -> bool:
    """The partition runner: claim up to ``batch_count`` partitions of run ``run_id`` at a
    time as lease owner ``owner``, copy each (or run ``mode`` on it), heartbeat, and add
    what was done to ``result``, until no partition is left to claim.

    ``worker``: this loop is one of a fleet's (lakeshift.scale) — the driver owns the run
    row, so the heartbeat reads its state instead of renewing it and stops at a checkpoint
    when it is no longer ``running`` (the driver was interrupted, or died and its run was
    closed); and with nothing left to claim the loop waits, while partitions are still
    held by other workers, for them to end or for their leases to expire (a dead worker's
    partitions are resumed from their cursors, or from their starts with a ``from_start``
    mode).  True when it stopped so.  ``pacing``: the run's limiters, when the caller
    made them (a fleet worker's hear the other workers' throttling: scale/throttle.py);
    else from ``opts``.
    """
    call = asyncio.to_thread
    from_start = mode is not None and mode.from_start
    #: Set when the run's first objects are done: the first beat comes then, not a whole
    #: heartbeat later (a run killed in its first seconds showed nothing done).
    first_done = asyncio.Event()

    def note_first(event: Event) -> None:
        if isinstance(event, ObjectDone) and not first_done.is_set():
            first_done.set()

    totals = EventBus([StatsCounter(result.stats, []), note_first, *(subscribers or [])])
    slots = SlotPool(opts.concurrency)
    pacing = pacing or opts.pacing(totals)
    route = ServerRoute(opts.copy_mode)  # tried once for the whole job
    per_partition = CopyOptions(**{**opts.__dict__,
                                   "concurrency": max(1, -(-opts.concurrency // batch_count))})
    policy = RetryPolicy(attempts=opts.retries)
    stores: dict[str, Store] = {}
    checked: set[int] = set()  # ids of the stores checked (kept open in ``stores``)
    active: dict[int, ActivePartition] = {}
    stop = asyncio.Event()
    cancelled = False  # the run was asked to stop (lakeshift_runs.cancel_requested)
    gone = False  # the run's row vanished: its job was deleted under it

    async def store_for(url: str, role: str, destination: str | None = None) -> Store:
        """The store at ``url`` (``partition_store``: a source's walk never enters its
        local ``destination``), checked once."""
        store = partition_store(stores, url, store_options, destination, open_store)
        if id(store) not in checked:
            fn = store.check_source if role == "source" else store.prepare_destination
            await check_reachable(fn, role, policy)
            checked.add(id(store))
        return store

    async def run_partition(a: ActivePartition) -> None:
        row = a.row
        state, error = "failed", None
        retry_observer.set(a.activity.note_retry)  # this task and those it starts
        try:
            src = await store_for(row["source"], "source", row["destination"])
            dst = await store_for(row["destination"], "destination")
            spec = partition_spec(row)
            bus = EventBus([a.track, a.counter(), totals.emit])
            if mode is None:
                await run_pipeline(src, dst, spec, destination_root(dst), per_partition, bus,
                                   slots, policy, a.watermark, pacing, route=route)
            else:
                a.claimed = ClaimedPartition(row, run_id, src, dst, spec, per_partition, bus,
                                             slots, policy, a.watermark, pacing,
                                             lambda: a.stats)
                await mode.run(a.claimed)
            state = "failed" if a.stats.failed_objects else "succeeded"
            if a.stats.failed_objects:
                error = (f"{a.stats.failed_objects} object"
                         f"{'' if a.stats.failed_objects == 1 else 's'} failed "
                         f"(lakeshift failures --job {shlex.quote(job.name)})")
        except asyncio.CancelledError:
            state = "pending"  # interrupted: claimable again, resumes from the cursor
            raise
        except LakeshiftError as e:
            error = str(e)
        except BaseExceptionGroup as eg:
            error = "; ".join(str(e) for e in eg.exceptions)[:2000]
        finally:
            await _finish(a, state, error)

    async def _finish(a: ActivePartition, state: str, error: str | None) -> None:
        row = a.row
        duration = time.monotonic() - a.started
        async with a.saving:
            try:
                cursor, stats, at_cursor, records = a.snapshot(job.id, run_id)
                if not a.lost:
                    if await patiently(db.finish, lease_s, row["id"], owner, state,
                                        cursor, stats, error, duration, at_cursor, records):
                        a.saved(records)
                    else:
                        # Its lease is gone (the job re-planned with --force, or taken over
                        # after it lapsed): the partition is another's now, not this run's.
                        a.lost = True
            finally:
                a.ended = True
        if a.lost and not gone:
            # Another process took the partition over from its saved cursor and counts what
            # lies after it: this run keeps only what it did before that cursor.
            own = a.taken_over()
            for f in ("listed", "copied", "skipped", "failed", "copied_bytes",
                      "bytes_transferred"):
                setattr(result.stats, f, getattr(result.stats, f)
                        - (getattr(a.counts, f) - getattr(own, f)))
            a.counts = own
        if a.activity.record_id is not None:
            ended = TAKEN_OVER if a.lost and not gone else (
                "cancelled" if cancelled and state == "pending" else (
                    "interrupted" if state == "pending" else state))
            try:
                await call(db.save_partition_run, a.activity.record_id,
                           {**a.activity.values(a.counts, end=time.monotonic()),
                            "state": ended, "error": error}, True)
            except LakeshiftError:
                pass  # what the monitor shows; the partition's own record is saved
        if (not a.lost and state == "succeeded" and row["adf_prefix"] is not None
                and job.adf_table):
            await call(db.adf_mark_success, job.adf_table, row["adf_prefix"])
        if not a.lost and mode is not None:
            await mode.finished(a.claimed, row, state, error, a.stats)
        if a.lost:
            pass  # not this run's to count
        elif state == "succeeded":
            result.succeeded += 1
        elif state == "failed":
            result.failed += 1
            result.errors.append((_label(row), error or "failed"))
        if not worker and not a.lost and state != "pending":
            # The run's row counts the partition as soon as its own row does (no chart
            # sample: those come with the beats, not once per partition).
            with contextlib.suppress(LakeshiftError):
                await call(db.heartbeat_run, run_id, lease_s, result.succeeded,
                           result.failed, result.stats.copied,
                           result.stats.bytes_transferred, 0, False)
        if on_partition is not None:
            on_partition(row, state, error)

    def stop_all() -> None:
        """Claim nothing more; each partition ends as pending at its cursor (as after
        Ctrl-C) and saves its progress as it ends."""
        stop.set()
        for a in list(active.values()):
            if a.task is not None and not a.task.done():
                a.task.cancel()

    async def heartbeat() -> None:
        nonlocal cancelled, gone
        first = True
        while True:
            if first:
                first = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(first_done.wait(), heartbeat_s)
            else:
                await asyncio.sleep(heartbeat_s)
            # The run's row first: a partition's progress is never seen saved before the
            # run's of the same beat (a kill between the two left a run that had copied
            # nothing beside partitions that had).  A fleet's worker reads the run's state
            # instead (the driver owns the row): not running any more → stop.  The
            # partitions' snapshots are taken with the run's counters (no await between):
            # a kill after the beat leaves rows that agree.
            snaps = {pid_: (a.snapshot(job.id, run_id), None if a.activity.record_id is None
                            else (a.activity.record_id, a.activity.values(a.counts)))
                     for pid_, a in active.items() if not a.ended}
            try:
                if not worker:
                    asked = await call(db.heartbeat_run, run_id, lease_s, result.succeeded,
                                       result.failed, result.stats.copied,
                                       result.stats.bytes_transferred,
                                       sum(len(a.activity.in_flight)
                                           for a in active.values()))
                    cancelled = cancelled or asked  # the monitor's cancel
                else:
                    asked = await call(db.run_state, run_id) != "running"
            except RunGone:
                # Nothing of the job is left to write to: every partition stops, as if
                # taken over by another process (it writes nothing more).
                gone = asked = True
                for a in active.values():
                    a.lost = True
            except LakeshiftError:
                asked = False  # the control DB is unreachable for now: see below
            if asked and not stop.is_set():
                stop_all()
            if stop.is_set():
                continue
            for pid_, a in list(active.items()):
                if a.ended or pid_ not in snaps:
                    continue
                async with a.saving:
                    if a.ended:
                        continue  # its finish wrote the rest
                    (cursor, stats, at_cursor, records), shown = snaps[pid_]
                    try:
                        ok = await call(db.heartbeat, a.row["id"], owner, lease_s, cursor,
                                        stats, at_cursor, records, shown)
                    except LakeshiftError:
                        # The control DB is unreachable for now: keep copying and try again
                        # at the next beat (the worst case is a lease that expires meanwhile).
                        continue
                    if ok:
                        a.saved(records, at_cursor)
                if not ok and a.task is not None and not a.task.done():
                    a.lost = True  # another process took it over: stop, write nothing
                    a.task.cancel()

    hb = asyncio.create_task(heartbeat())
    try:
        while True:
            free = batch_count - len(active)
            rows = (await patiently(db.claim, lease_s, job.id, owner, free, lease_s, run_id,
                                    from_start) if free and not stop.is_set() else [])
            for row in rows:
                a = ActivePartition(row, time.monotonic(), from_start=from_start)
                a.activity.queued_s = round(a.started - result.stats.started, 3)
                try:
                    a.activity.record_id = await call(db.start_partition_run, run_id,
                                                      row["id"], a.activity.queued_s)
                except LakeshiftError:
                    pass  # the monitor misses this partition run; the copy goes on
                a.task = asyncio.create_task(run_partition(a))
                active[row["id"]] = a
            if not active:
                if (not worker or stop.is_set()
                        or not await patiently(db.unfinished_partitions, lease_s, job.id)):
                    break
                # Held by other workers: wait for them to end, or for their leases to
                # expire (a process of this host that died is expired at once).
                await patiently(db.expire_dead_local, lease_s, job.id, socket.gethostname())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), heartbeat_s)
                continue
            done, _ = await asyncio.wait([a.task for a in active.values() if a.task],
                                         return_when=asyncio.FIRST_COMPLETED)
            for pid in [k for k, a in active.items() if a.task in done]:
                a = active.pop(pid)
                if a.task is not None and not a.task.cancelled():
                    a.task.result()
    finally:
        for a in active.values():
            if a.task is not None:
                a.task.cancel()
        if active:
            await asyncio.gather(*(a.task for a in active.values() if a.task),
                                 return_exceptions=True)
        hb.cancel()
        result.stats.finished = time.monotonic()
        await asyncio.gather(*(s.close() for s in stores.values()), return_exceptions=True)
    if gone:
        raise RunGone(f"run {run_id} is no longer in the control DB: its job was deleted "
                      "while it ran")
    return stop.is_set()


def _label(row: Any) -> str:
    label = f"#{row['seq']} {row['source']}{row['prefix']}"
    if row["range_start"] or row["range_end"]:
        label += f" [{row['range_start'] or ''}, {row['range_end'] or '…'})"
    return label
