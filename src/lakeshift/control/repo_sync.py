"""Records (failures, renames, deletions), the ADF control and delta tables, delta sync
(windows, delete candidates, deletions) and sync schedules."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping

from lakeshift.control.records import KeySpan, as_utc
from lakeshift.control.repo_base import (
    ControlBase,
    PartitionStats,
    Records,
    _adf_delta,
    _adf_table,
    _alive,
    _clear_failures,
    _clearable,
    _deletes,
    _dry_run,
    _flag,
    _insert_records,
    _stats,
    utcnow,
)
from lakeshift.control.schema import (
    failures,
    partitions,
    renames,
    runs,
    schedules,
    sync_delete_candidates,
    sync_deletions,
    sync_windows,
)
from lakeshift.redact import redact


class SyncRows(ControlBase):
    """The records, ADF, sync-window, delete-candidate and schedule tables."""

    # -- failures ------------------------------------------------------------------------

    def add_failures(self, job_id: int, partition_id: int | None, run_id: int | None,
                     items: Sequence[Any], deletion: bool = False) -> None:
        """Failures of a partition; ``deletion``: of sync --delete's deletion phase (keyed
        by the destination object's key), which only a later --delete pass clears."""
        self.add_records(partition_id, Records(job_id, run_id, failures=items,
                                               deletion=deletion))

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

    def latest_failures(self, job_id: int) -> Iterator[RowMapping]:
        """The failures current now, one row per object: its latest (``lakeshift
        failures``).  Every run and sync pass that meets an object it cannot copy records
        it again (a link skipped on purpose, once per pass): its last row is its state now,
        the earlier ones history, kept in the log (``failures``; ``failures_of`` a run's
        own).  An object whose latest row a later pass of its partition cleared (it went
        past the key without failing it: ``cleared_run_id``) is not listed: it was copied
        or found identical since, or is gone.  A failure of sync --delete's deletion
        phase names a destination object, a copy's a source object: each is its own
        object however its key reads (a destination named like its source), so a copy
        failure and a deletion failure under one key are both listed."""
        latest = select(func.max(failures.c.id)).where(failures.c.job_id == job_id) \
            .group_by(failures.c.object_key, failures.c.deletion)
        with self.engine.connect() as conn:
            yield from conn.execute(select(failures).where(and_(
                failures.c.id.in_(latest), failures.c.cleared_run_id.is_(None)))
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
                      error: str | None, listed: Sequence[KeySpan] | None = None) -> None:
        """The window's row ends; the partition's earlier failures that the pass went past
        are no longer current (``_clear_failures``).  A pass lists its partition from the
        start, so: all of them when its window succeeded, those at or before the cursor it
        stopped at when it failed.  A keyed pass (--files-from, an inventory: state keyed or
        keyed-failed; interrupted, it may be one) listed nothing, so its cursor passed keys
        it never looked at: none.
        A window taking an earlier failure's object is sure: a partition's window starts no
        later than that of its first failed window, a failed copy run's partition has no
        window start at all (engine/sync.py ``window_for``), so an object that failed is in
        every window until one succeeds; one modified since may be held back for the next
        (then it is not known to fail).
        ``listed``: the key spans the pass listed, when not the whole partition (a path
        template's folders in the window): only failures there are cleared.  Skips on
        purpose stay (a window does not take an unchanged object, so passing one is not
        copying it).  The deletion phase's failures are cleared by a succeeded window of a
        pass that deletes (--delete) and listed the whole partition: it found each such
        object again (deleted it, or recorded it again) or found it gone or its source
        back; a pass that does not delete never looks at them."""
        with self._tx() as conn:
            conn.execute(update(sync_windows).where(sync_windows.c.id == window_id).values(
                state=state, deleted=deleted, error=error, finished_at=utcnow(),
                **_stats(stats)))
            if state not in ("succeeded", "failed"):
                return  # keyed passes; an interrupted one may be keyed too
            w = conn.execute(select(sync_windows.c.partition_id, sync_windows.c.run_id,
                                    partitions.c.cursor, runs.c.settings)
                             .join(partitions, partitions.c.id == sync_windows.c.partition_id)
                             .join(runs, runs.c.id == sync_windows.c.run_id)
                             .where(sync_windows.c.id == window_id)).first()
            if w is None or _dry_run(w.settings):
                return
            pid_, run_id = int(w.partition_id), int(w.run_id)
            if state == "succeeded":
                _clear_failures(conn, pid_, run_id, None, None, spans=listed)
                if listed is None and _deletes(w.settings):
                    _clear_failures(conn, pid_, run_id, None, None, deletion=True)
            elif w.cursor is not None:
                _clear_failures(conn, pid_, run_id, None, str(w.cursor), spans=listed)

    def clear_named_failures(self, job_id: int, run_id: int, keys: Sequence[str],
                             source_keys: bool) -> None:
        """After a --files-from pass (run ``run_id``): the earlier failures (and skips on
        purpose) of the keys it named are no longer current where it looked at them.  A
        keyed pass looks at each named key of a partition and records the ones it cannot
        copy again (newer rows, which ``failures`` shows): in a partition whose window
        ended ``keyed`` every named key, in one that ended ``keyed-failed`` those at or
        before its cursor (a partition that stopped early never reached the others).
        ``keys`` as --files-from gave them: source keys, or relative to each partition's
        ``rel_base``."""
        w = sync_windows.c
        with self._tx() as conn:
            if _dry_run(conn.execute(select(runs.c.settings).where(runs.c.id == run_id))
                        .scalar()):
                return
            parts = conn.execute(select(w.partition_id, w.state, partitions.c.rel_base,
                                        partitions.c.cursor)
                                 .join(partitions, partitions.c.id == w.partition_id)
                                 .where(and_(w.run_id == run_id,
                                             w.state.in_(("keyed", "keyed-failed"))))).all()
        # (rel_base, the greatest key cleared or None) → partition ids
        groups: dict[tuple[str, str | None], list[int]] = {}
        for pid_, state, rel_base, cursor in parts:
            if state == "keyed-failed" and cursor is None:
                continue
            base = "" if source_keys else str(rel_base or "")
            upto = None if state == "keyed" else str(cursor)
            groups.setdefault((base, upto), []).append(int(pid_))
        f = failures.c
        for (base, upto), ids in groups.items():
            for i in range(0, len(keys), 500):  # bound the statement's parameters
                named = [base + k for k in keys[i:i + 500]]
                if upto is not None:
                    named = [k for k in named if k <= upto]
                if not named:
                    continue
                with self._tx() as conn:
                    conn.execute(update(failures).where(and_(
                        f.job_id == job_id, f.partition_id.in_(ids),
                        _clearable(run_id, None, skips=True), f.object_key.in_(named)))
                        .values(cleared_run_id=run_id))

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
