"""A copy by parts (engine/transfer_parts.py) reads spans of parts: every open ranged GET
must hold the slots of the parts it is reading, as a span of blocks does (engine/slots.py:
"a reader can reserve a whole span of blocks before it opens a ranged GET").  A span
opened with the slots of one part that then waits for the next part's, its connection
held, can starve every other span of a connection: the source's pool (wire.Pool, 128
connections; further requests wait) is all taken by spans waiting for slots, the slots by
spans waiting for a connection -- the copy hangs.  And streams not covered by slots are
memory the slots do not count (a connection's buffer, the cutter's rest)."""

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
from lakeshift.errors import ChangedError, IntegrityError
from lakeshift.model import ObjectInfo
from lakeshift.stores.azure.store import CAPABILITIES as AZ
from lakeshift.stores.base import SourceChecksum
from lakeshift.urls import parse_url
from tests.memstores import MemSource, MemStream

BLOCK = 16 * 1024


class _Pool:
    """At most ``connections`` ranged GETs open at once; further opens wait (wire.Pool)."""

    def __init__(self, connections: int) -> None:
        self.free = asyncio.Semaphore(connections)
        self.open = self.most = 0


class _Stream(MemStream):
    pool: _Pool

    async def chunks(self, n: int) -> Any:
        try:
            async for chunk in super().chunks(n):
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.pool.open -= 1
            self.pool.free.release()
        super().close()


class _Src(MemSource):
    def __init__(self, data: bytes, etag: str, parts: int, part: int, pool: _Pool) -> None:
        super().__init__(data)
        self.etag, self.pool = etag, pool
        self.kept = SourceChecksum(None, None, False, part, parts, False)

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> MemStream:
        assert if_match == self.etag  # every data GET, each span and each resumed read
        await self.pool.free.acquire()
        self.pool.open += 1
        self.pool.most = max(self.pool.most, self.pool.open)
        stream = _Stream(self.data[start:end], start)
        stream.pool = self.pool
        self.streams.append(stream)
        return stream

    async def source_checksums(self, key: str, etag: str | None) -> SourceChecksum:
        return self.kept


class _Upload:
    def __init__(self, dst: _Dst) -> None:
        self.dst = dst
        self.blocks: dict[int, bytes] = {}

    async def stage(self, i: int, off: int, data: Any, md5: bytes | None) -> None:
        await asyncio.sleep(0.001)  # a destination slower than the source
        assert md5 == hashlib.md5(data).digest()
        self.blocks[i] = bytes(data)

    async def commit(self, order: list[int], md5: bytes | None) -> None:
        self.dst.blob = b"".join(self.blocks[i] for i in order)

    async def abort(self) -> None:
        pass


class _Dst:
    url = parse_url("az://cont/")
    capabilities = replace(AZ, put_checks_md5=True, block_md5=True)  # plain HTTP

    def __init__(self) -> None:
        self.blob = b""

    async def start_blocks(self, key: str, size: int, bs: int, props: Any) -> _Upload:
        return _Upload(self)


def _object(part: int, count: int) -> tuple[bytes, str]:
    parts = [os.urandom(part) for _ in range(count)]
    etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return b"".join(parts), f"{etag}-{count}"


def _copy_all(objects: int, slots: int, connections: int, part: int, count: int
              ) -> tuple[_Pool, list[T.Copied]]:
    data, etag = _object(part, count)

    async def run() -> tuple[_Pool, list[T.Copied]]:
        pool, pool_slots = _Pool(connections), SlotPool(slots)

        async def one(i: int) -> T.Copied:
            src, dst = _Src(data, etag, count, part, pool), _Dst()
            ctx = T.TransferContext(src, dst, BLOCK, pool_slots,  # type: ignore[arg-type]
                                    RetryPolicy(attempts=3, base=0.0), EventBus([]),
                                    single_put_max=0)
            copied = await T.copy_object(ctx, ObjectInfo(f"k{i}", len(data), etag=etag), "k")
            assert dst.blob == data
            return copied

        copied = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(objects))), 5)
        assert pool_slots.free == slots  # every slot given back
        return pool, list(copied)

    return asyncio.run(run())


def test_spans_of_parts_never_hang_on_a_source_with_few_connections() -> None:
    # 16 slots, parts of one block (2 slots each: a part is read whole), spans of 4 parts;
    # two connections.  A span waiting for its next part's slots while it holds one of the
    # two connections, and spans holding slots while they wait for a connection, hung.
    _, copied = _copy_all(objects=1, slots=16, connections=2, part=BLOCK, count=64)
    assert [c.proof for c in copied] == ["multipart-etag"]


