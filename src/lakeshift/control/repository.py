"""The only code that writes SQL.  Every method is one short transaction."""

from __future__ import annotations

import bisect
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    case,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from lakeshift.control.db import ControlDBUnavailable, db_error, display_url, open_engine
from lakeshift.control.records import Job, as_utc
from lakeshift.control.schema import (
    adf_delta_table,
    deletions,
    failures,
    jobs,
    partition_runs,
    partitions,
    renames,
    run_samples,
    runs,
    schedules,
    sync_delete_candidates,
    sync_deletions,
    sync_windows,
)
from lakeshift.errors import UsageError
from lakeshift.model import Failure, PartitionSpec, Rename, SourceDeleted
from lakeshift.redact import redact

#: The greatest id a row can have (a signed 64-bit integer): a greater one names no row,
#: and is answered as such instead of reaching the driver (which cannot bind it).
MAX_ID = 2**63 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunGone(UsageError):
    """The run's row is no longer in the control DB: its job was deleted while it ran."""


@dataclass
class PartitionStats:
    listed: int = 0
    copied: int = 0
    skipped: int = 0
    failed_objects: int = 0
    bytes: int = 0


@dataclass
class Records:
    """What a partition's copy wrote down since the last save: failures (and skips on
    purpose), renames and source deletions.  Saved in the same transaction as the cursor,
    so every record of a key at or before a saved cursor is in the DB."""

    job_id: int
    run_id: int | None
    failures: Sequence[Failure] = field(default_factory=list)
    renames: Sequence[Rename] = field(default_factory=list)
    deletions: Sequence[SourceDeleted] = field(default_factory=list)


