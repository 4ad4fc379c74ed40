"""Text and JSON views of jobs, partitions and runs (times shown in UTC)."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from datetime import datetime
from typing import Any

from lakeshift.api import ATTENTION_STATES, JobStatus, PartitionStatus, RunStatus, StatusResult
from lakeshift.cli.sizes import human_bytes
from lakeshift.cli.text import count, noun, shorten

#: Partitions on a page of `plan --show` and `status --job` unless --limit says otherwise.
PAGE = 20


def _t(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _record(rec: PartitionStatus | RunStatus) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(rec):
        v = getattr(rec, f.name)
        if isinstance(v, datetime):
            v = _t(v)
        elif f.name == "settings":
            v = dict(v)
        out[f.name] = v
    return out


def job_dict(job: JobStatus) -> dict[str, Any]:
    out: dict[str, Any] = {
        "job": job.job, "destination": job.destination, "created_at": _t(job.created_at),
        "adf_table": job.adf_table, "adf_delta_table": job.adf_delta_table,
        "partitions": job.partitions, "pending": job.pending,
        "running": job.running, "interrupted": job.interrupted, "succeeded": job.succeeded,
        "failed": job.failed,
        "copied": job.copied, "bytes": job.bytes, "failed_objects": job.failed_objects,
        "sync_schedule": job.sync_schedule, "next_sync_at": _t(job.next_sync_at),
        "last_sync_pass": _record(job.last_sync_pass) if job.last_sync_pass else None,
    }
    if job.detail:
        out["by_state"] = {t.state: {f.name: getattr(t, f.name) for f in fields(t)
                                     if f.name != "state"} for t in job.by_state}
        out["partition_table"] = [_record(p) for p in job.partition_table]
        out["partition_table_offset"] = job.partition_table_offset
        out["partition_table_total"] = job.partition_table_total
        out["key_range_partitions"] = job.key_range_partitions
        out["partition_table_states"] = (list(job.partition_table_states)
                                         if job.partition_table_states is not None else None)
        out["runs"] = [_record(r) for r in job.runs]
    return out


#: Characters of a partition's last error in the text table (whole in --json).
_ERROR_WIDTH = 120


def print_partitions(job: JobStatus, as_json: bool, caption: str = "") -> None:
    if as_json:
        json.dump(job_dict(job), sys.stdout, indent=2)
        print()
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"job {job.job} → {job.destination}" + (f": {caption}" if caption else ""),
              title_justify="left")
    for col in ("#", "state", "source / prefix", "range", "objects", "bytes", "rate",
                "duration", "last error"):
        # Long cells wrap at words; only a single word wider than its column is folded.
        t.add_column(col, overflow="fold")
    for p in job.partition_table:
        rng = ""
        if p.range_start or p.range_end:
            rng = f"[{p.range_start or ''}, {p.range_end or '…'})"
        t.add_row(str(p.seq), p.reads or p.state, f"{p.source}{p.prefix}", rng,
                  f"{p.copied}/{p.listed}", human_bytes(p.bytes),
                  f"{human_bytes(p.throughput_bytes_per_s)}/s", f"{p.duration_s:.1f}s",
                  shorten(p.last_error or "", _ERROR_WIDTH))
    Console(width=160).print(t)


def print_plan(job: JobStatus, as_json: bool) -> None:
    """A job's plan: one summary line (how many partitions, of which kind, and the objects
    and bytes its partitions know of), the page of partitions asked for, and one line on
    how many are left out and the option that shows them.  --json: the data as it is."""
    if as_json:
        print_partitions(job, True)
        return
    ranges = job.key_range_partitions
    kinds = ", ".join(f"{n:,} {noun(n, what)}" for n, what in (
        (job.partitions - ranges, "prefix"), (ranges, "key range")) if n)
    listed = sum(t.listed for t in job.by_state)
    known = (f"; {count(listed, 'object')} listed, {count(job.copied, 'object')} "
             f"({human_bytes(job.bytes)}) copied so far" if listed or job.copied else "")
    print(f"job {job.job} → {job.destination}: {job.partitions:,} "
          f"{noun(job.partitions, 'partition')}"
          + (f" ({kinds})" if kinds else "") + known)
    if (line := _delta_table_line(job)) is not None:
        print(line)
    total, first, shown = job.partitions, job.partition_table_offset, len(job.partition_table)
    if shown and shown < total:
        print_partitions(job, False, f"partitions {first + 1}–{first + shown} of {total:,}")
    elif shown:
        print_partitions(job, False)
    after = total - first - shown
    if after > 0 and shown:
        print(f"  … {after:,} more {noun(after, 'partition')}: {_next(first, shown)} "
              "shows the next, --all every partition, --json all of them as data")
    elif after > 0:
        print("  none shown (--limit 0): --all shows every partition")
    elif total and not shown:
        print(f"  no partitions from --offset {first} (the job has {total:,})")


def print_status(result: StatusResult, job_name: str | None, as_json: bool) -> None:
    if as_json:
        json.dump({"db": result.db, "jobs": [job_dict(j) for j in result.jobs]}, sys.stdout,
                  indent=2)
        print()
        return
    if not result.jobs:
        print(f"{result.db}: no jobs yet (lakeshift plan … --job NAME)")
        return
    for d in result.jobs:
        print(f"job {d.job} → {d.destination}: {count(d.partitions, 'partition')} — "
              f"{d.succeeded} succeeded, {d.failed} failed, {_running(d)}, "
              f"{d.pending} pending; {count(d.copied, 'object')}, {human_bytes(d.bytes)} "
              f"copied, {count(d.failed_objects, 'object')} failed")
        if (line := _delta_table_line(d)) is not None:
            print(line)
        if d.last_sync_pass is not None:
            r = d.last_sync_pass
            print(f"  last sync pass: {_run_label(r)} {r.state}, {_t(r.started_at)}: "
                  f"{count(r.copied, 'object')}, {human_bytes(r.bytes)} copied; "
                  f"{r.partitions_succeeded} ok / {r.partitions_failed} failed")
        if d.sync_schedule and d.next_sync_at:
            print(f"  sync {d.sync_schedule}: next pass at "
                  f"{d.next_sync_at:%Y-%m-%d %H:%M:%S} UTC")
    if job_name:
        job = result.jobs[0]
        _print_by_state(job)
        _print_page(job)
        for r in job.runs[:5]:
            print(f"  {_run_label(r)} {r.state:<11} {_t(r.started_at)} → "
                  f"{_t(r.finished_at) or '…'}  batch {r.batch_count}, "
                  f"{r.partitions_succeeded} ok / {r.partitions_failed} failed, "
                  f"{count(r.copied, 'object')}, {human_bytes(r.bytes)}")


def _delta_table_line(job: JobStatus) -> str | None:
    """A job made from an ADF delta template's table: one line naming it (its partitions
    and each sync pass's window come from it)."""
    if not job.adf_delta_table:
        return None
    return (f"  ADF delta table {job.adf_delta_table}: partitions from its PartitionPrefix "
            "values, sync windows from its last success")


