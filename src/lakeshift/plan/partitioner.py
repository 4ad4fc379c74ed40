"""Cut a source into partitions: given prefixes, a partitions file, the ADF template's
control table, or automatically into key ranges of about N objects each.

Automatic cutting streams the listing once and closes a range every ``target`` objects, so
a huge prefix becomes several ranges ``[start, end)`` and memory stays flat.  Each range
starts with a cursor equal to the previous range's last key: a partition lists after its
cursor, so the first run and a resumed run are the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lakeshift.control.repository import PartitionSpec
from lakeshift.errors import UsageError
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


async def auto_ranges(store: Store, src: PlannedSource, target: int) -> list[PartitionSpec]:
    """Ranges of ``target`` objects along the listing of ``src``."""
    if target < 1:
        raise UsageError("--target-objects must be at least 1")
    specs: list[PartitionSpec] = []
    count = 0
    first: str | None = None
    last: str | None = None
    prev_last: str | None = None
    async for page in store.list_pages(src.spec.list_prefix):
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
