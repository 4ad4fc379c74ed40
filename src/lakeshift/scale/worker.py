"""What runs on a Dask worker: the claim loop of one run, in that worker's process.

A :class:`WorkerAssignment` is all a worker gets, pickled: plain data (the job's name,
the run's id, copy options, store options) and the control DB's URL.  Store clients are
built in the worker from the store configs, with the credentials of the worker's
environment (AWS_*, AZURE_*, a managed identity…), exactly as a ``lakeshift run`` process
builds them.  Dask is imported only for the fleet-wide throttle signal (scale/throttle.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lakeshift.engine.events import EventBus
from lakeshift.engine.pipeline import CopyOptions
from lakeshift.model import TransferStats
from lakeshift.stores.base import StoreOptions


@dataclass(frozen=True)
class SyncAssignment:
    """A sync pass's part of an assignment (engine/sync.py ``SyncMode``'s inputs)."""

    settings: Any  # engine.sync.SyncSettings
    historical_start: datetime | None
    historical_ids: frozenset[int]


@dataclass(frozen=True)
class WorkerAssignment:
    """One worker task of a run.  Its repr (which Dask may log) shows the DB URL without
    its password."""

    db_url: str = field(repr=False)
    db_shown: str
    job: str
    run_id: int
    batch_count: int
    #: This worker's copy options: its share of the fleet's request and bandwidth caps.
    opts: CopyOptions
    store_options: StoreOptions
    lease_s: float
    heartbeat_s: float
    sync: SyncAssignment | None = None
    #: The driver made the run's throttle variable: back off when another worker is
    #: throttled, and tell the others when this one is (scale/throttle.py).
    fleet_throttle: bool = False


@dataclass
class WorkerReport:
    """What one worker task did (summed by the driver)."""

    owner: str
    host: str
    pid: int
    succeeded: int = 0
    failed: int = 0
    stats: TransferStats = field(default_factory=TransferStats)
    errors: list[tuple[str, str]] = field(default_factory=list)
    stopped: bool = False
    #: Sync passes: each partition's window outcome (engine.sync.WindowOutcome), and the
    #: destination keys deleted.
    outcomes: list[Any] = field(default_factory=list)
    deleted_keys: list[str] = field(default_factory=list)
    #: Peak resident set size of the worker process, in bytes (Linux: ru_maxrss).
    peak_rss: int = 0
    #: A --delete pass: the windows waiting for the deletions, which the driver makes once
    #: every partition is listed (engine.sync.SyncMode.deferred_windows), and the
    #: destination objects this worker listed (for a percentage --max-delete).
    deferred: list[Any] = field(default_factory=list)
    destination_objects: int = 0
    #: The most --delete candidates this worker held in memory at once.
    peak_candidates: int = 0
    #: Throttled answers this worker met, throttling it heard of from the others, and
    #: the lowest in-flight limit any of its endpoints fell to.
    throttles: int = 0
    throttles_heard: int = 0
    lowest_limit: int = 0


def run_worker(a: WorkerAssignment) -> WorkerReport:
    """Claim and copy partitions of run ``a.run_id`` until none is left (or the run is
    no longer running); the Dask task's body."""
    from lakeshift.control.repository import ControlDB
    from lakeshift.engine.jobrunner import PartitionMode, claim_partitions, owner_id
    from lakeshift.engine.pipeline_stats import StatsCounter
    from lakeshift.model import RunResult

    db = ControlDB(a.db_url)
    try:
        job = db.job(a.job)
        owner = owner_id()
        result = RunResult(a.run_id, stats=TransferStats(started=time.monotonic()))
        mode: PartitionMode | None = None
        if a.sync is not None:
            from lakeshift.engine.sync import SyncMode

            sync_mode = SyncMode(db, job, a.sync.settings, a.sync.historical_start,
                                 set(a.sync.historical_ids))
            mode = sync_mode
        relay = None
        if a.fleet_throttle:
            from lakeshift.scale.throttle import FleetThrottle

            relay = FleetThrottle.for_run(a.run_id, owner)
        # Its Throttled events: counted in the worker's stats (as claim_partitions' own
        # pacing would) and told to the fleet.
        pacing = a.opts.pacing(EventBus([StatsCounter(result.stats, []),
                                         *([relay.throttled_here] if relay else [])]))

        async def claim() -> bool:
            if relay is not None:
                relay.start(pacing, asyncio.get_running_loop())
            try:
                return await claim_partitions(
                    db, job, a.run_id, owner, result, a.batch_count, a.opts, a.store_options,
                    lease_s=a.lease_s, heartbeat_s=a.heartbeat_s, mode=mode, worker=True,
                    pacing=pacing)
            finally:
                if relay is not None:
                    await asyncio.to_thread(relay.stop)

        stopped = asyncio.run(claim())
        report = WorkerReport(owner, socket.gethostname(), os.getpid(), result.succeeded,
                              result.failed, result.stats, result.errors, stopped,
                              peak_rss=_peak_rss())
        limiters = pacing.endpoints.values()
        report.throttles = sum(x.throttles for x in limiters)
        report.throttles_heard = sum(x.throttles_elsewhere for x in limiters)
        report.lowest_limit = min((x.lowest for x in limiters), default=a.opts.concurrency)
        if a.sync is not None:
            report.outcomes = sync_mode.outcomes
            report.deleted_keys = sync_mode.deleted_keys
            report.deferred, report.destination_objects = sync_mode.deferred_windows()
            report.peak_candidates = sync_mode.peak_batch
        return report
    finally:
        db.close()


def _peak_rss() -> int:
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
