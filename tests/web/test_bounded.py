"""However long a run, what the monitor reads and sends is bounded: at most MAX_SAMPLES
chart points, partition runs and failures a page at a time, the failure CSV streamed a page
of rows at a time (and safe to open in a spreadsheet)."""

from __future__ import annotations

import csv
import io
import itertools
import sqlite3

import pytest
from starlette.testclient import TestClient

import lakeshift
from lakeshift.control.repository import ControlDB
from lakeshift.model import Failure, PartitionSpec
from lakeshift.web.app import create_app

PARTS, SAMPLES = 250, 1234
#: Keys a spreadsheet would run as formulas if the CSV held them as they are.
FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-3", "@SUM(A1)", "\tx"]


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """A run of PARTS partitions with SAMPLES heartbeats and 2,600 failures (2,595 in the
    first partition, then the FORMULAS keys in the second)."""
    path = tmp_path_factory.mktemp("bounded") / "c.db"
    url = f"sqlite:///{path}"
    control = ControlDB(url, create=True)
    try:
        job = control.create_job("long", "az://c/", {}, [])
        control.add_partitions(job, [PartitionSpec(
            source="s3://b/", prefix=f"p{i:04d}/", rel_base=f"p{i:04d}/",
            destination="az://c/") for i in range(PARTS)])
        run = control.start_run(job, "far-host:1:a", 4, {})
        parts = [p["id"] for p in control.partitions(job)]
        for p in parts:
            control.start_partition_run(run, p, 0.0)
        control.add_failures(job, parts[0], run, [
            Failure(f"k{i:05d}", "transient", "reset", 3) for i in range(2595)])
        control.add_failures(job, parts[1], run, [
            Failure(k, "invalid_name", "=cmd|' /C calc'!A0", 1) for k in FORMULAS])
        control.finish_run(run, "failed", 0, PARTS, 0, 0)
    finally:
        control.close()
    con = sqlite3.connect(path)
    con.execute("DELETE FROM lakeshift_run_samples")
    con.executemany("INSERT INTO lakeshift_run_samples (run_id, at, copied, bytes, in_flight) "
                    "VALUES (?, ?, ?, ?, 0)", [
                        (run, f"2026-01-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
                         ".000000", i, i * 1000) for i in range(SAMPLES)])
    con.commit()
    con.close()
    return url, run


def test_the_chart_gets_at_most_max_samples_evenly_with_first_and_last(
        long_run: tuple[str, int]) -> None:
    url, run = long_run
    with lakeshift.reading_only():
        d = lakeshift.run_detail(run, db=url, limit=0)
    assert d is not None and lakeshift.MAX_SAMPLES == 501
    assert 400 < len(d.samples) <= lakeshift.MAX_SAMPLES
    copied = [s.copied for s in d.samples]
    assert copied[0] == 0 and copied[-1] == SAMPLES - 1 and copied == sorted(set(copied))
    steps = {b - a for a, b in itertools.pairwise(copied[:-1])}
    assert len(steps) == 1  # evenly spaced (the last one closes the series)


