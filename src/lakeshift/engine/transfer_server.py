"""Server-side copies (``--copy-mode``): the destination service reads the source itself
(engine/transfer.py is the entry)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable
from contextlib import aclosing
from dataclasses import replace
from typing import cast

from lakeshift.engine.events import BytesMoved, ServerCopyOff
from lakeshift.engine.retry import resumed_read, retry
from lakeshift.engine.transfer_base import (
    _HASH_IN_THREAD,
    _STREAM_CHUNK,
    Copied,
    TransferContext,
    _dest_props,
    _first_error,
    slots_per_block,
)
from lakeshift.errors import (
    IntegrityError,
    LakeshiftError,
    NotFoundError,
    ServerCopyUnavailable,
)
from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.stores.base import (
    RangeStream,
    URLBlockUpload,
    URLSource,
    URLWriter,
)

#: How long a URL minted for one server-side copy request lives.  Each request (and each
#: retry) gets a new one, so none expires while it is in use.
URL_LIFETIME = 15 * 60


class ServerRoute:
    """Whether the destination service may read sources itself, decided once per run (or
    job: the partitions share one): ``auto`` tries the first object that qualifies while
    the others wait, then either copies every object server-side or, if the service
    cannot reach the source, streams every object; ``server`` fails an object that cannot
    be copied server-side; ``stream`` never tries."""

    def __init__(self, mode: str = "stream") -> None:
        self.mode = mode
        #: None until the first attempt tells; then whether server-side copies work.
        self.works: bool | None = None
        #: Why not, once ``works`` is False (printed once in the summary).
        self.reason = ""
        self._probe: asyncio.Lock | None = None

    def applies(self, ctx: TransferContext, src: ObjectInfo) -> bool:
        """Whether ``src`` goes server-side: the stores can do it, the source's MD5 is known
        (the service checks what it reads against it), and no earlier attempt failed."""
        return (self.mode != "stream" and self.works is not False and src.md5 is not None
                and ctx.src.capabilities.read_url and ctx.dst.capabilities.copy_from_url)

    async def attempt(self, ctx: TransferContext, src: ObjectInfo,
                      dest_key: str) -> Copied | None:
        """The server-side copy of ``src``, or None when it is to be streamed instead."""
        if self.works is None:
            if self._probe is None:
                self._probe = asyncio.Lock()
            async with self._probe:
                if self.works is None:
                    return await self._one(ctx, src, dest_key)
        if not self.works:
            return None
        return await self._one(ctx, src, dest_key)

    async def _one(self, ctx: TransferContext, src: ObjectInfo, dest_key: str) -> Copied | None:
        try:
            copied = await _copy_server(ctx, src, dest_key)
        except NotFoundError:
            raise  # the source is gone: streaming would not find it either
        except LakeshiftError as e:
            # ``auto``: the first server-side failure of any kind (the service cannot reach
            # the source, refuses the request, a read-back that does not prove the copy,
            # retries used up) turns server-side copies off for the rest of the run, and
            # this object is streamed instead.
            if self.mode == "server":
                if isinstance(e, ServerCopyUnavailable):
                    raise ServerCopyUnavailable(
                        f"{e}; --copy-mode auto streams what the service cannot copy "
                        "itself") from None
                raise
            if self.works is not False:
                self.works, self.reason = False, str(e)
                ctx.events.emit(ServerCopyOff(str(e)))
            return None
        self.works = True
        return copied


async def _copy_server(ctx: TransferContext, src: ObjectInfo, dest_key: str) -> Copied:
    """The destination service reads the source through a URL minted for this request and
    writes the object; no byte passes through here.  Its MD5 is checked by the service
    against the source's (``x-ms-source-content-md5``)."""
    assert src.md5 is not None
    md5 = src.md5
    source = cast(URLSource, ctx.src)
    dest = cast(URLWriter, ctx.dst)
    same = ctx.src.url.scheme == ctx.dst.url.scheme
    # The source's metadata as its HEAD gives it (a listing may have none, or have it in
    # the service's encoding): one request, no bytes.
    head = await retry(lambda: ctx.src.exists(src.key), ctx.policy, ctx.src_limit)
    if head is None:
        raise NotFoundError(f"{src.key}: gone from the source since it was listed")
    metadata = head.metadata
    # The source's metadata and its ETag, which the skip rule reads, as a streamed copy
    # writes them; the HTTP properties the service copies from what it reads.
    props = _dest_props(ObjectProps(metadata=dict(metadata or {})), src)
    if src.size > ctx.dst.capabilities.from_url_max:
        return await _copy_server_blocks(ctx, src, dest_key, props, same)

    async def once() -> None:
        url = await _read_url(source, src)
        await ctx.pacing.transfer(0)
        await dest.put_from_url(dest_key, url, src.size, props, md5, same, src.etag)

    await ctx.slots.acquire(1)
    try:
        await retry(once, ctx.policy, ctx.dst_limit)
    finally:
        ctx.slots.release(1)
    ctx.events.emit(BytesMoved(src.size))
    return Copied(md5, "server-md5")