def test_open_spans_of_parts_stay_within_what_the_slots_allow() -> None:
    # Eight objects at once over a pool that would allow 64 connections: the ranged GETs
    # open at once stay within the slots' spans (a span reserved before it is opened), not
    # one per object per part waiting for slots.
    pool, copied = _copy_all(objects=8, slots=64, connections=64, part=BLOCK, count=80)
    assert {c.proof for c in copied} == {"multipart-etag"}
    assert pool.most <= 64 // 2  # a part's 2 slots at the very least per open GET


class _Refusing(_Upload):
    """A destination that refuses one part's Put Block for good (a body changed in transit
    every time: the service's MD5 check)."""

    refuse = -1

    async def stage(self, i: int, off: int, data: Any, md5: bytes | None) -> None:
        if i == self.refuse:
            raise IntegrityError("k: Content-MD5 mismatch")
        await super().stage(i, off, data, md5)


class _ChangingSrc(_Src):
    """A source changed after its first ranged GET: every later one is refused (If-Match)."""

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> MemStream:
        if self.streams:
            raise ChangedError(f"{key}: changed (If-Match)")
        return await super().open_range(key, start, end, if_match)


@pytest.mark.parametrize("fault", ["part 0", "part 5", "last part", "changed"])
def test_a_copy_by_parts_that_fails_gives_back_every_slot_and_connection(fault: str) -> None:
    count = 11  # spans of 4 parts (16 slots, 2 per part): 4, 4, 3
    data, etag = _object(BLOCK, count)

    async def run() -> None:
        pool, slots = _Pool(4), SlotPool(16)
        src = (_ChangingSrc if fault == "changed" else _Src)(data, etag, count, BLOCK, pool)
        dst = _Dst()
        upload = _Refusing(dst)
        upload.refuse = {"part 0": 0, "part 5": 5, "last part": count - 1}.get(fault, -1)

        async def start_blocks(*_: Any) -> _Upload:
            return upload

        dst.start_blocks = start_blocks  # type: ignore[method-assign]
        ctx = T.TransferContext(src, dst, BLOCK, slots,  # type: ignore[arg-type]
                                RetryPolicy(attempts=2, base=0.0), EventBus([]),
                                single_put_max=0)
        with pytest.raises((IntegrityError, ChangedError)):
            await asyncio.wait_for(
                T.copy_object(ctx, ObjectInfo("k", len(data), etag=etag), "k"), 5)
        assert slots.free == 16 and pool.open == 0 and dst.blob == b""
        assert all(s.closed for s in src.streams)

    asyncio.run(run())


@pytest.mark.parametrize("in_pieces", [True, False])
def test_the_cutter_gives_each_part_exactly_whatever_the_chunking(in_pieces: bool) -> None:
    # Parts of unequal sizes (a short last one, one of a single byte) from chunks of every
    # kind: boundaries on a part's end, inside a part, several parts in one buffer, a part
    # across many; each part's bytes exactly, made of received buffers or views of them.
    import itertools
    import random

    from lakeshift.engine.transfer_parts import _Cutter
    from lakeshift.stores.base import Pieces, buffers

    rng = random.Random(7)
    sizes = [7, 1, 13, 13, 40, 5, 3]
    data = os.urandom(sum(sizes))
    bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    for trial in range(200):
        cuts = sorted(set(rng.sample(range(1, len(data)), rng.randint(0, 20)) +
                          (bounds[1:-1] if trial % 2 else [])))
        edges = [0, *cuts, len(data)]
        received = [data[a:b] for a, b in itertools.pairwise(edges)]

        async def chunks(received: list[bytes] = received) -> Any:
            i = 0
            while i < len(received):
                n = rng.randint(1, 3)
                yield Pieces(received[i:i + n]) if in_pieces else b"".join(received[i:i + n])
                i += n

        async def run() -> list[Any]:
            cutter = _Cutter(chunks(), in_pieces)
            return [await cutter.take(n) for n in sizes]

        got = asyncio.run(run())
        for part, (a, b) in zip(got, itertools.pairwise(bounds), strict=True):
            assert isinstance(part, Pieces) == in_pieces
            assert b"".join(bytes(p) for p in buffers(part)) == data[a:b]
            assert all(len(p) for p in buffers(part))
            if in_pieces:
                for p in buffers(part):
                    base = p.obj if isinstance(p, memoryview) else p
                    assert any(base is r for r in received)
