"""list_pages asks for the next page while the consumer works on this one (local → local:
the planner waited 1.1-1.8 s of a 20,000-file copy for the source walk's pages, the copy
pool draining meanwhile; 0.02-0.11 s with the page ahead).  Its error comes where it did,
and a page not reached is cancelled, not left running or unretrieved."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from lakeshift.engine.listing import list_pages
from lakeshift.engine.retry import RetryPolicy
from lakeshift.errors import NotFoundError
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import Page


class _Pages:
    """``n`` pages of 2 keys; each request waits for its page's gate (set by the test);
    ``fail`` names a page whose request raises."""

    def __init__(self, n: int, fail: int | None = None) -> None:
        self.n = n
        self.fail = fail
        self.asked: list[int] = []
        self.cancelled: list[int] = []
        self.gates = [asyncio.Event() for _ in range(n)]

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None, delimiter: str | None = None) -> Page:
        i = int(token or 0)
        self.asked.append(i)
        try:
            await self.gates[i].wait()
        except asyncio.CancelledError:
            self.cancelled.append(i)
            raise
        if i == self.fail:
            raise NotFoundError(f"page {i} is gone")
        objs = [ObjectInfo(f"k{i:03d}-{j}", 1) for j in range(2)]
        return Page(objs, (), str(i + 1) if i + 1 < self.n else None)


_ONCE = RetryPolicy(attempts=1)


def test_the_next_page_is_asked_for_before_this_one_is_consumed() -> None:
    async def main() -> None:
        store = _Pages(3)
        for g in store.gates:
            g.set()
        pages = list_pages(store, "", policy=_ONCE, ahead=True)
        first = await pages.__anext__()
        assert [o.key for o in first] == ["k000-0", "k000-1"]
        await asyncio.sleep(0)  # (the task ahead starts)
        assert store.asked == [0, 1], "page 1 was not asked for while page 0 was consumed"
        rest = [o.key for page in [p async for p in pages] for o in page]
        assert rest == ["k001-0", "k001-1", "k002-0", "k002-1"]
        assert store.asked == [0, 1, 2]

    asyncio.run(main())


def test_a_failed_page_ahead_raises_when_it_is_reached() -> None:
    async def main() -> None:
        store = _Pages(3, fail=1)
        for g in store.gates:
            g.set()
        got: list[str] = []
        with pytest.raises(NotFoundError, match="page 1"):
            async for page in list_pages(store, "", policy=_ONCE, ahead=True):
                got += [o.key for o in page]
        assert got == ["k000-0", "k000-1"]

    asyncio.run(main())


def test_a_page_ahead_not_reached_is_cancelled_or_its_error_retrieved(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        # Stopped while the page ahead is still waiting: cancelled.
        store = _Pages(3)
        store.gates[0].set()
        pages = list_pages(store, "", policy=_ONCE, ahead=True)
        await pages.__anext__()
        await asyncio.sleep(0)
        assert store.asked == [0, 1]
        await pages.aclose()
        await asyncio.sleep(0)
        assert store.cancelled == [1]
        # Stopped after the page ahead failed: its error is not left unretrieved.
        failing = _Pages(3, fail=1)
        for g in failing.gates:
            g.set()
        pages2 = list_pages(failing, "", policy=_ONCE, ahead=True)
        await pages2.__anext__()
        for _ in range(5):
            await asyncio.sleep(0)
        await pages2.aclose()
        del pages, pages2
        gc.collect()

    errors: list[Any] = []
    with caplog.at_level("ERROR", logger="asyncio"):
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    assert errors == []


def test_the_c_heap_is_trimmed_once_per_page_after_the_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """glibc kept the holes the listing bodies left in its heap (peak RSS +8-9 % from
    5,000 to 50,000 objects, the Python heap flat): each page after the first gives the
    free pages back."""
    from lakeshift.engine import listing

    trims: list[int] = []
    monkeypatch.setattr(listing, "_trim", lambda: trims.append(1))

    async def main() -> list[int]:
        store = _Pages(4)
        for g in store.gates:
            g.set()
        seen = []
        async for _ in list_pages(store, "", policy=_ONCE, ahead=True):
            seen.append(len(trims))
        return seen

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_without_malloc_trim_the_release_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from lakeshift.engine import listing

    class NoTrim:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoTrim)
    assert listing._find_trim()() is None
    monkeypatch.setattr(listing, "_trim", None)
    listing.release_free_heap()  # (looked up again, still none: no error)
    assert listing._trim is not None and listing._trim() is None


def test_without_ahead_no_page_is_asked_for_before_it_is_wanted() -> None:
    """The partitioner's probes read one page of many listings: a page ahead each would
    double their requests."""
    async def main() -> None:
        store = _Pages(3)
        for g in store.gates:
            g.set()
        pages = list_pages(store, "", policy=_ONCE)
        await pages.__anext__()
        for _ in range(5):
            await asyncio.sleep(0)
        await pages.aclose()
        assert store.asked == [0]

    asyncio.run(main())


def test_no_page_is_asked_for_ahead_once_a_page_reaches_the_ranges_end() -> None:
    """A key range's consumer stops at its end: the page after the one that reaches it is
    never read, so it is not asked for (a template pass's empty ranges beside its folders
    listed one such page each, source and destination: 6 → 8 requests)."""
    async def main() -> None:
        store = _Pages(4)
        for g in store.gates:
            g.set()
        pages = list_pages(store, "", policy=_ONCE, ahead=True, end="k001-1")
        keys = []
        async for page in pages:
            keys += [o.key for o in page]
            for _ in range(5):
                await asyncio.sleep(0)  # (a task ahead would start and ask)
            if keys[-1] >= "k001-1":
                break
        await pages.aclose()
        assert store.asked == [0, 1], store.asked  # page 1 reaches the end: no page 2
        # Below the end the page ahead is still asked for.
        store2 = _Pages(3)
        for g in store2.gates:
            g.set()
        pages2 = list_pages(store2, "", policy=_ONCE, ahead=True, end="zzz")
        await pages2.__anext__()
        await asyncio.sleep(0)
        assert store2.asked == [0, 1]
        await pages2.aclose()

    asyncio.run(main())


def test_a_consumer_that_stops_early_asks_for_no_page_it_does_not_read() -> None:
    """Without ``ahead``: ``check`` takes the first page, the planner's prefix discovery
    one page per next character ("one listing request per character at most"); with a
    page ahead each asked for two (8 characters: 17 requests, not 9, at 5a2558c)."""
    from lakeshift.plan.partitioner import next_characters

    class Keys:
        def __init__(self) -> None:
            self.keys = sorted(f"{c}{i}" for c in "abcdefgh" for i in range(5))
            self.asked = 0

        async def list_page(self, prefix: str, token: str | None = None,
                            start_after: str | None = None,
                            delimiter: str | None = None) -> Page:
            self.asked += 1
            keys = [k for k in self.keys if start_after is None or k > start_after]
            i = int(token or 0)
            return Page([ObjectInfo(k, 1) for k in keys[i:i + 2]], (),
                        str(i + 2) if i + 2 < len(keys) else None)

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    async def main() -> None:
        store = Keys()
        async for _ in list_pages(store, "", policy=_ONCE):
            break
        await settle()
        assert store.asked == 1
        store.asked = 0
        _, chars, _ = await next_characters(store, "", _ONCE)  # type: ignore[arg-type]
        await settle()
        assert chars == list("abcdefgh")
        assert store.asked == len(chars) + 1  # one per character, one that finds no more
        # Read to the end without a page ahead: every page once, in order.
        store.asked = 0
        keys = [o.key async for page in list_pages(store, "", policy=_ONCE) for o in page]
        assert keys == store.keys and store.asked == len(store.keys) // 2

    asyncio.run(main())
