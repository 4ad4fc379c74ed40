"""The public API: one function per command, with every option the command has under the
same name (``lakeshift copy --max-bandwidth`` ↔ ``lakeshift.copy(max_bandwidth=...)``), and
typed results.  The CLI is a face over these functions; so will be the web monitor and
the Dask workers.  See docs/api.md.

Conventions shared by every function:

- Sizes (``block_size``, ``single_put_max``, ``max_bandwidth``) are bytes as an ``int`` or a
  string such as ``"8MiB"``; repeatable flags (``include``, ``prefix``) are sequences;
  ``skip_errors`` is ``"missing,forbidden"`` or a sequence of kinds.
- How to reach the stores (``--s3-endpoint`` … ``--allow-http``) is one ``store_options``
  argument, a :class:`StoreOptions` whose fields carry the flags' names.
- A user mistake raises :class:`UsageError`, bad credentials :class:`AuthError` (the tree in
  ``lakeshift.errors``); objects that fail are counted in the result, not raised.

Nothing here imports SQLAlchemy at module level: ``copy`` and ``check`` never need it.
"""

from __future__ import annotations

import asyncio
import contextvars
import csv
import dataclasses
import functools
import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TextIO, TypeVar

from lakeshift import model
from lakeshift.control import DEFAULT_DB, fold_state_totals
from lakeshift.csv_cells import csv_cell as csv_cell  # re-exported: the web monitor writes CSV
from lakeshift.engine.copy_options import (
    bandwidth_arg,
    copy_options,
    identity_pairs,
    job_copy_options,
    skip_error_kinds,
)
from lakeshift.engine.events import EventBus, Subscriber
from lakeshift.engine.pipeline import copy_async as _copy_pair
from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.model import (
    CopyResult,
    Failure,
    Rename,
    RunResult,
    SourceDeleted,
    TransferStats,
)
from lakeshift.plan.source import destination_config, source_config
from lakeshift.sizes import size_arg
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.urls import parse_url

if TYPE_CHECKING:
    from lakeshift.control.records import Job
    from lakeshift.control.repository import ControlDB
    from lakeshift.engine.verify import Pair
    from lakeshift.model import (
        CheckLine,
        CheckResult,
        FailurePage,
        FailuresResult,
        JobMetrics,
        JobStatus,
        PartitionRunStatus,
        PartitionStatus,
        PlanResult,
        RunDetail,
        RunStatus,
        ScanResult,
        StateTotals,
        StatusResult,
        SyncResult,
        SyncWindow,
        TuneResult,
        VerifyResult,
    )
    from lakeshift.plan.jobconfig import JobConfig

#: The other commands' records (lakeshift.model's, defined in lakeshift.reports): bound here
#: by ``_records()`` when a function that builds one runs, or on first access, so that a
#: copy does not build their ~27 dataclasses at start-up.  Annotations name them
#: ``model.X``: typing.get_type_hints resolves that through lakeshift.model (which loads
#: them), where a bare name not bound yet raised NameError.
_RECORDS = (
    "CheckLine", "CheckResult", "FailurePage", "FailuresResult", "JobMetrics", "JobStatus",
    "PartitionRunStatus", "PartitionStatus", "PlanResult", "RunDetail", "RunStatus",
    "ScanResult", "StateTotals", "StatusResult", "SyncResult", "SyncWindow", "TuneResult",
    "VerifyResult",
)


def _records() -> None:
    """Bind the records of ``_RECORDS`` in this module (its functions build them, and
    ``typing.get_type_hints`` resolves their annotations here)."""
    if "JobStatus" not in globals():
        globals().update({name: getattr(model, name) for name in _RECORDS})


def __getattr__(name: str) -> Any:
    if name in _RECORDS:
        _records()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

MiB = 1024 * 1024
_STATES = ("pending", "running", "succeeded", "failed")
P = ParamSpec("P")
T = TypeVar("T")


