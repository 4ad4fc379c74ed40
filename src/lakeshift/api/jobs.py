"""``plan`` and ``run`` (``lakeshift plan``, ``lakeshift run``, ``run --config``), and
resetting or deleting a job."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
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
    _opened,
    _page_args,
    _planning_db,
    _processes_here,
    _run_copy_mode,
    _run_store_options,
    _s3_endpoint_used,
    _store_settings_recorded,
)
from lakeshift.api.copying import _check_proof_log, _proofs, _refuse_proof_log_on_dask
from lakeshift.api.state import _job_status, _run_status
from lakeshift.control import DEFAULT_DB
from lakeshift.engine.copy_options import job_copy_options, skip_error_kinds
from lakeshift.engine.events import EventBus, Subscriber
from lakeshift.errors import UsageError
from lakeshift.model import RunResult
from lakeshift.stores.base import StoreOptions

if TYPE_CHECKING:
    from lakeshift.control.repository import ControlDB
    from lakeshift.plan.jobconfig import JobConfig


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
                     limit: int | None = None, all_partitions: bool = False,
                     adf_delta_table: str | None = None,
                     changed: Collection[str] = ()) -> model.PlanResult:
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
    listing is split across the cluster's workers (docs/dask.md).

    ``adf_delta_table``: the job's partitions are that ADF delta table's PartitionPrefix
    values, as ``sync --adf-delta-table`` makes them (one source; nothing listed), and its
    sync windows start at the table's successful JobRunTime.  Planning again (``replan``
    with sources) a job made so keeps its table unless another is given, or "" (none: the
    job is planned from its sources as any other, and its sync windows start from
    nothing); other partitions (``prefix``…) given for it without "" are a UsageError.

    ``changed`` (with ``replan`` and no sources): the names of the copy options
    (:data:`_CHANGEABLE`) whose values given here replace the job's saved ones, its
    partitions kept and restarted (``lakeshift plan --job J --replan --skip-errors
    forbidden``)."""
    from lakeshift.plan.jobplan import (
        create_plan,
        read_partitions_file,
        refuse_empty_prefixes,
    )

    if not job:
        raise UsageError("--job NAME is required")
    refuse_empty_prefixes(prefix)
    _page_args(offset, limit)
    if all_partitions and (offset or limit is not None):
        raise UsageError("--all shows every partition: leave out --offset and --limit (or "
                         "leave out --all to page)")
    srcs = [sources] if isinstance(sources, str) else list(sources)
    if adf_delta_table is not None and not srcs:
        raise UsageError("--adf-delta-table plans a job from SRC DST: give them (`lakeshift "
                         "plan SRC DST --job NAME --replan --adf-delta-table TABLE`)")
    if replan and not srcs and destination is None:
        given = {"include": include, "exclude": exclude, "overwrite": overwrite,
                 "folder_markers": folder_markers, "skip_errors": skip_errors,
                 "invalid_names": invalid_names, "copy_mode": copy_mode,
                 "delete_source_after_verify": delete_source_after_verify,
                 "empty_dirs": empty_dirs}
        new_options = _changed_options(given, changed)
        async with _opened(db) as control:
            saved = (await asyncio.to_thread(control.job, job)).options
            if new_options:  # checked as a plan checks them, before anything changes
                job_copy_options({**saved, **new_options}).validate()
            await asyncio.to_thread(control.reset_job, job, force)
            if new_options:
                await asyncio.to_thread(control.set_job_options, job,
                                        {**saved, **new_options})
        return await plan_async(job=job, db=db, show=True, offset=offset, limit=limit)
    if show and not srcs and destination is None:
        async with _opened(db) as control:
            j = await asyncio.to_thread(control.job, job)
            return model.PlanResult(control.shown, await asyncio.to_thread(
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
        # (Like --adf-control-table's, a delta table's plan lists nothing: the stores are
        # asked first by the job's run or sync pass.)
        delta = await _delta_table(control, job, adf_delta_table, replan, bool(prefixes),
                                   partition_by, adf_control_table)
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
                              copy_mode=copy_mode, auto=auto, adf_delta_table=delta)
        return model.PlanResult(control.shown, await asyncio.to_thread(
            _job_status, control, j, True, offset, limit), adf_delta_table=delta)


#: The copy options ``plan --job J --replan`` changes without SRC DST (the job's saved
#: option each is kept under): the job's partitions stay as planned.
_CHANGEABLE = {"include": "include", "exclude": "exclude", "overwrite": "overwrite",
              "folder_markers": "folder_markers", "skip_errors": "skip_errors",
              "invalid_names": "invalid_names", "copy_mode": "copy_mode",
              "delete_source_after_verify": "delete_source", "empty_dirs": "empty_dirs"}


def _changed_options(given: dict[str, Any], changed: Collection[str]) -> dict[str, Any]:
    """The saved options that ``changed`` (names of :data:`_CHANGEABLE`) replace."""
    unknown = sorted(set(changed) - set(_CHANGEABLE))
    if unknown:
        raise UsageError(f"plan --replan without SRC DST changes only the copy options "
                         f"({', '.join(sorted(_CHANGEABLE))}), not {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name in changed:
        value = given[name]
        if name == "skip_errors":
            value = sorted(skip_error_kinds(value))
        elif name in ("include", "exclude"):
            value = list(value or ())
        out[_CHANGEABLE[name]] = value
    return out


async def _delta_table(control: ControlDB, job: str, given: str | None, replan: bool,
                       prefixes: bool, partition_by: str, adf_control_table: str | None
                       ) -> str | None:
    """The ADF delta table a plan takes its partitions from: the one ``given``
    (``--adf-delta-table``; "" for none), else, planning a job again, the one the job was
    made with (``sync --adf-delta-table``): a replan keeps it.  Other partitions given
    for such a job are refused rather than silently replacing the table."""
    if given is not None:
        return given or None
    if not replan or job not in {x.name for x in await asyncio.to_thread(control.jobs)}:
        return None
    kept = (await asyncio.to_thread(control.job, job)).options.get("adf_delta_table")
    if not kept:
        return None
    other = [flag for flag, used in (("--prefix/--partitions-file", prefixes),
                                     ("--partition-by auto", partition_by == "auto"),
                                     ("--adf-control-table", adf_control_table is not None))
             if used]
    if other:
        raise UsageError(
            f"job {job!r} takes its partitions from the ADF delta table {kept} (sync "
            f"--adf-delta-table), which --replan keeps: leave out {', '.join(other)}, or add "
            "--adf-delta-table '' to plan it without the table (its sync windows then start "
            "from nothing: a full copy)")
    return str(kept)


plan = _blocking(plan_async)


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
                    proof_log: str | Path | None = None,
                    store_options: StoreOptions | None = None,
                    store_given: Collection[str] = (),
                    store_environment: StoreOptions | None = None,
                    copy_mode_environment: str | None = None) -> RunResult:
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
    ``dask``: the workers' events do not reach this process).  ``store_options``: for this
    run, each of its fields not at its default replaces the one the job was planned with
    (``run --s3-endpoint URL``: ``StoreOptions(s3_endpoint=URL)``); an S3 endpoint comes
    from it, else the plan's ``--s3-endpoint``, else ``AWS_ENDPOINT_URL_S3`` /
    ``AWS_ENDPOINT_URL``, else AWS's own, and the result's ``s3_endpoint`` says which.
    ``store_given``: fields of ``store_options`` that replace the job's even at their
    default value (a flag typed on the command line).  ``store_environment``: the
    environment's store options (the CLI reads ``LAKESHIFT_AZURE_AUTH`` and
    ``LAKESHIFT_S3_REQUEST_PAYER`` into it): each field not at its default is used where the
    job has the default (flag > job > environment); the result's ``store_settings`` says
    which was used.
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
        mode, mode_setting = _run_copy_mode(str(j.options.get("copy_mode", "stream")),
                                            copy_mode, copy_mode_environment)
        try:
            opts = job_copy_options(
                j.options, concurrency=concurrency, block_size=block_size,
                single_put_max=single_put_max, adaptive=adaptive,
                max_requests_per_second=max_requests_per_second,
                max_bandwidth=max_bandwidth, copy_mode=mode,
                processes_here=_processes_here(fleet))
        except UsageError as e:
            _name_the_file(e, config, from_file)
            raise
        saved = job_store_options(j)
        so, store_settings = _run_store_options(saved, store_options, store_given,
                                                store_environment)
        endpoint = _s3_endpoint_used(j, saved, store_options)
        if endpoint is None and store_options is not None and \
                store_options.s3_endpoint is not None:
            # (A flag that changes nothing is a mistake to say, not to ignore.)
            raise UsageError(f"--s3-endpoint: job {j.name!r} has no S3 source or "
                             "destination, so the flag would change nothing: leave it out")
        heartbeat = max(1.0, min(5.0, lease_seconds / 4))
        await _check_stores(await asyncio.to_thread(_job_store_pairs, control, j, so),
                            new_job=False)
        # Recorded with the run's settings (the monitor shows them), redacted.
        saved_mode = str(j.options.get("copy_mode", "stream"))
        settings = {**_endpoint_settings(endpoint),
                    **_store_settings_recorded(j, so, saved, store_settings),
                    # (The copy mode itself is among the copy options recorded.)
                    "copy_mode_from": mode_setting[1] if mode_setting is not None
                    else "job" if saved_mode != "stream" else "default"}
        if fleet is not None:
            from lakeshift.scale.driver import run_on_dask

            result = (await run_on_dask(control, j, fleet, batch_count, opts, so, subscribers,
                                        lease_seconds, heartbeat, settings)).run
        else:
            async with _proofs(proof_log, subscribers) as subscribers:
                result = await jobrunner.run_job(control, j, batch_count, opts, so,
                                                 subscribers, lease_s=lease_seconds,
                                                 heartbeat_s=heartbeat, run_settings=settings)
        result.job = j.name
        result.s3_endpoint = endpoint
        result.store_settings = store_settings
        result.copy_mode_setting = mode_setting
        from lakeshift.plan.places import absolute_local

        if (resolved := absolute_local(j.destination)) != j.destination:
            result.relative_destination = (j.destination, resolved)
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
