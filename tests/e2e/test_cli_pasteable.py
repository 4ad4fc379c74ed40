"""Commands lakeshift prints for the user to run work when pasted (they carry the job and
the --db the user gave), and a --config file named on the command line beats the
environment (flags beat both).  Local source and destination: no emulator is needed."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests import servers
from tests.e2e.cli import BIN, obeying_file_modes


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = servers.clean_env()
    env["HOME"] = str(tmp_path / "home")
    env["TMPDIR"] = str(tmp_path)
    env["COLUMNS"] = "200"
    return env


def run(cwd: Path, env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()
        ) -> subprocess.CompletedProcess[str]:
    """``lakeshift ARGS`` run in ``cwd``, as a user in that folder would."""
    return subprocess.run([*prefix, str(BIN), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def pasted(cwd: Path, env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    """A ``lakeshift …`` command lakeshift printed, pasted into a shell in ``cwd``."""
    words = shlex.split(command)
    assert words[0] == "lakeshift", command
    return run(cwd, env, *words[1:])


def suggested(text: str) -> list[str]:
    """Every command in ``text`` that lakeshift suggests running."""
    quoted = re.findall(r"`(lakeshift [^`]+)`", text)
    bare = [c.strip() for c in re.findall(r"\((lakeshift [^)`]+)\)", text)]
    return quoted + [c for part in bare for c in part.split("; ")]


def _source(cwd: Path, *names: str) -> Path:
    src = cwd / "src"
    (src / "a").mkdir(parents=True)
    for name in names:
        (src / "a" / name).write_text(name)
    return src


def test_plan_and_run_hints_carry_the_db_flag(tmp_path: Path, env: dict[str, str]) -> None:
    _source(tmp_path, "x.txt")
    p = run(tmp_path, env, "plan", "./src/", "./dst/", "--job", "mon", "--db",
            "sqlite:///mon.db")
    assert p.returncode == 0, p.stderr
    hints = suggested(p.stdout)
    assert hints == ["lakeshift plan --show --job mon --db sqlite:///mon.db",
                     "lakeshift run --job mon --db sqlite:///mon.db"], p.stdout
    for hint in hints:
        q = pasted(tmp_path, env, hint)
        assert q.returncode == 0, (hint, q.stderr)
    assert not (tmp_path / "lakeshift.db").exists()
    done = run(tmp_path, env, "run", "--job", "mon", "--db", "sqlite:///mon.db")
    assert "every partition has succeeded already, in sqlite:///mon.db" in done.stdout, \
        done.stdout
    [status] = suggested(done.stdout)
    assert pasted(tmp_path, env, status).returncode == 0


def test_a_db_from_the_environment_is_not_repeated(tmp_path: Path,
                                                    env: dict[str, str]) -> None:
    _source(tmp_path, "x.txt")
    env = {**env, "LAKESHIFT_DB": "sqlite:///env.db"}
    p = run(tmp_path, env, "plan", "./src/", "./dst/", "--job", "mon")
    assert p.returncode == 0, p.stderr
    assert suggested(p.stdout) == ["lakeshift plan --show --job mon",
                                   "lakeshift run --job mon"], p.stdout
    r = pasted(tmp_path, env, suggested(p.stdout)[1])
    assert r.returncode == 0, r.stderr
    assert "of job 'mon' in sqlite:///env.db:" in r.stdout, r.stdout


def test_a_failed_partition_names_the_job_everywhere(tmp_path: Path,
                                                      env: dict[str, str]) -> None:
    src = _source(tmp_path, "x.txt", "locked.txt")
    os.chmod(src / "a" / "locked.txt", 0)
    db = "sqlite:///f.db"
    assert run(tmp_path, env, "plan", "./src/", "./dst/", "--job", "my job", "--db",
               db).returncode == 0
    r = run(tmp_path, env, "run", "--job", "my job", "--db", db, "--progress", "none",
            prefix=obeying_file_modes())
    assert r.returncode == 1, r.stdout + r.stderr
    assert (": 1 object failed (lakeshift failures --job 'my job')"
            in r.stdout), r.stdout
    hints = suggested(r.stdout)
    assert "lakeshift run --job 'my job' --db sqlite:///f.db" in hints, r.stdout
    assert "lakeshift failures --job 'my job' --db sqlite:///f.db" in hints, r.stdout
    # The error is stored: status (where the DB is known) shows it with the job's name.
    s = run(tmp_path, env, "status", "--job", "my job", "--db", db, "--json")
    [row] = json.loads(s.stdout)["jobs"][0]["partition_table"]
    assert row["last_error"] == "1 object failed (lakeshift failures --job 'my job')", row
    # The rerun and listing commands (the stored error's hint goes without --db: it is
    # shown where the DB is known, as below); the one that plans the job again last, with
    # the flag the line before it names (it restarts the job: its failures go).
    hints = re.findall(r"`(lakeshift [^`]+)`", r.stdout)
    replan = [h for h in hints if h.startswith("lakeshift plan ")]
    assert replan == ["lakeshift plan --job 'my job' --db sqlite:///f.db --replan"], hints
    for hint in [h for h in hints if h not in replan] + [replan[0] + " --skip-errors forbidden"]:
        q = pasted(tmp_path, env, hint)
        assert q.returncode == 0, (hint, q.stderr)


def _config(path: Path, db: str | None, job: str = "cfgjob") -> Path:
    lines = ["[job]", f'name = "{job}"']
    if db is not None:
        lines.append(f'db = "{db}"')
    lines += ["[source]", f'urls = ["{path.parent}/src/"]', "[destination]",
              f'url = "{path.parent}/dst/"']
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_config_file_beats_the_environment(tmp_path: Path, env: dict[str, str]) -> None:
    _source(tmp_path, "x.txt")
    cfg = _config(tmp_path / "lakeshift.toml", "sqlite:///cfg.db")
    env = {**env, "LAKESHIFT_DB": "sqlite:///env.db", "LAKESHIFT_JOB": "other"}
    r = run(tmp_path, env, "run", "--config", str(cfg), "--progress", "none")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("Run 1 of job 'cfgjob' in sqlite:///cfg.db:"), r.stdout
    assert (tmp_path / "cfg.db").exists() and not (tmp_path / "env.db").exists()
    # --json names the DB too.
    j = run(tmp_path, env, "run", "--config", str(cfg), "--json")
    assert json.loads(j.stdout)["db"] == "sqlite:///cfg.db"
    # A flag beats the file.
    f = run(tmp_path, env, "run", "--config", str(cfg), "--db", "sqlite:///flag.db",
            "--progress", "none")
    assert f.returncode == 0, f.stderr
    assert "of job 'cfgjob' in sqlite:///flag.db:" in f.stdout, f.stdout
    assert not (tmp_path / "env.db").exists()


def test_the_environment_fills_what_the_config_leaves_out(tmp_path: Path,
                                                          env: dict[str, str]) -> None:
    _source(tmp_path, "x.txt")
    cfg = _config(tmp_path / "lakeshift.toml", None)
    env = {**env, "LAKESHIFT_DB": "sqlite:///env.db"}
    r = run(tmp_path, env, "run", "--config", str(cfg), "--progress", "none")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "of job 'cfgjob' in sqlite:///env.db:" in r.stdout, r.stdout
    assert not (tmp_path / "lakeshift.db").exists()


def test_nothing_to_do_still_names_the_skipped_objects(tmp_path: Path,
                                                       env: dict[str, str]) -> None:
    src = _source(tmp_path, "x.txt", "locked.txt")
    os.chmod(src / "a" / "locked.txt", 0)
    db = "sqlite:///s.db"
    assert run(tmp_path, env, "plan", "./src/", "./dst/", "--job", "s", "--db", db,
               "--skip-errors", "forbidden").returncode == 0
    first = run(tmp_path, env, "run", "--job", "s", "--db", db, "--progress", "none",
                prefix=obeying_file_modes())
    assert first.returncode == 0, first.stdout + first.stderr
    os.chmod(src / "a" / "locked.txt", 0o644)  # fixed
    again = run(tmp_path, env, "run", "--job", "s", "--db", db)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert "1 object of the job was skipped or failed in earlier runs" in again.stdout
    assert "(1 forbidden)" in again.stdout, again.stdout
    listing, retry = [c for c in suggested(again.stdout)
                      if c.startswith(("lakeshift failures", "lakeshift sync"))]
    assert pasted(tmp_path, env, listing).returncode == 0
    r = pasted(tmp_path, env, retry)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "dst" / "a" / "locked.txt").read_text() == "locked.txt"
    # Retried and copied: nothing is left to mention.
    last = run(tmp_path, env, "run", "--job", "s", "--db", db)
    assert "nothing to do" in last.stdout and "skipped" not in last.stdout, last.stdout
