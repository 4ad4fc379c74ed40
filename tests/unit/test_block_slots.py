"""A copy in blocks that fails gives back every slot it took, and so every later copy of the
run can go on (engine/transfer_blocks._copy_blocks): a block or span task cancelled before
its first step (the copy failing just as it was created) never runs its body, so its slots
go back by the task's done-callback, not by a ``finally`` in it.  Before, a block refused
for good (a body changed in transit every time) leaked slots at each attempt until the run
hung."""

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
from lakeshift.errors import IntegrityError
from lakeshift.model import ObjectInfo
from lakeshift.stores.azure.store import CAPABILITIES as AZ
from lakeshift.urls import parse_url
from tests.memstores import MemSource

MiB = 1 << 20
BLOCK = 256 * 1024


class _Upload:
    def __init__(self, refuse: int) -> None:
        self.refuse = refuse  # the block (index) refused, every time

    async def stage(self, i: int, off: int, data: Any, md5: bytes | None) -> None:
        if i == self.refuse:  # (refused at once, as the next block is cut)
            raise IntegrityError("k: the service saw a different MD5 (Md5Mismatch)")
        await asyncio.sleep(0.01)

    async def stage_crc64(self, i: int, off: int, data: Any, crc64: bytes) -> None:
        await self.stage(i, off, data, None)

    async def commit(self, order: list[int], md5: bytes | None) -> None:
        raise AssertionError("nothing may be committed")

    async def abort(self) -> None:
        pass


class _Dst:
    url = parse_url("az://cont/")

    def __init__(self, crc64: bool, refuse: int) -> None:
        self.capabilities = replace(AZ, put_checks_md5=True, block_md5=True, block_crc64=crc64)
        self.refuse = refuse

    async def start_blocks(self, key: str, size: int, bs: int, props: Any) -> _Upload:
        return _Upload(self.refuse)


@pytest.mark.parametrize("crc64", [False, True])
@pytest.mark.parametrize("refuse", [0, 1, 100_001])  # (block 1 of span 1: 100_001)
def test_a_block_copy_refused_for_good_gives_back_every_slot(crc64: bool, refuse: int) -> None:
    data = os.urandom(2 * MiB + 5)  # blocks of 256 KiB (hashed on the loop), 4 per span
    info = ObjectInfo("k", len(data), etag="e", md5=hashlib.md5(data).digest())
    src = MemSource(data)
    slots = SlotPool(16)
    ctx = T.TransferContext(src, _Dst(crc64, refuse), BLOCK, slots,  # type: ignore[arg-type]
                            RetryPolicy(attempts=3, base=0.0), EventBus([]),
                            single_put_max=0)

    async def run() -> None:
        for _ in range(5):  # as the pipeline's attempts would, and more
            with pytest.raises(IntegrityError, match="changed in transit"):
                await asyncio.wait_for(T.copy_object(ctx, info, "k"), 10)
            assert slots.free == slots.total

    asyncio.run(run())
    assert src.streams and all(s.closed for s in src.streams)
