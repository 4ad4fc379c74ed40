"""`lakeshift sync`: delta passes over a job (docs/sync.md); calls lakeshift.sync."""

from __future__ import annotations

import json
import shlex
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lakeshift import api
from lakeshift.api import DEFAULT_DB, StoreOptions
from lakeshift.cli.job_cmds import again_args, store_fields, store_lines
from lakeshift.cli.options import (
    FILTERS,
    JOB_WORK,
    NO_OPTIONS,
    NO_STORE_OPTIONS,
    PACING,
    DbOpt,
    JobOpt,
    JsonOpt,
    ProgressOpt,
    ProofLogOpt,
    name_store_variables,
    store_sources,
    with_options,
    with_store_options,
)
from lakeshift.cli.progress import new_pass, progress_subscribers
from lakeshift.cli.sizes import human_bytes
from lakeshift.cli.summary import (
    endpoint_fields,
    endpoint_line,
    failures_command,
    job_failure_hints,
    proof_log_line,
)
from lakeshift.cli.text import StopNotice, count
from lakeshift.errors import AuthError
from lakeshift.model import SyncResult, SyncWindow

# One paragraph a line: the help formatter keeps a line break inside a paragraph.
HELP = (
    "Copy what changed since the last pass, partition by partition (delta sync).\n\n"
    "Each partition copies the objects whose LastModified falls in its window: from the end "
    "of its last successful pass (or the start of the job's historical `run`; nothing before "
    "= a full copy) to now − --lag. A failed partition keeps its window for the next pass. "
    "Every window is recorded in lakeshift_sync_windows and in the ADF delta table "
    "(PartitionPrefix, JobRunTime, SuccessOrFailure). With SRC DST the job is created on "
    "first use; with --job alone an existing job is synced as it was made: its copy options "
    "(--include … --invalid-names) too, and other values of them are refused (plan --replan "
    "changes a job's). Its store flags (--azure-auth …), typed here, replace the job's for "
    "these passes only, even at their default value; LAKESHIFT_AZURE_AUTH and "
    "LAKESHIFT_S3_REQUEST_PAYER apply only where the job has the default (flag > job > "
    "environment).")
EPILOG = """Examples:

  lakeshift sync s3://lake/raw/ az://raw/ --job raw --prefix 2024/ --prefix 2025/

  lakeshift sync --job raw --lag 10m --overlap 5m --delete --max-delete 2%

  lakeshift sync s3://lake/ az://raw/ --job logs --every 15m \\
      --path-template 'logs/{yyyy}/{MM}/{dd}/{HH}/'

  lakeshift sync s3://lake/ az://raw/ --job adf --adf-delta-table s3_partition_delta_control_table
"""


