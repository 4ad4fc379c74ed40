"""What the monitor and ``status`` say of runs that have ended: partitions a killed run left
``running`` read as interrupted (and that the next run takes them over), and a cancelled
run says it was cancelled and when."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import lakeshift
from lakeshift.cli.status_view import print_status
from lakeshift.control.repository import ControlDB
from lakeshift.model import PartitionSpec
from lakeshift.web.app import create_app

READS = "interrupted (lease expired; the next run takes it over)"


@dataclass
class Killed:
    path: Path
    url: str
    control: ControlDB
    client: TestClient
    job: int
    run: int
    records: list[int]


@pytest.fixture
def killed(tmp_path: Path) -> Iterator[Killed]:
    """Job "j" of 3 partitions; a run (lease 10 s) claimed 2 of them, then its process was
    killed (kill -9): its lease lapsed, its partitions stay 'running' in the DB."""
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    control = ControlDB(url, create=True)
    job = control.create_job("j", "az://c/", {}, [])
    control.add_partitions(job, [PartitionSpec(source="s3://b/", prefix=f"p{i}/",
                                               rel_base=f"p{i}/", destination="az://c/")
                                 for i in range(3)])
    run = control.start_run(job, "far-host:1:a", 2, {}, lease_s=10)
    parts = control.claim(job, "far-host:1:a", 2, 10, run_id=run)
    records = [control.start_partition_run(run, p["id"], 0.0) for p in parts]
    try:
        yield Killed(path, url, control, TestClient(create_app(url)), job, run, records)
    finally:
        control.close()


def _kill(k: Killed) -> None:
    with sqlite3.connect(k.path) as conn:  # its leases lapsed (a run's and its partitions')
        conn.execute("UPDATE lakeshift_runs SET lease_expires = started_at")
        conn.execute("UPDATE lakeshift_partitions SET lease_expires = started_at "
                     "WHERE state = 'running'")


def _cells(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td class="state">([^<]*)</td>', body)


def test_partitions_a_dead_run_left_read_as_interrupted_everywhere(
        killed: Killed, capsys: pytest.CaptureFixture[str]) -> None:
    k = killed
    # While the run lives its partitions read as running.
    st = lakeshift.status(db=k.url, job="j").jobs[0]
    assert [p.reads for p in st.partition_table] == ["running", "running", "pending"]
    assert st.running == 2 and st.interrupted == 0
    assert _cells(k.client.get("/jobs/j").text, "partitions") == [
        "running", "running", "pending"]

    _kill(k)
    st = lakeshift.status(db=k.url, job="j").jobs[0]
    # The stored state is kept; how it reads says what it is.
    assert [p.state for p in st.partition_table] == ["running", "running", "pending"]
    assert [p.reads for p in st.partition_table] == [READS, READS, "pending"]
    assert st.running == 2 and st.interrupted == 2
    assert lakeshift.status(db=k.url).jobs[0].interrupted == 2  # the jobs list too

    # status, text and --json.
    print_status(lakeshift.status(db=k.url, job="j"), "j", False)
    text = capsys.readouterr().out
    assert ("0 succeeded, 0 failed, 2 interrupted (lease expired; the next run takes them "
            "over), 1 pending") in text
    assert "2 running" not in text
    assert text.count("interrupted (lease expired; the next run takes it over)") == 2
    print_status(lakeshift.status(db=k.url, job="j"), "j", True)
    data = json.loads(capsys.readouterr().out)["jobs"][0]
    assert data["running"] == 2 and data["interrupted"] == 2
    assert [(p["state"], p["reads"]) for p in data["partition_table"]] == [
        ("running", READS), ("running", READS), ("pending", "pending")]

    # The monitor: /api, the jobs list, the job page, the run page, partition-run pages.
    api = k.client.get("/api/jobs/j").json()
    assert api["interrupted"] == 2
    assert [p["reads"] for p in api["partition_table"]] == [READS, READS, "pending"]
    assert k.client.get("/api/jobs").json()["jobs"][0]["interrupted"] == 2
    jobs = k.client.get("/").text
    assert "+ 2 interrupted" in jobs
    page = k.client.get("/jobs/j").text
    assert _cells(page, "partitions") == [READS, READS, "pending"]
    assert "2 interrupted (lease expired; the next run takes them over)" in page
    run_page = k.client.get(f"/runs/{k.run}").text
    assert _cells(run_page, "partition-runs") == ["interrupted", "interrupted"]
    assert 'id="run-interrupted"' in run_page
    pr_page = k.client.get(f"/partition-runs/{k.records[0]}").text
    assert 'id="pr-interrupted"' in pr_page and "takes the partition over" in pr_page

    # The next run takes them over: running again, as they read.
    nxt = k.control.start_run(k.job, "far-host:2:b", 2, {}, lease_s=600)
    assert len(k.control.claim(k.job, "far-host:2:b", 2, 600, run_id=nxt)) == 2
    st = lakeshift.status(db=k.url, job="j").jobs[0]
    assert [p.reads for p in st.partition_table] == ["running", "running", "pending"]
    assert st.interrupted == 0
    assert "interrupted" not in k.client.get("/").text


def test_a_cancelled_run_says_cancelled_and_when_not_requested(killed: Killed) -> None:
    k = killed
    assert k.control.request_cancel(k.run)
    asked = k.client.get(f"/runs/{k.run}?done=cancel-requested").text
    assert "cancel requested: the run stops at its next heartbeat" in asked
    assert "requested: the run stops at its next heartbeat" in asked.split(
        'id="run-cancel">', 1)[1]

    k.control.finish_run(k.run, "cancelled", 0, 0, 0, 0)
    at = lakeshift.run_detail(k.run, db=k.url).run.finished_at  # type: ignore[union-attr]
    assert at is not None
    when = at.strftime("%Y-%m-%d %H:%M:%SZ")
    ended = k.client.get(f"/runs/{k.run}?done=cancel-requested").text
    assert f'id="run-cancel">cancelled at {when}</dd>' in ended
    assert f"the run was cancelled at {when}" in ended
    assert "cancel requested" not in ended and ">requested" not in ended


def test_a_cancel_the_run_ended_before_says_how_it_ended(killed: Killed) -> None:
    k = killed
    assert k.control.request_cancel(k.run)
    _kill(k)  # died before its next heartbeat read the request
    page = k.client.get(f"/runs/{k.run}?done=cancel-requested").text
    assert "requested, but the run ended interrupted at" in page
    assert "the run ended (interrupted) at" in page
    assert "cancel requested: the run stops" not in page