class ControlDB:
    """The control DB.  ``read_only``: opened by ``db.open_read_only`` (the monitor): every
    write fails, and the reads show a run whose lease expired as ``interrupted`` at its last
    heartbeat instead of closing it (``close_dead_runs``) first."""

    def __init__(self, url: str, create: bool = False, read_only: bool = False) -> None:
        self.url = url
        self.shown = display_url(url)
        self.read_only = read_only
        self.engine: Engine = open_engine(url, create, read_only=read_only)

    def close(self) -> None:
        self.engine.dispose()

    def _tx(self) -> Any:
        return _Tx(self)

    # -- jobs ------------------------------------------------------------------------

    def create_job(self, name: str, destination: str, options: dict[str, Any],
                   specs: Sequence[PartitionSpec], adf_table: str | None = None) -> int:
        with self._tx() as conn:
            if conn.execute(select(jobs.c.id).where(jobs.c.name == name)).first():
                raise UsageError(f"job {name!r} already exists in {self.shown}: choose another "
                                 "--job name, or `lakeshift run --job` it")
            job_id = int(conn.execute(jobs.insert().values(
                name=name, destination=destination, options=json.dumps(options, sort_keys=True),
                adf_table=adf_table, created_at=utcnow())).inserted_primary_key[0])
            self._insert_partitions(conn, job_id, specs, 0)
        return job_id

    def add_partitions(self, job_id: int, specs: Sequence[PartitionSpec]) -> None:
        with self._tx() as conn:
            last = conn.execute(select(func.max(partitions.c.seq)).where(
                partitions.c.job_id == job_id)).scalar() or 0
            self._insert_partitions(conn, job_id, specs, int(last))

    @staticmethod
    def _insert_partitions(conn: Any, job_id: int, specs: Sequence[PartitionSpec],
                           first_seq: int) -> None:
        if not specs:
            return
        conn.execute(partitions.insert(), [
            {"job_id": job_id, "seq": first_seq + i + 1, "source": p.source, "prefix": p.prefix,
             "rel_base": p.rel_base,
             "range_start": p.range_start, "range_end": p.range_end,
             "destination": p.destination, "state": "pending", "cursor": p.cursor,
             "attempts": 0, "listed": 0, "copied": 0, "skipped": 0, "failed_objects": 0,
             "bytes": 0, "adf_prefix": p.adf_prefix} for i, p in enumerate(specs)])

    def job(self, name: str) -> Job:
        with self._tx() as conn:
            row = conn.execute(select(jobs).where(jobs.c.name == name)).mappings().first()
            if row is None:
                known = [r[0] for r in conn.execute(select(jobs.c.name).order_by(jobs.c.id))]
                hint = f"known jobs: {', '.join(known)}" if known else "the DB has no jobs yet"
                raise UsageError(f"no job {name!r} in {self.shown} ({hint})")
        return _job(row)

    def jobs(self) -> list[Job]:
        with self._tx() as conn:
            return [_job(r) for r in conn.execute(select(jobs).order_by(jobs.c.id)).mappings()]

    # -- partitions ----------------------------------------------------------------------

    def partitions(self, job_id: int) -> list[RowMapping]:
        with self._tx() as conn:
            return list(conn.execute(select(partitions).where(partitions.c.job_id == job_id)
                                     .order_by(partitions.c.seq)).mappings())

    def reset_failed(self, job_id: int) -> int:
        """failed → pending (a rerun takes pending and failed partitions)."""
        with self._tx() as conn:
            return int(conn.execute(update(partitions).where(and_(
                partitions.c.job_id == job_id, partitions.c.state == "failed")).values(
                state="pending", lease_owner=None, lease_expires=None)).rowcount)

    def restart_partitions(self, ids: Sequence[int]) -> None:
        """Make partitions pending again with no cursor (copy them from the start)."""
        if not ids:
            return
        with self._tx() as conn:
            conn.execute(update(partitions).where(partitions.c.id.in_(list(ids))).values(
                state="pending", cursor=None, lease_owner=None, lease_expires=None,
                cursor_copied=0, cursor_skipped=0, cursor_bytes=0))

    def reset_job(self, name: str, force: bool = False) -> int:
        """Re-plan: every partition of job ``name`` pending again, from the start (cursor,
        counters, attempts and errors cleared) and its failure records dropped; its runs,
        renames and deletions stay as history.  Refused while a live process holds a
        partition, unless ``force``.  Returns the number of partitions."""
        job_id = self.job(name).id
        with self._tx() as conn:
            self._refuse_if_leased(conn, job_id, name, force, "reset")
            conn.execute(delete(failures).where(failures.c.job_id == job_id))
            return int(conn.execute(update(partitions).where(
                partitions.c.job_id == job_id).values(
                state="pending", cursor=None, lease_owner=None, lease_expires=None,
                attempts=0, listed=0, copied=0, skipped=0, failed_objects=0, bytes=0,
                cursor_copied=0, cursor_skipped=0, cursor_bytes=0, last_error=None,
                started_at=None, finished_at=None, duration_s=None)).rowcount)

    def delete_job(self, name: str) -> None:
        """Delete job ``name`` and everything recorded about it (partitions, runs,
        failures, renames, deletions, sync windows, sync deletions, schedule).  Refused
        while anything of the job is live: a running run, a worker's partition lease or a
        sync scheduler's lease (a dead local process's is not live).  There is no override:
        rows deleted under a live process would leave it writing to a job that is gone.
        Objects already copied are not touched."""
        job_id = self.job(name).id
        with self._tx() as conn:
            self._refuse_if_live(conn, job_id, name)
            self._delete_job_rows(conn, job_id)

    def replace_job(self, name: str, force: bool = False) -> None:
        """Drop job ``name``'s records before its new plan is written (``plan SRC DST --job
        J --replan``): refused while a live process holds one of its partitions, unless
        ``force``; refused, ``force`` or not, while a run of the job is live (its row
        running, its lease held, its process not a dead one of this host): the new plan's
        rows can take the old ones' ids (SQLite reuses them), so that run would go on
        claiming the new partitions under a run row that is gone."""
        job_id = self.job(name).id
        with self._tx() as conn:
            self._refuse_if_leased(conn, job_id, name, force, "replan")
            for owner in self._live_run_owners(conn, job_id):
                raise UsageError(
                    f"job {name!r} has a live run (process {_owner_pid(owner)} on "
                    f"{_owner_host(owner)}): --force cannot replan under it; stop that run "
                    "(Ctrl-C, or Cancel in the monitor) or wait for it to end, then replan")
            self._delete_job_rows(conn, job_id)

    def _live_run_owners(self, conn: Connection, job_id: int) -> list[str]:
        """Owners of the job's running runs whose lease holds and whose process is not a
        dead one of this host."""
        return [owner for (owner,) in conn.execute(select(runs.c.owner).where(and_(
            runs.c.job_id == job_id, runs.c.state == "running",
            runs.c.lease_expires >= self._now()))) if not _owner_dead(owner)]

    def _delete_job_rows(self, conn: Connection, job_id: int) -> None:
        # Rows that refer to partitions and runs go first (PostgreSQL checks the keys).
        run_ids = select(runs.c.id).where(runs.c.job_id == job_id).scalar_subquery()
        for rt in (partition_runs, run_samples, sync_delete_candidates):
            conn.execute(delete(rt).where(rt.c.run_id.in_(run_ids)))
        for t in (failures, renames, deletions, sync_windows, sync_deletions, schedules,
                  runs, partitions):
            conn.execute(delete(t).where(t.c.job_id == job_id))
        conn.execute(delete(jobs).where(jobs.c.id == job_id))

    def _refuse_if_leased(self, conn: Connection, job_id: int, name: str, force: bool,
                          verb: str) -> None:
        if force:
            return
        rows = conn.execute(select(partitions.c.seq, partitions.c.lease_owner).where(and_(
            partitions.c.job_id == job_id, partitions.c.state == "running",
            partitions.c.lease_expires >= self._now()))).all()
        live = [(seq, owner) for seq, owner in rows if not _owner_dead(owner)]
        if live:
            seq, owner = live[0]
            hint = ("stop it or wait for it to end, then delete the job" if verb == "delete"
                    else f"wait for that run to end or stop it, or {verb} with --force")
            raise UsageError(f"job {name!r} is being run (partition #{seq} held by process "
                             f"{_owner_pid(owner)} on {_owner_host(owner)}): {hint}")

    def _refuse_if_live(self, conn: Connection, job_id: int, name: str) -> None:
        """UsageError naming what still runs job ``name``: a partition lease, a running
        run or a sync scheduler's lease that has not expired and whose holder is not a dead
        process of this host."""
        self._refuse_if_leased(conn, job_id, name, False, "delete")
        now = self._now()
        held: list[tuple[str, str | None]] = [
            ("a run of it", owner) for owner in self._live_run_owners(conn, job_id)]
        held += [("its sync schedule", owner) for (owner,) in conn.execute(
            select(schedules.c.owner).where(and_(
                schedules.c.job_id == job_id, schedules.c.owner.is_not(None),
                schedules.c.lease_expires >= now)))]
        for what, owner in held:
            if not _owner_dead(owner):
                raise UsageError(f"job {name!r} is live ({what} is followed by process "
                                 f"{_owner_pid(owner)} on {_owner_host(owner)}): stop it "
                                 "or wait for it to end, then delete the job")

    def expire_dead_local(self, job_id: int, host: str) -> int:
        """Running partitions leased by a process of this host that no longer exists are
        claimable at once (no need to wait for the lease to expire)."""
        n = 0
        with self._tx() as conn:
            rows = conn.execute(select(partitions.c.id, partitions.c.lease_owner).where(and_(
                partitions.c.job_id == job_id, partitions.c.state == "running"))).all()
            for pid_, owner in rows:
                if _owner_dead(owner, host):
                    conn.execute(update(partitions).where(partitions.c.id == pid_).values(
                        lease_expires=self._now(-1)))
                    n += 1
        return n

    def claim(self, job_id: int, owner: str, n: int, lease_s: float) -> list[RowMapping]:
        """Take up to n claimable partitions (pending, or running with an expired lease) in
        one transaction that locks the rows it reads (FOR UPDATE SKIP LOCKED on PostgreSQL;
        BEGIN IMMEDIATE serialises SQLite): two processes can never take the same one."""
        if n <= 0:
            return []
        now = self._now()
        p = partitions.c

        def free(which: ColumnElement[bool], limit: int) -> Any:
            q = select(p.id).where(and_(p.job_id == job_id, which)).order_by(p.seq).limit(limit)
            if self.engine.dialect.name != "sqlite":
                q = q.with_for_update(skip_locked=True)
            return q

        # Two walks of the (job_id, state, seq) index instead of one OR: an OR made the DB
        # sort every pending partition on each claim (25 ms a claim at 50,000 pending).
        # Partitions whose holder died come first: they were started before the others.
        expired = and_(p.state == "running", p.lease_expires < now)
        with self._tx() as conn:
            ids = list(conn.execute(free(expired, n)).scalars())
            if len(ids) < n:
                ids += conn.execute(free(p.state == "pending", n - len(ids))).scalars()
            if not ids:
                return []
            rows = list(conn.execute(self._take(ids, owner, lease_s, now)).mappings())
        return sorted(rows, key=lambda r: r["seq"])

    def _take(self, ids: list[int], owner: str, lease_s: float,
              now: ColumnElement[Any]) -> Any:
        p = partitions.c
        # The counters start again from those of the keys before the cursor: whatever a
        # dead run counted after it is listed and counted again by this one.
        return (update(partitions)
                .where(p.id.in_(ids))
                .values(state="running", lease_owner=owner,
                        lease_expires=self._now(lease_s),
                        attempts=p.attempts + 1,
                        started_at=func.coalesce(p.started_at, now),
                        finished_at=None,
                        listed=p.cursor_copied + p.cursor_skipped, copied=p.cursor_copied,
                        skipped=p.cursor_skipped, failed_objects=0, bytes=p.cursor_bytes)
                .returning(*partitions.c))

    def heartbeat(self, partition_id: int, owner: str, lease_s: float, cursor: str | None,
                  stats: PartitionStats, at_cursor: PartitionStats | None = None,
                  records: Records | None = None,
                  partition_run: tuple[int, dict[str, Any]] | None = None) -> bool:
        """Renew the lease and save progress: the cursor, the counters (``at_cursor``: those
        of the keys at or before the cursor), the records since the last save and
        ``partition_run`` (its record's id and values, see ``save_partition_run``), in one
        transaction.  False, and nothing written, when the lease was lost to another."""
        with self._tx() as conn:
            res = conn.execute(update(partitions).where(and_(
                partitions.c.id == partition_id, partitions.c.lease_owner == owner,
                partitions.c.state == "running")).values(
                lease_expires=self._now(lease_s), cursor=cursor, **_stats(stats),
                **_cursor_stats(cursor, at_cursor)))
            if not res.rowcount:
                return False
            if records is not None:
                _insert_records(conn, partition_id, records, self._now())
            if partition_run is not None:
                conn.execute(update(partition_runs).where(
                    partition_runs.c.id == partition_run[0]).values(
                    **_partition_run_values(partition_run[1])))
            return True

    def finish(self, partition_id: int, owner: str, state: str, cursor: str | None,
               stats: PartitionStats, error: str | None, duration: float,
               at_cursor: PartitionStats | None = None,
               records: Records | None = None) -> bool:
        """End a partition's run (``pending`` when interrupted) with its last progress and
        records, in one transaction; False, and nothing written, when the lease was lost."""
        now = self._now()
        with self._tx() as conn:
            res = conn.execute(update(partitions).where(and_(
                partitions.c.id == partition_id, partitions.c.lease_owner == owner)).values(
                state=state, cursor=cursor, last_error=redact(error) if error else error,
                lease_owner=None,
                lease_expires=None, finished_at=now if state != "pending" else None,
                duration_s=(func.coalesce(partitions.c.duration_s, 0.0) + duration),
                **_stats(stats), **_cursor_stats(cursor, at_cursor)))
            if not res.rowcount:
                return False
            if records is not None:
                _insert_records(conn, partition_id, records, now)
            return True

    def _now(self, plus_s: float = 0.0) -> ColumnElement[Any]:
        """The DB's clock (plus ``plus_s`` seconds), never this client's: leases taken and
        checked by several machines must agree on what time it is."""
        return db_now(self.engine.dialect.name, plus_s)

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
                      nbytes: int, in_flight: int = 0) -> bool:
        """Save a running run's counters and renew its lease (a run closed meanwhile as
        interrupted, its beats having been late, is running again), with a throughput
        sample.  True when someone asked the run to stop (``request_cancel``); RunGone when
        the run's row is gone (its job was deleted)."""
        with self._tx() as conn:
            res = conn.execute(update(runs).where(and_(
                runs.c.id == run_id, runs.c.state.in_(("running", "interrupted")))).values(
                state="running", finished_at=None, partitions_done=done,
                partitions_failed=failed, copied=copied, bytes=nbytes,
                heartbeat_at=self._now(), lease_expires=self._now(lease_s)))
            if not res.rowcount:
                _check_run_exists(conn, run_id)
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

    # -- failures ------------------------------------------------------------------------

    def add_failures(self, job_id: int, partition_id: int | None, run_id: int | None,
                     items: Sequence[Any]) -> None:
        self.add_records(partition_id, Records(job_id, run_id, failures=items))

    def add_renames(self, job_id: int, partition_id: int | None, items: Sequence[Any]) -> None:
        self.add_records(partition_id, Records(job_id, None, renames=items))

    def add_deletions(self, job_id: int, partition_id: int | None,
                      items: Sequence[Any]) -> None:
        self.add_records(partition_id, Records(job_id, None, deletions=items))

    def add_records(self, partition_id: int | None, records: Records) -> None:
        if not (records.failures or records.renames or records.deletions):
            return
        with self._tx() as conn:
            _insert_records(conn, partition_id, records, self._now())

    def renames(self, job_id: int) -> Iterator[RowMapping]:
        with self.engine.connect() as conn:
            yield from conn.execute(select(renames).where(renames.c.job_id == job_id)
                                    .order_by(renames.c.id)).mappings()

    def failures(self, job_id: int) -> Iterator[RowMapping]:
        with self.engine.connect() as conn:
            yield from conn.execute(select(failures).where(failures.c.job_id == job_id)
                                    .order_by(failures.c.id)).mappings()

    # -- Azure Data Factory template tables ----------------------------------------------

    def adf_pending_prefixes(self, table: str) -> list[str]:
        """The template's Lookup: SELECT PartitionPrefix FROM t WHERE SuccessOrFailure = 0."""
        t = _adf_table(self.engine, table, self.shown)
        with self._tx() as conn:
            rows = conn.execute(select(t.c.PartitionPrefix).where(
                t.c.SuccessOrFailure == _flag(t.c.SuccessOrFailure, 0)))
            return [r[0] for r in rows if r[0] is not None]

    def adf_mark_success(self, table: str, prefix: str) -> None:
        """What the template's sp_update_partition_success does."""
        t = _adf_table(self.engine, table, self.shown)
        with self._tx() as conn:
            conn.execute(update(t).where(t.c.PartitionPrefix == prefix).values(
                SuccessOrFailure=_flag(t.c.SuccessOrFailure, 1)))


    # -- delta sync ----------------------------------------------------------------------

    def historical_run_start(self, job_id: int) -> datetime | None:
        """When the job's first copy run (not a sync pass) started, if it had one."""
        with self._tx() as conn:
            value = conn.execute(select(func.min(runs.c.started_at)).where(and_(
                runs.c.job_id == job_id,
                runs.c.settings.notlike('%"mode": "sync"%')))).scalar()
        return as_utc(value)

    def last_sync_end(self, partition_id: int) -> datetime | None:
        """The end of the partition's last succeeded sync window (its JobRunTime)."""
        with self._tx() as conn:
            value = conn.execute(select(func.max(sync_windows.c.window_end)).where(and_(
                sync_windows.c.partition_id == partition_id,
                sync_windows.c.state == "succeeded"))).scalar()
        return as_utc(value)

    def first_sync_window(self, partition_id: int) -> tuple[datetime | None] | None:
        """The start of the partition's first window (None: it never had one)."""
        with self._tx() as conn:
            row = conn.execute(select(sync_windows.c.window_start).where(
                sync_windows.c.partition_id == partition_id).order_by(sync_windows.c.id)
                .limit(1)).first()
        return None if row is None else (as_utc(row[0]),)

    def prepare_sync_pass(self, job_id: int) -> bool:
        """Every partition not held by a live lease becomes pending with no cursor and no
        counters: a sync pass looks at each partition again, from the start of its window,
        and its counters are that pass's (the windows table keeps each pass's).  Their
        windows still pending (a pass that died) become interrupted.

        Not while another run of the job is live (its row running, its lease not expired:
        close_dead_runs first): that pass's partitions, done or still pending, are its
        own; this one then only claims what is pending, as a second `run` does.  False
        then."""
        now = utcnow()
        free = and_(partitions.c.job_id == job_id,
                    or_(partitions.c.state != "running", partitions.c.lease_expires < now))
        with self._tx() as conn:
            if conn.execute(select(func.count()).select_from(runs).where(and_(
                    runs.c.job_id == job_id, runs.c.state == "running",
                    runs.c.lease_expires >= self._now()))).scalar():
                return False
            # The windows a dead pass left pending on them end as interrupted.
            conn.execute(update(sync_windows).where(and_(
                sync_windows.c.state == "pending",
                sync_windows.c.partition_id.in_(select(partitions.c.id).where(free))))
                .values(state="interrupted", finished_at=now))
            conn.execute(update(partitions).where(free)
                .values(state="pending", cursor=None, lease_owner=None, lease_expires=None,
                        listed=0, copied=0, skipped=0, failed_objects=0, bytes=0, cursor_copied=0,
                        cursor_skipped=0, cursor_bytes=0, duration_s=None))
        return True

    def start_windows(self, job_id: int, run_id: int,
                      windows: Sequence[tuple[int, datetime | None, datetime]]
                      ) -> dict[int, int]:
        """One pending window row per (partition id, start, end); partition id → row id."""
        out: dict[int, int] = {}
        now = utcnow()
        with self._tx() as conn:
            for pid_, start, end in windows:
                out[pid_] = int(conn.execute(sync_windows.insert().values(
                    job_id=job_id, partition_id=pid_, run_id=run_id, window_start=start,
                    window_end=end, state="pending", listed=0, copied=0, skipped=0,
                    failed_objects=0, deleted=0, bytes=0, started_at=now))
                    .inserted_primary_key[0])
        return out

    def finish_window(self, window_id: int, state: str, stats: PartitionStats, deleted: int,
                      error: str | None) -> None:
        with self._tx() as conn:
            conn.execute(update(sync_windows).where(sync_windows.c.id == window_id).values(
                state=state, deleted=deleted, error=error, finished_at=utcnow(),
                **_stats(stats)))

    def close_pending_windows(self, run_id: int) -> None:
        """Windows of partitions a pass never reached (interrupted, or held elsewhere)."""
        with self._tx() as conn:
            conn.execute(update(sync_windows).where(and_(
                sync_windows.c.run_id == run_id, sync_windows.c.state == "pending")).values(
                state="interrupted", finished_at=utcnow()))

    def sync_windows(self, job_id: int, limit: int = 1000) -> list[RowMapping]:
        with self._tx() as conn:
            return list(conn.execute(select(sync_windows).where(
                sync_windows.c.job_id == job_id).order_by(sync_windows.c.id.desc())
                .limit(limit)).mappings())

    def add_delete_candidates(self, run_id: int, partition_id: int,
                              items: Sequence[tuple[str, str, int]]) -> None:
        """(source key that is gone, destination key, size) rows ``sync --delete`` found."""
        if not items:
            return
        with self._tx() as conn:
            conn.execute(sync_delete_candidates.insert(), [
                {"run_id": run_id, "partition_id": partition_id, "source_key": src,
                 "destination_key": dst, "size": size} for src, dst, size in items])

    def drop_delete_candidates(self, run_id: int, destination_keys: Sequence[str]) -> None:
        """These destination objects have a source after all (renamed copies)."""
        c = sync_delete_candidates.c
        with self._tx() as conn:
            for i in range(0, len(destination_keys), 500):  # bound the statement's parameters
                conn.execute(delete(sync_delete_candidates).where(and_(
                    c.run_id == run_id, c.destination_key.in_(destination_keys[i:i + 500]))))

    def delete_candidate_counts(self, run_id: int) -> dict[int, int]:
        """Partition id → number of candidates the pass found there."""
        c = sync_delete_candidates.c
        with self._tx() as conn:
            return {int(pid_): int(n) for pid_, n in conn.execute(
                select(c.partition_id, func.count()).where(c.run_id == run_id)
                .group_by(c.partition_id))}

    def delete_candidates(self, run_id: int, after_id: int, n: int) -> list[RowMapping]:
        """The next ``n`` candidates of the pass after row ``after_id``, in id order."""
        c = sync_delete_candidates.c
        with self._tx() as conn:
            return list(conn.execute(select(sync_delete_candidates).where(and_(
                c.run_id == run_id, c.id > after_id)).order_by(c.id).limit(n)).mappings())

    def drop_delete_candidates_under_failures(self, run_id: int) -> int:
        """Candidates the pass cannot be sure of: those under any key the pass recorded a
        failure for (a skipped error, such as a folder it could not walk into).  The pass
        did not see what is there, so what looks gone may not be.  The number dropped."""
        c = sync_delete_candidates.c
        with self._tx() as conn:
            keys = sorted({str(k) for (k,) in conn.execute(
                select(failures.c.object_key).where(failures.c.run_id == run_id).distinct())})
            # Sorted, a key under an earlier one follows it: comparing with the last key
            # kept leaves the keys none of the others lies under (O(n)).
            under: list[str] = []
            for key in keys:
                if not (under and key.startswith(under[-1])):
                    under.append(key)
            dropped, after = 0, 0
            while under and (rows := conn.execute(
                    select(c.id, c.source_key).where(and_(c.run_id == run_id, c.id > after))
                    .order_by(c.id).limit(10_000)).all()):
                after = int(rows[-1][0])
                # Of keys none of which lies under another, the one sorted just before a
                # candidate is the only one it can lie under.
                ids = [int(i) for i, src in rows
                       if (j := bisect.bisect_right(under, src)) and src.startswith(under[j - 1])]
                if ids:
                    dropped += int(conn.execute(delete(sync_delete_candidates).where(
                        c.id.in_(ids))).rowcount or 0)
            return dropped

    def delete_candidate_done(self, job_id: int, run_id: int, candidate_id: int,
                              deleted: tuple[int, str, str, int] | None) -> None:
        """One candidate handled, written as it happens: its row goes and, when it was
        deleted — (partition id, source key, destination key, size) — the deletion is
        recorded in lakeshift_sync_deletions, in one transaction."""
        with self._tx() as conn:
            if deleted is not None:
                pid_, src, dst, size = deleted
                conn.execute(sync_deletions.insert().values(
                    job_id=job_id, partition_id=pid_, run_id=run_id, source_key=src,
                    destination_key=dst, size=size, at=utcnow()))
            conn.execute(delete(sync_delete_candidates).where(
                sync_delete_candidates.c.id == candidate_id))

    def fail_sync_partitions(self, errors: Mapping[int, str]) -> None:
        """Partitions whose pass failed after their listing (refused by the --delete
        cap, deletions that failed): failed with that error, like any failed partition,
        so nothing reads them as synced."""
        with self._tx() as conn:
            for pid_, error in errors.items():
                conn.execute(update(partitions).where(partitions.c.id == pid_).values(
                    state="failed", last_error=redact(error)))

    def clear_delete_candidates(self, run_id: int) -> None:
        with self._tx() as conn:
            conn.execute(delete(sync_delete_candidates).where(
                sync_delete_candidates.c.run_id == run_id))

    def sync_deletions(self, job_id: int) -> list[RowMapping]:
        with self._tx() as conn:
            return list(conn.execute(select(sync_deletions).where(
                sync_deletions.c.job_id == job_id).order_by(sync_deletions.c.id)).mappings())

    # -- schedules (one scheduler per job, by lease) -------------------------------------

    def acquire_schedule(self, job_id: int, owner: str, schedule: str, lease_s: float,
                         host: str) -> str | None:
        """Take the job's scheduler lease; None when taken, else the owner holding it (a
        live lease of another process; a dead local process's lease is taken over).

        Two schedulers starting together must not both win: the row is inserted if missing
        (a concurrent insert is ignored), then taken by one conditional UPDATE whose
        condition is the lease being free, expired, ours, or a dead local process's."""
        now = utcnow()
        s = schedules.c
        self._insert_schedule_if_missing(job_id, schedule)
        with self._tx() as conn:
            held = conn.execute(select(s.owner).where(s.job_id == job_id)).scalar()
            o_host, _, rest = (held or "").partition(":")
            o_pid = rest.split(":", 1)[0]
            dead = o_host == host and o_pid.isdigit() and not _alive(int(o_pid))
            free = or_(s.owner.is_(None), s.owner == owner, s.lease_expires.is_(None),
                       s.lease_expires <= now)
            if dead:
                free = or_(free, s.owner == held)  # still that dead process's, not a new one's
            took = conn.execute(update(schedules).where(and_(s.job_id == job_id, free)).values(
                schedule=schedule, owner=owner, lease_expires=now + timedelta(seconds=lease_s))
                .returning(s.job_id)).first()
            if took is not None:
                return None
            holder = conn.execute(select(s.owner).where(s.job_id == job_id)).scalar()
        return str(holder)

    def _insert_schedule_if_missing(self, job_id: int, schedule: str) -> None:
        row = {"job_id": job_id, "schedule": schedule, "owner": None, "lease_expires": None}
        dialect = self.engine.dialect.name
        if dialect in ("postgresql", "sqlite"):
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            with self._tx() as conn:
                conn.execute(insert(schedules).values(**row).on_conflict_do_nothing())
            return
        from sqlalchemy.exc import IntegrityError

        try:
            with self.engine.begin() as conn:
                if conn.execute(select(schedules.c.job_id).where(
                        schedules.c.job_id == job_id)).first() is None:
                    conn.execute(schedules.insert().values(**row))
        except IntegrityError:
            pass  # another scheduler inserted it first

    def renew_schedule(self, job_id: int, owner: str, lease_s: float,
                       next_run_at: datetime | None, last_run_at: datetime | None = None
                       ) -> bool:
        values: dict[str, Any] = {"lease_expires": utcnow() + timedelta(seconds=lease_s),
                                  "next_run_at": next_run_at}
        if last_run_at is not None:
            values["last_run_at"] = last_run_at
        with self._tx() as conn:
            res = conn.execute(update(schedules).where(and_(
                schedules.c.job_id == job_id, schedules.c.owner == owner)).values(**values))
            return bool(res.rowcount)

    def release_schedule(self, job_id: int, owner: str) -> None:
        """The scheduler stopped: no lease, no next run."""
        with self._tx() as conn:
            conn.execute(update(schedules).where(and_(
                schedules.c.job_id == job_id, schedules.c.owner == owner)).values(
                owner=None, lease_expires=None, next_run_at=None))

    def schedule(self, job_id: int) -> RowMapping | None:
        with self._tx() as conn:
            row: RowMapping | None = conn.execute(select(schedules).where(
                schedules.c.job_id == job_id)).mappings().first()
            return row

    # -- the ADF delta template's table --------------------------------------------------

    def adf_delta_prefixes(self, table: str) -> list[str]:
        """The template's Lookup: select distinct PartitionPrefix from t."""
        t = _adf_delta(self.engine, table, self.shown, create=False)
        with self._tx() as conn:
            rows = conn.execute(select(t.c.PartitionPrefix).distinct()
                                .order_by(t.c.PartitionPrefix))
            return [r[0] for r in rows if r[0] is not None]

    def ensure_adf_delta_table(self, table: str) -> None:
        """Create the delta table (the template's columns) when the DB lacks it.  Called once
        before a pass: partitions finishing together must not race to create it."""
        _adf_delta(self.engine, table, self.shown, create=True)

    def adf_delta_last_success(self, table: str, prefix: str) -> datetime | None:
        """select max(JobRunTime) from t where PartitionPrefix = p and SuccessOrFailure = 1"""
        t = _adf_delta(self.engine, table, self.shown, create=False)
        with self._tx() as conn:
            value = conn.execute(select(func.max(t.c.JobRunTime)).where(and_(
                t.c.PartitionPrefix == prefix,
                t.c.SuccessOrFailure == _flag(t.c.SuccessOrFailure, 1)))).scalar()
        return as_utc(value)

    def adf_delta_record(self, table: str, prefix: str, run_time: datetime,
                         success: bool) -> None:
        """What the template's stored procedures insert after each partition's copy."""
        t = _adf_delta(self.engine, table, self.shown, create=True)
        with self._tx() as conn:
            # JobRunTime is UTC: naive, as the template's SQL Server datetime column holds
            # it; aware in a column with a time zone (timestamptz), which would read a
            # naive value in the session's time zone.
            at = run_time.astimezone(UTC)
            if not getattr(t.c.JobRunTime.type, "timezone", False):
                at = at.replace(tzinfo=None)
            conn.execute(t.insert().values(
                PartitionPrefix=prefix[:255],
                SuccessOrFailure=_flag(t.c.SuccessOrFailure, 1 if success else 0),
                JobRunTime=at))


