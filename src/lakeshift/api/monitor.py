"""The monitor's reads and actions (``lakeshift monitor``; docs/api.md "monitor"):
run details, partition runs, failure pages, cancel and re-run, metrics; each read opens the
control DB and closes it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeshift import model
from lakeshift.api.common import _as_utc, _control, _page_args
from lakeshift.api.state import _failed_object, _run_status
from lakeshift.control import DEFAULT_DB
from lakeshift.model import Failure

if TYPE_CHECKING:
    from lakeshift.control.records import Job
    from lakeshift.control.repository import ControlDB


#: Names of settings whose values are never shown (a secret could hide in any of them).
_SECRET_NAMES = ("secret", "password", "token", "sas", "account_key", "access_key",
                 "credential", "connection_string", "signature")


def _shown_settings(value: Any, name: str = "") -> Any:
    """Settings as the monitor may show them: a secret-like name's value hidden, every
    string redacted."""
    from lakeshift.redact import redact

    if any(word in name.lower() for word in _SECRET_NAMES):
        return "***"
    if isinstance(value, dict):
        return {str(k): _shown_settings(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shown_settings(v, name) for v in value]
    return redact(value) if isinstance(value, str) else value


def _seconds(start: datetime | None, end: datetime | None) -> float:
    from datetime import UTC

    if start is None:
        return 0.0
    return round(max(((end or datetime.now(UTC)) - start).total_seconds(), 0.0), 3)


def _partition_run_status(r: Any, job: Job) -> model.PartitionRunStatus:
    state = r["state"]
    started, finished = _as_utc(r["started_at"]), _as_utc(r["finished_at"])
    if state == "running" and r["run_state"] != "running":
        # Its run died without saying so: it ended at the run's last heartbeat.
        state = "interrupted"
        finished = _as_utc(r["run_heartbeat_at"]) or started
    duration = _seconds(started, finished)
    settings = {"job": dict(job.options), "run": json.loads(r["settings"])}
    return model.PartitionRunStatus(
        id=r["id"], run_id=r["run_id"], job=job.name, partition_id=r["partition_id"],
        seq=r["seq"], source=r["source"], prefix=r["prefix"], range_start=r["range_start"],
        range_end=r["range_end"], destination=r["destination"], state=state,
        started_at=started, finished_at=finished, duration_s=duration, listed=r["listed"],
        copied=r["copied"], skipped=r["skipped"], failed_objects=r["failed_objects"],
        bytes_read=r["bytes_read"], bytes_written=r["bytes_written"],
        throughput_bytes_per_s=round(r["bytes_written"] / duration, 1) if duration else 0.0,
        queued_s=r["queued_s"], listing_s=r["listing_s"], transferring_s=r["transferring_s"],
        finishing_s=r["finishing_s"], in_flight=r["in_flight"] if state == "running" else 0,
        peak_in_flight=r["peak_in_flight"], retries=json.loads(r["retries"] or "{}"),
        throttled=r["throttled"], error=r["error"],
        settings=_shown_settings(settings))


#: The most throughput samples ``run_detail`` returns: a long run's are thinned evenly
#: (first and last kept; each holds running totals, so rates between them stay true).
MAX_SAMPLES = 501


def run_detail(run_id: int, *, db: str = DEFAULT_DB, offset: int = 0,
               limit: int | None = None) -> model.RunDetail | None:
    """Run ``run_id`` (the id ``status`` shows) with its partition runs (``limit`` of them
    from ``offset``, in partition order; all when None: ``partition_runs_total`` says how
    many there are) and at most MAX_SAMPLES throughput samples; None when the DB has no
    such run."""
    from lakeshift.model import ThroughputSample

    _page_args(offset, limit)
    control = _control(db)
    try:
        r = control.run(run_id)
        if r is None:
            return None
        job = control.job(r["job"])
        run_ = _run_status(r)
        run_ = dataclasses.replace(run_, settings=_shown_settings(dict(run_.settings)))
        duration = _seconds(run_.started_at, run_.finished_at)
        return model.RunDetail(
            job=job.name, run=run_, duration_s=duration,
            throughput_bytes_per_s=round(run_.bytes / duration, 1) if duration else 0.0,
            cancel_requested=bool(r["cancel_requested"]),
            partition_runs=tuple(_partition_run_status(p, job)
                                 for p in control.partition_runs(run_id, offset, limit)),
            samples=tuple(ThroughputSample(_as_utc(s["at"]), s["copied"], s["bytes"],
                                           s["in_flight"])
                          for s in control.run_samples(run_id, MAX_SAMPLES)),
            partition_runs_total=control.count_partition_runs(run_id),
            partition_runs_offset=offset)
    finally:
        control.close()


def partition_run(partition_run_id: int, *, db: str = DEFAULT_DB
                  ) -> model.PartitionRunStatus | None:
    """One partition run (an id from ``run_detail``); None when there is no such one."""
    control = _control(db)
    try:
        r = control.partition_run(partition_run_id)
        if r is None:
            return None
        job = next(j for j in control.jobs() if j.id == r["job_id"])
        return _partition_run_status(r, job)
    finally:
        control.close()


def run_failures(run_id: int, *, db: str = DEFAULT_DB,
                 partition_run_id: int | None = None) -> tuple[Failure, ...] | None:
    """The failure log of run ``run_id`` (of one of its partition runs, when given); None
    when there is no such run or partition run."""
    control = _control(db)
    try:
        scope = _failure_scope(control, run_id, partition_run_id)
        if scope is None:
            return None
        return tuple(_failed_object(f) for f in control.failures_of(scope[0], run_id,
                                                                     scope[1]))
    finally:
        control.close()


def _failure_scope(control: ControlDB, run_id: int,
                   partition_run_id: int | None) -> tuple[int, int | None] | None:
    """(job id, partition id or None) of a run's failure log; None when there is no such
    run, or no such partition run in it."""
    r = control.run(run_id)
    if r is None:
        return None
    if partition_run_id is None:
        return int(r["job_id"]), None
    p = control.partition_run(partition_run_id)
    if p is None or p["run_id"] != run_id:
        return None
    return int(r["job_id"]), int(p["partition_id"])


#: The most rows run_failures_page returns at once.
MAX_FAILURE_PAGE = 1000


def run_failures_page(run_id: int, *, db: str = DEFAULT_DB,
                      partition_run_id: int | None = None, offset: int = 0,
                      limit: int = 100) -> model.FailurePage | None:
    """One page of :func:`run_failures`: ``limit`` rows (at most 1000) from ``offset``, and
    how many there are; None when there is no such run or partition run."""
    _page_args(offset, limit, MAX_FAILURE_PAGE)
    control = _control(db)
    try:
        scope = _failure_scope(control, run_id, partition_run_id)
        if scope is None:
            return None
        job_id, partition_id = scope
        rows = control.failures_page(job_id, run_id, partition_id, offset=offset,
                                     limit=limit) if limit else []
        return model.FailurePage(run_id, partition_run_id,
                           control.count_failures(job_id, run_id, partition_id), offset, limit,
                           tuple(_failed_object(f) for f in rows))
    finally:
        control.close()


def iter_run_failures(run_id: int, *, db: str = DEFAULT_DB,
                      partition_run_id: int | None = None) -> Iterator[Failure] | None:
    """Every row of :func:`run_failures`, read a page at a time as the iterator is consumed
    (memory stays flat however long the log is); None when there is no such run or
    partition run.  The DB stays open until the iterator ends or is closed."""
    control = _control(db)
    try:
        scope = _failure_scope(control, run_id, partition_run_id)
    except BaseException:
        control.close()
        raise
    if scope is None:
        control.close()
        return None
    job_id, partition_id = scope

    def rows() -> Iterator[Failure]:
        try:
            after = 0
            while True:
                page = control.failures_page(job_id, run_id, partition_id, after_id=after,
                                             limit=MAX_FAILURE_PAGE)
                for f in page:
                    yield _failed_object(f)
                if len(page) < MAX_FAILURE_PAGE:
                    return
                after = int(page[-1]["id"])
        finally:
            control.close()

    return rows()


def cancel_run(run_id: int, *, db: str = DEFAULT_DB) -> bool:
    """Ask run ``run_id`` to stop: at its next heartbeat it claims nothing more and its
    partitions end at their cursor (pending; the next run resumes them).  False when the
    run is not running."""
    control = _control(db)
    try:
        return control.request_cancel(run_id)
    finally:
        control.close()


def rerun_failed(job: str, *, db: str = DEFAULT_DB) -> int:
    """Make the failed partitions of ``job`` pending again (at their cursor): a running
    run with a free batch slot takes them, else the next ``lakeshift run``.  Returns how
    many."""
    control = _control(db)
    try:
        return control.reset_failed(control.job(job).id)
    finally:
        control.close()


def metrics(*, db: str = DEFAULT_DB) -> tuple[model.JobMetrics, ...]:
    """Every job's figures for monitoring (``/metrics``), computed from the control DB."""
    control = _control(db)
    try:
        t = control.monitor_totals()
    finally:
        control.close()
    out: dict[str, dict[str, Any]] = {}

    def job_entry(name: str) -> dict[str, Any]:
        return out.setdefault(name, {"job": name, "objects_copied": 0, "bytes_copied": 0,
                                     "in_flight": 0, "runs_running": 0, "partitions": {},
                                     "retries": {}, "throttled": 0, "errors": {}})

    for r in t["copied"]:
        e = job_entry(r["job"])
        e["objects_copied"], e["bytes_copied"] = int(r["copied"]), int(r["bytes"])
    for r in t["states"]:
        job_entry(r["job"])["partitions"][r["state"]] = int(r["n"])
    for r in t["activity"]:
        e = job_entry(r["job"])
        if r["run_state"] == "running" and r["state"] == "running":
            e["in_flight"] += int(r["in_flight"])
        e["throttled"] += int(r["throttled"])
        for kind, n in json.loads(r["retries"] or "{}").items():
            e["retries"][kind] = e["retries"].get(kind, 0) + int(n)
    for r in t["errors"]:
        job_entry(r["job"])["errors"][r["error_kind"]] = int(r["n"])
    for r in t["running"]:
        job_entry(r["job"])["runs_running"] = int(r["n"])
    return tuple(model.JobMetrics(**e) for e in out.values())


