"""Runs: their rows, leases and dead-run closing; a fleet's reads; what the monitor
shows (partition runs, samples, totals)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    and_,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.sql.elements import ColumnElement

from lakeshift.control.repo_base import (
    MAX_ID,
    ControlBase,
    _check_run_exists,
    _failures_of,
    _owner_dead,
    _partition_run_values,
)
from lakeshift.control.schema import (
    failures,
    jobs,
    partition_runs,
    partitions,
    run_samples,
    runs,
)


class RunRows(ControlBase):
    """The runs, partition-runs and run-samples tables."""

    # -- runs --------------------------------------------------------------------------

    def start_run(self, job_id: int, owner: str, batch_count: int,
                  settings: dict[str, Any], lease_s: float = 60.0) -> int:
        """A new run of the job, numbered after the job's last one (``number``)."""
        with self._tx() as conn:
            lock = select(jobs.c.id).where(jobs.c.id == job_id)
            if self.engine.dialect.name != "sqlite":  # SQLite: BEGIN IMMEDIATE serialises
                lock = lock.with_for_update()
            conn.execute(lock)
            last = conn.execute(select(func.max(runs.c.number)).where(
                runs.c.job_id == job_id)).scalar() or 0
            return int(conn.execute(runs.insert().values(
                job_id=job_id, owner=owner, state="running", batch_count=batch_count,
                settings=json.dumps(settings, sort_keys=True), partitions_done=0,
                partitions_failed=0, copied=0, bytes=0, started_at=self._now(),
                number=int(last) + 1, heartbeat_at=self._now(),
                lease_expires=self._now(lease_s))).inserted_primary_key[0])

    def heartbeat_run(self, run_id: int, lease_s: float, done: int, failed: int, copied: int,
                      nbytes: int, in_flight: int = 0, sample: bool = True) -> bool:
        """Save a running run's counters and renew its lease (a run closed meanwhile as
        interrupted, its beats having been late, is running again), with a throughput
        sample (unless not ``sample``: a partition's end, not a beat).  True when someone
        asked the run to stop (``request_cancel``); RunGone when the run's row is gone
        (its job was deleted)."""
        with self._tx() as conn:
            res = conn.execute(update(runs).where(and_(
                runs.c.id == run_id, runs.c.state.in_(("running", "interrupted")))).values(
                state="running", finished_at=None, partitions_done=done,
                partitions_failed=failed, copied=copied, bytes=nbytes,
                heartbeat_at=self._now(), lease_expires=self._now(lease_s)))
            if not res.rowcount:
                _check_run_exists(conn, run_id)
            if sample:
                conn.execute(run_samples.insert().values(run_id=run_id, at=self._now(),
                                                         copied=copied, bytes=nbytes,
                                                         in_flight=in_flight))
            return bool(conn.execute(select(runs.c.cancel_requested).where(
                runs.c.id == run_id)).scalar())

    def finish_run(self, run_id: int, state: str, done: int, failed: int, copied: int,
                   nbytes: int) -> None:
        """End the run; RunGone when its row is gone (its job was deleted)."""
        with self._tx() as conn:
            res = conn.execute(update(runs).where(runs.c.id == run_id).values(
                state=state, partitions_done=done, partitions_failed=failed, copied=copied,
                bytes=nbytes, finished_at=self._now(), heartbeat_at=self._now(),
                lease_expires=None))
            if not res.rowcount:
                _check_run_exists(conn, run_id)
            conn.execute(run_samples.insert().values(run_id=run_id, at=self._now(),
                                                     copied=copied, bytes=nbytes, in_flight=0))

    def close_dead_runs(self, job_id: int | None = None) -> int:
        """Close as ``interrupted`` every running run whose process is gone (same host, no
        such pid) or whose lease expired (no heartbeat for a lease's length): its finish
        time is its last heartbeat's, its counters those that heartbeat saved."""
        if self.read_only:
            return 0  # the reads below show such runs as interrupted (_run_columns)
        host = socket.gethostname()
        n = 0
        with self._tx() as conn:
            where = runs.c.state == "running"
            if job_id is not None:
                where = and_(where, runs.c.job_id == job_id)
            expired = or_(runs.c.lease_expires.is_(None), runs.c.lease_expires < self._now())
            rows = conn.execute(select(runs.c.id, runs.c.owner, expired.label("expired"))
                                .where(where)).all()
            for run_id, owner, is_expired in rows:
                if is_expired or _owner_dead(owner, host):
                    conn.execute(update(runs).where(and_(
                        runs.c.id == run_id, runs.c.state == "running")).values(
                        state="interrupted", lease_expires=None,
                        finished_at=func.coalesce(runs.c.heartbeat_at, runs.c.started_at)))
                    n += 1
        return n

    def runs(self, job_id: int, limit: int = 20) -> list[RowMapping]:
        """The job's latest runs, newest first (each with its ``number`` in the job).  Runs
        whose process died are closed first (``close_dead_runs``)."""
        self.close_dead_runs(job_id)
        with self._tx() as conn:
            return list(conn.execute(select(*self._run_columns()).where(
                runs.c.job_id == job_id).order_by(runs.c.id.desc()).limit(limit)).mappings())

    def run_numbered(self, job_id: int, number: int) -> int | None:
        """The id of the job's run ``number`` (as ``status`` shows it), or None."""
        if not 0 < number <= MAX_ID:
            return None
        with self._tx() as conn:
            found = conn.execute(select(runs.c.id).where(and_(
                runs.c.job_id == job_id, runs.c.number == number))).scalar()
        return None if found is None else int(found)

    def _lease_gone(self) -> ColumnElement[bool]:
        return and_(runs.c.state == "running",
                    or_(runs.c.lease_expires.is_(None), runs.c.lease_expires < self._now()))

    def _run_state(self) -> ColumnElement[Any]:
        """A run's state as a reader sees it: running with its lease expired is
        interrupted (what close_dead_runs would make it)."""
        return case((self._lease_gone(), literal("interrupted")), else_=runs.c.state)

    def _run_columns(self) -> list[ColumnElement[Any]]:
        """The runs table's columns, state and finished_at as close_dead_runs leaves them
        (a dead run ends at its last heartbeat)."""
        ended = type_coerce(func.coalesce(runs.c.heartbeat_at, runs.c.started_at),
                            runs.c.finished_at.type)
        return [*(c for c in runs.c if c.name not in ("state", "finished_at")),
                self._run_state().label("state"),
                case((self._lease_gone(), ended), else_=runs.c.finished_at)
                .label("finished_at")]

    # -- a fleet of workers (lakeshift.scale) --------------------------------------------

    def run_state(self, run_id: int) -> str | None:
        """The run's state (a fleet's workers stop when it is no longer ``running``)."""
        with self._tx() as conn:
            value = conn.execute(select(runs.c.state).where(runs.c.id == run_id)).scalar()
        return None if value is None else str(value)

    def unfinished_partitions(self, job_id: int) -> int:
        """Partitions still pending or running (held by a worker, or by a dead one whose
        lease has not expired yet)."""
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(partitions).where(and_(
                partitions.c.job_id == job_id,
                partitions.c.state.in_(("pending", "running"))))).scalar() or 0)

    def run_progress(self, job_id: int, run_id: int) -> dict[str, int]:
        """What run ``run_id`` did so far, from its partition-run records as the workers'
        heartbeats saved them (a partition's own counters do not tell: a claim sets them
        back to its cursor's, a sync pass to zero), and the job's partitions by state.
        ``listed`` is what the run listed, ``bytes`` what it moved.  A partition taken over
        from a dead worker has two records: the dead one's keeps only what lay at or before
        the cursor the taker started from (repo_jobs ``_trim_taken_over``), so each object
        counts once."""
        pr = partition_runs.c
        with self._tx() as conn:
            row = conn.execute(select(
                *(func.coalesce(func.sum(c), 0) for c in (
                    pr.listed, pr.copied, pr.skipped, pr.failed_objects, pr.bytes_read)))
                .where(pr.run_id == run_id)).one()
            states = dict(conn.execute(select(partitions.c.state, func.count()).where(
                partitions.c.job_id == job_id).group_by(partitions.c.state)).all())
        out = dict(zip(("listed", "copied", "skipped", "failed_objects", "bytes"),
                       (int(v) for v in row), strict=True))
        for state in ("pending", "running", "succeeded", "failed"):
            out[state] = int(states.get(state, 0))
        return out

    def run_record_totals(self, run_id: int) -> dict[str, int]:
        """Run ``run_id``'s partition-run records summed (``listed``, ``copied``,
        ``skipped``, ``failed_objects``, ``bytes_read``, ``bytes_written``) and how many were
        ``taken_over`` (their worker lost: trimmed to what lay before the cursor the taker
        started from, so the sums count each object once)."""
        from lakeshift.control.repo_jobs import TAKEN_OVER

        pr = partition_runs.c
        names = ("listed", "copied", "skipped", "failed_objects", "bytes_read",
                 "bytes_written")
        with self._tx() as conn:
            row = conn.execute(select(
                *(func.coalesce(func.sum(getattr(pr, n)), 0) for n in names),
                func.count().filter(pr.state == TAKEN_OVER))
                .where(pr.run_id == run_id)).one()
        return dict(zip((*names, "taken_over"), (int(v) for v in row), strict=True))

    def job_progress(self, job_id: int) -> dict[str, int]:
        """The job's counters summed over its partitions (each object once, as the workers'
        heartbeats saved them) and its partitions by state: one aggregate query."""
        p = partitions.c
        with self._tx() as conn:
            row = conn.execute(select(
                func.coalesce(func.sum(p.listed), 0), func.coalesce(func.sum(p.copied), 0),
                func.coalesce(func.sum(p.skipped), 0),
                func.coalesce(func.sum(p.failed_objects), 0),
                func.coalesce(func.sum(p.bytes), 0)).where(p.job_id == job_id)).one()
            states = dict(conn.execute(select(p.state, func.count()).where(
                p.job_id == job_id).group_by(p.state)).all())
        out = dict(zip(("listed", "copied", "skipped", "failed_objects", "bytes"),
                       (int(v) for v in row), strict=True))
        for state in ("pending", "running", "succeeded", "failed"):
            out[state] = int(states.get(state, 0))
        return out
    # -- what the monitor shows (schema 5) ----------------------------------------------

    def start_partition_run(self, run_id: int, partition_id: int, queued_s: float) -> int:
        """A partition claimed by run ``run_id``: its activity-run record."""
        with self._tx() as conn:
            return int(conn.execute(partition_runs.insert().values(
                run_id=run_id, partition_id=partition_id, state="running",
                started_at=self._now(), queued_s=queued_s, retries="{}")
            ).inserted_primary_key[0])

    def save_partition_run(self, partition_run_id: int, values: dict[str, Any],
                           finished: bool = False) -> None:
        """This run's counters, stage times, in flight and retries of a partition (and, when
        ``finished``, its end: state, error, finish time)."""
        row = _partition_run_values(values)
        if finished:
            row["finished_at"] = self._now()
        with self._tx() as conn:
            conn.execute(update(partition_runs).where(
                partition_runs.c.id == partition_run_id).values(**row))

    def request_cancel(self, run_id: int) -> bool:
        """Ask a running run to stop at its next heartbeat; False when it is not running."""
        if not 0 < run_id <= MAX_ID:
            return False
        self.close_dead_runs()
        with self._tx() as conn:
            return bool(conn.execute(update(runs).where(and_(
                runs.c.id == run_id, runs.c.state == "running")).values(
                cancel_requested=1)).rowcount)

    def run(self, run_id: int) -> RowMapping | None:
        """One run (dead runs closed first), with its job's name as ``job``."""
        if not 0 < run_id <= MAX_ID:
            return None
        self.close_dead_runs()
        with self._tx() as conn:
            row: RowMapping | None = conn.execute(
                select(*self._run_columns(), jobs.c.name.label("job"))
                .join(jobs, jobs.c.id == runs.c.job_id)
                .where(runs.c.id == run_id)).mappings().first()
            return row

    def _partition_runs(self) -> Any:
        p = partitions.c
        return (select(partition_runs, p.seq, p.source, p.prefix, p.range_start, p.range_end,
                       p.destination, p.job_id, self._run_state().label("run_state"),
                       runs.c.heartbeat_at.label("run_heartbeat_at"), runs.c.settings)
                .join(partitions, p.id == partition_runs.c.partition_id)
                .join(runs, runs.c.id == partition_runs.c.run_id))

    def partition_runs(self, run_id: int, offset: int = 0,
                       limit: int | None = None) -> list[RowMapping]:
        """The run's partition runs in partition order (``limit`` of them after
        ``offset``; all when None)."""
        with self._tx() as conn:
            return list(conn.execute(self._partition_runs().where(
                partition_runs.c.run_id == run_id).order_by(
                partitions.c.seq, partition_runs.c.id).offset(offset).limit(limit))
                .mappings())

    def count_partition_runs(self, run_id: int) -> int:
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(partition_runs).where(
                partition_runs.c.run_id == run_id)).scalar() or 0)

    def partition_run(self, partition_run_id: int) -> RowMapping | None:
        if not 0 < partition_run_id <= MAX_ID:
            return None
        with self._tx() as conn:
            row: RowMapping | None = conn.execute(self._partition_runs().where(
                partition_runs.c.id == partition_run_id)).mappings().first()
            return row

    def run_samples(self, run_id: int, at_most: int | None = None) -> list[RowMapping]:
        """The run's samples in order; with ``at_most`` (≥ 2) no more than that many, evenly
        spaced, the first and the last always among them (each sample holds running totals,
        so the rate between two kept ones is still true)."""
        where = run_samples.c.run_id == run_id
        with self._tx() as conn:
            n = int(conn.execute(select(func.count()).select_from(run_samples)
                                 .where(where)).scalar() or 0)
            if at_most is None or n <= at_most:
                return list(conn.execute(select(run_samples).where(where)
                                         .order_by(run_samples.c.id)).mappings())
            # Every step-th row from the first, and the last: at most at_most rows.
            step = -(-(n - 1) // (at_most - 2))
            numbered = select(run_samples, func.row_number().over(
                order_by=run_samples.c.id).label("rn")).where(where).subquery()
            keep = or_((numbered.c.rn - 1) % step == 0, numbered.c.rn == n)
            return list(conn.execute(select(*(numbered.c[c.name] for c in run_samples.c))
                                     .where(keep).order_by(numbered.c.id)).mappings())

    def failures_of(self, job_id: int, run_id: int | None = None,
                    partition_id: int | None = None) -> Iterator[RowMapping]:
        """A job's failure log, or that of one run, or one partition in one run."""
        with self.engine.connect() as conn:
            yield from conn.execute(select(failures).where(
                _failures_of(job_id, run_id, partition_id)).order_by(failures.c.id)).mappings()

    def count_failures(self, job_id: int, run_id: int | None = None,
                       partition_id: int | None = None) -> int:
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(failures).where(
                _failures_of(job_id, run_id, partition_id))).scalar() or 0)

    def failures_page(self, job_id: int, run_id: int | None = None,
                      partition_id: int | None = None, *, offset: int = 0,
                      after_id: int = 0, limit: int = 100) -> list[RowMapping]:
        """``limit`` rows of failures_of's log: after ``offset`` rows (a page to show), or
        after the row ``after_id`` (reading it all, one short transaction a page)."""
        where = _failures_of(job_id, run_id, partition_id)
        if after_id:
            where = and_(where, failures.c.id > after_id)
        with self._tx() as conn:
            return list(conn.execute(select(failures).where(where).order_by(failures.c.id)
                                     .offset(offset).limit(limit)).mappings())

    def monitor_totals(self) -> dict[str, list[RowMapping]]:
        """Per job: objects and bytes copied, partitions by state, objects in flight in
        running runs, retries and throttling, errors by class (Prometheus /metrics)."""
        self.close_dead_runs()
        p, pr = partitions.c, partition_runs.c
        with self._tx() as conn:
            copied = list(conn.execute(
                select(jobs.c.name.label("job"), func.coalesce(func.sum(p.copied), 0)
                       .label("copied"), func.coalesce(func.sum(p.bytes), 0).label("bytes"))
                .select_from(jobs.outerjoin(partitions, p.job_id == jobs.c.id))
                .group_by(jobs.c.name)).mappings())
            states = list(conn.execute(
                select(jobs.c.name.label("job"), p.state, func.count().label("n"))
                .join(partitions, p.job_id == jobs.c.id)
                .group_by(jobs.c.name, p.state)).mappings())
            activity = list(conn.execute(
                select(jobs.c.name.label("job"), self._run_state().label("run_state"), pr.state,
                       pr.in_flight, pr.retries, pr.throttled)
                .join(partitions, p.job_id == jobs.c.id)
                .join(partition_runs, pr.partition_id == p.id)
                .join(runs, runs.c.id == pr.run_id)).mappings())
            errors = list(conn.execute(
                select(jobs.c.name.label("job"), failures.c.error_kind,
                       func.count().label("n"))
                .join(failures, failures.c.job_id == jobs.c.id)
                .where(failures.c.skipped == 0)
                .group_by(jobs.c.name, failures.c.error_kind)).mappings())
            running = list(conn.execute(
                select(jobs.c.name.label("job"), func.count().label("n"))
                .join(runs, runs.c.job_id == jobs.c.id)
                .where(self._run_state() == "running")
                .group_by(jobs.c.name)).mappings())
        return {"copied": copied, "states": states, "activity": activity, "errors": errors,
                "running": running}

    def run_totals(self, job_id: int) -> tuple[int, int]:
        """(objects copied, bytes) summed over every run of the job: what all its runs and
        sync passes copied (a partition's counters hold only its last pass)."""
        with self._tx() as conn:
            row = conn.execute(select(func.coalesce(func.sum(runs.c.copied), 0),
                                      func.coalesce(func.sum(runs.c.bytes), 0))
                               .where(runs.c.job_id == job_id)).one()
            return int(row[0]), int(row[1])
