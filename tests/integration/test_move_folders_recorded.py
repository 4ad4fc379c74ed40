"""A move (--delete-source-after-verify) from local disk removes the source folders it
emptied, and says so as it says so of the files: counted (``folders_removed``: the
summary's "removed N empty folders"), listed among the deletions (key ``d/``, no MD5), and
in a job recorded in ``lakeshift_deletions``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import lakeshift


def _tree(src: Path) -> None:
    for d in ("a/b", "a/c", "e"):
        (src / d).mkdir(parents=True)
    (src / "a/b/1.txt").write_bytes(b"1")
    (src / "a/c/keep.log").write_bytes(b"kept")  # left out by the filter: a/c and a stay
    (src / "top.txt").write_bytes(b"t")


def test_a_move_counts_and_lists_the_folders_it_removed(tmp_path: Path) -> None:
    src, out = tmp_path / "data", tmp_path / "out"
    _tree(src)
    moved = lakeshift.copy(str(src), str(out), delete_source_after_verify=True,
                           exclude=["*.log"])
    assert (moved.exit_code, moved.stats.sources_deleted) == (0, 2)
    assert sorted(str(p.relative_to(src)) for p in src.rglob("*")) == [
        "a", "a/c", "a/c/keep.log"]
    # a/b held a file moved; e was empty (made at the destination, then removed).
    assert moved.stats.folders_removed == 2
    assert sorted((d.key, d.destination_key, d.md5) for d in moved.deletions if d.folder) == [
        ("a/b/", "a/b/", ""), ("e/", "e/", "")]
    assert all(d.kept is None for d in moved.deletions)

    none = lakeshift.copy(str(src), str(out), delete_source_after_verify=True,
                          exclude=["*.log"])
    assert (none.stats.folders_removed, [d for d in none.deletions if d.folder]) == (0, [])


def test_a_move_in_a_job_records_the_folders_it_removed(tmp_path: Path) -> None:
    src, out = tmp_path / "data", tmp_path / "out"
    _tree(src)
    (src / "a/c/keep.log").unlink()
    db = tmp_path / "m.db"
    lakeshift.plan(str(src), str(out), job="mv", db=f"sqlite:///{db}",
                   delete_source_after_verify=True)
    ran = lakeshift.run(job="mv", db=f"sqlite:///{db}")
    assert (ran.exit_code, ran.stats.sources_deleted, ran.stats.folders_removed) == (0, 2, 4)
    assert src.is_dir() and list(src.iterdir()) == []
    rows = sqlite3.connect(db).execute(
        "select source_key, destination_key, md5 from lakeshift_deletions").fetchall()
    # The files with their MD5, the folders (named d/ on both sides) with none.
    assert sorted((k, d) for k, d, _ in rows) == [
        ("a/", "a/"), ("a/b/", "a/b/"), ("a/b/1.txt", "a/b/1.txt"), ("a/c/", "a/c/"),
        ("e/", "e/"), ("top.txt", "top.txt")]
    assert {k: len(m) for k, _, m in rows} == {"a/": 0, "a/b/": 0, "a/b/1.txt": 32, "a/c/": 0,
                                               "e/": 0, "top.txt": 32}
