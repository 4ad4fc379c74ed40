"""`lakeshift run`: claim partitions from the control DB, N at a time, each isolated.

Every partition is one pipeline run (engine/pipeline.py) over its prefix or key range,
listing after its cursor.  A heartbeat renews the leases and saves each partition's cursor
(its low watermark) and counters every few seconds, so a killed run resumes inside a
partition.  One partition failing marks it failed with its error; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import RowMapping

from lakeshift.control.db import ControlDBUnavailable
from lakeshift.control.records import Job
from lakeshift.control.repo_jobs import TAKEN_OVER
from lakeshift.control.repository import ControlDB, PartitionStats, Records, RunGone
from lakeshift.engine.events import (
    Event,
    EventBus,
    ListingDone,
    ObjectDone,
    ObjectStarted,
    SourceDeleted,
    Subscriber,
)
from lakeshift.engine.limiter import Pacing
from lakeshift.engine.pipeline import CopyOptions, check_reachable, run_pipeline
from lakeshift.engine.pipeline_stats import StatsCounter
from lakeshift.engine.retry import RetryPolicy, retry_observer
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import ServerRoute
from lakeshift.engine.watermark import Watermark
from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.model import Failure, PartitionSpec, Rename, RunResult, TransferStats
from lakeshift.plan.jobplan import partition_spec
from lakeshift.plan.source import SourceSpec, destination_root, source_avoiding_destination
from lakeshift.stores.base import Store, StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url

_T = TypeVar("_T")


@dataclass
class _Active:
    """A partition being copied by this run, and what of it is not yet in the DB."""

    row: RowMapping
    started: float
    counts: TransferStats = field(default_factory=TransferStats)
    failures: list[Failure] = field(default_factory=list)
    renames: list[Rename] = field(default_factory=list)
    deletions: list[SourceDeleted] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    lost: bool = False
    #: Listed from its start, never from a cursor (``PartitionMode.from_start``).
    from_start: bool = False
    #: Its finish was saved (or, lost, skipped): heartbeats leave it alone.
    ended: bool = False
    #: Counters the partition had when claimed: those of the keys before its cursor.
    base: PartitionStats = field(init=False)
    #: Counters of the keys at or before the watermark (base included).
    at_cursor: PartitionStats = field(init=False)
    #: ``at_cursor`` as last saved: a process that takes the partition over starts there.
    saved_at_cursor: PartitionStats = field(init=False)
    #: Outcome and size of each key done but not yet passed by the watermark.
    outcomes: dict[str, tuple[str, int]] = field(default_factory=dict)
    watermark: Watermark = field(init=False)
    #: Held while a save is in flight, so a heartbeat and the finish never write the same
    #: records twice.
    saving: asyncio.Lock = field(default_factory=asyncio.Lock)
    claimed: ClaimedPartition | None = None
    #: What the monitor shows of this partition in this run (its partition-run record).
    activity: _Activity = field(init=False)

    def __post_init__(self) -> None:
        r = self.row
        self.base = PartitionStats(listed=r["copied"] + r["skipped"], copied=r["copied"],
                                   skipped=r["skipped"], bytes=r["bytes"])
        self.at_cursor = replace(self.base)
        self.saved_at_cursor = replace(self.base)
        self.watermark = Watermark(r["cursor"], on_pass=self._passed)
        self.activity = _Activity(self.started)

    def counter(self) -> StatsCounter:
        # Every failure of a partition goes to the failure log: no cap on the list.
        return StatsCounter(self.counts, self.failures, self.renames, self.deletions,
                            keep=sys.maxsize)

    def track(self, event: Event) -> None:
        """Remember each key's outcome until the watermark passes it (events of a key come
        before the watermark hears it is done)."""
        self.activity.track(event)
        if isinstance(event, ObjectDone):
            if self.watermark.frozen:
                self.outcomes.clear()  # nothing passes the watermark any more in this run
            else:
                self.outcomes[event.key] = (event.outcome, event.size)

    def _passed(self, key: str) -> None:
        outcome, size = self.outcomes.pop(key, ("", 0))
        if outcome == "copied":
            self.at_cursor.copied += 1
            self.at_cursor.bytes += size
        elif outcome == "skipped":
            self.at_cursor.skipped += 1
        self.at_cursor.listed = self.at_cursor.copied + self.at_cursor.skipped

    @property
    def stats(self) -> PartitionStats:
        """The partition's counters as the control DB keeps them: each object once, over
        all the runs that worked on it."""
        c, b = self.counts, self.base
        return PartitionStats(listed=b.listed + c.copied + c.skipped + c.failed,
                              copied=b.copied + c.copied, skipped=b.skipped + c.skipped,
                              failed_objects=c.failed, bytes=b.bytes + c.copied_bytes)

    def taken_over(self) -> TransferStats:
        """What of this claim's counts is its own once another process took the partition
        over (at the cursor last saved: what lies after it the taker lists and counts): the
        keys at or before that cursor.  :func:`lakeshift.control.repo_jobs._trim_taken_over`
        trims the claim's partition-run record the same way.  Listed from its start, the
        taker counts every key again: nothing is this claim's."""
        b, c = self.base, self.counts
        kept = b if self.from_start else self.saved_at_cursor
        copied, skipped = max(kept.copied - b.copied, 0), max(kept.skipped - b.skipped, 0)
        nbytes = max(kept.bytes - b.bytes, 0)
        after = c.copied_bytes - nbytes
        return replace(c, listed=copied + skipped, copied=copied, skipped=skipped, failed=0,
                       copied_bytes=nbytes, bytes_transferred=max(c.bytes_transferred - after,
                                                                  0))

    def snapshot(self, job_id: int, run_id: int) -> tuple[str | None, PartitionStats,
                                                          PartitionStats, Records]:
        """Cursor, counters and the records not yet saved, taken together (no await in
        between, so every record of a key at or before the cursor is among them)."""
        return (self.watermark.cursor, self.stats, replace(self.at_cursor),
                Records(job_id, run_id, list(self.failures), list(self.renames),
                        list(self.deletions)))

    def saved(self, records: Records, at_cursor: PartitionStats | None = None) -> None:
        """The records (and the counters at the cursor) were written: drop them from
        memory."""
        if at_cursor is not None:
            self.saved_at_cursor = at_cursor
        del self.failures[:len(records.failures)]
        del self.renames[:len(records.renames)]
        del self.deletions[:len(records.deletions)]


