"""`lakeshift delete-job` as a user runs it: it asks on a terminal, needs --yes without one,
refuses while a process runs the job, and leaves the copied objects alone."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.cli import BIN, lakeshift, one_clear_line


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/control.db"
    return str(request.getfixturevalue("pg_url"))


def _jobs(env: dict[str, str], db: str) -> list[str]:
    p = lakeshift("status", "--db", db, "--json", env=env)
    assert p.returncode == 0, p.stderr
    return [j["job"] for j in json.loads(p.stdout)["jobs"]]


def _on_a_terminal(env: dict[str, str], answer: bytes, *args: str, stderr_too: bool = True
                   ) -> subprocess.CompletedProcess[str]:
    """Run lakeshift with a pseudo-terminal as its standard input (and standard error,
    unless not ``stderr_too``) and type ``answer``.  The result's stderr is what the
    terminal showed (the typed answer echoed included) when stderr is on it."""
    main, term = os.openpty()
    try:
        proc = subprocess.Popen([str(BIN), *args], env=env, stdin=term,
                                stdout=subprocess.PIPE,
                                stderr=term if stderr_too else subprocess.PIPE, text=True)
        os.close(term)
        os.write(main, answer)
        out, err = proc.communicate(timeout=120)
        if stderr_too:
            shown = b""
            while True:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                if not chunk:
                    break
                shown += chunk
            err = shown.decode().replace("\r\n", "\n")
    finally:
        os.close(main)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_delete_job_asks_needs_yes_and_refuses_a_running_job(
        local_env: dict[str, str], tmp_path: Path, db_url: str) -> None:
    from lakeshift.control.repository import ControlDB
    from lakeshift.engine.jobrunner import owner_id

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    # Modified a minute ago: inside the window even with --lag 0s (a window ends on the
    # whole second before now, so a file of this very second would wait for the next).
    os.utime(src / "a.txt", (time.time() - 60, time.time() - 60))
    # A synced job (sync windows, runs) and a planned one that is run.
    s = lakeshift("sync", str(src), str(dst / "s"), "--job", "synced", "--db", db_url,
                  "--lag", "0s", "--progress", "none", env=local_env)
    assert s.returncode == 0, s.stderr
    assert lakeshift("plan", str(src), str(dst / "p"), "--job", "planned", "--db", db_url,
                     env=local_env).returncode == 0
    assert lakeshift("run", "--job", "planned", "--db", db_url, "--progress", "none",
                     env=local_env).returncode == 0
    # Not on a terminal and no --yes: refused, nothing deleted.
    p = lakeshift("delete-job", "--job", "synced", "--db", db_url, env=local_env)
    assert p.returncode == 2
    assert "--yes" in one_clear_line(p)
    # --json read by a program: a terminal to type on but none showing the question (stderr
    # goes to the program too): refused at once, not left waiting for an answer.
    blind = _on_a_terminal(local_env, b"", "delete-job", "synced", "--db", db_url, "--json",
                           stderr_too=False)
    assert blind.returncode == 2
    assert "--yes" in one_clear_line(blind)
    assert json.loads(blind.stdout)["error"]["kind"] == "usage"
    # On a terminal: asks on stderr (stdout stays the result); "n" keeps it, "y" deletes it
    # (sync windows included).  The job may be given as an argument.
    no = _on_a_terminal(local_env, b"n\n", "delete-job", "synced", "--db", db_url)
    assert no.returncode == 0 and "nothing deleted" in no.stderr, no.stderr
    assert "[y/N]" in no.stderr and no.stdout == ""
    assert sorted(_jobs(local_env, db_url)) == ["planned", "synced"]
    yes = _on_a_terminal(local_env, b"y\n", "delete-job", "synced", "--db", db_url,
                         "--json")
    assert yes.returncode == 0, yes.stderr
    assert "[y/N]" in yes.stderr and "[y/N]" not in yes.stdout
    assert json.loads(yes.stdout)["deleted"] == "synced"
    assert _jobs(local_env, db_url) == ["planned"]
    # A live process holds a partition of the job: refused, even with --yes or --force
    # (a synonym of --yes: there is no way to delete a job under a live process).
    control = ControlDB(db_url)
    try:
        job = control.job("planned")
        control.reset_job("planned")
        assert control.claim(job.id, owner_id(), 1, 600)
    finally:
        control.close()
    for flag in ("--yes", "--force"):
        held = lakeshift("delete-job", "--job", "planned", "--db", db_url, flag,
                         env=local_env)
        assert held.returncode == 2
        assert "is being run" in one_clear_line(held)
        assert _jobs(local_env, db_url) == ["planned"]
    control = ControlDB(db_url)
    try:
        control.reset_job("planned", force=True)  # the holder let go
    finally:
        control.close()
    forced = lakeshift("delete-job", "--job", "planned", "--db", db_url, "--force",
                       "--json", env=local_env)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["deleted"] == "planned"
    assert _jobs(local_env, db_url) == []
    # The copied objects stay; a job that is not there is one clear line.
    assert (dst / "s" / "a.txt").read_bytes() == b"a"
    assert (dst / "p" / "a.txt").read_bytes() == b"a"
    gone = lakeshift("delete-job", "--job", "planned", "--db", db_url, "--yes", env=local_env)
    assert gone.returncode == 2
    assert "planned" in one_clear_line(gone)


def test_the_api_cannot_delete_a_job_under_a_live_process() -> None:
    import inspect

    import lakeshift

    assert "force" not in inspect.signature(lakeshift.delete_job).parameters


def test_a_run_whose_job_is_deleted_under_it_stops_with_one_line(
        local_env: dict[str, str], tmp_path: Path, db_url: str) -> None:
    """Deleting a live job is refused, but another tool (or an older lakeshift) may still
    drop its rows: the run then ends with one line saying so, not a traceback or a
    success."""
    from lakeshift.control.repository import ControlDB

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02}.txt").write_bytes(b"x" * 1000)
    assert lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db_url,
                     env=local_env).returncode == 0
    proc = subprocess.Popen([str(BIN), "run", "--job", "j", "--db", db_url, "--progress",
                             "none", "--max-bandwidth", "2KiB"], env=local_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    control = ControlDB(db_url)
    try:
        job = control.job("j")
        for _ in range(600):  # until the run has copied something
            if (dst.exists() and any(dst.iterdir())) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        with control._tx() as conn:
            control._delete_job_rows(conn, job.id)
    finally:
        control.close()
    out, err = proc.communicate(timeout=120)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert done.returncode == 2, (out, err)
    assert "job 'j' was deleted while it ran" in one_clear_line(done)
    assert len(list(dst.iterdir())) < 40  # it stopped, and what it copied stays
