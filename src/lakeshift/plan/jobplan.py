"""Planning a job: validate its options, cut its sources into partitions (prefixes, a
partitions file, the ADF control table, or automatic key ranges) and write the job and its
partitions to the control DB in one transaction (``lakeshift plan`` / ``lakeshift.plan``)."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeshift.engine.copy_options import copy_options, identity_pairs
from lakeshift.engine.events import EventBus, ListingDone
from lakeshift.engine.pipeline import check_reachable
from lakeshift.engine.retry import RetryPolicy
from lakeshift.errors import UsageError
from lakeshift.model import PartitionSpec
from lakeshift.plan.partitioner import (
    AutoPartitioner,
    PlannedSource,
    auto_partitions,
    bucket_url,
    check_overlaps,
    from_prefixes,
)
from lakeshift.plan.places import absolute_local
from lakeshift.plan.source import (
    SourceSpec,
    destination_config,
    refuse_destination_inside_source,
    refuse_listing_into_destination,
    resolve_source,
    source_avoiding_destination,
    source_config,
)
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url

if TYPE_CHECKING:
    from lakeshift.control.records import Job
    from lakeshift.control.repository import ControlDB


async def create_plan(control: ControlDB, job: str, sources: Sequence[str], dst: str,
                      so: StoreOptions, prefixes: Sequence[str], partition_by: str,
                      target_objects: int, adf_control_table: str | None,
                      include: Sequence[str], exclude: Sequence[str], overwrite: str,
                      folder_markers: str, skip_errors: Sequence[str] = (),
                      invalid_names: str = "fail", delete_source: bool = False,
                      replace: bool = False, force: bool = False,
                      empty_dirs: bool | None = None, preserve: str | Iterable[str] = (),
                      map_identities: str | Path | None = None,
                      events: EventBus | None = None, copy_mode: str = "stream",
                      auto: AutoPartitioner | None = None,
                      adf_delta_table: str | None = None) -> Job:
    """Validate everything (the options, that the job is new, that no destination lies
    inside its source, then the sources by listing them), then write the job and its
    partitions in one transaction: a plan that fails writes nothing.  ``replace``: a job of
    that name is deleted just before the new one is written (only once the new plan is
    known good).  ``events`` hears the listing (Listed per page, ListingDone).  The control
    DB is called in worker threads: the event loop stays free.  ``auto``: who lists an
    automatic plan's sources (this process by default; scale/planner.py: Dask workers).
    ``adf_delta_table``: the partitions are that ADF delta table's PartitionPrefix values
    (``sync --adf-delta-table``'s job: its sync windows start at the table's successful
    JobRunTime); nothing is listed."""
    call = asyncio.to_thread
    refuse_empty_prefixes(prefixes)
    # Every local path saved absolute: a run (verify, status) from another folder would
    # resolve a relative one elsewhere (and write there).
    sources, dst = [absolute_local(s) for s in sources], absolute_local(dst)
    # --map-identities names a file: read in a thread (the event loop stays free).
    identities = await call(identity_pairs, map_identities)
    checked = copy_options(include=include, exclude=exclude, overwrite=overwrite,
                           folder_markers=folder_markers, skip_errors=skip_errors,
                           invalid_names=invalid_names, empty_dirs=empty_dirs,
                           preserve=preserve, map_identities=identities,
                           copy_mode=copy_mode)
    exists = job in {j.name for j in await call(control.jobs)}
    if exists and not replace:
        raise UsageError(f"job {job!r} already exists in {control.shown}: `lakeshift run "
                         f"--job {shlex.quote(job)}` it, plan it again with --replan, or "
                         "choose another --job")
    ways = sum([bool(prefixes), partition_by == "auto", adf_control_table is not None,
                bool(adf_delta_table)])
    if ways > 1:
        raise UsageError("use one of --prefix/--partitions-file, --partition-by auto, "
                         "--adf-control-table and --adf-delta-table")
    if partition_by not in ("none", "auto"):
        raise UsageError(f"--partition-by {partition_by!r}: use none or auto")
    dst_url = parse_url(dst)
    from_table = "--adf-control-table" if adf_control_table else (
        "--adf-delta-table" if adf_delta_table else None)
    for _, cfg, dest in source_destinations(sources, dst, so):
        # An ADF table's sources are not resolved: their path as a string prefix.
        refuse_destination_inside_source(cfg, destination_config(dest, so), SourceSpec(
            cfg.url.path, "") if from_table else None)
    if from_table and len(sources) != 1:
        raise UsageError(f"{from_table} takes one SRC: the bucket its PartitionPrefix "
                         "values are relative to")
    destination = dst_url.display() if dst_url.scheme != "file" else dst
    adf_source = ""
    specs: list[PartitionSpec] = []
    if from_table:
        src_url = parse_url(sources[0])
        adf_source = bucket_url(sources[0], src_url.bucket, src_url.scheme, src_url.account)
    if adf_control_table:
        # Checks the table before writing.
        await call(control.adf_pending_prefixes, adf_control_table)
    elif adf_delta_table:
        # Its prefixes, as sync adds them (each pass adds those new in the table).
        specs = [PartitionSpec(adf_source, p, "", destination, adf_prefix=p)
                 for p in await call(control.adf_delta_prefixes, adf_delta_table)]
    else:
        specs = await plan_sources(sources, dst, so, prefixes, partition_by, target_objects,
                                   events, auto)
    options: dict[str, Any] = {
        "include": list(include), "exclude": list(exclude), "overwrite": overwrite,
        "folder_markers": folder_markers, "skip_errors": list(skip_errors),
        "invalid_names": invalid_names, "delete_source": delete_source,
        "store": asdict(so), "sources": list(sources),
        # The identity map is kept with the job (the file may change or go before a run).
        "empty_dirs": empty_dirs, "preserve": sorted(checked.preserve),
        "identity_map": [list(p) for p in checked.identity_map],
        "adf_source": adf_source, "copy_mode": copy_mode,
        **({"adf_delta_table": adf_delta_table} if adf_delta_table else {})}
    return await call(_write_job, control, job, destination, options, specs,
                      adf_control_table, exists, force)


def _write_job(control: ControlDB, job: str, destination: str, options: dict[str, Any],
               specs: list[PartitionSpec], adf_control_table: str | None, replace: bool,
               force: bool) -> Job:
    if replace:
        control.replace_job(job, force=force)
    control.create_job(job, destination, options, specs, adf_table=adf_control_table)
    j = control.job(job)
    if adf_control_table:
        from lakeshift.engine.jobrunner import sync_adf

        sync_adf(control, j)
    return j


def refuse_empty_prefixes(prefixes: Sequence[str], verb: str = "plan") -> None:
    """``--prefix ''`` (an unset shell variable, say) names no partition: it planned a job
    of none, which every run found nothing to do in."""
    if any(p == "" for p in prefixes):
        raise UsageError(f"--prefix '' names nothing: leave --prefix out to {verb} the whole "
                         "source")


def partition_spec(row: Mapping[Any, Any], after_cursor: bool = True) -> SourceSpec:
    """What a partition's row in the control DB names on its source: its prefix and key
    range, listed after its cursor (``after_cursor``: what a run still has to copy) or
    whole (what verify checks)."""
    return SourceSpec(row["prefix"], row["rel_base"],
                      start_after=row["cursor"] if after_cursor else None,
                      range_start=row["range_start"], range_end=row["range_end"])


def job_store_options(job: Job) -> StoreOptions:
    """How the job reaches its stores, as it was planned (the plan's store flags)."""
    return StoreOptions(**job.options.get("store", {}))


def read_partitions_file(path: Path) -> list[str]:
    """One prefix per line; ``#`` starts a comment; blank lines are ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UsageError(f"cannot read --partitions-file {path}: {e.strerror}") from None
    out = [ln.split("#", 1)[0].strip() for ln in lines]
    out = [p for p in out if p]
    if not out:
        raise UsageError(f"--partitions-file {path} lists no prefixes")
    return out


def source_destinations(sources: Sequence[str], dst: str, so: StoreOptions
                        ) -> list[tuple[str, StoreConfig, str]]:
    """Each source URL, its store config, and where its objects go: ``dst``, or with
    sources in more than one bucket, ``dst/BUCKET/``."""
    parsed = [source_config(s, so) for s in sources]
    buckets = {(c.url.scheme, c.url.account, c.url.bucket) for c in parsed}
    return [(text, cfg, dst.rstrip("/") + (f"/{cfg.url.bucket}/" if len(buckets) > 1 else "/"))
            for text, cfg in zip(sources, parsed, strict=True)]


async def plan_sources(sources: Sequence[str], dst: str, so: StoreOptions,
                       prefixes: Sequence[str], partition_by: str,
                       target: int, events: EventBus | None = None,
                       auto: AutoPartitioner | None = None) -> list[PartitionSpec]:
    """Each source's partitions (its prefixes, or automatic key ranges), overlap-checked.
    ``auto`` cuts the automatic ones (default: listed in this process)."""
    events = events or EventBus()
    specs: list[PartitionSpec] = []
    policy = RetryPolicy(attempts=3)
    for text, cfg, dest in source_destinations(sources, dst, so):
        # (A listing that entered a local destination through a symlink would plan its
        # files, as the run's copy would copy them.)
        cfg = source_avoiding_destination(cfg, destination_config(dest, so))
        store = open_store(cfg)
        try:
            await check_reachable(store.check_source, "source", policy)
            spec = await resolve_source(store)
            # (a string prefix, ``raw`` also listing ``raw2/``, is known only now)
            refuse_destination_inside_source(cfg, destination_config(dest, so), spec)
            base = bucket_url(text, cfg.url.bucket, cfg.url.scheme, cfg.url.account)
            planned = PlannedSource(text, spec, base, dest)
            if partition_by == "auto" and auto is not None:
                specs += await auto(store, cfg, planned, target, events)
            elif partition_by == "auto":
                specs += await auto_partitions(store, planned, target, events=events)
            else:
                planned_specs = from_prefixes(planned, prefixes)
                for p in planned_specs:
                    # (each run would fail the partition with this line: refused now)
                    await refuse_listing_into_destination(cfg, store, p.prefix)
                specs += planned_specs
        finally:
            await store.close()
    events.emit(ListingDone())
    check_overlaps(specs)
    return specs
