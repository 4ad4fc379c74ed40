"""What a `run` killed with SIGKILL leaves in the control DB: every record of a key its saved
cursor passed, a run closed as interrupted by the next one, and totals that count each
object once over the interrupted run and its rerun."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from lakeshift.control.repository import ControlDB
from tests.e2e.cli import lakeshift, planned_local_job, run_in_background
from tests.helpers import blobs

pytestmark = pytest.mark.slow

# The kill comes at the first saved cursor, some 50 objects in (concurrency 1): 500 leave the
# run far from done then, and the rerun copies the rest in a third of the time 1,500 took.
N = 500
BAD = "00003\\bad.bin"  # a backslash: Azure cannot hold the name (listed 5th)


def _poll(path: Path, sql: str) -> Any:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("skip", [False, True], ids=["failed", "skipped"])
def test_kill_9_keeps_failures_closes_the_run_and_counts_each_object_once(
        skip: bool, cli_env: dict[str, str], tmp_path: Path, blob_service: Any,
        container: str) -> None:
    extra = ["--skip-errors", "invalid-name"] if skip else []
    _, db = planned_local_job(cli_env, tmp_path, container, "k", N, 1500, *extra,
                              also={BAD: b"bad name"})
    path = tmp_path / "k.db"
    # Paced (100 requests a second: 500 puts take 5 s or more), so the kill at the first
    # saved cursor lands mid-partition however fast the machine: unpaced, a run in CI once
    # copied all 500 before the poll saw the cursor.
    proc = run_in_background(cli_env, "k", db, "--concurrency", "1", "--lease-seconds", "4",
                             "--max-requests-per-second", "100")
    deadline = time.monotonic() + 60
    # The first heartbeat comes well after the 5th key failed.
    while time.monotonic() < deadline and not _poll(
            path, "select count(*) from lakeshift_partitions where cursor is not null"):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(blobs(blob_service, container, "k/"))
    assert 0 < done_before < N, "the run was not killed mid-partition"

    control = ControlDB(db)
    try:
        job = control.job("k")
        [row] = control.partitions(job.id)
        assert row["state"] == "running" and row["cursor"] is not None
        [f] = list(control.failures(job.id))
        assert (f["object_key"], f["error_kind"], f["skipped"]) == (BAD, "invalid-name", skip)
        # The rerun closes the dead run, then copies the rest.
        r = lakeshift("run", "--job", "k", "--db", db, env=cli_env)
        assert r.returncode == (0 if skip else 1), r.stderr
        assert len(blobs(blob_service, container, "k/")) == N
        [row] = control.partitions(job.id)
        assert row["listed"] == N + 1
        assert row["copied"] + row["skipped"] + row["failed_objects"] == N + 1
        assert row["failed_objects"] == (0 if skip else 1)
        fails = list(control.failures(job.id))
        # Skipped, the key is behind the cursor: recorded once.  Failed, each run tried it.
        assert [x["object_key"] for x in fails] == [BAD] * (1 if skip else 2)
        second, first = control.runs(job.id)
        assert (first["number"], first["state"]) == (1, "interrupted")
        assert first["finished_at"] is not None and first["copied"] > 0
        assert (second["number"], second["state"]) == (2, "succeeded" if skip else "failed")
    finally:
        control.close()


def test_a_run_killed_before_its_first_heartbeat_shows_what_it_copied(
        cli_env: dict[str, str], tmp_path: Path, container: str) -> None:
    # The run's row is written when its first objects are done, not a whole heartbeat (5 s
    # here) after it started: a run killed in its first seconds showed 0 objects.
    _, db = planned_local_job(cli_env, tmp_path, container, "first", 200, 4096)
    path = tmp_path / "first.db"
    proc = run_in_background(cli_env, "first", db, "--concurrency", "1", "--lease-seconds",
                             "120", "--max-bandwidth", "40KiB")
    deadline = time.monotonic() + 60
    # The beat writes the run's row, then its partitions' (one transaction each): the kill
    # comes once both are in, as it would a moment later in a real run.
    while time.monotonic() < deadline and not (
            _poll(path, "select coalesce(max(copied), 0) from lakeshift_runs")
            and _poll(path, "select coalesce(max(copied), 0) from lakeshift_partitions")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    control = ControlDB(db)
    try:
        job = control.job("first")
        [run] = control.runs(job.id)
        [row] = control.partitions(job.id)
        assert run["state"] == "interrupted"
        assert 0 < run["copied"] < 200
        assert (run["heartbeat_at"] - run["started_at"]).total_seconds() < 5, \
            "the run's counters waited for the first heartbeat"
        # What the run row says matches its partition's saved row (the same beat's).
        assert row["copied"] == run["copied"] and row["cursor"] is not None
    finally:
        control.close()
