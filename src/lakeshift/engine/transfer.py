"""Copy one object: a single put for small objects, parallel blocks for large ones.

Memory contract: every block of object data in memory is held under one slot of the run's
SlotPool (engine/slots.py), so object data never exceeds slots × block size (plus one
chunk being cut per open span), however many objects there are.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, replace
from typing import Any

from lakeshift.engine.events import BytesMoved, EventBus
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.errors import IntegrityError, LakeshiftError, TransientError
from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.stores.base import RangeStream, Store
from lakeshift.stores.props import FOLDER_KEY, SRC_ETAG_KEY

_HASH_IN_THREAD = 1 << 20


@dataclass
class TransferContext:
    src: Store
    dst: Store
    block_size: int
    slots: SlotPool
    policy: RetryPolicy
    events: EventBus

    @property
    def span_blocks(self) -> int:
        """Blocks per ranged GET: a quarter of the slots, so several spans (of one large
        object or of several) stream at once."""
        return max(1, self.slots.total // 4)


async def _md5(data: bytes) -> bytes:
    if len(data) >= _HASH_IN_THREAD:
        return await asyncio.to_thread(lambda: hashlib.md5(data).digest())
    return hashlib.md5(data).digest()


def _dest_props(props: ObjectProps, src: ObjectInfo) -> ObjectProps:
    meta = dict(props.metadata)
    if src.etag:
        meta[SRC_ETAG_KEY] = src.etag
    return replace(props, metadata=meta)


def _check(src: ObjectInfo, size: int, md5: bytes, where: str) -> None:
    if size != src.size:
        raise IntegrityError(f"{where}: read {size} bytes, the listing said {src.size}")
    if src.md5 is not None and md5 != src.md5:
        raise IntegrityError(f"{where}: MD5 of the data read ({md5.hex()}) differs from the "
                             f"source's ({src.md5.hex()})")


async def copy_marker(ctx: TransferContext, dest_key: str) -> None:
    """An S3 folder marker becomes an ``hdi_isfolder`` marker blob (flat destinations)."""
    empty = hashlib.md5(b"").digest()
    props = ObjectProps(metadata={FOLDER_KEY: "true"})
    key = dest_key.rstrip("/")
    await retry(lambda: ctx.dst.put(key, b"", props, empty), ctx.policy)


async def copy_object(ctx: TransferContext, src: ObjectInfo, dest_key: str) -> None:
    if src.size <= ctx.block_size:
        await _copy_single(ctx, src, dest_key)
    else:
        await _copy_blocks(ctx, src, dest_key)


async def _copy_single(ctx: TransferContext, src: ObjectInfo, dest_key: str) -> None:
    await ctx.slots.acquire(1)
    try:
        r = await retry(lambda: ctx.src.read(src.key, if_match=src.etag), ctx.policy)
        md5 = await _md5(r.data)
        _check(src, len(r.data), md5, src.key)
        props = _dest_props(r.props, src)
        await retry(lambda: ctx.dst.put(dest_key, r.data, props, md5), ctx.policy)
        ctx.events.emit(BytesMoved(len(r.data)))
    finally:
        ctx.slots.release(1)


async def _copy_blocks(ctx: TransferContext, src: ObjectInfo, dest_key: str) -> None:
    """A large object: spans of blocks, each span one streamed ranged GET whose blocks are
    staged in parallel; the whole-object MD5 is folded in block order."""
    bs = ctx.block_size
    count = (src.size + bs - 1) // bs
    per_span = max(1, min(count, ctx.span_blocks))
    spans = [(b, min(b + per_span, count)) for b in range(0, count, per_span)]
    loop = asyncio.get_running_loop()
    # One future per block, dropped once hashed, so no reference to a block's data
    # outlives its slot.
    blocks: list[asyncio.Future[bytes] | None] = [loop.create_future() for _ in range(count)]
    hashed = [asyncio.Event() for _ in range(count)]
    hasher = hashlib.md5()

    first_span = spans[0]
    await ctx.slots.acquire(first_span[1] - first_span[0])
    try:
        stream0: RangeStream = await retry(
            lambda: ctx.src.open_range(src.key, 0, min(first_span[1] * bs, src.size),
                                       if_match=src.etag), ctx.policy)
        upload = await ctx.dst.start_blocks(dest_key, src.size, bs,
                                            _dest_props(stream0.props, src))
    except BaseException:
        ctx.slots.release(first_span[1] - first_span[0])
        raise

    async def stage_block(i: int, data: bytes) -> None:
        # Holds block i's slot until the block is staged and folded into the MD5.
        try:
            fut = blocks[i]
            if fut is not None:
                fut.set_result(data)
            block_md5 = await _md5(data)
            await retry(lambda: upload.stage(i, i * bs, data, block_md5), ctx.policy)
            ctx.events.emit(BytesMoved(len(data)))
            await hashed[i].wait()
        finally:
            ctx.slots.release(1)

    async def read_span(tg: asyncio.TaskGroup, first: int, last: int,
                        stream: RangeStream | None) -> None:
        start, end = first * bs, min(last * bs, src.size)
        pos, i, launched, attempt = start, first, 0, 0
        buf = bytearray()
        try:
            while pos < end:
                try:
                    if stream is None:
                        stream = await ctx.src.open_range(src.key, pos, end, if_match=src.etag)
                    async for chunk in stream.chunks():
                        buf += chunk
                        pos += len(chunk)
                        while len(buf) >= bs or (buf and pos >= end):
                            data = bytes(buf[:bs])
                            del buf[:bs]
                            tg.create_task(stage_block(i, data))
                            i += 1
                            launched += 1
                    if pos < end:
                        raise TransientError(f"{src.key}: ranged read ended early at {pos}")
                except TransientError as e:
                    # Resume the span where the stream broke, keeping the blocks already cut.
                    attempt += 1
                    if attempt >= ctx.policy.attempts:
                        raise
                    stream = None
                    await asyncio.sleep(ctx.policy.delay(attempt, e.retry_after))
            if i != last:
                raise IntegrityError(f"{src.key}: read {pos - start} bytes of a "
                                     f"{end - start}-byte range")
        finally:
            ctx.slots.release((last - first) - launched)

    async def launch(tg: asyncio.TaskGroup) -> None:
        tg.create_task(read_span(tg, first_span[0], first_span[1], stream0))
        for first, last in spans[1:]:
            await ctx.slots.acquire(last - first)
            tg.create_task(read_span(tg, first, last, None))

    async def hash_in_order() -> None:
        for i in range(count):
            fut = blocks[i]
            assert fut is not None
            data = await fut
            blocks[i] = None
            if len(data) >= _HASH_IN_THREAD:
                await asyncio.to_thread(hasher.update, data)
            else:
                hasher.update(data)
            del data
            hashed[i].set()

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(launch(tg))
            tg.create_task(hash_in_order())
    except BaseExceptionGroup as eg:
        await upload.abort()
        raise _first_error(eg) from None
    md5 = hasher.digest()
    try:
        _check(src, src.size, md5, src.key)
    except IntegrityError:
        await upload.abort()
        raise
    await retry(lambda: upload.commit(count, md5), ctx.policy)


def _first_error(eg: BaseExceptionGroup[Any]) -> BaseException:
    """The most telling error of a failed block upload (a LakeshiftError if there is one)."""
    flat: list[BaseException] = []

    def walk(g: BaseException) -> None:
        if isinstance(g, BaseExceptionGroup):
            for e in g.exceptions:
                walk(e)
        else:
            flat.append(g)

    walk(eg)
    for e in flat:
        if isinstance(e, LakeshiftError):
            return e
    for e in flat:
        if not isinstance(e, asyncio.CancelledError):
            return e
    return flat[0]
