"""A destination inside its source is refused before any request (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakeshift.errors import UsageError
from lakeshift.plan.source import (
    destination_config,
    refuse_destination_inside_source,
    source_config,
)
from lakeshift.stores.base import StoreOptions


def _refused(src: str, dst: str, src_opts: StoreOptions | None = None,
             dst_opts: StoreOptions | None = None) -> bool:
    try:
        refuse_destination_inside_source(source_config(src, src_opts),
                                         destination_config(dst, dst_opts))
    except UsageError as e:
        assert e.exit_code == 2 and "is inside the source" in str(e)
        return True
    return False


@pytest.mark.parametrize("src,dst,refused", [
    ("s3://bkt/d", "s3://bkt/d/sub", True),
    ("s3://bkt/d/", "s3://bkt/d/", True),
    ("s3://bkt/", "s3://bkt/anything", True),
    ("s3://bkt/logs/2024-0", "s3://bkt/logs/2024-05-copy/", True),   # a string prefix takes it
    ("s3://bkt/d", "s3://bkt/e/d", False),
    ("s3://bkt/d/sub", "s3://bkt/d", False),
    ("s3://bkt/d", "s3://other-bkt/d/sub", False),
    ("az://cnt/d", "az://cnt/d/sub", True),
    ("az://cnt/", "az://cnt/x", True),
    ("az://cnt/d", "az://cnt2/d/sub", False),
    ("abfss://cnt@acct1.dfs.core.windows.net/d",
     "abfss://cnt@acct2.dfs.core.windows.net/d/", False),
    ("abfss://cnt@acct1.dfs.core.windows.net/d",
     "abfss://cnt@acct1.dfs.core.windows.net/d/", True),
    ("s3://bkt/d", "az://b0b/d/sub", False),
])
def test_object_stores(src: str, dst: str, refused: bool) -> None:
    assert _refused(src, dst) is refused


def test_same_bucket_name_on_another_endpoint_is_another_bucket() -> None:
    assert not _refused("s3://bkt/d", "s3://bkt/d/sub", StoreOptions(s3_endpoint="http://127.0.0.1:1"),
                        StoreOptions(s3_endpoint="http://127.0.0.1:2"))


def test_local_paths_resolved_with_symlinks(tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    assert _refused(str(src), str(src / "sub"))
    assert _refused(str(src), str(src))
    assert _refused(str(src), str(src / "not" / "yet" / "there"))
    assert not _refused(str(src), str(tmp_path / "d-copy"))
    (src / "sub").mkdir()
    assert not _refused(str(src / "sub"), str(src))
    # a link outside the source that points into it
    os.symlink(src, tmp_path / "alias")
    assert _refused(str(src), str(tmp_path / "alias" / "sub"))
    assert _refused(str(tmp_path / "alias"), str(src / "sub"))


def test_a_local_source_naming_a_file_or_name_prefix(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("a")
    one = str(tmp_path / "d" / "a.csv")
    assert not _refused(one, str(tmp_path / "d" / "out"))     # takes only a.csv
    assert _refused(one, str(tmp_path / "d"))                  # onto itself
    assert _refused(one, str(tmp_path / "d" / "a.csv-copy"))   # a.csv… takes it
    (tmp_path / "d" / "log.txt").write_text("l")  # "lo" names it (a typo would be refused)
    assert _refused(str(tmp_path / "d" / "lo"), str(tmp_path / "d" / "logs-out"))
