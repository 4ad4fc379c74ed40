"""The control DB's claim/lease rules on SQLite and PostgreSQL, through the repository."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lakeshift.control.repository import ControlDB, PartitionStats
from lakeshift.model import PartitionSpec


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> ControlDB:
    url = (f"sqlite:///{tmp_path}/c.db" if request.param == "sqlite"
           else str(request.getfixturevalue("pg_url")))
    db = ControlDB(url, create=True)
    request.addfinalizer(db.close)
    return db


def _job(control: ControlDB, n: int) -> int:
    return control.create_job("j", "az://c/", {}, [
        PartitionSpec("s3://b/", f"p{i}/", "", "az://c/") for i in range(n)])


def test_claims_never_overlap_and_expired_leases_are_taken_over(control: ControlDB) -> None:
    job = _job(control, 5)
    a = control.claim(job, "host-a:1:x", 3, lease_s=1.5)
    b = control.claim(job, "host-b:2:y", 3, lease_s=60)
    assert [r["prefix"] for r in a] == ["p0/", "p1/", "p2/"]
    assert [r["prefix"] for r in b] == ["p3/", "p4/"]
    assert control.claim(job, "host-c:3:z", 5, lease_s=60) == []
    # A renews one lease and lets the others lapse; C takes over only the lapsed ones.
    assert control.heartbeat(a[0]["id"], "host-a:1:x", 60, "p0/k5", PartitionStats(listed=5))
    time.sleep(1.8)
    c = control.claim(job, "host-c:3:z", 5, lease_s=60)
    assert [r["prefix"] for r in c] == ["p1/", "p2/"]
    assert all(r["attempts"] == 2 for r in c)
    # A lost its lease on p1: its heartbeat and finish say so and change nothing.
    assert not control.heartbeat(a[1]["id"], "host-a:1:x", 60, "p1/zz", PartitionStats())
    assert not control.finish(a[1]["id"], "host-a:1:x", "succeeded", "p1/zz", PartitionStats(),
                              None, 1.0)
    rows = {r["prefix"]: r for r in control.partitions(job)}
    assert rows["p1/"]["lease_owner"] == "host-c:3:z" and rows["p1/"]["state"] == "running"
    assert rows["p0/"]["cursor"] == "p0/k5" and rows["p0/"]["listed"] == 5


def test_failed_partitions_return_to_pending_on_rerun(control: ControlDB) -> None:
    job = _job(control, 2)
    [p0, p1] = control.claim(job, "h:1:a", 2, lease_s=60)
    control.finish(p0["id"], "h:1:a", "succeeded", None, PartitionStats(copied=3), None, 2.0)
    control.finish(p1["id"], "h:1:a", "failed", "p1/x", PartitionStats(), "boom", 1.0)
    assert control.reset_failed(job) == 1
    [again] = control.claim(job, "h:2:b", 5, lease_s=60)
    assert again["prefix"] == "p1/" and again["cursor"] == "p1/x" and again["attempts"] == 2


def test_a_job_deleted_while_its_run_writes_a_sample_is_deleted_and_the_run_told(
        control: ControlDB) -> None:
    """A live run's heartbeat that lands between the delete of the job's samples and the
    delete of its runs must not break the delete (PostgreSQL checks the foreign key): it
    waits for the delete and then finds its run gone."""
    import threading

    from sqlalchemy import event

    from lakeshift.control.repository import RunGone

    job = _job(control, 2)
    run_id = control.start_run(job, "h:1:a", 2, {})
    other = ControlDB(control.url)
    outcome: list[BaseException | bool] = []

    def beat() -> None:
        try:
            outcome.append(other.heartbeat_run(run_id, 60, 0, 0, 1, 10))
        except BaseException as e:  # the test reads what happened
            outcome.append(e)

    def mid_delete(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("DELETE FROM lakeshift_run_samples"):
            t = threading.Thread(target=beat)
            t.start()
            t.join(1.5)  # a beat that does not wait for the delete lands here

    event.listen(control.engine, "after_cursor_execute", mid_delete)
    try:
        with control._tx() as conn:
            control._delete_job_rows(conn, job)
    finally:
        event.remove(control.engine, "after_cursor_execute", mid_delete)
    for _ in range(100):
        if outcome:
            break
        time.sleep(0.05)
    other.close()
    assert [j.name for j in control.jobs()] == []
    assert len(outcome) == 1 and isinstance(outcome[0], RunGone), outcome
