"""sync --delete: the second review of issue 11 (local disk + SQLite; each test failed
before its fix).  Sleeps of 1.1 s: modification times have whole seconds, so a change must
land in the next window."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.control.repository import ControlDB
from lakeshift.errors import AuthError
from lakeshift.stores.local.store import LocalStore
from tests.helpers import file_names as _names
from tests.helpers import next_second
from tests.helpers import old_lake as _lake


def _sql(tmp_path: Path, query: str) -> list[tuple[Any, ...]]:
    c = sqlite3.connect(f"{tmp_path}/c.db")
    try:
        return c.execute(query).fetchall()
    finally:
        c.close()


def test_a_pass_refused_by_the_cap_fails_its_partitions(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, [f"p{p}/k{i}" for p in range(2) for i in range(3)])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["p0/", "p1/"])
    for i in range(3):
        (src / f"p0/k{i}").unlink()
    next_second()
    over = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="2")
    assert over.exit_code == 1 and over.deleted == 0
    rows = dict(_sql(tmp_path, "select prefix, state from lakeshift_partitions"))
    assert rows == {"p0/": "failed", "p1/": "succeeded"}
    (error,) = _sql(tmp_path, "select last_error from lakeshift_partitions "
                              "where prefix = 'p0/'")[0]
    assert "more than --max-delete 2" in error
    # The run's row counts the failed partition (the deletion phase ran before it closed).
    assert _sql(tmp_path, "select partitions_done, partitions_failed, state from "
                          "lakeshift_runs order by id desc limit 1") == [(1, 1, "failed")]
    assert lakeshift.sync(job="j", db=db, lag="0", delete=True,
                          max_delete="3").deleted == 3


def test_deletions_are_recorded_as_they_happen(tmp_path: Path, monkeypatch: Any) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, [f"k{i}" for i in range(6)])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    for i in range(5):
        (src / f"k{i}").unlink()
    real = LocalStore.delete
    calls: list[str] = []

    async def delete(self: LocalStore, key: str) -> None:
        calls.append(key)
        if len(calls) == 3:
            raise AuthError("the destination's key was revoked")
        await real(self, key)

    monkeypatch.setattr(LocalStore, "delete", delete)
    with pytest.raises(AuthError):
        lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%",
                       concurrency=1)
    gone = sorted(f"k{i}" for i in range(6) if not (dst / f"k{i}").exists())
    assert len(gone) == 2
    recorded = sorted(k for (k,) in _sql(tmp_path, "select destination_key from "
                                                   "lakeshift_sync_deletions"))
    assert recorded == gone


def test_a_source_that_reappears_before_its_deletion_is_kept(
        tmp_path: Path, monkeypatch: Any) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["a", "b", "c"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    (src / "a").unlink()
    (src / "b").unlink()
    real = ControlDB.delete_candidate_counts

    def counts(self: ControlDB, run_id: int) -> dict[int, int]:
        # After the listing, before the deletions: "a" is written again.
        (src / "a").write_bytes(b"v2")
        return real(self, run_id)

    monkeypatch.setattr(ControlDB, "delete_candidate_counts", counts)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 0 and r.deleted_keys == ("b",) and r.kept == 1
    assert _names(dst) == ["a", "c"]


def test_a_source_that_reappears_during_its_deletion_is_copied_back(
        tmp_path: Path, monkeypatch: Any) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["a", "b"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    (src / "a").unlink()
    real = LocalStore.delete

    async def delete(self: LocalStore, key: str) -> None:
        await real(self, key)
        (src / "a").write_bytes(b"v2")

    monkeypatch.setattr(LocalStore, "delete", delete)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 0
    assert (dst / "a").read_bytes() == b"v2"


def test_no_deletion_under_a_folder_the_pass_could_not_see(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["d/a", "d/b", "e/x", "top"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    # d/ can no longer be walked (a symlink to a folder above): its objects are not gone.
    for n in ("a", "b"):
        (src / "d" / n).unlink()
    (src / "d").rmdir()
    (src / "d").symlink_to(src)
    (src / "e" / "x").unlink()
    next_second()
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 0
    assert r.deleted_keys == ("e/x",) and _names(dst) == ["d/a", "d/b", "top"]
    assert r.kept == 2


def test_a_second_concurrent_pass_neither_resets_nor_redoes_the_first_ones_partitions(
        tmp_path: Path, monkeypatch: Any) -> None:
    import threading

    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["p0/a", "p1/a"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["p0/", "p1/"])
    next_second()
    real = LocalStore.list_page
    blocked, release = threading.Event(), threading.Event()
    first: list[Any] = []

    async def list_page(self: LocalStore, prefix: str, *a: Any, **kw: Any) -> Any:
        if threading.current_thread().name == "first" and prefix.startswith("p1/"):
            blocked.set()
            release.wait(30)  # the first pass holds p1's lease, having finished p0
        return await real(self, prefix, *a, **kw)

    monkeypatch.setattr(LocalStore, "list_page", list_page)
    t = threading.Thread(name="first", target=lambda: first.append(
        lakeshift.sync(job="j", db=db, lag="0", batch_count=1)))
    t.start()
    try:
        assert blocked.wait(30)
        second = lakeshift.sync(job="j", db=db, lag="0")
    finally:
        release.set()
        t.join(30)
    assert second.windows == () and second.run.succeeded == 0
    assert first[0].exit_code == 0 and len(first[0].windows) == 2
    # p0's window of the first pass is its only one since the job was made.
    assert _sql(tmp_path, "select count(*) from lakeshift_sync_windows w join "
                          "lakeshift_partitions p on p.id = w.partition_id "
                          "where p.prefix = 'p0/'") == [(2,)]


def test_a_rename_that_kept_its_time_is_copied_before_the_old_name_goes(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["p0/a", "p0/keep", "p1/other"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["p0/", "p1/"])
    next_second()
    # A file system's rename keeps the modification time: the new name is older than the
    # window, in another partition than the old one.
    os.rename(src / "p0/a", src / "p1/a-renamed")
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 0
    assert r.renames == (("p0/a", "p1/a-renamed"),) and r.deleted_keys == ("p0/a",)
    assert _names(dst) == ["p0/keep", "p1/a-renamed", "p1/other"]
    assert (dst / "p1/a-renamed").read_bytes() == b"v1"


def test_a_rename_among_many_new_objects_of_its_size_is_never_lost(tmp_path: Path) -> None:
    # Pairing looks at a bounded number of same-size new names (and by size alone above
    # 16 MiB without MD5s): whatever it finds, a source object with no destination copy is
    # copied by a --delete pass, so a rename that kept its time is never lost.
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["p0/a", "p1/other"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["p0/", "p1/"])
    next_second()
    for i in range(60):
        (src / f"p1/new{i:02d}").write_bytes(b"n" + bytes([65 + i % 26]))
    os.rename(src / "p0/a", src / "p1/z-renamed")
    next_second()
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 0 and r.deleted_keys == ("p0/a",)
    assert (dst / "p1/z-renamed").read_bytes() == b"v1"
    assert len(_names(dst)) == 62


def test_the_old_name_stays_when_the_new_one_cannot_be_copied(
        tmp_path: Path, monkeypatch: Any) -> None:
    from lakeshift.errors import ForbiddenError

    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["p0/a", "p1/other"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["p0/", "p1/"])
    next_second()
    os.rename(src / "p0/a", src / "p1/b")
    real_read, real_range = LocalStore.read, LocalStore.open_range
    real_copy = LocalStore.copy_from

    async def read(self: LocalStore, key: str, *a: Any, **kw: Any) -> Any:
        if key == "p1/b" and kw.get("if_match"):  # a copy's read (not a comparison's)
            raise ForbiddenError("p1/b: permission denied")
        return await real_read(self, key, *a, **kw)

    async def open_range(self: LocalStore, key: str, *a: Any, **kw: Any) -> Any:
        if key == "p1/b":
            raise ForbiddenError("p1/b: permission denied")
        return await real_range(self, key, *a, **kw)

    async def copy_from(self: LocalStore, source: LocalStore, key: str, *a: Any,
                        **kw: Any) -> Any:  # (local -> local: read and write in one call)
        if key == "p1/b":
            raise ForbiddenError("p1/b: permission denied")
        return await real_copy(self, source, key, *a, **kw)

    monkeypatch.setattr(LocalStore, "read", read)
    monkeypatch.setattr(LocalStore, "open_range", open_range)
    monkeypatch.setattr(LocalStore, "copy_from", copy_from)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 1 and r.deleted == 0 and r.renames == ()
    assert _names(dst) == ["p0/a", "p1/other"]
    assert [w.state for w in r.windows if w.partition == "p0/"] == ["failed"]
    # The partition's error names the job in the command it suggests (status, monitor).
    errors = [p.last_error for p in lakeshift.status(db=db, job="j").jobs[0].partition_table
              if p.last_error]
    assert ("a renamed object's new name could not be copied (lakeshift failures --job j)"
            in errors), errors


def test_a_cancel_during_the_deletion_phase_stops_it(tmp_path: Path, monkeypatch: Any) -> None:
    # The deletions come after every partition (no partition heartbeat is left): the
    # run's own heartbeat reads the monitor's cancel there too (it used to be ignored,
    # the run deleting on and ending as succeeded).
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, [f"k{i}" for i in range(6)])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    for i in range(5):
        (src / f"k{i}").unlink()
    next_second()
    real = LocalStore.delete

    async def delete(self: LocalStore, key: str) -> None:
        [(run_id,)] = _sql(tmp_path, "select id from lakeshift_runs where state = 'running'")
        assert lakeshift.cancel_run(run_id, db=db)
        await asyncio.sleep(3)  # the run's heartbeat (1 s here) comes meanwhile
        await real(self, key)

    monkeypatch.setattr(LocalStore, "delete", delete)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%",
                       concurrency=1, lease_seconds=4)
    assert r.run.cancelled and r.deleted == 0
    assert _names(dst) == [f"k{i}" for i in range(6)]
    assert _sql(tmp_path, "select state from lakeshift_runs order by id desc limit 1") == [
        ("cancelled",)]
    monkeypatch.setattr(LocalStore, "delete", real)
    again = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert again.exit_code == 0 and again.deleted == 5
    assert _names(dst) == ["k5"]
