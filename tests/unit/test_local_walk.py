"""The local walk pages through symlink loops in key order: each loop is one entry, listed
once, however the pages fall."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

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
