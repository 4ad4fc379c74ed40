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
import csv
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lakeshift.control import DEFAULT_DB
from lakeshift.engine.check import check_pair
from lakeshift.engine.copy_options import copy_options
from lakeshift.engine.events import Subscriber
from lakeshift.engine.pipeline import CopyOptions, CopyResult, copy_async
from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.model import (
    CheckResult,
    FailedObject,
    FailuresResult,
    JobStatus,
    PartitionStatus,
    PlanResult,
    RunResult,
    RunStatus,
    StatusResult,
    SyncResult,
    SyncWindow,
    VerifyResult,
)
from lakeshift.plan.jobconfig import JobConfig
from lakeshift.plan.jobconfig import dump as config_text
from lakeshift.plan.jobconfig import load as load_config
from lakeshift.plan.jobconfig import parse_every as parse_schedule
from lakeshift.plan.source import SourceSpec, destination_config, source_config
from lakeshift.stores.azure.auth import AUTH_CHOICES as AZURE_AUTH_CHOICES
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.urls import StoreURL, parse_url

if TYPE_CHECKING:
    from lakeshift.control.records import Job
    from lakeshift.control.repository import ControlDB
    from lakeshift.engine.verify import Pair

MiB = 1024 * 1024
_STATES = ("pending", "running", "succeeded", "failed")


def _control(db: str, create: bool = False) -> ControlDB:
    # Imported here: SQLAlchemy costs ~0.13 s at start-up, and `copy` never needs it.
    from lakeshift.control.repository import ControlDB

    return ControlDB(db, create=create)


def _as_utc(value: datetime | None) -> datetime | None:
    from lakeshift.control.records import as_utc

    return as_utc(value)


# -- copy --------------------------------------------------------------------------------


def copy(source: str, destination: str, *, concurrency: int = 32,
         block_size: int | str = 8 * MiB, single_put_max: int | str = 64 * MiB,
         overwrite: str = "if-different", include: Sequence[str] = (),
         exclude: Sequence[str] = (), dry_run: bool = False, folder_markers: str = "skip",
         skip_errors: str | Iterable[str] = (), invalid_names: str = "fail",
         max_requests_per_second: float | None = None,
         max_bandwidth: int | str | None = None, adaptive: bool = True,
         delete_source_after_verify: bool = False,
         store_options: StoreOptions | None = None,
         subscribers: list[Subscriber] | None = None) -> CopyResult:
    """Copy what ``source`` names into ``destination`` (``lakeshift copy``).

    Returns a :class:`CopyResult`; object failures are in ``result.failures`` (and
    ``result.exit_code`` is 1), errors that stop the run raise a ``LakeshiftError``.
    ``subscribers`` receive the engine's events (progress).
    """
    opts = copy_options(concurrency=concurrency, block_size=block_size,
                        single_put_max=single_put_max, overwrite=overwrite, include=include,
                        exclude=exclude, dry_run=dry_run, folder_markers=folder_markers,
                        skip_errors=skip_errors, invalid_names=invalid_names,
                        adaptive=adaptive, max_requests_per_second=max_requests_per_second,
                        max_bandwidth=max_bandwidth, delete_source=delete_source_after_verify)
    return asyncio.run(copy_async(source_config(source, store_options),
                                  destination_config(destination, store_options), opts,
                                  subscribers))


# -- plan, run ---------------------------------------------------------------------------


