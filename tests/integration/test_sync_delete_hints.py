"""The errors sync --delete records on a partition name the job in the command they suggest
(shown later by status and the monitor, where the DB is known: the job alone)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lakeshift
from lakeshift.errors import ForbiddenError
from lakeshift.stores.local.store import LocalStore
from tests.helpers import next_second
from tests.helpers import old_lake as _lake


def _errors(db: str, job: str) -> list[str]:
    table = lakeshift.status(db=db, job=job).jobs[0].partition_table
    return [p.last_error for p in table if p.last_error]


def test_a_failed_deletion_names_the_job(tmp_path: Path, monkeypatch: Any) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["p0/a", "p0/b"])
    lakeshift.sync(str(src), str(dst), job="del job", db=db, lag="0")
    next_second()
    (src / "p0/a").unlink()

    async def delete(self: LocalStore, key: str) -> None:
        raise ForbiddenError(f"{key}: permission denied")

    monkeypatch.setattr(LocalStore, "delete", delete)
    r = lakeshift.sync(job="del job", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 1
    assert _errors(db, "del job") == [
        "some deletions failed (lakeshift failures --job 'del job')"]


def test_a_rename_that_cannot_be_copied_names_the_job(tmp_path: Path,
                                                      monkeypatch: Any) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["p0/a", "p1/other"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["p0/", "p1/"])
    next_second()
    os.rename(src / "p0/a", src / "p1/b")
    real_read, real_range = LocalStore.read, LocalStore.open_range
    real_copy = LocalStore.copy_from

    async def read(self: LocalStore, key: str, *a: Any, **kw: Any) -> Any:
        if key == "p1/b" and kw.get("if_match"):
            raise ForbiddenError("p1/b: permission denied")
        return await real_read(self, key, *a, **kw)

    async def open_range(self: LocalStore, key: str, *a: Any, **kw: Any) -> Any:
        if key == "p1/b":
            raise ForbiddenError("p1/b: permission denied")
        return await real_range(self, key, *a, **kw)

    async def copy_from(self: LocalStore, source: LocalStore, key: str, *a: Any,
                        **kw: Any) -> Any:
        if key == "p1/b":
            raise ForbiddenError("p1/b: permission denied")
        return await real_copy(self, source, key, *a, **kw)

    monkeypatch.setattr(LocalStore, "read", read)
    monkeypatch.setattr(LocalStore, "open_range", open_range)
    monkeypatch.setattr(LocalStore, "copy_from", copy_from)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 1
    assert ("a renamed object's new name could not be copied (lakeshift failures --job j)"
            in _errors(db, "j")), _errors(db, "j")
