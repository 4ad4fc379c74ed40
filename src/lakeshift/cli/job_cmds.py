"""`lakeshift plan`, `run`, `status`, `failures`, `delete-job`: partitioned, resumable
migrations tracked in the control DB.  Each calls the function of the same name in
``lakeshift.api`` (``delete-job``: ``delete_job``)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lakeshift import api
from lakeshift.api import DEFAULT_DB, StoreOptions
from lakeshift.cli.options import (
    FILTERS,
    JOB_WORK,
    KEEPING,
    NO_OPTIONS,
    NO_STORE_OPTIONS,
    PACING,
    STORE_VARIABLES,
    CopyModeOpt,
    DbOpt,
    JobOpt,
    JsonOpt,
    ProgressOpt,
    ProofLogOpt,
    RunCopyModeOpt,
    RunS3EndpointOpt,
    V,
    given,
    name_store_variables,
    store_environment,
    with_options,
    with_store_options,
)
from lakeshift.cli.progress import progress_subscribers
from lakeshift.cli.sizes import human_bytes
from lakeshift.cli.status_view import PAGE, print_plan, print_status
from lakeshift.cli.summary import (
    endpoint_fields,
    endpoint_line,
    failures_command,
    job_failure_hints,
    proof_log_line,
    unmapped_line,
)
from lakeshift.cli.text import StopNotice, count, skip_reasons
from lakeshift.errors import AuthError, UsageError
from lakeshift.model import RunResult
from lakeshift.plan.jobconfig import JobConfig
from lakeshift.plan.jobconfig import load as load_config

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

  lakeshift plan --replan --job raw    (every partition again from the start)
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


#: Partitions ``plan --show`` prints as text unless --limit or --all says otherwise.
PLAN_LIMIT = PAGE


@with_store_options
@with_options(filters=FILTERS, keeping=KEEPING)
def plan(
    ctx: typer.Context,
    urls: Annotated[list[str] | None, typer.Argument(
        help="SRC [SRC…] DST: one or more sources, then the destination.",
        show_default=False, metavar="SRC... DST")] = None,
    job: JobOpt = "",
    db: DbOpt = DEFAULT_DB,
    prefix: Annotated[list[str] | None, typer.Option(
        "--prefix", help="A partition: this prefix under each SRC (repeatable).",
        metavar="PREFIX")] = None,
    partitions_file: Annotated[Path | None, typer.Option(
        "--partitions-file", help="One prefix (under SRC) per line; # starts a comment.",
        metavar="FILE")] = None,
    partition_by: Annotated[str, typer.Option(
        "--partition-by", help="none (default), or auto: key ranges of --target-objects.",
        metavar="MODE")] = "none",
    target_objects: Annotated[int, typer.Option(
        "--target-objects", help="Objects per partition with --partition-by auto.",
        metavar="N")] = 100_000,
    adf_control_table: Annotated[str | None, typer.Option(
        "--adf-control-table", help="Take partitions from this ADF-template table "
                                    "(PartitionPrefix, SuccessOrFailure) in the --db.",
        metavar="TABLE")] = None,
    adf_delta_table: Annotated[str | None, typer.Option(
        "--adf-delta-table", help="Take partitions from this ADF delta table "
                                  "(PartitionPrefix, JobRunTime, SuccessOrFailure), as sync "
                                  "--adf-delta-table does: one SRC, and its sync windows "
                                  "start at the table's successful JobRunTime. --replan of a "
                                  "job made so keeps its table; '' drops it.",
        metavar="TABLE", show_default=False)] = None,
    show: Annotated[bool, typer.Option(
        "--show", help=f"Print the plan: a summary, then the partition table (text: the "
                       f"first {PLAN_LIMIT} unless --limit or --all says otherwise).")
    ] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=0, help=f"Show at most this many partitions (text: {PLAN_LIMIT} "
                               f"unless told; --json: all).", show_default=False,
        metavar="N")] = None,
    offset: Annotated[int, typer.Option(
        "--offset", min=0, help="Skip this many partitions first (the next page: "
                                f"--offset {PLAN_LIMIT}).", metavar="N")] = 0,
    all_partitions: Annotated[bool, typer.Option(
        "--all", "--all-partitions", help="Show every partition (the whole table).")
    ] = False,
    replan: Annotated[bool, typer.Option(
        "--replan", help="Plan an existing job again: with SRC DST, replace it by the new "
                         "plan (once that plan is listed and valid; the options are the ones "
                         "given here, and its runs and failures go with the old plan); "
                         "without, restart its partitions from the start, with the copy "
                         "options given here (--skip-errors, --include and the like) "
                         "replacing its own, its runs kept as history.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="With --replan: even while a process is running the job.")] = False,
    filters: dict[str, Any] = NO_OPTIONS,
    keeping: dict[str, Any] = NO_OPTIONS,
    copy_mode: CopyModeOpt = "stream",
    as_json: JsonOpt = False,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="With --partition-by auto: split the listing across a Dask "
                       "cluster's workers: tcp://HOST:8786 or local:N (docs/dask.md).",
        metavar="URL|local:N")] = None,
    store: StoreOptions = NO_STORE_OPTIONS,
) -> int:
    urls = urls or []
    if not as_json and not all_partitions and limit is None:
        limit = PLAN_LIMIT  # the text view is for a terminal: a screenful
    changed = _changed_on_replan(ctx, job) if replan and len(urls) < 2 else []
    result = api.plan(urls[:-1] if len(urls) >= 2 else urls,
                      urls[-1] if len(urls) >= 2 else None, job=job, db=db,
                      prefix=prefix or (), partitions_file=partitions_file,
                      partition_by=partition_by, target_objects=target_objects,
                      adf_control_table=adf_control_table, show=show, replan=replan,
                      force=force, store_options=store, copy_mode=copy_mode, dask=dask,
                      offset=offset, limit=limit, all_partitions=all_partitions,
                      adf_delta_table=adf_delta_table, changed=changed, **filters,
                      **keeping)
    if show or as_json or not result.created:
        if changed and not as_json:
            values = {**filters, **keeping, "copy_mode": copy_mode}
            said = ", ".join(f"--{n.replace('_', '-')} {_said(values[n])}" for n in changed)
            print(f"job {job!r} now copies with {said} (its other options kept); every "
                  "partition starts again, skipping what is identical")
        print_plan(result.job, as_json)
    else:
        again = again_args(job, db, ctx.get_parameter_source("db"))
        table = (f" from ADF delta table {result.adf_delta_table}"
                 + (" (the job's, kept: --adf-delta-table '' drops it)"
                    if adf_delta_table is None else "")
                 if result.adf_delta_table else "")
        print(f"job {job!r}: {count(result.job.partitions, 'partition')}{table} planned in "
              f"{result.db} (lakeshift plan --show {again}; lakeshift run {again})")
    return 0


def _said(value: Any) -> str:
    """An option's value as typed again: a list comma-joined, '' for none."""
    if isinstance(value, list | tuple):
        value = ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else "off"
    return _q(str(value)) if value not in (None, "") else "''"


