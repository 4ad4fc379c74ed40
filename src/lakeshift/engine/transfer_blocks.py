"""A large object copied in parallel blocks, read in spans of streamed ranged GETs
(engine/transfer.py is the entry)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable
from contextlib import aclosing
from functools import partial

from lakeshift.engine.events import BytesMoved
from lakeshift.engine.retry import resumed_read, retry
from lakeshift.engine.transfer_base import (
    _HASH_IN_THREAD,
    Copied,
    TransferContext,
    _check,
    _crc64,
    _first_error,
    _fold,
    _md5,
    _open_blocks,
    chunk_reader,
    slots_per_block,
    span_readers,
    stage_request,
)
from lakeshift.engine.transfer_parts import _copy_parts, _EtagNotRebuilt
from lakeshift.engine.transfer_proofs import (
    _etag_proof,
    _part_blocks,
    _source_proof,
    source_kept,
    unchecked_proof,
    write_unchecked,
)
from lakeshift.errors import (
    IntegrityError,
    LakeshiftError,
)
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import (
    Chunk,
    RangeStream,
    SourceChecksum,
)

# Block indices are span * _SPAN_STRIDE + position in the span (a span's blocks are not
# known until its bytes arrive, because a block is whatever chunk the stream delivers).
_SPAN_STRIDE = 100_000


async def _copy_blocks(ctx: TransferContext, src: ObjectInfo, dest_key: str,
                       kept: SourceChecksum | None = None) -> Copied:
    """A large object: spans of ``span_blocks`` blocks, each span one streamed ranged GET.
    Every chunk the stream delivers (≥ block size, except a span's last) becomes a block,
    staged in parallel with the others without being copied; the whole-object MD5 is
    folded in order as the blocks arrive.

    A source proven by its multipart ETag (``_part_blocks``) is copied by parts instead:
    spans of parts, one ranged GET each, each part one block, hashed once (its MD5 is the
    block's Content-MD5, which the service checks, and one of the MD5s the ETag is rebuilt
    from);
    no whole-object MD5 is computed, so the destination keeps none (Put Block List
    computes none): the blob records the source's ETag, which `verify` and a move
    rebuild from the destination's bytes.

    Where the transport needs each block checked (``block_md5``, plain HTTP), a block
    carries its CRC64 where the destination checks one (``block_crc64``), else its MD5."""
    caps = ctx.dst.capabilities
    # The transit check of each block: CRC64 (~0.2 s/GiB) where the destination takes one,
    # MD5 (~2 s/GiB) where it takes only that; over TLS none.
    by_crc64 = caps.block_md5 and caps.block_crc64
    # A source without an MD5 is proven by what else it keeps.
    proof = None
    if src.md5 is None:
        if kept is None:
            kept = await source_kept(ctx, src)
        proof = _source_proof(src, kept)
        # Over plain HTTP into a destination that checks only MD5s, by parts whenever the
        # ETag can prove them (see _etag_proof); elsewhere only when the ETag is the proof
        # anyway (a CRC32 is cheaper than MD5, and a block's CRC64 than its MD5).
        by_etag = _etag_proof(src, kept) if caps.block_md5 and not by_crc64 else proof
        k = _part_blocks(ctx, src, by_etag)
        if k is not None and by_etag.part_size:
            try:
                return await _copy_parts(ctx, src, dest_key, by_etag, by_etag.part_size, k)
            except _EtagNotRebuilt:
                # An ETag that is no digest of the parts although nothing said so (an
                # encryption the HEAD did not name, parts of unequal size whose count
                # fits): the source's own checksum proves it, read again in blocks.
                if by_etag is proof or proof.label == "multipart-etag":
                    raise
                proof = _source_proof(src, kept)
    # The whole-object MD5 only where something needs it: a source with an MD5 of its
    # own (checked against it), one proven by size alone, or a destination that cannot
    # take a commit without one.  A source proven by its own checksum into a destination
    # that checks block MD5s (Azure) is hashed once, by that checksum (over TLS; over
    # plain HTTP each block's MD5 is computed too, for the service to check); the blob then
    # keeps no Content-MD5, as a copy by parts.
    whole = proof is None or proof.label == "size-only" or \
        not ctx.dst.capabilities.put_checks_md5
    # A block holds ``k`` slots: more than one only when the destination's block limit
    # (50,000 on Azure) needs bigger blocks for this object.
    k = slots_per_block(src.size, ctx.block_size, ctx.dst.capabilities.max_blocks)
    if k > ctx.slots.total:
        raise LakeshiftError(
            f"{src.key}: {src.size} bytes need blocks of {k * ctx.block_size} bytes to stay "
            f"within the destination's {ctx.dst.capabilities.max_blocks} blocks, more than "
            f"the {ctx.slots.total} × {ctx.block_size} bytes of memory allowed: raise "
            "--block-size (or --concurrency)")
    bs = k * ctx.block_size
    if bs > ctx.dst.capabilities.max_block_size:
        raise LakeshiftError(f"{src.key}: {src.size} bytes are more than the destination can "
                             f"hold in one object ({ctx.dst.capabilities.max_blocks} blocks of "
                             f"at most {ctx.dst.capabilities.max_block_size} bytes)")
    nblocks = (src.size + bs - 1) // bs
    per_span = max(1, min(nblocks, ctx.span_blocks // k))
    spans = [(b * bs, min((b + per_span) * bs, src.size)) for b in range(0, nblocks, per_span)]
    blocks_in = [(end - start + bs - 1) // bs for start, end in spans]
    reserve = [n * k for n in blocks_in]
    # Per span, its blocks in order (None closes the span), for the in-order MD5.
    arrived: list[asyncio.Queue[tuple[Chunk, asyncio.Event] | None]] = [
        asyncio.Queue() for _ in spans]
    staged: list[list[int]] = [[] for _ in spans]
    hasher = hashlib.md5()
    total = 0

    stream0, upload = await _open_blocks(ctx, src, dest_key, spans[0][1], bs, reserve[0])

    def open_at(pos: int, end: int) -> Awaitable[RangeStream]:
        return ctx.src.open_range(src.key, pos, end, if_match=src.etag)

    # A destination that sends a block given in pieces reads it from a source that can
    # hand its bytes on as the pieces they arrived in: no block is joined (a copy of every
    # byte and a block's worth held twice); hashed and sent piece by piece.
    read = chunk_reader(upload)

    # Blocks cut from each span so far, each holding k slots until it is staged; whether
    # a span's reader has taken its stream.  Slots (and a stream) go back when their task
    # ends, by a done-callback: a task cancelled before its first step (the copy failing
    # just as it was created) never runs its body, so a ``finally`` there would leak them.
    cut = [0] * len(spans)
    taken = [False] * len(spans)

    async def stage_block(index: int, offset: int, data: Chunk, hashed: asyncio.Event) -> None:
        # Holds its k slots until the block is staged and folded into the whole-object MD5.
        crc64 = await _crc64(data) if by_crc64 else None
        block_md5 = await _md5(data) if caps.block_md5 and not by_crc64 else None
        request = stage_request(upload, index, offset, data, block_md5, crc64)
        await ctx.pacing.transfer(len(data))
        try:
            await retry(request, ctx.policy, ctx.dst_limit)
        except IntegrityError as e:
            raise IntegrityError(f"{e}: the block changed in transit") from None
        ctx.events.emit(BytesMoved(len(data)))
        await hashed.wait()

    def block_done(ahead: asyncio.Semaphore, _: object) -> None:
        ctx.slots.release(k)
        ahead.release()

    async def read_span(tg: asyncio.TaskGroup, n: int, stream: RangeStream | None) -> None:
        taken[n] = True
        start, end = spans[n]
        pos = start
        # Resumed where the stream breaks; blocks already cut are kept.
        # At most ``read_ahead`` of this span's blocks read and not yet staged: the next
        # chunk is taken from the stream (which then waits, the socket paused) only when
        # one of them is done, so reads that outrun the Put Blocks do not fill every slot.
        ahead = asyncio.Semaphore(ctx.read_ahead)
        async with aclosing(resumed_read(open_at, start, end, bs, ctx.policy,
                                         ctx.src_limit, src.key, stream,
                                         read=read)) as chunks:
            while True:
                await ahead.acquire()
                if (chunk := await anext(chunks, None)) is None:
                    break
                if cut[n] >= blocks_in[n]:
                    raise IntegrityError(f"{src.key}: the ranged read returned more "
                                         f"than the {end - start} bytes asked for")
                index = n * _SPAN_STRIDE + cut[n]
                hashed = asyncio.Event()
                await arrived[n].put((chunk, hashed))
                staged[n].append(index)
                block = tg.create_task(stage_block(index, pos, chunk, hashed))
                block.add_done_callback(partial(block_done, ahead))
                pos += len(chunk)
                cut[n] += 1
                del chunk
        await arrived[n].put(None)

    start_spans = span_readers(ctx, reserve, cut, taken, k, read_span)

    async def hash_in_order() -> None:
        nonlocal total
        for queue in arrived:
            while (item := await queue.get()) is not None:
                data, hashed = item
                if len(data) >= _HASH_IN_THREAD:
                    await asyncio.to_thread(_fold, hasher if whole else None, proof, data)
                else:
                    _fold(hasher if whole else None, proof, data)
                total += len(data)
                del data, item
                hashed.set()

    # Whatever ends this copy short of a commit (a block that fails for good, an integrity
    # error, a commit that fails, the run cancelled) aborts the upload: no staged blocks or
    # open multipart upload are left behind.
    committed = False
    try:
        try:
            async with asyncio.TaskGroup() as tg:
                start_spans(tg, stream0)
                tg.create_task(hash_in_order())
        except BaseExceptionGroup as eg:
            raise _first_error(eg) from None
        md5 = hasher.digest() if whole else None
        if md5 is not None:
            _check(src, total, md5, src.key)
        if proof is not None:
            proof.check()
        order = [i for span in staged for i in span]
        stored = await retry(lambda: upload.commit(order, md5), ctx.policy, ctx.dst_limit)
        committed = True
    finally:
        if not committed:
            await upload.abort()
    label = "source-md5" if proof is None else proof.label
    if stored is False:  # (nothing checked what the destination stored)
        return Copied(md5, write_unchecked(label))
    if label == "size-only":  # (nothing but the service's checks of the blocks)
        return Copied(md5, unchecked_proof(ctx, by_crc64))
    return Copied(md5, label)

