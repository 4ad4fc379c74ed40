"""The only code that writes SQL.  Every method is one short transaction."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, literal_column, or_, select, update
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from lakeshift.control.db import db_error, display_url, open_engine
from lakeshift.control.records import Job, PartitionSpec, as_utc
from lakeshift.control.schema import (
    adf_delta_table,
    deletions,
    failures,
    jobs,
    partitions,
    renames,
    runs,
    schedules,
    sync_deletions,
    sync_windows,
)
from lakeshift.errors import UsageError
from lakeshift.redact import redact


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    failures: Sequence[Any] = field(default_factory=list)
    renames: Sequence[Any] = field(default_factory=list)
    deletions: Sequence[Any] = field(default_factory=list)


class ControlDB:
    def __init__(self, url: str, create: bool = False) -> None:
        self.url = url
        self.shown = display_url(url)
        self.engine: Engine = open_engine(url, create)

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

    def delete_job(self, name: str, force: bool = False) -> None:
        """Delete job ``name`` and everything recorded about it (partitions, runs,
        failures, renames, deletions).  Refused while a live process holds one of its
        partitions, unless ``force``.  Objects already copied are not touched."""
        job_id = self.job(name).id
        with self._tx() as conn:
            self._refuse_if_leased(conn, job_id, name, force, "delete")
            for t in (failures, renames, deletions, runs, partitions):
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
            host, _, rest = (owner or "").partition(":")
            raise UsageError(f"job {name!r} is being run (partition #{seq} held by process "
                             f"{rest.split(':', 1)[0]} on {host}): wait for that run to end "
                             f"or stop it, or {verb} with --force")

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
        one statement; two processes can never take the same one."""
        if n <= 0:
            return []
        now = self._now()
        candidates = (select(partitions.c.id).where(and_(
            partitions.c.job_id == job_id,
            or_(partitions.c.state == "pending",
                and_(partitions.c.state == "running", partitions.c.lease_expires < now))))
            .order_by(partitions.c.seq).limit(n))
        if self.engine.dialect.name != "sqlite":
            candidates = candidates.with_for_update(skip_locked=True)
        p = partitions.c
        # The counters start again from those of the keys before the cursor: whatever a
        # dead run counted after it is listed and counted again by this one.
        stmt = (update(partitions)
                .where(p.id.in_(candidates.scalar_subquery()))
                .values(state="running", lease_owner=owner,
                        lease_expires=self._now(lease_s),
                        attempts=p.attempts + 1,
                        started_at=func.coalesce(p.started_at, now),
                        finished_at=None,
                        listed=p.cursor_copied + p.cursor_skipped, copied=p.cursor_copied,
                        skipped=p.cursor_skipped, failed_objects=0, bytes=p.cursor_bytes)
                .returning(*partitions.c))
        with self._tx() as conn:
            rows = list(conn.execute(stmt).mappings())
        return sorted(rows, key=lambda r: r["seq"])

    def heartbeat(self, partition_id: int, owner: str, lease_s: float, cursor: str | None,
                  stats: PartitionStats, at_cursor: PartitionStats | None = None,
                  records: Records | None = None) -> bool:
        """Renew the lease and save progress: the cursor, the counters (``at_cursor``: those
        of the keys at or before the cursor) and the records since the last save, in one
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
                      nbytes: int) -> None:
        """Save a running run's counters and renew its lease (a run closed meanwhile as
        interrupted, its beats having been late, is running again)."""
        with self._tx() as conn:
            conn.execute(update(runs).where(and_(
                runs.c.id == run_id, runs.c.state.in_(("running", "interrupted")))).values(
                state="running", finished_at=None, partitions_done=done,
                partitions_failed=failed, copied=copied, bytes=nbytes,
                heartbeat_at=self._now(), lease_expires=self._now(lease_s)))

    def finish_run(self, run_id: int, state: str, done: int, failed: int, copied: int,
                   nbytes: int) -> None:
        with self._tx() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                state=state, partitions_done=done, partitions_failed=failed, copied=copied,
                bytes=nbytes, finished_at=self._now(), heartbeat_at=self._now(),
                lease_expires=None))

    def close_dead_runs(self, job_id: int | None = None) -> int:
        """Close as ``interrupted`` every running run whose process is gone (same host, no
        such pid) or whose lease expired (no heartbeat for a lease's length): its finish
        time is its last heartbeat's, its counters those that heartbeat saved."""
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
            return list(conn.execute(select(runs).where(runs.c.job_id == job_id)
                                     .order_by(runs.c.id.desc()).limit(limit)).mappings())

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

    def prepare_sync_pass(self, job_id: int) -> None:
        """Every partition not held by a live lease becomes pending with no cursor and no
        counters: a sync pass looks at each partition again, from the start of its window,
        and its counters are that pass's (the windows table keeps each pass's)."""
        now = utcnow()
        with self._tx() as conn:
            conn.execute(update(partitions).where(and_(
                partitions.c.job_id == job_id,
                or_(partitions.c.state != "running", partitions.c.lease_expires < now)))
                .values(state="pending", cursor=None, lease_owner=None, lease_expires=None,
                        listed=0, copied=0, skipped=0, failed_objects=0, bytes=0, cursor_copied=0,
                        cursor_skipped=0, cursor_bytes=0, duration_s=None))

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

    def add_sync_deletions(self, job_id: int, partition_id: int, run_id: int,
                           items: Sequence[tuple[str, str, int]]) -> None:
        """(source key that is gone, destination key deleted, size) rows."""
        if not items:
            return
        now = utcnow()
        with self._tx() as conn:
            conn.execute(sync_deletions.insert(), [
                {"job_id": job_id, "partition_id": partition_id, "run_id": run_id,
                 "source_key": src, "destination_key": dst, "size": size, "at": now}
                for src, dst, size in items])

    def sync_deletions(self, job_id: int) -> list[RowMapping]:
        with self._tx() as conn:
            return list(conn.execute(select(sync_deletions).where(
                sync_deletions.c.job_id == job_id).order_by(sync_deletions.c.id)).mappings())

    # -- schedules (one scheduler per job, by lease) -------------------------------------

    def acquire_schedule(self, job_id: int, owner: str, schedule: str, lease_s: float,
                         host: str) -> str | None:
        """Take the job's scheduler lease; None when taken, else the owner holding it (a
        live lease of another process; a dead local process's lease is taken over)."""
        now = utcnow()
        with self._tx() as conn:
            row = conn.execute(select(schedules).where(schedules.c.job_id == job_id)
                               ).mappings().first()
            if row is None:
                conn.execute(schedules.insert().values(
                    job_id=job_id, schedule=schedule, owner=owner,
                    lease_expires=now + timedelta(seconds=lease_s)))
                return None
            held = row["owner"]
            expires = as_utc(row["lease_expires"])
            o_host, _, rest = (held or "").partition(":")
            o_pid = rest.split(":", 1)[0]
            dead = o_host == host and o_pid.isdigit() and not _alive(int(o_pid))
            if held and held != owner and expires is not None and expires > now and not dead:
                return str(held)
            conn.execute(update(schedules).where(schedules.c.job_id == job_id).values(
                schedule=schedule, owner=owner, lease_expires=now + timedelta(seconds=lease_s)))
            return None

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
            # JobRunTime is a naive UTC datetime, as the template's SQL Server column holds.
            conn.execute(t.insert().values(
                PartitionPrefix=prefix[:255],
                SuccessOrFailure=_flag(t.c.SuccessOrFailure, 1 if success else 0),
                JobRunTime=run_time.astimezone(UTC).replace(tzinfo=None)))


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
            return bool(self.ctx.__exit__(*exc))
        except OperationalError as e:
            raise db_error(e, self.db.shown) from None
        except SQLAlchemyError as e:
            raise UsageError(f"control DB {self.db.shown}: {str(e).splitlines()[0]}") from None


def _adf_table(engine: Engine, name: str, shown: str) -> Any:
    from sqlalchemy import MetaData, Table
    from sqlalchemy.exc import NoSuchTableError

    if not name.replace("_", "").replace(".", "").isalnum():
        raise UsageError(f"--adf-control-table {name!r} is not a plain table name")
    schema, _, table = name.rpartition(".")
    try:
        t = Table(table, MetaData(), schema=schema or None, autoload_with=engine)
    except NoSuchTableError:
        raise UsageError(f"table {name!r} not found in {shown}: create it as the ADF template "
                         "does (PartitionPrefix varchar(255), SuccessOrFailure bit)") from None
    for col in ("PartitionPrefix", "SuccessOrFailure"):
        if col not in t.c:
            raise UsageError(f"table {name!r} has no {col} column (the ADF template's "
                             "columns are PartitionPrefix and SuccessOrFailure)")
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
             "object_key": f.key, "error_kind": f.kind, "message": redact(f.message)[:4000],
             "attempts": f.attempts, "skipped": int(getattr(f, "skipped", False))}
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
    from sqlalchemy import MetaData, Table
    from sqlalchemy.exc import NoSuchTableError

    if not name.replace("_", "").replace(".", "").isalnum():
        raise UsageError(f"--adf-delta-table {name!r} is not a plain table name")
    schema, _, table = name.rpartition(".")
    try:
        t = Table(table, MetaData(), schema=schema or None, autoload_with=engine)
    except NoSuchTableError:
        if not create:
            raise UsageError(f"table {name!r} not found in {shown}: create it as the ADF "
                             "delta template does (PartitionPrefix varchar(255), JobRunTime "
                             "datetime, SuccessOrFailure bit)") from None
        t = adf_delta_table(table, schema or None)
        t.create(engine, checkfirst=True)
        return t
    for col in ("PartitionPrefix", "JobRunTime", "SuccessOrFailure"):
        if col not in t.c:
            raise UsageError(f"table {name!r} has no {col} column (the ADF delta template's "
                             "columns are PartitionPrefix, JobRunTime and SuccessOrFailure)")
    return t


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
