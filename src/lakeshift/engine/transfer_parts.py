"""A multipart-ETag source copied by its parts (engine/transfer.py is the entry; the
block path, engine/transfer_blocks.py, chooses it)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from contextlib import aclosing

from lakeshift.engine.checksums import SourceProof
from lakeshift.engine.events import BytesMoved
from lakeshift.engine.retry import resumed_read, retry
from lakeshift.engine.transfer_base import (
    _STREAM_CHUNK,
    Copied,
    TransferContext,
    _first_error,
    _md5,
    _open_blocks,
    chunk_reader,
    span_readers,
    stage_request,
)
from lakeshift.errors import IntegrityError
from lakeshift.model import Data, ObjectInfo
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
    held under ``k`` slots until it is staged.  The parts are read in spans of several, one
    streamed ranged GET per span (as ``_copy_blocks`` reads its blocks; a GET per part
    made the source serve the object's bytes once per part where a ranged read costs it
    the whole object, as moto's does: 6-8 s of its CPU per GiB against ~1), each part cut
    from the stream at its exact end (``_Cutter``: a buffer across the boundary is split by
    a memoryview, never copied).  A span's parts are staged in parallel as they arrive.
    A span's slots (``k`` per part, a span as many parts as a block span's slots hold)
    are taken before its GET is opened, as a span of blocks' are: a span opened with one
    part's slots that waited for the next part's kept its connection, so the source's
    pool could be all held by spans waiting for slots and the slots by spans waiting for
    a connection (the copy hung).  A broken read resumes where it
    stopped (``resumed_read``: bytes already received are kept).  The rebuilt ETag is
    checked before the commit: a wrong one commits nothing."""
    ranges = [(start, min(start + part, src.size)) for start in range(0, src.size, part)]
    per_span = max(1, ctx.span_blocks // k)
    spans = [range(i, min(i + per_span, len(ranges))) for i in range(0, len(ranges), per_span)]
    reserve = [len(parts) * k for parts in spans]
    digests: list[bytes] = [b""] * len(ranges)
    first, upload = await _open_blocks(ctx, src, dest_key, ranges[spans[0][-1]][1], part,
                                       reserve[0])

    def open_at(pos: int, end: int) -> Awaitable[RangeStream]:
        return ctx.src.open_range(src.key, pos, end, if_match=src.etag)

    # Into an upload that takes a block in pieces, from a source that gives them, a part
    # is the buffers it arrived in, never joined (as in _copy_blocks).
    in_pieces = isinstance(upload, PiecesBlockUpload)
    read = chunk_reader(upload)
    # Parts cut from each span so far, each holding k of its span's slots until it is
    # staged; the rest of a span's slots go back when its reader ends, by a done-callback
    # (a task cancelled before its first step never runs a ``finally``), as span 0's
    # stream is closed if its reader never took it.
    cut = [0] * len(spans)
    taken = [False] * len(spans)

    async def stage(index: int, data: Chunk) -> None:
        start, _ = ranges[index]
        md5 = digests[index] = await _md5(data)
        await ctx.pacing.transfer(len(data))
        try:
            await retry(stage_request(upload, index, start, data, md5, None), ctx.policy,
                        ctx.dst_limit)
        except IntegrityError as e:
            raise IntegrityError(f"{e}: the block changed in transit") from None
        ctx.events.emit(BytesMoved(len(data)))

    def staged(_: object) -> None:
        ctx.slots.release(k)

    async def read_span(tg: asyncio.TaskGroup, n: int, stream: RangeStream | None) -> None:
        taken[n] = True
        parts = spans[n]
        start, end = ranges[parts[0]][0], ranges[parts[-1]][1]
        # Read in chunks of 1 MiB (what a connection buffers ahead, at most), whatever the
        # part size: the part being cut is under its slots, and an open span holds ~1 MiB
        # more (read in parts, the socket read up to a part ahead: RSS 167 -> 320 MB for
        # 16 x 64 MiB objects of 8 MiB parts).
        async with aclosing(resumed_read(open_at, start, end, min(part, _STREAM_CHUNK),
                                         ctx.policy, ctx.src_limit, src.key, stream,
                                         read=read)) as chunks:
            cutter = _Cutter(chunks, in_pieces)
            for index in parts:
                lo, hi = ranges[index]
                data = await cutter.take(hi - lo)
                tg.create_task(stage(index, data)).add_done_callback(staged)
                cut[n] += 1
                del data

    start_spans = span_readers(ctx, reserve, cut, taken, k, read_span)

    committed = False
    try:
        try:
            async with asyncio.TaskGroup() as tg:
                start_spans(tg, first)
        except BaseExceptionGroup as eg:
            raise _first_error(eg) from None
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


class _Cutter:
    """Chunks of exact sizes cut from a stream of chunks of any size: a buffer that runs
    past a part's end is split there by memoryview slices (no byte copied); what follows
    is kept for the next part.  In pieces (``Pieces``) for an upload that takes them,
    else one buffer (joined only when a part spans several)."""

    def __init__(self, chunks: AsyncIterator[Chunk], in_pieces: bool) -> None:
        self.chunks, self.in_pieces = chunks, in_pieces
        self.rest: deque[Data] = deque()
        self.have = 0

    async def take(self, n: int) -> Chunk:
        rest = self.rest
        while self.have < n:
            chunk = await anext(self.chunks, None)
            if chunk is None:  # (resumed_read raises first: a read ended early is retried)
                raise IntegrityError(f"the read ended {n - self.have} bytes short of a part")
            for piece in buffers(chunk):
                rest.append(piece)
                self.have += len(piece)
        out: list[Data] = []
        got = 0
        while got < n:
            piece = rest[0]
            if got + len(piece) <= n:
                out.append(rest.popleft())
                got += len(piece)
            else:
                view = memoryview(piece)
                out.append(view[:n - got])
                rest[0] = view[n - got:]
                got = n
        self.have -= n
        if self.in_pieces:
            return Pieces(out)
        return out[0] if len(out) == 1 else b"".join(out)


class _EtagNotRebuilt(IntegrityError):
    """A copy by parts whose part MD5s do not rebuild the source's multipart ETag."""