def test_partition_runs_come_a_page_at_a_time(long_run: tuple[str, int]) -> None:
    url, run = long_run
    d = lakeshift.run_detail(run, db=url, offset=100, limit=100)
    assert d is not None and d.partition_runs_total == PARTS
    assert [p.seq for p in d.partition_runs] == list(range(101, 201))
    client = TestClient(create_app(url))
    page = client.get(f"/runs/{run}?page=3")
    assert page.status_code == 200
    assert "rows 201–250 of 250" in page.text and "p0249/" in page.text
    assert "p0199/" not in page.text
    assert f'data-api="/api/runs/{run}?offset=200&amp;limit=100"' in page.text
    api = client.get(f"/api/runs/{run}").json()  # bounded by default
    assert len(api["partition_runs"]) == 100 and api["partition_runs_total"] == PARTS
    assert len(client.get(f"/api/runs/{run}?offset=240&limit=1000").json()[
        "partition_runs"]) == 10
    for bad in ("?limit=1001", "?offset=-1", "?offset=x", "?offset=%C2%B2", "?limit=%D9%A3"):
        r = client.get(f"/api/runs/{run}{bad}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad-request", bad
    assert client.get(f"/runs/{run}?page=0").status_code == 400
    assert client.get(f"/runs/{run}?page=%C2%B2").status_code == 400  # a superscript 2


def test_a_jobs_partitions_come_a_page_at_a_time(long_run: tuple[str, int]) -> None:
    url, _ = long_run
    job = lakeshift.status(db=url, job="long", offset=100, limit=100).jobs[0]
    assert (job.partitions, job.pending, job.partition_table_offset) == (PARTS, PARTS, 100)
    assert [p.seq for p in job.partition_table] == list(range(101, 201))
    assert len(lakeshift.status(db=url, job="long").jobs[0].partition_table) == PARTS
    client = TestClient(create_app(url))
    page = client.get("/jobs/long?page=3")
    assert page.status_code == 200
    assert "rows 201–250 of 250" in page.text and "p0249/" in page.text
    assert "p0199/" not in page.text
    assert len(client.get("/api/jobs/long").json()["partition_table"]) == 100
    j = client.get("/api/jobs/long?offset=240&limit=1000").json()
    assert (j["partitions"], len(j["partition_table"])) == (PARTS, 10)
    for bad in ("?limit=1001", "?offset=-1", "?offset=x", "?offset=%C2%B2", "?limit=%D9%A3"):
        r = client.get(f"/api/jobs/long{bad}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad-request", bad
    assert client.get("/jobs/long?page=0").status_code == 400
    # As `status --job long --state …`: only the partitions in those states, paged.
    none = client.get("/api/jobs/long?state=failed&state=running").json()
    assert (none["partition_table"], none["partition_table_total"]) == ([], 0)
    todo = client.get("/api/jobs/long?state=attention&offset=10&limit=5").json()
    assert [p["seq"] for p in todo["partition_table"]] == list(range(11, 16))
    assert (todo["partition_table_total"], todo["partition_table_states"]) == (
        PARTS, ["failed", "interrupted", "running", "pending"])
    r = client.get("/api/jobs/long?state=stuck")
    assert r.status_code == 400 and "state 'stuck'" in r.json()["error"]["message"]


def test_failures_come_a_page_at_a_time(long_run: tuple[str, int]) -> None:
    url, run = long_run
    page = lakeshift.run_failures_page(run, db=url, offset=2590, limit=10)
    assert page is not None and page.total == 2600 and page.offset == 2590
    assert [f.object_key for f in page.failures] == [
        "k02590", "k02591", "k02592", "k02593", "k02594", *FORMULAS]
    with pytest.raises(lakeshift.UsageError, match="at most 1000"):
        lakeshift.run_failures_page(run, db=url, limit=1001)
    assert lakeshift.run_failures_page(run + 1, db=url) is None
    client = TestClient(create_app(url))
    j = client.get(f"/api/runs/{run}/failures?offset=2599&limit=5").json()
    assert (j["total"], [f["object_key"] for f in j["failures"]]) == (2600, [FORMULAS[-1]])
    assert len(client.get(f"/api/runs/{run}/failures").json()["failures"]) == 100
    first = client.get(f"/api/runs/{run}").json()["partition_runs"][0]["id"]
    html = client.get(f"/partition-runs/{first}?page=26").text
    assert "rows 2501–2595 of 2595" in html and "k02594" in html and "k02499" not in html


def test_the_failure_csv_streams_every_row_and_neutralises_formulas(
        long_run: tuple[str, int]) -> None:
    url, run = long_run
    rows = lakeshift.iter_run_failures(run, db=url)
    assert rows is not None
    keys = [f.object_key for f in rows]  # more than one page of 1,000
    assert len(keys) == 2600 and keys[0] == "k00000" and keys[-5:] == FORMULAS
    assert lakeshift.iter_run_failures(run + 1, db=url) is None
    client = TestClient(create_app(url))
    r = client.get(f"/runs/{run}/failures.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    got = list(csv.DictReader(io.StringIO(r.text)))
    assert len(got) == 2600
    assert [g["object_key"] for g in got[-5:]] == ["'" + k for k in FORMULAS]
    assert all(g["message"].startswith("'=") for g in got[-5:])
    assert got[0]["object_key"] == "k00000" and got[0]["message"] == "reset"