@dataclass
class _Activity:
    """A partition's run as the monitor shows it: stages (monotonic seconds), objects in
    flight and their peak, retries by error class."""

    started: float
    record_id: int | None = None
    queued_s: float = 0.0
    listing_done: float | None = None
    first_started: float | None = None
    last_done: float | None = None
    in_flight: set[str] = field(default_factory=set)
    peak_in_flight: int = 0
    retries: dict[str, int] = field(default_factory=dict)

    def track(self, event: Event) -> None:
        if isinstance(event, ObjectStarted):
            self.first_started = self.first_started or time.monotonic()
            self.in_flight.add(event.key)
            self.peak_in_flight = max(self.peak_in_flight, len(self.in_flight))
        elif isinstance(event, ObjectDone):
            if event.key in self.in_flight:
                self.in_flight.discard(event.key)
                self.last_done = time.monotonic()
            if event.attempts > 1:  # the whole object was copied again (integrity, change)
                self.retries["object"] = self.retries.get("object", 0) + event.attempts - 1
        elif isinstance(event, ListingDone):
            self.listing_done = time.monotonic()

    def note_retry(self, kind: str) -> None:
        self.retries[kind] = self.retries.get(kind, 0) + 1

    def values(self, counts: TransferStats, end: float | None = None) -> dict[str, Any]:
        """The partition-run record's columns now (``end``: the partition has ended)."""
        now = end if end is not None else time.monotonic()
        transferring = 0.0
        if self.first_started is not None:
            last = self.last_done if end is not None and self.last_done else now
            transferring = max(last - self.first_started, 0.0)
        return {
            "listed": counts.listed, "copied": counts.copied, "skipped": counts.skipped,
            "failed_objects": counts.failed, "bytes_read": counts.bytes_transferred,
            "bytes_written": counts.copied_bytes,
            "listing_s": round((self.listing_done or now) - self.started, 3),
            "transferring_s": round(transferring, 3),
            "finishing_s": round(max(now - (self.last_done or now), 0.0), 3)
            if end is not None else 0.0,
            "in_flight": 0 if end is not None else len(self.in_flight),
            "peak_in_flight": self.peak_in_flight, "retries": dict(self.retries),
            "throttled": self.retries.get("throttled", 0)}


