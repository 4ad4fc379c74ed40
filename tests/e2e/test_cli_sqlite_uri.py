"""A control DB ``lakeshift init`` accepts opens in every command: a SQLite URI filename with
SQLite's own parameters (``sqlite:///file:/abs/state/k.db?mode=rwc&uri=true``, which init
writes as typed) was written to the config and then refused by every command that opened
it ("cannot create control DB file:/abs/state/k.db", "no control DB at file:…").  What
cannot work (a DB in memory, a read-only file for a command that writes) is refused in one
line naming the forms that work."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

from tests.e2e.cli import BIN, lakeshift, one_clear_line


def test_a_uri_filename_init_writes_opens_in_every_command(
        local_env: dict[str, str], tmp_path: Path) -> None:
    job, elsewhere, src, state = (tmp_path / n for n in ("job", "elsewhere", "in", "state"))
    for folder in (job, elsewhere, src, state):
        folder.mkdir()
    (src / "a.txt").write_text("a")
    dst = tmp_path / "out"
    db = f"sqlite:///file:{state}/k.db?mode=rwc&uri=true"
    answers = [str(src), str(dst), "n", "none", "j", db, "1", "4", "once"]
    p = subprocess.run([str(BIN), "init", "-o", "k.toml"], input="\n".join(answers) + "\n",
                       env=local_env, cwd=job, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert tomllib.loads((job / "k.toml").read_text())["job"]["db"] == db

    r = subprocess.run([str(BIN), "run", "--config", str(job / "k.toml"), "--progress",
                        "none"], env=local_env, cwd=elsewhere, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (dst / "a.txt").read_text() == "a"
    assert (state / "k.db").is_file() and list(elsewhere.iterdir()) == []
    for args in (("status", "--db", db, "--json"), ("status", "--job", "j", "--db", db),
                 ("plan", "--show", "--job", "j", "--db", db),
                 ("failures", "--job", "j", "--db", db, "--json"),
                 ("run", "--job", "j", "--db", db)):
        q = lakeshift(*args, env=local_env)
        assert q.returncode == 0, (args, q.stdout + q.stderr)
    status = json.loads(lakeshift("status", "--db", db, "--json", env=local_env).stdout)
    assert [(j["job"], j["copied"]) for j in status["jobs"]] == [("j", 1)]


def test_what_cannot_work_is_one_line_naming_the_forms(
        local_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    db = tmp_path / "c.db"
    p = lakeshift("plan", str(tmp_path / "src"), str(tmp_path / "d"), "--job", "x", "--db",
                  f"sqlite:///{db}", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    for url, what in ((f"sqlite:///file:{db}?mode=ro&uri=true", "opens its file read-only"),
                      ("sqlite:///file::memory:?uri=true", "must be a file, not memory"),
                      (f"sqlite:///{db}?mode=ro", "mode is SQLite URI parameters")):
        p = lakeshift("run", "--job", "x", "--db", url, env=local_env)
        assert p.returncode == 2, (url, p.stdout + p.stderr)
        line = one_clear_line(p)
        assert what in line, line
        if "read-only" not in what:
            assert "sqlite:///file:/path/to/file.db?uri=true" in line, line


def test_a_plan_that_fails_leaves_no_db_file_named_by_a_uri(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A plan that fails leaves no DB file it created only to hold the job
    (api/common ``_new_sqlite_file``): with a URI filename too, whose file is PATH, not
    ``file:PATH`` (that one never exists, so the file made was left behind)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a").write_text("a")
    dst.mkdir()
    (src / "link").symlink_to(dst)  # a prefix the plan refuses once the DB is open
    for db in (f"sqlite:///file:{tmp_path}/k.db?mode=rwc&uri=true",
               f"sqlite:///file:{tmp_path}/k.db?uri=true", f"sqlite:///{tmp_path}/k.db"):
        p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db, "--prefix", "sub/",
                      "--prefix", "link/", env=local_env)
        assert p.returncode == 2, (db, p.stdout + p.stderr)
        assert "leave that prefix out" in one_clear_line(p), p.stderr
        assert not (tmp_path / "k.db").exists(), db