class _Tx:
    """A transaction whose database errors become one-line UsageErrors."""

    def __init__(self, db: ControlDB) -> None:
        self.db = db
        self.ctx: Any = None

    def __enter__(self) -> Any:
        try:
            self.ctx = self.db.engine.begin()
            return self.ctx.__enter__()
        except OperationalError as e:
            raise db_error(e, self.db.shown) from None

    def __exit__(self, *exc: Any) -> bool:
        try:
            handled = bool(self.ctx.__exit__(*exc))
        except OperationalError as e:
            raise db_error(e, self.db.shown) from None
        except SQLAlchemyError as e:
            raise UsageError(f"control DB {self.db.shown}: {str(e).splitlines()[0]}") from None
        if isinstance(exc[1], OperationalError) and _connection_lost(exc[1]):
            # The server went away inside the transaction: as unreachable as at its start.
            raise db_error(exc[1], self.db.shown) from None
        if self.db.read_only and isinstance(exc[1], DBAPIError):
            raise UsageError(f"control DB {self.db.shown} is open read-only here: "
                             f"{str(exc[1].orig).splitlines()[0]}") from None
        return handled


def _failures_of(job_id: int, run_id: int | None,
                 partition_id: int | None) -> ColumnElement[bool]:
    where = failures.c.job_id == job_id
    if run_id is not None:
        where = and_(where, failures.c.run_id == run_id)
    if partition_id is not None:
        where = and_(where, failures.c.partition_id == partition_id)
    return where


