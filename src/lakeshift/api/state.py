"""``status`` and ``failures`` (``lakeshift status``, ``lakeshift failures``): what
the control DB says of jobs, partitions, runs and failed objects."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lakeshift import model
from lakeshift.api.common import (
    _STATES,
    _as_utc,
    _blocking,
    _control,
    _make_folders,
    _page_args,
    _remove_folders,
)
from lakeshift.control import DEFAULT_DB, fold_state_totals
from lakeshift.csv_cells import csv_cell
from lakeshift.errors import UsageError
from lakeshift.model import Failure
from lakeshift.plan.places import absolute_local

if TYPE_CHECKING:
    from lakeshift.control.records import Job
    from lakeshift.control.repository import ControlDB


#: The states of partitions that need attention, in the order ``status`` lists them
#: (``interrupted``: left ``running`` by a holder that is gone, as they read).
ATTENTION_STATES = ("failed", "interrupted", "running", "pending")

#: The states ``--state`` chooses from: the stored ones, and ``interrupted`` — a
#: partition stored ``running`` reads as running only while its lease is held.
READ_STATES = (*_STATES, "interrupted")

#: How a partition left ``running`` by a holder that is gone reads (``PartitionStatus.reads``):
#: its lease lapsed (or its process, on the host reading, is gone), and the next ``run``
#: of the job — or an idle worker of a live fleet — claims it and goes on from its cursor.
INTERRUPTED_READS = "interrupted (lease expired; the next run takes it over)"


def run_going_on(runs: Iterable[model.RunStatus]) -> bool:
    """Whether a run of these (a job's, as the control DB reads them: a run whose lease
    lapsed reads as interrupted) is running: the monitor's "live" badge.  (Whether a
    partition in state ``running`` is held is its own lease's to say, not a run's:
    ``PartitionStatus.reads``.)"""
    return any(r.state == "running" for r in runs)


async def status_async(*, db: str = DEFAULT_DB, job: str | None = None, offset: int = 0,
                       limit: int | None = None, state: Sequence[str] | None = None,
                       all_partitions: bool = False) -> model.StatusResult:
    """Jobs with their totals (``lakeshift status``); a named job also with its totals by
    state (``by_state``), its latest runs and its partition table: ``limit`` partitions
    from ``offset`` (all when None), of every state in order, or with ``state`` only of
    those states, grouped in the order given (``ATTENTION_STATES``: the failed, then the
    running, then the pending).  ``partition_table_total`` says how many there are to page
    through.  ``all_partitions``: every partition in order (``state``, ``offset`` and
    ``limit`` must then be left out).  ``state`` is how a partition reads: ``running``
    only while its lease is held, ``interrupted`` when its holder is gone.  (The control DB
    is read in a worker thread.)"""
    _page_args(offset, limit)
    states = _states(state)
    if all_partitions and (states is not None or offset or limit is not None):
        raise UsageError("--all shows every partition: leave out --state, --offset and "
                         "--limit (or leave out --all to page)")
    return await asyncio.to_thread(_status, db, job, offset, limit, states)


status = _blocking(status_async)


def _states(state: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """``state`` as a tuple of known states, without repeats (None: every state); ``all``
    is every state, ``attention`` the failed, interrupted, running and pending; a comma
    list is split."""
    if state is None:
        return None
    words = [w.strip() for s in ([state] if isinstance(state, str) else state)
             for w in s.split(",") if w.strip()]
    out: list[str] = []
    for w in words:
        if w == "all":
            return None
        for s in (ATTENTION_STATES if w == "attention" else (w,)):
            if s not in READ_STATES:
                raise UsageError(f"--state {w!r}: use {', '.join(READ_STATES)}, attention "
                                 f"({', '.join(ATTENTION_STATES)}) or all")
            if s not in out:
                out.append(s)
    return tuple(out) if out else None


def _status(db: str, job: str | None, offset: int = 0, limit: int | None = None,
            states: tuple[str, ...] | None = None) -> model.StatusResult:
    control = _control(db)
    try:
        jobs = [control.job(job)] if job else control.jobs()
        return model.StatusResult(control.shown, tuple(
            _job_status(control, j, job is not None, offset, limit, states) for j in jobs))
    finally:
        control.close()


def _partition_status(r: Any, run_live: bool = True) -> model.PartitionStatus:
    """A partition's row.  How it reads comes with the row (``ControlDB.partitions``:
    ``interrupted`` when its holder is gone, by its own lease); for a row without it,
    ``run_live``: a run of its job is running (run_going_on), else a partition in state
    ``running`` reads as interrupted."""
    duration = r["duration_s"] or 0.0
    state = r["state"]
    reads = r.get("reads")
    lapsed = (reads == "interrupted" if reads is not None
              else state == "running" and not run_live)
    return model.PartitionStatus(
        seq=r["seq"], state=r["state"], source=r["source"], prefix=r["prefix"],
        range_start=r["range_start"], range_end=r["range_end"],
        destination=absolute_local(r["destination"]), cursor=r["cursor"], attempts=r["attempts"],
        listed=r["listed"], copied=r["copied"], skipped=r["skipped"],
        failed_objects=r["failed_objects"], bytes=r["bytes"], duration_s=round(duration, 3),
        throughput_bytes_per_s=round(r["bytes"] / duration, 1) if duration > 0 else 0.0,
        last_error=r["last_error"], lease_owner=r["lease_owner"],
        started_at=_as_utc(r["started_at"]), finished_at=_as_utc(r["finished_at"]),
        adf_prefix=r["adf_prefix"],
        reads=INTERRUPTED_READS if lapsed else state)


def _run_status(r: Any) -> model.RunStatus:
    return model.RunStatus(id=r["id"], state=r["state"], owner=r["owner"],
                     batch_count=r["batch_count"], partitions_succeeded=r["partitions_done"],
                     partitions_failed=r["partitions_failed"], copied=r["copied"],
                     bytes=r["bytes"], started_at=_as_utc(r["started_at"]),
                     finished_at=_as_utc(r["finished_at"]),
                     settings=json.loads(r["settings"]), number=r.get("number") or None)


def _job_status(control: ControlDB, job: Job, detail: bool, offset: int = 0,
                limit: int | None = None, states: tuple[str, ...] | None = None
                ) -> model.JobStatus:
    # Totals by one aggregate query; partitions read only for the table, a page of them
    # when asked (a job may have tens of thousands).
    by_state = control.partition_totals_by_state(job.id)
    totals = fold_state_totals(by_state)  # the same query's answer, not a second
    runs = tuple(_run_status(r) for r in control.runs(job.id))
    parts = tuple(_partition_status(r) for r in control.partitions(
        job.id, offset, limit, states)) if detail else ()
    # Partitions stored running that read as interrupted: each by its own lease (a live
    # run of the job does not hold a partition a dead run, or a dead worker, left).
    interrupted = control.interrupted_partitions(job.id) if "running" in by_state else 0
    sched = control.schedule(job.id)
    # A scheduler holds the job while its lease runs: it renews it through each pass and
    # each wait.  One whose lease lapsed died (killed, its machine gone) and left its next
    # time behind (a day away with --every 1d): no scheduler, as a run whose lease lapsed
    # reads as interrupted.
    lease = _as_utc(sched["lease_expires"]) if sched is not None else None
    held = sched if sched is not None and sched["owner"] and lease is not None \
        and lease > datetime.now(UTC) else None
    counts = {s: totals.get(s, 0) for s in _STATES}
    reading = {**counts, "running": counts["running"] - interrupted, "interrupted": interrupted}
    last_pass = next((r for r in runs if r.settings.get("mode") == "sync"), None)
    copied, nbytes = totals["copied"], totals["bytes"]
    if last_pass is not None:
        # A sync pass starts its partitions' counters at zero: the job's totals are its runs'.
        copied, nbytes = control.run_totals(job.id)
    shown = totals["partitions"] if states is None else sum(reading[s] for s in states)
    return model.JobStatus(
        # A job saved with a relative local path (before plan saved them absolute): where
        # it resolves from here, as a run from here would.
        job=job.name, destination=absolute_local(job.destination),
        created_at=_as_utc(job.created_at),
        adf_table=job.adf_table, adf_delta_table=job.options.get("adf_delta_table") or None,
        partitions=totals["partitions"], **counts,
        copied=copied, bytes=nbytes,
        failed_objects=totals["failed_objects"], detail=detail,
        partition_table=parts, partition_table_offset=offset if detail else 0,
        partition_table_total=shown if detail else 0,
        partition_table_states=states if detail else None,
        by_state=tuple(model.StateTotals(state=s, **by_state[s]) for s in _STATES if s in by_state),
        runs=runs if detail else (),
        sync_schedule=held["schedule"] if held is not None else None,
        next_sync_at=_as_utc(held["next_run_at"]) if held is not None else None,
        last_sync_pass=last_pass,
        key_range_partitions=control.key_range_partitions(job.id) if detail else 0,
        interrupted=interrupted)


FAILURE_FIELDS = ("object_key", "error_kind", "message", "attempts", "skipped", "at",
                  "partition_id", "run_id")


async def failures_async(*, job: str = "", db: str = DEFAULT_DB,
                         csv_file: str | Path | None = None,
                         run: int | None = None) -> model.FailuresResult:
    """Every object that failed, or was skipped on purpose, in a job (``lakeshift
    failures``): one row per object, its latest (a link skipped in every pass is listed
    once); or the rows of its run number ``run`` (as ``status`` numbers them: 1, 2, …).

    With ``csv_file`` the rows are streamed into that CSV (``"-"``: standard output) and not
    kept in the result (memory stays flat however many there are); ``count`` says how many.
    (The control DB is read in a worker thread.)
    """
    return await asyncio.to_thread(_failures, job, db, csv_file, run)


failures = _blocking(failures_async)


def _failures(job: str, db: str, csv_file: str | Path | None,
              run: int | None = None) -> model.FailuresResult:
    if not job:
        raise UsageError("--job NAME is required")
    control = _control(db)
    try:
        j = control.job(job)
        by_kind: dict[str, int] = {}

        def counted(r: Any) -> Failure:
            by_kind[r["error_kind"]] = by_kind.get(r["error_kind"], 0) + 1
            return _failed_object(r)

        if run is None:
            found = control.latest_failures(j.id)
        else:
            run_id = control.run_numbered(j.id, run)
            if run_id is None:
                latest = control.runs(j.id, 1)
                raise UsageError(f"job {job!r} has no run {run} (" + (
                    f"its runs are numbered 1 to {latest[0]['number']}" if latest
                    else "it has no runs yet") + "; `lakeshift status --job` lists them)")
            found = control.failures_of(j.id, run_id)
        rows = (counted(r) for r in found)
        if csv_file is None:
            kept = tuple(rows)
            return model.FailuresResult(job, kept, len(kept), by_kind=by_kind)
        fh: TextIO
        if str(csv_file) == "-":
            fh = sys.stdout
        else:
            made = _make_folders(Path(csv_file).parent)  # as verify --report does
            try:
                fh = open(csv_file, "w", newline="", encoding="utf-8",  # noqa: SIM115
                          errors="backslashreplace")
            except OSError as e:
                _remove_folders(made)
                raise UsageError(f"cannot write {csv_file}: {e.strerror}") from None
        try:
            n = write_failures_csv(rows, fh)
        finally:
            if fh is not sys.stdout:
                fh.close()
        return model.FailuresResult(job, (), n, str(csv_file), by_kind=by_kind)
    finally:
        control.close()


def _failed_object(r: Any) -> Failure:
    return Failure(object_key=r["object_key"], error_kind=r["error_kind"],
                   message=r["message"], attempts=r["attempts"], skipped=bool(r["skipped"]),
                   at=_as_utc(r["at"]), partition_id=r["partition_id"], run_id=r["run_id"])


def write_failures_csv(rows: Iterable[Failure], fh: TextIO) -> int:
    """The failure log as CSV (a header, then one row each; times ISO 8601 UTC; text that
    a spreadsheet would take for a formula neutralised: :func:`csv_cell`)."""
    w = csv.writer(fh)
    w.writerow(FAILURE_FIELDS)
    n = 0
    for f in rows:
        w.writerow([csv_cell(getattr(f, name)) for name in FAILURE_FIELDS])
        n += 1
    return n
