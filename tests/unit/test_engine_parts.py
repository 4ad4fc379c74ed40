"""The engine's pure parts: merge of two sorted listings, the copy decision, the listing's
low watermark and the buffer-slot pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import pytest

from lakeshift.engine.slots import SlotPool
from lakeshift.engine.watermark import Watermark
from lakeshift.model import ObjectInfo
from lakeshift.plan.compare import identical, merge, needs_copy, outer_merge
from lakeshift.stores.props import SRC_ETAG_KEY


async def _items(names: Iterable[str]) -> AsyncIterator[tuple[str, ObjectInfo]]:
    for n in names:
        yield n, ObjectInfo(n, len(n))


def _merge(src: list[str], dst: list[str] | None) -> list[tuple[str, str | None]]:
    async def main() -> list[tuple[str, str | None]]:
        dest = None if dst is None else _items(dst)
        return [(rel, d.key if d else None) async for rel, _, d in merge(_items(src), dest)]

    return asyncio.run(main())


def test_merge_pairs_equal_names_and_leaves_the_rest_unpaired() -> None:
    assert _merge(["a", "b", "c/x", "d"], ["0", "b", "c/", "c/x", "e"]) == [
        ("a", None), ("b", "b"), ("c/x", "c/x"), ("d", None)]


def test_merge_without_a_destination_pairs_nothing() -> None:
    assert _merge(["a", "b"], None) == [("a", None), ("b", None)]
    assert _merge(["a", "b"], []) == [("a", None), ("b", None)]
    assert _merge([], ["a"]) == []


def test_merge_with_a_destination_out_of_order_never_pairs_wrongly() -> None:
    # A service sorting differently can only make an object look missing (copied again).
    got = _merge(["a", "b", "c"], ["c", "a", "b"])
    assert all(d is None or d == rel for rel, d in got)
    assert ("c", "c") in got


def test_outer_merge_gives_every_name_once() -> None:
    async def main() -> list[tuple[str, bool, bool]]:
        return [(n, s is not None, d is not None)
                async for n, s, d in outer_merge(_items(["a", "c", "d"]), _items(["b", "c"]))]

    assert asyncio.run(main()) == [("a", True, False), ("b", False, True), ("c", True, True),
                                   ("d", True, False)]


M1, M2 = b"1" * 16, b"2" * 16


@pytest.mark.parametrize("src,dst,same", [
    (ObjectInfo("k", 3, md5=M1), ObjectInfo("k", 3, md5=M1), True),
    (ObjectInfo("k", 3, md5=M1), ObjectInfo("k", 3, md5=M2), False),
    (ObjectInfo("k", 3, md5=M1), ObjectInfo("k", 4, md5=M1), False),          # size first
    (ObjectInfo("k", 3), ObjectInfo("k", 3), False),                          # nothing proves it
    (ObjectInfo("k", 3, etag="e-2"), ObjectInfo("k", 3, metadata={SRC_ETAG_KEY: "e-2"}), True),
    (ObjectInfo("k", 3, etag="e-2"), ObjectInfo("k", 3, metadata={SRC_ETAG_KEY: "e-3"}), False),
    # an MD5 mismatch is settled by the recorded source ETag (SSE-KMS ETags are no MD5)
    (ObjectInfo("k", 3, md5=M1, etag="e"), ObjectInfo("k", 3, md5=M2,
                                                      metadata={SRC_ETAG_KEY: "e"}), True),
    (ObjectInfo("k", 3), ObjectInfo("k", 3, metadata={SRC_ETAG_KEY: ""}), False),
])
def test_identical(src: ObjectInfo, dst: ObjectInfo, same: bool) -> None:
    assert identical(src, dst) is same


def test_needs_copy_by_overwrite_mode() -> None:
    s, same, other = ObjectInfo("k", 1, md5=M1), ObjectInfo("k", 1, md5=M1), ObjectInfo("k", 2)
    assert needs_copy(s, None, "never") and needs_copy(s, None, "if-different")
    assert not needs_copy(s, other, "never")
    assert needs_copy(s, same, "always")
    assert not needs_copy(s, same, "if-different") and needs_copy(s, other, "if-different")


def test_watermark_follows_the_lowest_unfinished_key() -> None:
    w = Watermark()
    t = [w.add(k) for k in ("a", "b", "c", "d")]
    w.done(t[2])
    assert w.cursor is None            # "a" and "b" still in flight
    w.done(t[0])
    assert w.cursor == "a"
    w.done(t[1])
    assert w.cursor == "c"             # b done, c was already done
    w.done(t[3])
    assert w.cursor == "d"


def test_watermark_freezes_before_a_failed_key() -> None:
    w = Watermark(start="0")
    t = [w.add(k) for k in ("a", "b", "c")]
    w.done(t[0])
    w.done(t[1], ok=False)
    w.done(t[2])
    assert w.cursor == "a" and w.frozen   # a rerun lists after "a": sees "b" again
    t4 = w.add("d")
    w.done(t4)
    assert w.cursor == "a"


def test_watermark_window_pauses_the_lister_until_a_key_finishes() -> None:
    async def main() -> list[str]:
        w = Watermark(window=2)
        order: list[str] = []
        first = w.add("a")
        w.add("b")

        async def lister() -> None:
            await w.wait_for_room()
            order.append("listed c")

        task = asyncio.create_task(lister())
        await asyncio.sleep(0)
        order.append("a done")
        w.done(first)
        await task
        return order

    assert asyncio.run(main()) == ["a done", "listed c"]


def test_slot_pool_first_come_first_served_and_bounded() -> None:
    async def main() -> list[str]:
        pool = SlotPool(4)
        order: list[str] = []
        assert await pool.acquire(3) == 3
        assert pool.free == 1

        async def take(name: str, n: int) -> None:
            await pool.acquire(n)
            order.append(name)

        big = asyncio.create_task(take("big", 4))
        await asyncio.sleep(0)
        small = asyncio.create_task(take("small", 1))  # fits, but waits behind "big"
        await asyncio.sleep(0)
        assert order == [] and pool.free == 1
        pool.release(3)
        await big
        assert order == ["big"] and pool.free == 0
        pool.release(4)
        await small
        assert order == ["big", "small"] and pool.free == 3
        # a request above the pool's size takes the whole pool
        pool.release(1)
        assert await pool.acquire(99) == 4
        return order

    asyncio.run(main())


def test_slot_pool_cancelled_waiter_gives_everything_back() -> None:
    async def main() -> int:
        pool = SlotPool(2)
        await pool.acquire(2)
        waiter = asyncio.create_task(pool.acquire(2))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        pool.release(2)
        return pool.free

    assert asyncio.run(main()) == 2


def test_dest_items_puts_a_directory_where_its_slash_name_sorts() -> None:
    """A Gen2 directory "a" is listed before "a-1.csv" but the source names it "a/", which
    sorts after: both must still pair, or a rerun copies "a-1.csv" again every time."""
    from lakeshift.engine.pipeline_listings import dest_items
    from lakeshift.stores.base import Page

    listed = [ObjectInfo("r/a", 0, is_dir_marker=True), ObjectInfo("r/a-1.csv", 1),
              ObjectInfo("r/a.b", 1, is_dir_marker=True), ObjectInfo("r/a.b/c", 1),
              ObjectInfo("r/a/x", 1), ObjectInfo("r/b", 0, is_dir_marker=True)]

    class Lister:
        async def list_page(self, prefix: str, token: str | None = None,
                            start_after: str | None = None,
                            delimiter: str | None = None) -> Page:
            return Page(listed)

    source = ["a-1.csv", "a.b/", "a.b/c", "a/", "a/x", "b/"]

    async def main() -> list[tuple[str, bool]]:
        dest = dest_items(Lister(), "r/", "r/", None, False)  # type: ignore[arg-type]
        return [(rel, d is not None) async for rel, _, d in
                merge(_items(source), dest)]

    assert asyncio.run(main()) == [(name, True) for name in source]
