"""The failure log fed back: `lakeshift failures --csv-file F` then `lakeshift sync --job J
--files-from F` retries exactly the objects that failed (README "Historical migrations")."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from tests.e2e.cli import lakeshift, obeying_file_modes, one_clear_line


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_a_failures_csv_fed_back_copies_only_the_failed_files(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a").mkdir(parents=True)
    for i in range(3):
        (src / "a" / f"f{i}.txt").write_text(f"file {i}")
    # Names a spreadsheet would take for a formula are written with an apostrophe in front:
    # read back, the apostrophe comes off again.
    unreadable = [src / "a" / "f1.txt", src / "=sum.txt", src / "'quoted.txt"]
    for p in unreadable[1:]:
        p.write_text(p.name)
    for p in unreadable:
        os.chmod(p, 0o000)
    db = f"sqlite:///{tmp_path}/control.db"
    p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db,
                  "--skip-errors", "forbidden", env=local_env)
    assert p.returncode == 0, p.stderr
    p = lakeshift("run", "--job", "j", "--db", db, "--json", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 0, p.stderr
    assert _files(dst) == {"a/f0.txt", "a/f2.txt"}
    csv_file = tmp_path / "failed.csv"
    p = lakeshift("failures", "--job", "j", "--db", db, "--csv-file", str(csv_file),
                  env=local_env)
    assert p.returncode == 0, p.stderr
    assert "3 failures" in p.stdout
    assert "'=sum.txt" in csv_file.read_text()

    for f in unreadable:
        os.chmod(f, 0o644)
    (src / "a" / "f0.txt").write_text("changed since: not in the list, not copied")
    (src / "new.txt").write_text("new since: not in the list, not copied")
    p = lakeshift("sync", "--job", "j", "--db", db, "--files-from", str(csv_file),
                  "--lag", "0", "--json", env=local_env)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert (s["copied"], s["failed"]) == (3, 0), s
    assert _files(dst) == {"a/f0.txt", "a/f1.txt", "a/f2.txt", "=sum.txt", "'quoted.txt"}
    assert (dst / "a" / "f1.txt").read_text() == "file 1"
    assert (dst / "'quoted.txt").read_text() == "'quoted.txt"
    assert (dst / "a" / "f0.txt").read_text() == "file 0"
    # Copied by the retry: no longer listed as failed.
    p = lakeshift("failures", "--job", "j", "--db", db, env=local_env)
    assert p.returncode == 0 and p.stdout.splitlines() == [
        "object_key,error_kind,message,attempts,skipped,at,partition_id,run_id"], p.stdout
    assert "job 'j' has no failed or skipped objects" in p.stderr, p.stderr
    # The log keeps every run's failures; --run N gives one run's (the retry's: none).
    p = lakeshift("failures", "--job", "j", "--db", db, "--run", "2", "--csv-file",
                  str(tmp_path / "retry.csv"), env=local_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("run 2 of job 'j' has no failed or skipped objects")
    p = lakeshift("failures", "--job", "j", "--db", db, "--run", "1", env=local_env)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 4, p.stdout  # header + 3
    p = lakeshift("failures", "--job", "j", "--db", db, "--run", "3", env=local_env)
    assert p.returncode == 2
    assert one_clear_line(p) == ("lakeshift: job 'j' has no run 3 (its runs are numbered 1 "
                                 "to 2; `lakeshift status --job` lists them)")


def test_the_failures_csv_of_a_job_under_a_prefix_names_the_same_objects(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    """The log holds source keys (``raw/…``); `--files-from` takes them as they are, not
    as keys relative to the source root (which would be ``raw/raw/…``)."""
    for name in ("x.txt", "y/z.txt", "w.txt"):
        s3.put_object(Bucket=bucket, Key=f"raw/{name}", Body=name.encode())
    dst = tmp_path / "dst"
    (dst / "x.txt").mkdir(parents=True)  # a directory in the way of x.txt
    db = f"sqlite:///{tmp_path}/control.db"
    p = lakeshift("plan", f"s3://{bucket}/raw/", str(dst), "--job", "j", "--db", db,
                  "--skip-errors", "invalid-name", env=cli_env)
    assert p.returncode == 0, p.stderr
    p = lakeshift("run", "--job", "j", "--db", db, env=cli_env)
    assert p.returncode == 0, p.stderr
    csv_file = tmp_path / "failed.csv"
    p = lakeshift("failures", "--job", "j", "--db", db, "--csv-file", str(csv_file),
                  env=cli_env)
    assert p.returncode == 0 and "1 failure" in p.stdout, p.stdout + p.stderr
    assert "raw/x.txt,invalid-name" in csv_file.read_text()

    (dst / "x.txt").rmdir()
    (dst / "w.txt").unlink()  # not in the list: stays gone
    p = lakeshift("sync", "--job", "j", "--db", db, "--files-from", str(csv_file),
                  "--lag", "0", "--json", env=cli_env)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert (s["copied"], s["failed"]) == (1, 0), s
    assert _files(dst) == {"x.txt", "y/z.txt"}
    assert (dst / "x.txt").read_text() == "x.txt"


def _rows(env: dict[str, str], db: str, *args: str) -> list[tuple[str, str, str]]:
    f = lakeshift("failures", "--job", "j", "--db", db, *args, env=env)
    assert f.returncode == 0, f.stderr
    return sorted((r["object_key"], r["error_kind"], r["skipped"])
                  for r in csv.DictReader(io.StringIO(f.stdout)))


def test_links_skipped_on_purpose_are_one_row_each_and_skipped_again_when_fed_back(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A partitioned job over a local source with a symlink loop, a link to the
    destination folder (both skipped on purpose) and a dangling link (skipped by
    --skip-errors), run, then synced: `failures` lists each link once (its latest state,
    not once per pass), and the CSV fed back to `sync --files-from` skips each again with
    its reason — they are at the source, as one entry each, not missing — so the pass
    succeeds."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    for folder in ("p1", "p2"):
        (src / folder).mkdir(parents=True)
        (src / folder / "f.txt").write_text(folder)
    (src / "p1" / "up").symlink_to("..")          # a folder above it: a loop
    (src / "p2" / "out").symlink_to("../../dst")  # the destination folder
    (src / "p2" / "gone").symlink_to("nowhere")   # dangling: skipped by --skip-errors
    dst.mkdir()
    db = f"sqlite:///{tmp_path}/control.db"
    p = lakeshift("plan", str(src), str(dst), "--job", "j", "--db", db,
                  "--prefix", "p1/", "--prefix", "p2/", "--skip-errors", "dangling-link",
                  env=local_env)
    assert p.returncode == 0, p.stderr
    p = lakeshift("run", "--job", "j", "--db", db, "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    p = lakeshift("sync", "--job", "j", "--db", db, "--lag", "0", "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["failed"] == 0, p.stdout
    both = [("p1/up", "symlink-loop", "True"), ("p2/gone", "dangling-link", "True"),
            ("p2/out", "destination-folder", "True")]
    assert _rows(local_env, db) == both
    text = lakeshift("failures", "--job", "j", "--db", db, "--csv-file",
                     str(tmp_path / "f.csv"), env=local_env)
    assert text.returncode == 0, text.stderr
    assert "3 failures" in text.stdout, text.stdout
    # Each run still has its own: run 1's three, the sync pass's three.
    assert _rows(local_env, db, "--run", "1") == both
    assert _rows(local_env, db, "--run", "2") == both

    p = lakeshift("sync", "--job", "j", "--db", db, "--files-from", str(tmp_path / "f.csv"),
                  "--lag", "0", "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout)
    assert (s["copied"], s["skipped"], s["failed"], s["exit_code"]) == (0, 3, 0, 0), s
    assert _rows(local_env, db, "--run", "3") == both
    assert sorted(_files(dst)) == ["p1/f.txt", "p2/f.txt"]
    st = lakeshift("status", "--job", "j", "--db", db, "--json", env=local_env)
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["jobs"][0]["failed"] == 0, st.stdout
    assert _rows(local_env, db) == both
