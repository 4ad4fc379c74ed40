"""`lakeshift plan`, `run`, `status`, `failures`: partitioned, resumable migrations tracked
in the control DB."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from lakeshift.api import source_config
from lakeshift.cli import config_file
from lakeshift.cli.options import (
    NO_STORE_OPTIONS,
    AdaptiveOpt,
    BlockSizeOpt,
    ConcurrencyOpt,
    DbOpt,
    DeleteSourceOpt,
    ExcludeOpt,
    FolderMarkersOpt,
    IncludeOpt,
    InvalidNamesOpt,
    JobOpt,
    JsonOpt,
    MaxBandwidthOpt,
    MaxRpsOpt,
    OverwriteOpt,
    ProgressOpt,
    SinglePutMaxOpt,
    SkipErrorsOpt,
    parse_skip_errors,
    with_store_options,
)
from lakeshift.cli.progress import make_progress
from lakeshift.cli.sizes import human_bytes, parse_size
from lakeshift.cli.status_view import print_partitions, print_status
from lakeshift.control import DEFAULT_DB
from lakeshift.control.records import Job, PartitionSpec, as_utc
from lakeshift.engine.events import Subscriber
from lakeshift.engine.pipeline import CopyOptions, check_reachable
from lakeshift.engine.retry import RetryPolicy
from lakeshift.errors import UsageError
from lakeshift.plan.partitioner import (
    PlannedSource,
    auto_partitions,
    bucket_url,
    check_overlaps,
    from_prefixes,
)
from lakeshift.plan.source import resolve_source
from lakeshift.stores.base import StoreOptions
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url

if TYPE_CHECKING:
    from lakeshift.control.repository import ControlDB

PLAN_HELP = """Write a job and its partitions to the control DB (nothing is copied yet).

Partitions come from --prefix flags, a --partitions-file (one prefix per line), the Azure Data
Factory template's control table (--adf-control-table), or --partition-by auto, which lists
the source once and cuts it into key ranges of about --target-objects objects each. Without
any of these, each SRC is one partition. Several SRC URLs (even several buckets) may share a
job; with more than one bucket, each bucket's objects go under DST/BUCKET/.
"""
PLAN_EPILOG = """Examples:

  lakeshift plan s3://lake/raw/ abfss://lake@acct.dfs.core.windows.net/raw/ --job raw
  --prefix 2023/ --prefix 2024/

  lakeshift plan s3://lake/raw/ az://raw/ --job raw --partition-by auto --target-objects 100000

  lakeshift plan s3://lake/ az://raw/ --job adf --adf-control-table s3_partition_control_table
  --db postgresql://lakeshift@dbhost/migration

  lakeshift plan --show --job raw
"""
RUN_HELP = """Copy the pending and failed partitions of a job, --batch-count at a time.

Each partition is isolated: one failing is marked failed with its error and the others go on;
a rerun takes only pending and failed partitions and resumes each from its cursor. Several
`run` processes (on several machines, with PostgreSQL) can share one job.
"""
RUN_EPILOG = """Examples:

  lakeshift run --job raw --batch-count 4

  lakeshift run --job raw --db postgresql://lakeshift@dbhost/migration --batch-count 8
