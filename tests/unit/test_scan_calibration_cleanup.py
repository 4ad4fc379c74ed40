"""scan's calibration clean-up on a hierarchical destination: its own uniquely named folder
goes with whatever is in it (a write that landed late is the calibration's too); a folder
it made above it goes only while empty (a run may be writing there)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from lakeshift.engine.retry import RetryPolicy
from lakeshift.model import ObjectInfo
from lakeshift.plan.scan_calibration import _remove
from lakeshift.stores.base import Page


class Tree:
    def __init__(self, keys: set[str]) -> None:
        self.keys = keys
        self.folders = {"raw/", "raw/.lakeshift-scan-x/"}
        self.capabilities = SimpleNamespace(directories=True)

    async def delete(self, key: str) -> None:
        self.keys.discard(key)

    async def list_page(self, prefix: str, token: str | None = None) -> Page:
        return Page([ObjectInfo(k, 1) for k in sorted(self.keys) if k.startswith(prefix)])

    async def remove_directory(self, key: str, recursive: bool = False) -> None:
        under = {k for k in self.keys if k.startswith(key)}
        if under and not recursive:
            return  # DirectoryNotEmpty: left as it is
        self.keys -= under
        self.folders = {f for f in self.folders if not f.startswith(key)}


def test_the_calibration_folder_goes_with_a_late_write_and_a_users_folder_stays() -> None:
    late = "raw/.lakeshift-scan-x/late.bin"  # landed after the calibration's deletes
    tree = Tree({"raw/.lakeshift-scan-x/a.bin", late})
    notes: list[str] = []
    asyncio.run(_remove(tree, ["raw/.lakeshift-scan-x/a.bin"],  # type: ignore[arg-type]
                        ["raw/.lakeshift-scan-x/", "raw/"], RetryPolicy(), notes))
    assert tree.keys == set() and tree.folders == set() and notes == []
    tree = Tree({"raw/.lakeshift-scan-x/a.bin", "raw/users.bin"})
    asyncio.run(_remove(tree, ["raw/.lakeshift-scan-x/a.bin"],  # type: ignore[arg-type]
                        ["raw/.lakeshift-scan-x/", "raw/"], RetryPolicy(), notes))
    assert tree.keys == {"raw/users.bin"} and tree.folders == {"raw/"}
