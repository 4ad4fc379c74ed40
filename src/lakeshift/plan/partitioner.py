"""Cut a source into partitions: given prefixes, a partitions file, the ADF template's
control table, or automatically into key ranges of about N objects each.

Automatic cutting splits the source into regions (subfolders; a flat folder or a string
prefix by the next character of its keys), lists the regions in parallel — in this process,
or on Dask workers (scale/planner.py) — and closes a chunk every ``target`` keys.  Listers
return chunk boundaries, not keys, so memory is O(partitions).  Each range starts with a
cursor equal to the previous range's last key: a partition lists after its cursor, so the
first run and a resumed run are the same code.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from lakeshift.engine.events import EventBus, Listed
from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.engine.listing import DEFAULT_POLICY, list_folders, list_pages
from lakeshift.engine.retry import RetryPolicy
from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo, PartitionSpec
from lakeshift.plan.source import SourceSpec
from lakeshift.stores.base import Store, StoreConfig


@dataclass(frozen=True)
class PlannedSource:
    url: str  # the user's URL, for display
    spec: SourceSpec
    bucket_url: str  # s3://bucket/ (what the store is opened with)
    destination: str


#: Who cuts a source into automatic partitions: (its open store, its config, the source,
#: target objects, listing events) → partitions.  ``auto_partitions`` in this process;
#: scale/planner.py on Dask workers.
AutoPartitioner = Callable[[Store, StoreConfig, PlannedSource, int, EventBus | None],
                           Awaitable[list[PartitionSpec]]]


def bucket_url(url: str, bucket: str, scheme: str, account: str | None) -> str:
    if scheme == "s3":
        return f"s3://{bucket}/"
    if scheme == "azure":
        return (f"abfss://{bucket}@{account}.dfs.core.windows.net/" if account
                else f"az://{bucket}/")
    if scheme in ("adl", "webhdfs", "swebhdfs"):
        return f"{scheme}://{bucket}/"
    return "file://" + bucket.rstrip("/") + "/"


def from_prefixes(src: PlannedSource, prefixes: Sequence[str]) -> list[PartitionSpec]:
    if not prefixes:
        return [PartitionSpec(src.bucket_url, src.spec.list_prefix, src.spec.rel_base,
                              src.destination)]
    out = []
    for p in prefixes:
        p = p.strip()
        if not p:
            continue
        out.append(PartitionSpec(src.bucket_url, src.spec.list_prefix + p.lstrip("/"),
                                 src.spec.rel_base, src.destination))
    check_overlaps(out)
    return out


def check_overlaps(specs: Sequence[PartitionSpec]) -> None:
    seen: dict[str, list[str]] = {}
    for s in specs:
        if s.range_start is not None or s.range_end is not None:
            continue
        for other in seen.get(s.source, []):
            if s.prefix.startswith(other) or other.startswith(s.prefix):
                raise UsageError(f"partitions overlap: {s.source}{other!s} and "
                                 f"{s.source}{s.prefix} (one prefix contains the other) — "
                                 "each object must belong to one partition")
        seen.setdefault(s.source, []).append(s.prefix)


#: A region with more keys than this is not listed to its end by one lister: it is split
#: (per subfolder, or per next character of its keys) and the parts are listed in parallel.
SPLIT_AT = 100_000

#: Above every character a key can hold: ``prefix + c + KEY_MAX`` is after each key that
#: starts with ``prefix + c`` (start-after skips them all).
KEY_MAX = "\U0010ffff"


@dataclass
class Chunk:
    """Consecutive keys (at most ``target``) of one region; ``folder`` is set when the
    chunk is the whole of that folder.  What a lister returns instead of keys."""

    first: str
    last: str
    count: int
    size: int = 0
    folder: str | None = None


@dataclass(frozen=True)
class Region:
    """Keys starting with ``prefix``, listed as one (``folder``: the prefix is a folder,
    which may become one whole partition)."""

    prefix: str
    folder: bool


@dataclass
class RegionResult:
    """A region's chunks; when it was too big, the regions that cover the rest of it
    instead (its own objects next to its subfolders stay in ``chunks``)."""

    chunks: list[Chunk]
    split: list[Region]


def root_region(src: PlannedSource) -> Region:
    root = src.spec.list_prefix
    return Region(root, not root or root.endswith("/"))


async def list_region(store: Store, region: Region, target: int,
                      split_at: int = SPLIT_AT, policy: RetryPolicy = DEFAULT_POLICY,
                      limiter: EndpointLimiter | None = None) -> RegionResult:
    """Chunk boundaries of ``region``, listed to its end when it holds at most ``split_at``
    keys; a bigger one is split instead (:func:`split_region`), after at most ``split_at``
    keys listed in vain.  Memory: the chunks (one per ``target`` keys)."""
    splittable = region.folder or store.capabilities.list_start_after
    out: list[Chunk] = []
    n = 0
    async for page in list_pages(store, region.prefix, None, policy, limiter):
        for obj in page:
            if not out or out[-1].count == target:
                out.append(Chunk(obj.key, obj.key, 0))
            c = out[-1]
            c.last = obj.key
            c.count += 1
            c.size += obj.size
            n += 1
        if splittable and n > split_at:
            return await split_region(store, region, target, split_at, policy, limiter)
    if len(out) == 1 and region.folder:
        out[0].folder = region.prefix
    return RegionResult(out, [])


async def split_region(store: Store, region: Region, target: int,
                       split_at: int = SPLIT_AT, policy: RetryPolicy = DEFAULT_POLICY,
                       limiter: EndpointLimiter | None = None) -> RegionResult:
    """The parts of a region, found with a few listing requests (the driver's prefix
    discovery): a folder's subfolders, with its own objects chunked; a folder with more
    than ``split_at`` objects directly in it, or a string prefix, by the next character
    of its keys (:func:`next_characters`).  A store that cannot list after a key has no
    cheap way to find the characters: its region stays one, listed to the end."""
    if region.folder:
        folders, direct = await list_folders(store, region.prefix, split_at, policy, limiter)
        if direct is not None:
            return RegionResult(direct_chunks(direct, folders, target),
                                [Region(f, True) for f in folders])
    if not store.capabilities.list_start_after:
        return await list_region(store, region, target, 1 << 62, policy, limiter)
    prefix, chars, own = await next_characters(store, region.prefix, policy, limiter)
    chunks = [Chunk(own.key, own.key, 1, own.size)] if own is not None else []
    return RegionResult(chunks, [Region(prefix + c, c == "/") for c in chars])


async def next_characters(store: Store, prefix: str, policy: RetryPolicy = DEFAULT_POLICY,
                          limiter: EndpointLimiter | None = None
                          ) -> tuple[str, list[str], ObjectInfo | None]:
    """The characters that follow ``prefix`` in its keys, one listing request per
    character at most (each request lists after the last one seen: ``prefix + c +
    KEY_MAX``).  While only one character follows, the prefix grows by it, so keys with a
    long common prefix (``logs/2024-06-01T…``) still split.  Returns the longest such
    prefix, its next characters, and the object named by the prefix itself, if any."""
    while True:
        chars: list[str] = []
        own: ObjectInfo | None = None
        after: str | None = None
        while True:
            objs = await _first_objects(store, prefix, after, policy, limiter)
            if not objs:
                break
            for o in objs:
                if o.key == prefix:
                    own = o
                elif not chars or o.key[len(prefix)] != chars[-1]:
                    chars.append(o.key[len(prefix)])
            after = prefix + chars[-1] + KEY_MAX if chars else prefix
        if len(chars) != 1 or own is not None:
            return prefix, chars, own
        prefix += chars[0]


async def _first_objects(store: Store, prefix: str, after: str | None, policy: RetryPolicy,
                         limiter: EndpointLimiter | None) -> Sequence[ObjectInfo]:
    async for page in list_pages(store, prefix, after, policy, limiter):
        return page
    return ()


def direct_chunks(objects: Sequence[ObjectInfo], folders: Sequence[str],
                  target: int) -> list[Chunk]:
    """A folder's own objects (in key order) in chunks of at most ``target`` that span no
    subfolder: a partition's range ends at the next unit's first key, so a chunk ``[m,
    zz]`` around the folder ``z/`` would end at ``z/…`` and lose ``zz``."""
    ordered = sorted(folders)
    out: list[Chunk] = []
    for o in objects:
        last = out[-1] if out else None
        if (last is None or last.count == target
                or bisect.bisect_right(ordered, last.last) != bisect.bisect_right(ordered,
                                                                                  o.key)):
            out.append(Chunk(o.key, o.key, 1, o.size))
        else:
            last.last = o.key
            last.count += 1
            last.size += o.size
    return out


async def auto_partitions(store: Store, src: PlannedSource, target: int,
                          parallel: int = 8, policy: RetryPolicy = DEFAULT_POLICY,
                          limiter: EndpointLimiter | None = None,
                          events: EventBus | None = None,
                          split_at: int = SPLIT_AT) -> list[PartitionSpec]:
    """Partitions of about ``target`` objects that follow the folder tree.

    The root is split first (its subfolders, or its keys' next characters); the parts are
    listed ``parallel`` at a time and cut every ``target`` keys, and a part bigger than
    ``split_at`` is split again the same way.  A folder that fits becomes one prefix
    partition; small folders and objects next to each other are grouped into a key range;
    a big folder becomes several ranges.  ``lakeshift plan --dask`` runs the same listing
    on Dask workers (scale/planner.py).  Partitions describe the source as listed now
    (objects added later are the delta sync's business).
    """
    check_target(target)
    gate = asyncio.Semaphore(parallel)

    async def one(region: Region) -> RegionResult:
        async with gate:
            return await list_region(store, region, target, split_at, policy, limiter)

    first = await split_region(store, root_region(src), target, split_at, policy, limiter)
    chunks = list(first.chunks)
    emit_listed(events, first.chunks)
    running = {asyncio.ensure_future(one(r)) for r in first.split}
    try:
        while running:
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                r = t.result()
                chunks += r.chunks
                emit_listed(events, r.chunks)
                running |= {asyncio.ensure_future(one(s)) for s in r.split}
    finally:
        for t in running:
            t.cancel()
    return partitions_of(src, chunks, target)


def check_target(target: int) -> None:
    if target < 1:
        raise UsageError("--target-objects must be at least 1")


def emit_listed(events: EventBus | None, chunks: Sequence[Chunk]) -> None:
    if events is not None and chunks:
        events.emit(Listed(sum(c.count for c in chunks), sum(c.size for c in chunks)))


def _is_folder(unit: list[Chunk]) -> bool:
    return len(unit) == 1 and unit[0].folder is not None


def _after_folder(folder: str) -> str:
    """The first key after every key under ``folder`` ("d1/" → "d10")."""
    return folder[:-1] + chr(ord(folder[-1]) + 1)


def partitions_of(src: PlannedSource, chunks: list[Chunk], target: int
                  ) -> list[PartitionSpec]:
    """The partitions of a source from its chunks (disjoint, together every key)."""
    root = src.spec.list_prefix
    chunks = sorted(chunks, key=lambda c: c.first)
    if not chunks:
        return from_prefixes(src, [])
    # Each unit becomes one partition: a folder that is big enough on its own, a full
    # chunk of a big folder, or a group of small neighbours adding up to at most target.
    units: list[list[Chunk]] = []
    open_group = False
    for c in chunks:
        if (c.folder is not None and c.count * 2 >= target) or c.count >= target:
            units.append([c])
            open_group = False
        elif open_group and sum(x.count for x in units[-1]) + c.count <= target:
            units[-1].append(c)
        else:
            units.append([c])
            open_group = True
    # The partitions tile the whole key space of the source, not only the keys there when
    # it was planned: the first range starts at the source's start, the last runs to its
    # end, and the keys beside a folder partition (before it, between two of them, after
    # it) fall in a range, so a key written later always lies in one partition.
    def start(unit: list[Chunk]) -> str:
        return unit[0].folder if _is_folder(unit) else unit[0].first  # type: ignore[return-value]

    def ranged(lo: str | None, hi: str | None, cursor: str | None = None) -> PartitionSpec:
        return PartitionSpec(src.bucket_url, root, src.spec.rel_base, src.destination,
                             range_start=lo, range_end=hi, cursor=cursor)

    specs: list[PartitionSpec] = []
    lo: str | None = None  # where the next partition starts (None: the source's start)
    for i, unit in enumerate(units):
        hi = start(units[i + 1]) if i + 1 < len(units) else None
        if _is_folder(unit):
            folder = start(unit)
            if lo != folder:  # the keys before it (the source's first, or after a folder)
                specs.append(ranged(lo, folder))
            specs.append(PartitionSpec(src.bucket_url, folder, src.spec.rel_base,
                                       src.destination))
            lo = _after_folder(folder)
            if hi is None:  # the keys after the last folder
                specs.append(ranged(lo, None))
            continue
        prev_last = units[i - 1][-1].last if i and not _is_folder(units[i - 1]) else None
        specs.append(ranged(lo, hi, prev_last))
        lo = hi
    return specs
