"""Copy one object: a single put for small objects, parallel blocks for large ones.

Memory contract: every buffer of object data is held under one slot of ``buffers`` (a
semaphore shared by the whole run), so the data in memory never exceeds
slots × block size, however many objects there are.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, replace
from typing import Any

from lakeshift.engine.events import BytesMoved, EventBus
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.errors import IntegrityError, LakeshiftError
from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.stores.base import Store
from lakeshift.stores.props import FOLDER_KEY, SRC_ETAG_KEY

_HASH_IN_THREAD = 1 << 20


@dataclass
class TransferContext:
    src: Store
    dst: Store
    block_size: int
    buffers: asyncio.Semaphore
    policy: RetryPolicy
    events: EventBus


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
    async with ctx.buffers:
        r = await retry(lambda: ctx.src.read(src.key, if_match=src.etag), ctx.policy)
        md5 = await _md5(r.data)
        _check(src, len(r.data), md5, src.key)
        props = _dest_props(r.props, src)
        await retry(lambda: ctx.dst.put(dest_key, r.data, props, md5), ctx.policy)
        ctx.events.emit(BytesMoved(len(r.data)))


async def _copy_blocks(ctx: TransferContext, src: ObjectInfo, dest_key: str) -> None:
    bs = ctx.block_size
    count = (src.size + bs - 1) // bs
    loop = asyncio.get_running_loop()
    read_done: list[asyncio.Future[bytes]] = [loop.create_future() for _ in range(count)]
    hashed = [asyncio.Event() for _ in range(count)]
    hasher = hashlib.md5()

    async def read_block(i: int) -> bytes:
        start, end = i * bs, min((i + 1) * bs, src.size)
        r = await retry(lambda: ctx.src.read(src.key, start, end, if_match=src.etag), ctx.policy)
        if len(r.data) != end - start:
            raise IntegrityError(f"{src.key}: block {i} came back with {len(r.data)} bytes, "
                                 f"expected {end - start}")
        return r.data

    await ctx.buffers.acquire()
    try:
        first = await retry(lambda: ctx.src.read(src.key, 0, bs, if_match=src.etag), ctx.policy)
    except BaseException:
        ctx.buffers.release()
        raise
    try:
        upload = await ctx.dst.start_blocks(dest_key, src.size, bs,
                                            _dest_props(first.props, src))
    except BaseException:
        ctx.buffers.release()
        raise

    async def block(i: int, data: bytes | None) -> None:
        # Runs holding one buffer slot, which it gives back once the block is both staged
        # and folded into the whole-object MD5 (hashing goes in block order).
        try:
            if data is None:
                data = await read_block(i)
            read_done[i].set_result(data)
            block_md5 = await _md5(data)
            payload = data
            await retry(lambda: upload.stage(i, i * bs, payload, block_md5), ctx.policy)
            ctx.events.emit(BytesMoved(len(payload)))
            await hashed[i].wait()
        except BaseException as e:
            if not read_done[i].done():
                read_done[i].set_exception(e)
            raise
        finally:
            ctx.buffers.release()

    async def launch(tg: asyncio.TaskGroup) -> None:
        tg.create_task(block(0, first.data))
        for i in range(1, count):
            await ctx.buffers.acquire()
            tg.create_task(block(i, None))

    async def hash_in_order() -> None:
        for i in range(count):
            data = await read_done[i]
            if len(data) >= _HASH_IN_THREAD:
                await asyncio.to_thread(hasher.update, data)
            else:
                hasher.update(data)
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
