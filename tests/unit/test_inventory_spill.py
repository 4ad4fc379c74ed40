"""sync --inventory's spill (plan/inventory.py): objects go to a temporary SQLite file and
come back in key order, a bounded page at a time; the file is removed on close."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from typing import Any

from lakeshift.model import ObjectInfo
from lakeshift.plan import inventory as inv_mod
from lakeshift.plan.inventory import Inventory


def test_objects_come_back_in_key_order_a_bounded_page_at_a_time() -> None:
    keys = [f"d/{i:05d}" for i in range(2500)] + ["a/x", "é/unicode", "d/00007"]
    random.Random(1).shuffle(keys)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    inv = Inventory(at)
    inv.add(ObjectInfo(k, len(k), at, "e", b"\x01" * 16) for k in keys)
    inv.ready()
    spill = inv._dir
    pages = list(inv.pages_from("d/"))
    got = [o.key for p in pages for o in p]
    assert got == sorted(k for k in keys if k >= "d/")  # the duplicate key twice
    assert max(len(p) for p in pages) <= inv_mod.PAGE and len(pages) >= 3
    first = pages[0][0]
    assert (first.size, first.last_modified, first.md5) == (7, at, b"\x01" * 16)
    inv.close()
    assert not os.path.exists(spill)


def test_a_data_file_is_downloaded_in_ranged_reads(tmp_path: Any, monkeypatch: Any) -> None:
    import asyncio

    from lakeshift.plan.source import source_config
    from lakeshift.stores.registry import open_store

    (tmp_path / "src").mkdir()
    body = bytes(range(256)) * 5
    (tmp_path / "src" / "data.gz").write_bytes(body)
    monkeypatch.setattr(inv_mod, "CHUNK", 100)
    store = open_store(source_config(str(tmp_path / "src")))
    reads: list[tuple[Any, Any]] = []
    real = store.read

    async def counted(key: str, start: Any = None, end: Any = None, **kw: Any) -> Any:
        reads.append((start, end))
        return await real(key, start, end, **kw)

    monkeypatch.setattr(store, "read", counted)

    async def go() -> None:
        try:
            await inv_mod._download(store, "data.gz", tmp_path / "copy")
        finally:
            await store.close()

    asyncio.run(go())
    assert (tmp_path / "copy").read_bytes() == body
    assert len(reads) == 13 and all(e - s <= 100 for s, e in reads)
