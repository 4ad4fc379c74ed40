"""A copy in blocks reads ahead of its Put Blocks by at most ``read_ahead`` blocks per
span (engine/transfer_blocks._copy_blocks): over plain HTTP the ranged GETs outran
Azurite's Put Blocks, and every block of a span (a quarter of the run's slots) waited in
memory until the whole slot budget was full (peak RSS 70-80 MB -> 320-330 MB on the
multipart 16 x 64 MiB set).  Here a fast source feeds a slow destination; the test counts,
per ranged GET, the blocks handed over and not yet staged."""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import replace
from typing import Any

import pytest

from lakeshift.engine import transfer as T
from lakeshift.engine.events import EventBus
from lakeshift.engine.retry import RetryPolicy
from lakeshift.engine.slots import SlotPool
from lakeshift.model import ObjectInfo
from lakeshift.stores.azure.store import CAPABILITIES as AZ
from lakeshift.urls import parse_url
from tests.memstores import MemSource, MemStream

MiB = 1 << 20
BLOCK = 256 * 1024


class _Stream(MemStream):
    """Chunks made only when asked for (as a paused socket): ``held`` counts those handed
    over whose block is not staged yet, ``most`` the largest count seen."""

    def __init__(self, data: bytes, start: int) -> None:
        super().__init__(data, start)
        self.held = self.most = 0

    def handed(self) -> None:
        self.held += 1
        self.most = max(self.most, self.held)


class _Src(MemSource):
    stream_type = _Stream
    streams: list[_Stream]  # type: ignore[assignment]


class _Upload:
    def __init__(self, src: _Src) -> None:
        self.src = src
        self.blocks: dict[int, bytes] = {}
        self.committed: bytes | None = None

    async def stage(self, i: int, off: int, data: Any, md5: bytes | None) -> None:
        await asyncio.sleep(0.005)  # a destination slower than the source
        self.blocks[i] = bytes(data)
        stream = max((s for s in self.src.streams if s.start <= off), key=lambda s: s.start)
        stream.held -= 1

    async def stage_crc64(self, i: int, off: int, data: Any, crc64: bytes) -> None:
        await self.stage(i, off, data, None)

    async def commit(self, order: list[int], md5: bytes | None) -> None:
        self.committed = b"".join(self.blocks[i] for i in order)

    async def abort(self) -> None:
        pass


class _Dst:
    url = parse_url("az://cont/")

    def __init__(self, src: _Src, crc64: bool) -> None:
        self.capabilities = replace(AZ, put_checks_md5=True, block_md5=True, block_crc64=crc64)
        self.src = src
        self.uploads: list[_Upload] = []

    async def start_blocks(self, key: str, size: int, bs: int, props: Any) -> _Upload:
        self.uploads.append(_Upload(self.src))
        return self.uploads[-1]


@pytest.mark.parametrize("crc64", [False, True])
@pytest.mark.parametrize("read_ahead", [1, 2])
def test_a_span_reads_at_most_read_ahead_blocks_beyond_its_put_blocks(
        crc64: bool, read_ahead: int) -> None:
    # 17 blocks of 256 KiB in spans of 8 (a quarter of 32 slots): 3 ranged GETs at once,
    # each of which would hand over all its blocks at once without the bound.
    data = os.urandom(4 * MiB + 5)
    info = ObjectInfo("k", len(data), etag="e", md5=hashlib.md5(data).digest())
    src = _Src(data)
    dst = _Dst(src, crc64)
    slots = SlotPool(32)
    ctx = T.TransferContext(src, dst, BLOCK, slots,  # type: ignore[arg-type]
                            RetryPolicy(attempts=3, base=0.0), EventBus([]),
                            single_put_max=0, read_ahead=read_ahead)

    asyncio.run(asyncio.wait_for(T.copy_object(ctx, info, "k"), 20))
    assert dst.uploads[0].committed == data
    assert len(src.streams) == 3
    assert [s.most for s in src.streams] == [read_ahead, read_ahead, 1]
    assert slots.free == slots.total
