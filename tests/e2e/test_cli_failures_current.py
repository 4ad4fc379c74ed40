"""`lakeshift failures --job` lists what is broken now: an object that failed and was
copied by a later run (or sync pass) is no longer listed; one that fails again is listed
with its newest reason.  The text (CSV) and --json agree; `--run N` keeps each run's."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from tests.e2e.cli import lakeshift, obeying_file_modes, one_clear_line


def _csv_keys(env: dict[str, str], db: str, *args: str) -> list[str]:
    p = lakeshift("failures", "--job", "j", "--db", db, *args, env=env)
    assert p.returncode == 0, p.stderr
    return sorted(r["object_key"] for r in csv.DictReader(io.StringIO(p.stdout)))


def _json(env: dict[str, str], db: str, *args: str) -> dict[str, object]:
    p = lakeshift("failures", "--job", "j", "--db", db, "--json", *args, env=env)
    assert p.returncode == 0, p.stderr
    found: dict[str, object] = json.loads(p.stdout)
    return found


def _plan(env: dict[str, str], src: Path, dst: Path, db: str) -> None:
    p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db, env=env)
    assert p.returncode == 0, p.stderr


def test_an_object_copied_by_a_later_run_is_no_longer_listed(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a").mkdir(parents=True)
    for i in range(3):
        (src / "a" / f"f{i}.txt").write_text(f"file {i}")
    (src / "b.txt").write_text("b")
    fixed, broken = src / "a" / "f1.txt", src / "b.txt"
    for f in (fixed, broken):
        os.chmod(f, 0o000)
    db = f"sqlite:///{tmp_path}/control.db"
    _plan(local_env, src, dst, db)
    run = ("run", "--job", "j", "--db", db, "--json")
    p = lakeshift(*run, env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert _csv_keys(local_env, db) == ["a/f1.txt", "b.txt"]

    # One fixed, one still unreadable: the rerun resumes before a/f1.txt and copies it.
    os.chmod(fixed, 0o644)
    p = lakeshift(*run, env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert (dst / "a" / "f1.txt").read_text() == "file 1"
    assert _csv_keys(local_env, db) == ["b.txt"]
    found = _json(local_env, db)
    assert (found["count"], found["by_kind"]) == (1, {"forbidden": 1}), found
    [row] = found["failures"]  # type: ignore[misc]
    # Its newest row: the one run 2 recorded.
    [in_run_2] = _json(local_env, db, "--run", "2")["failures"]  # type: ignore[misc]
    assert row == in_run_2 and row["object_key"] == "b.txt", (row, in_run_2)
    # The log keeps what each run met.
    assert _csv_keys(local_env, db, "--run", "1") == ["a/f1.txt", "b.txt"]

    os.chmod(broken, 0o644)
    p = lakeshift(*run, env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 0, p.stdout + p.stderr
    assert _csv_keys(local_env, db) == []
    assert _json(local_env, db) == {"job": "j", "run": None, "count": 0, "by_kind": {},
                                    "failures": []}
    p = lakeshift("failures", "--job", "j", "--db", db, env=local_env)
    assert "job 'j' has no failed or skipped objects" in p.stderr, p.stderr


def test_an_object_copied_by_a_later_sync_pass_is_no_longer_listed(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for name in ("x.txt", "y.txt"):
        (src / name).write_text(name)
    os.chmod(src / "x.txt", 0o000)
    db = f"sqlite:///{tmp_path}/control.db"
    _plan(local_env, src, dst, db)
    p = lakeshift("run", "--job", "j", "--db", db, env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert _csv_keys(local_env, db) == ["x.txt"]
    os.chmod(src / "x.txt", 0o644)
    p = lakeshift("sync", "--job", "j", "--db", db, "--lag", "0", "--json", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 0, p.stdout + p.stderr
    assert (dst / "x.txt").read_text() == "x.txt"
    assert _csv_keys(local_env, db) == []
    assert _json(local_env, db)["count"] == 0


def test_json_and_a_csv_file_are_one_or_the_other(local_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    p = lakeshift("failures", "--job", "j", "--db", f"sqlite:///{tmp_path}/c.db", "--json",
                  "--csv-file", str(tmp_path / "f.csv"), env=local_env)
    assert p.returncode == 2
    assert one_clear_line(p) == ("lakeshift: --json prints the failures; --csv-file writes "
                                 "them to a file: give one of them")