#: What ``plan --job J --replan`` takes besides the copy options it changes (api.jobs
#: _CHANGEABLE): nothing else of the plan is given without SRC DST.
_RESET_TAKES = frozenset({"urls", "job", "db", "show", "limit", "offset", "all_partitions",
                          "replan", "force", "as_json"})


def _changed_on_replan(ctx: typer.Context, job: str) -> list[str]:
    """The copy options typed on ``plan --job J --replan`` (no SRC DST), which replace the
    job's saved ones; any other option of a plan typed there is refused in one line (it
    was silently dropped: only a plan from SRC DST sets it)."""
    typed = [name for name in ctx.params
             if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]
    other = sorted(f"--{n.replace('_', '-')}" for n in typed
                   if n not in api._CHANGEABLE and n not in _RESET_TAKES)
    if other:
        raise UsageError(
            f"{', '.join(other)} {'is' if len(other) == 1 else 'are'} set by planning the "
            f"job from its SRC DST: `lakeshift plan SRC… DST --job {shlex.quote(job)} "
            f"--replan` with every option it needs (without SRC DST, --replan changes only "
            f"{', '.join('--' + n.replace('_', '-') for n in sorted(api._CHANGEABLE))})")
    return [n for n in typed if n in api._CHANGEABLE]


#: What run --config may set: passed only when given (the file's value applies otherwise).
_CONFIGURED = ("batch_count", "concurrency", "block_size", "single_put_max")


