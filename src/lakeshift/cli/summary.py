"""The end-of-run summary, as text or as JSON."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

from lakeshift.cli.sizes import human_bytes
from lakeshift.cli.text import count, noun, skip_reasons
from lakeshift.engine.events import PROOF_FOLDER
from lakeshift.model import CopyResult, Failure, TransferStats


def summary_dict(result: CopyResult, source: str, destination: str,
                 proof_log: str | None = None) -> dict[str, Any]:
    """``proof_log``: the --proof-log file, when one was written (named in the summary)."""
    s = result.stats
    return {
        "source": source,
        "destination": destination,
        "dry_run": result.dry_run,
        "listed": s.listed,
        "listed_bytes": s.listed_bytes,
        "copied": s.copied,
        "copied_bytes": s.copied_bytes,
        "skipped": s.skipped,
        "skipped_bytes": s.skipped_bytes,
        "failed": s.failed,
        "failed_bytes": s.failed_bytes,
        "bytes_transferred": s.bytes_transferred,
        "skipped_errors": s.skipped_errors,
        "skipped_by_reason": dict(sorted(s.skipped_by_reason.items())),
        "failed_by_kind": dict(sorted(s.failed_by_kind.items())),
        "unmapped_principals": dict(sorted(s.unmapped_principals.items())),
        "renamed": s.renamed,
        "throttled": s.throttled,
        "sources_deleted": s.sources_deleted,
        "sources_kept": s.sources_kept,
        "folders_removed": s.folders_removed,
        "duration_s": round(s.duration, 3),
        "throughput_bytes_per_s": round(s.throughput, 1),
        "objects_per_s": round(s.copied / s.duration, 1) if s.duration > 0 else 0.0,
        "proofs": dict(sorted(result.proofs.items())),
        **({"proof_log": proof_log} if proof_log is not None else {}),
        "server_copy_off": result.server_copy_off[0] if result.server_copy_off else None,
        "exit_code": result.exit_code,
        # What the text ends with: what to do about each kind of failure.
        "hints": [h.strip() for h in _copy_hints(result)],
        "failures": [{"key": f.object_key, "kind": f.error_kind, "message": f.message,
                      "attempts": f.attempts, "skipped": f.skipped} for f in result.failures],
        "renames": [{"key": r.key, "destination_key": r.destination_key, "rule": r.rule}
                    for r in result.renames],
        "deletions": [{"key": x.key, "destination_key": x.destination_key, "md5": x.md5,
                       "deleted": x.kept is None, "kept_because": x.kept, "folder": x.folder}
                      for x in result.deletions],
    }


#: Where a run's S3 endpoint came from (RunResult.s3_endpoint), as its summary says it.
_ENDPOINT_FROM = {"--s3-endpoint": "--s3-endpoint, for this run",
                  "job": "the job's, from plan --s3-endpoint",
                  "AWS_ENDPOINT_URL_S3": "AWS_ENDPOINT_URL_S3",
                  "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL"}


def endpoint_fields(endpoint: tuple[str | None, str] | None) -> dict[str, Any]:
    """A run's or sync pass's S3 endpoint and where it came from, for its JSON summary
    (nothing for a job without an S3 store); the URL redacted."""
    from lakeshift.redact import redact

    if endpoint is None:
        return {}
    url, source = endpoint
    return {"s3_endpoint": redact(url) if url else None, "s3_endpoint_from": source}


def endpoint_line(endpoint: tuple[str | None, str] | None) -> str | None:
    """The summary's line naming the S3 endpoint a run used and where it came from
    (precedence: run's --s3-endpoint > the job's > AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL
    > AWS's own); None for a job without an S3 store."""
    from lakeshift.redact import redact

    if endpoint is None:
        return None
    url, source = endpoint
    if url is None:
        return "  S3 endpoint: AWS's own (none given, saved with the job or set in " \
               "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)"
    return f"  S3 endpoint: {redact(url)} ({_ENDPOINT_FROM.get(source, source)})"


def proof_log_line(proof_log: str, width: int = 0) -> str:
    """The summary's line naming the --proof-log file (copy, run, sync)."""
    return f"  {'proofs':<{width}} one row per copied object appended to {proof_log}"


#: What the `proven` line says a folder's proof is.
FOLDER_MEANS = " (made at the destination; no bytes to prove)"


def print_summary(result: CopyResult, source: str, destination: str, as_json: bool,
                  proof_log: str | None = None) -> None:
    d = summary_dict(result, source, destination, proof_log)
    if as_json:
        json.dump(d, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    verb = "would copy" if result.dry_run else "copied"

    width = max(8, len(verb))  # "would copy" is longer than the other labels

    def row(label: str, n: int, nbytes: int) -> str:
        return f"  {label:<{width}} {n:>10} {noun(n, 'object'):<7}  {human_bytes(nbytes)}"

    if result.dry_run:
        ended = f"dry run: nothing written; {count(d['listed'], 'object')} compared"
    elif d["copied"]:
        ended = (f"{human_bytes(d['throughput_bytes_per_s'])}/s, "
                 f"{d['objects_per_s']} objects/s")
    elif d["failed"]:
        ended = f"nothing copied; {count(d['failed'], 'object')} failed"
    else:
        ended = f"nothing to copy; {count(d['listed'], 'object')} compared"

    lines = [
        f"{'Dry run' if result.dry_run else 'Copy'}: {source} → {destination}",
        row("listed", d["listed"], d["listed_bytes"]),
        row(verb, d["copied"], d["copied_bytes"]),
        row("skipped", d["skipped"], d["skipped_bytes"]) + (
            f" ({skip_reasons(d['skipped_by_reason'])})" if d["skipped"] else ""),
        row("failed", d["failed"], d["failed_bytes"]) + (
            " (" + ", ".join(f"{n} {kind}" for kind, n in d["failed_by_kind"].items()) + ")"
            if d["failed"] else ""),
        f"  {'duration':<{width}} {d['duration_s']:>10.1f} s        {ended}",
    ]
    if d["proofs"]:
        # How each copied object was proven (docs/integrity.md "Proofs"); --json counts the same,
        # and the proof log names each the same way.  A folder has no bytes: its proof is
        # that it was made (they add up to `copied`).
        lines.append(f"  {'proven':<{width}} " + ", ".join(
            f"{n} {proof}" + (FOLDER_MEANS if proof == PROOF_FOLDER else "")
            for proof, n in d["proofs"].items()))
    if proof_log is not None:
        lines.append(proof_log_line(proof_log, width))
    if d["unmapped_principals"]:
        lines.append(unmapped_line(d["unmapped_principals"]))
    if d["renamed"]:
        lines.append(f"  renamed  {d['renamed']:>10} {noun(d['renamed'], 'object')} "
                     "(--invalid-names encode)")
    if d["sources_deleted"] or d["sources_kept"] or d["folders_removed"]:
        lines.append(f"  moved    {d['sources_deleted']:>10} source "
                     f"{noun(d['sources_deleted'], 'object')} deleted after verification, "
                     f"{d['sources_kept']} kept (not provably copied)"
                     + (f"; removed {count(d['folders_removed'], 'empty folder')}"
                        if d["folders_removed"] else ""))
    if d["throttled"]:
        lines.append(f"  throttled {d['throttled']:>9} {noun(d['throttled'], 'request')} "
                     "(retried; concurrency adapted)")
    if d["server_copy_off"]:
        lines.append("  server-side copy unavailable here, so every object was streamed "
                     f"through this machine ({d['server_copy_off']})")
    failures = result.failures
    common = _common_cause(failures)
    if common is not None:
        # One cause behind most failures (an endpoint that stopped answering mid-copy):
        # said once, with its count, instead of twenty identical lines.
        (kind, message), n = common
        hint = (" — an endpoint that stopped answering? Once it answers, run the same "
                "command again: what was copied is skipped as identical"
                if kind == "transient" else "")
        lines.append(f"  FAILED {n} objects the same way: [{kind}] {message}{hint}")
        failures = [f for f in failures if f.skipped or _cause(f) != common[0]]
    for f in failures[:20]:
        lines.append(f"  {'SKIPPED' if f.skipped else 'FAILED'} {f.object_key}: "
                     f"[{f.error_kind}] {f.message}")
    for r in result.renames[:20]:
        lines.append(f"  RENAMED {r.key} → {r.destination_key} ({r.rule})")
    if len(failures) > 20 or len(result.renames) > 20 or common is not None:
        lines.append("  … more in --json" if common is None else
                     "  each object's key and error: --json")
    said = {common[0][0]} if common is not None and common[0][0] == "transient" else set()
    lines.extend(_copy_hints(result, said))
    print("\n".join(lines), flush=True)


def _copy_hints(result: CopyResult, said: set[str] | frozenset[str] = frozenset()
                ) -> list[str]:
    """``failure_hints`` of a copy's failures, but for the kinds in ``said`` (the text's
    one line of a common cause said what to do already)."""
    return failure_hints(
        [f.error_kind for f in result.failures if not f.skipped and f.error_kind not in said],
        skipped=[f.error_kind for f in result.failures if f.skipped])


_SKIP_AND_GO_ON = "to skip these and go on: {skip}"
_RUN_AGAIN = ("run the same command again: what was copied is skipped as identical, the "
              "rest is tried again")

#: What to do about a kind of object failure (errors.py's kinds), said once a kind at the
#: end of a summary that lists failures.  The flags are placeholders (``{skip}``,
#: ``{encode}``, ``{stream}``) filled in by the command whose summary it ends
#: (``_FLAGS``): copy takes each flag, a job's are set when it is planned.
FAILURE_HINTS = {
    "forbidden": _SKIP_AND_GO_ON + " (or grant read access and run again)",
    "missing": _SKIP_AND_GO_ON + " (they went after the listing)",
    "archived": "restore them first, or " + _SKIP_AND_GO_ON,
    "dangling-link": _SKIP_AND_GO_ON,
    # A name the naming rules reject can be renamed; a file/folder collision (a file "a"
    # beside "a/b") cannot, so --skip-errors is the hint that serves both.
    "invalid-name": (_SKIP_AND_GO_ON + "; to rename instead a name the destination's rules "
                     "reject: {encode}"),
    "server-copy": "to stream what the service cannot copy itself: {stream}",
    "transient": _RUN_AGAIN,
    "throttled": _RUN_AGAIN + " (or lower --concurrency)",
    "changed": _RUN_AGAIN,
    "integrity": _RUN_AGAIN,
}

#: A hint worded for a sync pass of named keys (--files-from, --inventory): it lists
#: nothing, so a key its source does not have was not there when the pass asked it (a
#: name mistyped in the list, or an object deleted since the list was made).
KEYED_HINTS = {
    "missing": _SKIP_AND_GO_ON + " (the source has no object of these names: check the "
               "names in the list; or the objects went after it was made)",
}

#: Where each command's hints send the user for a flag: ``copy`` takes them all; a job's
#: --skip-errors and --invalid-names are its own, set by ``plan`` (`run` takes neither, and
#: `sync --job` refuses other values), and so is its copy mode, which `run --copy-mode`
#: replaces for one run.
_PLAN_AGAIN = "plan the job again with "
_FLAGS = {
    "copy": {"skip": "--skip-errors {kind}", "encode": "--invalid-names encode",
             "stream": "--copy-mode auto"},
    "run": {"skip": _PLAN_AGAIN + "--skip-errors {kind}",
            "encode": _PLAN_AGAIN + "--invalid-names encode", "stream": "--copy-mode auto"},
    "sync": {"skip": _PLAN_AGAIN + "--skip-errors {kind}",
             "encode": _PLAN_AGAIN + "--invalid-names encode",
             "stream": _PLAN_AGAIN + "--copy-mode auto"},
}


def failure_hints(kinds: Iterable[str], skipped: Iterable[str] = (),
                  command: str = "copy", keyed: bool = False,
                  again: str = "--job NAME") -> list[str]:
    """One line per kind of failure present (in the order first seen) naming what to do
    about it: a summary that lists failures ends with these, once, not per object.

    ``skipped``: the kinds of the objects skipped (already under --skip-errors).  When
    more than one kind could be skipped, a last line names them in one --skip-errors (a
    second --skip-errors replaces the first: the flag takes a comma-separated list).
    ``command``: copy, run or sync, whose summary it is (``_FLAGS``: a job's own flags are
    given by planning it again, which a last line explains).  ``keyed``: a sync pass that
    copied named keys (--files-from, --inventory) and listed nothing, whose hints say so
    (``KEYED_HINTS``).  ``again``: the arguments that reach the job, for the command that
    plans it again."""
    flags = _FLAGS[command]
    lines: list[str] = []
    failed = list(dict.fromkeys(kinds))
    for kind in failed:
        hint = (KEYED_HINTS.get(kind) if keyed else None) or FAILURE_HINTS.get(kind)
        if hint is not None:
            lines.append(f"  {kind}: " + hint.format(**flags).format(kind=kind))
    can_skip = [k for k in failed if k in _SKIPPABLE]
    if can_skip:
        every = list(dict.fromkeys([*(k for k in skipped if k in _SKIPPABLE), *can_skip]))
        if len(every) > 1:
            lines.append("  to skip them all and go on: "
                         + flags["skip"].format(kind=",".join(every))
                         + " (one flag, comma-separated)")
    if any(_PLAN_AGAIN in line for line in lines):
        what = "run" if command == "run" else "pass"
        lines.append(f"  to plan the job again: `lakeshift plan {again} --replan` with the "
                     f"flag above (its other options and its partitions stay; its next {what} "
                     "compares everything again, skipping what is identical)")
    return lines


#: The kinds --skip-errors takes (engine.pipeline.SKIPPABLE): their hint names it.
_SKIPPABLE = frozenset(k for k, hint in FAILURE_HINTS.items() if "{skip}" in hint)


def job_failure_hints(stats: TransferStats, command: str, again: str,
                      run_number: int | None, keyed: bool = False) -> list[str]:
    """The end of a run's or a sync pass's text summary when objects failed: what to do
    about each kind of failure (``failure_hints``, a job's flags where a job takes them),
    then how to get at their keys, which are in the control DB (not in the summary, as a
    copy's are): this run's to a CSV file, which `sync --files-from` retries alone.
    ``again``: the arguments that reach the job (``job_cmds.again_args``); ``run_number``:
    the run's (or pass's) number, when the DB numbers runs; ``keyed``: a sync pass of
    named keys (``failure_hints``)."""
    if not stats.failed:
        return []
    skippable = [k for k in stats.skipped_by_reason if k in _SKIPPABLE]
    lines = failure_hints(stats.failed_by_kind, skipped=skippable, command=command,
                          keyed=keyed, again=again)
    of_run = f" --run {run_number}" if run_number else ""
    this = "this run's" if command == "run" else "this pass's"
    lines.append(f"  {this} failed objects to a file: `lakeshift failures {again}{of_run} "
                 f"--csv-file failed.csv`; once their cause is fixed, `lakeshift sync {again} "
                 "--files-from failed.csv` retries just them")
    return lines


def failures_command(again: str, run_number: int | None) -> str:
    """The command that lists a run's failed objects as JSON (a run's --json names it)."""
    return f"lakeshift failures {again}" + (f" --run {run_number}" if run_number else "") \
        + " --json"


def _cause(f: Failure) -> tuple[str, str]:
    """A failure's kind and message, its own key taken out (many objects can share it)."""
    key = f.object_key
    return f.error_kind, (f.message.replace(key, "…") if key else f.message)


#: Identical failures said once when there are more than the summary lists one by one.
_COMMON_AT = 20


def _common_cause(failures: list[Failure]) -> tuple[tuple[str, str], int] | None:
    """The cause most failures (not skips) share, with its count, when it is behind more
    than the summary would list and at least half of them; else None."""
    causes = Counter(_cause(f) for f in failures if not f.skipped)
    if not causes:
        return None
    cause, n = causes.most_common(1)[0]
    return (cause, n) if n > _COMMON_AT and 2 * n >= sum(causes.values()) else None


def unmapped_line(principals: dict[str, int]) -> str:
    """The principals --map-identities lacks, each with its count of failed paths."""
    named = ", ".join(f"{who} ({count(n, 'path')})" for who, n in principals.items())
    return f"  unmappable principals: {named} — add them to --map-identities and rerun"
