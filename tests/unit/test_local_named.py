"""The local source's destination-folder rule for names it is given rather than walks to
(stores/local/store.py ``_named_into_destination``): a HEAD of a name that is, or goes
through, a link to the destination folder or into it, or a folder that is the destination
(a mount's identity), raises DestinationFolderError with the words the walk's entry reads
with; a listing that starts below one is refused so too; other names are as ever."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lakeshift.errors import DestinationFolderError
from lakeshift.stores.base import StoreConfig
from lakeshift.stores.local.store import LocalStore
from lakeshift.urls import parse_url
from tests.unit.test_local_walk import linked_folder_holding_the_destination


def _lake(tmp_path: Path) -> tuple[Path, Path]:
    src, dst = tmp_path / "data", tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub" / "f.txt").write_bytes(b"f")
    (dst / "sub").mkdir(parents=True)
    (dst / "x.txt").write_bytes(b"the destination's")
    (dst / "sub" / "f.txt").write_bytes(b"the destination's")
    (src / "link").symlink_to("../out")
    (src / "into").symlink_to("../out/sub")
    (src / "file").symlink_to("../out/x.txt")
    (src / "later").symlink_to("../out/not-yet")          # dangling, inside the destination
    (src / "near").symlink_to("sub")                      # a link that stays in the source
    return src, dst


def test_a_head_of_a_name_that_leads_into_the_destination_says_so(tmp_path: Path) -> None:
    src, dst = _lake(tmp_path)
    store = LocalStore(StoreConfig(parse_url(str(src)), destination_folder=str(dst)))
    itself = f"{src}/link: leads to the destination folder {dst}: not followed"
    inside = f"{src}/into: leads to {os.path.realpath(dst / 'sub')}, inside the destination"
    for key, words in (("link", itself), ("link/x.txt", itself), ("link/sub/f.txt", itself),
                       ("link/nothing", itself), ("into", inside), ("into/f.txt", inside),
                       ("file", f"{src}/file: leads to {os.path.realpath(dst / 'x.txt')}"),
                       ("later", f"{src}/later: leads to"), ("later/x", f"{src}/later: ")):
        with pytest.raises(DestinationFolderError) as e:
            asyncio.run(store.exists(key))
        assert str(e.value).startswith(words), (key, str(e.value))
    assert asyncio.run(store.exists("a.txt")).size == 1  # type: ignore[union-attr]
    assert asyncio.run(store.exists("near/f.txt")).size == 1  # type: ignore[union-attr]
    assert asyncio.run(store.exists("sub")) is None
    assert asyncio.run(store.exists("nothing/here")) is None
    # A store not told a destination (a destination's own, or another pair's) is as ever.
    plain = LocalStore(StoreConfig(parse_url(str(src))))
    assert asyncio.run(plain.exists("link/x.txt")).size == 17  # type: ignore[union-attr]


def test_a_listing_that_starts_below_such_a_link_is_refused(tmp_path: Path) -> None:
    src, dst = _lake(tmp_path)
    store = LocalStore(StoreConfig(parse_url(str(src)), destination_folder=str(dst)))
    for prefix, delimiter in (("link/", None), ("link/sub/", None), ("into/f", None),
                              ("link/", "/"), ("into/", "/")):
        with pytest.raises(DestinationFolderError, match="destination folder"):
            asyncio.run(store.list_page(prefix, delimiter=delimiter))
    assert [o.key for o in asyncio.run(store.list_page("sub/")).objects] == ["sub/f.txt"]
    assert [o.key for o in asyncio.run(store.list_page("near/")).objects] == ["near/f.txt"]
    assert [o.key for o in asyncio.run(store.list_page("li")).objects] == ["link"]


def test_a_folder_that_is_the_destination_is_named_as_the_walk_reads_it(
        tmp_path: Path) -> None:
    """``data/ext -> ../elsewhere`` with the destination ``elsewhere/out``: ``ext/out`` is a
    plain folder that is the destination (its identity, as a mount's).  A name below it is
    refused with the very words the read of the walk's entry ``ext/out`` gives."""
    store, src, dst = linked_folder_holding_the_destination(tmp_path)
    with pytest.raises(DestinationFolderError) as read:
        asyncio.run(store.read("ext/out"))
    for key in ("ext/out", "ext/out/a/old.txt"):
        with pytest.raises(DestinationFolderError) as head:
            asyncio.run(store.exists(key))
        assert str(head.value) == str(read.value)
    assert str(read.value).startswith(f"{src}/ext/out: leads to the destination folder {dst}")
    assert asyncio.run(store.exists("ext/e.txt")).size == 1  # type: ignore[union-attr]
    with pytest.raises(DestinationFolderError):
        asyncio.run(store.list_page("ext/out/"))
