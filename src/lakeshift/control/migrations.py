"""Numbered schema migrations.  Version 1 is the schema in ``schema.py`` as first released;
each later change adds ``_to_N(conn)`` here and bumps LATEST.  An old DB is upgraded in
place inside one transaction; a newer one is refused (``db.open_engine``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _to_2(conn: Any) -> None:
    """Failures can be skipped on purpose; renamed objects and deleted sources are
    recorded."""
    from lakeshift.control.schema import deletions, renames

    add = "ADD" if conn.dialect.name == "mssql" else "ADD COLUMN"
    conn.exec_driver_sql(f"ALTER TABLE lakeshift_failures {add} skipped INTEGER NOT NULL "
                         "DEFAULT 0")
    renames.create(conn)
    deletions.create(conn)


def _to_3(conn: Any) -> None:
    """Runs are numbered per job and carry a heartbeat and lease; partitions keep the
    counters of the keys before their cursor."""
    add = "ADD" if conn.dialect.name == "mssql" else "ADD COLUMN"
    stamp = "DATETIMEOFFSET" if conn.dialect.name == "mssql" else (
        "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME")
    for col in ("cursor_copied", "cursor_skipped", "cursor_bytes"):
        conn.exec_driver_sql(f"ALTER TABLE lakeshift_partitions {add} {col} BIGINT NOT NULL "
                             "DEFAULT 0")
    # Before version 3 the counters of an unfinished partition also counted keys after its
    # cursor; they are the best there is.
    conn.exec_driver_sql("UPDATE lakeshift_partitions SET cursor_copied = copied, "
                         "cursor_skipped = skipped, cursor_bytes = bytes "
                         "WHERE cursor IS NOT NULL")
    conn.exec_driver_sql(f"ALTER TABLE lakeshift_runs {add} number INTEGER NOT NULL DEFAULT 0")
    conn.exec_driver_sql(f"ALTER TABLE lakeshift_runs {add} heartbeat_at {stamp}")
    conn.exec_driver_sql(f"ALTER TABLE lakeshift_runs {add} lease_expires {stamp}")
    conn.exec_driver_sql(
        "UPDATE lakeshift_runs SET number = (SELECT COUNT(*) FROM lakeshift_runs r "
        "WHERE r.job_id = lakeshift_runs.job_id AND r.id <= lakeshift_runs.id), "
        "heartbeat_at = started_at, lease_expires = started_at")


def _to_4(conn: Any) -> None:
    """Delta sync: the window each partition's pass took, the schedule leases, and the
    destination objects sync deleted."""
    from lakeshift.control.schema import schedules, sync_deletions, sync_windows

    sync_windows.create(conn)
    schedules.create(conn)
    sync_deletions.create(conn)


def _to_monitor(conn: Any) -> None:
    """What the monitor shows is recorded as a run goes: partition runs (stages, peak in
    flight, retries by class), throughput samples, and a run's cancel request."""
    from lakeshift.control.schema import partition_runs, run_samples

    add = "ADD" if conn.dialect.name == "mssql" else "ADD COLUMN"
    conn.exec_driver_sql(f"ALTER TABLE lakeshift_runs {add} cancel_requested INTEGER NOT NULL "
                         "DEFAULT 0")
    partition_runs.create(conn)
    run_samples.create(conn)


def _to_6(conn: Any) -> None:
    """Claims at scale (issue 14): an index on (job_id, state, seq), so that taking the
    next pending partition is an index walk, not a sort of every pending one."""
    from lakeshift.control.schema import partitions

    index = next(i for i in partitions.indexes if i.name == "ix_lakeshift_partitions_claim")
    index.create(conn, checkfirst=True)


def _sync_candidates(conn: Any) -> None:
    """sync --delete records what it finds to delete before it deletes anything."""
    from lakeshift.control.schema import sync_delete_candidates

    sync_delete_candidates.create(conn)


def _to_8(conn: Any) -> None:
    """A run's failures, and a partition's in a run, are found by an index on the run (the
    job's index made every run's failures page read all of the job's)."""
    from lakeshift.control.schema import failures

    for index in failures.indexes:
        if index.name in ("ix_lakeshift_failures_run", "ix_lakeshift_failures_partition_run"):
            index.create(conn, checkfirst=True)


def _to_9(conn: Any) -> None:
    """A failure is no longer current once a later pass of its partition went past its key
    without failing it: the run that did is recorded on the row (``failures --job``)."""
    from sqlalchemy import inspect

    from lakeshift.control.schema import failures

    add = "ADD" if conn.dialect.name == "mssql" else "ADD COLUMN"
    if "cleared_run_id" not in {c["name"] for c in inspect(conn).get_columns(
            "lakeshift_failures")}:
        conn.exec_driver_sql(f"ALTER TABLE lakeshift_failures {add} cleared_run_id INTEGER")
    for index in failures.indexes:
        if index.name == "ix_lakeshift_failures_partition_open":
            index.create(conn, checkfirst=True)
    _clear_passed_before_9(conn)


