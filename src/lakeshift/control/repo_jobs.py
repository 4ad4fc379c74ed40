"""Jobs and partitions: creating, re-planning and deleting jobs; claims, leases,
heartbeats and finishes of partitions."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from lakeshift.control import fold_state_totals
from lakeshift.control.records import Job
from lakeshift.control.repo_base import (
    ControlBase,
    PartitionStats,
    Records,
    _cursor_stats,
    _insert_records,
    _job,
    _owner_dead,
    _owner_host,
    _owner_pid,
    _partition_run_values,
    _stats,
    utcnow,
)
from lakeshift.control.schema import (
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
from lakeshift.model import PartitionSpec
from lakeshift.redact import redact

#: How a partition reads that a holder that is gone left ``running`` (``JobRows._reads``).
INTERRUPTED = "interrupted"


class JobRows(ControlBase):
    """The jobs and partitions tables."""

    # -- jobs ------------------------------------------------------------------------

    def create_job(self, name: str, destination: str, options: dict[str, Any],
                   specs: Sequence[PartitionSpec], adf_table: str | None = None) -> int:
        with self._tx() as conn:
            if conn.execute(select(jobs.c.id).where(jobs.c.name == name)).first():
                raise UsageError(f"job {name!r} already exists in {self.shown}: choose another "
                                 f"--job name, or `lakeshift run --job {shlex.quote(name)}` it")
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
            return _job(row, _typed_destination(conn, row))

    def jobs(self) -> list[Job]:
        with self._tx() as conn:
            rows = conn.execute(select(jobs).order_by(jobs.c.id)).mappings().all()
            return [_job(r, _typed_destination(conn, r)) for r in rows]

    # -- partitions ----------------------------------------------------------------------

    def partitions(self, job_id: int, offset: int = 0, limit: int | None = None,
                   states: Sequence[str] | None = None) -> list[RowMapping]:
        """The job's partitions in order (``limit`` of them from ``offset``: a page), each
        with ``reads``: its state as it reads now (``_reads``: ``interrupted`` for one left
        ``running`` by a holder that is gone).  With ``states`` (of ``reads``), only those
        in one of them, grouped in the order the states are given (``failed`` first, say),
        each group in order."""
        p = partitions.c
        with self._tx() as conn:
            dead = self._dead_holders(conn, job_id)
            reads = self._reads(dead)
            q = select(partitions, reads.label("reads")).where(p.job_id == job_id)
            if states is not None:
                q = q.where(or_(*(self._reading(s, dead) for s in states)))
                if len(states) > 1:  # one state walks the (job_id, state, seq) index in order
                    q = q.order_by(case({s: i for i, s in enumerate(states)}, value=reads))
            q = q.order_by(p.seq)
            if offset:
                q = q.offset(offset)
            if limit is not None:
                q = q.limit(limit)
            return list(conn.execute(q).mappings())

    def interrupted_partitions(self, job_id: int) -> int:
        """How many of the job's partitions read as interrupted (``_reads``), in one
        aggregate query."""
        with self._tx() as conn:
            dead = self._dead_holders(conn, job_id)
            return int(conn.execute(select(func.count()).select_from(partitions).where(and_(
                partitions.c.job_id == job_id, self._lapsed(dead)))).scalar_one())

    # A partition in state ``running`` is held while its holder renews its lease.  What the
    # DB knows of a holder that stopped: its lease lapsed (no heartbeat for a lease's
    # length, by the DB's clock); the run it holds it for — a run's own process holds its
    # partitions under the run's owner — is over (its row not running, or its lease
    # lapsed: the run's row is renewed first in each beat); or, for a process of this
    # host, that the process is gone (as ``expire_dead_local`` and ``close_dead_runs``
    # judge it).  A fleet's worker holds under its own name: one on another machine that
    # died reads as running until its lease lapses (nothing in the DB says so before).

    def _dead_holders(self, conn: Connection, job_id: int) -> list[str]:
        """Lease owners of the job's running partitions that are gone: the owners of runs
        of the job that are over, and processes of this host that no longer exist (a
        few: one per process that held a partition)."""
        p = partitions.c
        owners = [str(o) for o in conn.execute(select(p.lease_owner).distinct().where(and_(
            p.job_id == job_id, p.state == "running", p.lease_owner.is_not(None)))).scalars()]
        if not owners:
            return []
        r = runs.c
        ended = set(conn.execute(select(r.owner).distinct().where(and_(
            r.job_id == job_id, r.owner.in_(owners),
            or_(r.state != "running", r.lease_expires.is_(None),
                r.lease_expires < self._now())))).scalars())
        return [o for o in owners if o in ended or _owner_dead(o)]

    def _lapsed(self, dead: Sequence[str]) -> ColumnElement[bool]:
        """A partition left ``running`` by a holder that is gone."""
        p = partitions.c
        gone = or_(p.lease_expires.is_(None), p.lease_expires < self._now())
        if dead:
            gone = or_(gone, p.lease_owner.in_(list(dead)))
        return and_(p.state == "running", gone)

    def _reading(self, state: str, dead: Sequence[str]) -> ColumnElement[bool]:
        """The partitions that read as ``state``: ``running`` those held, ``interrupted``
        those ``_lapsed``; any other state as stored."""
        p = partitions.c
        if state == INTERRUPTED:
            return self._lapsed(dead)
        if state == "running":
            held = and_(p.state == "running", p.lease_expires >= self._now())
            return and_(held, or_(p.lease_owner.is_(None), p.lease_owner.not_in(list(dead)))
                        ) if dead else held
        return p.state == state

    def _reads(self, dead: Sequence[str]) -> ColumnElement[Any]:
        return case((self._lapsed(dead), literal(INTERRUPTED)), else_=partitions.c.state)

    def key_range_partitions(self, job_id: int) -> int:
        """How many of the job's partitions are key ranges (the rest are prefixes), in one
        aggregate query."""
        p = partitions.c
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).where(and_(
                p.job_id == job_id,
                or_(p.range_start.is_not(None), p.range_end.is_not(None))))).scalar_one())

    def partition_totals(self, job_id: int) -> dict[str, int]:
        """The job's partitions by state and their counters' sums, in one aggregate query
        (a job may have tens of thousands of partitions: none is read)."""
        return fold_state_totals(self.partition_totals_by_state(job_id))

    def partition_totals_by_state(self, job_id: int) -> dict[str, dict[str, int]]:
        """For each state the job's partitions are in: how many, and the sums of their
        ``listed``, ``copied``, ``bytes`` and ``failed_objects`` (one aggregate query)."""
        p = partitions.c
        with self._tx() as conn:
            rows = conn.execute(select(
                p.state, func.count(), func.coalesce(func.sum(p.listed), 0),
                func.coalesce(func.sum(p.copied), 0), func.coalesce(func.sum(p.bytes), 0),
                func.coalesce(func.sum(p.failed_objects), 0))
                .where(p.job_id == job_id).group_by(p.state)).all()
        return {str(state): {"partitions": int(n), "listed": int(listed),
                             "copied": int(copied), "bytes": int(nbytes),
                             "failed_objects": int(failed)}
                for state, n, listed, copied, nbytes, failed in rows}

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

    def set_job_options(self, name: str, options: dict[str, Any]) -> None:
        """Replace job ``name``'s saved options (``plan --job J --replan`` with copy
        options and no SRC DST: the next run copies by the new ones)."""
        job_id = self.job(name).id
        with self._tx() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(
                options=json.dumps(options, sort_keys=True)))

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
        # A live run may still write a sample or a partition-run row meanwhile: the job's,
        # runs' and partitions' rows are locked first, so such a write waits for this
        # delete and then finds its run gone (RunGone) instead of failing this one's keys.
        if self.engine.dialect.name != "sqlite":  # SQLite: BEGIN IMMEDIATE serialises
            for t, col in ((jobs, jobs.c.id), (runs, runs.c.job_id),
                           (partitions, partitions.c.job_id)):
                conn.execute(select(t.c.id).where(col == job_id).with_for_update())
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

    def claim(self, job_id: int, owner: str, n: int, lease_s: float,
              run_id: int | None = None, from_start: bool = False) -> list[RowMapping]:
        """Take up to n claimable partitions (pending, or running with an expired lease) in
        one transaction that locks the rows it reads (FOR UPDATE SKIP LOCKED on PostgreSQL;
        BEGIN IMMEDIATE serialises SQLite): two processes can never take the same one.
        ``run_id``: the claiming run; only its own records of partitions taken over are
        trimmed (``_trim_taken_over``), never an earlier run's history.  ``from_start``:
        the claimer lists each partition from its start, not from its cursor (a sync pass:
        its window is not the dead pass's): the partitions come with no cursor and no
        counters, and a taken-over record of the run keeps nothing (the taker counts
        every object again)."""
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
            if ids:
                _trim_taken_over(conn, ids, self._now(), run_id, from_start)
            if len(ids) < n:
                ids += conn.execute(free(p.state == "pending", n - len(ids))).scalars()
            if not ids:
                return []
            rows = list(conn.execute(self._take(ids, owner, lease_s, now, from_start))
                        .mappings())
            self._note_claims(conn, run_id, from_start, rows)
        return sorted(rows, key=lambda r: r["seq"])

    def _take(self, ids: list[int], owner: str, lease_s: float,
              now: ColumnElement[Any], from_start: bool) -> Any:
        p = partitions.c
        # The counters start again from those of the keys before the cursor: whatever a
        # dead run counted after it is listed and counted again by this one.  From the
        # start: no cursor, and every key is listed and counted again.
        counters: dict[str, Any] = (
            dict(cursor=None, listed=0, copied=0, skipped=0, bytes=0, cursor_copied=0,
                 cursor_skipped=0, cursor_bytes=0) if from_start else
            dict(listed=p.cursor_copied + p.cursor_skipped, copied=p.cursor_copied,
                 skipped=p.cursor_skipped, bytes=p.cursor_bytes))
        return (update(partitions)
                .where(p.id.in_(ids))
                .values(state="running", lease_owner=owner,
                        lease_expires=self._now(lease_s), attempts=p.attempts + 1,
                        started_at=func.coalesce(p.started_at, now), finished_at=None,
                        failed_objects=0, **counters)
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
            self._clear_passed(conn, partition_id, cursor, False)
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
            self._clear_passed(conn, partition_id, cursor, state == "succeeded")
        # Once committed: a finish that did not commit (the DB lost) is tried again, and
        # clears then.
        if state != "running":
            self._passing.pop(partition_id, None)
        return True


#: The state of a partition-run record whose worker lost the partition to another (its
#: process died, or its lease lapsed): what it did after its cursor is the taker's.
TAKEN_OVER = "taken-over"


def _typed_destination(conn: Connection, row: RowMapping) -> str | None:
    """One of the job's partitions' destinations (as the user typed the job's), asked only
    for a job whose saved destination could be of the form of before session 19
    (``az://…``: ``urls.saved_destination``); None otherwise or without partitions."""
    if not str(row["destination"]).startswith("az://"):
        return None
    found = conn.execute(select(partitions.c.destination)
                         .where(partitions.c.job_id == row["id"]).limit(1)).scalar()
    return None if found is None else str(found)


def _trim_taken_over(conn: Connection, ids: list[int], now: Any,
                     run_id: int | None, from_start: bool = False) -> None:
    """Partitions ``ids`` are taken over from a worker that stopped renewing their leases:
    the taker lists each from its saved cursor and counts what comes after it again.  The
    dead worker's partition-run record keeps only what lay at or before that cursor, so a
    run's records count each object once (they feed the run's progress, its row and, on
    Dask, its summary).  The partition's counters and its record were saved by the same
    heartbeat, so what the record counted after the cursor is the partition's counters less
    its cursor's; failures are all after the cursor (a failed key stops it).  Only a record
    of the claiming run ``run_id`` is trimmed: one left unfinished by an earlier run (its
    driver interrupted before the lease lapsed) is that run's history, and the objects it
    copied after the cursor are another run's to skip, not to count twice.  ``from_start``:
    the taker lists the partition from its start (a sync pass) and counts every object
    again, so the record keeps nothing."""
    p, pr = partitions.c, partition_runs.c
    parts = conn.execute(select(p.id, p.copied, p.skipped, p.bytes, p.cursor_copied,
                                p.cursor_skipped, p.cursor_bytes).where(p.id.in_(ids))).all()
    for pid_, copied, skipped, nbytes, c_copied, c_skipped, c_bytes in parts:
        rec = conn.execute(select(pr.id, pr.copied, pr.skipped, pr.bytes_read,
                                  pr.bytes_written).where(and_(
            pr.partition_id == pid_, pr.run_id == run_id, pr.finished_at.is_(None)))
            .order_by(pr.id.desc())
            .limit(1)).first()
        if rec is None:
            continue
        if from_start:
            kept_c = kept_s = kept_r = kept_w = 0
        else:
            after_c = max(int(copied) - int(c_copied), 0)
            after_s = max(int(skipped) - int(c_skipped), 0)
            after_b = max(int(nbytes) - int(c_bytes), 0)
            kept_c, kept_s = max(rec.copied - after_c, 0), max(rec.skipped - after_s, 0)
            kept_r = max(rec.bytes_read - after_b, 0)
            kept_w = max(rec.bytes_written - after_b, 0)
        conn.execute(update(partition_runs).where(pr.id == rec.id).values(
            copied=kept_c, skipped=kept_s, listed=kept_c + kept_s, failed_objects=0,
            bytes_read=kept_r, bytes_written=kept_w, in_flight=0,
            state=TAKEN_OVER, finished_at=now,
            error="its worker stopped renewing the lease: another took the partition over "
                  + ("from its start" if from_start else "from its cursor")))

