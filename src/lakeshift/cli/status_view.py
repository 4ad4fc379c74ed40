"""Text and JSON views of jobs, partitions and runs (times shown in UTC)."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from datetime import datetime
from typing import Any

from lakeshift.api import JobStatus, PartitionStatus, RunStatus, StatusResult
from lakeshift.cli.sizes import human_bytes


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
        "adf_table": job.adf_table, "partitions": job.partitions, "pending": job.pending,
        "running": job.running, "succeeded": job.succeeded, "failed": job.failed,
        "copied": job.copied, "bytes": job.bytes, "failed_objects": job.failed_objects,
    }
    if job.detail:
        out["partition_table"] = [_record(p) for p in job.partition_table]
        out["runs"] = [_record(r) for r in job.runs]
    return out


def print_partitions(job: JobStatus, as_json: bool) -> None:
    if as_json:
        json.dump(job_dict(job), sys.stdout, indent=2)
        print()
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"job {job.job} → {job.destination}", title_justify="left")
    for col in ("#", "state", "source / prefix", "range", "objects", "bytes", "MB/s",
                "duration", "last error"):
        t.add_column(col, overflow="fold")
    for p in job.partition_table:
        rng = ""
        if p.range_start or p.range_end:
            rng = f"[{p.range_start or ''}, {p.range_end or '…'})"
        t.add_row(str(p.seq), p.state, f"{p.source}{p.prefix}", rng,
                  f"{p.copied}/{p.listed}", human_bytes(p.bytes),
                  f"{p.throughput_bytes_per_s / 1e6:.1f}", f"{p.duration_s:.1f}s",
                  (p.last_error or "")[:120])
    Console(width=160).print(t)


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
        print(f"job {d.job} → {d.destination}: {d.partitions} partitions — "
              f"{d.succeeded} succeeded, {d.failed} failed, {d.running} running, "
              f"{d.pending} pending; {d.copied} objects, {human_bytes(d.bytes)} "
              f"copied, {d.failed_objects} objects failed")
    if job_name:
        job = result.jobs[0]
        print_partitions(job, False)
        for r in job.runs[:5]:
            print(f"  run {r.id} {r.state:<11} {_t(r.started_at)} → "
                  f"{_t(r.finished_at) or '…'}  batch {r.batch_count}, "
                  f"{r.partitions_succeeded} ok / {r.partitions_failed} failed, "
                  f"{r.copied} objects, {human_bytes(r.bytes)}")