def _blocking(async_fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The blocking twin of ``NAME_async``: runs it in a new event loop (``asyncio.run``).
    Called from a running loop (a web handler, a notebook, a Dask worker's coroutine) it
    cannot block that loop: it raises one UsageError naming ``NAME_async`` instead."""
    name = async_fn.__name__.removesuffix("_async")

    @functools.wraps(async_fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(async_fn(*args, **kwargs))
        raise UsageError(f"lakeshift.{name}() was called inside a running event loop, which "
                         f"it would block: use `await lakeshift.{name}_async(...)` there")

    call.__name__ = call.__qualname__ = name
    call.__doc__ = (f"Blocking form of :func:`{name}_async` (same arguments, same result); "
                    f"not for use inside a running event loop.\n\n{async_fn.__doc__ or ''}")
    return call


#: Set by reading_only(): the control DB is opened read-only in this context.
_READ_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("lakeshift_read_only",
                                                                  default=False)


@contextmanager
def reading_only() -> Iterator[None]:
    """Inside ``with lakeshift.reading_only():`` the API only reads control DBs: no table is
    created, no migration runs (a DB of an older schema raises
    :class:`~lakeshift.control.db.SchemaOutdated`, a UsageError naming the command that
    upgrades it), SQLite takes no write lock, and a call that would write fails.  The
    monitor serves every page in it.  A context variable: it follows ``asyncio`` tasks and
    ``asyncio.to_thread``."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def _control(db: str, create: bool = False) -> ControlDB:
    # Imported here: SQLAlchemy costs ~0.13 s at start-up, and `copy` never needs it.
    from lakeshift.control.repository import ControlDB

    if _READ_ONLY.get():
        return ControlDB(db, read_only=True)
    return ControlDB(db, create=create)


@asynccontextmanager
async def _opened(db: str, create: bool = False) -> AsyncIterator[ControlDB]:
    """The control DB, opened and closed in a worker thread (the event loop stays free)."""
    control = await asyncio.to_thread(_control, db, create)
    try:
        yield control
    finally:
        await asyncio.to_thread(control.close)


def _as_utc(value: datetime | None) -> datetime | None:
    from lakeshift.control.records import as_utc

    return as_utc(value)


# -- copy --------------------------------------------------------------------------------


async def _check_proof_log(proof_log: str | Path) -> None:
    """What opening ``--proof-log`` would refuse, refused now (nothing created)."""
    from lakeshift.engine.proof_log import ProofLog

    await asyncio.to_thread(ProofLog.check, proof_log)


def _refuse_proof_log_on_dask(proof_log: str | Path | None, dask: str | None) -> None:
    if proof_log is not None and dask is not None:
        raise UsageError("--proof-log cannot go with --dask: the workers copy in their own "
                         "processes and their objects' events do not reach this one, so no "
                         "row could be written as its object finishes; leave out --dask for "
                         "a proof log, or prove the copies afterwards with `lakeshift verify "
                         "SRC DST --report R --list-verified` (a row per object)")


@asynccontextmanager
async def _proofs(proof_log: str | Path | None, subscribers: list[Subscriber] | None
                  ) -> AsyncIterator[list[Subscriber] | None]:
    """The subscribers, with ``--proof-log``'s writer among them while the command copies
    (opened off the loop; closed once its queued rows are written).  A command that
    stops leaves a log it created without a row nowhere.  A row that cannot be written
    stops the command (cancelled: a run's partition that met it fails with the log's
    error, the others go back to pending at their cursors, as after Ctrl-C), which then
    raises the log's UsageError."""
    if proof_log is None:
        yield subscribers
        return
    from lakeshift.engine.proof_log import ProofLog

    log = await asyncio.to_thread(ProofLog.open, proof_log)
    task = asyncio.current_task()
    if task is not None:
        log.on_failure = task.cancel
    try:
        yield [*(subscribers or []), log]
    except BaseException:
        log.close(discard=True)  # the rows queued are written: their objects were copied
        if log.on_failure is None and task is not None:  # it cancelled the command
            task.uncancel()
            raise log.failure() from None
        raise
    if log.on_failure is None and task is not None:  # cancelled, and the cancel was taken
        task.uncancel()
    await asyncio.to_thread(log.close)


async def copy_async(source: str, destination: str, *, concurrency: int = 32,
                     block_size: int | str = 8 * MiB, single_put_max: int | str | None = None,
                     overwrite: str = "if-different", include: Sequence[str] = (),
                     exclude: Sequence[str] = (), dry_run: bool = False,
                     folder_markers: str = "skip", skip_errors: str | Iterable[str] = (),
                     invalid_names: str = "fail",
                     max_requests_per_second: float | None = None,
                     max_bandwidth: int | str | None = None, adaptive: bool = True,
                     delete_source_after_verify: bool = False,
                     empty_dirs: bool | None = None, preserve: str | Iterable[str] = (),
                     map_identities: str | Path | None = None, copy_mode: str = "auto",
                     proof_log: str | Path | None = None,
                     store_options: StoreOptions | None = None,
                     subscribers: list[Subscriber] | None = None) -> CopyResult:
    """Copy what ``source`` names into ``destination`` (``lakeshift copy``).

    Returns a :class:`CopyResult`; object failures are in ``result.failures`` (and
    ``result.exit_code`` is 1), errors that stop the run raise a ``LakeshiftError``.
    ``subscribers`` receive the engine's events (progress).  ``copy_mode`` is ``auto`` by
    default: server-side copies where the stores allow, streaming once one fails.
    ``proof_log`` (a CSV file's path) gets one row per object copied, appended as each
    finishes: when, source key, destination key, size, proof, attempts (README "Proofs";
    nothing in a dry run).  A path that cannot be written raises a UsageError before
    anything is copied.
    """
    pairs = await asyncio.to_thread(identity_pairs, map_identities)  # a file: off the loop
    opts = copy_options(concurrency=concurrency, block_size=block_size,
                        single_put_max=single_put_max, overwrite=overwrite, include=include,
                        exclude=exclude, dry_run=dry_run, folder_markers=folder_markers,
                        skip_errors=skip_errors, invalid_names=invalid_names,
                        adaptive=adaptive, max_requests_per_second=max_requests_per_second,
                        max_bandwidth=max_bandwidth, delete_source=delete_source_after_verify,
                        empty_dirs=empty_dirs, preserve=preserve,
                        map_identities=pairs, copy_mode=copy_mode)
    src = source_config(source, store_options)
    dst = destination_config(destination, store_options)
    if dry_run and proof_log is not None:  # a dry run writes no log, but checks the path
        await _check_proof_log(proof_log)
        proof_log = None
    async with _proofs(proof_log, subscribers) as subscribers:
        result = await _copy_pair(src, dst, opts, subscribers)
    result.source, result.destination = src.url.display(), dst.url.display()
    return result


copy = _blocking(copy_async)


# -- plan, run ---------------------------------------------------------------------------


async def plan_async(sources: str | Sequence[str] = (), destination: str | None = None, *,
                     job: str, db: str = DEFAULT_DB, prefix: Sequence[str] = (),
                     partitions_file: str | Path | None = None, partition_by: str = "none",
                     target_objects: int = 100_000, adf_control_table: str | None = None,
                     show: bool = False, include: Sequence[str] = (),
                     exclude: Sequence[str] = (), overwrite: str = "if-different",
                     folder_markers: str = "skip", skip_errors: str | Iterable[str] = (),
                     invalid_names: str = "fail", delete_source_after_verify: bool = False,
                     replan: bool = False, force: bool = False,
                     empty_dirs: bool | None = None, preserve: str | Iterable[str] = (),
                     map_identities: str | Path | None = None, copy_mode: str = "stream",
                     store_options: StoreOptions | None = None,
                     subscribers: list[Subscriber] | None = None,
                     dask: str | None = None, offset: int = 0,
                     limit: int | None = None, all_partitions: bool = False) -> model.PlanResult:
    """Write a job and its partitions to the control DB (``lakeshift plan``); nothing is
    copied yet.  With ``show`` and no sources, read the existing job instead.  The
    result's partition table is ``limit`` partitions from ``offset`` (all when None;
    ``all_partitions``: every one, ``offset`` and ``limit`` left out); ``partitions`` and
    ``key_range_partitions`` count them all.

    ``replan`` plans a job that exists again: with sources, the old job is replaced by the
    new plan once the new one has been validated and listed; without, its partitions are
    reset (:func:`reset_job`).  ``force``: even while a live process runs the job.
    ``subscribers`` hear the listing that ``partition_by="auto"`` makes (``Listed`` per
    page, then ``ListingDone``).  ``dask`` (``tcp://HOST:8786`` or ``local:N``): that
    listing is split across the cluster's workers (docs/dask.md)."""
    _records()
    from lakeshift.plan.jobplan import create_plan, read_partitions_file

    if not job:
        raise UsageError("--job NAME is required")
    _page_args(offset, limit)
    if all_partitions and (offset or limit is not None):
        raise UsageError("--all shows every partition: leave out --offset and --limit (or "
                         "leave out --all to page)")
    srcs = [sources] if isinstance(sources, str) else list(sources)
    if replan and not srcs and destination is None:
        await reset_job_async(job, db=db, force=force)
        return await plan_async(job=job, db=db, show=True, offset=offset, limit=limit)
    if show and not srcs and destination is None:
        async with _opened(db) as control:
            j = await asyncio.to_thread(control.job, job)
            return PlanResult(control.shown, await asyncio.to_thread(
                _job_status, control, j, True, offset, limit), created=False)
    if not srcs or destination is None:
        raise UsageError("plan needs SRC and DST (lakeshift plan SRC [SRC…] DST --job NAME)")
    prefixes = list(prefix)
    if partitions_file is not None:
        if prefixes:
            raise UsageError("use --prefix or --partitions-file, not both")
        prefixes = await asyncio.to_thread(read_partitions_file, Path(partitions_file))
    if dask is not None and partition_by != "auto":
        raise UsageError("--dask splits the listing of an automatic plan: add "
                         "--partition-by auto (the other plans list nothing)")
    async with _planning_db(db) as control, AsyncExitStack() as stack:
        auto = None
        if dask is not None:
            from lakeshift.scale.cluster import ClusterSpec
            from lakeshift.scale.planner import dask_partitioner

            auto = await stack.enter_async_context(dask_partitioner(ClusterSpec.parse(dask)))
        j = await create_plan(control, job, srcs, destination, store_options or StoreOptions(),
                              prefixes, partition_by, target_objects, adf_control_table,
                              list(include), list(exclude), overwrite, folder_markers,
                              sorted(skip_error_kinds(skip_errors)), invalid_names,
                              delete_source_after_verify, replace=replan, force=force,
                              empty_dirs=empty_dirs, preserve=preserve,
                              map_identities=map_identities, events=EventBus(subscribers),
                              copy_mode=copy_mode, auto=auto)
        return PlanResult(control.shown, await asyncio.to_thread(
            _job_status, control, j, True, offset, limit))


plan = _blocking(plan_async)


@asynccontextmanager
async def _planning_db(db: str) -> AsyncIterator[ControlDB]:
    """The control DB to write a job in, created if missing.  The job is written in one
    transaction, last: a plan that fails before it leaves no job, and no DB file that was
    created only to hold it."""
    new_file = _new_sqlite_file(db)
    control: ControlDB | None = None
    try:
        control = await asyncio.to_thread(_control, db, True)
        yield control
    except BaseException:
        if control is not None:
            await asyncio.to_thread(control.close)
            control = None
        _remove_sqlite_file(new_file)
        raise
    finally:
        if control is not None:
            await asyncio.to_thread(control.close)


def _new_sqlite_file(db: str) -> Path | None:
    """The SQLite file ``db`` names when it does not exist yet (else None)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db)
    except ArgumentError:
        return None  # ControlDB says what is wrong with it
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    return None if path.exists() else path


async def reset_job_async(job: str, *, db: str = DEFAULT_DB, force: bool = False) -> int:
    """Plan job ``job`` again from the start (``lakeshift plan --job J --replan``): every
    partition pending with no cursor, its failure records dropped; runs stay as history.
    Refused while a live process runs the job, unless ``force``.  Returns the number of
    partitions."""
    async with _opened(db) as control:
        return await asyncio.to_thread(control.reset_job, job, force)


reset_job = _blocking(reset_job_async)


async def delete_job_async(job: str, *, db: str = DEFAULT_DB) -> None:
    """Delete job ``job`` and everything recorded about it (``lakeshift delete-job J``);
    objects already copied stay.  Raises :class:`UsageError` while anything runs the job
    (a run, a worker's partition lease, a sync schedule): there is no override."""
    async with _opened(db) as control:
        await asyncio.to_thread(control.delete_job, job)


delete_job = _blocking(delete_job_async)


async def run_async(*, job: str = "", db: str | None = None, batch_count: int | None = None,
                    concurrency: int | None = None, block_size: int | str | None = None,
                    single_put_max: int | str | None = None, lease_seconds: float = 60.0,
                    max_requests_per_second: float | None = None,
                    max_bandwidth: int | str | None = None, adaptive: bool = True,
                    config: str | Path | None = None,
                    subscribers: list[Subscriber] | None = None,
                    dask: str | None = None, copy_mode: str | None = None,
                    proof_log: str | Path | None = None) -> RunResult:
    """Copy the pending and failed partitions of a job (``lakeshift run``), once.

    ``db`` defaults to ``DEFAULT_DB``, ``batch_count`` to 4, ``concurrency`` to 32,
    ``block_size`` to 8 MiB and ``single_put_max`` to 64 MiB (or the block size, when
    larger).  ``config`` (a ``lakeshift.toml``) gives the job's name, DB, batch count,
    concurrency and sizes instead of those defaults (an argument given here wins over the
    file's value) and plans the job first if the DB lacks it; its schedule is the caller's
    to follow (the CLI's ``run --config`` loop).  ``dask`` (``tcp://HOST:8786`` or
    ``local:N``) runs it on a Dask cluster, every worker claiming partitions from ``db``
    (PostgreSQL): see docs/dask.md.  ``copy_mode`` overrides the job's saved one
    (``stream`` unless planned with another) for this run.  ``proof_log``: a row per object
    copied, appended to that CSV file as each finishes, as for :func:`copy` (not with
    ``dask``: the workers' events do not reach this process).
    """
    _refuse_proof_log_on_dask(proof_log, dask)
    if proof_log is not None:
        await _check_proof_log(proof_log)
    from_file: dict[str, Any] = {}
    if config is not None:
        from lakeshift.plan.jobconfig import load as load_config

        cfg = await asyncio.to_thread(load_config, Path(config))
        concurrency_given = concurrency
        # What the caller gave wins over the file; the file over the defaults.
        cfg = replace(cfg, name=job or cfg.name, db=db if db is not None else cfg.db,
                      batch_count=batch_count if batch_count is not None else cfg.batch_count,
                      concurrency=concurrency if concurrency is not None else cfg.concurrency)
        job, db, batch_count, concurrency = cfg.name, cfg.db, cfg.batch_count, cfg.concurrency
        # The sizes and concurrency the file set, named in a refusal of them (the user may
        # have typed none of those flags).
        from_file = {k: v for k, given, v in (
            ("concurrency", concurrency_given, cfg.concurrency),
            ("block_size", block_size, cfg.block_size),
            ("single_put_max", single_put_max, cfg.single_put_max))
            if given is None and v is not None}
        block_size = block_size if block_size is not None else cfg.block_size
        single_put_max = single_put_max if single_put_max is not None else cfg.single_put_max
        await _plan_from_config(cfg)
    db = DEFAULT_DB if db is None else db
    batch_count = 4 if batch_count is None else batch_count
    concurrency = 32 if concurrency is None else concurrency
    block_size = 8 * MiB if block_size is None else block_size
    if not job:
        raise UsageError("--job NAME is required")
    if batch_count < 1:
        raise UsageError("--batch-count must be at least 1")
    if lease_seconds < 2:
        raise UsageError("--lease-seconds must be at least 2")
    from lakeshift.engine import jobrunner
    from lakeshift.plan.jobplan import job_store_options

    fleet = _dask_cluster(dask, db)
    async with _opened(db) as control:
        j = await asyncio.to_thread(control.job, job)
        try:
            opts = job_copy_options(
                j.options, concurrency=concurrency, block_size=block_size,
                single_put_max=single_put_max, adaptive=adaptive,
                max_requests_per_second=max_requests_per_second,
                max_bandwidth=max_bandwidth, copy_mode=copy_mode,
                processes_here=_processes_here(fleet))
        except UsageError as e:
            _name_the_file(e, config, from_file)
            raise
        so, heartbeat = job_store_options(j), max(1.0, min(5.0, lease_seconds / 4))
        await _check_stores(await asyncio.to_thread(_job_store_pairs, control, j, so),
                            new_job=False)
        if fleet is not None:
            from lakeshift.scale.driver import run_on_dask

            result = (await run_on_dask(control, j, fleet, batch_count, opts, so, subscribers,
                                        lease_seconds, heartbeat)).run
        else:
            async with _proofs(proof_log, subscribers) as subscribers:
                result = await jobrunner.run_job(control, j, batch_count, opts, so,
                                                 subscribers, lease_s=lease_seconds,
                                                 heartbeat_s=heartbeat)
        result.job = j.name
        runs = await asyncio.to_thread(control.runs, j.id)
        result.number = next((r.number for r in map(_run_status, runs)
                              if r.id == result.run_id), None)
        return result


run = _blocking(run_async)


def _name_the_file(e: UsageError, config: str | Path | None, from_file: dict[str, Any]
                   ) -> None:
    """Add to a refusal of a value ``config``'s ``[run]`` table set (``from_file``: key →
    value) where it came from: the user typed no such flag."""
    import re

    message = str(e)
    from lakeshift.plan.jobconfig import size_text

    said = [f"{key} = " + (f'"{size_text(value)}"' if key != "concurrency" else str(value))
            for key, value in from_file.items()
            if re.search(re.escape("--" + key.replace("_", "-")) + r"(?![\w-])", message)]
    if said:
        e.args = (f"{message} (set in {config} [run]: {', '.join(said)})",)


def _processes_here(fleet: Any) -> int:
    """How many processes of this machine copy (their buffers are checked against its
    memory): 1 without ``--dask``, N for ``local:N``, none for a remote cluster's workers
    (a client's memory says nothing of theirs)."""
    return 1 if fleet is None else int(fleet.local_workers)


def _dask_cluster(dask: str | None, db: str) -> Any:
    """``--dask``'s cluster (a scale.cluster.ClusterSpec), checked with the DB it needs;
    None without ``--dask``."""
    if dask is None:
        return None
    from lakeshift.scale.cluster import ClusterSpec
    from lakeshift.scale.driver import refuse_sqlite

    spec = ClusterSpec.parse(dask)
    refuse_sqlite(db, dask)
    return spec


async def _plan_from_config(cfg: JobConfig) -> None:
    from lakeshift.plan.jobplan import create_plan

    async with _planning_db(cfg.db) as control:
        if cfg.name in {j.name for j in await asyncio.to_thread(control.jobs)}:
            return
        await create_plan(control, cfg.name, cfg.sources, cfg.destination, cfg.store,
                          cfg.prefixes if cfg.mode == "prefixes" else [],
                          "auto" if cfg.mode == "auto" else "none", cfg.target_objects,
                          cfg.adf_control_table if cfg.mode == "adf" else None, [], [],
                          "if-different", "skip")


def plan_job(sources: list[str], destination: str, *, job: str, db: str = DEFAULT_DB,
             prefixes: tuple[str, ...] = (), partition_by: str = "none",
             target_objects: int = 100_000, adf_control_table: str | None = None,
             include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
             overwrite: str = "if-different", folder_markers: str = "skip",
             store_options: StoreOptions | None = None) -> int:
    """Older spelling of :func:`plan`; returns the number of partitions."""
    return plan(sources, destination, job=job, db=db, prefix=prefixes,
                partition_by=partition_by, target_objects=target_objects,
                adf_control_table=adf_control_table, include=include, exclude=exclude,
                overwrite=overwrite, folder_markers=folder_markers,
                store_options=store_options).job.partitions


#: Older spelling of :func:`run`.
run_job = run


# -- sync ---------------------------------------------------------------------------------


async def sync_async(source: str | None = None, destination: str | None = None, *,
                     job: str = "", db: str = DEFAULT_DB, prefix: Sequence[str] = (),
                     partitions_file: str | Path | None = None, partition_by: str = "none",
                     target_objects: int = 100_000, adf_delta_table: str | None = None,
                     lag: str = "5m", overlap: str = "0", path_template: str | None = None,
                     files_from: str | Path | None = None, inventory: str | None = None,
                     delete: bool = False, max_delete: str | int | None = None,
                     every: str | None = None, cron: str | None = None,
                     batch_count: int = 4, concurrency: int = 32,
                     block_size: int | str = 8 * MiB, single_put_max: int | str | None = None,
                     lease_seconds: float = 60.0,
                     max_requests_per_second: float | None = None,
                     max_bandwidth: int | str | None = None, adaptive: bool = True,
                     include: Sequence[str] = (), exclude: Sequence[str] = (),
                     overwrite: str = "if-different", folder_markers: str = "skip",
                     skip_errors: str | Iterable[str] = (), invalid_names: str = "fail",
                     store_options: StoreOptions | None = None,
                     subscribers: list[Subscriber] | None = None,
                     on_pass: Callable[[model.SyncResult], None] | None = None,
                     dask: str | None = None,
                     proof_log: str | Path | None = None) -> model.SyncResult:
    """Delta pass(es) over a job (``lakeshift sync``; README "Delta sync").

    With ``source`` and ``destination`` the job is created on first use (partitions as in
    :func:`plan`, or from ``adf_delta_table``); with ``job`` alone it is a job that
    plan/run made.  Each partition copies the objects whose LastModified is in its window
    ``[start, now - lag)``: start is the end of its last succeeded window (minus
    ``overlap``), or the start of the job's historical run, or nothing (a full copy).
    With ``every`` or ``cron`` it keeps syncing until SIGINT/SIGTERM (the current pass is
    checkpointed) and calls ``on_pass`` after each pass; the result is the last pass's.
    ``dask`` runs each pass on a Dask cluster, as for :func:`run`.  ``proof_log``: a row
    per object copied, appended to that CSV file as each finishes, every pass's, as for
    :func:`copy` (not with ``dask``).
    """
    _records()
    _refuse_proof_log_on_dask(proof_log, dask)
    from lakeshift.plan.windows import DeleteCap, PathTemplate, Schedule, parse_duration

    if not job:
        raise UsageError("--job NAME is required")
    lag_td = parse_duration(lag, "--lag")
    overlap_td = parse_duration(overlap, "--overlap")
    template = PathTemplate.parse(path_template) if path_template is not None else None
    schedule = Schedule.parse(every, cron)
    if max_delete is not None and not delete:
        raise UsageError("--max-delete caps --delete: add --delete, or leave --max-delete out")
    cap = DeleteCap.parse(max_delete)
    ways = [n for n, v in (("--path-template", template), ("--files-from", files_from),
                           ("--inventory", inventory)) if v is not None]
    if len(ways) > 1:
        raise UsageError(f"use one of {', '.join(ways)}, not several")
    if delete and (files_from is not None or inventory is not None):
        raise UsageError("--delete needs a listing of the source to know what is gone: it "
                         "cannot go with --files-from or --inventory")
    if dask is not None and inventory is not None:
        from lakeshift.scale.driver import refuse_inventory

        refuse_inventory(True)
    if batch_count < 1:
        raise UsageError("--batch-count must be at least 1")
    if lease_seconds < 2:
        raise UsageError("--lease-seconds must be at least 2")
    keys = None
    if files_from is not None:
        from lakeshift.plan.changes import read_files_from

        keys = await asyncio.to_thread(read_files_from, files_from)
    if (source is None) != (destination is None):
        raise UsageError("sync needs SRC and DST (to create the job), or --job NAME alone")
    if proof_log is not None:
        await _check_proof_log(proof_log)
    # The run's sizes and pacing, checked before anything is written.
    fleet = _dask_cluster(dask, db)
    copy_options(concurrency=concurrency, block_size=block_size,
                 single_put_max=single_put_max, adaptive=adaptive,
                 max_requests_per_second=max_requests_per_second, max_bandwidth=max_bandwidth,
                 processes_here=_processes_here(fleet))
    new_file = _new_sqlite_file(db) if source is not None else None
    async with _opened(db, create=source is not None) as control:
        try:
            j = await _sync_job(control, job, source, destination, store_options, prefix,
                                partitions_file, partition_by, target_objects,
                                adf_delta_table, include, exclude, overwrite, folder_markers,
                                skip_errors, invalid_names)
        except BaseException:
            # A job that could not be made leaves no DB file made only to hold it.
            await asyncio.to_thread(control.close)
            _remove_sqlite_file(new_file)
            raise
        from lakeshift.control.schema import ADF_DELTA_TABLE
        from lakeshift.engine import sync as engine_sync
        from lakeshift.plan.jobplan import job_store_options

        delta_table = str(j.options.get("adf_delta_table") or ADF_DELTA_TABLE)
        from_adf = bool(j.options.get("adf_delta_table"))
        so = store_options or job_store_options(j)
        opts = job_copy_options(j.options, concurrency=concurrency, block_size=block_size,
                                single_put_max=single_put_max, adaptive=adaptive,
                                max_requests_per_second=max_requests_per_second,
                                max_bandwidth=max_bandwidth,
                                processes_here=_processes_here(fleet))
        heartbeat = max(1.0, min(5.0, lease_seconds / 4))

        async def one_pass() -> model.SyncResult:
            from datetime import UTC

            now = datetime.now(UTC)
            inv = None
            if inventory is not None:
                buckets = {parse_url(r["source"]).bucket for r in
                           await asyncio.to_thread(control.partitions, j.id)}
                inv = await engine_sync.load_inventory(inventory, so, buckets)
            if from_adf:
                await asyncio.to_thread(_add_adf_delta_partitions, control, j)
            settings = engine_sync.SyncSettings(
                now=now, lag=lag_td, overlap=overlap_td, path_template=template,
                files_from=None if keys is None else keys.keys,
                files_from_source_keys=keys is not None and keys.source_keys, inventory=inv,
                delete=delete, max_delete=cap,
                adf_delta_table=delta_table, windows_from_adf=from_adf)
            if fleet is not None:
                from lakeshift.scale.driver import sync_pass_on_dask

                p = await sync_pass_on_dask(control, j, fleet, settings, opts, so,
                                            batch_count, subscribers, lease_seconds,
                                            heartbeat)
            else:
                p = await engine_sync.sync_pass(control, j, settings, opts, so, batch_count,
                                                subscribers, lease_seconds, heartbeat)
            p.run.job = j.name
            # The number users see in status ("run 2"), not the DB-wide id.
            p.run.number = next((r["number"] for r in await asyncio.to_thread(
                control.runs, j.id, 5) if r["id"] == p.run.run_id), None) or None
            windows = tuple(SyncWindow(o.partition, o.start, o.end, o.state, o.copied,
                                       o.skipped, o.failed_objects, o.deleted, o.error,
                                       o.held_back)
                            for o in p.outcomes)
            return SyncResult(j.name, p.run, windows, deleted=p.deleted,
                              deleted_keys=tuple(p.deleted_keys[:1000]),
                              renames=tuple(p.renames), kept=p.kept,
                              renames_paired=p.renames_paired)

        async with _proofs(proof_log, subscribers) as subscribers:
            if schedule is None:
                once: model.SyncResult = await engine_sync.run_once(j, one_pass)
                return once
            followed: model.SyncResult = await engine_sync.follow_schedule(
                control, j, schedule, one_pass, on_pass, lease_seconds)
            return followed


sync = _blocking(sync_async)


def _remove_sqlite_file(path: Path | None) -> None:
    if path is not None:
        for p in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-journal"))):
            p.unlink(missing_ok=True)


async def _check_stores(pairs: Iterable[tuple[StoreConfig, StoreConfig]],
                       new_job: bool) -> None:
    """``copy``'s start-up checks for every distinct source and destination store: the
    credentials are resolved, a source is listed, a destination prepared.  A missing or
    rejected credential raises AuthError (exit 3), a bad key or URL UsageError (exit 2),
    before a job or a run is recorded (it used to end as a failed partition, exit 1).
    For an existing job a store that answers but is unusable (a bucket gone) is left to
    fail its own partitions: the others still run (README "plan and run")."""
    from lakeshift.engine.pipeline import check_reachable
    from lakeshift.engine.retry import RetryPolicy
    from lakeshift.stores.registry import open_store

    def root(c: StoreConfig) -> tuple[str | None, ...]:
        return (c.url.scheme, c.url.bucket, c.url.account, c.url.endpoint_suffix)

    checks: dict[tuple[str | None, ...], tuple[StoreConfig, str]] = {}
    for src, dst in pairs:
        checks.setdefault(("source", *root(src)), (src, "source"))
        checks.setdefault(("destination", *root(dst)), (dst, "destination"))

    async def check_all() -> None:
        for config, label in checks.values():
            store = open_store(config)
            try:
                await check_reachable(store.check_source if label == "source"
                                      else store.prepare_destination, label, RetryPolicy())
            except UsageError:
                if new_job:
                    raise
            finally:
                await store.close()

    await check_all()


def _job_store_pairs(control: ControlDB, j: Job,
                     so: StoreOptions) -> list[tuple[StoreConfig, StoreConfig]]:
    return [(StoreConfig(parse_url(r["source"]), so), StoreConfig(parse_url(r["destination"]), so))
            for r in control.partitions(j.id) if r["source"]]


def _refuse_other_urls(j: Job, source: str | None, destination: str | None,
                       prefix: Sequence[str], partitions_file: str | Path | None) -> None:
    """An existing job is synced as it was made: other URLs or partitions are a mistake
    (they were silently ignored, and the job's own source synced)."""
    from lakeshift.plan.partitioner import bucket_url

    sources = [str(x) for x in j.options.get("sources", [])]
    if source is not None and destination is not None:
        same_src = any(_same_url(source, s) for s in sources) or not sources
        adf_src = j.options.get("adf_source")
        if adf_src and not same_src:
            u = parse_url(source)
            same_src = bucket_url(source, u.bucket, u.scheme, u.account) == adf_src
        if not same_src or not _same_url(destination, j.destination):
            raise UsageError(
                f"job {j.name!r} syncs {', '.join(sources) or j.options.get('adf_source')} → "
                f"{j.destination}, not {source} → {destination}: leave the URLs out to sync "
                "that job, or give another --job to make a new one")
    if prefix or partitions_file is not None:
        raise UsageError(f"job {j.name!r} exists: its partitions were set when it was made; "
                         "leave out --prefix/--partitions-file, or give another --job")


def _same_url(a: str, b: str) -> bool:
    try:
        ua, ub = parse_url(a), parse_url(b)
    except UsageError:
        return False
    # display(): a job records an Azure URL as az://ACCOUNT/CONTAINER/path.
    return ua.display().rstrip("/") == ub.display().rstrip("/")


async def _sync_job(control: ControlDB, job: str, source: str | None,
                    destination: str | None, store_options: StoreOptions | None,
                    prefix: Sequence[str], partitions_file: str | Path | None,
                    partition_by: str, target_objects: int, adf_delta_table: str | None,
                    include: Sequence[str], exclude: Sequence[str], overwrite: str,
                    folder_markers: str, skip_errors: str | Iterable[str],
                    invalid_names: str) -> Job:
    """The job to sync: the existing one, or (with SRC DST, on first use) a new one; the
    stores pass :func:`_check_stores` before a job is made."""
    from lakeshift.plan.jobplan import create_plan, read_partitions_file

    call = asyncio.to_thread
    if (source is None or destination is None
            or job in {x.name for x in await call(control.jobs)}):
        j = await call(control.job, job)
        if adf_delta_table and j.options.get("adf_delta_table") != adf_delta_table:
            raise UsageError(f"job {job!r} was not made from --adf-delta-table "
                             f"{adf_delta_table}: leave the option out, or use a new --job")
        _refuse_other_urls(j, source, destination, prefix, partitions_file)
        await _check_stores(await call(
            _job_store_pairs, control, j,
            store_options or StoreOptions(**j.options.get("store", {}))), new_job=False)
        return j
    new_stores = [(source_config(source, store_options),
                   destination_config(destination, store_options))]
    prefixes = list(prefix)
    if partitions_file is not None:
        if prefixes:
            raise UsageError("use --prefix or --partitions-file, not both")
        prefixes = await asyncio.to_thread(read_partitions_file, Path(partitions_file))
    so = store_options or StoreOptions()
    if adf_delta_table:
        if prefixes or partition_by != "none":
            raise UsageError("--adf-delta-table takes the partitions from the table: leave "
                             "out --prefix, --partitions-file and --partition-by")
        from dataclasses import asdict

        from lakeshift.plan.partitioner import bucket_url

        copy_options(include=include, exclude=exclude, overwrite=overwrite,
                     folder_markers=folder_markers, skip_errors=skip_errors,
                     invalid_names=invalid_names)
        # Checks the table before writing.
        await call(control.adf_delta_prefixes, adf_delta_table)
        await _check_stores(new_stores, new_job=True)
        src_url = parse_url(source)
        base = bucket_url(source, src_url.bucket, src_url.scheme, src_url.account)
        dst_url = parse_url(destination)
        options: dict[str, Any] = {
            "include": list(include), "exclude": list(exclude), "overwrite": overwrite,
            "folder_markers": folder_markers,
            "skip_errors": sorted(skip_error_kinds(skip_errors)),
            "invalid_names": invalid_names, "store": asdict(so), "sources": [source],
            "adf_source": base, "adf_delta_table": adf_delta_table}
        await call(control.create_job, job, dst_url.display() if dst_url.scheme != "file"
                   else destination, options, [])
        j = await call(control.job, job)
        await call(_add_adf_delta_partitions, control, j)
        return j
    if partition_by not in ("none", "auto"):
        raise UsageError(f"--partition-by {partition_by!r}: use none or auto")
    copy_options(include=include, exclude=exclude, overwrite=overwrite,
                 folder_markers=folder_markers, skip_errors=skip_errors,
                 invalid_names=invalid_names)
    await _check_stores(new_stores, new_job=True)
    return await create_plan(control, job, [source], destination, so, prefixes, partition_by,
                             target_objects, None, list(include), list(exclude), overwrite,
                             folder_markers, sorted(skip_error_kinds(skip_errors)),
                             invalid_names)


def _add_adf_delta_partitions(control: ControlDB, j: Job) -> None:
    """A PartitionPrefix new in the delta table is a new partition of the job."""
    from lakeshift.model import PartitionSpec

    table = str(j.options["adf_delta_table"])
    known = {r["adf_prefix"] for r in control.partitions(j.id)}
    source = str(j.options.get("adf_source", ""))
    control.add_partitions(j.id, [PartitionSpec(source, p, "", j.destination, adf_prefix=p)
                                  for p in control.adf_delta_prefixes(table)
                                  if p not in known])


# -- status, failures --------------------------------------------------------------------


#: The states of partitions that need attention, in the order ``status`` lists them.
ATTENTION_STATES = ("failed", "running", "pending")


async def status_async(*, db: str = DEFAULT_DB, job: str | None = None, offset: int = 0,
                       limit: int | None = None, state: Sequence[str] | None = None,
                       all_partitions: bool = False) -> model.StatusResult:
    """Jobs with their totals (``lakeshift status``); a named job also with its totals by
    state (``by_state``), its latest runs and its partition table: ``limit`` partitions
    from ``offset`` (all when None), of every state in order, or with ``state`` only of
    those states, grouped in the order given (``ATTENTION_STATES``: the failed, then the
    running, then the pending).  ``partition_table_total`` says how many there are to page
    through.  ``all_partitions``: every partition in order (``state``, ``offset`` and
    ``limit`` must then be left out).  (The control DB is read in a worker thread.)"""
    _page_args(offset, limit)
    states = _states(state)
    if all_partitions and (states is not None or offset or limit is not None):
        raise UsageError("--all shows every partition: leave out --state, --offset and "
                         "--limit (or leave out --all to page)")
    return await asyncio.to_thread(_status, db, job, offset, limit, states)


status = _blocking(status_async)


def _states(state: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """``state`` as a tuple of known states, without repeats (None: every state); ``all``
    is every state, ``attention`` the failed, running and pending; a comma list is split."""
    if state is None:
        return None
    words = [w.strip() for s in ([state] if isinstance(state, str) else state)
             for w in s.split(",") if w.strip()]
    out: list[str] = []
    for w in words:
        if w == "all":
            return None
        for s in (ATTENTION_STATES if w == "attention" else (w,)):
            if s not in _STATES:
                raise UsageError(f"--state {w!r}: use {', '.join(_STATES)}, attention "
                                 "(failed, running, pending) or all")
            if s not in out:
                out.append(s)
    return tuple(out) if out else None


def _status(db: str, job: str | None, offset: int = 0, limit: int | None = None,
            states: tuple[str, ...] | None = None) -> model.StatusResult:
    _records()
    control = _control(db)
    try:
        jobs = [control.job(job)] if job else control.jobs()
        return StatusResult(control.shown, tuple(
            _job_status(control, j, job is not None, offset, limit, states) for j in jobs))
    finally:
        control.close()


def _partition_status(r: Any) -> model.PartitionStatus:
    _records()
    duration = r["duration_s"] or 0.0
    return PartitionStatus(
        seq=r["seq"], state=r["state"], source=r["source"], prefix=r["prefix"],
        range_start=r["range_start"], range_end=r["range_end"],
        destination=r["destination"], cursor=r["cursor"], attempts=r["attempts"],
        listed=r["listed"], copied=r["copied"], skipped=r["skipped"],
        failed_objects=r["failed_objects"], bytes=r["bytes"], duration_s=round(duration, 3),
        throughput_bytes_per_s=round(r["bytes"] / duration, 1) if duration > 0 else 0.0,
        last_error=r["last_error"], lease_owner=r["lease_owner"],
        started_at=_as_utc(r["started_at"]), finished_at=_as_utc(r["finished_at"]),
        adf_prefix=r["adf_prefix"])


def _run_status(r: Any) -> model.RunStatus:
    _records()
    return RunStatus(id=r["id"], state=r["state"], owner=r["owner"],
                     batch_count=r["batch_count"], partitions_succeeded=r["partitions_done"],
                     partitions_failed=r["partitions_failed"], copied=r["copied"],
                     bytes=r["bytes"], started_at=_as_utc(r["started_at"]),
                     finished_at=_as_utc(r["finished_at"]),
                     settings=json.loads(r["settings"]), number=r.get("number") or None)


def _job_status(control: ControlDB, job: Job, detail: bool, offset: int = 0,
                limit: int | None = None, states: tuple[str, ...] | None = None
                ) -> model.JobStatus:
    # Totals by one aggregate query; partitions read only for the table, a page of them
    # when asked (a job may have tens of thousands).
    _records()
    by_state = control.partition_totals_by_state(job.id)
    totals = fold_state_totals(by_state)  # the same query's answer, not a second
    parts = tuple(_partition_status(r) for r in control.partitions(
        job.id, offset, limit, states)) if detail else ()
    sched = control.schedule(job.id)
    counts = {s: totals.get(s, 0) for s in _STATES}
    runs = tuple(_run_status(r) for r in control.runs(job.id))
    last_pass = next((r for r in runs if r.settings.get("mode") == "sync"), None)
    copied, nbytes = totals["copied"], totals["bytes"]
    if last_pass is not None:
        # A sync pass starts its partitions' counters at zero: the job's totals are its runs'.
        copied, nbytes = control.run_totals(job.id)
    shown = totals["partitions"] if states is None else sum(counts[s] for s in states)
    return JobStatus(
        job=job.name, destination=job.destination, created_at=_as_utc(job.created_at),
        adf_table=job.adf_table, partitions=totals["partitions"], **counts,
        copied=copied, bytes=nbytes,
        failed_objects=totals["failed_objects"], detail=detail,
        partition_table=parts, partition_table_offset=offset if detail else 0,
        partition_table_total=shown if detail else 0,
        partition_table_states=states if detail else None,
        by_state=tuple(StateTotals(state=s, **by_state[s]) for s in _STATES if s in by_state),
        runs=runs if detail else (),
        sync_schedule=sched["schedule"] if sched is not None and sched["owner"] else None,
        next_sync_at=_as_utc(sched["next_run_at"]) if sched is not None else None,
        last_sync_pass=last_pass,
        key_range_partitions=control.key_range_partitions(job.id) if detail else 0)


FAILURE_FIELDS = ("object_key", "error_kind", "message", "attempts", "skipped", "at",
                  "partition_id", "run_id")


async def failures_async(*, job: str = "", db: str = DEFAULT_DB,
                         csv_file: str | Path | None = None,
                         run: int | None = None) -> model.FailuresResult:
    """Every object that failed, or was skipped on purpose, in a job (``lakeshift
    failures``), or in its run number ``run`` (as ``status`` numbers them: 1, 2, …).

    With ``csv_file`` the rows are streamed into that CSV (``"-"``: standard output) and not
    kept in the result (memory stays flat however many there are); ``count`` says how many.
    (The control DB is read in a worker thread.)
    """
    return await asyncio.to_thread(_failures, job, db, csv_file, run)


failures = _blocking(failures_async)


def _failures(job: str, db: str, csv_file: str | Path | None,
              run: int | None = None) -> model.FailuresResult:
    _records()
    if not job:
        raise UsageError("--job NAME is required")
    control = _control(db)
    try:
        j = control.job(job)
        by_kind: dict[str, int] = {}

        def counted(r: Any) -> Failure:
            by_kind[r["error_kind"]] = by_kind.get(r["error_kind"], 0) + 1
            return _failed_object(r)

        if run is None:
            found = control.failures(j.id)
        else:
            run_id = control.run_numbered(j.id, run)
            if run_id is None:
                latest = control.runs(j.id, 1)
                raise UsageError(f"job {job!r} has no run {run} (" + (
                    f"its runs are numbered 1 to {latest[0]['number']}" if latest
                    else "it has no runs yet") + "; `lakeshift status --job` lists them)")
            found = control.failures_of(j.id, run_id)
        rows = (counted(r) for r in found)
        if csv_file is None:
            kept = tuple(rows)
            return FailuresResult(job, kept, len(kept), by_kind=by_kind)
        fh: TextIO
        if str(csv_file) == "-":
            fh = sys.stdout
        else:
            made = _make_folders(Path(csv_file).parent)  # as verify --report does
            try:
                fh = open(csv_file, "w", newline="", encoding="utf-8",  # noqa: SIM115
                          errors="backslashreplace")
            except OSError as e:
                _remove_folders(made)
                raise UsageError(f"cannot write {csv_file}: {e.strerror}") from None
        try:
            n = write_failures_csv(rows, fh)
        finally:
            if fh is not sys.stdout:
                fh.close()
        return FailuresResult(job, (), n, str(csv_file), by_kind=by_kind)
    finally:
        control.close()


def _failed_object(r: Any) -> Failure:
    return Failure(object_key=r["object_key"], error_kind=r["error_kind"],
                   message=r["message"], attempts=r["attempts"], skipped=bool(r["skipped"]),
                   at=_as_utc(r["at"]), partition_id=r["partition_id"], run_id=r["run_id"])


def write_failures_csv(rows: Iterable[Failure], fh: TextIO) -> int:
    """The failure log as CSV (a header, then one row each; times ISO 8601 UTC; text that
    a spreadsheet would take for a formula neutralised: :func:`csv_cell`)."""
    w = csv.writer(fh)
    w.writerow(FAILURE_FIELDS)
    n = 0
    for f in rows:
        w.writerow([csv_cell(getattr(f, name)) for name in FAILURE_FIELDS])
        n += 1
    return n


# -- verify, check -----------------------------------------------------------------------


async def verify_async(source: str | None = None, destination: str | None = None, *,
                       job: str | None = None, db: str = DEFAULT_DB, deep: bool = False,
                       report: str | Path | None = None, concurrency: int = 16,
                       include: Sequence[str] = (), exclude: Sequence[str] = (),
                       invalid_names: str = "fail", adaptive: bool = True,
                       max_requests_per_second: float | None = None,
                       max_bandwidth: int | str | None = None, check_times: bool = False,
                       list_verified: bool = False,
                       store_options: StoreOptions | None = None,
                       subscribers: list[Subscriber] | None = None) -> model.VerifyResult:
    """Prove that ``destination`` holds exactly what ``source`` holds, or every partition of
    ``job`` (``lakeshift verify``).  Writes ``REPORT.csv`` (the differences) and
    ``REPORT.json`` (the summary), creating REPORT's folder if needed; the default REPORT is
    ``lakeshift-verify-YYYYMMDD-HHMMSS`` in the current folder.  ``list_verified`` also
    writes ``REPORT-verified.csv``: one row per object proven equal, with the proof and the
    checksums compared, written as each is proven.  ``result.exit_code`` is 1 on
    any difference.  ``subscribers`` hear the source listing (``Listed``, ``ListingDone``),
    the bytes hashed (``BytesMoved``) and throttling (``Throttled``).  ``check_times``: a
    kept original modification time that differs is a difference too."""
    _records()
    from lakeshift.engine.verify import Report, VerifiedReport, VerifyOptions, write_summary
    from lakeshift.engine.verify import verify_async as verify_pairs

    so = store_options or StoreOptions()
    opts = VerifyOptions(deep=deep, concurrency=concurrency, include=tuple(include),
                         exclude=tuple(exclude), invalid_names=invalid_names,
                         adaptive=adaptive, max_requests_per_second=max_requests_per_second,
                         max_bandwidth=bandwidth_arg(max_bandwidth), check_times=check_times)
    if job:
        if source or destination:
            raise UsageError("give SRC DST, or --job, not both")
        pairs, label, saved_names = await asyncio.to_thread(_job_pairs, db, job, so)
        opts = replace(opts, invalid_names=saved_names)
    elif source and destination:
        pairs = [(source_config(source, so), destination_config(destination, so), None, None)]
        label = f"{source} → {destination}"
    else:
        raise UsageError("verify needs SRC DST (or --job NAME)")
    opts.validate()
    prefix = report or Path(time.strftime("lakeshift-verify-%Y%m%d-%H%M%S"))
    csv_path, json_path = Path(f"{prefix}.csv"), Path(f"{prefix}.json")
    listed_path = Path(f"{prefix}-verified.csv") if list_verified else None
    made = await asyncio.to_thread(_make_folders, csv_path.parent)
    written: list[Path] = []
    try:
        with ExitStack() as files:
            handles: list[TextIO] = []
            for path in (csv_path, listed_path):
                if path is None:
                    continue
                try:
                    # A name that is not valid UTF-8 (a local file's raw bytes) is written
                    # escaped.
                    fh = await asyncio.to_thread(open, path, "w", newline="",
                                                 encoding="utf-8", errors="backslashreplace")
                except OSError as e:
                    raise UsageError(f"cannot write the report {path}: {e.strerror}"
                                     ) from None
                written.append(path)
                handles.append(files.enter_context(fh))
            listed = VerifiedReport(handles[1]) if listed_path is not None else None
            result = await verify_pairs(pairs, opts, Report(handles[0]),
                                        events=EventBus(subscribers), verified_report=listed)
    except (LakeshiftError, BaseExceptionGroup):
        # Stopped before a verdict (credentials rejected, a missing container): a report
        # with only its header would read as "no differences".  (After Ctrl-C the rows
        # found so far stay.)
        for path in written:
            path.unlink(missing_ok=True)
        _remove_folders(made)
        raise
    extra: dict[str, Any] = {"verified_what": label, "deep": deep,
                             "report_csv": str(csv_path)}
    if listed_path is not None:
        extra["verified_csv"] = str(listed_path)
    s = await asyncio.to_thread(write_summary, json_path, result, extra)
    return VerifyResult(
        verified_what=label, deep=deep, report_csv=str(csv_path), report_json=str(json_path),
        checked=s["checked"], verified=s["verified"], missing=s["missing"], extra=s["extra"],
        size=s["size"], checksum=s["checksum"], times=s["time"],
        unverifiable=s["unverifiable"],
        differences=s["differences"], renamed=s["renamed"],
        unverifiable_reasons=dict(s["unverifiable_reasons"]), bytes_read=s["bytes_read"],
        duration_s=s["duration_s"], exit_code=result.exit_code, summary=s,
        proofs=dict(s["proofs"]), verified_csv=s.get("verified_csv"))


verify = _blocking(verify_async)


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the report folder {folder}: {e.strerror}") from None
    return missing


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _job_pairs(db: str, job: str, so: StoreOptions) -> tuple[list[Pair], str, str]:
    """Each partition of ``job`` as a verify pair (its whole prefix or range, whatever its
    cursor), the label of the report, and the job's --invalid-names."""
    from lakeshift.plan.jobplan import job_store_options, partition_spec

    control = _control(db)
    try:
        j = control.job(job)
        options = job_store_options(j) if so == StoreOptions() else so
        pairs: list[Pair] = [
            (StoreConfig(parse_url(r["source"]), options),
             StoreConfig(parse_url(r["destination"]), options),
             partition_spec(r, after_cursor=False), None)
            for r in control.partitions(j.id)]
        n = len(pairs)
        return (pairs, f"job {job} ({n} partition{'' if n == 1 else 's'})",
                str(j.options.get("invalid_names", "fail")))
    finally:
        control.close()


async def check_async(source: str, destination: str, *,
                      store_options: StoreOptions | None = None) -> model.CheckResult:
    """Test both sides before a migration (``lakeshift check``): credentials, reachability,
    list and read on the source, write and delete of a probe under the destination, clock
    skew.  A failed step is a line of the result, not an exception."""
    from lakeshift.engine.check import check_pair

    _records()
    lines = await check_pair(source_config(source, store_options),
                             destination_config(destination, store_options))
    return CheckResult(source, destination, tuple(lines))


check = _blocking(check_async)


# -- scan --------------------------------------------------------------------------------


async def scan_async(source: str, destination: str | None = None, *,
                     prices: str | Path | None = None, sample: int = 100,
                     head_all: bool = False, block_size: int | str = 8 * MiB,
                     calibrate: bool = True,
                     store_options: StoreOptions | None = None) -> model.ScanResult:
    """What a migration of ``source`` would meet, before it starts (``lakeshift scan``).

    One streamed listing: objects and bytes by top-level prefix and storage class; what
    cannot be copied as it is (archived, invalid names, colliding metadata keys, SSE-C,
    file/folder collisions, folder markers, empty folders), each with a count and the first
    examples; versioning and request payment; a cost estimate from the price table
    (``prices``: a TOML file over the shipped one) and a duration estimate.  ``sample``
    objects get a HEAD (SSE-C, metadata, restores); ``head_all``: every one.  With a
    ``destination`` a small sample is copied to a temporary prefix there to time it (unless
    ``calibrate`` is false), then removed: nothing else is written.  An empty prefix is a
    UsageError."""
    from lakeshift.plan.prices import load_prices
    from lakeshift.plan.scan import ScanOptions
    from lakeshift.plan.scan import scan_async as scan_pair

    if sample < 0:
        raise UsageError("--sample must be 0 or more")
    table = await asyncio.to_thread(load_prices, prices)  # a file: off the loop
    opts = ScanOptions(sample=sample, head_all=head_all,
                       block_size=size_arg(block_size, "--block-size"), calibrate=calibrate)
    so = store_options or StoreOptions()
    dst = destination_config(destination, so) if destination else None
    return await scan_pair(source_config(source, so), dst, table, opts)


scan = _blocking(scan_async)


# -- tune (issue 16) ----------------------------------------------------------------------


async def tune_async(source: str, destination: str, *, config: str | Path | None = None,
                     sample_objects: int = 200, sample_size: int | str = 512 * MiB,
                     store_options: StoreOptions | None = None) -> model.TuneResult:
    """Try a few settings of concurrency, block size and single-put limit on a sample of
    ``source`` (its first ``sample_objects`` objects, at most ``sample_size`` bytes) copied
    into a scratch folder under ``destination`` that is deleted after each trial
    (``lakeshift tune``).  With ``config`` (a ``lakeshift.toml``) the best setting is written
    into its [run] table, which ``run --config`` then uses."""
    from lakeshift.engine.tune import tune_async as tune_pair
    from lakeshift.plan.jobconfig import write_run_settings

    if sample_objects < 1:
        raise UsageError("--sample-objects must be at least 1")
    size = size_arg(sample_size, "--sample-size")
    if size < 1:
        raise UsageError("--sample-size must be at least 1 byte (e.g. 512MiB)")
    if config is not None:
        # A config that cannot be read fails before the trials (read in a thread).
        from lakeshift.plan.jobconfig import load as load_config

        cfg = await asyncio.to_thread(load_config, Path(config))
        await asyncio.to_thread(_writable_config, Path(config))
        # The best setting goes into that job's [run]: it must be tried on that job's pair
        # (a folder of its source, into its destination or a folder of it).
        mine = store_options or StoreOptions()
        if not any(_url_within(source, mine, s, cfg.store) for s in cfg.sources) or \
                not _url_within(destination, mine, cfg.destination, cfg.store):
            raise UsageError(
                f"{config} copies {', '.join(cfg.sources)} → {cfg.destination}, not "
                f"{source} → {destination}: tune that job's source and destination (or "
                "folders of them), or leave out --config to only print the best setting")
    result = await tune_pair(source_config(source, store_options),
                             destination_config(destination, store_options), sample_objects,
                             size)
    if config is not None:
        b = result.best
        values: dict[str, int | str] = {"concurrency": b.concurrency}
        if "block_size" not in result.not_tried:
            # Sizes only when tried: an untried default would replace the file's own.
            values.update(block_size=b.block_size, single_put_max=b.single_put_max)
        await asyncio.to_thread(write_run_settings, Path(config), values)
    return result


def _writable_config(path: Path) -> None:
    """The best setting is written into ``path`` after the trials: one that cannot be
    written is refused before them (opened for appending, which changes nothing)."""
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write config {path}: {e.strerror}: make it writable, or "
                         "leave out --config to only print the best setting") from None


def _url_within(a: str, a_options: StoreOptions, b: str, b_options: StoreOptions) -> bool:
    """Whether URL ``a`` names ``b`` or a folder inside it, however each is spelled
    (``az://fs/raw`` and ``abfss://fs@acct.dfs.core.windows.net/raw/`` of that account, a
    relative path and its ``file://`` URL): the same store and a path at or below ``b``'s."""
    try:
        (place_a, path_a), (place_b, path_b) = _place(a, a_options), _place(b, b_options)
    except UsageError:
        return False
    return place_a == place_b and (path_a == path_b or path_b == "" or
                                   path_a.startswith(path_b + "/"))


def _place(url: str, options: StoreOptions) -> tuple[tuple[str, ...], str]:
    """Where ``url`` points: its store (local disk; a bucket at its S3 endpoint; an Azure
    container at its account's endpoint) and the path in it, without a trailing slash."""
    import os

    u = parse_url(url)
    if u.scheme == "file":  # absolute already; symlinks resolved too
        return ("file",), os.path.realpath(u.bucket).rstrip("/")
    path = u.path.rstrip("/")
    if u.scheme == "azure":
        # az:// takes its account from the credentials, abfss:// and https:// name it: the
        # account and endpoint the store would use, as it resolves them (asks no server).
        from lakeshift.stores.azure.auth import resolve

        try:
            settings = resolve(u, options)
            account = (settings.account, settings.blob_endpoint)
        except UsageError:  # say, a URL's account that is not the connection string's
            account = (u.account or "", u.endpoint_suffix or "")
        return ("azure", *account, u.bucket), path
    if u.scheme == "s3":
        # A bucket's name is unique only at its endpoint (MinIO, another S3 service): the
        # endpoint the store would use (--s3-endpoint, else the environment's), or AWS's.
        endpoint = (options.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL") or "")
        return ("s3", endpoint.strip().rstrip("/").lower(), u.bucket), path
    return (u.scheme, u.bucket), path


tune = _blocking(tune_async)


# -- the monitor's reads and actions (lakeshift monitor; docs/api.md "monitor") -----------

#: Names of settings whose values are never shown (a secret could hide in any of them).
_SECRET_NAMES = ("secret", "password", "token", "sas", "account_key", "access_key",
                 "credential", "connection_string", "signature")


def _shown_settings(value: Any, name: str = "") -> Any:
    """Settings as the monitor may show them: a secret-like name's value hidden, every
    string redacted."""
    from lakeshift.redact import redact

    if any(word in name.lower() for word in _SECRET_NAMES):
        return "***"
    if isinstance(value, dict):
        return {str(k): _shown_settings(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shown_settings(v, name) for v in value]
    return redact(value) if isinstance(value, str) else value


def _seconds(start: datetime | None, end: datetime | None) -> float:
    from datetime import UTC

    if start is None:
        return 0.0
    return round(max(((end or datetime.now(UTC)) - start).total_seconds(), 0.0), 3)


def _partition_run_status(r: Any, job: Job) -> model.PartitionRunStatus:
    _records()
    state = r["state"]
    started, finished = _as_utc(r["started_at"]), _as_utc(r["finished_at"])
    if state == "running" and r["run_state"] != "running":
        # Its run died without saying so: it ended at the run's last heartbeat.
        state = "interrupted"
        finished = _as_utc(r["run_heartbeat_at"]) or started
    duration = _seconds(started, finished)
    settings = {"job": dict(job.options), "run": json.loads(r["settings"])}
    return PartitionRunStatus(
        id=r["id"], run_id=r["run_id"], job=job.name, partition_id=r["partition_id"],
        seq=r["seq"], source=r["source"], prefix=r["prefix"], range_start=r["range_start"],
        range_end=r["range_end"], destination=r["destination"], state=state,
        started_at=started, finished_at=finished, duration_s=duration, listed=r["listed"],
        copied=r["copied"], skipped=r["skipped"], failed_objects=r["failed_objects"],
        bytes_read=r["bytes_read"], bytes_written=r["bytes_written"],
        throughput_bytes_per_s=round(r["bytes_written"] / duration, 1) if duration else 0.0,
        queued_s=r["queued_s"], listing_s=r["listing_s"], transferring_s=r["transferring_s"],
        finishing_s=r["finishing_s"], in_flight=r["in_flight"] if state == "running" else 0,
        peak_in_flight=r["peak_in_flight"], retries=json.loads(r["retries"] or "{}"),
        throttled=r["throttled"], error=r["error"],
        settings=_shown_settings(settings))


#: The most throughput samples ``run_detail`` returns: a long run's are thinned evenly
#: (first and last kept; each holds running totals, so rates between them stay true).
MAX_SAMPLES = 501


def _page_args(offset: int, limit: int | None, most: int | None = None) -> None:
    if offset < 0 or (limit is not None and limit < 0):
        raise UsageError("offset and limit must be 0 or more")
    if most is not None and (limit is None or limit > most):
        raise UsageError(f"limit must be at most {most}")


def run_detail(run_id: int, *, db: str = DEFAULT_DB, offset: int = 0,
               limit: int | None = None) -> model.RunDetail | None:
    """Run ``run_id`` (the id ``status`` shows) with its partition runs (``limit`` of them
    from ``offset``, in partition order; all when None: ``partition_runs_total`` says how
    many there are) and at most MAX_SAMPLES throughput samples; None when the DB has no
    such run."""
    _records()
    from lakeshift.model import ThroughputSample

    _page_args(offset, limit)
    control = _control(db)
    try:
        r = control.run(run_id)
        if r is None:
            return None
        job = control.job(r["job"])
        run_ = _run_status(r)
        run_ = dataclasses.replace(run_, settings=_shown_settings(dict(run_.settings)))
        duration = _seconds(run_.started_at, run_.finished_at)
        return RunDetail(
            job=job.name, run=run_, duration_s=duration,
            throughput_bytes_per_s=round(run_.bytes / duration, 1) if duration else 0.0,
            cancel_requested=bool(r["cancel_requested"]),
            partition_runs=tuple(_partition_run_status(p, job)
                                 for p in control.partition_runs(run_id, offset, limit)),
            samples=tuple(ThroughputSample(_as_utc(s["at"]), s["copied"], s["bytes"],
                                           s["in_flight"])
                          for s in control.run_samples(run_id, MAX_SAMPLES)),
            partition_runs_total=control.count_partition_runs(run_id),
            partition_runs_offset=offset)
    finally:
        control.close()


def partition_run(partition_run_id: int, *, db: str = DEFAULT_DB
                  ) -> model.PartitionRunStatus | None:
    """One partition run (an id from ``run_detail``); None when there is no such one."""
    control = _control(db)
    try:
        r = control.partition_run(partition_run_id)
        if r is None:
            return None
        job = next(j for j in control.jobs() if j.id == r["job_id"])
        return _partition_run_status(r, job)
    finally:
        control.close()


def run_failures(run_id: int, *, db: str = DEFAULT_DB,
                 partition_run_id: int | None = None) -> tuple[Failure, ...] | None:
    """The failure log of run ``run_id`` (of one of its partition runs, when given); None
    when there is no such run or partition run."""
    control = _control(db)
    try:
        scope = _failure_scope(control, run_id, partition_run_id)
        if scope is None:
            return None
        return tuple(_failed_object(f) for f in control.failures_of(scope[0], run_id,
                                                                     scope[1]))
    finally:
        control.close()


def _failure_scope(control: ControlDB, run_id: int,
                   partition_run_id: int | None) -> tuple[int, int | None] | None:
    """(job id, partition id or None) of a run's failure log; None when there is no such
    run, or no such partition run in it."""
    r = control.run(run_id)
    if r is None:
        return None
    if partition_run_id is None:
        return int(r["job_id"]), None
    p = control.partition_run(partition_run_id)
    if p is None or p["run_id"] != run_id:
        return None
    return int(r["job_id"]), int(p["partition_id"])


#: The most rows run_failures_page returns at once.
MAX_FAILURE_PAGE = 1000


def run_failures_page(run_id: int, *, db: str = DEFAULT_DB,
                      partition_run_id: int | None = None, offset: int = 0,
                      limit: int = 100) -> model.FailurePage | None:
    """One page of :func:`run_failures`: ``limit`` rows (at most 1000) from ``offset``, and
    how many there are; None when there is no such run or partition run."""
    _records()
    _page_args(offset, limit, MAX_FAILURE_PAGE)
    control = _control(db)
    try:
        scope = _failure_scope(control, run_id, partition_run_id)
        if scope is None:
            return None
        job_id, partition_id = scope
        rows = control.failures_page(job_id, run_id, partition_id, offset=offset,
                                     limit=limit) if limit else []
        return FailurePage(run_id, partition_run_id,
                           control.count_failures(job_id, run_id, partition_id), offset, limit,
                           tuple(_failed_object(f) for f in rows))
    finally:
        control.close()


def iter_run_failures(run_id: int, *, db: str = DEFAULT_DB,
                      partition_run_id: int | None = None) -> Iterator[Failure] | None:
    """Every row of :func:`run_failures`, read a page at a time as the iterator is consumed
    (memory stays flat however long the log is); None when there is no such run or
    partition run.  The DB stays open until the iterator ends or is closed."""
    control = _control(db)
    try:
        scope = _failure_scope(control, run_id, partition_run_id)
    except BaseException:
        control.close()
        raise
    if scope is None:
        control.close()
        return None
    job_id, partition_id = scope

    def rows() -> Iterator[Failure]:
        try:
            after = 0
            while True:
                page = control.failures_page(job_id, run_id, partition_id, after_id=after,
                                             limit=MAX_FAILURE_PAGE)
                for f in page:
                    yield _failed_object(f)
                if len(page) < MAX_FAILURE_PAGE:
                    return
                after = int(page[-1]["id"])
        finally:
            control.close()

    return rows()


def cancel_run(run_id: int, *, db: str = DEFAULT_DB) -> bool:
    """Ask run ``run_id`` to stop: at its next heartbeat it claims nothing more and its
    partitions end at their cursor (pending; the next run resumes them).  False when the
    run is not running."""
    control = _control(db)
    try:
        return control.request_cancel(run_id)
    finally:
        control.close()


def rerun_failed(job: str, *, db: str = DEFAULT_DB) -> int:
    """Make the failed partitions of ``job`` pending again (at their cursor): a running
    run with a free batch slot takes them, else the next ``lakeshift run``.  Returns how
    many."""
    control = _control(db)
    try:
        return control.reset_failed(control.job(job).id)
    finally:
        control.close()


def metrics(*, db: str = DEFAULT_DB) -> tuple[model.JobMetrics, ...]:
    """Every job's figures for monitoring (``/metrics``), computed from the control DB."""
    _records()
    control = _control(db)
    try:
        t = control.monitor_totals()
    finally:
        control.close()
    out: dict[str, dict[str, Any]] = {}

    def job_entry(name: str) -> dict[str, Any]:
        return out.setdefault(name, {"job": name, "objects_copied": 0, "bytes_copied": 0,
                                     "in_flight": 0, "runs_running": 0, "partitions": {},
                                     "retries": {}, "throttled": 0, "errors": {}})

    for r in t["copied"]:
        e = job_entry(r["job"])
        e["objects_copied"], e["bytes_copied"] = int(r["copied"]), int(r["bytes"])
    for r in t["states"]:
        job_entry(r["job"])["partitions"][r["state"]] = int(r["n"])
    for r in t["activity"]:
        e = job_entry(r["job"])
        if r["run_state"] == "running" and r["state"] == "running":
            e["in_flight"] += int(r["in_flight"])
        e["throttled"] += int(r["throttled"])
        for kind, n in json.loads(r["retries"] or "{}").items():
            e["retries"][kind] = e["retries"].get(kind, 0) + int(n)
    for r in t["errors"]:
        job_entry(r["job"])["errors"][r["error_kind"]] = int(r["n"])
    for r in t["running"]:
        job_entry(r["job"])["runs_running"] = int(r["n"])
    return tuple(JobMetrics(**e) for e in out.values())


async def run_detail_async(run_id: int, *, db: str = DEFAULT_DB, offset: int = 0,
                           limit: int | None = None) -> model.RunDetail | None:
    """:func:`run_detail` in a worker thread (the event loop stays free)."""
    return await asyncio.to_thread(run_detail, run_id, db=db, offset=offset, limit=limit)


async def partition_run_async(partition_run_id: int, *,
                              db: str = DEFAULT_DB) -> model.PartitionRunStatus | None:
    """:func:`partition_run` in a worker thread."""
    return await asyncio.to_thread(partition_run, partition_run_id, db=db)


async def run_failures_async(run_id: int, *, db: str = DEFAULT_DB,
                             partition_run_id: int | None = None
                             ) -> tuple[Failure, ...] | None:
    """:func:`run_failures` in a worker thread."""
    return await asyncio.to_thread(run_failures, run_id, db=db,
                                   partition_run_id=partition_run_id)


async def run_failures_page_async(run_id: int, *, db: str = DEFAULT_DB,
                                  partition_run_id: int | None = None, offset: int = 0,
                                  limit: int = 100) -> model.FailurePage | None:
    """:func:`run_failures_page` in a worker thread."""
    return await asyncio.to_thread(run_failures_page, run_id, db=db,
                                   partition_run_id=partition_run_id, offset=offset,
                                   limit=limit)


async def cancel_run_async(run_id: int, *, db: str = DEFAULT_DB) -> bool:
    """:func:`cancel_run` in a worker thread."""
    return await asyncio.to_thread(cancel_run, run_id, db=db)


async def rerun_failed_async(job: str, *, db: str = DEFAULT_DB) -> int:
    """:func:`rerun_failed` in a worker thread."""
    return await asyncio.to_thread(rerun_failed, job, db=db)


async def metrics_async(*, db: str = DEFAULT_DB) -> tuple[model.JobMetrics, ...]:
    """:func:`metrics` in a worker thread."""
    return await asyncio.to_thread(metrics, db=db)


#: What docs/api.md documents (lakeshift/__init__.py re-exports it).  Everything else here
#: is private: the CLI imports what it needs beyond this from the modules that own it.
__all__ = [
    "DEFAULT_DB", "CheckLine", "CheckResult", "CopyResult", "Failure", "FailuresResult",
    "JobStatus", "PartitionStatus", "PlanResult", "Rename", "RunResult", "RunStatus",
    "SourceDeleted", "StateTotals", "StatusResult", "StoreOptions", "SyncResult", "SyncWindow",
    "TransferStats", "VerifyResult", "check", "check_async", "copy", "copy_async",
    "delete_job", "delete_job_async", "failures", "failures_async", "plan", "plan_async",
    "plan_job", "reset_job", "reset_job_async", "run", "run_async", "run_job", "status",
    "status_async", "sync", "sync_async", "verify", "verify_async"]
# scan (issue 15), tune (issue 16); the monitor's reads and actions (issue 13).
__all__ += ["JobMetrics", "PartitionRunStatus", "RunDetail", "ScanResult", "TuneResult",
            "cancel_run", "cancel_run_async", "metrics", "metrics_async", "partition_run",
            "partition_run_async", "rerun_failed", "rerun_failed_async", "run_detail",
            "run_detail_async", "run_failures", "run_failures_async", "scan", "scan_async",
            "tune", "tune_async"]
# The monitor's review (issue 13): read-only access.
__all__ += ["MAX_SAMPLES", "FailurePage", "iter_run_failures", "reading_only",
            "run_failures_page", "run_failures_page_async"]