def plan(sources: str | Sequence[str] = (), destination: str | None = None, *, job: str,
         db: str = DEFAULT_DB, prefix: Sequence[str] = (),
         partitions_file: str | Path | None = None, partition_by: str = "none",
         target_objects: int = 100_000, adf_control_table: str | None = None,
         show: bool = False, include: Sequence[str] = (), exclude: Sequence[str] = (),
         overwrite: str = "if-different", folder_markers: str = "skip",
         skip_errors: str | Iterable[str] = (), invalid_names: str = "fail",
         delete_source_after_verify: bool = False, replan: bool = False,
         force: bool = False,
         store_options: StoreOptions | None = None) -> PlanResult:
    """Write a job and its partitions to the control DB (``lakeshift plan``); nothing is
    copied yet.  With ``show`` and no sources, read the existing job instead.

    ``replan`` plans a job that exists again: with sources, the old job is replaced by the
    new plan once the new one has been validated and listed; without, its partitions are
    reset (:func:`reset_job`).  ``force``: even while a live process runs the job."""
    from lakeshift.engine.copy_options import skip_error_kinds
    from lakeshift.plan.jobplan import create_plan, read_partitions_file

    if not job:
        raise UsageError("--job NAME is required")
    srcs = [sources] if isinstance(sources, str) else list(sources)
    if replan and not srcs and destination is None:
        reset_job(job, db=db, force=force)
        return plan(job=job, db=db, show=True)
    if show and not srcs and destination is None:
        control = _control(db)
        try:
            return PlanResult(control.shown, _job_status(control, control.job(job), True),
                              created=False)
        finally:
            control.close()
    if not srcs or destination is None:
        raise UsageError("plan needs SRC and DST (lakeshift plan SRC [SRC…] DST --job NAME)")
    prefixes = list(prefix)
    if partitions_file is not None:
        if prefixes:
            raise UsageError("use --prefix or --partitions-file, not both")
        prefixes = read_partitions_file(Path(partitions_file))
    with _planning_db(db) as control:
        j = create_plan(control, job, srcs, destination, store_options or StoreOptions(),
                        prefixes, partition_by, target_objects, adf_control_table,
                        list(include), list(exclude), overwrite, folder_markers,
                        sorted(skip_error_kinds(skip_errors)), invalid_names,
                        delete_source_after_verify, replace=replan, force=force)
        return PlanResult(control.shown, _job_status(control, j, True))


@contextmanager
def _planning_db(db: str) -> Iterator[ControlDB]:
    """The control DB to write a job in, created if missing.  The job is written in one
    transaction, last: a plan that fails before it leaves no job, and no DB file that was
    created only to hold it."""
    new_file = _new_sqlite_file(db)
    control: ControlDB | None = None
    try:
        control = _control(db, create=True)
        yield control
    except BaseException:
        if control is not None:
            control.close()
            control = None
        if new_file is not None:
            for path in (new_file, *(Path(f"{new_file}{s}") for s in ("-wal", "-shm",
                                                                       "-journal"))):
                path.unlink(missing_ok=True)
        raise
    finally:
        if control is not None:
            control.close()


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


def reset_job(job: str, *, db: str = DEFAULT_DB, force: bool = False) -> int:
    """Plan job ``job`` again from the start (``lakeshift plan --job J --replan``): every
    partition pending with no cursor, its failure records dropped; runs stay as history.
    Refused while a live process runs the job, unless ``force``.  Returns the number of
    partitions."""
    control = _control(db)
    try:
        return control.reset_job(job, force=force)
    finally:
        control.close()


def delete_job(job: str, *, db: str = DEFAULT_DB, force: bool = False) -> None:
    """Delete job ``job`` and everything recorded about it (``lakeshift plan --job J
    --delete``); objects already copied stay.  Refused while a live process runs the job,
    unless ``force``."""
    control = _control(db)
    try:
        control.delete_job(job, force=force)
    finally:
        control.close()