async def run_detail_async(run_id: int, *, db: str = DEFAULT_DB, offset: int = 0,
                           limit: int | None = None) -> model.RunDetail | None:
    """:func:`run_detail` in a worker thread (the event loop stays free)."""
    return await asyncio.to_thread(run_detail, run_id, db=db, offset=offset, limit=limit)


async def partition_run_async(partition_run_id: int, *,
                              db: str = DEFAULT_DB) -> model.PartitionRunStatus | None:
    """:func:`partition_run` in a worker thread."""
    return await asyncio.to_thread(partition_run, partition_run_id, db=db)


async def run_failures_async(run_id: int, *, db: str = DEFAULT_DB,
                             partition_run_id: int | None = None
                             ) -> tuple[Failure, ...] | None:
    """:func:`run_failures` in a worker thread."""
    return await asyncio.to_thread(run_failures, run_id, db=db,
                                   partition_run_id=partition_run_id)


async def run_failures_page_async(run_id: int, *, db: str = DEFAULT_DB,
                                  partition_run_id: int | None = None, offset: int = 0,
                                  limit: int = 100) -> model.FailurePage | None:
    """:func:`run_failures_page` in a worker thread."""
    return await asyncio.to_thread(run_failures_page, run_id, db=db,
                                   partition_run_id=partition_run_id, offset=offset,
                                   limit=limit)


async def cancel_run_async(run_id: int, *, db: str = DEFAULT_DB) -> bool:
    """:func:`cancel_run` in a worker thread."""
    return await asyncio.to_thread(cancel_run, run_id, db=db)


async def rerun_failed_async(job: str, *, db: str = DEFAULT_DB) -> int:
    """:func:`rerun_failed` in a worker thread."""
    return await asyncio.to_thread(rerun_failed, job, db=db)


async def metrics_async(*, db: str = DEFAULT_DB) -> tuple[model.JobMetrics, ...]:
    """:func:`metrics` in a worker thread."""
    return await asyncio.to_thread(metrics, db=db)
