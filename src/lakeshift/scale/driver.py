"""The driver of a run on Dask: the run row, one worker task per Dask worker, one
progress display read from the control DB, the run's end.

Ctrl-C (or a cancelled task) ends the run row as ``interrupted``; each worker sees it at
its next heartbeat and stops at a checkpoint (its partitions pending again, cursors and
counters saved), and the driver waits for that before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from lakeshift.control.records import Job
from lakeshift.control.repository import ControlDB
from lakeshift.engine.events import (
    BytesMoved,
    EventBus,
    Listed,
    ListingDone,
    ObjectDone,
    Subscriber,
)
from lakeshift.engine.jobrunner import (
    count_remaining,
    last_phase,
    owner_id,
    patiently,
    start_job_run,
)
from lakeshift.engine.pipeline import CopyOptions
from lakeshift.errors import LakeshiftError, TransientError, UsageError
from lakeshift.model import RunResult, TransferStats
from lakeshift.scale.cluster import ClusterSpec, Fleet, distributed_module, open_fleet
from lakeshift.scale.throttle import create_channel
from lakeshift.scale.worker import SyncAssignment, WorkerAssignment, WorkerReport, run_worker
from lakeshift.stores.base import StoreOptions


def refuse_sqlite(db_url: str, spec: str) -> None:
    """--dask needs a DB every worker machine can reach (UsageError, exit 2)."""
    if db_url.strip().lower().startswith("sqlite"):
        raise UsageError(f"--dask {spec} needs a PostgreSQL control DB that every worker can "
                         "reach (--db postgresql://user@host/db): SQLite is one machine's "
                         "file")


def fleet_share(opts: CopyOptions, workers: int) -> CopyOptions:
    """One worker's options: an equal share of the fleet-wide request-rate and bandwidth
    caps, so that all workers together stay within them (each bucket also bursts to at
    most its share)."""
    rps, bw = opts.max_requests_per_second, opts.max_bandwidth
    return replace(opts, max_requests_per_second=rps / workers if rps else None,
                   max_bandwidth=bw / workers if bw else None)


@dataclass
class FleetResult:
    """A run on Dask: the run's result, and what each worker task reported."""

    run: RunResult
    reports: list[WorkerReport] = field(default_factory=list)
    #: Worker tasks that ended with an error instead of a report (their partitions are
    #: resumable: another worker or a rerun takes them over).
    lost_tasks: list[str] = field(default_factory=list)
    #: The tasks' reports were summed into ``run`` (once).
    collected: bool = False

    @property
    def outcomes(self) -> list[Any]:
        return [o for r in self.reports for o in r.outcomes]

    @property
    def deleted_keys(self) -> list[str]:
        return [k for r in self.reports for k in r.deleted_keys]


class ProgressFromDB:
    """The fleet's progress as engine events, from the run's partition-run records in the
    control DB (summed over partitions each time: the display is one bar for all
    workers).  Each update's events are given to the displays together: a display that
    prints a line now and then (``batch``) prints it once they are all in."""

    def __init__(self, subscribers: list[Subscriber]) -> None:
        self.subscribers = subscribers
        self.bus = EventBus(subscribers)
        self.shown = dict.fromkeys(("listed", "copied", "skipped", "failed_objects", "bytes"),
                                   0)
        self.listing_done = False

    def update(self, now: dict[str, int]) -> None:
        # Counters only grow (each record's are its claim's); should one be read back
        # lower, the display waits until it passes what it showed.
        def more(key: str) -> int:
            d = now.get(key, 0) - self.shown[key]
            if d > 0:
                self.shown[key] = now[key]
            return max(d, 0)

        with contextlib.ExitStack() as together:
            for s in self.subscribers:
                batch = getattr(s, "batch", None)
                if batch is not None:
                    together.enter_context(batch())
            listed, nbytes = more("listed"), more("bytes")
            if listed:
                self.bus.emit(Listed(listed, 0))
            if nbytes:
                self.bus.emit(BytesMoved(nbytes))
            for outcome, key in (("copied", "copied"), ("skipped", "skipped"),
                                 ("failed", "failed_objects")):
                for _ in range(more(key)):
                    self.bus.emit(ObjectDone("", 0, outcome))  # type: ignore[arg-type]
            if not self.listing_done and now.get("pending", 1) == now.get("running", 1) == 0:
                self.listing_done = True  # every partition ended: the total is known
                self.bus.emit(ListingDone())


