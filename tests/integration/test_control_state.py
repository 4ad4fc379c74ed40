"""Run state in the control DB on SQLite and PostgreSQL: leases on the DB's clock, runs
numbered per job and closed when their process died, records saved with the cursor,
counters that restart from the cursor, deleting and resetting a job, upgrading a version-2
DB."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, Table, create_engine, select

from lakeshift.control import migrations, repository
from lakeshift.control.repository import ControlDB, PartitionStats, Records
from lakeshift.control.schema import metadata
from lakeshift.engine.events import SourceDeleted
from lakeshift.errors import UsageError
from lakeshift.model import Failure, PartitionSpec, Rename

HOST = socket.gethostname()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return (f"sqlite:///{tmp_path}/c.db" if request.param == "sqlite"
            else str(request.getfixturevalue("pg_url")))


@pytest.fixture
def control(url: str) -> ControlDB:
    db = ControlDB(url, create=True)
    yield db  # type: ignore[misc]
    db.close()


def _job(control: ControlDB, n: int, name: str = "j") -> int:
    return control.create_job(name, "az://c/", {}, [
        PartitionSpec("s3://b/", f"p{i}/", "", "az://c/") for i in range(n)])


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_leases_come_from_the_db_clock_not_the_clients(
        control: ControlDB, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _job(control, 1)
    real = repository.utcnow
    # Client A's clock is an hour behind: its lease must still run 60 s on the DB's clock.
    monkeypatch.setattr(repository, "utcnow", lambda: real() - timedelta(hours=1),
                        raising=False)
    [a] = control.claim(job, "host-a:1:x", 1, lease_s=60)
    assert control.heartbeat(a["id"], "host-a:1:x", 60, "p0/k", PartitionStats(listed=1))
    monkeypatch.setattr(repository, "utcnow", real, raising=False)
    assert control.claim(job, "host-b:2:y", 1, lease_s=60) == []
    # A lease given back on the DB's clock lapses for every client at once.
    assert control.heartbeat(a["id"], "host-a:1:x", -1, "p0/k", PartitionStats(listed=1))
    [b] = control.claim(job, "host-b:2:y", 1, lease_s=60)
    assert b["id"] == a["id"] and b["attempts"] == 2


def test_runs_are_numbered_per_job(control: ControlDB) -> None:
    j1, j2 = _job(control, 1, "raw"), _job(control, 1, "curated")
    for _ in range(3):
        control.start_run(j1, f"{HOST}:{os.getpid()}:a", 1, {})
    control.start_run(j2, f"{HOST}:{os.getpid()}:b", 1, {})
    assert [r["number"] for r in control.runs(j1)] == [3, 2, 1]
    assert [r["number"] for r in control.runs(j2)] == [1]


def test_a_run_whose_process_died_is_closed_as_interrupted(control: ControlDB) -> None:
    job = _job(control, 1)
    dead = control.start_run(job, f"{HOST}:{_dead_pid()}:x", 1, {})
    control.heartbeat_run(dead, 60, 1, 0, 7, 700)
    far = control.start_run(job, "another-host:1:y", 1, {}, lease_s=-1)  # lease lapsed
    live = control.start_run(job, f"{HOST}:{os.getpid()}:z", 1, {})
    runs = {r["id"]: r for r in control.runs(job)}
    assert runs[dead]["state"] == "interrupted"
    assert (runs[dead]["copied"], runs[dead]["bytes"], runs[dead]["partitions_done"]) == (
        7, 700, 1)
    assert runs[dead]["finished_at"] == runs[dead]["heartbeat_at"]
    assert runs[far]["state"] == "interrupted" and runs[far]["finished_at"] is not None
    assert runs[live]["state"] == "running" and runs[live]["finished_at"] is None


def test_heartbeat_saves_records_with_the_cursor_and_nothing_once_the_lease_is_lost(
        control: ControlDB) -> None:
    job = _job(control, 1)
    [p] = control.claim(job, "h:1:a", 1, lease_s=60)
    run = control.start_run(job, "h:1:a", 1, {})
    recs = Records(job, run, [Failure("p0/a", "invalid-name", "backslash", 1, True)],
                   [Rename("p0/b", "b%5C", "backslash")],
                   [SourceDeleted("p0/c", "c", "00" * 16),
                    SourceDeleted("p0/d", "d", "", kept="no MD5")])
    assert control.heartbeat(p["id"], "h:1:a", 60, "p0/c", PartitionStats(listed=3),
                             PartitionStats(listed=3, skipped=1, copied=2), recs)
    [f] = list(control.failures(job))
    assert (f["object_key"], f["skipped"], f["run_id"]) == ("p0/a", 1, run)
    assert [r["destination_key"] for r in control.renames(job)] == ["b%5C"]
    # The same rename met again (by the rerun of a run that died) is not recorded twice.
    assert control.heartbeat(p["id"], "h:1:a", 60, "p0/e", PartitionStats(listed=4), None,
                             Records(job, run, renames=[Rename("p0/b", "b%5C", "backslash"),
                                                        Rename("p0/e", "e%5C", "backslash")]))
    assert [r["destination_key"] for r in control.renames(job)] == ["b%5C", "e%5C"]
    other = Records(job, run, [Failure("p0/z", "error", "x", 1)])
    assert not control.heartbeat(p["id"], "h:2:b", 60, "p0/z", PartitionStats(), None, other)
    assert [x["object_key"] for x in control.failures(job)] == ["p0/a"]
    with control.engine.connect() as conn:
        from lakeshift.control.schema import deletions
        assert [r.source_key for r in conn.execute(select(deletions))] == ["p0/c"]


def test_a_partition_taken_over_restarts_from_the_counters_at_its_cursor(
        control: ControlDB) -> None:
    job = _job(control, 1)
    [p] = control.claim(job, "h:1:a", 1, lease_s=60)
    # 9 copied, of which 5 at or before the cursor: the other 4 will be listed again.
    assert control.heartbeat(p["id"], "h:1:a", -1, "p0/k5",
                             PartitionStats(listed=9, copied=9, bytes=900),
                             PartitionStats(listed=5, copied=5, bytes=500))
    [again] = control.claim(job, "h:2:b", 1, lease_s=60)
    assert (again["cursor"], again["listed"], again["copied"], again["bytes"]) == (
        "p0/k5", 5, 5, 500)


def test_delete_job_refuses_while_a_live_process_holds_it(control: ControlDB) -> None:
    job = _job(control, 2)
    keep = _job(control, 1, "other")
    me = f"{HOST}:{os.getpid()}:a"
    [p, _] = control.claim(job, me, 2, lease_s=60)
    control.start_run(job, me, 1, {})
    control.add_failures(job, p["id"], None, [Failure("p0/a", "error", "x", 1)])
    with pytest.raises(UsageError, match=r"job 'j' is being run .*stop it or wait"):
        control.delete_job("j")
    with pytest.raises(UsageError, match="--force"):
        control.reset_job("j")
    # There is no override: delete_job takes no force.
    with pytest.raises(TypeError):
        control.delete_job("j", force=True)  # type: ignore[call-arg]
    assert [j.name for j in control.jobs()] == ["j", "other"]
    control.reset_job("j", force=True)  # the partitions' leases are gone; the run is not
    with pytest.raises(UsageError, match=r"job 'j' is live \(a run of it is followed by "
                                         rf"process {os.getpid()} on "):
        control.delete_job("j")
    with control.engine.begin() as conn:
        from lakeshift.control.schema import runs
        conn.execute(runs.update().values(state="succeeded"))
    control.delete_job("j")
    assert [j.name for j in control.jobs()] == ["other"]
    assert control.partitions(job) == [] and control.runs(job) == []
    assert list(control.failures(job)) == []
    assert len(control.partitions(keep)) == 1
    with pytest.raises(UsageError, match="no job 'j'"):
        control.delete_job("j")


def test_delete_job_refuses_while_a_sync_schedule_is_followed(control: ControlDB) -> None:
    job = _job(control, 1)
    me = f"{HOST}:{os.getpid()}:s"
    assert control.acquire_schedule(job, me, "every 15m", 600, HOST) is None
    with pytest.raises(UsageError, match=r"job 'j' is live \(its sync schedule .*stop it"):
        control.delete_job("j")
    control.release_schedule(job, me)
    control.delete_job("j")
    assert control.jobs() == []


def test_delete_job_goes_ahead_when_the_holders_are_dead(control: ControlDB) -> None:
    job = _job(control, 1)
    dead = f"{HOST}:{_dead_pid()}:a"
    control.claim(job, dead, 1, lease_s=60)
    control.start_run(job, dead, 1, {})
    assert control.acquire_schedule(job, dead, "every 15m", 600, HOST) is None
    control.delete_job("j")
    assert control.jobs() == []


def test_reset_job_puts_every_partition_back_to_the_start(control: ControlDB) -> None:
    job = _job(control, 2)
    [p0, p1] = control.claim(job, "h:1:a", 2, lease_s=60)
    control.finish(p0["id"], "h:1:a", "succeeded", "p0/z", PartitionStats(3, 3, 0, 0, 30),
                   None, 1.0, PartitionStats(3, 3, 0, 0, 30))
    control.finish(p1["id"], "h:1:a", "failed", "p1/k", PartitionStats(2, 1, 0, 1, 10),
                   "1 objects failed", 1.0, PartitionStats(1, 1, 0, 0, 10),
                   Records(job, None, [Failure("p1/m", "error", "x", 3)]))
    assert control.reset_job("j") == 2
    rows = control.partitions(job)
    assert all((r["state"], r["cursor"], r["copied"], r["attempts"], r["last_error"])
               == ("pending", None, 0, 0, None) for r in rows)
    assert list(control.failures(job)) == []
    claimed = control.claim(job, "h:2:b", 2, lease_s=60)
    assert [(r["cursor"], r["listed"], r["copied"]) for r in claimed] == [(None, 0, 0)] * 2


#: Columns added by version 3 (and by the monitor's version, migrations.MONITOR_VERSION,
#: and version 9).
V3 = {"lakeshift_partitions": {"cursor_copied", "cursor_skipped", "cursor_bytes"},
      "lakeshift_runs": {"number", "heartbeat_at", "lease_expires", "cancel_requested"},
      "lakeshift_failures": {"cleared_run_id"}}
#: Tables added after version 2 (sync's, then the monitor's, then sync --delete's).
NEWER_TABLES = {"lakeshift_sync_windows", "lakeshift_schedules", "lakeshift_sync_deletions",
                "lakeshift_partition_runs", "lakeshift_run_samples",
                "lakeshift_sync_delete_candidates"}


def test_a_version_2_db_is_upgraded(url: str) -> None:
    old = MetaData()
    for t in metadata.sorted_tables:
        if t.name in NEWER_TABLES:
            continue
        cols: list[Column[object]] = [c._copy() for c in t.columns
                                      if c.name not in V3.get(t.name, set())]
        Table(t.name, old, *cols)
    u = url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(u)
    with engine.begin() as conn:
        old.create_all(conn)
        t = old.tables
        conn.execute(t["lakeshift_schema"].insert().values(version=2))
        now = repository.utcnow()
        for name in ("a", "b"):
            conn.execute(t["lakeshift_jobs"].insert().values(
                name=name, destination="az://c/", options="{}", created_at=now))
        conn.execute(t["lakeshift_partitions"].insert().values(
            job_id=1, seq=1, source="s3://b/", prefix="p/", rel_base="", destination="az://c/",
            state="pending", cursor="p/k", attempts=1, listed=4, copied=3, skipped=1,
            failed_objects=0, bytes=30))
        for job_id in (1, 2, 1, 1):
            conn.execute(t["lakeshift_runs"].insert().values(
                job_id=job_id, owner="h:1:a", state="succeeded", batch_count=1, settings="{}",
                partitions_done=1, partitions_failed=0, copied=1, bytes=1, started_at=now,
                finished_at=now))
        # A run of the old version whose process died: closed by the next run or status.
        conn.execute(t["lakeshift_runs"].insert().values(
            job_id=2, owner="far-host:1:a", state="running", batch_count=1, settings="{}",
            partitions_done=0, partitions_failed=0, copied=0, bytes=0, started_at=now))
    engine.dispose()
    control = ControlDB(url)
    try:
        with control.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version FROM lakeshift_schema").scalar()
            assert version == migrations.LATEST
        assert [r["number"] for r in control.runs(1)] == [3, 2, 1]
        assert [(r["number"], r["state"]) for r in control.runs(2)] == [
            (2, "interrupted"), (1, "succeeded")]
        [p] = control.partitions(1)
        assert (p["cursor_copied"], p["cursor_skipped"], p["cursor_bytes"]) == (3, 1, 30)
        assert control.start_run(1, "h:1:b", 1, {}) and control.runs(1)[0]["number"] == 4
    finally:
        control.close()


def test_candidates_under_a_failed_key_are_dropped_and_only_those(control: ControlDB) -> None:
    job = _job(control, 1)
    [p] = control.claim(job, "h:1:a", 1, lease_s=60)
    run = control.start_run(job, "h:1:a", 1, {})
    control.add_failures(job, p["id"], run, [Failure(k, "error", "x", 1)
                                             for k in ("a/", "a/b", "c/d/", "z")])
    control.add_delete_candidates(run, p["id"], [(k, k, 1) for k in (
        "a/x", "a/b/y", "a0", "c/d/e", "c/e", "b", "z/1", "zz")])
    assert control.drop_delete_candidates_under_failures(run) == 5
    assert sorted(r["source_key"] for r in control.delete_candidates(run, 0, 100)) == [
        "a0", "b", "c/e"]


def test_replan_force_is_refused_under_a_live_run(control: ControlDB) -> None:
    # --force overrides partition leases; a live run would go on claiming the new plan's
    # partitions (SQLite reuses the ids) under a run row that is gone.
    job = _job(control, 1)
    me = f"{HOST}:{os.getpid()}:a"
    control.claim(job, me, 1, lease_s=60)
    run = control.start_run(job, me, 1, {})
    with pytest.raises(UsageError, match=r"^job 'j' has a live run \(process "
                                         rf"{os.getpid()} on .*\): --force cannot replan"):
        control.replace_job("j", force=True)
    assert [j.name for j in control.jobs()] == ["j"]
    control.finish_run(run, "interrupted", 0, 0, 0, 0)
    control.replace_job("j", force=True)  # the run ended; its partition lease is overridden
    assert control.jobs() == []


FAILURE_INDEXES = ("ix_lakeshift_failures_run", "ix_lakeshift_failures_partition_run")


def test_a_runs_failures_are_read_through_its_index_after_the_upgrade(url: str) -> None:
    """Version 8: a run's failures (the monitor's page, count and CSV, sync --delete's
    holds) and a partition's in a run are found by an index on the run, not by reading all
    of the job's failures.  A version-7 DB gets the indexes when opened."""
    from sqlalchemy import event, inspect

    control = ControlDB(url, create=True)
    try:
        job = _job(control, 2)
        parts = [p["id"] for p in control.partitions(job)]
        runs = [control.start_run(job, "h:1:a", 1, {}) for _ in range(2)]
        for run in runs:
            for p in parts:
                control.add_failures(job, p, run, [Failure(f"{run}-{p}-{i:03d}", "error",
                                                           "x", 1) for i in range(50)])
            control.finish_run(run, "failed", 0, 2, 0, 0)
        with control.engine.begin() as conn:
            for name in FAILURE_INDEXES:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
            conn.exec_driver_sql("UPDATE lakeshift_schema SET version = 7")
    finally:
        control.close()

    control = ControlDB(url)  # opening it upgrades it
    try:
        with control.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version FROM lakeshift_schema").scalar() == \
                migrations.LATEST == 10
            have = {i["name"] for i in inspect(conn).get_indexes("lakeshift_failures")}
        assert set(FAILURE_INDEXES) <= have
        if control.engine.dialect.name == "postgresql":
            with control.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE lakeshift_failures")
        seen: list[tuple[str, object]] = []

        def note(conn: object, cursor: object, statement: str, params: object,
                 *rest: object) -> None:
            if "lakeshift_failures" in statement and not statement.startswith("EXPLAIN"):
                seen.append((statement, params))

        event.listen(control.engine, "before_cursor_execute", note)
        run, p = runs[1], parts[1]
        page = control.failures_page(job, run, offset=60, limit=10)
        assert [r["object_key"] for r in page] == [f"{run}-{p}-{i:03d}" for i in range(10, 20)]
        assert control.count_failures(job, run) == 100
        assert len(control.failures_page(job, run, p, offset=45, limit=10)) == 5
        assert control.count_failures(job, run, p) == 50
        assert len(control.failures_page(job, run, after_id=1, limit=10)) == 10
        event.remove(control.engine, "before_cursor_execute", note)
        assert len(seen) == 5
        for statement, params in seen:
            with control.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                    plan = " ".join(r[0] for r in conn.exec_driver_sql(
                        "EXPLAIN " + statement, params))  # type: ignore[arg-type]
                else:
                    plan = " ".join(str(r[3]) for r in conn.exec_driver_sql(
                        "EXPLAIN QUERY PLAN " + statement, params))  # type: ignore[arg-type]
            assert "ix_lakeshift_failures_run" in plan or \
                "ix_lakeshift_failures_partition_run" in plan, (statement, plan)
            assert "ix_lakeshift_failures_job" not in plan, (statement, plan)
    finally:
        control.close()


def test_processes_opening_an_old_db_at_once_all_upgrade_it(url: str) -> None:
    """Several runs (or Dask workers) of a new lakeshift started at once on a version-8 DB:
    one upgrades it, the others wait for it and find it upgraded, none fails on a column
    or index the other just added."""
    import threading

    ControlDB(url, create=True).close()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for index in ("ix_lakeshift_failures_open_key", "ix_lakeshift_failures_open_key_c"):
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")  # version 10's
        conn.exec_driver_sql("ALTER TABLE lakeshift_failures DROP COLUMN deletion")
        conn.exec_driver_sql("ALTER TABLE lakeshift_failures DROP COLUMN cleared_run_id")
        conn.exec_driver_sql("UPDATE lakeshift_schema SET version = 8")
    engine.dispose()
    start, errors = threading.Barrier(4), []

    def open_it() -> None:
        start.wait()
        try:
            ControlDB(url).close()
        except Exception as e:  # what a process would die of
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    control = ControlDB(url)
    try:
        with control.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version FROM lakeshift_schema").scalar() == \
                migrations.LATEST
    finally:
        control.close()
