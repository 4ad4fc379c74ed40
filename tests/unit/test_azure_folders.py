"""An Azure listing names each folder blob ``d/`` in its place in key order, across page
boundaries (stores/azure/folders.py), as S3, WebHDFS and local disk list folders."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from lakeshift.engine.pipeline_listings import own_folder
from lakeshift.model import ObjectInfo
from lakeshift.plan.scan import _empty_folder_advice
from lakeshift.stores.azure.folders import from_token, held_token, named_folders
from lakeshift.stores.azure.store import CAPABILITIES as AZURE
from lakeshift.stores.local.store import CAPABILITIES as LOCAL
from lakeshift.stores.s3.store import CAPABILITIES as S3

WHEN = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def _folder(key: str) -> ObjectInfo:
    return ObjectInfo(key, 0, WHEN, "0x8D", b"\x01" * 16, True, {"hdi_isfolder": "true"},
                      "Hot")


def _file(key: str) -> ObjectInfo:
    return ObjectInfo(key, 3, WHEN, "0x8E", None, False, {}, "Hot")


#: As List Blobs gives them: "a" (a folder) before "a-b.txt" and "a.c/", ...
LISTED = [_folder("a"), _file("a-b.txt"), _folder("a.c"), _file("a.c/z"), _file("a/x"),
          _folder("a/y"), _folder("b")]
IN_KEY_ORDER = ["a-b.txt", "a.c/", "a.c/z", "a/", "a/x", "a/y/", "b/"]


def _listed_in_pages(size: int) -> list[ObjectInfo]:
    """Page by page as AzureBlobStore.list_page does, the token going round."""
    out: list[ObjectInfo] = []
    token: str | None = None
    pages = [LISTED[i:i + size] for i in range(0, len(LISTED), size)]
    for i, page in enumerate(pages):
        _, held = from_token(token)
        last = i == len(pages) - 1
        items, held = named_folders(page, held, last)
        out.extend(items)
        token = None if last else held_token(f"marker-{i}", held)
        if not last:
            assert from_token(token)[0] == f"marker-{i}"
    return out


def test_folders_are_named_with_their_slash_in_key_order_whatever_the_page_size() -> None:
    for size in range(1, len(LISTED) + 1):
        got = _listed_in_pages(size)
        assert [o.key for o in got] == IN_KEY_ORDER, size
        assert [o.key for o in got if o.is_dir_marker] == ["a.c/", "a/", "a/y/", "b/"]


def test_a_folder_held_over_a_page_keeps_what_was_listed_of_it() -> None:
    items, held = named_folders(LISTED[:2], [], False)
    assert [o.key for o in items] == ["a-b.txt"] and [o.key for o in held] == ["a/"]
    marker, back = from_token(held_token("m", held))
    assert marker == "m" and back == [ObjectInfo("a/", 0, WHEN, "0x8D", b"\x01" * 16, True,
                                                 {"hdi_isfolder": "true"}, "Hot")]
    assert held_token("m", []) == "m" and from_token("m") == ("m", [])


def test_a_listing_of_a_folder_asks_for_that_folder_unless_resumed_past_it() -> None:
    assert own_folder("t/d1/", None) and own_folder("t/d1/", "t/d0")
    # No folder: the container's root, a string prefix; resumed at or after the folder.
    assert not any(own_folder(p, after) for p, after in (
        ("", None), ("logs/2024-0", None), ("t/d1/", "t/d1/"), ("t/d1/", "t/d1/a")))


def test_a_page_without_folders_is_handed_on_as_listed() -> None:
    files = [_file("a"), _file("b/")]
    items, held = named_folders(files, [], False)
    assert items == files and held == []


def test_scan_says_what_an_empty_folder_becomes_at_each_flat_destination() -> None:
    def store(caps: Any) -> Any:
        return SimpleNamespace(capabilities=caps)

    assert _empty_folder_advice(store(LOCAL), store(S3)).endswith(
        "writes them as zero-byte 'dir/' folder objects")
    assert _empty_folder_advice(store(LOCAL), store(AZURE)).endswith(
        "writes them as hdi_isfolder marker blobs")
