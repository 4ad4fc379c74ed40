"""Which failures a sync pass clears, as ``lakeshift failures`` lists them (local disk +
SQLite): a pass under --path-template clears only in the folders it listed, and a failed
deletion of sync --delete stays until a pass that deletes."""

from __future__ import annotations

from pathlib import Path

import lakeshift
from lakeshift.control.repository import ControlDB
from lakeshift.model import Failure
from tests.helpers import next_second
from tests.helpers import old_lake as _lake


def _record(db: str, run_id: int, failure: Failure, deletion: bool = False) -> None:
    """``failure`` in the job's one partition, recorded by run ``run_id``."""
    control = ControlDB(db)
    try:
        job = control.job("j").id
        [p] = control.partitions(job)
        control.add_failures(job, p["id"], run_id, [failure], deletion)
    finally:
        control.close()


def _listed(db: str) -> list[str]:
    return [f.object_key for f in lakeshift.failures(job="j", db=db).failures]


def test_a_path_template_pass_keeps_a_failure_in_a_folder_it_did_not_list(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["logs/2020/01/01/00/a", "logs/2020/01/01/00/b"])
    first = lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["logs/"])
    _record(db, first.run.run_id, Failure("logs/2020/01/01/00/b", "forbidden", "denied", 1))
    assert _listed(db) == ["logs/2020/01/01/00/b"]
    next_second()
    # The window's hours only: 2020's folder is not listed, its failure not passed.
    tpl = lakeshift.sync(job="j", db=db, lag="0", path_template="logs/{yyyy}/{MM}/{dd}/{HH}/")
    assert [w.state for w in tpl.windows] == ["succeeded"]
    assert _listed(db) == ["logs/2020/01/01/00/b"]
    next_second()
    lakeshift.sync(job="j", db=db, lag="0")  # a whole listing passes it
    assert _listed(db) == []


def test_a_failed_deletion_stays_listed_until_a_pass_that_deletes(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["a", "b"])
    first = lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    # As the deletion phase of a --delete pass records a destination object it could not
    # delete.
    _record(db, first.run.run_id, Failure("b", "forbidden", "could not delete from the "
                                          "destination: denied", 1), deletion=True)
    next_second()
    plain = lakeshift.sync(job="j", db=db, lag="0")
    assert [w.state for w in plain.windows] == ["succeeded"]
    assert _listed(db) == ["b"]
    next_second()
    deleting = lakeshift.sync(job="j", db=db, lag="0", delete=True)
    assert [w.state for w in deleting.windows] == ["succeeded"]
    assert _listed(db) == []
