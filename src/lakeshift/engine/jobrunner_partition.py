"""A partition claimed by a run (engine/jobrunner.py), as the run holds it: what its work
gets (:class:`ClaimedPartition`), what a mode does with it (:class:`PartitionMode`: ``copy``
is one pipeline, ``sync`` its window), and what of it is not yet in the control DB
(:class:`ActivePartition`: counters, the outcomes of keys the watermark has not passed yet,
records to save; :class:`PartitionActivity`: what the monitor shows of it).  Every event
of the partition's objects passes through ``ActivePartition.track``: keep it cheap."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy.engine import RowMapping

from lakeshift.control.repository import PartitionStats, Records
from lakeshift.engine.events import (
    Event,
    EventBus,
    ListingDone,
    ObjectDone,
    ObjectStarted,
    SourceDeleted,
)
from lakeshift.engine.pipeline import CopyOptions
from lakeshift.engine.pipeline_stats import StatsCounter
from lakeshift.engine.retry import RetryPolicy
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.watermark import Watermark
from lakeshift.model import Failure, Rename, TransferStats
from lakeshift.plan.source import SourceSpec
from lakeshift.stores.base import Store


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


@dataclass
class ActivePartition:
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
    activity: PartitionActivity = field(init=False)

    def __post_init__(self) -> None:
        r = self.row
        self.base = PartitionStats(listed=r["copied"] + r["skipped"], copied=r["copied"],
                                   skipped=r["skipped"], bytes=r["bytes"])
        self.at_cursor = replace(self.base)
        self.saved_at_cursor = replace(self.base)
        self.watermark = Watermark(r["cursor"], on_pass=self._passed)
        self.activity = PartitionActivity(self.started)

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
class PartitionActivity:
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