def run(*, job: str = "", db: str = DEFAULT_DB, batch_count: int = 4, concurrency: int = 32,
        block_size: int | str = 8 * MiB, single_put_max: int | str = 64 * MiB,
        lease_seconds: float = 60.0, max_requests_per_second: float | None = None,
        max_bandwidth: int | str | None = None, adaptive: bool = True,
        config: str | Path | None = None,
        subscribers: list[Subscriber] | None = None) -> RunResult:
    """Copy the pending and failed partitions of a job (``lakeshift run``), once.

    ``config`` (a ``lakeshift.toml``) replaces ``job``, ``db``, ``batch_count`` and
    ``concurrency`` and plans the job first if the DB lacks it; its schedule is the
    caller's to follow (``load_config(path).every_s``).
    """
    if config is not None:
        cfg = load_config(Path(config))
        job, db, batch_count, concurrency = cfg.name, cfg.db, cfg.batch_count, cfg.concurrency
        _plan_from_config(cfg)
    if not job:
        raise UsageError("--job NAME is required")
    if batch_count < 1:
        raise UsageError("--batch-count must be at least 1")
    if lease_seconds < 2:
        raise UsageError("--lease-seconds must be at least 2")
    from lakeshift.engine import jobrunner

    control = _control(db)
    try:
        j = control.job(job)
        # Checked by the one builder; job_copy_options then adds the job's saved options.
        pace = copy_options(concurrency=concurrency, block_size=block_size,
                            single_put_max=single_put_max, adaptive=adaptive,
                            max_requests_per_second=max_requests_per_second,
                            max_bandwidth=max_bandwidth)
        opts = jobrunner.job_copy_options(j, pace.concurrency, pace.block_size, pace.adaptive,
                                          pace.max_requests_per_second, pace.max_bandwidth,
                                          single_put_max=pace.single_put_max)
        _check_stores(_job_store_pairs(control, j, StoreOptions(**j.options.get("store", {}))),
                     new_job=False)
        result = asyncio.run(jobrunner.run_job(
            control, j, batch_count, opts, StoreOptions(**j.options.get("store", {})),
            subscribers, lease_s=lease_seconds,
            heartbeat_s=max(1.0, min(5.0, lease_seconds / 4))))
        result.job = j.name
        result.number = next((r.number for r in map(_run_status, control.runs(j.id))
                              if r.id == result.run_id), None)
        return result
    finally:
        control.close()


