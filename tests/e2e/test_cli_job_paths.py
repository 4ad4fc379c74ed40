"""Jobs do what was typed, from the CLI as a new user runs it: a relative local path given
to `plan` or `sync` is saved absolute (a `run`, `verify` or `sync --job` from another
folder wrote elsewhere); a job saved relative before is shown where it resolves; `--prefix
''` (an unset shell variable) is refused, not planned as a job of nothing; `sync --job` of
a job that exists refuses copy options other than the job's (it ignored them)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.e2e.cli import BIN, one_clear_line


def _in(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``lakeshift ARGS`` started in ``folder``."""
    return subprocess.run([str(BIN), *args], env=env, cwd=folder, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def _ok(folder: Path, *args: str, env: dict[str, str]) -> str:
    p = _in(folder, *args, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def _status(folder: Path, job: str, db: str, env: dict[str, str]) -> Any:
    """``status --job JOB --json``'s job, run in ``folder``."""
    out = json.loads(_ok(folder, "status", "--job", job, "--db", db, "--all", "--json",
                         env=env))
    (status,) = out["jobs"]
    return status


def _folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``J`` (where the job is made), ``elsewhere/deeper`` (where it is run) and the
    source ``src/raw`` holding ``a/x.txt`` and ``b/y.txt``."""
    made, other, src = tmp_path / "J", tmp_path / "elsewhere" / "deeper", tmp_path / "src"
    for d in (made, other, src / "raw" / "a", src / "raw" / "b"):
        d.mkdir(parents=True)
    (src / "raw" / "a" / "x.txt").write_bytes(b"x")
    (src / "raw" / "b" / "y.txt").write_bytes(b"y")
    return made, other, src


def test_a_relative_destination_planned_is_written_there_from_any_folder(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """`plan ../src/raw/ ../L/jout` in J, then `run` from elsewhere/deeper wrote into
    elsewhere/L/jout (exit 0): the job kept the path as typed.  Now the job, its partitions
    (a relative --partitions-file's too) and status name tmp/L/jout, and run, verify and
    status from the other folder use it."""
    made, other, _ = _folders(tmp_path)
    (made / "parts.txt").write_text("a/\nb/\n")
    db = f"sqlite:///{made / 'j.db'}"
    _ok(made, "plan", "../src/raw/", "../L/jout", "--job", "j1", "--db", db,
        "--partitions-file", "parts.txt", env=local_env)
    want = tmp_path / "L" / "jout"
    _ok(other, "run", "--job", "j1", "--db", db, env=local_env)
    assert (want / "a" / "x.txt").read_bytes() == b"x"
    assert (want / "b" / "y.txt").read_bytes() == b"y"
    assert not (tmp_path / "elsewhere" / "L").exists()
    _ok(other, "verify", "--job", "j1", "--db", db, env=local_env)
    status = _status(other, "j1", db, local_env)
    assert status["destination"] == str(want)
    with sqlite3.connect(made / "j.db") as c:
        (saved, options), = c.execute("select destination, options from lakeshift_jobs")
        parts = sorted(r for r, in c.execute("select destination from lakeshift_partitions"))
    assert saved == str(want)
    assert json.loads(options)["sources"] == [f"{tmp_path / 'src' / 'raw'}/"]
    assert parts == [f"{want}/", f"{want}/"], parts  # (each partition's keys keep a/, b/)


def test_a_relative_destination_synced_is_written_there_from_any_folder(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """`sync SRC DST` made its job with the paths as typed: `sync --job` from another
    folder copied into another destination."""
    made, other, _ = _folders(tmp_path)
    db = f"sqlite:///{made / 's.db'}"
    _ok(made, "sync", "../src/raw/", "../S", "--job", "s1", "--db", db, "--lag", "0",
        env=local_env)
    (tmp_path / "src" / "raw" / "c.txt").write_bytes(b"c")
    # Windows end on whole seconds: a pass in the same second as the first has no window
    # yet (it holds c.txt back for the next pass).
    time.sleep(1.1)
    _ok(other, "sync", "--job", "s1", "--db", db, "--lag", "0", env=local_env)
    assert (tmp_path / "S" / "c.txt").read_bytes() == b"c"
    assert not (tmp_path / "elsewhere" / "S").exists()
    status = _status(other, "s1", db, local_env)
    assert status["destination"] == str(tmp_path / "S")


def test_a_job_saved_relative_before_shows_where_it_resolves(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A job an older lakeshift saved with a relative destination (this DB's row, set back
    to it) cannot be fixed silently; status and the run's summary name the absolute path
    it resolves to from the folder the command runs in."""
    made, other, _ = _folders(tmp_path)
    db = f"sqlite:///{made / 'old.db'}"
    _ok(made, "plan", "../src/raw/", "../L/old", "--job", "old", "--db", db, env=local_env)
    with sqlite3.connect(made / "old.db") as c:
        c.execute("update lakeshift_jobs set destination = '../L/old'")
        c.execute("update lakeshift_partitions set destination = '../L/old/'")
    resolved = tmp_path / "elsewhere" / "L" / "old"
    status = _status(other, "old", db, local_env)
    assert status["destination"] == str(resolved)
    assert _ok(other, "status", "--job", "old", "--db", db,
               env=local_env).startswith(f"job old → {resolved}:")
    out = _ok(other, "run", "--job", "old", "--db", db, env=local_env)
    assert f"destination {resolved}: the job saved the relative path ../L/old" in out, out
    assert (resolved / "a" / "x.txt").read_bytes() == b"x"


def test_an_empty_prefix_is_refused(local_env: dict[str, str], tmp_path: Path) -> None:
    """`--prefix "$UNSET"` planned a job of 0 partitions (exit 0), and every run of it
    said "nothing to do"; sync made the same job."""
    made, _, _ = _folders(tmp_path)
    for command, verb in (("plan", "plan"), ("sync", "sync")):
        p = _in(made, command, "../src/raw/", "../P", "--job", "p", "--db",
                f"sqlite:///{made / (command + '.db')}", "--prefix", "", env=local_env)
        assert p.returncode == 2, p.stdout + p.stderr
        assert one_clear_line(p) == (f"lakeshift: --prefix '' names nothing: leave --prefix "
                                     f"out to {verb} the whole source")
        assert not (made / (command + ".db")).exists()


def test_sync_of_an_existing_job_refuses_other_copy_options(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """`sync --job J --include … --skip-errors …` accepted the flags and copied by the
    job's own rules; `run` refuses them.  Now a value other than the job's is one line
    naming how to change the job; the command that made the job, repeated, still works."""
    made, _, _ = _folders(tmp_path)
    db = f"sqlite:///{made / 'o.db'}"
    make = ("sync", "../src/raw/", "../O", "--job", "o", "--db", db, "--lag", "0",
            "--skip-errors", "missing")
    _ok(made, *make, env=local_env)
    _ok(made, *make, env=local_env)
    _ok(made, "sync", "--job", "o", "--db", db, "--lag", "0", env=local_env)
    p = _in(made, "sync", "--job", "o", "--db", db, "--lag", "0", "--include", "a/*",
            "--invalid-names", "encode", env=local_env)
    assert p.returncode == 2, p.stdout + p.stderr
    line = one_clear_line(p)
    assert "--include, --invalid-names cannot change them here" in line, line
    assert (f"`lakeshift plan {tmp_path / 'src' / 'raw'}/ {tmp_path / 'O'} --job o --replan "
            "--include … --invalid-names …`") in line, line
    p = _in(made, "sync", "--job", "o", "--db", db, "--skip-errors", "forbidden",
            env=local_env)
    assert p.returncode == 2 and "--skip-errors cannot change" in one_clear_line(p)
    # The way the line names works, and the job's next pass uses the new rule.
    _ok(made, "plan", f"{tmp_path / 'src' / 'raw'}/", str(tmp_path / "O"), "--job", "o",
        "--db", db, "--replan", "--include", "a/*", env=local_env)
    _ok(made, "sync", "--job", "o", "--db", db, "--lag", "0", "--include", "a/*",
        env=local_env)
