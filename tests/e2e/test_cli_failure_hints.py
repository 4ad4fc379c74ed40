"""A copy's summary that lists failures ends with what to do about each kind present,
once a kind (not once an object), naming the flag; the flag, given, does it.  A run's and a
sync pass's end the same way (a job's flags are planned with it), then say how to get this
run's failed keys, which are in the control DB.

Local disk only: a file the copy may not read (``forbidden``, mode bits binding even as
root) and a name a directory at the destination already holds (``invalid-name``)."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from tests.e2e.cli import BIN, lakeshift, obeying_file_modes, one_clear_line


def test_each_kind_of_failure_ends_the_summary_with_its_fix_once(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for name in ("a.txt", "locked-1.txt", "locked-2.txt", "ok.txt"):
        (src / name).write_text(name)
    (src / "locked-1.txt").chmod(0)
    (src / "locked-2.txt").chmod(0)
    (dst / "a.txt").mkdir(parents=True)  # a directory where the file a.txt would go

    p = lakeshift("copy", str(src), str(dst), env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert "  FAILED a.txt: [invalid-name] " in p.stdout, p.stdout
    assert p.stdout.count("--skip-errors forbidden ") == 1, p.stdout  # two objects, one hint
    hints = p.stdout.splitlines()[-3:]  # the summary ends with them
    assert sorted(hints[:2]) == [_FORBIDDEN, _INVALID_NAME], p.stdout
    kinds = ",".join(h.split(":")[0].strip() for h in hints[:2])
    assert hints[2] == (f"  to skip them all and go on: --skip-errors {kinds} (one flag, "
                        "comma-separated)"), p.stdout

    # One kind skipped already: the other's hint, and the flag that keeps both.
    p = lakeshift("copy", str(src), str(dst), "--skip-errors", "forbidden", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.splitlines()[-2:] == [
        _INVALID_NAME, "  to skip them all and go on: --skip-errors forbidden,invalid-name "
        "(one flag, comma-separated)"], p.stdout

    # The flag the last line names, given: the copy goes on past both, and says so.
    p = lakeshift("copy", str(src), str(dst), *hints[2].split(": ")[1].split(" (")[0].split(),
                  env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SKIPPED locked-1.txt: [forbidden]" in p.stdout, p.stdout
    assert "SKIPPED a.txt: [invalid-name]" in p.stdout, p.stdout
    assert "go on" not in p.stdout, p.stdout  # nothing failed: no hint
    os.chmod(src / "locked-1.txt", 0o644)
    os.chmod(src / "locked-2.txt", 0o644)


_FORBIDDEN = ("  forbidden: to skip these and go on: --skip-errors forbidden (or grant read "
              "access and run again)")
_INVALID_NAME = ("  invalid-name: to skip these and go on: --skip-errors invalid-name; to "
                 "rename instead a name the destination's rules reject: --invalid-names "
                 "encode")


def test_an_unreadable_source_folder_is_said_forbidden_in_json(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A local source folder that may not be read stops the copy first (exit 2, one line);
    --json names its kind ``forbidden``, as an unreadable file's is, not ``usage``."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    src.chmod(0)
    try:
        p = lakeshift("copy", str(src), str(tmp_path / "dst"), "--json", env=local_env,
                      prefix=obeying_file_modes())
    finally:
        src.chmod(0o755)
    assert p.returncode == 2, p.stdout + p.stderr
    assert json.loads(p.stdout)["error"] == {
        "kind": "forbidden", "exit_code": 2,
        "message": f"local directory {src} is not readable: check its permissions"}
    assert one_clear_line(p) == f"lakeshift: local directory {src} is not readable: check " \
                                "its permissions"


def _job_source(tmp_path: Path) -> Path:
    """A folder of two readable files and two the job may not read, all written an hour ago
    (a sync window ending now holds them)."""
    src = tmp_path / "src"
    src.mkdir()
    an_hour_ago = time.time() - 3600
    for name in ("a.txt", "locked-1.txt", "locked-2.txt", "ok.txt"):
        (src / name).write_text(name)
        os.utime(src / name, (an_hour_ago, an_hour_ago))
    (src / "locked-1.txt").chmod(0)
    (src / "locked-2.txt").chmod(0)
    return src


def _forbidden_job_hint() -> str:
    return ("  forbidden: to skip these and go on: plan the job again with --skip-errors "
            "forbidden (or grant read access and run again)")


def _csv_hint(this: str, again: str, number: int) -> str:
    return (f"  {this} failed objects to a file: `lakeshift failures {again} --run {number} "
            f"--csv-file failed.csv`; once their cause is fixed, `lakeshift sync {again} "
            "--files-from failed.csv` retries just them")


def _keys_of(hint: str, env: dict[str, str], cwd: Path) -> list[str]:
    """The keys in the CSV the hint's first command writes (run in ``cwd``)."""
    command = re.findall(r"`(lakeshift [^`]+)`", hint)[0]
    p = subprocess.run([str(BIN), *shlex.split(command)[1:]], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    with open(cwd / "failed.csv", newline="") as f:
        return sorted(row["object_key"] for row in csv.DictReader(f))


def _plan_again_hint(again: str, what: str) -> str:
    return (f"  to plan the job again: `lakeshift plan {again} --replan` with the flag above "
            f"(its other options and its partitions stay; its next {what} compares everything "
            "again, skipping what is identical)")


def test_a_runs_summary_ends_with_the_hints_and_where_the_failed_keys_are(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A run's failed objects are in the control DB, not its summary: it ends, as a copy's
    does, with what to do about each kind (a job's --skip-errors is planned with it), then
    the command that writes this run's failed keys to a file, which sync retries."""
    src = _job_source(tmp_path)
    db = f"sqlite:///{tmp_path}/j.db"
    p = lakeshift("plan", str(src), str(tmp_path / "dst"), "--job", "my job", "--db", db,
                  env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    again = f"--job 'my job' --db {db}"
    p = lakeshift("run", "--job", "my job", "--db", db, "--progress", "none", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.splitlines()[-3:] == [
        _forbidden_job_hint(),
        _plan_again_hint(again, "run"),
        _csv_hint("this run's", again, 1)], p.stdout
    assert _keys_of(p.stdout.splitlines()[-1], local_env, tmp_path) == [
        "locked-1.txt", "locked-2.txt"]

    p = lakeshift("run", "--job", "my job", "--db", db, "--json", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert out["failed_by_kind"] == {"forbidden": 2}, out
    assert out["hints"][0] == _forbidden_job_hint().strip(), out
    assert out["hints"][-1] == _csv_hint("this run's", again, 2).strip(), out
    assert out["failures_command"] == f"lakeshift failures {again} --run 2 --json"
    listed = subprocess.run([str(BIN), *shlex.split(out["failures_command"])[1:]],
                            env=local_env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert sorted(f["object_key"] for f in json.loads(listed.stdout)["failures"]) == [
        "locked-1.txt", "locked-2.txt"]

    # The hinted command with the hinted flag, as typed: the next run skips them, exit 0.
    plan_again = re.search(r"`lakeshift (plan [^`]+)`", out["hints"][1])
    assert plan_again is not None, out["hints"]
    flag = re.search(r"--skip-errors \S+", out["hints"][0])
    assert flag is not None, out["hints"]
    planned = subprocess.run([str(BIN), *shlex.split(plan_again.group(1)), *flag.group(0).split()],
                             env=local_env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    p = lakeshift("run", "--job", "my job", "--db", db, "--json", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["skipped_by_reason"].get("forbidden") == 2, p.stdout
    planned = subprocess.run([str(BIN), *shlex.split(plan_again.group(1)), "--skip-errors", ""],
                             env=local_env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert planned.returncode == 0, planned.stdout + planned.stderr

    # Nothing failed: no hint.
    for name in ("locked-1.txt", "locked-2.txt"):
        (src / name).chmod(0o644)
    p = lakeshift("run", "--job", "my job", "--db", db, "--json", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert (out["hints"], out["failures_command"], out["failed_by_kind"]) == ([], None, {})


def test_a_sync_pass_ends_with_the_hints_and_where_the_failed_keys_are(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src = _job_source(tmp_path)
    db = f"sqlite:///{tmp_path}/s.db"
    again = f"--job s --db {db}"
    p = lakeshift("sync", str(src), str(tmp_path / "dst"), "--job", "s", "--db", db,
                  "--lag", "0", "--progress", "none", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.splitlines()[-3:] == [
        _forbidden_job_hint(),
        _plan_again_hint(again, "pass"),
        _csv_hint("this pass's", again, 1)], p.stdout
    assert _keys_of(p.stdout.splitlines()[-1], local_env, tmp_path) == [
        "locked-1.txt", "locked-2.txt"]

    p = lakeshift("sync", "--job", "s", "--db", db, "--lag", "0", "--json", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert (out["failed"], out["failed_by_kind"]) == (2, {"forbidden": 2}), out
    assert out["hints"][0] == _forbidden_job_hint().strip(), out
    assert out["hints"][-1] == _csv_hint("this pass's", again, 2).strip(), out
    assert out["failures_command"] == f"lakeshift failures {again} --run 2 --json"
    for name in ("locked-1.txt", "locked-2.txt"):
        (src / name).chmod(0o644)


def test_a_keyed_pass_says_a_missing_name_is_not_in_the_source(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A `sync --files-from` pass lists nothing: a name it cannot find is not one that "went
    after the listing", and its hint (text and --json) says to check the list."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    (tmp_path / "keys.txt").write_text("a.txt\nnope.txt\n")
    db = f"sqlite:///{tmp_path}/k.db"
    args = ("sync", str(src), str(tmp_path / "dst"), "--job", "k", "--db", db,
            "--files-from", str(tmp_path / "keys.txt"))
    p = lakeshift(*args, env=local_env)
    assert p.returncode == 1, p.stdout + p.stderr
    hint = next(ln for ln in p.stdout.splitlines() if ln.startswith("  missing: "))
    assert "the source has no object of these names" in hint and "listing" not in hint, hint
    p = lakeshift(*args, "--json", env=local_env)
    hints = json.loads(p.stdout)["hints"]
    assert any("the source has no object of these names" in h for h in hints), hints
    assert not any("went after the listing" in h for h in hints), hints