@dataclass
class ClaimedPartition:
    """What the work of one claimed partition gets: its row, the run, both stores, its
    source spec (after its cursor) and the run's shared engine parts."""

    row: RowMapping
    run_id: int
    src: Store
    dst: Store
    spec: SourceSpec
    opts: CopyOptions
    events: EventBus
    slots: SlotPool
    policy: RetryPolicy
    watermark: Watermark
    pacing: Any
    stats: Callable[[], PartitionStats]


class PartitionMode(Protocol):
    """What a run does with each claimed partition.  ``copy`` (the default) is one pipeline
    over the partition; ``sync`` (engine/sync.py) takes the partition's window."""

    #: It lists each partition from its start, never from a saved cursor (``sync``: a
    #: cursor left by a dead pass belongs to that pass's window): a partition is claimed
    #: with no cursor and no counters, and one taken over from a dead worker of the run
    #: leaves that worker's record nothing (``ControlDB.claim(from_start=True)``).
    from_start: bool

    async def run(self, part: ClaimedPartition) -> None: ...

    async def finished(self, part: ClaimedPartition | None, row: RowMapping, state: str,
                       error: str | None, stats: PartitionStats) -> None:
        """After the partition's row is written (state succeeded, failed, or pending when
        interrupted); ``part`` is None when it ended before its stores were open."""
        ...


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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


def job_deleted(job: Job) -> UsageError:
    """What a run says when its job's rows vanished under it (deleted by another process:
    ``delete-job`` refuses a live job, but an older lakeshift or a hand-written DELETE
    does not)."""
    return UsageError(f"job {job.name!r} was deleted while it ran: it stopped; what it "
                      "copied stays at the destination (plan the job again to go on)")


async def last_phase(db: ControlDB, run_id: int, result: RunResult, lease_s: float,
                     heartbeat_s: float, phase: Awaitable[None]) -> bool:
    """Run the run's last phase (sync --delete: the deletions; no partition is held then)
    with the run's heartbeat: its lease renewed, its counters saved, and a cancel asked
    meanwhile (the monitor's) obeyed: the phase stops where it is (what it did is
    recorded as it happens).  True when it was cancelled so."""
    work = asyncio.ensure_future(phase)
    try:
        while True:
            done, _ = await asyncio.wait([work], timeout=heartbeat_s)
            if done:
                work.result()
                return False
            with contextlib.suppress(LakeshiftError):
                if await asyncio.to_thread(db.heartbeat_run, run_id, lease_s,
                                           result.succeeded, result.failed,
                                           result.stats.copied,
                                           result.stats.bytes_transferred):
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                    return True
    finally:
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work


def start_job_run(db: ControlDB, job: Job, owner: str, batch_count: int, opts: CopyOptions,
                  lease_s: float, run_settings: dict[str, Any] | None = None) -> int:
    """What comes before the first claim of a run (the ADF table read, failed partitions
    pending again, dead runs and leases of this host closed), then the run's row."""
    if job.adf_table:
        sync_adf(db, job)
    db.reset_failed(job.id)
    db.expire_dead_local(job.id, socket.gethostname())
    db.close_dead_runs(job.id)
    settings = {"batch_count": batch_count, **copy_settings(opts), "lease_s": lease_s,
                "pid": os.getpid(), **(run_settings or {})}
    return db.start_run(job.id, owner, batch_count, settings, lease_s)