def _plan_from_config(cfg: JobConfig) -> None:
    from lakeshift.plan.jobplan import create_plan

    with _planning_db(cfg.db) as control:
        if cfg.name in {j.name for j in control.jobs()}:
            return
        create_plan(control, cfg.name, cfg.sources, cfg.destination, cfg.store,
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


def sync(source: str | None = None, destination: str | None = None, *, job: str = "",
         db: str = DEFAULT_DB, prefix: Sequence[str] = (),
         partitions_file: str | Path | None = None, partition_by: str = "none",
         target_objects: int = 100_000, adf_delta_table: str | None = None,
         lag: str = "5m", overlap: str = "0", path_template: str | None = None,
         files_from: str | Path | None = None, inventory: str | None = None,
         delete: bool = False, max_delete: str | int | None = None,
         every: str | None = None, cron: str | None = None, batch_count: int = 4,
         concurrency: int = 32, block_size: int | str = 8 * MiB,
         single_put_max: int | str = 64 * MiB, lease_seconds: float = 60.0,
         max_requests_per_second: float | None = None,
         max_bandwidth: int | str | None = None, adaptive: bool = True,
         include: Sequence[str] = (), exclude: Sequence[str] = (),
         overwrite: str = "if-different", folder_markers: str = "skip",
         skip_errors: str | Iterable[str] = (), invalid_names: str = "fail",
         store_options: StoreOptions | None = None,
         subscribers: list[Subscriber] | None = None,
         on_pass: Callable[[SyncResult], None] | None = None) -> SyncResult:
    """Delta pass(es) over a job (``lakeshift sync``; README "Delta sync").

    With ``source`` and ``destination`` the job is created on first use (partitions as in
    :func:`plan`, or from ``adf_delta_table``); with ``job`` alone it is a job that
    plan/run made.  Each partition copies the objects whose LastModified is in its window
    ``[start, now - lag)``: start is the end of its last succeeded window (minus
    ``overlap``), or the start of the job's historical run, or nothing (a full copy).
    With ``every`` or ``cron`` it keeps syncing until SIGINT/SIGTERM (the current pass is
    checkpointed) and calls ``on_pass`` after each pass; the result is the last pass's.
    """
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
    if batch_count < 1:
        raise UsageError("--batch-count must be at least 1")
    if lease_seconds < 2:
        raise UsageError("--lease-seconds must be at least 2")
    keys = None
    if files_from is not None:
        from lakeshift.plan.changes import read_files_from

        keys = tuple(read_files_from(files_from))
    if (source is None) != (destination is None):
        raise UsageError("sync needs SRC and DST (to create the job), or --job NAME alone")
    pace = copy_options(concurrency=concurrency, block_size=block_size,
                        single_put_max=single_put_max, adaptive=adaptive,
                        max_requests_per_second=max_requests_per_second,
                        max_bandwidth=max_bandwidth)
    new_file = _new_sqlite_file(db) if source is not None else None
    control = _control(db, create=source is not None)
    try:
        try:
            j = _sync_job(control, job, source, destination, store_options, prefix,
                          partitions_file, partition_by, target_objects, adf_delta_table,
                          include, exclude, overwrite, folder_markers, skip_errors,
                          invalid_names)
        except BaseException:
            # A job that could not be made leaves no DB file made only to hold it.
            control.close()
            _remove_sqlite_file(new_file)
            raise
        from lakeshift.control.schema import ADF_DELTA_TABLE
        from lakeshift.engine import jobrunner
        from lakeshift.engine import sync as engine_sync

        delta_table = str(j.options.get("adf_delta_table") or ADF_DELTA_TABLE)
        from_adf = bool(j.options.get("adf_delta_table"))
        so = store_options or StoreOptions(**j.options.get("store", {}))
        opts = jobrunner.job_copy_options(j, pace.concurrency, pace.block_size, pace.adaptive,
                                          pace.max_requests_per_second, pace.max_bandwidth,
                                          single_put_max=pace.single_put_max)
        heartbeat = max(1.0, min(5.0, lease_seconds / 4))

        async def one_pass() -> SyncResult:
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
                files_from=keys, inventory=inv, delete=delete, max_delete=cap,
                adf_delta_table=delta_table, windows_from_adf=from_adf)
            p = await engine_sync.sync_pass(control, j, settings, opts, so, batch_count,
                                            subscribers, lease_seconds, heartbeat)
            p.run.job = j.name
            # The number users see in status ("run 2"), not the DB-wide id.
            p.run.number = next((r["number"] for r in await asyncio.to_thread(
                control.runs, j.id, 5) if r["id"] == p.run.run_id), None) or None
            windows = tuple(SyncWindow(o.partition, o.start, o.end, o.state, o.copied,
                                       o.skipped, o.failed_objects, o.deleted, o.error)
                            for o in p.outcomes)
            return SyncResult(j.name, p.run, windows, deleted=len(p.deleted_keys),
                              deleted_keys=tuple(p.deleted_keys[:1000]))

        if schedule is None:
            return asyncio.run(one_pass())
        followed: SyncResult = asyncio.run(engine_sync.follow_schedule(
            control, j, schedule, one_pass, on_pass, lease_seconds))
        return followed
    finally:
        control.close()


def _remove_sqlite_file(path: Path | None) -> None:
    if path is not None:
        for p in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-journal"))):
            p.unlink(missing_ok=True)


def _check_stores(pairs: Iterable[tuple[StoreConfig, StoreConfig]], new_job: bool) -> None:
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

    asyncio.run(check_all())


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


