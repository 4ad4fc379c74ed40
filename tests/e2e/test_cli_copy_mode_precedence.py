"""Which copy mode `run --job J` uses, as a user sees it: `--copy-mode` typed for the run >
the job's saved mode (`plan --copy-mode`) > LAKESHIFT_COPY_MODE in the environment > the
default (stream) -- the order the store options follow (test_cli_store_precedence.py).
Typer hands LAKESHIFT_COPY_MODE over as if `--copy-mode` were typed, so the variable set in
a shell replaced every job's saved mode; a value the library refuses shows which was used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lakeshift as lakeshift_api
from tests.e2e.cli import lakeshift, one_clear_line


def _json(p: Any) -> dict[str, Any]:
    assert p.returncode == 0, p.stdout + p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def _jobs(tmp_path: Path, env: dict[str, str]) -> str:
    """Job ``saved`` planned with --copy-mode server, job ``plain`` with the default."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    db = f"sqlite:///{tmp_path}/jobs.db"
    for job, extra in (("saved", ("--copy-mode", "server")), ("plain", ())):
        p = lakeshift("plan", str(src), str(tmp_path / job), "--job", job, "--db", db,
                      *extra, env=env)
        assert p.returncode == 0, p.stdout + p.stderr
    return db


def test_the_jobs_saved_copy_mode_beats_the_environments(
        local_env: dict[str, str], tmp_path: Path) -> None:
    db = _jobs(tmp_path, local_env)
    shell = dict(local_env, LAKESHIFT_COPY_MODE="no-such-mode")
    s = _json(lakeshift("run", "--job", "saved", "--db", db, "--json", env=shell))
    assert (s["copied"], s["copy_mode"], s["copy_mode_from"]) == (1, "server", "job"), s
    # The run's settings (the monitor's run page) record it, and where it came from.
    detail = lakeshift_api.run_detail(s["run_id"], db=db)
    assert detail is not None
    shown = detail.run.settings
    assert (shown["copy_mode"], shown["copy_mode_from"]) == ("server", "job"), shown
    # Where the job has the default, the environment's is used: here refused, naming it.
    p = lakeshift("run", "--job", "plain", "--db", db, env=shell)
    assert p.returncode == 2, p.stdout + p.stderr
    assert one_clear_line(p) == (
        "lakeshift: --copy-mode 'no-such-mode': use auto, server, stream "
        "(LAKESHIFT_COPY_MODE='no-such-mode' in the environment set --copy-mode)")


def test_the_summary_says_which_copy_mode_and_where_from(
        local_env: dict[str, str], tmp_path: Path) -> None:
    db = _jobs(tmp_path, local_env)
    auto = dict(local_env, LAKESHIFT_COPY_MODE="auto")
    p = lakeshift("run", "--job", "saved", "--db", db, env=auto)
    assert p.returncode == 0, p.stdout + p.stderr
    assert ("  Copy mode: server (the job's; LAKESHIFT_COPY_MODE='auto' in the environment is "
            "not used: a job's own wins over it, --copy-mode changes it for one run)") in \
        p.stdout.splitlines(), p.stdout
    p = lakeshift("run", "--job", "plain", "--db", db, env=auto)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "  Copy mode: auto (LAKESHIFT_COPY_MODE; the job's is the default, stream)" in \
        p.stdout.splitlines(), p.stdout
    newest = lakeshift_api.status(db=db, job="plain").jobs[0].runs[0]
    assert (newest.settings["copy_mode"], newest.settings["copy_mode_from"]) == \
        ("auto", "environment"), newest.settings
    # A flag typed wins over both, for this run (even the default's value).
    (tmp_path / "src" / "b.txt").write_bytes(b"b")
    assert lakeshift("plan", str(tmp_path / "src"), str(tmp_path / "saved"), "--job", "saved",
                     "--db", db, "--copy-mode", "server", "--replan",
                     env=local_env).returncode == 0
    s = _json(lakeshift("run", "--job", "saved", "--db", db, "--copy-mode", "stream",
                        "--json", env=auto))
    assert (s["copy_mode"], s["copy_mode_from"]) == ("stream", "--copy-mode"), s
    # Neither the flag nor the variable: nothing to say.
    s = _json(lakeshift("run", "--job", "plain", "--db", db, "--json", env=local_env))
    assert "copy_mode" not in s, s
