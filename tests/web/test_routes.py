"""What the monitor's URLs accept: job names holding "/", ids of any size, action results
as stable codes, and an IPv6 loopback address."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

import lakeshift
from lakeshift.control.repository import ControlDB
from lakeshift.model import PartitionSpec
from lakeshift.web.app import create_app
from tests import servers
from tests.web.conftest import TOKEN, start_monitor

HUGE = "9" * 25  # beyond any 64-bit integer


def _db(tmp_path: Path, job: str = "team/a b%?") -> str:
    """A job with one failed partition and a finished run."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    control = ControlDB(url, create=True)
    try:
        j = control.create_job(job, "az://c/", {}, [])
        control.add_partitions(j, [PartitionSpec(source="s3://b/", prefix="p/",
                                                 rel_base="p/", destination="az://c/")])
        run = control.start_run(j, "far-host:1:a", 1, {})
        control.finish_run(run, "failed", 0, 1, 0, 0)
    finally:
        control.close()
    con = sqlite3.connect(tmp_path / "c.db")
    con.execute("UPDATE lakeshift_partitions SET state = 'failed'")
    con.commit()
    con.close()
    return url


def test_a_job_name_holding_a_slash_is_reachable(tmp_path: Path) -> None:
    name = "team/a b%?"
    client = TestClient(create_app(_db(tmp_path, name), TOKEN))
    jobs = client.get("/")
    assert jobs.status_code == 200
    link = "/jobs/team%2Fa%20b%25%3F"
    assert f'href="{link}"' in jobs.text
    page = client.get(link)
    assert page.status_code == 200 and "team/a b%?" in page.text
    assert client.get(f"/api{link}").json()["job"] == name
    r = client.post(f"{link}/rerun-failed", headers={"X-Lakeshift-Token": TOKEN,
                                                     "Accept": "application/json"})
    assert r.status_code == 200 and r.json()["result"] == 1
    assert r.json()["code"] == "rerun-failed"
    assert client.get("/jobs/team/nope").status_code == 404


@pytest.mark.parametrize("path", [
    f"/runs/{HUGE}", f"/runs/{HUGE}/chart.svg", f"/runs/{HUGE}/failures.csv",
    f"/partition-runs/{HUGE}", f"/api/runs/{HUGE}", f"/api/runs/{HUGE}/failures",
    f"/api/partition-runs/{HUGE}", f"/runs/1/failures.csv?partition_run={HUGE}",
    f"/runs/{2**63}", f"/api/runs/{2**63}"])
def test_an_id_too_large_for_any_row_is_404(tmp_path: Path, path: str) -> None:
    client = TestClient(create_app(_db(tmp_path)), raise_server_exceptions=False)
    r = client.get(path)
    assert r.status_code == 404, (path, r.text)


def test_cancelling_a_huge_run_id_is_404(tmp_path: Path) -> None:
    url = _db(tmp_path)
    client = TestClient(create_app(url, TOKEN), raise_server_exceptions=False)
    r = client.post(f"/runs/{HUGE}/cancel", headers={"X-Lakeshift-Token": TOKEN})
    assert r.status_code == 404
    assert lakeshift.cancel_run(2**70, db=url) is False


def test_actions_come_back_as_codes_and_a_link_cannot_put_text_on_a_page(
        tmp_path: Path) -> None:
    client = TestClient(create_app(_db(tmp_path, "j"), TOKEN))
    r = client.post("/jobs/j/rerun-failed", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/jobs/j?done=rerun-failed&n=1"
    page = client.get(r.headers["location"]).text
    assert "1 failed partition pending again" in page
    r = client.post("/runs/1/cancel", data={"token": TOKEN}, follow_redirects=False)
    assert r.headers["location"] == "/runs/1?done=not-running"
    assert "the run is not running" in client.get(r.headers["location"]).text
    forged = client.get("/jobs/j?message=Your+session+expired&done=log-in-at-evil")
    assert forged.status_code == 200
    assert "session expired" not in forged.text and "evil" not in forged.text
    assert 'class="message"' not in forged.text


def test_the_monitor_serves_on_ipv6_loopback(tmp_path: Path) -> None:
    m = start_monitor(_db(tmp_path, "j"), servers.clean_env(), "--host", "::1")
    try:
        assert m.url.startswith("http://[::1]:")
        r = httpx.get(f"{m.url}/api/jobs")
        assert r.status_code == 200 and r.json()["jobs"][0]["job"] == "j"
        port = m.url.rsplit(":", 1)[1]
        assert httpx.get(f"{m.url}/api/jobs", headers={"Host": f"localhost:{port}"}
                         ).status_code == 200
        assert httpx.get(f"{m.url}/api/jobs", headers={"Host": "attacker.example"}
                         ).status_code == 400
    finally:
        m.stop()


def test_a_cancel_that_came_after_the_last_heartbeat_says_the_run_had_finished(
        tmp_path: Path) -> None:
    # The cancel was recorded (the run was still running), but the run asked no more:
    # its work was done.  The page says so instead of a bare "requested" next to
    # "succeeded".
    url = f"sqlite:///{tmp_path / 'c.db'}"
    control = ControlDB(url, create=True)
    try:
        j = control.create_job("j", "az://c/", {}, [])
        run = control.start_run(j, "far-host:1:a", 1, {}, lease_s=600)
        assert control.request_cancel(run)
        control.finish_run(run, "succeeded", 1, 0, 3, 30)
    finally:
        control.close()
    page = TestClient(create_app(url)).get(f"/runs/{run}").text
    assert "requested too late: the run had already finished its work" in page