def _sync_job(control: ControlDB, job: str, source: str | None, destination: str | None,
              store_options: StoreOptions | None, prefix: Sequence[str],
              partitions_file: str | Path | None, partition_by: str, target_objects: int,
              adf_delta_table: str | None, include: Sequence[str], exclude: Sequence[str],
              overwrite: str, folder_markers: str, skip_errors: str | Iterable[str],
              invalid_names: str) -> Job:
    """The job to sync: the existing one, or (with SRC DST, on first use) a new one; the
    stores pass :func:`_check_stores` before a job is made."""
    from lakeshift.engine.copy_options import skip_error_kinds
    from lakeshift.plan.jobplan import create_plan, read_partitions_file

    if source is None or destination is None or job in {x.name for x in control.jobs()}:
        j = control.job(job)
        if adf_delta_table and j.options.get("adf_delta_table") != adf_delta_table:
            raise UsageError(f"job {job!r} was not made from --adf-delta-table "
                             f"{adf_delta_table}: leave the option out, or use a new --job")
        _refuse_other_urls(j, source, destination, prefix, partitions_file)
        _check_stores(_job_store_pairs(
            control, j, store_options or StoreOptions(**j.options.get("store", {}))),
            new_job=False)
        return j
    new_stores = [(source_config(source, store_options),
                   destination_config(destination, store_options))]
    prefixes = list(prefix)
    if partitions_file is not None:
        if prefixes:
            raise UsageError("use --prefix or --partitions-file, not both")
        prefixes = read_partitions_file(Path(partitions_file))
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
        control.adf_delta_prefixes(adf_delta_table)  # checks the table before writing
        _check_stores(new_stores, new_job=True)
        src_url = parse_url(source)
        base = bucket_url(source, src_url.bucket, src_url.scheme, src_url.account)
        dst_url = parse_url(destination)
        options: dict[str, Any] = {
            "include": list(include), "exclude": list(exclude), "overwrite": overwrite,
            "folder_markers": folder_markers,
            "skip_errors": sorted(skip_error_kinds(skip_errors)),
            "invalid_names": invalid_names, "store": asdict(so), "sources": [source],
            "adf_source": base, "adf_delta_table": adf_delta_table}
        control.create_job(job, dst_url.display() if dst_url.scheme != "file"
                           else destination, options, [])
        j = control.job(job)
        _add_adf_delta_partitions(control, j)
        return j
    if partition_by not in ("none", "auto"):
        raise UsageError(f"--partition-by {partition_by!r}: use none or auto")
    copy_options(include=include, exclude=exclude, overwrite=overwrite,
                 folder_markers=folder_markers, skip_errors=skip_errors,
                 invalid_names=invalid_names)
    _check_stores(new_stores, new_job=True)
    return create_plan(control, job, [source], destination, so, prefixes, partition_by,
                       target_objects, None, list(include), list(exclude), overwrite,
                       folder_markers, sorted(skip_error_kinds(skip_errors)), invalid_names)


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


def status(*, db: str = DEFAULT_DB, job: str | None = None) -> StatusResult:
    """Jobs with their totals (``lakeshift status``); a named job also with its partition
    table and its latest runs."""
    control = _control(db)
    try:
        jobs = [control.job(job)] if job else control.jobs()
        return StatusResult(control.shown,
                            tuple(_job_status(control, j, job is not None) for j in jobs))
    finally:
        control.close()


def _partition_status(r: Any) -> PartitionStatus:
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


def _run_status(r: Any) -> RunStatus:
    return RunStatus(id=r["id"], state=r["state"], owner=r["owner"],
                     batch_count=r["batch_count"], partitions_succeeded=r["partitions_done"],
                     partitions_failed=r["partitions_failed"], copied=r["copied"],
                     bytes=r["bytes"], started_at=_as_utc(r["started_at"]),
                     finished_at=_as_utc(r["finished_at"]),
                     settings=json.loads(r["settings"]), number=r.get("number") or None)


def _job_status(control: ControlDB, job: Job, detail: bool) -> JobStatus:
    parts = tuple(_partition_status(r) for r in control.partitions(job.id))
    sched = control.schedule(job.id)
    counts = {s: sum(1 for p in parts if p.state == s) for s in _STATES}
    runs = tuple(_run_status(r) for r in control.runs(job.id))
    last_pass = next((r for r in runs if r.settings.get("mode") == "sync"), None)
    copied, nbytes = sum(p.copied for p in parts), sum(p.bytes for p in parts)
    if last_pass is not None:
        # A sync pass starts its partitions' counters at zero: the job's totals are its runs'.
        copied, nbytes = control.run_totals(job.id)
    return JobStatus(
        job=job.name, destination=job.destination, created_at=_as_utc(job.created_at),
        adf_table=job.adf_table, partitions=len(parts), **counts,
        copied=copied, bytes=nbytes,
        failed_objects=sum(p.failed_objects for p in parts), detail=detail,
        partition_table=parts if detail else (),
        runs=runs if detail else (),
        sync_schedule=sched["schedule"] if sched is not None and sched["owner"] else None,
        next_sync_at=_as_utc(sched["next_run_at"]) if sched is not None else None,
        last_sync_pass=last_pass)


