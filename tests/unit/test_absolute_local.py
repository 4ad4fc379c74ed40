"""plan/places.absolute_local: what plan and sync save for a job's local paths, and what
status shows for one saved relative before."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.plan.places import absolute_local


def test_a_relative_path_is_made_absolute_from_the_current_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert absolute_local("../L/jout") == f"{tmp_path.parent}/L/jout"
    assert absolute_local("out/") == f"{tmp_path}/out/"  # (a folder's slash kept)
    assert absolute_local("~/lake") == f"{tmp_path}/home/lake"
    assert absolute_local(".") == str(tmp_path)


def test_urls_absolute_paths_and_non_urls_are_kept_as_given() -> None:
    for url in ("/srv/lake/", "file:///srv/lake", "s3://bucket/raw/", "az://cnt/raw",
                "abfss://fs@acct.dfs.core.windows.net/x", "s3:bucket/x", ""):
        assert absolute_local(url) == url
