"""Partitioned, resumable jobs: plan / run / status / failures on real emulators, with the
control DB in SQLite and in PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import (
    BIN,
    lakeshift,
    obeying_file_modes,
    one_clear_line,
    planned_local_job,
    run_in_background,
)
from tests.helpers import blob_bytes, blobs


def _seed(s3: Any, bucket: str, prefixes: list[str], n: int, size: int = 100) -> dict[str, bytes]:
    objs = {}
    for p in prefixes:
        for i in range(n):
            key = f"{p}f{i:04d}.bin"
            objs[key] = os.urandom(size)
            s3.put_object(Bucket=bucket, Key=key, Body=objs[key])
    return objs


def _status(env: dict[str, str], db: str, job: str) -> dict[str, Any]:
    p = lakeshift("status", "--db", db, "--job", job, "--json", env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["jobs"][0]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/control.db"
    return str(request.getfixturevalue("pg_url"))


def test_plan_run_status_and_rerun(cli_env: dict[str, str], s3: Any, bucket: str,
                                   blob_service: Any, container: str, db_url: str) -> None:
    objs = _seed(s3, bucket, ["raw/2023/", "raw/2024/", "raw/2025/"], 15)
    p = lakeshift("plan", f"s3://{bucket}/raw/", f"az://{container}/lake/", "--job", "hist",
                  "--db", db_url, "--prefix", "2023/", "--prefix", "2024/", "--prefix", "2025/",
                  env=cli_env)
    assert p.returncode == 0, p.stderr
    show = lakeshift("plan", "--show", "--job", "hist", "--db", db_url, "--json", env=cli_env)
    parts = json.loads(show.stdout)["partition_table"]
    assert [x["prefix"] for x in parts] == ["raw/2023/", "raw/2024/", "raw/2025/"]
    assert {x["state"] for x in parts} == {"pending"}

    r = lakeshift("run", "--job", "hist", "--db", db_url, "--batch-count", "2", "--json",
                  env=cli_env)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["partitions_succeeded"] == 3 and summary["copied"] == 45
    got = blobs(blob_service, container, "lake/")
    assert set(got) == {"lake/" + k[len("raw/"):] for k in objs}
    assert blob_bytes(blob_service, container, "lake/2024/f0003.bin") == objs["raw/2024/f0003.bin"]

    st = _status(cli_env, db_url, "hist")
    assert (st["succeeded"], st["failed"], st["pending"], st["copied"]) == (3, 0, 0, 45)
    assert all(x["attempts"] == 1 and x["bytes"] == 1500 and x["started_at"].endswith("Z")
               for x in st["partition_table"])
    assert st["runs"][0]["settings"]["batch_count"] == 2

    again = lakeshift("run", "--job", "hist", "--db", db_url, "--json", env=cli_env)
    assert again.returncode == 0 and json.loads(again.stdout)["copied"] == 0


def test_one_failing_partition_leaves_the_others_and_a_rerun_finishes_it(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    other = bucket + "-2"
    s3.create_bucket(Bucket=other)
    _seed(s3, bucket, ["a/"], 10)
    _seed(s3, other, ["b/"], 10)
    db = f"sqlite:///{tmp_path}/c.db"
    p = lakeshift("plan", f"s3://{bucket}/", f"s3://{other}/", f"az://{container}/m/",
                  "--job", "two", "--db", db, env=cli_env)
    assert p.returncode == 0, p.stderr
    for o in s3.list_objects_v2(Bucket=other)["Contents"]:
        s3.delete_object(Bucket=other, Key=o["Key"])
    s3.delete_bucket(Bucket=other)
    r = lakeshift("run", "--job", "two", "--db", db, "--json", env=cli_env)
    assert r.returncode == 1
    s = json.loads(r.stdout)
    assert (s["partitions_succeeded"], s["partitions_failed"]) == (1, 1)
    assert "bucket does not exist" in s["errors"][0]["error"]
    # Several buckets in one job: each bucket's objects under DST/BUCKET/.
    assert len(blobs(blob_service, container, f"m/{bucket}/")) == 10
    st = _status(cli_env, db, "two")
    assert [x["state"] for x in st["partition_table"]] == ["succeeded", "failed"]

    s3.create_bucket(Bucket=other)
    _seed(s3, other, ["b/"], 10)
    r2 = lakeshift("run", "--job", "two", "--db", db, "--json", env=cli_env)
    assert r2.returncode == 0, r2.stdout
    s2 = json.loads(r2.stdout)
    assert (s2["partitions_succeeded"], s2["copied"]) == (1, 10)  # only the failed one ran
    assert len(blobs(blob_service, container, f"m/{other}/")) == 10
    st = _status(cli_env, db, "two")
    assert [x["attempts"] for x in st["partition_table"]] == [1, 2]


def test_auto_partitioning_cuts_key_ranges_that_cover_everything_once(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    objs = _seed(s3, bucket, ["big/x/", "big/y/"], 25)
    db = f"sqlite:///{tmp_path}/auto.db"
    p = lakeshift("plan", f"s3://{bucket}/big/", f"az://{container}/auto/", "--job", "auto",
                  "--db", db, "--partition-by", "auto", "--target-objects", "12", "--json",
                  env=cli_env)
    assert p.returncode == 0, p.stderr
    parts = json.loads(p.stdout)["partition_table"]
    # Two folders of 25 with a target of 12: each cut into 12 + 12 + 1; the ranges follow
    # each other without gaps, from the source's start (a key written later before the
    # first one is the first range's) to its end.
    assert len(parts) == 6 and parts[0]["range_start"] is None and parts[-1]["range_end"] is None
    assert all(a["range_end"] == b["range_start"] for a, b in itertools.pairwise(parts))
    r = lakeshift("run", "--job", "auto", "--db", db, "--batch-count", "3", "--json",
                  env=cli_env)
    s = json.loads(r.stdout)
    assert r.returncode == 0 and s["copied"] == 50 and s["skipped"] == 0
    assert len(blobs(blob_service, container, "auto/")) == len(objs)
    st = _status(cli_env, db, "auto")
    assert sum(x["copied"] for x in st["partition_table"]) == 50


def test_kill_9_mid_partition_then_rerun_misses_nothing(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, container: str) -> None:
    src, db = planned_local_job(cli_env, tmp_path, container, "k", 1200)
    proc = run_in_background(cli_env, "k", db, "--concurrency", "2", "--lease-seconds", "4")
    deadline = time.monotonic() + 60
    cursor = None
    while time.monotonic() < deadline:
        con = sqlite3.connect(f"{tmp_path}/k.db")
        cursor = con.execute("select cursor from lakeshift_partitions").fetchone()[0]
        con.close()
        if cursor:
            break
        time.sleep(0.2)
    assert cursor, "no cursor was saved while the partition ran"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(blobs(blob_service, container, "k/"))
    assert 0 < done_before < 1200
    r = lakeshift("run", "--job", "k", "--db", db, "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    # The rerun listed after the saved cursor and re-copied at most the in-flight window.
    assert s["copied"] <= 1200 - done_before + 2 * 2
    assert s["copied"] + s["skipped"] < 1200
    got = blobs(blob_service, container, "k/")
    assert len(got) == 1200
    assert blob_bytes(blob_service, container, "k/00777.bin") == (src / "00777.bin").read_bytes()
    st = _status(cli_env, db, "k")
    p0 = st["partition_table"][0]
    assert (p0["state"], p0["attempts"], p0["cursor"]) == ("succeeded", 2, "01199.bin")


def test_two_runs_share_a_job_without_doing_a_partition_twice(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        db_url: str) -> None:
    pg_url = db_url  # SQLite (several processes on one machine) and PostgreSQL (many machines)
    prefixes = [f"p{i:02d}/" for i in range(12)]
    _seed(s3, bucket, prefixes, 8)
    args = ["--prefix" if i % 2 == 0 else p for p in prefixes for i in range(2)]
    assert lakeshift("plan", f"s3://{bucket}/", f"az://{container}/pg/", "--job", "shared",
                     "--db", pg_url, *args, env=cli_env).returncode == 0
    cmd = [str(BIN), "run", "--job", "shared", "--db", pg_url, "--batch-count", "2", "--json"]
    a = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    b = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    out_a, err_a = a.communicate(timeout=180)
    out_b, err_b = b.communicate(timeout=180)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    sa, sb = json.loads(out_a), json.loads(out_b)
    assert sa["partitions_succeeded"] + sb["partitions_succeeded"] == 12
    assert sa["copied"] + sb["copied"] == 96
    st = _status(cli_env, pg_url, "shared")
    assert all(x["attempts"] == 1 and x["state"] == "succeeded" for x in st["partition_table"])
    assert len(blobs(blob_service, container, "pg/")) == 96


def test_adf_control_table_is_read_and_updated_like_the_template(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    _seed(s3, bucket, ["sales/2024/", "sales/2025/", "hr/"], 4)
    path = tmp_path / "adf.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE s3_partition_control_table (PartitionPrefix varchar(255), "
                "SuccessOrFailure bit)")
    con.executemany("INSERT INTO s3_partition_control_table VALUES (?, ?)",
                    [("sales/2024/", 0), ("sales/2025/", 0), ("hr/", 1)])
    con.commit()
    con.close()
    db = f"sqlite:///{path}"
    p = lakeshift("plan", f"s3://{bucket}/", f"az://{container}/adf/", "--job", "adf", "--db",
                  db, "--adf-control-table", "s3_partition_control_table", env=cli_env)
    assert p.returncode == 0, p.stderr
    r = lakeshift("run", "--job", "adf", "--db", db, "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["copied"] == 8
    assert set(blobs(blob_service, container, "adf/")) == {
        f"adf/sales/{y}/f{i:04d}.bin" for y in (2024, 2025) for i in range(4)}
    con = sqlite3.connect(path)
    rows = dict(con.execute("SELECT PartitionPrefix, SuccessOrFailure FROM "
                            "s3_partition_control_table").fetchall())
    assert rows == {"sales/2024/": 1, "sales/2025/": 1, "hr/": 1}
    # The user adds a row (or resets one to 0): the next run copies just that partition.
    con.execute("UPDATE s3_partition_control_table SET SuccessOrFailure = 0 "
                "WHERE PartitionPrefix = 'hr/'")
    con.commit()
    con.close()
    r2 = lakeshift("run", "--job", "adf", "--db", db, "--json", env=cli_env)
    assert json.loads(r2.stdout)["copied"] == 4
    assert len(blobs(blob_service, container, "adf/hr/")) == 4


def test_failures_are_listed_with_key_class_and_message(
        cli_env: dict[str, str], tmp_path: Path, container: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    (src / "locked.txt").write_text("no")
    os.chmod(src / "locked.txt", 0)
    db = f"sqlite:///{tmp_path}/f.db"
    assert lakeshift("plan", str(src), f"az://{container}/f/", "--job", "f", "--db", db,
                     env=cli_env).returncode == 0
    r = lakeshift("run", "--job", "f", "--db", db, env=cli_env, prefix=obeying_file_modes())
    assert r.returncode == 1
    out = tmp_path / "f.csv"
    p = lakeshift("failures", "--job", "f", "--db", db, "--csv", str(out), env=cli_env)
    assert p.returncode == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("object_key,error_kind,message")
    assert lines[1].startswith("locked.txt,forbidden,") and len(lines) == 2


@pytest.mark.parametrize("args,needle", [
    (["status", "--db", "not a url"], "malformed control DB URL"),
    (["status", "--db", "postgresql://u:hunter2@127.0.0.1:1/x"], "cannot use control DB"),
    (["status", "--db", "sqlite:////nonexistent/dir/x.db"], "no control DB"),
    (["run", "--job", "nope"], "no job 'nope'"),
])
def test_bad_db_input_is_one_line_exit_2(cli_env: dict[str, str], tmp_path: Path,
                                         args: list[str], needle: str) -> None:
    db_args = [] if "--db" in args else ["--db", f"sqlite:///{tmp_path}/empty.db"]
    if "--job" in args:
        (tmp_path / "src").mkdir()
        assert lakeshift("plan", str(tmp_path / "src"), str(tmp_path / "d"), "--job", "x",
                         *db_args, env=cli_env).returncode == 0
    p = lakeshift(*args, *db_args, env=cli_env)
    assert p.returncode == 2, p.stderr
    line = one_clear_line(p)
    assert needle in line and "hunter2" not in line


def test_corrupt_newer_and_locked_dbs_are_refused_unchanged(cli_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    p = lakeshift("status", "--db", f"sqlite:///{junk}", env=cli_env)
    assert p.returncode == 2 and "not a lakeshift control DB" in one_clear_line(p)
    assert junk.read_bytes() == b"this is not sqlite" * 100

    (tmp_path / "src").mkdir()
    db = tmp_path / "c.db"
    assert lakeshift("plan", str(tmp_path / "src"), str(tmp_path / "d"), "--job", "x", "--db",
                     f"sqlite:///{db}", env=cli_env).returncode == 0
    con = sqlite3.connect(db)
    con.execute("UPDATE lakeshift_schema SET version = 99")
    con.commit()
    p = lakeshift("status", "--db", f"sqlite:///{db}", env=cli_env)
    assert p.returncode == 2 and "newer than this lakeshift" in one_clear_line(p)
    con.execute("UPDATE lakeshift_schema SET version = 1")
    con.commit()
    con.execute("BEGIN EXCLUSIVE")  # another writer holds the DB
    p = lakeshift("plan", str(tmp_path / "src"), str(tmp_path / "d"), "--job", "y", "--db",
                  f"sqlite:///{db}", env=cli_env, timeout=60)
    con.rollback()
    con.close()
    assert p.returncode == 2 and "locked" in one_clear_line(p)
    assert [r[0] for r in sqlite3.connect(db).execute("select name from lakeshift_jobs")] == ["x"]


def test_overlapping_partitions_are_refused(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "src" / "a" / "b").mkdir(parents=True)
    db = tmp_path / "o.db"
    p = lakeshift("plan", str(tmp_path / "src"), str(tmp_path / "d"), "--job", "o", "--db",
                  f"sqlite:///{db}", "--prefix", "a/", "--prefix", "a/b/", env=cli_env)
    assert p.returncode == 2 and "partitions overlap" in one_clear_line(p)
    assert not db.exists()  # no job, and no DB created only to hold it


def test_python_api_plan_job_and_run_job(s3_env: Any, azure_env: Any, s3: Any, bucket: str,
                                         blob_service: Any, container: str,
                                         tmp_path: Path) -> None:
    import lakeshift

    _seed(s3, bucket, ["x/", "y/"], 3)
    db = f"sqlite:///{tmp_path}/api.db"
    n = lakeshift.plan_job([f"s3://{bucket}/"], f"az://{container}/api/", job="api", db=db,
                           prefixes=("x/", "y/"))
    assert n == 2
    result = lakeshift.run_job(job="api", db=db, batch_count=2)
    assert (result.succeeded, result.failed, result.stats.copied, result.exit_code) == \
        (2, 0, 6, 0)
    assert len(blobs(blob_service, container, "api/")) == 6


def test_auto_partitioning_follows_folders_that_fit(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    _seed(s3, bucket, ["t/a/", "t/b/", "t/c/"], 5)
    _seed(s3, bucket, ["t/"], 2)  # objects directly in the root
    for target, want in ((8, 3), (12, 2)):
        db = f"sqlite:///{tmp_path}/f{target}.db"
        p = lakeshift("plan", f"s3://{bucket}/t/", str(tmp_path / "o"), "--job", "f",
                      "--db", db, "--partition-by", "auto", "--target-objects", str(target),
                      "--json", env=cli_env)
        parts = json.loads(p.stdout)["partition_table"]
        prefixes = [x["prefix"] for x in parts if not x["range_start"] and not x["range_end"]]
        if target == 8:  # each folder (5 ≥ 8/2) is its own partition; the root's 2 objects
            # and the keys beside the folders (before, between: none yet) are ranges
            assert prefixes == ["t/a/", "t/b/", "t/c/"] and len(parts) == 7
        else:  # small neighbours grouped into ranges of at most 12
            assert prefixes == [] and len(parts) == want
        r = lakeshift("run", "--job", "f", "--db", db, "--json", env=cli_env)
        s = json.loads(r.stdout)
        assert r.returncode == 0 and s["copied"] + s["skipped"] == 17  # every object, once


def test_a_partition_reset_under_a_live_run_is_not_counted_twice_by_it(
        tmp_path: Path) -> None:
    # `plan --replan --force` (no sources: a reset) while a run holds the only
    # partition: the run's finish of it finds its lease gone.  That finish used to count
    # the partition as the run's anyway; the run then claimed the reset partition again
    # and counted it a second time ("2 partitions succeeded" of a one-partition job).
    import threading

    import lakeshift
    from lakeshift.control.repository import ControlDB

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(20):
        (src / f"f{i:02d}").write_bytes(os.urandom(4096))
    db = f"sqlite:///{tmp_path}/c.db"
    lakeshift.plan(str(src), str(dst), job="j", db=db)
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(lakeshift.run(
        job="j", db=db, concurrency=1, max_bandwidth="40KiB")))
    t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (dst.exists() and any(dst.iterdir())):
        time.sleep(0.02)
    lakeshift.reset_job("j", db=db, force=True)  # before the run's next heartbeat (5 s)
    t.join(60)
    [r] = out
    assert (r.succeeded, r.failed) == (1, 0)
    control = ControlDB(db)
    try:
        [run] = control.runs(control.job("j").id)
        assert (run["state"], run["partitions_done"]) == ("succeeded", 1)
    finally:
        control.close()


def test_each_partition_end_updates_the_run_row_without_a_chart_sample(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The run's row is written as each partition ends (its counters then match the
    # partitions'), but the throughput chart gets a sample per beat, not per partition.
    import lakeshift
    from lakeshift.control.repository import ControlDB

    src = tmp_path / "src"
    prefixes = [f"p{i}/" for i in range(8)]
    for p in prefixes:
        (src / p).mkdir(parents=True)
        (src / p / "k").write_bytes(b"x")
    db = f"sqlite:///{tmp_path}/c.db"
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="j", db=db, prefix=prefixes)
    saved: list[int] = []
    real = ControlDB.heartbeat_run

    def spy(self: ControlDB, run_id: int, lease_s: float, done: int, *a: Any) -> bool:
        saved.append(done)
        return real(self, run_id, lease_s, done, *a)

    monkeypatch.setattr(ControlDB, "heartbeat_run", spy)
    r = lakeshift.run(job="j", db=db, batch_count=1)
    assert r.succeeded == 8
    ends = iter(saved)
    assert all(n in ends for n in range(1, 9))  # the run row after each partition's end
    control = ControlDB(db)
    try:
        samples = control.run_samples(r.run_id)
    finally:
        control.close()
    assert len(samples) <= 4, samples  # the early beat (and a few more), then the finish
