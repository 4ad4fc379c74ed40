"""The monitor only reads the control DB: it never writes, never migrates, and takes no
SQLite write lock (``lakeshift.reading_only``, ``ControlDB(read_only=True)``)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import lakeshift
from lakeshift.control.migrations import LATEST, MONITOR_VERSION
from lakeshift.control.repository import ControlDB
from lakeshift.model import PartitionSpec
from lakeshift.web.app import create_app
from tests.web.test_records import as_before_the_monitor


def _db_with_a_dead_run(tmp_path: Path) -> tuple[str, int, int]:
    """A job whose run's process died: its lease expired, a partition run still says
    running.  Returns (url, run id, partition run id)."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    control = ControlDB(url, create=True)
    try:
        job = control.create_job("j", "az://c/", {}, [])
        control.add_partitions(job, [PartitionSpec(
            source="s3://b/", prefix="p/", rel_base="p/", destination="az://c/")])
        run = control.start_run(job, "far-host:1:a", 1, {}, lease_s=600)
        part = control.partitions(job)[0]["id"]
        pr = control.start_partition_run(run, part, 0.0)
    finally:
        control.close()
    con = sqlite3.connect(tmp_path / "c.db")
    con.execute("UPDATE lakeshift_runs SET heartbeat_at = '2026-01-01 00:00:05.000000', "
                "started_at = '2026-01-01 00:00:00.000000', "
                "lease_expires = '2026-01-01 00:01:05.000000'")
    con.execute("UPDATE lakeshift_partition_runs SET started_at = "
                "'2026-01-01 00:00:01.000000'")
    con.commit()
    con.close()
    return url, run, pr


def _states(path: Path) -> list[tuple[str, str | None]]:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT state, finished_at FROM lakeshift_runs UNION ALL "
                           "SELECT state, finished_at FROM lakeshift_partition_runs").fetchall()
    finally:
        con.close()


def test_reading_only_shows_a_dead_run_ended_without_writing_it(tmp_path: Path) -> None:
    url, run, pr = _db_with_a_dead_run(tmp_path)
    before = _states(tmp_path / "c.db")
    with lakeshift.reading_only():
        detail = lakeshift.run_detail(run, db=url)
        job = lakeshift.status(db=url, job="j").jobs[0]
        one = lakeshift.partition_run(pr, db=url)
        lakeshift.metrics(db=url)
    assert _states(tmp_path / "c.db") == before  # nothing closed, nothing written
    assert detail is not None and detail.run.state == "interrupted"
    assert job.runs[0].state == "interrupted"
    # The dead run and its partition end at the run's last heartbeat, not "now".
    assert detail.run.finished_at is not None and detail.duration_s == 5.0
    assert one is not None and one.state == "interrupted"
    assert one.finished_at == detail.run.finished_at and one.duration_s == 4.0


def test_a_partition_run_of_a_closed_dead_run_ends_at_its_heartbeat(tmp_path: Path) -> None:
    url, run, pr = _db_with_a_dead_run(tmp_path)
    detail = lakeshift.run_detail(run, db=url)  # a writer: closes the dead run
    assert detail is not None and detail.run.state == "interrupted"
    one = lakeshift.partition_run(pr, db=url)
    assert one is not None and one.state == "interrupted" and one.duration_s == 4.0