@with_store_options
@with_options(work=JOB_WORK, pacing=PACING, filters=FILTERS)
def sync(
    ctx: typer.Context,
    urls: Annotated[list[str] | None, typer.Argument(
        help="SRC DST (to create the job on first use); leave out with --job of an existing "
             "job.", show_default=False, metavar="SRC DST")] = None,
    job: JobOpt = "",
    db: DbOpt = DEFAULT_DB,
    prefix: Annotated[list[str] | None, typer.Option(
        "--prefix", help="A partition: this prefix under SRC (repeatable; new jobs).",
        metavar="PREFIX")] = None,
    partitions_file: Annotated[Path | None, typer.Option(
        "--partitions-file", help="One prefix per line (new jobs).", metavar="FILE")] = None,
    partition_by: Annotated[str, typer.Option(
        "--partition-by", help="none, or auto: key ranges of --target-objects (new jobs).",
        metavar="MODE")] = "none",
    target_objects: Annotated[int, typer.Option(
        "--target-objects", help="Objects per partition with --partition-by auto.",
        metavar="N")] = 100_000,
    adf_delta_table: Annotated[str | None, typer.Option(
        "--adf-delta-table", help="Partitions from this ADF delta table (select distinct "
                                  "PartitionPrefix); windows start at max(JobRunTime) of its "
                                  "successful rows.", metavar="TABLE")] = None,
    lag: Annotated[str, typer.Option(
        "--lag", help="Leave the newest changes to the next pass: windows end at now − lag "
                      "(S3's LastModified is when an upload started), e.g. 30s, 5m, 1h.",
        metavar="DURATION")] = "5m",
    overlap: Annotated[str, typer.Option(
        "--overlap", help="Start each window this long before the last one ended (identical "
                          "objects are skipped).", metavar="DURATION")] = "0",
    path_template: Annotated[str | None, typer.Option(
        "--path-template", help="Time-partitioned folders under SRC, e.g. "
                                "'logs/{yyyy}/{MM}/{dd}/{HH}/': list only the folders in the "
                                "window.", metavar="TEMPLATE")] = None,
    files_from: Annotated[Path | None, typer.Option(
        "--files-from", help="Copy exactly these keys (relative to SRC): one per line, or a "
                             ".csv with a 'key' column, or the CSV `lakeshift failures` "
                             "wrote, as written (its source keys: retries what failed).",
        metavar="FILE")] = None,
    inventory: Annotated[str | None, typer.Option(
        "--inventory", help="s3://…/manifest.json of an S3 Inventory report (CSV, or Parquet "
                            "with lakeshift[parquet]) to read instead of listing.",
        metavar="URL")] = None,
    delete: Annotated[bool, typer.Option(
        "--delete", help="Delete destination objects whose source is gone (recorded).")
    ] = False,
    max_delete: Annotated[str | None, typer.Option(
        "--max-delete", help="Most deletions in a pass, across all its partitions: N "
                             "objects or P% of the destination objects the pass lists "
                             "(default 1000); above it nothing is deleted and the partitions "
                             "that found something to delete fail.", metavar="N|P%")] = None,
    every: Annotated[str | None, typer.Option(
        "--every", help="Keep syncing: a pass every 15m, 1h, … (Ctrl-C or SIGTERM stops).",
        metavar="DURATION")] = None,
    cron: Annotated[str | None, typer.Option(
        "--cron", help="Keep syncing at the times of a cron expression (UTC), e.g. "
                       "'*/15 * * * *'.", metavar="CRON")] = None,
    work: dict[str, Any] = NO_OPTIONS,
    pacing: dict[str, Any] = NO_OPTIONS,
    filters: dict[str, Any] = NO_OPTIONS,
    proof_log: ProofLogOpt = None,
    progress: ProgressOpt = "auto",
    as_json: JsonOpt = False,
    store: StoreOptions = NO_STORE_OPTIONS,
) -> int:
    urls = urls or []
    keyed = files_from is not None or inventory is not None
    if len(urls) not in (0, 2):
        raise typer.BadParameter("give SRC DST, or no URL with --job of an existing job")
    db_source = (db, ctx.get_parameter_source("db"))
    # A store flag typed counts even at its default value (it replaces the job's for these
    # passes); LAKESHIFT_AZURE_AUTH … only where the job has the default: flag > job >
    # environment.
    typed, typed_names, from_environment = store_sources(ctx, store)
    with progress_subscribers(progress, as_json) as subs:
        def passed(r: SyncResult) -> None:
            _print(r, as_json, lag, keyed, proof_log, db_source)
            new_pass(subs)  # the next pass's progress is its own

        try:
            result = api.sync(
                urls[0] if urls else None, urls[1] if urls else None, job=job, db=db,
                prefix=prefix or (), partitions_file=partitions_file,
                partition_by=partition_by, target_objects=target_objects,
                adf_delta_table=adf_delta_table, lag=lag, overlap=overlap,
                path_template=path_template, files_from=files_from, inventory=inventory,
                delete=delete, max_delete=max_delete, every=every, cron=cron,
                store_options=typed, store_given=typed_names,
                store_environment=from_environment, subscribers=subs, on_pass=passed,
                proof_log=proof_log, **work, **pacing, **filters)
        except AuthError as e:
            name_store_variables(e)  # (a UsageError names them already: with_options)
            raise
    if every is None and cron is None:
        if result.stopped_by == "SIGTERM":
            StopNotice.given = True
            print(f"lakeshift: SIGTERM: the sync pass of job {job!r} stopped; its unfinished "
                  "windows are recorded as interrupted and the next pass looks at them again",
                  file=sys.stderr)
        else:
            _print(result, as_json, lag, keyed, proof_log, db_source)
    elif result.stopped_by:
        # Ctrl-C (SIGINT) and SIGTERM say the same; no generic "interrupted" line after it.
        StopNotice.given = True
        print(f"lakeshift: {result.stopped_by}: the schedule of job {job!r} stopped after "
              f"{count(result.passes, 'pass')}; run the same command to start it again (an "
              "interrupted pass's windows are looked at again, from their start)",
              file=sys.stderr)
    return result.exit_code


