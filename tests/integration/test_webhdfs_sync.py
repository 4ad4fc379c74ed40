"""Delta sync (issue 11) on WebHDFS sources (issue 12, item 4): windows by modification
time, both dialects, to local disk; --delete removes what the source lost."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lakeshift
from tests.doubles.fixtures import GEN1_HOST
from tests.doubles.webhdfs import WebHdfsDouble
from tests.helpers import next_second


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("dialect", ["gen1", "hadoop"])
def test_sync_copies_what_changed_since_the_last_window(dialect: str, tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    double: WebHdfsDouble = request.getfixturevalue(dialect)
    old = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    for rel in ("s/a/one.txt", "s/a/two.txt", "s/b/three.txt"):
        double.write(rel, rel.encode())
        os.utime(double.root / rel, (old, old))
    url = f"adl://{GEN1_HOST}/s/" if dialect == "gen1" else "webhdfs://nn:9870/s/"
    dst, db = tmp_path / "dst", f"sqlite:///{tmp_path}/sync.db"
    first = lakeshift.sync(url, str(dst), job="w", db=db, lag="0")
    assert (first.run.stats.copied, first.exit_code) == (3, 0)
    next_second()  # windows end on whole seconds
    double.write("s/a/two.txt", b"two, changed")
    double.write("s/b/new.txt", b"new")
    (double.root / "s/b/three.txt").unlink()
    next_second()
    second = lakeshift.sync(job="w", db=db, lag="0", delete=True)
    assert second.exit_code == 0
    assert (second.run.stats.copied, second.deleted) == (2, 1)
    assert _tree(dst) == {"a/one.txt": b"s/a/one.txt", "a/two.txt": b"two, changed",
                          "b/new.txt": b"new"}