"""


def _open(db: str, create: bool = False) -> ControlDB:
    # Imported here: SQLAlchemy costs ~0.13 s at start-up, and `copy` never needs it.
    from lakeshift.control.repository import ControlDB

    return ControlDB(db, create=create)


@with_store_options
def plan(
    urls: Annotated[list[str] | None, typer.Argument(
        help="SRC [SRC…] DST: one or more sources, then the destination.",
        show_default=False)] = None,
    job: JobOpt = "",
    db: DbOpt = DEFAULT_DB,
    prefix: Annotated[list[str] | None, typer.Option(
        "--prefix", help="A partition: this prefix under each SRC (repeatable).")] = None,
    partitions_file: Annotated[Path | None, typer.Option(
        "--partitions-file", help="One prefix (under SRC) per line; # starts a comment.")
    ] = None,
    partition_by: Annotated[str, typer.Option(
        "--partition-by", help="none (default), or auto: key ranges of --target-objects.")
    ] = "none",
    target_objects: Annotated[int, typer.Option(
        "--target-objects", help="Objects per partition with --partition-by auto.")] = 100_000,
    adf_control_table: Annotated[str | None, typer.Option(
        "--adf-control-table", help="Take partitions from this ADF-template table "
                                    "(PartitionPrefix, SuccessOrFailure) in the --db.")] = None,
    show: Annotated[bool, typer.Option("--show", help="Print the partition table.")] = False,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    overwrite: OverwriteOpt = "if-different",
    folder_markers: FolderMarkersOpt = "skip",
    skip_errors: SkipErrorsOpt = "",
    invalid_names: InvalidNamesOpt = "fail",
    delete_source_after_verify: DeleteSourceOpt = False,
    as_json: JsonOpt = False,
    store: StoreOptions = NO_STORE_OPTIONS,
) -> int:
    if not job:
        raise UsageError("--job NAME is required")
    urls = urls or []
    if show and not urls:
        control = _open(db)
        try:
            j = control.job(job)
            print_partitions(control, j, as_json)
        finally:
            control.close()
        return 0
    if len(urls) < 2:
        raise UsageError("plan needs SRC and DST (lakeshift plan SRC [SRC…] DST --job NAME)")
    if partitions_file is not None:
        if prefix:
            raise UsageError("use --prefix or --partitions-file, not both")
        prefix = _read_partitions_file(partitions_file)
    so = store
    control = _open(db, create=True)
    try:
        j = create_plan(control, job, urls[:-1], urls[-1], so, list(prefix or []),
                        partition_by, target_objects, adf_control_table,
                        list(include or ()), list(exclude or ()), overwrite, folder_markers,
                        sorted(parse_skip_errors(skip_errors)), invalid_names,
                        delete_source_after_verify)
        if show or as_json:
            print_partitions(control, j, as_json)
        else:
            n = len(control.partitions(j.id))
            print(f"job {job!r}: {n} partitions planned in {control.shown} "
                  f"(lakeshift plan --show --job {job}; lakeshift run --job {job})")
    finally:
        control.close()
    return 0


def create_plan(control: ControlDB, job: str, sources: list[str], dst: str, so: StoreOptions,
                prefixes: list[str], partition_by: str, target_objects: int,
                adf_control_table: str | None, include: list[str], exclude: list[str],
                overwrite: str, folder_markers: str, skip_errors: list[str] | None = None,
                invalid_names: str = "fail", delete_source: bool = False) -> Job:
    """Validate everything, then write the job and its partitions in one transaction."""
    CopyOptions(include=tuple(include), exclude=tuple(exclude),
                overwrite=overwrite,  # type: ignore[arg-type]
                folder_markers=folder_markers, skip_errors=frozenset(skip_errors or ()),
                invalid_names=invalid_names).validate()
    ways = sum([bool(prefixes), partition_by == "auto", adf_control_table is not None])
    if ways > 1:
        raise UsageError("use one of --prefix/--partitions-file, --partition-by auto and "
                         "--adf-control-table")
    if partition_by not in ("none", "auto"):
        raise UsageError(f"--partition-by {partition_by!r}: use none or auto")
    dst_url = parse_url(dst)
    if adf_control_table and len(sources) != 1:
        raise UsageError("--adf-control-table takes one SRC: the bucket its PartitionPrefix "
                         "values are relative to")
    adf_source = ""
    specs: list[PartitionSpec] = []
    if adf_control_table:
        src_url = parse_url(sources[0])
        adf_source = bucket_url(sources[0], src_url.bucket, src_url.scheme, src_url.account)
        control.adf_pending_prefixes(adf_control_table)  # checks the table before writing
    else:
        specs = asyncio.run(_plan_sources(sources, dst, so, prefixes, partition_by,
                                          target_objects))
    options: dict[str, Any] = {
        "include": include, "exclude": exclude, "overwrite": overwrite,
        "folder_markers": folder_markers, "skip_errors": list(skip_errors or []),
        "invalid_names": invalid_names, "delete_source": delete_source,
        "store": asdict(so), "sources": sources,
        "adf_source": adf_source}
    control.create_job(job, dst_url.display() if dst_url.scheme != "file" else dst, options,
                       specs, adf_table=adf_control_table)
    j = control.job(job)
    if adf_control_table:
        from lakeshift.engine.jobrunner import sync_adf

        sync_adf(control, j)
    return j


def _read_partitions_file(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UsageError(f"cannot read --partitions-file {path}: {e.strerror}") from None
    out = [ln.split("#", 1)[0].strip() for ln in lines]
    out = [p for p in out if p]
    if not out:
        raise UsageError(f"--partitions-file {path} lists no prefixes")
    return out


async def _plan_sources(sources: list[str], dst: str, so: StoreOptions, prefixes: list[str],
                        partition_by: str, target: int) -> list[PartitionSpec]:
    parsed = [source_config(s, so) for s in sources]
    buckets = {(c.url.scheme, c.url.account, c.url.bucket) for c in parsed}
    specs: list[PartitionSpec] = []
    policy = RetryPolicy(attempts=3)
    for text, cfg in zip(sources, parsed, strict=True):
        store = open_store(cfg)
        try:
            await check_reachable(store.check_source, "source", policy)
            spec = await resolve_source(store)
            dest = dst.rstrip("/") + (f"/{cfg.url.bucket}/" if len(buckets) > 1 else "/")
            base = bucket_url(text, cfg.url.bucket, cfg.url.scheme, cfg.url.account)
            planned = PlannedSource(text, spec, base, dest)
            if partition_by == "auto":
                specs += await auto_partitions(store, planned, target)
            else:
                specs += from_prefixes(planned, prefixes)
        finally:
            await store.close()
    check_overlaps(specs)
    return specs


def run(
    job: JobOpt = "",
    db: DbOpt = DEFAULT_DB,
    batch_count: Annotated[int, typer.Option(
        "--batch-count", "-b", help="Partitions copied at the same time.")] = 4,
    concurrency: ConcurrencyOpt = 32,
    block_size: BlockSizeOpt = "8MiB",
    single_put_max: SinglePutMaxOpt = "64MiB",
    lease_seconds: Annotated[float, typer.Option(
        "--lease-seconds", help="A partition held by a process that stops renewing its lease "
                                "for this long can be taken over.")] = 60.0,
    max_requests_per_second: MaxRpsOpt = None,
    max_bandwidth: MaxBandwidthOpt = None,
    adaptive: AdaptiveOpt = True,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Run what `lakeshift init` wrote (plans the job first if the DB does "
                         "not have it; its values replace --job, --db, --batch-count and "
                         "--concurrency).")] = None,
    progress: ProgressOpt = "auto",
    as_json: JsonOpt = False,
) -> int:
    every: float | None = None
    if config is not None:
        cfg = config_file.load(config)
        job, db, batch_count, concurrency = cfg.name, cfg.db, cfg.batch_count, cfg.concurrency
        every = cfg.every_s
        _plan_from_config(cfg)
    if not job:
        raise UsageError("--job NAME is required")
    if batch_count < 1:
        raise UsageError("--batch-count must be at least 1")
    if lease_seconds < 2:
        raise UsageError("--lease-seconds must be at least 2")
    while True:
        pacing = (adaptive, max_requests_per_second,
                  parse_size(max_bandwidth, "--max-bandwidth") if max_bandwidth else None)
        sizes = (parse_size(block_size, "--block-size"),
                 parse_size(single_put_max, "--single-put-max"))
        code = _run_once(job, db, batch_count, concurrency, sizes, lease_seconds, progress,
                         as_json, pacing)
        if every is None:
            return code
        print(f"next run in {every:.0f} s (schedule from {config}); Ctrl-C stops", flush=True)
        time.sleep(every)


def _plan_from_config(cfg: config_file.JobConfig) -> None:
    control = _open(cfg.db, create=True)
    try:
        if cfg.name in {j.name for j in control.jobs()}:
            return
        create_plan(control, cfg.name, cfg.sources, cfg.destination, cfg.store,
                    cfg.prefixes if cfg.mode == "prefixes" else [],
                    "auto" if cfg.mode == "auto" else "none", cfg.target_objects,
                    cfg.adf_control_table if cfg.mode == "adf" else None, [], [],
                    "if-different", "skip")
    finally:
        control.close()


def _run_once(job: str, db: str, batch_count: int, concurrency: int, sizes: tuple[int, int],
              lease_seconds: float, progress: str, as_json: bool,
              pacing: tuple[bool, float | None, int | None]) -> int:
    control = _open(db)
    try:
        j = control.job(job)
        from lakeshift.engine.jobrunner import job_copy_options, run_job

        opts = job_copy_options(j, concurrency, sizes[0], *pacing, single_put_max=sizes[1])
        so = StoreOptions(**j.options.get("store", {}))
        display = make_progress("none" if as_json and progress == "auto" else progress)
        subs: list[Subscriber] = [display] if display is not None else []
        try:
            result = asyncio.run(run_job(control, j, batch_count, opts, so, subs,
                                         lease_s=lease_seconds,
                                         heartbeat_s=max(1.0, min(5.0, lease_seconds / 4))))
        finally:
            if display is not None:
                display.close()
        s = result.stats
        summary = {"job": job, "run_id": result.run_id,
                   "partitions_succeeded": result.succeeded,
                   "partitions_failed": result.failed,
                   "partitions_failed_total": result.remaining_failed,
                   "partitions_left": result.remaining_pending,
                   "copied": s.copied, "skipped": s.skipped, "failed": s.failed,
                   "bytes": s.bytes_transferred, "duration_s": round(s.duration, 3),
                   "errors": [{"partition": p, "error": e} for p, e in result.errors],
                   "exit_code": result.exit_code}
        if as_json:
            json.dump(summary, sys.stdout, indent=2)
            print()
        else:
            print(f"Run {result.run_id} of job {job!r}: {result.succeeded} partitions "
                  f"succeeded, {result.failed} failed; {s.copied} objects copied "
                  f"({human_bytes(s.bytes_transferred)}), {s.skipped} skipped, {s.failed} "
                  f"failed, in {s.duration:.1f} s")
            for p, e in result.errors[:20]:
                print(f"  FAILED partition {p}: {e}")
            if result.remaining_pending:
                print(f"  {result.remaining_pending} partitions still pending or running "
                      "(held by another process, or interrupted)")
            if result.exit_code:
                print(f"  rerun `lakeshift run --job {job}` to retry the failed partitions; "
                      f"`lakeshift failures --job {job}` lists failed objects")
        return result.exit_code
    finally:
        control.close()


def status(
    db: DbOpt = DEFAULT_DB,
    job: Annotated[str | None, typer.Option("--job", "-j", envvar="LAKESHIFT_JOB",
                                            help="Only this job, with its partitions.")] = None,
    as_json: JsonOpt = False,
) -> int:
    control = _open(db)
    try:
        print_status(control, job, as_json)
    finally:
        control.close()
    return 0


def failures(
    job: JobOpt = "",
    db: DbOpt = DEFAULT_DB,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write them to this CSV file.")
                        ] = None,
) -> int:
    if not job:
        raise UsageError("--job NAME is required")
    control = _open(db)
    try:
        j = control.job(job)
        fields = ["object_key", "error_kind", "message", "attempts", "skipped", "at",
                  "partition_id", "run_id"]
        rows = control.failures(j.id)
        fh: TextIO
        if csv_file is not None:
            try:
                fh = open(csv_file, "w", newline="", encoding="utf-8")  # noqa: SIM115
            except OSError as e:
                raise UsageError(f"cannot write {csv_file}: {e.strerror}") from None
        else:
            fh = sys.stdout
        n = 0
        w = csv.writer(fh)
        w.writerow(fields)
        for r in rows:
            w.writerow([_cell(r[f]) for f in fields])
            n += 1
        if csv_file is not None:
            fh.close()
            print(f"{n} failures of job {job!r} written to {csv_file}")
    finally:
        control.close()
    return 0


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return (as_utc(value) or value).isoformat()
    return value
