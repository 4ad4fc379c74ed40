"""A destination that shares only a string prefix with its source (``raw`` → ``raw2/``) is
inside it only when the source lists it: a folder ``raw`` takes ``raw/``, not ``raw2/``, so
copying it beside itself is a migration, not a loop; a name prefix ``raw`` (no such folder)
takes ``raw2/`` too and is refused before anything is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.errors import UsageError


def _names(blob_service: Any, container: str) -> list[str]:
    return sorted(b.name for b in blob_service.get_container_client(container).list_blobs())


def test_a_folder_copied_beside_itself_is_not_inside_it(blob_service: Any,
                                                         container: str, tmp_path: Path) -> None:
    c = blob_service.get_container_client(container)
    for name in ("raw/a.txt", "raw/b/c.txt"):
        c.upload_blob(name, b"x")
    result = lakeshift.copy(f"az://{container}/raw", f"az://{container}/raw2/")
    assert result.stats.copied == 2, result
    db = f"sqlite:///{tmp_path}/j.db"
    plan = lakeshift.plan(f"az://{container}/raw", f"az://{container}/raw-v2", job="j", db=db)
    assert plan.job.partitions == 1
    assert _names(blob_service, container) == ["raw/a.txt", "raw/b/c.txt", "raw2/a.txt",
                                               "raw2/b/c.txt"]
    synced = lakeshift.sync(f"az://{container}/raw", f"az://{container}/raw3/", job="s",
                            db=f"sqlite:///{tmp_path}/s.db")
    assert synced.passes == 1 and synced.run.failed == 0


def test_a_name_prefix_that_takes_the_destination_is_refused(blob_service: Any,
                                                              container: str,
                                                              tmp_path: Path) -> None:
    c = blob_service.get_container_client(container)
    c.upload_blob("raw-a.txt", b"x")
    with pytest.raises(UsageError, match="is inside the source"):
        lakeshift.copy(f"az://{container}/raw", f"az://{container}/raw2/")
    db = tmp_path / "j.db"
    with pytest.raises(UsageError, match="is inside the source"):
        lakeshift.plan(f"az://{container}/raw", f"az://{container}/raw2/", job="j",
                       db=f"sqlite:///{db}")
    assert not db.exists()
    with pytest.raises(UsageError, match="is inside the source"):
        lakeshift.sync(f"az://{container}/raw", f"az://{container}/raw2/", job="s",
                       db=f"sqlite:///{db}")
    assert not db.exists()
    assert _names(blob_service, container) == ["raw-a.txt"]