@with_options(pacing=PACING, work=JOB_WORK)
def run(
    ctx: typer.Context,
    job: JobOpt = "",
    db: DbOpt = DEFAULT_DB,
    pacing: dict[str, Any] = NO_OPTIONS,
    work: dict[str, Any] = NO_OPTIONS,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Run what `lakeshift init` wrote (plans the job first if the DB does "
                         "not have it). Its job, db, batch count, concurrency and sizes "
                         "replace the defaults; a flag given here wins over the file.",
        metavar="FILE")] = None,
    copy_mode: RunCopyModeOpt = None,
    proof_log: ProofLogOpt = None,
    s3_endpoint: RunS3EndpointOpt = None,
    progress: ProgressOpt = "auto",
    as_json: JsonOpt = False,
) -> int:
    cfg = load_config(config) if config is not None else None
    # Only the flag given overrides the job's saved store options (api.run's rule).
    store = StoreOptions(s3_endpoint=s3_endpoint) if s3_endpoint is not None else None
    # LAKESHIFT_COPY_MODE is not a typed --copy-mode: it yields to the job's saved mode
    # (flag > job > environment, as the store options).
    mode_env = getattr(ctx.get_parameter_source("copy_mode"), "name", None) == "ENVIRONMENT"
    # Values left at their defaults are not passed: a --config file's then apply.  So are
    # values from the environment that the file sets: a file named on the command line is
    # the user's choice (flags > --config file > environment > defaults).
    options = {**pacing, **work}
    options.update({k: _chosen(ctx, k, options[k], cfg) for k in _CONFIGURED})
    job_given, db_given = _chosen(ctx, "job", job, cfg), _chosen(ctx, "db", db, cfg)
    used_db = db_given or (cfg.db if cfg is not None else DEFAULT_DB)
    again = again_args(job_given or (cfg.name if cfg is not None else ""), used_db,
                        ctx.get_parameter_source("db"), cfg)
    while True:
        with progress_subscribers(progress, as_json) as subs:
            try:
                # LAKESHIFT_AZURE_AUTH …: where the job has the default (flag > job >
                # environment, as sync's).
                result = api.run(job=job_given or "", db=db_given, config=config,
                                 subscribers=subs, copy_mode=None if mode_env else copy_mode,
                                 copy_mode_environment=copy_mode if mode_env else None,
                                 proof_log=proof_log, store_options=store,
                                 store_environment=store_environment(), **options)
            except (UsageError, AuthError) as e:
                name_store_variables(e, RUN_VARIABLES if mode_env else None)
                raise
        _print_run(result, as_json, proof_log, db=used_db, again=again, config=config)
        if cfg is None or cfg.every_s is None:
            return result.exit_code
        print(f"next run in {cfg.every_s:.0f} s (schedule from {config}); Ctrl-C stops",
              flush=True)
        time.sleep(cfg.every_s)


#: run's options by the --config file's key that sets each.
_CONFIG_KEYS = {"job": "name", "db": "db", "batch_count": "batch_count",
                "concurrency": "concurrency", "block_size": "block_size",
                "single_put_max": "single_put_max"}


def _chosen(ctx: typer.Context, name: str, value: V, cfg: JobConfig | None) -> V | None:
    """``value`` when the user chose it for this run: a flag, or an environment variable
    the --config file (``cfg``) does not override; None leaves it to the file or the
    default."""
    source = ctx.get_parameter_source(name)
    if (cfg is not None and source is not None and source.name == "ENVIRONMENT"
            and _CONFIG_KEYS[name] in cfg.given):
        return None
    return given(ctx, name, value)


def _q(text: str) -> str:
    return shlex.quote(text)


def again_args(job: str, db: str, db_source: Any, cfg: JobConfig | None = None) -> str:
    """``--job J [--db URL]``: what a command lakeshift prints for the user to paste needs to
    reach this job again.  ``--db`` is named when the DB came from a flag or the --config
    file (``cfg`` sets it) and is not the default, redacted (a password stays out of it);
    one from LAKESHIFT_DB is not: the environment is there again."""
    from lakeshift.redact import redact

    source = getattr(db_source, "name", None)
    named = source == "COMMANDLINE" or (cfg is not None and "db" in cfg.given)
    return f"--job {_q(job)}" + (f" --db {_q(redact(db))}"
                                 if named and db != DEFAULT_DB else "")


#: How the summary names a store option, or the copy mode (others: by their flag).
_STORE_LABELS = {"azure_auth": "Azure auth", "s3_request_payer": "S3 request payer",
                 "copy_mode": "Copy mode"}
#: The environment variables of the settings a run's summary reports (store_settings and
#: copy_mode_setting): the store options' and LAKESHIFT_COPY_MODE.
RUN_VARIABLES = {**STORE_VARIABLES, "copy_mode": "LAKESHIFT_COPY_MODE"}