def _connection_lost(e: OperationalError) -> bool:
    return isinstance(db_error(e, ""), ControlDBUnavailable)


def _adf_table(engine: Engine, name: str, shown: str) -> Any:
    """The ADF control table (``--adf-control-table``), reflected."""
    return _reflect_adf(engine, name, shown, "--adf-control-table",
                        ("PartitionPrefix", "SuccessOrFailure"), None)


def _reflect_adf(engine: Engine, name: str, shown: str, option: str,
                 columns: tuple[str, ...], create: Callable[[str, str | None], Any] | None
                 ) -> Any:
    """An ADF template table, reflected: a plain name, the template's ``columns``; when
    missing, made by ``create`` (table, schema) or refused."""
    from sqlalchemy import MetaData, Table
    from sqlalchemy.exc import NoSuchTableError

    if not name.replace("_", "").replace(".", "").isalnum():
        raise UsageError(f"{option} {name!r} is not a plain table name")
    schema, _, table = name.rpartition(".")
    what = "delta template" if "JobRunTime" in columns else "template"
    types = {"PartitionPrefix": "varchar(255)", "JobRunTime": "datetime",
             "SuccessOrFailure": "bit"}
    try:
        t = Table(table, MetaData(), schema=schema or None, autoload_with=engine)
    except NoSuchTableError:
        if create is None:
            raise UsageError(f"table {name!r} not found in {shown}: create it as the ADF "
                             f"{what} does ({', '.join(f'{c} {types[c]}' for c in columns)})"
                             ) from None
        t = create(table, schema or None)
        t.create(engine, checkfirst=True)
        return t
    for col in columns:
        if col not in t.c:
            listed = ", ".join(columns[:-1]) + " and " + columns[-1]
            raise UsageError(f"table {name!r} has no {col} column (the ADF {what}'s columns "
                             f"are {listed})")
    return t