def copy_settings(opts: CopyOptions) -> dict[str, Any]:
    """Every CopyOptions field as JSON data (sets sorted), recorded as the run's settings:
    the monitor shows what a run was started with, a field added later included."""

    def plain(value: Any) -> Any:
        if isinstance(value, frozenset | set):
            return sorted(plain(v) for v in value)
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    return {f.name: plain(getattr(opts, f.name)) for f in fields(opts)}


def count_remaining(db: ControlDB, job: Job, result: RunResult) -> None:
    """The job's failed and unfinished partitions after the run, into ``result``."""
    totals = db.partition_totals(job.id)  # one aggregate query, however many there are
    result.remaining_failed = totals.get("failed", 0)
    result.remaining_pending = totals.get("pending", 0) + totals.get("running", 0)


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
    checked: set[str] = set()
    active: dict[int, _Active] = {}
    stop = asyncio.Event()
    cancelled = False  # the run was asked to stop (lakeshift_runs.cancel_requested)
    gone = False  # the run's row vanished: its job was deleted under it

    async def store_for(url: str, role: str, destination: str | None = None) -> Store:
        """The store at ``url``, checked once; a source's walk never enters its local
        ``destination`` (plan/source.py ``source_avoiding_destination``)."""
        key = url if destination is None else f"{url}\n{destination}"
        if key not in stores:
            config = StoreConfig(parse_url(url), store_options)
            if destination is not None:
                config = source_avoiding_destination(
                    config, StoreConfig(parse_url(destination), store_options))
            stores[key] = open_store(config)
        store = stores[key]
        if key not in checked:
            fn = store.check_source if role == "source" else store.prepare_destination
            await check_reachable(fn, role, policy)
            checked.add(key)
        return store

    async def run_partition(a: _Active) -> None:
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
                         "(lakeshift failures --job)")
        except asyncio.CancelledError:
            state = "pending"  # interrupted: claimable again, resumes from the cursor
            raise
        except LakeshiftError as e:
            error = str(e)
        except BaseExceptionGroup as eg:
            error = "; ".join(str(e) for e in eg.exceptions)[:2000]
        finally:
            await _finish(a, state, error)

    async def _finish(a: _Active, state: str, error: str | None) -> None:
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
                a = _Active(row, time.monotonic(), from_start=from_start)
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
                await call(db.expire_dead_local, job.id, socket.gethostname())
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


async def patiently(fn: Callable[..., _T], patience_s: float, *args: Any) -> _T:
    """``fn(*args)`` in a thread, tried again with backoff (0.5 s doubling to 8 s) while
    the control DB is unreachable, for up to ``patience_s`` (at least 30 s): a restarted
    server or a cut connection costs a pause, not the run.  pool_pre_ping replaces the
    pool's dead connections when the server is back."""
    deadline = time.monotonic() + max(30.0, patience_s)
    delay = 0.5
    while True:
        try:
            return await asyncio.to_thread(fn, *args)
        except ControlDBUnavailable:
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)


def _label(row: Any) -> str:
    label = f"#{row['seq']} {row['source']}{row['prefix']}"
    if row["range_start"] or row["range_end"]:
        label += f" [{row['range_start'] or ''}, {row['range_end'] or '…'})"
    return label


def sync_adf(db: ControlDB, job: Job) -> int:
    """Bring the job in line with the ADF control table: every PartitionPrefix with
    SuccessOrFailure = 0 is a pending partition (a new row adds one; a row reset to 0
    re-copies that partition from the start)."""
    assert job.adf_table is not None
    pending = db.adf_pending_prefixes(job.adf_table)
    rows = db.partitions(job.id)
    by_prefix = {r["adf_prefix"]: r for r in rows if r["adf_prefix"] is not None}
    source = str(job.options.get("adf_source", ""))
    new = [PartitionSpec(source, p, "", job.destination, adf_prefix=p)
           for p in pending if p not in by_prefix]
    db.add_partitions(job.id, new)
    redo = [r["id"] for p, r in by_prefix.items() if p in pending and r["state"] == "succeeded"]
    db.restart_partitions(redo)
    return len(new) + len(redo)
