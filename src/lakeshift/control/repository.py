"""The only code that writes SQL.  Every method is one short transaction."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from lakeshift.control.db import db_error, display_url, open_engine
from lakeshift.control.records import Job, PartitionSpec, as_utc
from lakeshift.control.schema import deletions, failures, jobs, partitions, renames, runs
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
                state="pending", cursor=None, lease_owner=None, lease_expires=None))

    def expire_dead_local(self, job_id: int, host: str) -> int:
        """Running partitions leased by a process of this host that no longer exists are
        claimable at once (no need to wait for the lease to expire)."""
        n = 0
        with self._tx() as conn:
            rows = conn.execute(select(partitions.c.id, partitions.c.lease_owner).where(and_(
                partitions.c.job_id == job_id, partitions.c.state == "running"))).all()
            for pid_, owner in rows:
                o_host, _, rest = (owner or "").partition(":")
                o_pid = rest.split(":", 1)[0]
                if o_host == host and o_pid.isdigit() and not _alive(int(o_pid)):
                    conn.execute(update(partitions).where(partitions.c.id == pid_).values(
                        lease_expires=utcnow() - timedelta(seconds=1)))
                    n += 1
        return n

    def claim(self, job_id: int, owner: str, n: int, lease_s: float) -> list[RowMapping]:
        """Take up to n claimable partitions (pending, or running with an expired lease) in
        one statement; two processes can never take the same one."""
        if n <= 0:
            return []
        now = utcnow()
        candidates = (select(partitions.c.id).where(and_(
            partitions.c.job_id == job_id,
            or_(partitions.c.state == "pending",
                and_(partitions.c.state == "running", partitions.c.lease_expires < now))))
            .order_by(partitions.c.seq).limit(n))
        if self.engine.dialect.name != "sqlite":
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (update(partitions)
                .where(partitions.c.id.in_(candidates.scalar_subquery()))
                .values(state="running", lease_owner=owner,
                        lease_expires=now + timedelta(seconds=lease_s),
                        attempts=partitions.c.attempts + 1,
                        started_at=func.coalesce(partitions.c.started_at, now),
                        finished_at=None)
                .returning(*partitions.c))
        with self._tx() as conn:
            rows = list(conn.execute(stmt).mappings())
        return sorted(rows, key=lambda r: r["seq"])

    def heartbeat(self, partition_id: int, owner: str, lease_s: float, cursor: str | None,
                  stats: PartitionStats) -> bool:
        """Renew the lease and save progress; False when the lease was lost to another."""
        with self._tx() as conn:
            res = conn.execute(update(partitions).where(and_(
                partitions.c.id == partition_id, partitions.c.lease_owner == owner,
                partitions.c.state == "running")).values(
                lease_expires=utcnow() + timedelta(seconds=lease_s), cursor=cursor,
                **_stats(stats)))
            return bool(res.rowcount)

    def finish(self, partition_id: int, owner: str, state: str, cursor: str | None,
               stats: PartitionStats, error: str | None, duration: float) -> bool:
        now = utcnow()
        with self._tx() as conn:
            res = conn.execute(update(partitions).where(and_(
                partitions.c.id == partition_id, partitions.c.lease_owner == owner)).values(
                state=state, cursor=cursor, last_error=redact(error) if error else error,
                lease_owner=None,
                lease_expires=None, finished_at=now if state != "pending" else None,
                duration_s=(func.coalesce(partitions.c.duration_s, 0.0) + duration),
                **_stats(stats)))
            return bool(res.rowcount)

    # -- runs --------------------------------------------------------------------------

    def start_run(self, job_id: int, owner: str, batch_count: int,
                  settings: dict[str, Any]) -> int:
        with self._tx() as conn:
            return int(conn.execute(runs.insert().values(
                job_id=job_id, owner=owner, state="running", batch_count=batch_count,
                settings=json.dumps(settings, sort_keys=True), partitions_done=0,
                partitions_failed=0, copied=0, bytes=0, started_at=utcnow()))
                .inserted_primary_key[0])

    def finish_run(self, run_id: int, state: str, done: int, failed: int, copied: int,
                   nbytes: int) -> None:
        with self._tx() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(
                state=state, partitions_done=done, partitions_failed=failed, copied=copied,
                bytes=nbytes, finished_at=utcnow()))

    def runs(self, job_id: int, limit: int = 20) -> list[RowMapping]:
        with self._tx() as conn:
            return list(conn.execute(select(runs).where(runs.c.job_id == job_id)
                                     .order_by(runs.c.id.desc()).limit(limit)).mappings())

    # -- failures ------------------------------------------------------------------------

    def add_failures(self, job_id: int, partition_id: int | None, run_id: int | None,
                     items: Sequence[Any]) -> None:
        if not items:
            return
        now = utcnow()
        with self._tx() as conn:
            conn.execute(failures.insert(), [
                {"job_id": job_id, "partition_id": partition_id, "run_id": run_id,
                 "object_key": f.key, "error_kind": f.kind, "message": redact(f.message)[:4000],
                 "attempts": f.attempts, "at": now, "skipped": int(getattr(f, "skipped", False))}
                for f in items])

    def add_renames(self, job_id: int, partition_id: int | None, items: Sequence[Any]) -> None:
        if not items:
            return
        now = utcnow()
        with self._tx() as conn:
            conn.execute(renames.insert(), [
                {"job_id": job_id, "partition_id": partition_id, "source_key": r.key,
                 "destination_key": r.destination_key, "rule": r.rule, "at": now}
                for r in items])

    def add_deletions(self, job_id: int, partition_id: int | None,
                      items: Sequence[Any]) -> None:
        done = [x for x in items if x.kept is None]
        if not done:
            return
        now = utcnow()
        with self._tx() as conn:
            conn.execute(deletions.insert(), [
                {"job_id": job_id, "partition_id": partition_id, "source_key": x.key,
                 "destination_key": x.destination_key, "md5": x.md5, "at": now}
                for x in done])

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
            rows = conn.execute(select(t.c.PartitionPrefix).where(t.c.SuccessOrFailure == 0))
            return [r[0] for r in rows if r[0] is not None]

    def adf_mark_success(self, table: str, prefix: str) -> None:
        """What the template's sp_update_partition_success does."""
        t = _adf_table(self.engine, table, self.shown)
        with self._tx() as conn:
            conn.execute(update(t).where(t.c.PartitionPrefix == prefix).values(
                SuccessOrFailure=1))


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


def _stats(s: PartitionStats) -> dict[str, int]:
    return {"listed": s.listed, "copied": s.copied, "skipped": s.skipped,
            "failed_objects": s.failed_objects, "bytes": s.bytes}


def _job(row: RowMapping) -> Job:
    return Job(int(row["id"]), str(row["name"]), str(row["destination"]),
               json.loads(row["options"]), row["adf_table"],
               as_utc(row["created_at"]) or utcnow())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