FAILURE_FIELDS = ("object_key", "error_kind", "message", "attempts", "skipped", "at",
                  "partition_id", "run_id")


def failures(*, job: str = "", db: str = DEFAULT_DB,
             csv_file: str | Path | None = None) -> FailuresResult:
    """Every object that failed in a job (``lakeshift failures``).

    With ``csv_file`` the rows are streamed into that CSV (``"-"``: standard output) and not
    kept in the result (memory stays flat however many there are); ``count`` says how many.
    """
    if not job:
        raise UsageError("--job NAME is required")
    control = _control(db)
    try:
        j = control.job(job)
        rows = (_failed_object(r) for r in control.failures(j.id))
        if csv_file is None:
            kept = tuple(rows)
            return FailuresResult(job, kept, len(kept))
        fh: TextIO
        if str(csv_file) == "-":
            fh = sys.stdout
        else:
            try:
                fh = open(csv_file, "w", newline="", encoding="utf-8")  # noqa: SIM115
            except OSError as e:
                raise UsageError(f"cannot write {csv_file}: {e.strerror}") from None
        try:
            n = write_failures_csv(rows, fh)
        finally:
            if fh is not sys.stdout:
                fh.close()
        return FailuresResult(job, (), n, str(csv_file))
    finally:
        control.close()


def _failed_object(r: Any) -> FailedObject:
    return FailedObject(object_key=r["object_key"], error_kind=r["error_kind"],
                        message=r["message"], attempts=r["attempts"], skipped=r["skipped"],
                        at=_as_utc(r["at"]), partition_id=r["partition_id"],
                        run_id=r["run_id"])


def write_failures_csv(rows: Iterable[FailedObject], fh: TextIO) -> int:
    """The failure log as CSV (a header, then one row each; times ISO 8601 UTC)."""
    w = csv.writer(fh)
    w.writerow(FAILURE_FIELDS)
    n = 0
    for f in rows:
        w.writerow([v.isoformat() if isinstance(v, datetime) else v
                    for v in (getattr(f, name) for name in FAILURE_FIELDS)])
        n += 1
    return n


# -- verify, check -----------------------------------------------------------------------