def run_settings(result: RunResult) -> dict[str, tuple[Any, str, Any]]:
    """A run's store settings and its copy mode's (when a flag or the environment was
    involved), as store_fields and store_lines take them."""
    mode = result.copy_mode_setting
    return {**result.store_settings, **({"copy_mode": mode} if mode is not None else {})}


def store_fields(settings: dict[str, tuple[Any, str, Any]]) -> dict[str, Any]:
    """A run's or sync pass's ``store_settings`` for its JSON summary: each option a flag
    or the environment set, the value used and where it came from (the flag, ``job``, or
    the environment variable)."""
    out: dict[str, Any] = {}
    for option, (value, where, _) in sorted(settings.items()):
        out[option] = value
        out[f"{option}_from"] = (RUN_VARIABLES.get(option, where) if where == "environment"
                                 else where)
    return out


def store_lines(settings: dict[str, tuple[Any, str, Any]], what: str = "run") -> list[str]:
    """The summary's lines on the store options a flag or the environment set (``what``:
    run or pass): which value was used and why (flag > job > environment).  Nothing when
    the job's own was used and the environment says the same."""
    lines = []
    for option, (value, where, saved) in sorted(settings.items()):
        label = _STORE_LABELS.get(option, "--" + option.replace("_", "-"))
        flag = "--" + option.replace("_", "-")
        variable = RUN_VARIABLES.get(option)
        in_env = os.environ.get(variable) if variable else None
        shown, job = ("none" if v is None else v for v in (value, saved))
        if where == "environment":
            why = f"{variable}; the job's is the default, {job}"
        elif where == "job":
            if not in_env or in_env == value:
                continue
            why = (f"the job's; {variable}={in_env!r} in the environment is not used: a "
                   f"job's own wins over it, {flag} changes it for one {what}")
        else:
            why = f"{where}, for this {what}; the job's: {job}"
        lines.append(f"  {label}: {shown} ({why})")
    return lines


def _print_run(result: RunResult, as_json: bool, proof_log: str | None = None, *,
               db: str = DEFAULT_DB, again: str | None = None,
               config: Path | None = None) -> None:
    """``proof_log``: the --proof-log file the run appended to (named in the summary).
    ``db``: the control DB the run used (named, redacted); ``again``: the arguments that
    reach this job again in a command printed for the user (``again_args``); ``config``:
    the --config file the run read (the rerun command names it)."""
    from lakeshift.redact import redact

    s, job = result.stats, result.job
    again = again or f"--job {_q(job)}"
    shown_db = redact(db)
    hints = job_failure_hints(s, "run", again, result.number)
    summary = {"job": job, "db": shown_db, "run_id": result.run_id,
               "run_number": result.number,
               "nothing_to_do": result.nothing_to_do,
               "partitions_succeeded": result.succeeded,
               "partitions_failed": result.failed,
               "partitions_failed_total": result.remaining_failed,
               "partitions_left": result.remaining_pending,
               "copied": s.copied, "skipped": s.skipped,
               "skipped_by_reason": dict(sorted(s.skipped_by_reason.items())),
               "failed": s.failed,
               "failed_by_kind": dict(sorted(s.failed_by_kind.items())),
               "unmapped_principals": dict(sorted(s.unmapped_principals.items())),
               "bytes": s.bytes_transferred,
               "duration_s": round(s.duration, 3),
               "errors": [{"partition": p, "error": e} for p, e in result.errors],
               "cancelled": result.cancelled,
               **endpoint_fields(result.s3_endpoint), **store_fields(run_settings(result)),
               **({"destination": result.relative_destination[1]}
                  if result.relative_destination is not None else {}),
               **({"proof_log": proof_log} if proof_log is not None else {}),
               "exit_code": result.exit_code,
               # What the text ends with, and where this run's failed objects are listed.
               "hints": [h.strip() for h in hints],
               "failures_command": failures_command(again, result.number) if s.failed
               else None}
    if as_json:
        json.dump(summary, sys.stdout, indent=2)
        print()
        return
    rerun = (f"--config {_q(str(config))} " if config is not None else "") + again
    if result.nothing_to_do:
        print(f"Job {job!r}: nothing to do — every partition has succeeded already, in "
              f"{shown_db} (lakeshift status {again}).")
        left = api.failures(job=job, db=db, csv_file=os.devnull)
        if left.count:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(left.by_kind.items()))
            print(f"  {count(left.count, 'object')} of the job {_were(left.count)} skipped "
                  f"or failed in earlier runs and {_are(left.count)} not copied ({kinds}): "
                  f"`lakeshift failures {again} --csv-file failed.csv` lists them, "
                  f"then `lakeshift sync {again} --files-from failed.csv` retries them")
        return
    skipped = f" ({skip_reasons(s.skipped_by_reason)})" if s.skipped else ""
    run = f"Run {result.number}" if result.number else f"Run id {result.run_id}"
    print(f"{run} of job {job!r} in {shown_db}: {count(result.succeeded, 'partition')} "
          f"succeeded, {result.failed} failed; {count(s.copied, 'object')} copied "
          f"({human_bytes(s.bytes_transferred)}), {s.skipped} skipped{skipped}, {s.failed} "
          f"failed, in {s.duration:.1f} s")
    if (endpoint := endpoint_line(result.s3_endpoint)) is not None:
        print(endpoint)
    for line in store_lines(run_settings(result)):
        print(line)
    if result.relative_destination is not None:
        saved, resolved = result.relative_destination
        print(f"  destination {resolved}: the job saved the relative path {saved}, which "
              "each command resolves from the folder it runs in (`lakeshift plan SRC DST "
              f"--job {_q(job)} --replan` saves the DST you mean absolute)")
    if proof_log is not None:
        print(proof_log_line(proof_log))
    if s.unmapped_principals:
        print(unmapped_line(dict(sorted(s.unmapped_principals.items()))))
    for p, e in result.errors[:20]:
        print(f"  FAILED partition {p}: {e}")
    if result.remaining_pending and not result.cancelled:
        print(f"  {count(result.remaining_pending, 'partition')} still pending or running "
              "(held by another process, or interrupted)")
    if result.cancelled:
        print(f"  the run was cancelled: it stopped at a checkpoint with "
              f"{count(result.remaining_pending, 'partition')} left; `lakeshift run {rerun}` "
              "continues it")
        StopNotice.given = True  # said why it stopped: no generic "interrupted" line
    elif result.exit_code:
        print(f"  rerun `lakeshift run {rerun}` to retry the failed partitions; "
              f"`lakeshift failures {again}` lists failed objects")
    for line in hints:
        print(line)


