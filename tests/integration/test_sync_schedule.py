"""A scheduled `lakeshift sync --every …` as a user runs it (the CLI in a subprocess): SIGTERM
checkpoints the pass under way and exits 143 with its schedule lease released; `status`
shows the next pass's time, in text and in --json."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lakeshift
from tests.e2e.cli import BIN, one_clear_line
from tests.e2e.cli import lakeshift as cli

OBJECTS = 40


def _write(p: Path, data: bytes) -> None:
    """A file written an hour ago (a window ends at now - lag, on a whole second)."""
    p.write_bytes(data)
    t = time.time() - 3600
    os.utime(p, (t, t))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _scheduler(src: Path, dst: Path, db: str, env: dict[str, str], *extra: str
               ) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN), "sync", str(src), str(dst), "--job", "sch", "--db", db,
                             "--lag", "0", "--json", "--progress", "none", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(cond: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)
    assert cond(), "timed out"  # type: ignore[operator]


def test_sigterm_during_a_pass_checkpoints_it_exits_143_and_releases_the_schedule(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    src.mkdir()
    for i in range(OBJECTS):
        _write(src / f"f{i:02}", b"x" * (i + 1))
    # Paced to a few requests a second, one at a time: the pass is still under way when the
    # signal comes.
    proc = _scheduler(src, dst, db, cli_env, "--every", "1h", "--concurrency", "1",
                      "--max-requests-per-second", "8")
    try:
        _wait_for(lambda: dst.exists() and len(_tree(dst)) >= 3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "SIGTERM" in one_clear_line(subprocess.CompletedProcess([], 143, out, err))
    copied_before = len(_tree(dst))
    assert 3 <= copied_before < OBJECTS

    # Checkpointed: the partition is pending again, its window recorded as interrupted (not
    # advanced, no row in the ADF delta table), and no scheduler holds the job.
    st = lakeshift.status(db=db, job="sch").jobs[0]
    assert (st.pending, st.running, st.succeeded) == (1, 0, 0)
    assert st.sync_schedule is None and st.next_sync_at is None
    con = sqlite3.connect(f"{tmp_path}/c.db")
    assert con.execute("select state from lakeshift_sync_windows").fetchall() == [
        ("interrupted",)]
    assert con.execute("select count(*) from s3_partition_delta_control_table").fetchone() == (
        0,)
    assert con.execute("select owner from lakeshift_schedules").fetchall() in ([], [(None,)])
    con.close()

    # The next pass takes the same window (a full copy: this job never finished one) and
    # copies only what the interrupted pass had not.
    p = cli("sync", "--job", "sch", "--db", db, "--lag", "0", "--json", "--progress", "none",
            env=cli_env)
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["windows"][0]["start"] is None
    assert summary["copied"] + summary["skipped"] == OBJECTS
    assert summary["copied"] <= OBJECTS - copied_before
    assert _tree(dst) == _tree(src)


def test_sigterm_between_passes_exits_143_and_status_shows_the_next_pass(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    src.mkdir()
    _write(src / "a", b"a")
    proc = _scheduler(src, dst, db, cli_env, "--every", "2h")
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # the first pass's summary
        assert first["exit_code"] == 0 and first["copied"] == 1
        next_at = datetime.fromisoformat(first["next_sync_at"])
        assert timedelta(hours=1, minutes=59) < next_at - datetime.now(UTC) <= timedelta(
            hours=2)

        # status shows when the next pass starts, in text and in JSON.
        text = cli("status", "--db", db, env=cli_env)
        assert text.returncode == 0, text.stderr
        line = f"  sync every 2h: next pass at {next_at:%Y-%m-%d %H:%M:%S} UTC"
        assert line in text.stdout.splitlines()
        detail = cli("status", "--db", db, "--job", "sch", env=cli_env)
        assert line in detail.stdout.splitlines()
        as_json = cli("status", "--db", db, "--json", env=cli_env)
        job = json.loads(as_json.stdout)["jobs"][0]
        assert job["sync_schedule"] == "every 2h"
        shown = datetime.fromisoformat(job["next_sync_at"].replace("Z", "+00:00"))
        assert shown == next_at.replace(microsecond=0)

        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "SIGTERM" in one_clear_line(subprocess.CompletedProcess([], 143, out, err))
    assert _tree(dst) == {"a": b"a"}
    text = cli("status", "--db", db, env=cli_env)
    assert "next pass" not in text.stdout  # released: nothing is scheduled now
    job = json.loads(cli("status", "--db", db, "--json", env=cli_env).stdout)["jobs"][0]
    assert job["sync_schedule"] is None and job["next_sync_at"] is None
    # The lease is free: a new scheduler may start at once.
    again = _scheduler(src, dst, db, cli_env, "--every", "2h")
    try:
        assert again.stdout is not None
        assert json.loads(again.stdout.readline())["exit_code"] == 0
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
    finally:
        if again.poll() is None:
            again.kill()
    assert again.returncode == 143


def test_sigterm_during_a_one_shot_pass_checkpoints_it_and_exits_143(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    src.mkdir()
    for i in range(OBJECTS):
        _write(src / f"f{i:02}", b"x" * (i + 1))
    proc = _scheduler(src, dst, db, cli_env, "--concurrency", "1",
                      "--max-requests-per-second", "8")
    try:
        _wait_for(lambda: dst.exists() and len(_tree(dst)) >= 3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    line = one_clear_line(subprocess.CompletedProcess([], 143, out, err))
    assert "SIGTERM" in line and "interrupted" in line
    st = lakeshift.status(db=db, job="sch").jobs[0]
    assert (st.pending, st.running, st.succeeded) == (1, 0, 0)
    con = sqlite3.connect(f"{tmp_path}/c.db")
    assert con.execute("select state from lakeshift_sync_windows").fetchall() == [
        ("interrupted",)]
    assert con.execute("select count(*) from s3_partition_delta_control_table").fetchone() == (
        0,)
    con.close()
    p = cli("sync", "--job", "sch", "--db", db, "--lag", "0", "--json", "--progress", "none",
            env=cli_env)
    assert p.returncode == 0, p.stderr
    assert _tree(dst) == _tree(src)