def verify(source: str | None = None, destination: str | None = None, *,
           job: str | None = None, db: str = DEFAULT_DB, deep: bool = False,
           report: str | Path | None = None, concurrency: int = 16,
           include: Sequence[str] = (), exclude: Sequence[str] = (),
           invalid_names: str = "fail", adaptive: bool = True,
           max_requests_per_second: float | None = None,
           max_bandwidth: int | str | None = None,
           store_options: StoreOptions | None = None) -> VerifyResult:
    """Prove that ``destination`` holds exactly what ``source`` holds, or every partition of
    ``job`` (``lakeshift verify``).  Writes ``REPORT.csv`` (the differences) and
    ``REPORT.json`` (the summary); ``result.exit_code`` is 1 on any difference."""
    from lakeshift.engine.verify import Report, VerifyOptions, verify_async, write_summary

    so = store_options or StoreOptions()
    if job:
        if source or destination:
            raise UsageError("give SRC DST, or --job, not both")
        pairs, label, invalid_names = _job_pairs(db, job, so)
    elif source and destination:
        pairs = [(source_config(source, so), destination_config(destination, so), None, None)]
        label = f"{source} → {destination}"
    else:
        raise UsageError("verify needs SRC DST (or --job NAME)")
    if invalid_names not in ("fail", "skip", "encode"):
        raise UsageError("--invalid-names must be fail, skip or encode")
    if not 1 <= concurrency <= 256:
        raise UsageError("--concurrency must be between 1 and 256")
    pace = copy_options(adaptive=adaptive, max_requests_per_second=max_requests_per_second,
                        max_bandwidth=max_bandwidth)
    prefix = report or Path(time.strftime("lakeshift-verify-%Y%m%d-%H%M%S"))
    csv_path, json_path = Path(f"{prefix}.csv"), Path(f"{prefix}.json")
    made = _make_folders(csv_path.parent)
    try:
        fh = open(csv_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        _remove_folders(made)
        raise UsageError(f"cannot write the report {csv_path}: {e.strerror}") from None
    opts = VerifyOptions(deep=deep, concurrency=concurrency, include=tuple(include),
                         exclude=tuple(exclude), invalid_names=invalid_names,
                         adaptive=pace.adaptive,
                         max_requests_per_second=pace.max_requests_per_second,
                         max_bandwidth=pace.max_bandwidth)
    try:
        with fh:
            result = asyncio.run(verify_async(pairs, opts, Report(fh)))
    except (LakeshiftError, BaseExceptionGroup):
        # Stopped before a verdict (credentials rejected, a missing container): a report
        # with only its header would read as "no differences".  (After Ctrl-C the rows
        # found so far stay.)
        csv_path.unlink(missing_ok=True)
        _remove_folders(made)
        raise
    s = write_summary(json_path, result, {"verified_what": label, "deep": deep,
                                          "report_csv": str(csv_path)})
    return VerifyResult(
        verified_what=label, deep=deep, report_csv=str(csv_path), report_json=str(json_path),
        checked=s["checked"], verified=s["verified"], missing=s["missing"], extra=s["extra"],
        size=s["size"], checksum=s["checksum"], unverifiable=s["unverifiable"],
        differences=s["differences"], renamed=s["renamed"],
        unverifiable_reasons=dict(s["unverifiable_reasons"]), bytes_read=s["bytes_read"],
        duration_s=s["duration_s"], exit_code=result.exit_code, summary=s)


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
    control = _control(db)
    try:
        j = control.job(job)
        saved = StoreOptions(**j.options.get("store", {}))
        options = saved if so == StoreOptions() else so
        pairs: list[Pair] = []
        for r in control.partitions(j.id):
            spec = SourceSpec(r["prefix"], r["rel_base"], range_start=r["range_start"],
                              range_end=r["range_end"])
            pairs.append((StoreConfig(parse_url(r["source"]), options),
                          StoreConfig(parse_url(r["destination"]), options), spec, None))
        n = len(pairs)
        return (pairs, f"job {job} ({n} partition{'' if n == 1 else 's'})",
                str(j.options.get("invalid_names", "fail")))
    finally:
        control.close()


def check(source: str, destination: str, *,
          store_options: StoreOptions | None = None) -> CheckResult:
    """Test both sides before a migration (``lakeshift check``): credentials, reachability,
    list and read on the source, write and delete of a probe under the destination, clock
    skew.  A failed step is a line of the result, not an exception."""
    lines = asyncio.run(check_pair(source_config(source, store_options),
                                   destination_config(destination, store_options)))
    return CheckResult(source, destination, tuple(lines))


__all__ = ["AZURE_AUTH_CHOICES", "DEFAULT_DB", "FAILURE_FIELDS", "CheckResult", "CopyOptions",
           "CopyResult", "FailedObject", "FailuresResult", "JobConfig", "JobStatus",
           "PartitionStatus", "PlanResult", "RunResult", "RunStatus", "StatusResult",
           "StoreOptions", "StoreURL", "SyncResult", "SyncWindow", "VerifyResult", "check",
           "config_text", "copy", "delete_job", "destination_config", "failures", "load_config",
           "parse_schedule", "plan", "plan_job", "reset_job", "run", "run_job", "source_config",
           "status", "sync", "verify",
           "write_failures_csv"]
