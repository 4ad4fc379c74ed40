"""The local walk pages through symlink loops in key order: each loop is one entry, listed
once, however the pages fall."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lakeshift.errors import DanglingLinkError, DestinationFolderError, ForbiddenError
from lakeshift.stores.base import StoreConfig
from lakeshift.stores.local.store import LocalStore
from lakeshift.urls import parse_url


@pytest.mark.parametrize("page_size", [1, 2, 3, 1000])
def test_pages_in_order_each_key_once_with_loops(tmp_path: Path, page_size: int) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d-a", "d.txt", "d/sub/f", "d/z", "e"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "d" / "sub" / "up").symlink_to("..")      # loops to d/
    (tmp_path / "d" / "self").symlink_to("self")          # ELOOP

    async def keys() -> list[str]:
        store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
        store.page_size = page_size
        out: list[str] = []
        token = None
        while True:
            page = await store.list_page("", token)
            out += [o.key for o in page.objects]
            token = page.token
            if token is None:
                return out

    got = asyncio.run(keys())
    assert got == sorted(got)
    assert got == ["d-a", "d.txt", "d/self", "d/sub/f", "d/sub/up", "d/z", "e"]


def test_links_into_the_destination_are_entries_whose_read_says_so_even_once_made(
        tmp_path: Path) -> None:
    """A source's links that lead to the destination folder or inside it, dangling when
    listed (the copy has not made their targets yet): one empty entry each, never walked
    into; read once the targets exist (a folder, a file with bytes), each still says
    destination-folder and never yields the file's bytes.  The walk, the folder listing
    (the partitioner's) and the copy's read (copy_from's, in a worker thread) alike."""
    src, dst = tmp_path / "data", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    (src / "a" / "f1.txt").write_bytes(b"one")
    (src / "a" / "into").symlink_to("../../out/a")         # a folder, inside the destination
    (src / "file").symlink_to("../out/a/f1.txt")           # a file, inside the destination
    (src / "whole").symlink_to("../out")                   # the destination itself
    (src / "other").symlink_to("../elsewhere")             # dangling, elsewhere
    store = LocalStore(StoreConfig(parse_url(str(src)), destination_folder=str(dst)))

    async def listed() -> tuple[list[tuple[str, int]], list[str], list[str]]:
        walk = await store.list_page("")
        top = await store.list_page("", delimiter="/")
        a = await store.list_page("a/", delimiter="/")
        return ([(o.key, o.size) for o in walk.objects], list(top.folders),
                [o.key for o in [*top.objects, *a.objects]])

    entries = [("a/f1.txt", 3), ("a/into", 0), ("file", 0), ("other", 0), ("whole", 0)]
    assert asyncio.run(listed()) == (entries, ["a/"], ["file", "other", "whole", "a/f1.txt",
                                                      "a/into"])
    (dst / "a").mkdir(parents=True)                       # what the copy makes meanwhile
    (dst / "a" / "f1.txt").write_bytes(b"one")
    # Listed again, they are still the same entries (not the folder, not the file's size).
    assert asyncio.run(listed()) == (entries, ["a/"], ["file", "other", "whole", "a/f1.txt",
                                                      "a/into"])
    for key in ("a/into", "file", "whole"):
        with pytest.raises(DestinationFolderError, match="destination folder"):
            asyncio.run(store.read(key))
        with pytest.raises(DestinationFolderError):
            asyncio.run(LocalStore(StoreConfig(parse_url(str(tmp_path / "copy")))).copy_from(
                store, key, None, key, 0, None, None, None))
    with pytest.raises(DanglingLinkError):
        asyncio.run(store.read("other"))
    assert asyncio.run(store.read("a/f1.txt")).data == b"one"
    assert not (tmp_path / "copy" / "file").exists()
    # A link that leads elsewhere is read through as ever (O_NOFOLLOW, then followed).
    (src / "near").symlink_to("a/f1.txt")
    assert asyncio.run(store.read("near")).data == b"one"


def linked_folder_holding_the_destination(tmp_path: Path) -> tuple[LocalStore, Path, Path]:
    """``data/ext -> ../elsewhere`` with the destination ``elsewhere/out`` (which holds
    ``a/old.txt``) and ``elsewhere/e.txt``: the source store told its destination, the
    source folder and the destination."""
    src, ext, dst = tmp_path / "data", tmp_path / "elsewhere", tmp_path / "elsewhere" / "out"
    src.mkdir()
    (dst / "a").mkdir(parents=True)
    (dst / "a" / "old.txt").write_bytes(b"copied before")
    (ext / "e.txt").write_bytes(b"e")
    (src / "ext").symlink_to("../elsewhere")
    return LocalStore(StoreConfig(parse_url(str(src)), destination_folder=str(dst))), src, dst


def test_the_destination_reached_through_a_linked_folder_is_an_entry(tmp_path: Path) -> None:
    """``data/ext -> ../elsewhere`` with the destination ``elsewhere/out``: the link leads
    outside the destination and is walked, and ``ext/out`` there is a plain folder that is
    the destination (its identity, as a mount's): one entry in the walk and in the folder
    listing, read as destination-folder."""
    store = linked_folder_holding_the_destination(tmp_path)[0]
    walk = asyncio.run(store.list_page(""))
    assert [(o.key, o.size) for o in walk.objects] == [("ext/e.txt", 1), ("ext/out", 0)]
    level = asyncio.run(store.list_page("ext/", delimiter="/"))
    assert (list(level.folders), [o.key for o in level.objects]) == ([], ["ext/e.txt",
                                                                         "ext/out"])
    with pytest.raises(DestinationFolderError, match="destination folder"):
        asyncio.run(store.read("ext/out"))


def _walked(store: LocalStore, prefix: str = "", start_after: str | None = None
            ) -> list[tuple[str, bool]]:
    async def walk() -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        token = None
        while True:
            page = await store.list_page(prefix, token, start_after)
            out += [(o.key, o.is_dir_marker) for o in page.objects]
            token = page.token
            if token is None:
                return out

    return asyncio.run(walk())


@pytest.mark.parametrize("page_size", [1, 2, 3, 1000])
def test_empty_folders_are_folder_markers_in_key_order(tmp_path: Path, page_size: int) -> None:
    """An empty folder the walk comes down into is one folder marker ``name/`` (as the
    WebHDFS walk lists an empty directory), in key order, once however the pages fall; a
    folder that holds files, or only an empty folder, gets none; a symlink to an empty
    folder is followed as any link to a folder is: a marker of its own name."""
    src = tmp_path / "data"
    for d in ("a/e/f", "empty", "full", "only/inner", "d-"):
        (src / d).mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (src / "lnk").symlink_to("../elsewhere")
    for f in ("full/x.txt", "d-/y", "top.txt"):
        (src / f).write_bytes(b"x")
    store = LocalStore(StoreConfig(parse_url(str(src))))
    store.page_size = page_size
    want = [("a/e/f/", True), ("d-/y", False), ("empty/", True), ("full/x.txt", False),
            ("lnk/", True), ("only/inner/", True), ("top.txt", False)]
    assert _walked(store) == want
    # Resumed at a marker (a page's last key, a partition's cursor): each once.
    assert _walked(store, start_after="empty/") == want[3:]
    assert _walked(store, start_after="empty") == want[2:]
    # A string prefix takes the folders its names start with.
    assert _walked(store, "e") == [("empty/", True)]
    # Where a walk starts is no folder to make: the source root, a partition's prefix.
    assert _walked(store, "empty/") == []
    assert _walked(LocalStore(StoreConfig(parse_url(str(src / "empty"))))) == []
    assert _walked(store, "only/") == [("only/inner/", True)]


def test_an_empty_folder_the_walk_may_not_enter_is_its_entry_not_a_marker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty folder that is unreadable, or is the destination (a link to it, or it
    reached through a linked folder), stays the walk's one entry whose read says why:
    no folder is made for it."""
    store, src, dst = linked_folder_holding_the_destination(tmp_path)
    (dst / "a" / "old.txt").unlink()  # the destination's folders: all empty now
    (src / "todest").symlink_to("../elsewhere/out")
    (src / "locked").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("locked")
                        else real_access(p, mode))
    assert _walked(store) == [("ext/e.txt", False), ("ext/out", False), ("locked", False),
                              ("todest", False)]
    with pytest.raises(ForbiddenError, match="permission denied"):
        asyncio.run(store.read("locked"))


def test_the_folder_listing_names_an_unreadable_folder_as_the_walk_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delimiter listing (auto partitions) gave a folder it may not list as a folder to
    partition, whose partition then failed whole (--skip-errors or not): it is one entry, as
    in the walk, read as forbidden."""
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "inner.txt").write_bytes(b"x")
    (tmp_path / "open").mkdir()
    (tmp_path / "a.txt").write_bytes(b"a")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("locked")
                        else real_access(p, mode))
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    level = asyncio.run(store.list_page("", delimiter="/"))
    assert (list(level.folders), [(o.key, o.size) for o in level.objects]) == (
        ["open/"], [("a.txt", 1), ("locked", 0)])
    assert [o.key for o in asyncio.run(store.list_page("")).objects] == [
        "a.txt", "locked", "open/"]