def _were(n: int) -> str:
    return "was" if n == 1 else "were"


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


#: Partitions ``status --job`` shows as text unless --limit or --all says otherwise.
STATUS_LIMIT = PAGE


def status(
    db: DbOpt = DEFAULT_DB,
    job: Annotated[str | None, typer.Option("--job", "-j", envvar="LAKESHIFT_JOB",
                                            help="Only this job, with its partitions.",
        metavar="NAME")] = None,
    as_json: JsonOpt = False,
    state: Annotated[list[str] | None, typer.Option(
        "--state", help="With --job: only partitions in this state (pending, running: "
                        "its lease held, interrupted: left running by a holder that is "
                        "gone, succeeded, failed; attention = failed, interrupted, "
                        "running, pending; all); "
                        "repeat or separate with commas.  Text shows the attention ones "
                        "unless told; --json every partition.", show_default=False,
        metavar="STATE")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=0, help=f"With --job: show at most this many partitions (text: "
                               f"{STATUS_LIMIT} unless told; --json: all).",
        show_default=False, metavar="N")] = None,
    offset: Annotated[int, typer.Option(
        "--offset", min=0, help="With --job: skip this many partitions first (the next "
                                "page: --offset 20).", metavar="N")] = 0,
    all_partitions: Annotated[bool, typer.Option(
        "--all", "--all-partitions", help="With --job: every partition of every state, in "
                                          "order (the whole table).")] = False,
) -> int:
    paged = bool(state) or limit is not None or offset or all_partitions
    if paged and not job:
        raise UsageError("--state, --limit, --offset and --all choose a job's partitions: "
                         "add --job NAME")
    if job and not as_json and not all_partitions:
        # The text view is for a terminal: the partitions that need attention, a screenful.
        state = state or ["attention"]
        limit = STATUS_LIMIT if limit is None else limit
    print_status(api.status(db=db, job=job, offset=offset, limit=limit, state=state or None,
                            all_partitions=all_partitions), job, as_json)
    return 0


