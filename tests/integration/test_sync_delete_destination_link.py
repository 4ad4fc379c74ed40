"""sync --delete and a local source's link to its destination folder (README "local
sources", the destination-folder rule): the deletion phase asks the source again for each
candidate, by name; a name that now goes through a link to the destination must not find
the destination's own file there.  The link appears between the listing and the look-ups
(a race a CLI run cannot time), so the tests make it appear there (local disk + SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lakeshift
from lakeshift.control.repository import ControlDB
from lakeshift.stores.local.store import LocalStore
from tests.helpers import file_names as _names
from tests.helpers import old_lake as _lake


def _linked(src: Path, dst: Path) -> None:
    """The source folder ``link`` (empty now) becomes a link to the destination folder,
    where a file ``x`` is: ``src/link/x`` names the destination's ``x``."""
    (src / "link").rmdir()
    (src / "link").symlink_to(dst)


def test_a_candidate_whose_name_now_leads_into_the_destination_is_deleted_not_kept(
        tmp_path: Path, monkeypatch: Any) -> None:
    """``link/x`` is gone from the source folder ``link`` when the pass lists it: its copy
    is a candidate.  Before the deletion ``link`` becomes a link to the destination: the
    look-up (by a source store not told its destination) found the destination's ``x``
    through it and kept ``link/x`` as a source that reappeared.  The walk lists nothing
    below such a link, so the copy has no source: it is deleted."""
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["a", "x", "link/x"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    assert _names(dst) == ["a", "link/x", "x"]
    (src / "link" / "x").unlink()
    real = ControlDB.delete_candidate_counts

    def counts(self: ControlDB, run_id: int) -> dict[int, int]:
        _linked(src, dst)  # after the listing, before the look-ups
        return real(self, run_id)

    monkeypatch.setattr(ControlDB, "delete_candidate_counts", counts)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 0, r
    assert (r.deleted_keys, r.kept) == (("link/x",), 0), r
    assert _names(dst) == ["a", "x"]


def test_a_deleted_copy_is_not_copied_back_from_the_destination_itself(
        tmp_path: Path, monkeypatch: Any) -> None:
    """The same link made while ``link/x`` is being deleted: the look-up after the
    deletion (one that reappeared meanwhile is copied back) found the destination's ``x``
    through it and copied it back to ``link/x`` — the destination read and copied into
    itself.  It finds nothing there: the deletion stands."""
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["a", "x", "link/x"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    (src / "link" / "x").unlink()
    real = LocalStore.delete

    async def delete(self: LocalStore, key: str) -> None:
        await real(self, key)
        if key == "link/x":
            _linked(src, dst)

    monkeypatch.setattr(LocalStore, "delete", delete)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 0, r
    assert r.deleted_keys == ("link/x",), r
    assert _names(dst) == ["a", "x"]
