"""The engine keeps no state per object for the length of a copy (issue 16: the peak RSS of
50,000 small objects within 10 % of 5,000's).  The same copy over in-memory stores of N and
10 N objects under tracemalloc: what is held when the listing hands over its last page, and
the peak, grow by less than a few hundred bytes per thousand objects (a set of keys, a list
of results or an event kept per object would add tens of bytes per object)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import pytest

import lakeshift.engine.pipeline as pipeline
from lakeshift.model import ObjectInfo, ObjectProps, ReadResult
from lakeshift.stores.base import Capabilities, Page, StoreConfig
from lakeshift.urls import parse_url

_DATA = b"x" * 64
_MD5 = hashlib.md5(_DATA).digest()
_WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
_COMMON: dict[str, Any] = dict(list_start_after=True, content_md5=True, hierarchical=False,
                               acls=False, copy_from_url=False, block_upload=True,
                               max_block_size=1 << 30)


class _Generated:
    """A source of ``n`` objects made page by page (nothing kept), or (n=0) an empty
    destination that forgets what it is given."""

    def __init__(self, url: str, n: int, caps: Capabilities, held: list[int]) -> None:
        self.url = parse_url(url)
        self.n = n
        self.capabilities = caps
        self.held = held
        self.written = 0

    async def check_source(self) -> None:
        pass

    async def prepare_destination(self) -> None:
        pass

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None,
                        delimiter: str | None = None) -> Page:
        start = int(token) if token else 0
        end = min(self.n, start + 250)
        if self.n and end == self.n:
            gc.collect()
            self.held.append(tracemalloc.get_traced_memory()[0])
        objs = [ObjectInfo(f"data/{i // 1000:03d}/obj-{i:06d}.bin", len(_DATA), _WHEN,
                           f'"{_MD5.hex()}"', _MD5) for i in range(start, end)]
        return Page(objs, (), str(end) if end < self.n else None)

    async def read(self, key: str, start: int | None = None, end: int | None = None,
                   if_match: str | None = None) -> ReadResult:
        return ReadResult(_DATA, ObjectProps(content_type="text/plain"), len(_DATA), "e")

    async def put(self, key: str, body: bytes, props: ObjectProps, sum_: bytes) -> None:
        assert sum_ == _MD5
        self.written += 1

    async def close(self) -> None:
        pass


def _copy(monkeypatch: pytest.MonkeyPatch, n: int) -> tuple[int, int]:
    """(traced bytes held at the listing's last page, traced peak) of a copy of n objects."""
    held: list[int] = []
    src = _Generated("s3://bkt/data/", n, Capabilities(**_COMMON, etag_is_md5=True,
                                                       metadata_in_listing=False), held)
    dst = _Generated("az://cnt/data/", 0, Capabilities(
        **_COMMON, etag_is_md5=False, metadata_in_listing=True, stream_put=True,
        put_checks_md5=True), held)
    monkeypatch.setattr(pipeline, "open_store",
                        lambda cfg: src if cfg.url.scheme == "s3" else dst)

    async def main() -> None:
        result = await pipeline.copy_async(StoreConfig(parse_url("s3://bkt/data/")),
                                           StoreConfig(parse_url("az://cnt/data/")))
        assert result.stats.copied == n and dst.written == n

    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        asyncio.run(main())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return held[0] - base, peak - base


def test_a_copy_of_ten_times_the_objects_holds_no_more_memory(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _copy(monkeypatch, 500)  # (first-use caches, compiled regexes, ... filled here)
    held_small, peak_small = _copy(monkeypatch, 1000)
    held_big, peak_big = _copy(monkeypatch, 10000)
    # 9,000 objects more: 64 KiB is ~7 bytes an object (one key kept per object,
    # ~80 bytes, would be 0.7 MB).
    assert held_big - held_small < 64 * 1024, (held_small, held_big)
    assert peak_big - peak_small < 64 * 1024, (peak_small, peak_big)
