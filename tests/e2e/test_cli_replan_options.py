"""``plan --job J --replan`` with copy options and no SRC DST changes those options of the
job (its other options and partitions kept, every partition restarted), as the failure
hints of a run tell the user to do; an option only a plan from SRC DST sets is refused in
one line, and a bad value changes nothing (it was accepted, exit 0, and silently dropped).

Local disk: a file the copy may not read (mode bits binding even as root)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.e2e.cli import lakeshift, obeying_file_modes, one_clear_line


def _options(db_file: Path) -> dict[str, Any]:
    with sqlite3.connect(db_file) as c:
        return dict(json.loads(c.execute("SELECT options FROM lakeshift_jobs").fetchone()[0]))


def test_replan_with_a_copy_option_changes_it_and_keeps_the_rest(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    for name in ("a.txt", "d/b.txt", "locked.txt", "skip.log"):
        (src / name).write_text(name)
    (src / "locked.txt").chmod(0)
    db_file = tmp_path / "j.db"
    db = f"sqlite:///{db_file}"
    job = ("--job", "j", "--db", db)
    p = lakeshift("plan", str(src), str(dst), *job, "--exclude", "*.log", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    p = lakeshift("run", *job, "--json", env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 1 and json.loads(p.stdout)["failed_by_kind"] == {"forbidden": 1}

    # Refused, nothing changed: a bad value, and an option only a plan from SRC DST sets.
    before = _options(db_file)
    for bad, needle in ((("--skip-errors", "bogus"), "--skip-errors bogus: use any of"),
                        (("--skip-errors", "forbidden", "--prefix", "d/"),
                         "--prefix is set by planning the job from its SRC DST"),
                        (("--include", "["), "is not a valid glob")):
        p = lakeshift("plan", *job, "--replan", *bad, env=local_env)
        assert p.returncode == 2, p.stdout + p.stderr
        assert needle in one_clear_line(p), p.stderr
    assert _options(db_file) == before

    # The hint's command: the job's --skip-errors changes, its --exclude stays.
    p = lakeshift("plan", *job, "--replan", "--skip-errors", "forbidden", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("job 'j' now copies with --skip-errors forbidden (its other "
                               "options kept)"), p.stdout
    after = _options(db_file)
    assert after["skip_errors"] == ["forbidden"] and after["exclude"] == ["*.log"], after
    assert {k: v for k, v in after.items() if k != "skip_errors"} == \
        {k: v for k, v in before.items() if k != "skip_errors"}
    p = lakeshift("run", *job, "--json", env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert (out["failed"], out["skipped_by_reason"].get("forbidden")) == (0, 1), out
    assert sorted(str(x.relative_to(dst)) for x in dst.rglob("*.txt")) == ["a.txt", "d/b.txt"]
    (src / "locked.txt").chmod(0o644)