def failures(
    job: JobOpt = "",
    db: DbOpt = DEFAULT_DB,
    csv_file: Annotated[Path | None, typer.Option(
        "--csv-file", "--csv", help="Write them to this CSV file (--csv: the older spelling). "
                                    "Text a spreadsheet would take for a formula (= + - @) "
                                    "or starting with ' gets a leading apostrophe. Retry "
                                    "these objects: sync --job J --files-from FILE.",
        metavar="FILE")] = None,
    run: Annotated[int | None, typer.Option(
        "--run", help="Only those of this run of the job (its number in `lakeshift status "
                      "--job`: 1, 2, …), e.g. the last retry's.", metavar="N")] = None,
    as_json: JsonOpt = False,
) -> int:
    if as_json:
        if csv_file is not None:
            raise UsageError("--json prints the failures; --csv-file writes them to a "
                             "file: give one of them")
        found = api.failures(job=job, db=db, run=run)
        json.dump({"job": found.job, "run": run, "count": found.count,
                   "by_kind": dict(sorted(found.by_kind.items())),
                   "failures": [_failure_dict(f) for f in found.failures]},
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    result = api.failures(job=job, db=db, csv_file="-" if csv_file is None else csv_file,
                          run=run)
    of = f"job {job!r}" if run is None else f"run {run} of job {job!r}"
    if result.count == 0:
        # On stderr when the CSV goes to stdout, which stays a valid (header-only) CSV.
        print(f"{of} has no failed or skipped objects" + (
            f"; {csv_file} holds only the header" if csv_file is not None else ""),
            file=sys.stderr if csv_file is None else sys.stdout)
    elif csv_file is not None:
        print(f"{count(result.count, 'failure')} of {of} written to {csv_file}")
    if result.count:
        # Counted apart by kind (archived objects need a restore, not a rerun); on stderr
        # when the CSV goes to stdout.
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(result.by_kind.items()))
        print(f"by kind: {kinds}", file=sys.stderr if csv_file is None else sys.stdout)
    return 0


def _failure_dict(f: Any) -> dict[str, Any]:
    """One failure-log row as JSON: the CSV's columns (times ISO 8601 UTC)."""
    return {"object_key": f.object_key, "error_kind": f.error_kind, "message": f.message,
            "attempts": f.attempts, "skipped": f.skipped,
            "at": f.at.isoformat() if f.at is not None else None,
            "partition_id": f.partition_id, "run_id": f.run_id}


DELETE_HELP = """Delete a job and everything the control DB records about it: partitions, runs,
failures, renames, sync windows. Objects already copied stay where they are.

Refused while anything runs the job (a run, a worker, a sync schedule): stop it first.

On a terminal it asks first (on stderr); otherwise it needs --yes (or --force).
"""
DELETE_EPILOG = """Examples:

  lakeshift delete-job raw

  lakeshift delete-job --job raw --db postgresql://lakeshift@dbhost/migration --yes
"""


def delete_job(
    name: Annotated[str, typer.Argument(
        metavar="JOB", help="The job to delete (or --job NAME).", show_default=False)] = "",
    job: Annotated[str, typer.Option("--job", "-j", help="The job to delete (by name; "
                                     "LAKESHIFT_JOB is not read here).", show_default=False,
                                     metavar="NAME")] = "",
    db: DbOpt = DEFAULT_DB,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", "--force",
        help="Delete without asking (needed when not on a terminal).")] = False,
    as_json: JsonOpt = False,
) -> int:
    if name and job and name != job:
        raise UsageError(f"two jobs given ({name!r} and --job {job!r}): give one")
    job = name or job
    if not job:
        raise UsageError("which job? give its name: lakeshift delete-job NAME")
    found = api.status(db=db, job=job, limit=0)
    j = found.jobs[0]
    what = (f"job {job!r} ({count(j.partitions, 'partition')}, {count(len(j.runs), 'run')}, "
            f"{count(j.copied, 'object')} copied) from {found.db}")
    if not yes:
        # Ask only where the question is seen and answered: the prompt goes to stderr (so
        # stdout stays the result, JSON with --json) and the answer comes from stdin.
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(f"deleting {what} needs confirmation, and there is no terminal "
                             "to ask on: add --yes")
        print(f"Delete {what} and everything recorded about it? Objects already copied "
              "stay. [y/N] ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted", file=sys.stderr)
            if as_json:
                json.dump({"deleted": None, "db": found.db}, sys.stdout)
                print()
            return 0
    api.delete_job(job, db=db)
    if as_json:
        json.dump({"deleted": job, "db": found.db, "partitions": j.partitions}, sys.stdout)
        print()
    else:
        print(f"deleted {what}")
    return 0
