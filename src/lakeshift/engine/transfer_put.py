"""Copies of one object in one put (engine/transfer.py is the entry, copy_object says
which path): read whole, or streamed into one put checked by the source's MD5 or proven by
its own checksum."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, cast

from lakeshift.engine.events import BytesMoved
from lakeshift.engine.retry import retry
from lakeshift.engine.transfer_base import (
    _HASH_OFF_LOOP_MIN,
    _STREAM_CHUNK,
    Copied,
    OpaqueETagError,
    TransferContext,
    _check,
    _dest_props,
    _md5,
    opaque_md5,
)
from lakeshift.engine.transfer_proofs import _source_proof, unchecked_proof
from lakeshift.errors import (
    IntegrityError,
    TransientError,
)
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import (
    RangeStream,
    SourceChecksum,
)
from lakeshift.stores.props import SRC_MTIME_KEY, parse_time


async def _copy_single(ctx: TransferContext, src: ObjectInfo, dest_key: str) -> Copied:
    # (A free slot taken, and the bandwidth cap asked only when there is one, without a
    # coroutine each: the path of every small object.)
    if not ctx.slots.try_take():
        await ctx.slots.acquire(1)
    try:
        if ctx.pacing.bandwidth is not None:
            await ctx.pacing.transfer(src.size)
        if type(ctx.src) is type(ctx.dst) and hasattr(ctx.dst, "copy_from"):
            return await _copy_same_kind(ctx, cast(SameKindCopy, ctx.dst), src, dest_key)
        r = await retry(lambda: ctx.src.read(src.key, if_match=src.etag), ctx.policy,
                        ctx.src_limit)
        if r.opaque_etag and src.md5 is not None:
            # The GET says the ETag the listing's MD5 came from is none (S3 under
            # SSE-KMS or SSE-C): the bytes are hashed here, as a source without an MD5's.
            src = replace(src, md5=None)
        if src.md5 is not None and ctx.dst.capabilities.put_checks_md5:
            # The destination checks the bytes against the source's MD5 (as on the
            # streamed path): no need to hash them here too.
            md5 = src.md5
        else:
            md5 = await _md5(r.data)
        _check(src, len(r.data), md5, src.key)
        props = _dest_props(r.props, src)
        await retry(lambda: ctx.dst.put(dest_key, r.data, props, md5), ctx.policy,
                    ctx.dst_limit)
        ctx.events.emit(BytesMoved(len(r.data)))
        return Copied(md5, unchecked_proof(ctx) if src.md5 is None else "source-md5")
    finally:
        ctx.slots.release(1)


class SameKindCopy(Protocol):
    """A store that copies a whole object from another store of its kind in one call (the
    local disk: read, hash, check and write in one call of a disk worker or of its helper
    process)."""

    async def copy_from(self, source: Any, key: str, if_match: str | None, dest_key: str,
                        size: int, md5: bytes | None, src_etag: str | None,
                        mtime: datetime | None) -> bytes: ...


async def _copy_same_kind(ctx: TransferContext, dst: SameKindCopy, src: ObjectInfo,
                          dest_key: str) -> Copied:
    """The read-then-put of ``_copy_single`` as one call of the destination: the checks of
    ``_check`` (listed size, listed MD5: done where the bytes are) and what ``_dest_props``
    gives a destination that keeps only the source's ETag and time (no content type, no
    metadata)."""
    kept = (src.metadata or {}).get(SRC_MTIME_KEY)
    mtime = parse_time(kept) if kept else src.last_modified
    md5 = await retry(lambda: dst.copy_from(ctx.src, src.key, src.etag, dest_key, src.size,
                                            src.md5, src.etag or None, mtime), ctx.policy,
                      ctx.dst_limit)
    ctx.events.emit(BytesMoved(src.size))
    return Copied(md5, unchecked_proof(ctx) if src.md5 is None else "source-md5")


async def _sized_body(ctx: TransferContext, src: ObjectInfo, stream: RangeStream,
                      chunk: int, seen: Callable[[bytes], None] | None = None
                      ) -> AsyncIterator[bytes]:
    """The body of one streamed put: the source's chunks, paced and counted, held to the
    listed size (more is an IntegrityError, less a TransientError); ``seen`` hashes each
    chunk, in order, and all of them before the body ends.  A large chunk is hashed in a
    worker thread while it is sent (hashlib and zlib let go of the GIL): hashed on the
    loop, a MiB of MD5 held every other transfer for ~2 ms."""
    sent = 0
    loop = asyncio.get_running_loop()
    hashing: asyncio.Future[None] | None = None
    try:
        async for data in stream.chunks(chunk):
            sent += len(data)
            if sent > src.size:
                raise IntegrityError(f"{src.key}: the read returned more than the "
                                     f"{src.size} bytes listed")
            if seen is not None:
                if hashing is not None:
                    await hashing  # the previous chunk first: one hasher, in order
                    hashing = None
                if len(data) >= _HASH_OFF_LOOP_MIN:
                    hashing = loop.run_in_executor(None, seen, data)
                else:
                    seen(data)
            await ctx.pacing.transfer(len(data))
            yield data
            ctx.events.emit(BytesMoved(len(data)))
        if hashing is not None:
            await hashing
            hashing = None
    finally:
        if hashing is not None:  # the put ended early: nobody waits for that hash now
            hashing.add_done_callback(_retrieved)
    if sent < src.size:
        raise TransientError(f"{src.key}: the read ended early at {sent} of "
                             f"{src.size} bytes")


def _retrieved(f: asyncio.Future[None]) -> None:
    if not f.cancelled():
        f.exception()


async def _copy_streamed(ctx: TransferContext, src: ObjectInfo, md5: bytes,
                         dest_key: str) -> bytes:
    chunk = min(ctx.block_size, _STREAM_CHUNK)

    async def attempt() -> None:
        stream = await ctx.src.open_range(src.key, 0, src.size, if_match=src.etag)
        try:
            if opaque_md5(src, stream):
                raise OpaqueETagError(f"{src.key}: its ETag is no MD5 (SSE-KMS or SSE-C)")
            await ctx.dst.put_stream(dest_key, src.size, _sized_body(ctx, src, stream, chunk),
                                     _dest_props(stream.props, src), md5)
        finally:
            stream.close()  # the destination may fail before it reads a byte

    await ctx.slots.acquire(1)
    try:
        await retry(attempt, ctx.policy, ctx.dst_limit)
    finally:
        ctx.slots.release(1)
    return md5


async def _copy_streamed_proven(ctx: TransferContext, src: ObjectInfo, dest_key: str,
                                kept: SourceChecksum | None) -> Copied:
    """A source without an MD5, streamed into one put without one (see copy_object)."""
    chunk = min(ctx.block_size, _STREAM_CHUNK)
    transit_md5 = ctx.dst.capabilities.block_md5

    async def attempt() -> Copied:
        proof = _source_proof(src, kept)
        hasher = hashlib.md5() if transit_md5 else None
        stream = await ctx.src.open_range(src.key, 0, src.size, if_match=src.etag)

        def seen(data: bytes) -> None:
            proof.update(data)
            if hasher is not None:
                hasher.update(data)

        try:
            stored = await ctx.dst.put_stream(dest_key, src.size,
                                              _sized_body(ctx, src, stream, chunk, seen),
                                              _dest_props(stream.props, src), None)
        finally:
            stream.close()  # the destination may fail before it reads a byte
        try:
            proof.check()
            if hasher is not None and stored != hasher.digest():
                raise IntegrityError(
                    f"{dest_key}: the destination stored MD5 "
                    f"{stored.hex() if stored else 'none'}, the bytes sent have "
                    f"{hasher.hexdigest()} (changed in transit)")
        except IntegrityError:
            # Written but not proven: it must not stay behind looking like a finished copy
            # (it carries the source's ETag, which the skip rule trusts).
            await retry(lambda: ctx.dst.delete(dest_key), ctx.policy, ctx.dst_limit)
            raise
        return Copied(stored, unchecked_proof(ctx) if proof.label == "size-only"
                      else proof.label)

    await ctx.slots.acquire(1)
    try:
        return await retry(attempt, ctx.policy, ctx.dst_limit)
    finally:
        ctx.slots.release(1)
