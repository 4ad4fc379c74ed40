"""``sync`` (``lakeshift sync``; docs/sync.md): delta passes over a job,
which it creates on first use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeshift import model
from lakeshift.api.common import (
    MiB,
    _blocking,
    _check_stores,
    _dask_cluster,
    _endpoint_settings,
    _job_store_pairs,
    _new_sqlite_file,
    _opened,
    _processes_here,
    _remove_sqlite_file,
    _run_store_options,
    _s3_endpoint_used,
    _store_settings_recorded,
)
from lakeshift.api.copying import (
    _closed,
    _proofs,
    _refuse_proof_log_on_dask,
)
from lakeshift.control import DEFAULT_DB
from lakeshift.engine.copy_options import copy_options, job_copy_options, skip_error_kinds
from lakeshift.engine.events import Subscriber
from lakeshift.errors import UsageError
from lakeshift.plan.places import absolute_local
from lakeshift.plan.source import (
    SourceSpec,
    destination_config,
    refuse_destination_inside_source,
    source_config,
)
from lakeshift.stores.base import StoreOptions
from lakeshift.urls import parse_url

if TYPE_CHECKING:
    from lakeshift.control.records import Job
    from lakeshift.control.repository import ControlDB


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
                     proof_log: str | Path | None = None,
                     store_given: Collection[str] = (),
                     store_environment: StoreOptions | None = None) -> model.SyncResult:
    """Delta pass(es) over a job (``lakeshift sync``; docs/sync.md).

    With ``source`` and ``destination`` the job is created on first use (partitions as in
    :func:`plan`, or from ``adf_delta_table``); with ``job`` alone it is a job that
    plan/run made.  Each partition copies the objects whose LastModified is in its window
    ``[start, now - lag)``: start is the end of its last succeeded window (minus
    ``overlap``), or the start of the job's historical run, or nothing (a full copy).
    With ``every`` or ``cron`` it keeps syncing until SIGINT/SIGTERM (the current pass is
    checkpointed) and calls ``on_pass`` after each pass; the result is the last pass's.
    ``dask`` runs each pass on a Dask cluster, as for :func:`run`.  ``proof_log``: a row
    per object copied, appended to that CSV file as each finishes, every pass's, as for
    :func:`copy` (not with ``dask``).  ``store_options``: how a new job reaches its stores
    (kept with it); for a job that exists, each field not at its default, or named in
    ``store_given`` (a flag typed at its default value: ``--azure-auth auto``), replaces the
    one the job was made with, for these passes only (as :func:`run`'s; each pass's result
    says which S3 endpoint it used, ``run.s3_endpoint``).  ``store_environment``: the
    environment's store options (``LAKESHIFT_AZURE_AUTH`` …), used where neither
    ``store_options`` nor the job sets one (flag > job > environment; a new job keeps them);
    ``run.store_settings`` says which was used.  The copy options (``include`` …
    ``invalid_names``) are a new job's; for one that exists a value other than the job's is
    a :class:`UsageError` naming ``plan --replan`` (every pass uses the job's).
    """
    _refuse_proof_log_on_dask(proof_log, dask)
    from lakeshift.plan.jobplan import refuse_empty_prefixes
    from lakeshift.plan.windows import DeleteCap, PathTemplate, Schedule, parse_duration

    if not job:
        raise UsageError("--job NAME is required")
    refuse_empty_prefixes(prefix, "sync")
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
    # The log is opened (its header written) before the job or its DB is made: a log
    # that cannot be written (/dev/full, a FIFO nobody reads) leaves neither behind.
    log = None
    if proof_log is not None:
        from lakeshift.engine.proof_log import ProofLog

        log = await asyncio.to_thread(ProofLog.open, proof_log)
    try:
        # The run's sizes and pacing, checked before anything is written.
        fleet = _dask_cluster(dask, db)
        copy_options(concurrency=concurrency, block_size=block_size,
                     single_put_max=single_put_max, adaptive=adaptive,
                     max_requests_per_second=max_requests_per_second, max_bandwidth=max_bandwidth,
                     processes_here=_processes_here(fleet))
        new_file = _new_sqlite_file(db) if source is not None else None

        def for_job(saved: StoreOptions) -> tuple[StoreOptions, dict[str, Any]]:
            # (A new job's ``saved`` is the defaults: it keeps the flags' and the
            # environment's values, as plan keeps them.)
            return _run_store_options(saved, store_options, store_given, store_environment)

        async with _opened(db, create=source is not None) as control:
            try:
                j = await _sync_job(control, job, source, destination, for_job, prefix,
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
            saved = job_store_options(j)
            so, store_settings = for_job(saved)
            endpoint = _s3_endpoint_used(j, saved, store_options)
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
                    adf_delta_table=delta_table, windows_from_adf=from_adf,
                    recorded={**_endpoint_settings(endpoint),
                              **_store_settings_recorded(j, so, saved, store_settings)})
                if fleet is not None:
                    from lakeshift.scale.driver import sync_pass_on_dask

                    p = await sync_pass_on_dask(control, j, fleet, settings, opts, so,
                                                batch_count, subscribers, lease_seconds,
                                                heartbeat)
                else:
                    p = await engine_sync.sync_pass(control, j, settings, opts, so, batch_count,
                                                    subscribers, lease_seconds, heartbeat)
                if keys is not None:
                    # What the pass copied or found identical is no longer a failure.
                    await asyncio.to_thread(control.clear_named_failures, j.id,
                                            p.run.run_id, keys.keys, keys.source_keys)
                p.run.job = j.name
                p.run.s3_endpoint = endpoint
                p.run.store_settings = store_settings
                # The number users see in status ("run 2"), not the DB-wide id.
                p.run.number = next((r["number"] for r in await asyncio.to_thread(
                    control.runs, j.id, 5) if r["id"] == p.run.run_id), None) or None
                windows = tuple(model.SyncWindow(o.partition, o.start, o.end, o.state, o.copied,
                                           o.skipped, o.failed_objects, o.deleted, o.error,
                                           o.held_back)
                                for o in p.outcomes)
                return model.SyncResult(j.name, p.run, windows, deleted=p.deleted,
                                  deleted_keys=tuple(p.deleted_keys[:1000]),
                                  renames=tuple(p.renames), kept=p.kept,
                                  renames_paired=p.renames_paired)

            async with _proofs(log, subscribers) as subscribers:
                if schedule is None:
                    once: model.SyncResult = await engine_sync.run_once(j, one_pass)
                    return once
                followed: model.SyncResult = await engine_sync.follow_schedule(
                    control, j, schedule, one_pass, on_pass, lease_seconds)
                return followed
    except BaseException:
        if log is not None and not log.taken:  # (once taken, _proofs closes it)
            await _closed(log, discard=True)
        raise


sync = _blocking(sync_async)


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


#: sync's copy options, by flag, with the value each has when not given.
_COPY_DEFAULTS: dict[str, Any] = {
    "include": [], "exclude": [], "overwrite": "if-different", "folder_markers": "skip",
    "skip_errors": [], "invalid_names": "fail"}


def _refuse_other_copy_options(j: Job, **given: Any) -> None:
    """An existing job is synced with the copy options it was made with; one given with
    another value is refused (it was silently ignored: every pass of a job selects, names
    and deletes by the same rules, as every run of it does).  The same value as the job's
    is accepted: the command that made the job can be repeated as it is."""
    import shlex

    other = [f"--{name.replace('_', '-')}" for name, value in given.items()
             if value != _COPY_DEFAULTS[name] and value != j.options.get(
                 name, _COPY_DEFAULTS[name])]
    if other:
        urls = " ".join(shlex.quote(u) for u in [
            *(str(x) for x in j.options.get("sources", [])), j.destination])
        flags = " ".join(f"{o} …" for o in other)
        table = j.options.get("adf_delta_table")
        after = ("its next sync pass then compares everything again" if not table else
                 f"it keeps the ADF delta table {table}, so its next sync pass starts at the "
                 "table's last successful JobRunTime and objects older than that are not "
                 f"looked at again: `lakeshift run --job {shlex.quote(j.name)}` compares "
                 "them all once")
        raise UsageError(
            f"job {j.name!r} exists: its copy options were set when it was made and every "
            f"sync pass uses them, so {', '.join(other)} cannot change them here; leave "
            f"{'it' if len(other) == 1 else 'them'} out, or plan the job again with "
            f"{'it' if len(other) == 1 else 'them'}: "
            f"`lakeshift plan {urls} --job {shlex.quote(j.name)} --replan {flags}` ({after})")


def _same_url(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name one place, however each is spelled
    (plan/places.py ``place``): the same store — an Azure container at the account and
    endpoint the credentials resolve for each (``az://C/p``,
    ``abfss://C@ACCOUNT.dfs…/p`` and ``https://ACCOUNT.blob…/C/p`` are one), an S3 bucket
    at its endpoint, a local folder (symlinks resolved) — and the same path in it, a
    trailing slash aside.  Not by their display text: that differs between spellings of
    one place.  A job's destination saved as ``az://ACCOUNT/C/p`` (before session 19)
    reads back as its place (``urls.saved_destination``).  ``a``, the URL given, that
    does not parse raises its parse error (a refusal that named the job's URLs instead
    said it was another place); ``b``, the job's, that does not parse names no place."""
    from lakeshift.plan.places import place

    options = StoreOptions()
    given = place(a, options)
    try:
        return given == place(b, options)
    except UsageError:
        return False


async def _sync_job(control: ControlDB, job: str, source: str | None,
                    destination: str | None,
                    for_job: Callable[[StoreOptions], tuple[StoreOptions, Any]],
                    prefix: Sequence[str], partitions_file: str | Path | None,
                    partition_by: str, target_objects: int, adf_delta_table: str | None,
                    include: Sequence[str], exclude: Sequence[str], overwrite: str,
                    folder_markers: str, skip_errors: str | Iterable[str],
                    invalid_names: str) -> Job:
    """The job to sync: the existing one, or (with SRC DST, on first use) a new one; the
    stores pass :func:`_check_stores` before a job is made.  ``for_job``: a job's saved
    store options → the pass's (a new job's: the defaults → what it keeps)."""
    from lakeshift.plan.jobplan import create_plan, read_partitions_file

    call = asyncio.to_thread
    if (source is None or destination is None
            or job in {x.name for x in await call(control.jobs)}):
        j = await call(control.job, job)
        if adf_delta_table and j.options.get("adf_delta_table") != adf_delta_table:
            import shlex

            urls = " ".join(shlex.quote(str(u)) for u in [*j.options.get("sources", []),
                                                          j.destination])
            raise UsageError(f"job {job!r} was not made from --adf-delta-table "
                             f"{adf_delta_table}: leave the option out, use a new --job, or "
                             f"plan the job again from that table: `lakeshift plan {urls} "
                             f"--job {shlex.quote(job)} --replan --adf-delta-table "
                             f"{shlex.quote(adf_delta_table)}`")
        _refuse_other_urls(j, source, destination, prefix, partitions_file)
        _refuse_other_copy_options(j, include=list(include),
                                   exclude=list(exclude), overwrite=overwrite,
                                   folder_markers=folder_markers,
                                   skip_errors=sorted(skip_error_kinds(skip_errors)),
                                   invalid_names=invalid_names)
        await _check_stores(await call(
            _job_store_pairs, control, j,
            for_job(StoreOptions(**j.options.get("store", {})))[0]), new_job=False)
        return j
    store_options = for_job(StoreOptions())[0]
    new_stores = [(source_config(source, store_options),
                   destination_config(destination, store_options))]
    # Before the stores are asked anything (plan refuses it too, after them, a string
    # prefix as well; an ADF delta table's job is not planned: its path as one).
    refuse_destination_inside_source(*new_stores[0], SourceSpec(
        new_stores[0][0].url.path, "") if adf_delta_table else None)
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
        # Local paths saved absolute, as plan saves them (see create_plan).
        source, destination = absolute_local(source), absolute_local(destination)
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
