"""A run's life around its claim loop (engine/jobrunner.py): what comes before the first
claim (:func:`start_job_run`: the ADF table read by :func:`sync_adf`, failed partitions
pending again, dead runs and leases closed, the run's row and settings), the last phase
(:func:`last_phase`, sync --delete's deletions, under the run's heartbeat), what the run
counts at its end (:func:`count_remaining`), the lease owner's name (:func:`owner_id`), the
stores a run's partitions share (:func:`partition_store`) and the patience every control-DB
call of a run has (:func:`patiently`).  A fleet's driver
(scale/driver.py) runs a run with these same parts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import fields
from typing import Any, TypeVar

from lakeshift.control.db import ControlDBUnavailable
from lakeshift.control.records import Job
from lakeshift.control.repository import ControlDB
from lakeshift.engine.pipeline import CopyOptions
from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.model import PartitionSpec, RunResult
from lakeshift.plan.source import source_avoiding_destination
from lakeshift.stores.base import Store, StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url

_T = TypeVar("_T")


def owner_id() -> str:
    """This process's name as a lease owner: host, pid and a random part (a restarted pid
    is another owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def partition_store(stores: dict[str, Store], url: str, store_options: StoreOptions,
                    destination: str | None = None,
                    opener: Callable[[StoreConfig], Store] = open_store) -> Store:
    """The store at a partition's ``url``, opened once per run (``stores``, the run's: it
    closes them).  Given its ``destination``, a source told it, as the copy's is (a local
    source's walk and look-ups never enter a local destination: plan/source.py
    ``source_avoiding_destination``), held apart from the same URL as a destination.
    The claim loop's partitions and sync --delete's deletions open theirs here;
    ``opener`` opens one (the claim loop passes ``jobrunner.open_store``, which tests and
    bench/sync_scale.py patch)."""
    key = url if destination is None else f"{url}\n{destination}"
    if key not in stores:
        config = StoreConfig(parse_url(url), store_options)
        if destination is not None:
            config = source_avoiding_destination(
                config, StoreConfig(parse_url(destination), store_options))
        stores[key] = opener(config)
    return stores[key]


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