def test_a_read_only_control_db_refuses_every_write(tmp_path: Path) -> None:
    url, _, _ = _db_with_a_dead_run(tmp_path)
    control = ControlDB(url, read_only=True)
    try:
        with pytest.raises(lakeshift.UsageError, match=r"readonly|read-only"):
            control.create_job("k", "az://c/", {}, [])
        assert control.close_dead_runs() == 0
    finally:
        control.close()
    with lakeshift.reading_only(), pytest.raises(lakeshift.UsageError, match="no control DB"):
        lakeshift.status(db=f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()


def test_reading_takes_no_write_lock(tmp_path: Path) -> None:
    url, _, _ = _db_with_a_dead_run(tmp_path)
    writer = sqlite3.connect(tmp_path / "c.db", isolation_level=None, timeout=30)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")  # a run in the middle of a claim
    writer.execute("UPDATE lakeshift_jobs SET destination = 'az://c/'")
    try:
        result: list[object] = []
        reader = threading.Thread(target=lambda: result.append(
            _read_status(url)), daemon=True)
        reader.start()
        reader.join(5)  # a BEGIN IMMEDIATE reader would wait 10 s for the lock
        assert result and result[0] == ["j"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def _read_status(url: str) -> list[str]:
    with lakeshift.reading_only():
        return [j.job for j in lakeshift.status(db=url).jobs]


def _outdated(tmp_path: Path) -> str:
    """A DB from before the monitor's migration (as test_records builds one)."""
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    control = ControlDB(url, create=True)
    control.create_job("old", "az://c/", {}, [])
    control.close()
    as_before_the_monitor(path)
    return url


def _version(url: str) -> int:
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return int(con.execute("SELECT version FROM lakeshift_schema").fetchone()[0])
    finally:
        con.close()


def test_an_outdated_db_is_not_migrated_by_a_reader(tmp_path: Path) -> None:
    url = _outdated(tmp_path)
    with lakeshift.reading_only(), pytest.raises(lakeshift.SchemaOutdated) as e:
        lakeshift.status(db=url)
    assert "lakeshift status --db" in str(e.value) and f"({LATEST})" in str(e.value)
    assert _version(url) == MONITOR_VERSION - 1
    lakeshift.status(db=url)  # the command named upgrades it
    assert _version(url) == LATEST


def test_the_monitor_over_an_outdated_db_is_a_503_page_naming_the_fix(
        tmp_path: Path) -> None:
    url = _outdated(tmp_path)
    client = TestClient(create_app(url))
    r = client.get("/")
    assert r.status_code == 503 and "Control DB schema outdated" in r.text
    assert "lakeshift status --db" in r.text and 'data-code="schema-outdated"' in r.text
    j = client.get("/api/jobs")
    assert j.status_code == 503 and j.json()["error"]["code"] == "schema-outdated"
    assert client.get("/metrics").status_code == 200  # lakeshift_control_db_up 0
    assert _version(url) == MONITOR_VERSION - 1


def test_postgresql_read_only_sessions_read_and_refuse_writes(pg_url: str) -> None:
    control = ControlDB(pg_url, create=True)
    try:
        job = control.create_job("pg", "az://c/", {}, [])
        run = control.start_run(job, "far-host:1:a", 1, {}, lease_s=600)
    finally:
        control.close()
    with lakeshift.reading_only():
        assert [j.job for j in lakeshift.status(db=pg_url).jobs] == ["pg"]
        detail = lakeshift.run_detail(run, db=pg_url)
        assert detail is not None and detail.run.state == "running"
    reader = ControlDB(pg_url, read_only=True)
    try:
        with pytest.raises(lakeshift.UsageError, match="read-only"):
            reader.create_job("other", "az://c/", {}, [])
    finally:
        reader.close()
    import psycopg

    with psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"),
                         autocommit=True) as conn:
        conn.execute(f"UPDATE lakeshift_schema SET version = {LATEST - 1}")
    with lakeshift.reading_only(), pytest.raises(lakeshift.SchemaOutdated):
        lakeshift.status(db=pg_url)


def test_the_monitor_starts_over_an_outdated_db_warns_and_leaves_it_as_it_is(
        tmp_path: Path) -> None:
    import httpx

    from tests import servers
    from tests.web.conftest import start_monitor

    url = _outdated(tmp_path)
    m = start_monitor(url, servers.clean_env())
    try:
        r = httpx.get(f"{m.url}/jobs/old")
        assert r.status_code == 503 and "lakeshift status --db" in r.text
    finally:
        m.stop()
    assert m.proc.stderr is not None
    err = m.proc.stderr.read()
    assert "warning:" in err and "older than this lakeshift" in err and "Traceback" not in err
    assert _version(url) == MONITOR_VERSION - 1
