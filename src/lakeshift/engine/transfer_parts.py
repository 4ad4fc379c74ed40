"""A multipart-ETag source copied by its parts (engine/transfer.py is the entry; the
block path, engine/transfer_blocks.py, chooses it)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import aclosing

from lakeshift.engine.checksums import SourceProof
from lakeshift.engine.events import BytesMoved
from lakeshift.engine.retry import resumed_read, retry
from lakeshift.engine.transfer_base import (
    Copied,
    TransferContext,
    _first_error,
    _md5,
    _open_blocks,
    chunk_reader,
    stage_request,
)
from lakeshift.errors import IntegrityError
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import (
    Chunk,
    Pieces,
    PiecesBlockUpload,
    RangeStream,
    buffers,
)


async def _copy_parts(ctx: TransferContext, src: ObjectInfo, dest_key: str, proof: SourceProof,
                      part: int, k: int) -> Copied:
    """``_copy_blocks`` by the source's parts (see there): block ``i`` is part ``i + 1``,
    read by its own ranged GET (so that it arrives as one chunk of exactly the part's
    size) and held under ``k`` slots until it is staged; a few workers take the parts in
    turn.  The rebuilt ETag is checked before the commit: a wrong one commits nothing."""
    ranges = [(start, min(start + part, src.size)) for start in range(0, src.size, part)]
    digests: list[bytes] = [b""] * len(ranges)
    first, upload = await _open_blocks(ctx, src, dest_key, ranges[0][1], part, k)
    # Part 0's slots and stream, until its worker takes them over (a worker cancelled
    # before it starts leaves them to the clean-up below).
    held: list[RangeStream] = [first]

    def open_at(pos: int, end: int) -> Awaitable[RangeStream]:
        return ctx.src.open_range(src.key, pos, end, if_match=src.etag)

    # Into an upload that takes a block in pieces, from a source that gives them, a part
    # is the buffers it arrived in, never joined (as in _copy_blocks).
    in_pieces = isinstance(upload, PiecesBlockUpload)
    read = chunk_reader(upload)

    async def read_part(start: int, end: int, stream: RangeStream | None) -> Chunk:
        # The rest of the part in one chunk (a part arrives whole, without a copy), resumed
        # where a broken read stopped.
        got: list[Chunk] = []
        async with aclosing(resumed_read(open_at, start, end, None, ctx.policy,
                                         ctx.src_limit, src.key, stream,
                                         read=read)) as chunks:
            async for chunk in chunks:
                got.append(chunk)
        if len(got) == 1:
            return got[0]
        if in_pieces:
            return Pieces([piece for chunk in got for piece in buffers(chunk)])
        return b"".join(bytes(chunk) for chunk in got)

    async def one(index: int, stream: RangeStream | None) -> None:
        start, end = ranges[index]
        data = await read_part(start, end, stream)
        md5 = digests[index] = await _md5(data)
        await ctx.pacing.transfer(len(data))
        try:
            await retry(stage_request(upload, index, start, data, md5, None), ctx.policy,
                        ctx.dst_limit)
        except IntegrityError as e:
            raise IntegrityError(f"{e}: the block changed in transit") from None
        ctx.events.emit(BytesMoved(len(data)))

    todo = iter(range(1, len(ranges)))

    async def worker(lead: bool) -> None:
        if lead:
            stream = held.pop()
            try:
                await one(0, stream)
            finally:
                ctx.slots.release(k)
        for index in todo:
            await ctx.slots.acquire(k)
            try:
                await one(index, None)
            finally:
                ctx.slots.release(k)

    committed = False
    try:
        try:
            async with asyncio.TaskGroup() as tg:
                for n in range(min(len(ranges), max(1, ctx.slots.total // k))):
                    tg.create_task(worker(n == 0))
        except BaseExceptionGroup as eg:
            raise _first_error(eg) from None
        finally:
            if held:
                held.pop().close()
                ctx.slots.release(k)
        proof.parts_hashed(digests, src.size)
        try:
            proof.check()
        except IntegrityError as e:
            raise _EtagNotRebuilt(str(e)) from None
        # No whole-object MD5 to store (none was computed); the blob records the source's
        # ETag, proven above.
        await retry(lambda: upload.commit(list(range(len(ranges))), None), ctx.policy,
                    ctx.dst_limit)
        committed = True
    finally:
        if not committed:
            await upload.abort()
    return Copied(None, proof.label)


class _EtagNotRebuilt(IntegrityError):
    """A copy by parts whose part MD5s do not rebuild the source's multipart ETag."""