async def run_on_dask(db: ControlDB, job: Job, spec: ClusterSpec, batch_count: int,
                      opts: CopyOptions, store_options: StoreOptions,
                      subscribers: list[Subscriber] | None = None, lease_s: float = 60.0,
                      heartbeat_s: float = 5.0, run_settings: dict[str, Any] | None = None,
                      sync: SyncAssignment | None = None,
                      before_close: Callable[[FleetResult], Awaitable[None]] | None = None
                      ) -> FleetResult:
    """Run the job's partitions on the cluster: one task per worker, each the claim loop
    of ``lakeshift run`` with ``batch_count`` partitions and ``opts.concurrency`` transfers
    at a time, and its share of the request and bandwidth caps.

    ``before_close`` (sync --delete: the deletion phase) runs here once every worker task
    ended, before the run's row is closed, as in engine/jobrunner.py ``run_job``."""
    refuse_sqlite(db.url, str(spec))
    call = asyncio.to_thread
    fleet: Fleet = await call(open_fleet, spec)
    try:
        workers = await call(fleet.workers)
        owner = owner_id()
        settings = {**(run_settings or {}), "dask": str(spec), "workers": len(workers)}
        run_id = await call(start_job_run, db, job, owner, batch_count, opts, lease_s,
                            settings)
        out = FleetResult(RunResult(run_id, stats=TransferStats(started=time.monotonic())))
        share = fleet_share(opts, len(workers))
        channel = await call(create_channel, fleet.client, run_id)
        futures = [fleet.client.submit(
            run_worker, WorkerAssignment(db.url, db.shown, job.name, run_id, batch_count,
                                         share, store_options, lease_s, heartbeat_s, sync,
                                         fleet_throttle=True),
            key=f"lakeshift-run-{run_id}-worker-{i}", workers=[w], allow_other_workers=True,
            pure=False) for i, w in enumerate(workers)]
        progress = ProgressFromDB(list(subscribers or []))
        state = "interrupted"
        cancelled: list[bool] = []  # the monitor asked the run to stop
        try:
            await _follow(db, job, run_id, futures, progress, lease_s, heartbeat_s, cancelled)
            _collect(futures, out)
            # As run_job's before_close: the run stays live (its lease renewed, a cancel
            # obeyed) until its last phase is done, and its row counts what that did.
            if (before_close is not None and not any(rep.stopped for rep in out.reports)
                    and await last_phase(db, run_id, out.run, lease_s, heartbeat_s,
                                         before_close(out))):
                cancelled.append(True)
            state = "succeeded"
        except BaseException:
            # Interrupted: the workers stop at their next heartbeat when they see the run
            # is no longer running; wait for them so their partitions are saved.
            with contextlib.suppress(LakeshiftError):
                await call(db.finish_run, run_id, "interrupted", 0, 0, 0, 0)
            with contextlib.suppress(Exception):
                await call(_wait, futures, lease_s + 2 * heartbeat_s)
            raise
        finally:
            if not out.collected:
                _collect(futures, out)
            with contextlib.suppress(LakeshiftError):
                _count_taken_over(await call(db.run_record_totals, run_id), out.run.stats)
            with contextlib.suppress(Exception):  # the scheduler may be gone
                await call(channel.delete)
            r = out.run
            r.stats.finished = time.monotonic()
            if state == "succeeded" and (r.failed or out.lost_tasks):
                state = "failed"
            if any(rep.stopped for rep in out.reports) or cancelled:
                state = "cancelled" if cancelled else "interrupted"
                r.cancelled = bool(cancelled)
            # Patiently, as the workers' writes: a DB cut as the run ends costs a pause.
            await patiently(db.finish_run, lease_s, run_id, state, r.succeeded, r.failed,
                             r.stats.copied, r.stats.bytes_transferred)
        await patiently(count_remaining, lease_s, db, job, out.run)
        _raise_worker_error(futures, out)
        return out
    finally:
        await call(fleet.close)


async def sync_pass_on_dask(db: ControlDB, job: Job, spec: ClusterSpec, settings: Any,
                            opts: CopyOptions, store_options: StoreOptions, batch_count: int,
                            subscribers: list[Subscriber] | None, lease_s: float,
                            heartbeat_s: float) -> Any:
    """One delta pass (engine/sync.py) whose partitions the cluster's workers take.  With
    --delete, the workers list and record the candidates; the deletion phase runs here,
    once every partition is listed, as in a pass without Dask (the run-wide
    --max-delete cap needs them all)."""
    from lakeshift.engine.sync import PassResult, SyncMode, pass_run_settings, prepare_pass

    refuse_sqlite(db.url, str(spec))
    refuse_inventory(settings.inventory is not None)
    call = asyncio.to_thread
    historical_start, historical_ids = await call(prepare_pass, db, job, settings)
    mode = SyncMode(db, job, settings, historical_start, historical_ids)

    async def deletions(fleet: FleetResult) -> None:
        mode.adopt_windows([w for r in fleet.reports for w in r.deferred],
                           sum(r.destination_objects for r in fleet.reports),
                           fleet.run.run_id)
        await mode.delete_found(fleet.run, store_options, opts)
        await mode.finish_deferred(fleet.run)

    try:
        out = await run_on_dask(db, job, spec, batch_count, opts, store_options, subscribers,
                                lease_s, heartbeat_s, pass_run_settings(settings),
                                SyncAssignment(settings, historical_start,
                                               frozenset(historical_ids)),
                                before_close=deletions if settings.delete else None)
        mode.run_id = out.run.run_id
        if not settings.delete:
            return PassResult(out.run, out.outcomes, out.deleted_keys)
        # Renames are not paired here: each worker copies a new name it lists (it has no
        # destination copy), the old name is a deletion; the summary says so.
        return PassResult(out.run, out.outcomes, mode.deleted_keys,
                          sum(mode.deleted_count.values()),
                          max((r.peak_candidates for r in out.reports), default=0),
                          kept=mode.held_by_failures + len(mode.reappeared),
                          renames_paired=False)
    finally:
        if mode.run_id is not None:
            # Windows not finished (a pass stopped before its deletions were done), and
            # the candidates, as engine/sync.py sync_pass leaves them.
            await call(db.close_pending_windows, mode.run_id)
            if settings.delete:
                await call(db.clear_delete_candidates, mode.run_id)


