"""A data GET that breaks in the middle of a block read (a span of blocks) or of a part read
(a copy by parts) is resumed from where it stopped, not from the start, and each such retry
is reported as ``retry`` reports its own: to ``retry_observer``, which counts a partition's
retries by class (engine/retry.resumed_read)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from lakeshift.engine import transfer as T
from lakeshift.engine.events import EventBus
from lakeshift.engine.retry import RetryPolicy, retry_observer
from lakeshift.engine.slots import SlotPool
from lakeshift.errors import TransientError
from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.stores.azure.store import CAPABILITIES as AZ
from lakeshift.stores.base import SourceChecksum
from lakeshift.stores.s3.store import CAPABILITIES as S3
from lakeshift.urls import parse_url

MiB = 1 << 20
PART = 3 * MiB


class _Stream:
    """A ranged GET's body from ``start``; ``fault``: ("reset", at) raises a TransientError
    once the bytes before ``at`` are delivered (a connection reset), ("short", at) ends the
    body there (a short read)."""

    def __init__(self, data: bytes, start: int, fault: tuple[str, int] | None) -> None:
        self.data, self.start, self.fault = data, start, fault
        self.props, self.size, self.etag = ObjectProps(), len(data), None

    async def chunks(self, n: int) -> AsyncIterator[bytes]:
        stop = len(self.data) if self.fault is None else self.fault[1] - self.start
        for i in range(0, len(self.data), n):
            if i + n > stop and self.fault is not None:
                if stop > i and self.fault[0] == "short":
                    yield self.data[i:stop]
                if self.fault[0] == "reset":
                    raise TransientError("k: connection reset by peer")
                return
            yield self.data[i:i + n]

    def close(self) -> None:
        pass


class _Src:
    url = parse_url("s3://bkt/")
    capabilities = S3

    def __init__(self, data: bytes, etag: str, kept: SourceChecksum | None,
                 faults: dict[int, tuple[str, int]]) -> None:
        self.data, self.etag, self.kept = data, etag, kept
        #: Per data GET, by the offset it starts at: the fault of its first request.
        self.faults = faults
        self.gets: list[tuple[int, int]] = []

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> _Stream:
        self.gets.append((start, end))
        return _Stream(self.data[start:end], start, self.faults.pop(start, None))

    async def source_checksums(self, key: str, etag: str | None) -> SourceChecksum | None:
        return self.kept


class _Upload:
    def __init__(self, dst: _Dst) -> None:
        self.dst, self.blocks = dst, {}  # type: ignore[var-annotated]

    async def stage(self, i: int, off: int, data: Any, md5: bytes | None) -> None:
        self.blocks[i] = bytes(data)

    async def commit(self, order: list[int], md5: bytes | None) -> None:
        self.dst.blob = b"".join(self.blocks[i] for i in order)

    async def abort(self) -> None:
        pass


class _Dst:
    url = parse_url("az://cont/")
    # Plain HTTP: each block carries its MD5, so a multipart-ETag source goes by parts.
    capabilities = replace(AZ, put_checks_md5=True, block_md5=True)

    def __init__(self) -> None:
        self.blob = b""

    async def start_blocks(self, key: str, size: int, bs: int, props: Any) -> _Upload:
        return _Upload(self)


def _copy(src: _Src, info: ObjectInfo) -> tuple[T.Copied, bytes, list[str]]:
    """Copy ``info`` to a fresh destination: what the copy proved, the bytes committed and
    the retries observed (by class)."""
    dst = _Dst()
    ctx = T.TransferContext(src, dst, MiB, SlotPool(64),  # type: ignore[arg-type]
                            RetryPolicy(attempts=3, base=0.0), EventBus([]),
                            single_put_max=0)
    seen: list[str] = []

    async def run() -> T.Copied:
        retry_observer.set(seen.append)
        return await T.copy_object(ctx, info, "k")

    copied = asyncio.run(run())
    return copied, dst.blob, seen


def test_a_block_read_broken_in_the_middle_resumes_there_and_is_counted() -> None:
    data = os.urandom(6 * MiB)
    # One span of six 1 MiB blocks: the first GET is reset after 2 MiB.
    src = _Src(data, "e", None, {0: ("reset", 2 * MiB)})
    info = ObjectInfo("k", len(data), etag="e", md5=hashlib.md5(data).digest())
    copied, blob, seen = _copy(src, info)
    assert blob == data and copied.proof == "source-md5"
    assert src.gets == [(0, 6 * MiB), (2 * MiB, 6 * MiB)]  # the 2 MiB read are kept
    assert seen == ["transient"]


def _by_parts(faults: dict[int, tuple[str, int]], count: int = 2
              ) -> tuple[bytes, _Src, ObjectInfo]:
    parts = [os.urandom(PART) for _ in range(count)] + [os.urandom(123)]
    data = b"".join(parts)
    etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + \
        f"-{len(parts)}"
    kept = SourceChecksum(None, None, False, PART, len(parts), False)
    return data, _Src(data, etag, kept, faults), ObjectInfo("k", len(data), etag=etag)


def test_parts_are_read_in_spans_of_several_one_get_each() -> None:
    # A span is 16 slots (a quarter of 64 slots of 1 MiB), taken before its GET opens; a
    # 3 MiB part holds 6 (read whole): two parts per GET, each cut at its exact end, not
    # one GET per part.
    data, src, info = _by_parts({}, count=7)
    copied, blob, seen = _copy(src, info)
    assert blob == data and copied.proof == "multipart-etag"
    assert sorted(src.gets) == [(0, 2 * PART), (2 * PART, 4 * PART), (4 * PART, 6 * PART),
                                (6 * PART, 7 * PART + 123)]
    assert seen == []


def test_a_part_read_cut_short_resumes_where_it_stopped_and_is_counted() -> None:
    # The span's GET ends 1 MiB into part 2: the rest of the span is asked for from there
    # (the 1 MiB received is kept), not part 2 from its start.
    data, src, info = _by_parts({0: ("short", PART + MiB)})
    copied, blob, seen = _copy(src, info)
    assert blob == data and copied.proof == "multipart-etag"
    assert sorted(src.gets) == [(0, 2 * PART), (PART + MiB, 2 * PART),
                                (2 * PART, 2 * PART + 123)]
    assert seen == ["transient"]


def test_a_part_read_reset_resumes_after_the_last_chunk_received_and_is_counted() -> None:
    # Reset 1 MiB into part 2: what arrived of it (read in 1 MiB chunks) is kept, the read
    # resumes there.
    data, src, info = _by_parts({0: ("reset", PART + MiB)})
    copied, blob, seen = _copy(src, info)
    assert blob == data and copied.proof == "multipart-etag"
    assert sorted(src.gets) == [(0, 2 * PART), (PART + MiB, 2 * PART),
                                (2 * PART, 2 * PART + 123)]
    assert seen == ["transient"]


def test_a_read_back_broken_in_the_middle_resumes_there_and_is_counted() -> None:
    # The read-back after a server-side copy: reset after 2 MiB, the rest asked for alone.
    from lakeshift.engine.transfer_server import _read_back_md5

    data = os.urandom(5 * MiB + 7)
    dst = _Src(data, "e", None, {0: ("reset", 2 * MiB)})
    ctx = T.TransferContext(_Src(b"", "e", None, {}), dst, MiB,  # type: ignore[arg-type]
                            SlotPool(64), RetryPolicy(attempts=3, base=0.0), EventBus([]))
    seen: list[str] = []

    async def run() -> bytes:
        retry_observer.set(seen.append)
        return await _read_back_md5(ctx, "k", len(data))

    assert asyncio.run(run()) == hashlib.md5(data).digest()
    assert dst.gets == [(0, len(data)), (2 * MiB, len(data))]
    assert seen == ["transient"]


def test_a_part_ending_inside_a_buffer_is_cut_by_views_of_it_not_copies() -> None:
    from lakeshift.engine.transfer_parts import _Cutter
    from lakeshift.stores.base import Pieces

    a, b, c = b"abcdef", b"ghij", b"kl"

    async def chunks() -> AsyncIterator[Any]:
        yield Pieces([a, b])
        yield Pieces([c])

    async def run() -> list[Any]:
        cutter = _Cutter(chunks(), in_pieces=True)
        return [await cutter.take(n) for n in (4, 4, 4)]

    got = asyncio.run(run())
    assert [b"".join(bytes(p) for p in x.parts) for x in got] == [b"abcd", b"efgh", b"ijkl"]
    # Every piece is one of the buffers received or a memoryview of one: nothing joined.
    for x in got:
        for p in x.parts:
            buf = p.obj if isinstance(p, memoryview) else p
            assert any(buf is q for q in (a, b, c))
    assert got[2].parts[1] is c
