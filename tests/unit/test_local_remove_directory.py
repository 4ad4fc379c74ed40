"""The local store's ``remove_directory`` keeps the DirectoryWriter contract that ADLS Gen2's
has: a folder that holds anything stays, silently; ``recursive=True`` takes all below."""
from __future__ import annotations

import asyncio
from pathlib import Path

from lakeshift.stores.base import StoreConfig
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url


def test_a_folder_that_is_not_empty_stays_unless_recursive(tmp_path: Path) -> None:
    (tmp_path / "made" / "deeper").mkdir(parents=True)
    (tmp_path / "made" / "deeper" / "run.bin").write_bytes(b"a run's")
    (tmp_path / "empty").mkdir()

    async def main() -> None:
        store = open_store(StoreConfig(parse_url(str(tmp_path))))
        try:
            for key in ("made/deeper/", "made/", "empty/", "never/"):
                await store.remove_directory(key)  # type: ignore[attr-defined]
            assert sorted(p.name for p in tmp_path.iterdir()) == ["made"]
            assert (tmp_path / "made" / "deeper" / "run.bin").read_bytes() == b"a run's"
            await store.remove_directory("made/", recursive=True)  # type: ignore[attr-defined]
            assert list(tmp_path.iterdir()) == []
        finally:
            await store.close()

    asyncio.run(main())
