"""Text and JSON views of jobs, partitions and runs (times shown in UTC)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeshift.cli.sizes import human_bytes
from lakeshift.control.records import Job, as_utc

if TYPE_CHECKING:
    from lakeshift.control.repository import ControlDB

STATES = ("pending", "running", "succeeded", "failed")


def _t(value: datetime | None) -> str | None:
    v = as_utc(value)
    return v.strftime("%Y-%m-%dT%H:%M:%SZ") if v else None


def partition_dict(r: Any) -> dict[str, Any]:
    duration = r["duration_s"] or 0.0
    return {
        "seq": r["seq"], "state": r["state"], "source": r["source"], "prefix": r["prefix"],
        "range_start": r["range_start"], "range_end": r["range_end"],
        "destination": r["destination"], "cursor": r["cursor"], "attempts": r["attempts"],
        "listed": r["listed"], "copied": r["copied"], "skipped": r["skipped"],
        "failed_objects": r["failed_objects"], "bytes": r["bytes"],
        "duration_s": round(duration, 3),
        "throughput_bytes_per_s": round(r["bytes"] / duration, 1) if duration > 0 else 0.0,
        "last_error": r["last_error"], "lease_owner": r["lease_owner"],
        "started_at": _t(r["started_at"]), "finished_at": _t(r["finished_at"]),
        "adf_prefix": r["adf_prefix"],
    }


def run_dict(r: Any) -> dict[str, Any]:
    return {"id": r["id"], "state": r["state"], "owner": r["owner"],
            "batch_count": r["batch_count"], "partitions_succeeded": r["partitions_done"],
            "partitions_failed": r["partitions_failed"], "copied": r["copied"],
            "bytes": r["bytes"], "started_at": _t(r["started_at"]),
            "finished_at": _t(r["finished_at"]), "settings": json.loads(r["settings"])}


def job_dict(control: ControlDB, job: Job, detail: bool) -> dict[str, Any]:
    parts = [partition_dict(r) for r in control.partitions(job.id)]
    counts = {s: sum(1 for p in parts if p["state"] == s) for s in STATES}
    out: dict[str, Any] = {
        "job": job.name, "destination": job.destination, "created_at": _t(job.created_at),
        "adf_table": job.adf_table, "partitions": len(parts), **counts,
        "copied": sum(p["copied"] for p in parts), "bytes": sum(p["bytes"] for p in parts),
        "failed_objects": sum(p["failed_objects"] for p in parts),
    }
    if detail:
        out["partition_table"] = parts
        out["runs"] = [run_dict(r) for r in control.runs(job.id)]
    return out


def print_partitions(control: ControlDB, job: Job, as_json: bool) -> None:
    d = job_dict(control, job, True)
    if as_json:
        json.dump(d, sys.stdout, indent=2)
        print()
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"job {job.name} → {job.destination}", title_justify="left")
    for col in ("#", "state", "source / prefix", "range", "objects", "bytes", "MB/s",
                "duration", "last error"):
        t.add_column(col, overflow="fold")
    for p in d["partition_table"]:
        rng = ""
        if p["range_start"] or p["range_end"]:
            rng = f"[{p['range_start'] or ''}, {p['range_end'] or '…'})"
        t.add_row(str(p["seq"]), p["state"], f"{p['source']}{p['prefix']}", rng,
                  f"{p['copied']}/{p['listed']}", human_bytes(p["bytes"]),
                  f"{p['throughput_bytes_per_s'] / 1e6:.1f}", f"{p['duration_s']:.1f}s",
                  (p["last_error"] or "")[:120])
    Console(width=160).print(t)


def print_status(control: ControlDB, job_name: str | None, as_json: bool) -> None:
    jobs = [control.job(job_name)] if job_name else control.jobs()
    data = [job_dict(control, j, job_name is not None) for j in jobs]
    if as_json:
        json.dump({"db": control.shown, "jobs": data}, sys.stdout, indent=2)
        print()
        return
    if not data:
        print(f"{control.shown}: no jobs yet (lakeshift plan … --job NAME)")
        return
    for d in data:
        print(f"job {d['job']} → {d['destination']}: {d['partitions']} partitions — "
              f"{d['succeeded']} succeeded, {d['failed']} failed, {d['running']} running, "
              f"{d['pending']} pending; {d['copied']} objects, {human_bytes(d['bytes'])} "
              f"copied, {d['failed_objects']} objects failed")
    if job_name:
        print_partitions(control, jobs[0], False)
        for r in data[0]["runs"][:5]:
            print(f"  run {r['id']} {r['state']:<11} {r['started_at']} → "
                  f"{r['finished_at'] or '…'}  batch {r['batch_count']}, "
                  f"{r['partitions_succeeded']} ok / {r['partitions_failed']} failed, "
                  f"{r['copied']} objects, {human_bytes(r['bytes'])}")
