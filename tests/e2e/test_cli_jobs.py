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


def _on_a_terminal(env: dict[str, str], answer: bytes, *args: str
                   ) -> subprocess.CompletedProcess[str]:
    """Run lakeshift with a pseudo-terminal as its standard input and type ``answer``."""
    main, term = os.openpty()
    try:
        proc = subprocess.Popen([str(BIN), *args], env=env, stdin=term,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(term)
        os.write(main, answer)
        out, err = proc.communicate(timeout=120)
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
    # On a terminal: asks; "n" keeps it, "y" deletes it (sync windows included).
    no = _on_a_terminal(local_env, b"n\n", "delete-job", "--job", "synced", "--db", db_url)
    assert no.returncode == 0 and "nothing deleted" in no.stdout, no.stderr
    assert sorted(_jobs(local_env, db_url)) == ["planned", "synced"]
    yes = _on_a_terminal(local_env, b"y\n", "delete-job", "--job", "synced", "--db", db_url)
    assert yes.returncode == 0, yes.stderr
    assert "[y/N]" in yes.stdout and "deleted job 'synced'" in yes.stdout
    assert _jobs(local_env, db_url) == ["planned"]
    # A live process holds a partition of the job: refused even with --yes, unless --force.
    control = ControlDB(db_url)
    try:
        job = control.job("planned")
        control.reset_job("planned")
        assert control.claim(job.id, owner_id(), 1, 600)
    finally:
        control.close()
    held = lakeshift("delete-job", "--job", "planned", "--db", db_url, "--yes", env=local_env)
    assert held.returncode == 2
    assert "is being run" in one_clear_line(held)
    assert _jobs(local_env, db_url) == ["planned"]
    forced = lakeshift("delete-job", "--job", "planned", "--db", db_url, "--yes", "--force",
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
