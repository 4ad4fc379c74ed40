"""How a partition stored ``running`` reads, on SQLite and PostgreSQL: running while its
own lease is held, interrupted once its holder is gone (its lease lapsed, or its process on
this host died) — whatever other run of the job lives meanwhile; and ``status --state``
filters, counts and pages by how partitions read."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

import lakeshift
from lakeshift.cli.status_view import print_status
from lakeshift.control.repository import ControlDB
from lakeshift.control.schema import partitions, runs
from lakeshift.errors import UsageError
from lakeshift.model import PartitionSpec

READS = "interrupted (lease expired; the next run takes it over)"
HOST = socket.gethostname()


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ControlDB]:
    url = (f"sqlite:///{tmp_path}/c.db" if request.param == "sqlite"
           else str(request.getfixturevalue("pg_url")))
    db = ControlDB(url, create=True)
    yield db
    db.close()


def _job(control: ControlDB, n: int) -> int:
    return control.create_job("j", "az://c/", {}, [
        PartitionSpec("s3://b/", f"p{i}/", f"p{i}/", "az://c/") for i in range(n)])


def _lapse(control: ControlDB, owner: str) -> None:
    """The holder ``owner`` stopped renewing: its partitions' leases lapsed (not its run's)."""
    with control.engine.begin() as conn:
        conn.execute(update(partitions).where(partitions.c.lease_owner == owner)
                     .values(lease_expires=partitions.c.started_at))


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _reads(control: ControlDB, state: str | None = None) -> list[tuple[int, str]]:
    job = lakeshift.status(db=control.url, job="j", state=state).jobs[0]
    return [(p.seq, p.reads) for p in job.partition_table]


def test_a_dead_runs_partitions_read_interrupted_while_a_new_run_lives(
        control: ControlDB) -> None:
    """Run 1 (another host) died holding 3 partitions; run 2 started and took one over
    (batch 1): the other two stay interrupted while run 2 runs."""
    job = _job(control, 4)
    run1 = control.start_run(job, "far:1:a", 3, {}, lease_s=600)
    assert len(control.claim(job, "far:1:a", 3, 600, run_id=run1)) == 3
    _lapse(control, "far:1:a")
    control.close_dead_runs(job)
    run2 = control.start_run(job, "far:2:b", 1, {}, lease_s=600)
    [taken] = control.claim(job, "far:2:b", 1, 600, run_id=run2)
    assert taken["seq"] == 1
    assert _reads(control) == [(1, "running"), (2, READS), (3, READS), (4, "pending")]
    st = lakeshift.status(db=control.url, job="j").jobs[0]
    assert (st.running, st.interrupted) == (3, 2)
    assert lakeshift.status(db=control.url).jobs[0].interrupted == 2  # the jobs list too


def test_a_dead_runs_partitions_read_interrupted_though_their_leases_hold(
        control: ControlDB) -> None:
    """Run 1 (another host) held 2 partitions under its own name; its run's lease lapsed
    (the run's row is renewed first in each beat) before theirs did.  Run 2 started and
    claimed the pending one: run 1's read interrupted, run 2's running."""
    job = _job(control, 3)
    run1 = control.start_run(job, "far:1:a", 2, {}, lease_s=600)
    assert len(control.claim(job, "far:1:a", 2, 600, run_id=run1)) == 2
    with control.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run1)
                     .values(lease_expires=runs.c.started_at))
    run2 = control.start_run(job, "far:2:b", 1, {}, lease_s=600)
    [taken] = control.claim(job, "far:2:b", 1, 600, run_id=run2)
    assert taken["seq"] == 3
    assert _reads(control) == [(1, READS), (2, READS), (3, "running")]
    assert _reads(control, "running") == [(3, "running")]
    control.close_dead_runs(job)  # closed, as the next run or status closes it: the same
    assert _reads(control, "interrupted") == [(1, READS), (2, READS)]


def test_a_fleets_dead_worker_reads_interrupted_while_its_run_lives(
        control: ControlDB) -> None:
    """A Dask run: the driver renews the run's lease, each worker its partitions'.  One
    worker died: its partition's lease lapsed while the run goes on."""
    job = _job(control, 3)
    run = control.start_run(job, "driver:1:d", 2, {}, lease_s=600)
    control.claim(job, "worker-a:7:a", 1, 600, run_id=run)
    control.claim(job, "worker-b:8:b", 1, 600, run_id=run)
    _lapse(control, "worker-b:8:b")
    assert [r["state"] for r in control.runs(job)] == ["running"]
    assert _reads(control) == [(1, "running"), (2, READS), (3, "pending")]
    # --state filters, counts and pages by how partitions read.
    assert _reads(control, "running") == [(1, "running")]
    assert _reads(control, "interrupted") == [(2, READS)]
    assert _reads(control, "attention") == [(2, READS), (1, "running"), (3, "pending")]
    st = lakeshift.status(db=control.url, job="j", state="interrupted").jobs[0]
    assert st.partition_table_total == 1
    st = lakeshift.status(db=control.url, job="j", state="running,pending").jobs[0]
    assert st.partition_table_total == 2
    st = lakeshift.status(db=control.url, job="j", state="running", offset=1).jobs[0]
    assert (st.partition_table_total, st.partition_table) == (1, ())


def test_a_partition_whose_process_here_died_reads_interrupted_before_its_lease_lapses(
        control: ControlDB) -> None:
    job = _job(control, 2)
    dead = f"{HOST}:{_dead_pid()}:x"
    run = control.start_run(job, "driver:1:d", 2, {}, lease_s=600)
    control.claim(job, dead, 1, 600, run_id=run)
    control.claim(job, "worker:9:w", 1, 600, run_id=run)
    assert _reads(control) == [(1, READS), (2, "running")]
    assert _reads(control, "interrupted") == [(1, READS)]
    assert _reads(control, "running") == [(2, "running")]


def test_status_text_and_json_say_what_reads_running_and_interrupted(
        control: ControlDB, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    job = _job(control, 3)
    run = control.start_run(job, "driver:1:d", 2, {}, lease_s=600)
    control.claim(job, "worker-a:7:a", 1, 600, run_id=run)
    control.claim(job, "worker-b:8:b", 1, 600, run_id=run)
    _lapse(control, "worker-b:8:b")
    print_status(lakeshift.status(db=control.url, job="j", state=["interrupted"]), "j", False)
    text = capsys.readouterr().out
    assert "1 running, 1 interrupted (lease expired; the next run takes it over)" in text
    assert text.count(READS) == 3  # the job's line, its running line, the partition's row
    assert "interrupted partition 1–1 of 1" in text
    print_status(lakeshift.status(db=control.url, job="j", state=["running"]), "j", True)
    data = json.loads(capsys.readouterr().out)["jobs"][0]
    assert (data["running"], data["interrupted"]) == (2, 1)
    assert [(p["seq"], p["state"], p["reads"]) for p in data["partition_table"]] == [
        (1, "running", "running")]
    with pytest.raises(UsageError, match="interrupted"):
        lakeshift.status(db=control.url, job="j", state="stalled")
