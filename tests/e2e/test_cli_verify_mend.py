"""What `verify` finds, mended: `sync --files-from REPORT.csv` takes verify's report as it
was written and copies again the objects it calls missing or different (not its extra
or unverifiable rows); the next verify agrees.  (A new user had no way forward: the report
was refused for its lack of a `key` column, and `run` had nothing to do.)"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from tests.e2e.cli import lakeshift, one_clear_line


def test_a_verify_report_is_a_list_sync_mends_from(local_env: dict[str, str],
                                                   tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "d/c.txt", "same.txt"):
        (src / name).write_text(f"{name} v1")
    db = f"sqlite:///{tmp_path}/j.db"
    job = ("--job", "j", "--db", db)
    time.sleep(1.1)  # a sync window ends on a whole second: past the files' own second
    p = lakeshift("sync", str(src), str(dst), *job, "--lag", "0", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    (dst / "a.txt").unlink()                       # missing
    (dst / "d/c.txt").write_text("d/c.txt v9")     # same size, other bytes
    (dst / "extra.txt").write_text("only here")    # extra: not the source's to copy
    report = tmp_path / "report.csv"
    p = lakeshift("verify", *job, "--report", str(report), env=local_env)
    assert p.returncode == 1, p.stdout + p.stderr
    with open(report, newline="") as f:
        kinds = sorted(row["kind"] for row in csv.DictReader(f))
    assert kinds == ["checksum", "extra", "missing"], kinds
    assert not (tmp_path / "report.csv.csv").exists()  # the name typed is the file written
    # The summary names the command that mends them.
    assert (f"  to copy the missing and differing ones again: lakeshift sync --job j --db {db} "
            f"--files-from {report}") in p.stdout, p.stdout
    # The report's .json beside it is no list of keys: refused in one line, nothing recorded.
    p = lakeshift("sync", *job, "--files-from", str(report.with_suffix(".json")), env=local_env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "is JSON, not a list of keys" in one_clear_line(p), p.stderr

    p = lakeshift("sync", *job, "--files-from", str(report), "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (dst / "a.txt").read_text() == "a.txt v1"
    assert (dst / "d/c.txt").read_text() == "d/c.txt v1"
    assert (dst / "extra.txt").exists()  # --files-from never deletes
    p = lakeshift("verify", *job, "--report", str(tmp_path / "again.csv"), env=local_env)
    assert p.returncode == 1 and "EXTRA extra.txt" in p.stdout, p.stdout + p.stderr
    (dst / "extra.txt").unlink()
    p = lakeshift("verify", *job, "--report", str(tmp_path / "clean"), env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr

    # A report of nothing to copy (only an extra) says so in one line.
    only_extra = tmp_path / "extra.csv"
    (dst / "x.txt").write_text("x")
    p = lakeshift("verify", *job, "--report", str(only_extra), env=local_env)
    assert p.returncode == 1, p.stdout + p.stderr
    p = lakeshift("sync", *job, "--files-from", str(only_extra), env=local_env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "names nothing to copy" in one_clear_line(p), p.stderr
