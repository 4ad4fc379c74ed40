"""``new_folder_parent``: what `lakeshift check` says of a local destination folder that does
not exist yet (tests/e2e/test_cli_local_disk.py runs it from the CLI, with real modes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakeshift.errors import UsageError
from lakeshift.stores.local.folders import new_folder_parent


def test_the_nearest_existing_folder_takes_an_unnamed_probe(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    where, how = new_folder_parent(str(tmp_path / "a" / "b" / "c"))
    assert where == str(tmp_path / "a")
    assert how == "an unnamed probe file written there, gone when closed"
    assert os.listdir(tmp_path / "a") == []


@pytest.mark.parametrize("in_the_way,needle", [
    ("file", "is a file, not a directory: move it away or choose another destination"),
    ("dangling", "is a symlink to nothing, in the way: remove it or choose another"),
    ("loop", "is a symlink that loops .*, in the way: remove it or choose another"),
])
def test_something_in_the_way_names_the_fix(tmp_path: Path, in_the_way: str,
                                            needle: str) -> None:
    blocker = tmp_path / "x"
    if in_the_way == "file":
        blocker.write_bytes(b"x")
    elif in_the_way == "loop":  # x -> y -> x: stat says ELOOP, not "no such file"
        blocker.symlink_to(tmp_path / "y")
        (tmp_path / "y").symlink_to(blocker)
    else:
        blocker.symlink_to("nowhere")
    for root in (blocker / "dst", blocker):
        with pytest.raises(UsageError, match=needle) as got:
            new_folder_parent(str(root))
        assert str(blocker) in str(got.value)


def test_without_unnamed_files_the_permissions_decide(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    assert new_folder_parent(str(tmp_path / "new"))[1] == \
        "its permissions allow this user to write there"
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    with pytest.raises(UsageError, match=f"{tmp_path} is not writable by this user: make it "
                       r"writable \(chmod/chown\)"):
        new_folder_parent(str(tmp_path / "new"))
    assert os.listdir(tmp_path) == []
