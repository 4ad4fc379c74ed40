"""Jobs do what was typed, from the CLI as a new user runs it: a relative local path given
to `plan` or `sync` is saved absolute (a `run`, `verify` or `sync --job` from another
folder wrote elsewhere); a job saved relative before is shown where it resolves; `--prefix
''` (an unset shell variable) is refused, not planned as a job of nothing; `sync --job` of
a job that exists refuses copy options other than the job's (it ignored them)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
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
