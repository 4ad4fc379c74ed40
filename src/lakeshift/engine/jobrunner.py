"""`lakeshift run`: claim partitions from the control DB, N at a time, each isolated.

Every partition is one pipeline run (engine/pipeline.py) over its prefix or key range,
listing after its cursor.  A heartbeat renews the leases and saves each partition's cursor
(its low watermark) and counters every few seconds, so a killed run resumes inside a
partition.  One partition failing marks it failed with its error; the others go on.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy.engine import RowMapping

from lakeshift.control.records import Job, PartitionSpec
from lakeshift.control.repository import ControlDB, PartitionStats, Records
from lakeshift.engine.events import (
    Event,
    EventBus,
    ObjectDone,
    SourceDeleted,
    Subscriber,
)
from lakeshift.engine.pipeline import (
    CopyOptions,
    Failure,
    Rename,
    StatsCounter,
    check_reachable,
    run_pipeline,
)
from lakeshift.engine.retry import RetryPolicy
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.watermark import Watermark
from lakeshift.errors import LakeshiftError
from lakeshift.model import RunResult, TransferStats
from lakeshift.plan.source import SourceSpec, destination_root
from lakeshift.stores.base import Store, StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url


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
    #: Its finish was saved (or, lost, skipped): heartbeats leave it alone.
    ended: bool = False
    #: Counters the partition had when claimed: those of the keys before its cursor.
    base: PartitionStats = field(init=False)
    #: Counters of the keys at or before the watermark (base included).
    at_cursor: PartitionStats = field(init=False)
    #: Outcome and size of each key done but not yet passed by the watermark.
    outcomes: dict[str, tuple[str, int]] = field(default_factory=dict)
    watermark: Watermark = field(init=False)
    #: Held while a save is in flight, so a heartbeat and the finish never write the same
    #: records twice.
    saving: asyncio.Lock = field(default_factory=asyncio.Lock)
    claimed: ClaimedPartition | None = None

    def __post_init__(self) -> None:
        r = self.row
        self.base = PartitionStats(listed=r["copied"] + r["skipped"], copied=r["copied"],
                                   skipped=r["skipped"], bytes=r["bytes"])
        self.at_cursor = replace(self.base)
        self.watermark = Watermark(r["cursor"], on_pass=self._passed)

    def counter(self) -> StatsCounter:
        # Every failure of a partition goes to the failure log: no cap on the list.
        return StatsCounter(self.counts, self.failures, self.renames, self.deletions,
                            keep=sys.maxsize)

    def track(self, event: Event) -> None:
        """Remember each key's outcome until the watermark passes it (events of a key come
        before the watermark hears it is done)."""
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

    def snapshot(self, job_id: int, run_id: int) -> tuple[str | None, PartitionStats,
                                                          PartitionStats, Records]:
        """Cursor, counters and the records not yet saved, taken together (no await in
        between, so every record of a key at or before the cursor is among them)."""
        return (self.watermark.cursor, self.stats, replace(self.at_cursor),
                Records(job_id, run_id, list(self.failures), list(self.renames),
                        list(self.deletions)))

    def saved(self, records: Records) -> None:
        """The records were written: drop them from memory."""
        del self.failures[:len(records.failures)]
        del self.renames[:len(records.renames)]
        del self.deletions[:len(records.deletions)]


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

    async def run(self, part: ClaimedPartition) -> None: ...

    async def finished(self, part: ClaimedPartition | None, row: RowMapping, state: str,
                       error: str | None, stats: PartitionStats) -> None:
        """After the partition's row is written (state succeeded, failed, or pending when
        interrupted); ``part`` is None when it ended before its stores were open."""
        ...


def job_copy_options(job: Job, concurrency: int, block_size: int, adaptive: bool = True,
                     max_rps: float | None = None,
                     max_bandwidth: float | None = None,
                     single_put_max: int = 64 * 1024 * 1024) -> CopyOptions:
    """The job's saved copy options with this run's concurrency, block sizes and pacing."""
    o = job.options
    opts = CopyOptions(concurrency=concurrency, block_size=block_size,
                       single_put_max=single_put_max, adaptive=adaptive,
                       max_requests_per_second=max_rps, max_bandwidth=max_bandwidth,
                       overwrite=o.get("overwrite", "if-different"),
                       include=tuple(o.get("include", ())), exclude=tuple(o.get("exclude", ())),
                       folder_markers=o.get("folder_markers", "skip"),
                       skip_errors=frozenset(o.get("skip_errors", ())),
                       delete_source=bool(o.get("delete_source", False)),
                       invalid_names=o.get("invalid_names", "fail"))
    opts.validate()
    return opts


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def run_job(db: ControlDB, job: Job, batch_count: int, opts: CopyOptions,
                  store_options: StoreOptions, subscribers: list[Subscriber] | None = None,
                  lease_s: float = 60.0, heartbeat_s: float = 5.0,
                  on_partition: Callable[[RowMapping, str, str | None], None] | None = None,
                  mode: PartitionMode | None = None, run_settings: dict[str, Any] | None = None
                  ) -> RunResult:
    owner = owner_id()
    call = asyncio.to_thread
    if job.adf_table:
        await call(sync_adf, db, job)
    await call(db.reset_failed, job.id)
    await call(db.expire_dead_local, job.id, socket.gethostname())
    await call(db.close_dead_runs, job.id)
    settings = {"batch_count": batch_count, "concurrency": opts.concurrency,
                "block_size": opts.block_size, "overwrite": opts.overwrite,
                "include": list(opts.include), "exclude": list(opts.exclude),
                "lease_s": lease_s, "pid": os.getpid(), **(run_settings or {})}
    run_id = await call(db.start_run, job.id, owner, batch_count, settings, lease_s)
    result = RunResult(run_id, stats=TransferStats(started=time.monotonic()))
    totals = EventBus([StatsCounter(result.stats, []), *(subscribers or [])])
    slots = SlotPool(opts.concurrency)
    pacing = opts.pacing(totals)
    per_partition = CopyOptions(**{**opts.__dict__,
                                   "concurrency": max(1, -(-opts.concurrency // batch_count))})
    policy = RetryPolicy(attempts=opts.retries)
    stores: dict[str, Store] = {}
    checked: set[str] = set()
    active: dict[int, _Active] = {}

    async def store_for(url: str, role: str) -> Store:
        if url not in stores:
            stores[url] = open_store(StoreConfig(parse_url(url), store_options))
        store = stores[url]
        if url not in checked:
            fn = store.check_source if role == "source" else store.prepare_destination
            await check_reachable(fn, role, policy)
            checked.add(url)
        return store

    async def run_partition(a: _Active) -> None:
        row = a.row
        state, error = "failed", None
        try:
            src = await store_for(row["source"], "source")
            dst = await store_for(row["destination"], "destination")
            spec = SourceSpec(row["prefix"], row["rel_base"], start_after=row["cursor"],
                              range_start=row["range_start"], range_end=row["range_end"])
            bus = EventBus([a.track, a.counter(), totals.emit])
            if mode is None:
                await run_pipeline(src, dst, spec, destination_root(dst), per_partition, bus,
                                   slots, policy, a.watermark, pacing)
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
                    await call(db.finish, row["id"], owner, state, cursor, stats, error,
                               duration, at_cursor, records)
                    a.saved(records)
            finally:
                a.ended = True
        if (not a.lost and state == "succeeded" and row["adf_prefix"] is not None
                and job.adf_table):
            await call(db.adf_mark_success, job.adf_table, row["adf_prefix"])
        if not a.lost and mode is not None:
            await mode.finished(a.claimed, row, state, error, a.stats)
        if state == "succeeded":
            result.succeeded += 1
        elif state == "failed":
            result.failed += 1
            result.errors.append((_label(row), error or "failed"))
        if on_partition is not None:
            on_partition(row, state, error)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(heartbeat_s)
            for a in list(active.values()):
                if a.ended:
                    continue
                async with a.saving:
                    if a.ended:
                        continue  # its finish wrote the rest
                    cursor, stats, at_cursor, records = a.snapshot(job.id, run_id)
                    try:
                        ok = await call(db.heartbeat, a.row["id"], owner, lease_s, cursor,
                                        stats, at_cursor, records)
                    except LakeshiftError:
                        # The control DB is unreachable for now: keep copying and try again
                        # at the next beat (the worst case is a lease that expires meanwhile).
                        continue
                    if ok:
                        a.saved(records)
                if not ok and a.task is not None and not a.task.done():
                    a.lost = True  # another process took it over: stop, write nothing
                    a.task.cancel()
            try:
                await call(db.heartbeat_run, run_id, lease_s, result.succeeded, result.failed,
                           result.stats.copied, result.stats.bytes_transferred)
            except LakeshiftError:
                pass  # as above: the next beat tries again

    hb = asyncio.create_task(heartbeat())
    state = "interrupted"
    try:
        while True:
            free = batch_count - len(active)
            rows = await call(db.claim, job.id, owner, free, lease_s) if free else []
            for row in rows:
                a = _Active(row, time.monotonic())
                a.task = asyncio.create_task(run_partition(a))
                active[row["id"]] = a
            if not active:
                break
            done, _ = await asyncio.wait([a.task for a in active.values() if a.task],
                                         return_when=asyncio.FIRST_COMPLETED)
            for pid in [k for k, a in active.items() if a.task in done]:
                a = active.pop(pid)
                if a.task is not None and not a.task.cancelled():
                    a.task.result()
        state = "failed" if result.failed else "succeeded"
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
        await call(db.finish_run, run_id, state, result.succeeded, result.failed,
                   result.stats.copied, result.stats.bytes_transferred)
    rows_now = await call(db.partitions, job.id)
    result.remaining_failed = sum(1 for r in rows_now if r["state"] == "failed")
    result.remaining_pending = sum(1 for r in rows_now if r["state"] in ("pending", "running"))
    return result


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