def refuse_inventory(inventory: bool) -> None:
    """An inventory report is read (and spilled) on the driver's machine; the workers
    could not read it (UsageError, exit 2)."""
    if inventory:
        raise UsageError("sync --inventory cannot run on Dask: the inventory report is "
                         "read into this machine's temporary files, which the workers "
                         "cannot reach; run the inventory pass without --dask")


async def _follow(db: ControlDB, job: Job, run_id: int, futures: list[Any],
                  progress: ProgressFromDB, lease_s: float, heartbeat_s: float,
                  cancelled: list[bool]) -> None:
    """Until every worker task ends: progress from the DB and the run row's heartbeat."""
    call = asyncio.to_thread
    tick = min(1.0, heartbeat_s)
    last_beat = 0.0
    start = await patiently(db.run_progress, lease_s, job.id, run_id)
    while True:
        pending = await call(_wait, futures, tick)
        try:
            now = await call(db.run_progress, job.id, run_id)
        except LakeshiftError:
            continue  # the DB is unreachable for now: the workers wait for it too
        progress.update(now)
        if time.monotonic() - last_beat >= heartbeat_s:
            last_beat = time.monotonic()
            with contextlib.suppress(LakeshiftError):
                done = max(0, now["succeeded"] - start["succeeded"])
                copied, nbytes = now["copied"], now["bytes"]
                if await call(db.heartbeat_run, run_id, lease_s, done, now["failed"], copied,
                              nbytes):
                    # The monitor's cancel: the run row leaves "running", so every worker
                    # stops at its next heartbeat with its partitions pending at their
                    # cursors; the driver then ends the run as cancelled.
                    await call(db.finish_run, run_id, "cancelled", done, now["failed"],
                               copied, nbytes)
                    cancelled.append(True)
        if not pending:
            return


def _wait(futures: list[Any], timeout: float) -> int:
    """Wait up to ``timeout`` s for the tasks; how many are still running."""
    with contextlib.suppress(TimeoutError):
        distributed_module().wait(futures, timeout=timeout)
    return sum(1 for f in futures if not f.done())


def _collect(futures: list[Any], out: FleetResult) -> None:
    out.collected = True
    r = out.run
    for f in futures:
        if not f.done():
            out.lost_tasks.append(f"{f.key}: still running")
            continue
        if f.status != "finished":
            out.lost_tasks.append(f"{f.key}: {_task_error(f)}")
            continue
        rep: WorkerReport = f.result()
        out.reports.append(rep)
        r.succeeded += rep.succeeded
        r.failed += rep.failed
        r.errors.extend(rep.errors)
        _add_stats(r.stats, rep.stats)


def _count_taken_over(records: dict[str, int], stats: TransferStats) -> None:
    """A worker that died took its report with it: what it did before the cursor its
    partition was taken over from is in no task's report.  When a partition was taken
    over, the run's counts are its partition-run records' (trimmed at the takeover, each
    object once); the reports' finer counts (by reason, by kind, proofs) stay as they are."""
    if not records["taken_over"]:
        return
    stats.listed, stats.copied = records["listed"], records["copied"]
    stats.skipped, stats.failed = records["skipped"], records["failed_objects"]
    stats.bytes_transferred, stats.copied_bytes = records["bytes_read"], records["bytes_written"]


def _task_error(f: Any) -> str:
    try:
        e = f.exception(timeout=1)
    except Exception as x:  # cancelled, or the scheduler is gone
        return type(x).__name__
    return f"{type(e).__name__}: {e}"


def _raise_worker_error(futures: list[Any], out: FleetResult) -> None:
    """A lakeshift error a worker raised (bad credentials on the workers, a missing
    container…) is the run's error; a task lost with its workers is a transient one."""
    for f in futures:
        if f.done() and f.status == "error":
            with contextlib.suppress(Exception):
                e = f.exception(timeout=1)
                if isinstance(e, LakeshiftError):
                    raise e
    if out.lost_tasks and not out.reports:
        raise TransientError("every Dask worker task was lost ("
                             + "; ".join(out.lost_tasks)[:500]
                             + "): the partitions stay resumable, run again")


def _add_stats(total: TransferStats, part: TransferStats) -> None:
    for f in fields(TransferStats):
        if f.name in ("started", "finished"):
            continue
        value = getattr(part, f.name)
        if isinstance(value, dict):
            merged = getattr(total, f.name)
            for k, v in value.items():
                merged[k] = merged.get(k, 0) + v
        else:
            setattr(total, f.name, getattr(total, f.name) + value)
