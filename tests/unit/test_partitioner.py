"""The partitioner's cutting logic on an in-memory listing: every key in exactly one
partition, partitions of at most about ``target`` objects, folders kept whole when they fit.
(The in-memory lister is a stand-in only for the listing; the listing code itself is
tested against real servers.)"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from types import SimpleNamespace

import pytest

from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo, PartitionSpec
from lakeshift.plan.partitioner import (
    PlannedSource,
    Region,
    auto_partitions,
    check_overlaps,
    from_prefixes,
    list_region,
    next_characters,
)
from lakeshift.plan.source import SourceSpec
from lakeshift.stores.base import Page


class MemoryLister:
    """Sorted keys answering ``list_page`` as a store does: pages of ``page`` objects whose
    token is the last key, and one level of the tree with the "/" delimiter."""

    def __init__(self, keys: Sequence[str], page: int = 7, start_after: bool = True) -> None:
        self.keys = sorted(keys)
        self.page = page
        self.capabilities = SimpleNamespace(list_start_after=start_after)
        #: Keys answered by each listing (a first request and the pages that continue it).
        self.streams: list[int] = []
        self._stream_of: dict[str, int] = {}
        self._ids = itertools.count()

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None, delimiter: str | None = None) -> Page:
        # A token is the page's last key and which listing it continues.
        after = token.rsplit("#", 1)[0] if token is not None else start_after
        hits = [k for k in self.keys
                if k.startswith(prefix) and (after is None or k > after)]
        if delimiter:
            folders = sorted({prefix + k[len(prefix):].split("/", 1)[0] + "/"
                              for k in hits if "/" in k[len(prefix):]})
            direct = [ObjectInfo(k, 1) for k in hits if "/" not in k[len(prefix):]]
            return Page(direct, folders)
        got = [ObjectInfo(k, 1) for k in hits[:self.page]]
        stream = self._stream_of.pop(token, None) if token else None
        if stream is None:
            stream = len(self.streams)
            self.streams.append(0)
        self.streams[stream] += len(got)
        nxt = got[-1].key + f"#{next(self._ids)}" if len(hits) > self.page else None
        if nxt is not None:
            self._stream_of[nxt] = stream
        return Page(got, (), nxt)


def _src(prefix: str = "") -> PlannedSource:
    return PlannedSource("s3://bkt/" + prefix, SourceSpec(prefix, prefix), "s3://bkt/", "dst/")


def _members(spec: PartitionSpec, keys: Sequence[str]) -> list[str]:
    """The keys a partition copies: under its prefix, in its range, after its cursor."""
    return [k for k in keys if k.startswith(spec.prefix)
            and (spec.range_start is None or k >= spec.range_start)
            and (spec.range_end is None or k < spec.range_end)
            and (spec.cursor is None or k > spec.cursor)]


def _assert_exact_cover(specs: list[PartitionSpec], keys: Sequence[str], target: int,
                        slack: int = 1) -> None:
    seen: dict[str, int] = {}
    for s in specs:
        m = _members(s, keys)
        assert len(m) <= target * slack, (s, len(m))
        for k in m:
            seen[k] = seen.get(k, 0) + 1
    assert sorted(seen) == sorted(keys)
    assert set(seen.values()) == {1}, {k: n for k, n in seen.items() if n != 1}


LAKE = ([f"big/{i:04d}" for i in range(95)] + [f"small{j}/{i}" for j in range(5)
                                               for i in range(3)]
        + ["mid/a", "mid/b", "mid/c", "mid/d", "mid/e", "mid/f"] + ["root0", "root1", "z.csv"])


@pytest.mark.parametrize("target", [1, 4, 10, 30, 1000])
def test_auto_partitions_cover_every_key_once(target: int) -> None:
    specs = asyncio.run(auto_partitions(MemoryLister(LAKE), _src(), target))  # type: ignore[arg-type]
    _assert_exact_cover(specs, LAKE, target)


def test_a_folder_that_fits_is_one_prefix_partition_and_small_ones_are_grouped() -> None:
    specs = asyncio.run(auto_partitions(MemoryLister(LAKE), _src(), 10))  # type: ignore[arg-type]
    prefixes = [s.prefix for s in specs if s.range_start is None and s.range_end is None]
    assert "mid/" in prefixes                      # 6 objects, at least half of 10: whole
    assert not any(p.startswith("small") for p in prefixes)  # 3 each: grouped into ranges
    big = [s for s in specs if any(k.startswith("big/") for k in _members(s, LAKE))]
    assert len(big) == 10                          # 95 keys cut every 10


#: Keys written after the plan: before its first key, beside and between folders, after
#: its last key, inside a folder partition.
LATER = ["", "!first", "0", "a", "big", "big.csv", "big/", "big/9999", "big0", "mid", "mid.x",
         "mid/", "mid/0", "mid/zz", "mid0", "n", "root", "small0/9", "small9", "y", "z.csv0",
         "zzz", "\U0010ffff"]


@pytest.mark.parametrize("target", [1, 4, 6, 10, 30, 1000])
def test_keys_written_after_the_plan_each_fall_in_one_partition(target: int) -> None:
    # A sync of the job lists only its partitions: a key in none would never be copied.
    specs = asyncio.run(auto_partitions(MemoryLister(LAKE), _src(), target))  # type: ignore[arg-type]
    for key in LATER:
        owners = [s for s in specs if _members(s, [key])]
        assert len(owners) == 1, (key, owners)


def test_empty_source_is_one_partition() -> None:
    specs = asyncio.run(auto_partitions(MemoryLister([]), _src(), 5))  # type: ignore[arg-type]
    assert [(s.prefix, s.range_start, s.range_end) for s in specs] == [("", None, None)]
    specs = asyncio.run(auto_partitions(MemoryLister([]), _src("x"), 5))  # type: ignore[arg-type]
    assert [(s.prefix, s.range_start, s.range_end) for s in specs] == [("x", None, None)]


def test_string_prefix_source_is_cut_into_ranges() -> None:
    keys = [f"logs/2024-0{m}/{d:02d}" for m in range(1, 4) for d in range(10)]
    specs = asyncio.run(auto_partitions(MemoryLister(keys), _src("logs/2024-0"), 7))  # type: ignore[arg-type]
    _assert_exact_cover(specs, keys, 7)


def test_target_below_one_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--target-objects"):
        asyncio.run(auto_partitions(MemoryLister(LAKE), _src(), 0))  # type: ignore[arg-type]


def test_prefix_partitions_and_overlaps() -> None:
    specs = from_prefixes(_src("raw/"), ["a/", " b/ ", "", "/c/"])
    assert [s.prefix for s in specs] == ["raw/a/", "raw/b/", "raw/c/"]
    with pytest.raises(UsageError, match="overlap"):
        from_prefixes(_src("raw/"), ["a/", "a/b/"])
    check_overlaps([PartitionSpec("s3://bkt/", "a/", "", "d/", range_start="a/1"),
                    PartitionSpec("s3://bkt/", "a/", "", "d/", range_start="a/5")])


def test_root_objects_on_both_sides_of_a_folder_are_all_planned() -> None:
    keys = ["a/1", "a/2", "m", "z/1", "z/2", "zz"]
    specs = asyncio.run(auto_partitions(MemoryLister(keys), _src(), 2))  # type: ignore[arg-type]
    _assert_exact_cover(specs, keys, 2)


def _flat(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i * 7919 % 100_003:06d}" for i in range(n)]


@pytest.mark.parametrize("target", [5, 40, 1000])
def test_a_flat_folder_with_a_long_common_prefix_is_split_by_next_character(
        target: int) -> None:
    # 600 objects directly in flat/, every key starting "flat/2024-06-01T00:0".
    keys = [*_flat(600, "flat/2024-06-01T00:0"), "flat/", "other/a", "top"]
    lister = MemoryLister(keys, page=10)
    specs = asyncio.run(auto_partitions(lister, _src(), target, split_at=50))  # type: ignore[arg-type]
    _assert_exact_cover(specs, keys, target)
    # No lister listed the folder to its end: each listing stopped at the split size
    # (plus the page it was reading) or covered one next-character part.
    assert max(lister.streams) <= 50 + 10
    assert len(lister.streams) > 10


def test_next_characters_grow_a_common_prefix_and_find_the_prefix_object() -> None:
    keys = ["p/2024-06-01T0", "p/2024-06-01T0a", "p/2024-06-01T0b/x",
            "p/2024-06-01T0c", "p/2024-06-01T0c9", "q"]
    lister = MemoryLister(keys, page=2)
    prefix, chars, own = asyncio.run(next_characters(lister, "p/"))  # type: ignore[arg-type]
    assert (prefix, chars) == ("p/2024-06-01T0", ["a", "b", "c"])
    assert own is not None and own.key == "p/2024-06-01T0"


def test_a_big_folder_is_cut_per_subfolder() -> None:
    keys = [f"big/{d}/{i:03d}" for d in "abcdefgh" for i in range(30)] + ["big/own"]
    lister = MemoryLister(keys, page=10)
    r = asyncio.run(list_region(lister, Region("big/", True), 30, split_at=100))  # type: ignore[arg-type]
    assert [s.prefix for s in r.split] == [f"big/{d}/" for d in "abcdefgh"]
    assert [(c.first, c.count) for c in r.chunks] == [("big/own", 1)]
    specs = asyncio.run(auto_partitions(lister, _src(), 30, split_at=100))  # type: ignore[arg-type]
    _assert_exact_cover(specs, keys, 30)
    assert {s.prefix for s in specs} >= {f"big/{d}/" for d in "abcdefgh"}


def test_a_store_without_start_after_lists_a_flat_folder_whole() -> None:
    keys = _flat(300, "f/x")
    lister = MemoryLister(keys, page=10, start_after=False)
    specs = asyncio.run(auto_partitions(lister, _src(), 40, split_at=50))  # type: ignore[arg-type]
    _assert_exact_cover(specs, keys, 40)