def _utc(t: datetime) -> str:
    """A time as status's JSON writes it (``2026-12-01T04:21:11Z``): next_sync_at."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_window(r: SyncResult) -> list[tuple[str, str]]:
    """Partitions that failed before their window was opened (their store could not be
    opened or listed): in the run's errors, not among the windows."""
    windowed = Counter(w.error for w in r.windows if w.state in ("failed", "keyed-failed"))
    out = []
    for label, error in r.run.errors:
        if windowed[error] > 0:
            windowed[error] -= 1
        else:
            out.append((label, error))
    return out


def _summary(r: SyncResult, lag: str, proof_log: str | None = None,
             again: str | None = None) -> dict[str, Any]:
    """``again``: the arguments that reach the job in a printed command (``again_args``)."""
    s = r.run.stats
    again = again or f"--job {shlex.quote(r.job)}"
    return {"job": r.job, "run_id": r.run.run_id, "run_number": r.run.number,
            "pass": r.passes,
            "partitions_succeeded": r.run.succeeded, "partitions_failed": r.run.failed,
            "copied": s.copied, "skipped": s.skipped, "failed": s.failed,
            "skipped_by_reason": dict(sorted(s.skipped_by_reason.items())),
            "failed_by_kind": dict(sorted(s.failed_by_kind.items())),
            # What the text ends with, and where this pass's failed objects are listed.
            "hints": [h.strip() for h in job_failure_hints(
                s, "sync", again, r.run.number,
                keyed=any(w.state in ("keyed", "keyed-failed") for w in r.windows))],
            "failures_command": failures_command(again, r.run.number) if s.failed else None,
            "deleted": r.deleted, "deleted_keys": list(r.deleted_keys),
            "renamed": [{"from": old, "to": new} for old, new in r.renames],
            "kept": r.kept, "renames_paired": r.renames_paired,
            "bytes": s.bytes_transferred, "duration_s": round(s.duration, 3),
            "lag": lag, "window_end": max(w.end for w in r.windows).isoformat() if r.windows
            else None,
            "windows": [{"partition": w.partition,
                         "start": w.start.isoformat() if w.start else None,
                         "end": w.end.isoformat(), "empty": w.start == w.end,
                         "state": w.state,
                         "copied": w.copied, "skipped": w.skipped,
                         "failed_objects": w.failed_objects, "deleted": w.deleted,
                         "held_back": w.held_back, "error": w.error} for w in r.windows]
            + [{"partition": label, "start": None, "end": None, "empty": False,
                "state": "failed", "copied": 0, "skipped": 0, "failed_objects": 0,
                "deleted": 0, "held_back": 0, "error": error}
               for label, error in _without_window(r)],
            "next_sync_at": _utc(r.next_run_at) if r.next_run_at else None,
            **endpoint_fields(r.run.s3_endpoint), **store_fields(r.run.store_settings),
            **({"proof_log": proof_log} if proof_log is not None else {}),
            "exit_code": r.run.exit_code}