def _running(job: JobStatus) -> str:
    """``2 running``; partitions a run that died left ``running`` read as interrupted."""
    if not job.interrupted:
        return f"{job.running} running"
    held = job.running - job.interrupted
    return (f"{held} running, " if held else "") + (
        f"{job.interrupted} interrupted (lease expired; the next run takes "
        f"{'it' if job.interrupted == 1 else 'them'} over)")


def _print_by_state(job: JobStatus) -> None:
    """The partitions by state: how many, their objects and bytes (the state ``running``
    named as it reads when a run that died left them so)."""
    if not job.by_state:
        return
    width = max(len(f"{t.partitions:,}") for t in job.by_state)
    for t in job.by_state:
        print(f"  {t.state:<10} {t.partitions:>{width},} {noun(t.partitions, 'partition'):<10}"
              f" {t.copied:,}/{t.listed:,} objects copied, {human_bytes(t.bytes)}"
              + (f", {count(t.failed_objects, 'object')} failed" if t.failed_objects else "")
              + (f" — {_running(job)}" if t.state == "running" and job.interrupted else ""))


def _next(first: int, shown: int) -> str:
    """The options that show the page after one of ``shown`` partitions from ``first``: a
    full page, so ``shown`` is the page size asked for (named unless it is the default)."""
    return f"--offset {first + shown}" + ("" if shown == PAGE else f" --limit {shown}")


def _print_page(job: JobStatus) -> None:
    """The page of partitions status was asked for, and one line on what is left out and
    the option that shows it."""
    states = job.partition_table_states

    def what(n: int) -> str:
        p = noun(n, "partition")
        return (p if states is None else f"{p} needing attention"
                if set(states) == set(ATTENTION_STATES) else f"{'/'.join(states)} {p}")

    total, first, shown = job.partition_table_total, job.partition_table_offset, \
        len(job.partition_table)
    if not total:
        if states is not None:
            print(f"  no {what(0)} (--all lists every partition)")
        return
    if shown:
        print_partitions(job, False, f"{what(total)} {first + 1}–{first + shown} of {total:,}")
    after = total - first - shown
    if after > 0 and shown:
        print(f"  … {after:,} more {what(after)}: {_next(first, shown)} shows the next"
              + ("" if states is None else ", --all every partition"))
    elif after > 0:
        print(f"  {total:,} {what(total)}, none shown (--limit 0)")
    elif not shown:
        print(f"  {total:,} {what(total)}, none from --offset {first}")


def _run_label(r: RunStatus) -> str:
    """Runs are numbered per job (``run 2``); a DB that does not number them shows the id."""
    return f"run {r.number}" if r.number else f"run id {r.id}"