async def _read_url(source: URLSource, src: ObjectInfo) -> str:
    """A URL minted now for one request (each block, each retry: none expires in use)."""
    url = await source.read_url(src.key, URL_LIFETIME)
    if url is None:
        raise ServerCopyUnavailable(f"{src.key}: the source's credential cannot give the "
                                    "destination a URL to read it")
    return url


async def _copy_server_blocks(ctx: TransferContext, src: ObjectInfo, dest_key: str,
                              props: ObjectProps, same: bool) -> Copied:
    """An object larger than one From-URL write (Azure: 5000 MiB): Put Block From URL per
    block, in parallel (one slot each, no data held), then Put Block List without an MD5.
    The service checks no whole-object MD5 of blocks it read itself, so the committed
    object is read back and hashed (``server-read-md5``): one that differs is deleted and
    fails as an IntegrityError; one that agrees gets the source's MD5 and the record of the
    source's version only then (``prove``), so that nothing interrupted before looks like a
    finished copy."""
    assert src.md5 is not None
    source = cast(URLSource, ctx.src)
    caps = ctx.dst.capabilities
    bs = min(slots_per_block(src.size, ctx.block_size, caps.max_blocks) * ctx.block_size,
             caps.max_block_size)
    ranges = [(start, min(start + bs, src.size)) for start in range(0, src.size, bs)]
    if caps.max_blocks and len(ranges) > caps.max_blocks:
        raise LakeshiftError(f"{src.key}: {src.size} bytes are more than the destination can "
                             f"hold in one object ({caps.max_blocks} blocks of at most "
                             f"{caps.max_block_size} bytes)")
    # The service copies no properties block by block: the source's (Content-Type and the
    # rest, with its metadata) from a one-byte read, set on Put Block List as a streamed
    # copy sets them.
    head = await retry(lambda: ctx.src.read(src.key, 0, 1, if_match=src.etag), ctx.policy,
                       ctx.src_limit)
    props = _dest_props(replace(head.props, metadata=dict(props.metadata)), src)
    # The source's version is pinned where the service can check it (its own blobs);
    # otherwise the read-back below catches a source changed under the copy.
    pin = src.etag if same else None
    upload = cast(URLBlockUpload,
                  await retry(lambda: ctx.dst.start_blocks(dest_key, src.size, bs, props),
                              ctx.policy, ctx.dst_limit))

    todo = iter(enumerate(ranges))

    async def stager() -> None:
        # A few stagers take the blocks in turn (not one task per block: up to 50,000).
        for index, (start, end) in todo:
            async def once(index: int = index, start: int = start, end: int = end) -> None:
                url = await _read_url(source, src)
                await ctx.pacing.transfer(0)
                await upload.stage_from_url(index, url, start, end, pin)

            await ctx.slots.acquire(1)
            try:
                await retry(once, ctx.policy, ctx.dst_limit)
            finally:
                ctx.slots.release(1)
            ctx.events.emit(BytesMoved(end - start))

    committed = False
    try:
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(min(len(ranges), ctx.slots.total)):
                    tg.create_task(stager())
        except BaseExceptionGroup as eg:
            raise _first_error(eg) from None
        # Committed without the MD5 (and without the record of the source's version): an
        # object that a crash leaves here before the read-back must not look proven.
        await retry(lambda: upload.commit(list(range(len(ranges))), None), ctx.policy,
                    ctx.dst_limit)
        committed = True
    finally:
        if not committed:
            await upload.abort()
    read = await _read_back_md5(ctx, dest_key, src.size)
    if read != src.md5:
        await retry(lambda: ctx.dst.delete(dest_key), ctx.policy, ctx.dst_limit)
        raise IntegrityError(f"{dest_key}: read back after the server-side copy, its MD5 "
                             f"{read.hex()} differs from the source's {src.md5.hex()}")
    md5 = src.md5
    await retry(lambda: upload.prove(md5), ctx.policy, ctx.dst_limit)
    return Copied(src.md5, "server-read-md5")


async def _read_back_md5(ctx: TransferContext, key: str, size: int) -> bytes:
    """MD5 of the destination's ``key`` read back (one slot of memory), resumed with a
    ranged GET from where a broken read stopped (``retry.resumed_read``)."""
    hasher = hashlib.md5()

    def open_at(pos: int, end: int) -> Awaitable[RangeStream]:
        return ctx.dst.open_range(key, pos, end)

    await ctx.slots.acquire(1)
    try:
        async with aclosing(resumed_read(open_at, 0, size, min(ctx.block_size, _STREAM_CHUNK),
                                         ctx.policy, ctx.dst_limit, key)) as chunks:
            async for data in chunks:
                await ctx.pacing.transfer(len(data))
                if len(data) >= _HASH_IN_THREAD:
                    await asyncio.to_thread(hasher.update, data)
                else:
                    hasher.update(data)
    finally:
        ctx.slots.release(1)
    return hasher.digest()

