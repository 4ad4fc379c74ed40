"""tune's clean-up after a trial stopped midway: a write the client abandoned (its body was
sent, the service finishes it) can land after the first sweep; the sweep looks again."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from lakeshift.engine import tune as engine_tune
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import Page


class LateWrites:
    """A flat store where ``late`` keys appear only after the first listing."""

    def __init__(self, now: list[str], late: list[str]) -> None:
        self.keys = set(now)
        self.late = list(late)
        self.url = SimpleNamespace(scheme="s3")
        self.capabilities = SimpleNamespace(directories=False)
        self.listings = 0

    async def list_page(self, prefix: str, token: str | None = None) -> Page:
        self.listings += 1
        page = Page([ObjectInfo(k, 1) for k in sorted(self.keys) if k.startswith(prefix)])
        if self.late:  # lands while the first sweep deletes
            self.keys.update(self.late)
            self.late = []
        return page

    async def delete(self, key: str) -> None:
        self.keys.discard(key)


def test_a_stopped_trial_sweeps_again_until_the_scratch_stays_empty(monkeypatch: Any) -> None:
    monkeypatch.setattr(engine_tune, "SETTLE_SECONDS", 0.01)
    store = LateWrites(["s/0/a", "s/0/b", "mine"], late=["s/0/c"])
    asyncio.run(engine_tune._remove_scratch(store, "s/", [], stopped=True))  # type: ignore[arg-type]
    assert store.keys == {"mine"}
    assert store.listings == 3  # found, found the late one, then empty


def test_a_finished_tune_sweeps_once(monkeypatch: Any) -> None:
    monkeypatch.setattr(engine_tune, "SETTLE_SECONDS", 0.01)
    store = LateWrites(["s/0/a"], late=[])
    asyncio.run(engine_tune._remove_scratch(store, "s/", [], stopped=False))  # type: ignore[arg-type]
    assert store.keys == set() and store.listings == 1
