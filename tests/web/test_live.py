"""Which pages say "live": those whose figures can still change by themselves — a running
run, a job with one, a partition run going on, a sync job whose scheduler waits for its next
pass — and no page of what has ended (the badge itself: tests/web/test_browser.py)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lakeshift.control.repository import ControlDB
from lakeshift.model import PartitionSpec
from lakeshift.web.app import create_app


def live(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.text)
    found = re.search(r'<main id="live" data-live="(\w+)">', page.text)
    assert found, path
    return found.group(1)


def _job_of_two(control: ControlDB) -> int:
    """Job "j": two pending partitions, S3 → Azure."""
    job = control.create_job("j", "az://c/", {}, [])
    control.add_partitions(job, [PartitionSpec(source="s3://b/", prefix=f"p{i}/",
                                               rel_base=f"p{i}/", destination="az://c/")
                                 for i in range(2)])
    return job


def test_pages_say_live_while_a_run_goes_on_and_not_once_it_died(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    control = ControlDB(url, create=True)
    client = TestClient(create_app(url))
    try:
        job = _job_of_two(control)
        assert live(client, "/") == live(client, "/jobs/j") == "no"  # pending, no run

        run = control.start_run(job, "far-host:1:a", 1, {}, lease_s=600)
        part = control.claim(job, "far-host:1:a", 1, 600, run_id=run)[0]
        record = control.start_partition_run(run, part["id"], 0.0)
        pages = ["/", "/jobs/j", f"/runs/{run}", f"/partition-runs/{record}"]
        assert [live(client, p) for p in pages] == ["yes"] * 4

        # Its process died: the run's lease lapses, its partition stays 'running' in the DB
        # (until the next run takes it over) — the run is over, and no page says live.
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE lakeshift_runs SET lease_expires = started_at")
        assert client.get(f"/api/runs/{run}").json()["run"]["state"] == "interrupted"
        assert client.get("/api/jobs").json()["jobs"][0]["running"] == 1
        assert [live(client, p) for p in pages] == ["no"] * 4

        # A run that ends as it should.
        again = control.start_run(job, "far-host:1:b", 1, {}, lease_s=600)
        assert live(client, f"/runs/{again}") == live(client, "/jobs/j") == "yes"
        control.finish_run(again, "succeeded", 2, 0, 3, 30)
        assert live(client, f"/runs/{again}") == live(client, "/jobs/j") == "no"
    finally:
        control.close()


def test_a_job_is_live_while_its_run_holds_a_partition_beside_an_interrupted_one(
        tmp_path: Path) -> None:
    """A fleet's run with one worker dead: the partition whose lease lapsed reads
    interrupted, the one a live worker holds running — the job is still live."""
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    control = ControlDB(url, create=True)
    client = TestClient(create_app(url))
    try:
        job = _job_of_two(control)
        run = control.start_run(job, "far-host:1:driver", 1, {}, lease_s=600)
        alive = control.claim(job, "far-host:2:worker", 1, 600, run_id=run)[0]
        dead = control.claim(job, "far-host:3:worker", 1, 600, run_id=run)[0]
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE lakeshift_partitions SET lease_expires = started_at "
                         "WHERE id = ?", (dead["id"],))
        jobs = client.get("/api/jobs").json()["jobs"]
        assert (jobs[0]["running"], jobs[0]["interrupted"]) == (2, 1), jobs
        assert alive["id"] != dead["id"]
        assert live(client, "/") == live(client, "/jobs/j") == "yes"
    finally:
        control.close()


def test_a_sync_job_whose_scheduler_waits_is_live(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    control = ControlDB(url, create=True)
    client = TestClient(create_app(url))
    try:
        job = control.create_job("s", "az://c/", {}, [])
        owner = "far-host:1:a"
        assert control.acquire_schedule(job, owner, "every 15m", 600, "this-host") is None
        control.renew_schedule(job, owner, 600, datetime.now(UTC) + timedelta(minutes=15))
        assert live(client, "/") == live(client, "/jobs/s") == "yes"
        # A scheduler that died leaves its next time behind: once past, not live.
        control.renew_schedule(job, owner, 600, datetime.now(UTC) - timedelta(minutes=1))
        assert live(client, "/") == live(client, "/jobs/s") == "no"
        control.release_schedule(job, owner)  # stopped
        assert live(client, "/") == live(client, "/jobs/s") == "no"
    finally:
        control.close()



@pytest.fixture
def monitored(tmp_path: Path) -> Iterator[tuple[Path, ControlDB, TestClient, int]]:
    """A control DB (its file, its writer) with job "s" of one pending partition, and the
    monitor's app on it."""
    path = tmp_path / "c.db"
    control = ControlDB(f"sqlite:///{path}", create=True)
    job = control.create_job("s", "az://c/", {}, [])
    control.add_partitions(job, [PartitionSpec(source="s3://b/", prefix="p/", rel_base="p/",
                                               destination="az://c/")])
    try:
        yield path, control, TestClient(create_app(f"sqlite:///{path}")), job
    finally:
        control.close()


def test_a_scheduler_whose_lease_lapsed_is_not_live(
        monitored: tuple[Path, ControlDB, TestClient, int]) -> None:
    """A scheduler renews its lease through each pass and each wait; killed (SIGKILL, its
    machine gone), it leaves its next time behind, up to a whole interval away (a day with
    --every 1d).  Once its lease lapsed the job has no scheduler: no page says live, and
    status shows no next pass (it said one would come, and the badge stayed for the day)."""
    import lakeshift

    path, control, client, job = monitored
    url = f"sqlite:///{path}"
    owner = "far-host:1:a"
    assert control.acquire_schedule(job, owner, "every 1d", 600, "this-host") is None
    control.renew_schedule(job, owner, 600, datetime.now(UTC) + timedelta(days=1))
    assert live(client, "/") == live(client, "/jobs/s") == "yes"
    assert lakeshift.status(db=url, job="s").jobs[0].sync_schedule == "every 1d"
    with sqlite3.connect(path) as conn:  # its last renewal was 20 minutes ago
        conn.execute("UPDATE lakeshift_schedules SET lease_expires = ?",
                     ((datetime.now(UTC) - timedelta(minutes=10)).replace(tzinfo=None),))
    assert live(client, "/") == live(client, "/jobs/s") == "no"
    st = lakeshift.status(db=url, job="s").jobs[0]
    assert st.sync_schedule is None and st.next_sync_at is None
    # Another scheduler takes it over: live again.
    assert control.acquire_schedule(job, "far-host:2:b", "every 1d", 600, "h") is None
    control.renew_schedule(job, "far-host:2:b", 600, datetime.now(UTC) + timedelta(days=1))
    assert live(client, "/jobs/s") == "yes"


def test_the_jobs_list_is_live_while_a_sync_pass_deletes(
        monitored: tuple[Path, ControlDB, TestClient, int]) -> None:
    """A sync --delete pass deletes once every partition is listed and done: its run is
    running, its job holds no partition.  The job's page said live, the jobs list did not
    (it read a job's runs only when it held a partition); the list has the job's last sync
    pass at hand."""
    path, control, client, job = monitored
    run = control.start_run(job, "far-host:1:a", 1, {"mode": "sync"}, lease_s=600)
    assert client.get("/api/jobs").json()["jobs"][0]["running"] == 0
    assert live(client, "/jobs/s") == live(client, "/") == live(client, f"/runs/{run}") \
        == "yes"
    with sqlite3.connect(path) as conn:  # its process died
        conn.execute("UPDATE lakeshift_runs SET lease_expires = started_at")
    assert live(client, "/jobs/s") == live(client, "/") == "no"