def db_now(dialect: str, plus_s: float = 0.0) -> ColumnElement[Any]:
    """The DB server's current UTC time plus ``plus_s`` seconds, as SQL.  On SQLite the
    text has SQLAlchemy's own DateTime format, so stored times compare as they should."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f000", "now", f"{plus_s:+.3f} seconds")
    if dialect == "mssql":
        return func.dateadd(literal_column("millisecond"), int(plus_s * 1000),
                            func.sysdatetimeoffset())
    now: ColumnElement[Any] = func.now()
    return now + timedelta(seconds=plus_s) if plus_s else now


def _insert_records(conn: Connection, partition_id: int | None, r: Records,
                    now: ColumnElement[Any]) -> None:
    if r.failures:
        conn.execute(failures.insert().values(at=now), [
            {"job_id": r.job_id, "partition_id": partition_id, "run_id": r.run_id,
             "object_key": f.object_key, "error_kind": f.error_kind,
             "message": redact(f.message)[:4000], "attempts": f.attempts,
             "skipped": int(f.skipped)}
            for f in r.failures])
    if r.renames:
        # A run that died saved the renames of keys after its cursor; its rerun meets those
        # keys again and must not record them twice.
        keys = [x.key for x in r.renames]
        known: set[tuple[str, str]] = set()
        for i in range(0, len(keys), 500):  # bound the statement's parameters
            known.update((k, d) for k, d in conn.execute(
                select(renames.c.source_key, renames.c.destination_key).where(and_(
                    renames.c.job_id == r.job_id, renames.c.source_key.in_(keys[i:i + 500])))))
        new = [x for x in r.renames if (x.key, x.destination_key) not in known]
        if new:
            conn.execute(renames.insert().values(at=now), [
                {"job_id": r.job_id, "partition_id": partition_id, "source_key": x.key,
                 "destination_key": x.destination_key, "rule": x.rule} for x in new])
    done = [x for x in r.deletions if x.kept is None]
    if done:
        conn.execute(deletions.insert().values(at=now), [
            {"job_id": r.job_id, "partition_id": partition_id, "source_key": x.key,
             "destination_key": x.destination_key, "md5": x.md5} for x in done])


def _partition_run_values(values: dict[str, Any]) -> dict[str, Any]:
    row = dict(values)
    if "retries" in row:
        row["retries"] = json.dumps(row["retries"], sort_keys=True)
    if row.get("error"):
        row["error"] = redact(str(row["error"]))[:4000]
    return row


def _cursor_stats(cursor: str | None, s: PartitionStats | None) -> dict[str, int]:
    if s is None:
        return {}
    if cursor is None:
        return {"cursor_copied": 0, "cursor_skipped": 0, "cursor_bytes": 0}
    return {"cursor_copied": s.copied, "cursor_skipped": s.skipped, "cursor_bytes": s.bytes}
def _flag(column: Any, value: int) -> Any:
    """1 or 0 in the type of a template table's SuccessOrFailure column.  The template's
    column is SQL Server's ``bit``; a user's table on PostgreSQL has ``bit`` (a bit string),
    ``boolean`` or an integer, and PostgreSQL compares and stores only values of the column's
    own type (``bit = integer`` has no operator)."""
    from sqlalchemy import cast, literal
    from sqlalchemy.types import NullType

    if isinstance(column.type, NullType):  # SQLite reflects `bit` as a type it does not know
        return literal(value)
    return cast(literal(value), column.type)


def _adf_delta(engine: Engine, name: str, shown: str, create: bool) -> Any:
    """The delta table, created with the template's columns when ``create`` and missing."""
    return _reflect_adf(engine, name, shown, "--adf-delta-table",
                        ("PartitionPrefix", "JobRunTime", "SuccessOrFailure"),
                        adf_delta_table if create else None)


def _stats(s: PartitionStats) -> dict[str, int]:
    return {"listed": s.listed, "copied": s.copied, "skipped": s.skipped,
            "failed_objects": s.failed_objects, "bytes": s.bytes}


def _job(row: RowMapping) -> Job:
    return Job(int(row["id"]), str(row["name"]), str(row["destination"]),
               json.loads(row["options"]), row["adf_table"],
               as_utc(row["created_at"]) or utcnow())


def _owner_dead(owner: str | None, host: str | None = None) -> bool:
    """Whether ``owner`` (host:pid:nonce) is a process of this host that no longer exists."""
    o_host, _, rest = (owner or "").partition(":")
    o_pid = rest.split(":", 1)[0]
    return (o_host == (host or socket.gethostname()) and o_pid.isdigit()
            and not _alive(int(o_pid)))


def _check_run_exists(conn: Connection, run_id: int) -> None:
    if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise RunGone(f"run {run_id} is no longer in the control DB: its job was deleted "
                      "while it ran")


def _owner_host(owner: str | None) -> str:
    return (owner or "").partition(":")[0]


def _owner_pid(owner: str | None) -> str:
    return (owner or "").partition(":")[2].split(":", 1)[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