def _found(w: SyncWindow) -> str:
    """What a window's listing found: its objects' outcomes, or that none was modified."""
    if not (w.copied or w.skipped or w.failed_objects or w.deleted):
        return "no object modified in it"
    did = f"{w.copied} copied, {w.skipped} skipped"
    if w.failed_objects:
        did += f", {w.failed_objects} failed"
    return did + (f", {w.deleted} deleted" if w.deleted else "")


def _print(r: SyncResult, as_json: bool, lag: str, keyed: bool,
           proof_log: str | None = None, db_source: tuple[str, Any] | None = None) -> None:
    """``proof_log``: the --proof-log file the pass appended to (named in the summary);
    ``db_source``: the --db value and where it came from (a command printed for the user
    names it when a flag gave it)."""
    again = again_args(r.job, *(db_source or (DEFAULT_DB, None)))
    if as_json:
        json.dump(_summary(r, lag, proof_log, again), sys.stdout)
        print(flush=True)
        return
    s = r.run.stats
    run = f"run {r.run.number}" if r.run.number else f"run id {r.run.run_id}"
    print(f"Sync pass ({run}) of job {r.job!r}: "
          f"{count(r.run.succeeded, 'partition')} succeeded, {r.run.failed} failed; "
          f"{count(s.copied, 'object')} copied ({human_bytes(s.bytes_transferred)}), "
          f"{s.skipped} skipped, {s.failed} failed, {r.deleted} deleted, in "
          f"{s.duration:.1f} s")
    if (endpoint := endpoint_line(r.run.s3_endpoint)) is not None:
        print(endpoint)
    for line in store_lines(r.run.store_settings, "pass"):
        print(line)
    if proof_log is not None:
        print(proof_log_line(proof_log))
    if r.windows and not keyed and any(c in "123456789" for c in lag):  # lag > 0
        # Objects modified after the window end are not copied yet: say so (a first pass
        # of 0 objects read as "nothing to copy").
        end = max(w.end for w in r.windows)
        print(f"  windows end at now − {lag} = {end:%Y-%m-%d %H:%M:%S} UTC: objects "
              "modified after that wait for a later pass")
    for w in r.windows:
        name = w.partition or "(root)"
        if keyed:
            what = f"the listed keys: {w.copied} copied, {w.skipped} skipped"
        elif w.start is not None and w.start >= w.end:
            # An empty window looked at no time at all: it did not find "nothing new".
            what = (f"no window to look at: earlier passes already reached now − {lag} = "
                    f"{w.end:%Y-%m-%d %H:%M:%S} UTC")
        else:
            start = f"{w.start:%Y-%m-%d %H:%M:%S}" if w.start else "the beginning"
            what = f"[{start}, {w.end:%Y-%m-%d %H:%M:%S}) UTC: {_found(w)}"
        # A --files-from pass's windows are "keyed": they never move a window's start.
        state = {"keyed": "succeeded", "keyed-failed": "failed"}.get(w.state, w.state)
        line = f"  {name}: {what}, {state}"
        if w.held_back:
            line += (f", {count(w.held_back, 'newer object')} held back for the next pass")
        if w.error:
            line += f": {w.error}"
        print(line)
    for label, error in _without_window(r):
        print(f"  {label}: failed before its window opened: {error}")
    if r.kept:
        print(f"  kept {count(r.kept, 'destination object')} whose source looked gone: it "
              "was there again, or the pass could not read all around it (lakeshift "
              f"failures {again})")
    for old, new in r.renames[:20]:
        print(f"  renamed {old} → {new} (the new name copied before the old was deleted)")
    if r.deleted and not r.renames_paired:
        print("  renames are not reported on Dask: a renamed object's new name was copied "
              "like any new object, its old name is among the deletions")
    for k in r.deleted_keys[:20]:
        print(f"  deleted {k}")
    if r.deleted > 20:
        print(f"  … {r.deleted - 20} more deletions (lakeshift_sync_deletions)")
    for line in job_failure_hints(s, "sync", again, r.run.number, keyed=keyed):
        print(line)
    if r.next_run_at:
        print(f"next pass at {r.next_run_at:%Y-%m-%d %H:%M:%S} UTC; Ctrl-C stops", flush=True)
