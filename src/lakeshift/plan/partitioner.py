"""Cut a source into partitions: given prefixes, a partitions file, the ADF template's
control table, or automatically into key ranges of about N objects each.

Automatic cutting streams the listing once and closes a range every ``target`` objects, so
a huge prefix becomes several ranges ``[start, end)`` and memory stays flat.  Each range
starts with a cursor equal to the previous range's last key: a partition lists after its
cursor, so the first run and a resumed run are the same code.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from lakeshift.engine.events import EventBus, Listed
from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.engine.listing import DEFAULT_POLICY, list_folders, list_pages
from lakeshift.engine.retry import RetryPolicy
from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo, PartitionSpec
from lakeshift.plan.source import SourceSpec
from lakeshift.stores.base import Store


@dataclass(frozen=True)
class PlannedSource:
    url: str  # the user's URL, for display
    spec: SourceSpec
    bucket_url: str  # s3://bucket/ (what the store is opened with)
    destination: str


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


async def auto_ranges(store: Store, src: PlannedSource, target: int,
                      policy: RetryPolicy = DEFAULT_POLICY,
                      limiter: EndpointLimiter | None = None,
                      events: EventBus | None = None) -> list[PartitionSpec]:
    """Ranges of ``target`` objects along the listing of ``src`` (each page retried, and
    paced by ``limiter`` when given, as every listing is: engine/listing.py)."""
    if target < 1:
        raise UsageError("--target-objects must be at least 1")
    specs: list[PartitionSpec] = []
    count = 0
    first: str | None = None
    last: str | None = None
    prev_last: str | None = None
    async for page in list_pages(store, src.spec.list_prefix, None, policy, limiter):
        _listed(events, page)
        for obj in page:
            if first is None:
                first = obj.key
            if count == target:
                specs.append(PartitionSpec(src.bucket_url, src.spec.list_prefix,
                                           src.spec.rel_base, src.destination,
                                           range_start=first, range_end=obj.key,
                                           cursor=prev_last))
                prev_last, first, count = last, obj.key, 0
            count += 1
            last = obj.key
    if first is None:
        return [PartitionSpec(src.bucket_url, src.spec.list_prefix, src.spec.rel_base,
                              src.destination)]
    specs.append(PartitionSpec(src.bucket_url, src.spec.list_prefix, src.spec.rel_base,
                               src.destination, range_start=first if specs else None,
                               range_end=None, cursor=prev_last))
    return specs


def _listed(events: EventBus | None, objects: Sequence[ObjectInfo]) -> None:
    if events is not None and objects:
        events.emit(Listed(len(objects), sum(o.size for o in objects)))


@dataclass
class _Chunk:
    """Consecutive keys (at most ``target``) of one folder, or of the objects directly
    under the root; ``folder`` is set when the chunk is the whole of that folder."""

    first: str
    last: str
    count: int
    folder: str | None = None


async def _folder_chunks(store: Store, folder: str, target: int, gate: asyncio.Semaphore,
                         policy: RetryPolicy, limiter: EndpointLimiter | None,
                         events: EventBus | None = None) -> list[_Chunk]:
    async with gate:
        out: list[_Chunk] = []
        first = last = ""
        n = 0
        async for page in list_pages(store, folder, None, policy, limiter):
            _listed(events, page)
            for obj in page:
                if n == target:
                    out.append(_Chunk(first, last, n))
                    n = 0
                if n == 0:
                    first = obj.key
                last = obj.key
                n += 1
        if n:
            out.append(_Chunk(first, last, n))
        if len(out) == 1:
            out[0].folder = folder
        return out


def _direct_chunks(keys: Sequence[str], folders: Sequence[str], target: int) -> list[_Chunk]:
    """The root's own objects (``keys``, in key order) in chunks of at most ``target`` that
    span no folder: a partition's range ends at the next unit's first key, so a chunk
    ``[m, zz]`` around the folder ``z/`` would end at ``z/…`` and lose ``zz``."""
    ordered = sorted(folders)
    out: list[_Chunk] = []
    for key in keys:
        last = out[-1] if out else None
        if (last is None or last.count == target
                or bisect.bisect_right(ordered, last.last) != bisect.bisect_right(ordered, key)):
            out.append(_Chunk(key, key, 1))
        else:
            last.last = key
            last.count += 1
    return out


async def auto_partitions(store: Store, src: PlannedSource, target: int,
                          parallel: int = 8, policy: RetryPolicy = DEFAULT_POLICY,
                          limiter: EndpointLimiter | None = None,
                          events: EventBus | None = None) -> list[PartitionSpec]:
    """Partitions of about ``target`` objects that follow the folder tree.

    A delimiter listing finds the root's child folders; the folders are then listed in
    parallel and cut every ``target`` keys.  A folder that fits becomes one prefix partition;
    small folders and the root's own objects next to each other are grouped into a key
    range; a big folder becomes several ranges.  Partitions describe the source as listed
    now (objects added later are the delta sync's business).
    """
    if target < 1:
        raise UsageError("--target-objects must be at least 1")
    root = src.spec.list_prefix
    if root and not root.endswith("/"):
        return await auto_ranges(store, src, target, policy, limiter, events)
    folders, direct = await list_folders(store, root, max(target, 100_000), policy, limiter)
    if direct is None:  # a huge flat folder: one streamed pass of key ranges instead
        return await auto_ranges(store, src, target, policy, limiter, events)
    _listed(events, direct)
    gate = asyncio.Semaphore(parallel)
    per_folder = await asyncio.gather(*(_folder_chunks(store, f, target, gate, policy, limiter,
                                                       events) for f in folders))
    chunks = [c for cs in per_folder for c in cs]
    chunks += _direct_chunks([o.key for o in direct], folders, target)
    chunks.sort(key=lambda c: c.first)
    if not chunks:
        return from_prefixes(src, [])
    # Each unit becomes one partition: a folder that is big enough on its own, a full
    # chunk of a big folder, or a group of small neighbours adding up to at most target.
    units: list[list[_Chunk]] = []
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
    specs: list[PartitionSpec] = []
    for i, unit in enumerate(units):
        only = unit[0]
        if len(unit) == 1 and only.folder is not None:
            specs.append(PartitionSpec(src.bucket_url, only.folder, src.spec.rel_base,
                                       src.destination))
            continue
        nxt = units[i + 1][0].first if i + 1 < len(units) else None
        prev_last = units[i - 1][-1].last if i else None
        specs.append(PartitionSpec(src.bucket_url, root, src.spec.rel_base, src.destination,
                                   range_start=unit[0].first, range_end=nxt, cursor=prev_last))
    return specs
