"""The errors sync --delete records on a partition name the job in the command they suggest
(shown later by status and the monitor, where the DB is known: the job alone); a rename's
new name that cannot be copied: test_sync_deletions's old-name test."""

from __future__ import annotations

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