def _clear_passed_before_9(conn: Any) -> None:
    """Failures that passes made before version 9 already went past are cleared as those
    passes would clear them now (repo_base ``_clear_failures``): else ``failures --job``
    would list them for ever, a succeeded partition being claimed no more.  Only what the
    DB proves: a partition no sync pass took (a ``run`` job's) that succeeded went past
    every failure of its earlier runs (a failed key keeps its partition failed); a
    partition's succeeded sync window (not a keyed one) went past the failures of the runs
    before its own.  Skips on purpose and outside-partitions rows stay, as they do."""
    from sqlalchemy import and_, exists, func, select, update

    from lakeshift.control.schema import failures, partitions, runs, sync_windows

    f, p, w = failures.c, partitions.c, sync_windows.c
    open_ = and_(f.cleared_run_id.is_(None), f.skipped == 0,
                 f.error_kind != "outside-partitions")
    run_only = select(p.id).where(and_(p.state == "succeeded",
                                       ~exists().where(w.partition_id == p.id)))
    # Cleared by the job's last run (the one that did is not recorded): one statement per
    # job, not a look-up per failure row (partition runs have no index by partition).
    for job_id, last_run in conn.execute(select(runs.c.job_id, func.max(runs.c.id))
                                         .group_by(runs.c.job_id)).all():
        conn.execute(update(failures).where(and_(open_, f.job_id == job_id,
                                                 f.partition_id.in_(run_only)))
                     .values(cleared_run_id=last_run))
    window = select(func.max(w.run_id)).where(and_(
        w.partition_id == f.partition_id, w.state == "succeeded")).scalar_subquery()
    conn.execute(update(failures).where(and_(open_, f.run_id < window))
                 .values(cleared_run_id=window))


def _to_10(conn: Any) -> None:
    """A failure of sync --delete's deletion phase is told from a copy's (``deletion``):
    its key is a destination object's, and only a later --delete pass clears it.  Open
    failures are found by key (``ix_lakeshift_failures_open_key``, on PostgreSQL ``…_c``),
    replacing the index by partition alone (kept on SQL Server, which cannot index TEXT)."""
    from sqlalchemy import inspect

    from lakeshift.control.schema import failures

    add = "ADD" if conn.dialect.name == "mssql" else "ADD COLUMN"
    if "deletion" not in {c["name"] for c in inspect(conn).get_columns("lakeshift_failures")}:
        conn.exec_driver_sql(f"ALTER TABLE lakeshift_failures {add} deletion INTEGER NOT NULL "
                             "DEFAULT 0")
    _mark_deletion_failures(conn)
    if conn.dialect.name != "mssql":
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_lakeshift_failures_partition_open")
    for index in failures.indexes:
        if str(index.name).startswith("ix_lakeshift_failures_open_key"):
            index.create(conn, checkfirst=True)


#: How sync --delete's deletion phase words its failures (engine/sync_delete.py), before
#: version 10 recorded them as such.
_DELETION_MESSAGES = ("could not delete from the destination:%",
                      "deleted, then its source reappeared:%",
                      "kept: it was renamed at the source%")


def _mark_deletion_failures(conn: Any) -> None:
    """Rows that sync --delete's deletion phase recorded before version 10 (a --delete
    pass's rows worded as it words them) are marked as such, and current again where a
    pass that deleted nothing cleared them (version 9 let any succeeded window do so)."""
    from sqlalchemy import and_, or_, select, update

    from lakeshift.control.schema import failures, runs

    f = failures.c
    deleting = select(runs.c.id).where(and_(runs.c.settings.like('%"mode": "sync"%'),
                                            runs.c.settings.like('%"delete": true%')))
    conn.execute(update(failures).where(and_(
        f.run_id.in_(deleting), or_(*(f.message.like(m) for m in _DELETION_MESSAGES))))
        .values(deletion=1))
    conn.execute(update(failures).where(and_(
        f.deletion == 1, f.cleared_run_id.is_not(None), f.cleared_run_id.not_in(deleting)))
        .values(cleared_run_id=None))


#: The monitor's and sync --delete's migrations (numbers kept apart while they were built
#: on separate branches).
MONITOR_VERSION = 5
SYNC_CANDIDATES = 7

STEPS: dict[int, Callable[[Any], None]] = {2: _to_2, 3: _to_3, 4: _to_4,
                                           MONITOR_VERSION: _to_monitor, 6: _to_6,
                                           SYNC_CANDIDATES: _sync_candidates, 8: _to_8,
                                           9: _to_9, 10: _to_10}
LATEST = max(STEPS)


def upgrade(conn: Any, version: int) -> None:
    for target in range(version + 1, LATEST + 1):
        STEPS[target](conn)
