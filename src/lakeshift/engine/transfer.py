"""Copy one object: a single put for small objects, parallel blocks for large ones.

Memory contract: every block of object data in memory is held under one slot of the run's
SlotPool (engine/slots.py), so object data never exceeds slots × block size (plus one
chunk being cut per open span), however many objects there are.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, cast

from lakeshift.engine.checksums import SourceProof, stream_checksums
from lakeshift.engine.events import BytesMoved, EventBus, ServerCopyOff
from lakeshift.engine.limiter import EndpointLimiter, Pacing
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.errors import (
    IntegrityError,
    LakeshiftError,
    NotFoundError,
    ObjectError,
    ServerCopyUnavailable,
    ThrottledError,
    TransientError,
)
from lakeshift.model import Data, ObjectInfo, ObjectProps
from lakeshift.stores.base import (
    BlockUpload,
    ChecksumSource,
    DirectoryWriter,
    RangeStream,
    SourceChecksum,
    Store,
    URLBlockUpload,
    URLSource,
    URLWriter,
)
from lakeshift.stores.props import FOLDER_KEY, SRC_ETAG_KEY, SRC_MTIME_KEY, format_time

_HASH_IN_THREAD = 1 << 20
#: Chunks of a streamed put: small enough to keep memory per stream low, large enough that
#: the per-chunk Python work does not matter.
_STREAM_CHUNK = 1 << 20
#: Chunks from this size up are hashed in a worker thread (below, a hop costs more).
_HASH_OFF_LOOP_MIN = 128 * 1024


@dataclass
class TransferContext:
    src: Store
    dst: Store
    block_size: int
    slots: SlotPool
    policy: RetryPolicy
    events: EventBus
    pacing: Pacing = field(default_factory=lambda: Pacing(1 << 30, adaptive=False))
    #: Largest object sent as one streamed, service-checked put (see copy_object).
    single_put_max: int = 64 * 1024 * 1024
    #: Server-side copies (``--copy-mode``); None: every object is streamed.
    route: ServerRoute | None = None

    @property
    def src_limit(self) -> EndpointLimiter:
        return self.pacing.endpoint(endpoint_name(self.src))

    @property
    def dst_limit(self) -> EndpointLimiter:
        return self.pacing.endpoint(endpoint_name(self.dst))

    @property
    def span_blocks(self) -> int:
        """Blocks per ranged GET: a quarter of the slots, so several spans (of one large
        object or of several) stream at once."""
        return max(1, self.slots.total // 4)


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


async def _closing(stream: RangeStream, min_size: int) -> AsyncIterator[bytes]:
    """``stream.chunks(min_size)``, the stream closed however the reading ends (an error
    in the loop that reads it, a cancellation): its connection is never left taken."""
    try:
        async for data in stream.chunks(min_size):
            yield data
    finally:
        stream.close()


async def _read_back_md5(ctx: TransferContext, key: str, size: int) -> bytes:
    """MD5 of the destination's ``key`` read back (one slot of memory), resuming with a
    ranged GET from where a broken read stopped."""
    hasher = hashlib.md5()
    pos, attempt = 0, 0
    await ctx.slots.acquire(1)
    try:
        while pos < size:
            try:
                stream = await retry(partial(ctx.dst.open_range, key, pos, size), ctx.policy,
                                     ctx.dst_limit)
                async for data in _closing(stream, min(ctx.block_size, _STREAM_CHUNK)):
                    if pos + len(data) > size:
                        raise IntegrityError(f"{key}: read back more than {size} bytes")
                    await ctx.pacing.transfer(len(data))
                    if len(data) >= _HASH_IN_THREAD:
                        await asyncio.to_thread(hasher.update, data)
                    else:
                        hasher.update(data)
                    pos += len(data)
                if pos < size:
                    raise TransientError(f"{key}: read back ended early at {pos} of {size}")
            except TransientError as e:
                attempt += 1
                if attempt >= ctx.policy.attempts:
                    raise
                await asyncio.sleep(ctx.policy.delay(attempt, e.retry_after))
    finally:
        ctx.slots.release(1)
    return hasher.digest()


async def _md5(data: Data) -> bytes:
    if len(data) >= _HASH_IN_THREAD:
        return await asyncio.to_thread(lambda: hashlib.md5(data).digest())
    return hashlib.md5(data).digest()


def _dest_props(props: ObjectProps, src: ObjectInfo) -> ObjectProps:
    meta = dict(props.metadata)
    if src.etag:
        meta[SRC_ETAG_KEY] = src.etag
    # The original time: one the source itself kept from an earlier copy wins.
    kept = (src.metadata or {}).get(SRC_MTIME_KEY) or meta.get(SRC_MTIME_KEY)
    if kept:
        meta[SRC_MTIME_KEY] = kept
    elif src.last_modified is not None:
        meta[SRC_MTIME_KEY] = format_time(src.last_modified)
    # (Built directly: dataclasses.replace looks the fields up again for every object.)
    return ObjectProps(props.content_type, props.content_encoding, props.cache_control,
                       props.content_disposition, props.content_language, meta)


def _check(src: ObjectInfo, size: int, md5: bytes, where: str) -> None:
    if size != src.size:
        raise IntegrityError(f"{where}: read {size} bytes, the listing said {src.size}")
    if src.md5 is not None and md5 != src.md5:
        raise IntegrityError(f"{where}: MD5 of the data read ({md5.hex()}) differs from the "
                             f"source's ({src.md5.hex()})")


async def copy_marker(ctx: TransferContext, dest_key: str) -> None:
    """A folder marker (an S3 ``dir/`` key, a WebHDFS empty directory) becomes a directory
    where the destination has real ones (ADLS Gen2: Path - Create on the DFS endpoint), else
    an ``hdi_isfolder`` marker blob."""
    if ctx.dst.capabilities.directories:
        dirs = cast(DirectoryWriter, ctx.dst)
        await retry(lambda: dirs.make_directory(dest_key), ctx.policy, ctx.dst_limit)
        return
    empty = hashlib.md5(b"").digest()
    props = ObjectProps(metadata={FOLDER_KEY: "true"})
    key = dest_key.rstrip("/")
    await retry(lambda: ctx.dst.put(key, b"", props, empty), ctx.policy, ctx.dst_limit)


@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy proved: the MD5 the destination holds (None when it keeps none) and how
    the bytes were proven to be the source's (README "What is copied, and how it is
    checked"): ``source-md5``, ``source-crc32``/``-sha256``/``-sha1``, ``multipart-etag``,
    ``service-md5`` (the source keeps no checksum: the destination holds exactly the bytes
    read), ``size-only``, ``server-md5`` (a server-side copy the service checked against
    the source's MD5), ``server-read-md5`` (a server-side block copy, read back)."""

    md5: bytes | None
    proof: str


async def copy_object(ctx: TransferContext, src: ObjectInfo, dest_key: str) -> Copied:
    """Copy one object; returns the MD5 the destination holds and the proof it got.

    Four paths:
    - up to one block: read whole, one put carrying the MD5 — the source's, when the
      destination checks it (Azure), else hashed here and checked against the source's;
    - up to ``single_put_max``, when the source has an MD5 and the destination can check a
      streamed put against one: the source's bytes are streamed straight into one put
      carrying the source's MD5, and the object is created only if what arrived has that
      MD5.  On Azure (Put Blob with Content-MD5) the service checks it, an end-to-end proof
      that costs the client no hashing;
    - up to ``single_put_max``, when the source has no MD5 but keeps other checksums (an
      S3 multipart object) and the destination returns the MD5 of a streamed put: the
      same streamed put without an MD5, each byte read once and hashed at most once
      here — by the source's own checksum (``SourceProof``: its additional checksum,
      else its multipart ETag), and by MD5 only where the transport needs it
      (``capabilities.block_md5``, plain HTTP), to compare with the MD5 the destination
      computed of what it stored.  Over TLS the stored MD5 is the service's own of bytes
      TLS delivered intact.  A failed proof deletes what was written (it must never look
      like a finished copy).  Over plain HTTP a source proven by its multipart ETag (or
      by a SHA: anything but a cheap CRC32) goes by parts instead (``_copy_parts``: each
      byte hashed once, the destination keeps no MD5), since the streamed put would hash
      it twice;
    - otherwise parallel blocks (each with its own MD5 where the transport needs one,
      ``capabilities.block_md5``), committed with the whole-object MD5 computed here —
      except for a source proven by its multipart ETag (by parts, ``_copy_parts``) or by
      its own checksum (that checksum only; the destination keeps no MD5)."""
    if ctx.route is not None and ctx.route.applies(ctx, src):
        copied = await ctx.route.attempt(ctx, src, dest_key)
        if copied is not None:
            return copied
    if src.size <= ctx.block_size:
        return await _copy_single(ctx, src, dest_key)
    if src.size <= ctx.single_put_max and ctx.dst.capabilities.stream_put:
        if src.md5 is not None:
            return Copied(await _copy_streamed(ctx, src, src.md5, dest_key), "source-md5")
        if ctx.src.capabilities.source_checksums:
            kept = await source_kept(ctx, src)
            # By parts over plain HTTP, unless the source keeps a CRC32: then the streamed
            # put costs one cheap CRC32 pass more (~0.27 s/GiB here) but holds one slot
            # and ~1 MiB per object instead of whole parts, and keeps the service's MD5.
            if ctx.dst.capabilities.block_md5 and SourceProof(src, kept).label != \
                    "source-crc32" and _part_blocks(ctx, src, _etag_proof(src, kept)):
                return await _copy_blocks(ctx, src, dest_key, kept)
            return await _copy_streamed_proven(ctx, src, dest_key, kept)
    return await _copy_blocks(ctx, src, dest_key)


async def source_kept(ctx: TransferContext, src: ObjectInfo) -> SourceChecksum | None:
    """What the source keeps to prove a read of ``src`` by (one or two HEADs on S3; None
    where the store keeps nothing): a new ``SourceProof(src, kept)`` per attempt."""
    if not ctx.src.capabilities.source_checksums:
        return None
    store = cast(ChecksumSource, ctx.src)
    return await retry(lambda: store.source_checksums(src.key, src.etag), ctx.policy,
                       ctx.src_limit)


def _parts_fit(src: ObjectInfo, kept: SourceChecksum | None) -> bool:
    """Whether the source's parts can be cut from part 1's size: the part count is
    ceil(size / part 1's size).  Not so for an upload whose parts are not all part 1's size
    (but the last); one whose count still fits is only found when its check fails."""
    return kept is not None and bool(kept.part_size) and \
        kept.parts == -(-src.size // (kept.part_size or 1))


def _etag_rebuilds(src: ObjectInfo, kept: SourceChecksum | None) -> bool:
    """Whether the source's multipart ETag can be rebuilt from the MD5s of its parts: not
    under SSE-KMS or SSE-C (the ETag is then no digest of the bytes), and only where the
    parts can be cut from part 1's size (``_parts_fit``)."""
    return kept is not None and not kept.opaque_etag and _parts_fit(src, kept)


def _source_proof(src: ObjectInfo, kept: SourceChecksum | None) -> SourceProof:
    """``SourceProof(src, kept)`` for one attempt; an ObjectError, before anything is
    read, when the proof goes by parts (a multipart ETag, a COMPOSITE checksum) but the
    parts are not all part 1's size (``_parts_fit``): reading would only fail its check."""
    proof = SourceProof(src, kept)
    if proof.part_size and not _parts_fit(src, kept):
        what = "multipart ETag" if proof.label == "multipart-etag" else \
            f"composite {proof.label.removeprefix('source-')}"
        raise ObjectError(
            f"{src.key}: its {kept.parts if kept else '?'} parts are not all "
            f"{proof.part_size} bytes (but the last), so its {what}, the only checksum it "
            "keeps, cannot prove a copy: upload it again with equal parts or with a "
            "full-object checksum (CRC32, SHA-256)")
    return proof


def _etag_proof(src: ObjectInfo, kept: SourceChecksum | None) -> SourceProof:
    """The proof by the multipart ETag alone, even where the source keeps an additional
    checksum: over plain HTTP the transit needs an MD5 of each byte anyway, and the part
    MD5s that prove the transit block by block prove the source too, so hashing the bytes
    again for the checksum (CRC32 ~0.27 s/GiB here, SHA-256 far more) buys nothing.
    Only where the ETag can be rebuilt (``_etag_rebuilds``); otherwise the source's own
    proof (``SourceProof(src, kept)``)."""
    if kept is not None and kept.algorithm is not None and _etag_rebuilds(src, kept):
        kept = replace(kept, algorithm=None, value=None, composite=False)
    return SourceProof(src, kept)


def _part_blocks(ctx: TransferContext, src: ObjectInfo, proof: SourceProof) -> int | None:
    """The slots per block when ``src`` can be copied in blocks that are its parts, each
    block's MD5 computed once for two uses: the Content-MD5 the service checks the block
    against (transit) and the part's MD5 its multipart ETag is rebuilt from (source).
    None when the proof is not a multipart ETag, the ETag cannot be rebuilt
    (``_etag_rebuilds``: SSE-KMS/SSE-C, or a part count that does not fit part 1's size),
    the destination checks no block MD5 (on TLS too: ``put_checks_md5``), or the parts do
    not fit the destination's blocks or the memory allowed."""
    caps = ctx.dst.capabilities
    part = proof.part_size
    if proof.label != "multipart-etag" or not part or not caps.put_checks_md5 or \
            not caps.block_upload or part > caps.max_block_size:
        return None
    if not _etag_rebuilds(src, proof.kept):
        return None
    if caps.max_blocks and -(-src.size // part) > caps.max_blocks:
        return None
    # A part is read whole: at its peak the pieces as they arrive and the part joined from
    # them, twice its size; so it holds twice its slots (and the parts in flight, all the
    # run's slots at most, stay within the memory the slots allow).
    k = 2 * -(-part // ctx.block_size)
    return k if k <= ctx.slots.total else None


async def _copy_single(ctx: TransferContext, src: ObjectInfo, dest_key: str) -> Copied:
    await ctx.slots.acquire(1)
    try:
        await ctx.pacing.transfer(src.size)
        r = await retry(lambda: ctx.src.read(src.key, if_match=src.etag), ctx.policy,
                        ctx.src_limit)
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
        return Copied(md5, "service-md5" if src.md5 is None else "source-md5")
    finally:
        ctx.slots.release(1)


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
        return Copied(stored, "service-md5" if proof.label == "size-only" else proof.label)

    await ctx.slots.acquire(1)
    try:
        return await retry(attempt, ctx.policy, ctx.dst_limit)
    finally:
        ctx.slots.release(1)


# Block indices are span * _SPAN_STRIDE + position in the span (a span's blocks are not
# known until its bytes arrive, because a block is whatever chunk the stream delivers).
_SPAN_STRIDE = 100_000


async def _open_blocks(ctx: TransferContext, src: ObjectInfo, dest_key: str, end: int,
                       block: int, slots: int) -> tuple[RangeStream, BlockUpload]:
    """The start of a copy in blocks: ``slots`` slots taken, the source opened from 0 to
    ``end``, the destination's block upload begun (with the stream's properties); on a
    failure nothing is left held."""
    await ctx.slots.acquire(slots)
    try:
        stream = await retry(
            lambda: ctx.src.open_range(src.key, 0, end, if_match=src.etag),
            ctx.policy, ctx.src_limit)
        try:
            upload = await ctx.dst.start_blocks(dest_key, src.size, block,
                                                _dest_props(stream.props, src))
        except BaseException:
            stream.close()
            raise
    except BaseException:
        ctx.slots.release(slots)
        raise
    return stream, upload


async def _copy_blocks(ctx: TransferContext, src: ObjectInfo, dest_key: str,
                       kept: SourceChecksum | None = None) -> Copied:
    """A large object: spans of ``span_blocks`` blocks, each span one streamed ranged GET.
    Every chunk the stream delivers (≥ block size, except a span's last) becomes a block,
    staged in parallel with the others without being copied; the whole-object MD5 is
    folded in order as the blocks arrive.

    A source proven by its multipart ETag (``_part_blocks``) is copied by parts instead:
    one ranged GET per part, each part one block, hashed once (its MD5 is the block's
    Content-MD5, which the service checks, and one of the MD5s the ETag is rebuilt from);
    no whole-object MD5 is computed, so the destination keeps none (Put Block List
    computes none): the blob records the source's ETag, which `verify` and a move
    rebuild from the destination's bytes."""
    # A source without an MD5 is proven by what else it keeps.
    proof = None
    if src.md5 is None:
        if kept is None:
            kept = await source_kept(ctx, src)
        proof = _source_proof(src, kept)
        # Over plain HTTP, by parts whenever the ETag can prove them (see _etag_proof);
        # over TLS only when the ETag is the proof anyway (a CRC32 is cheaper than MD5).
        by_etag = _etag_proof(src, kept) if ctx.dst.capabilities.block_md5 else proof
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
    arrived: list[asyncio.Queue[tuple[bytes, asyncio.Event] | None]] = [
        asyncio.Queue() for _ in spans]
    staged: list[list[int]] = [[] for _ in spans]
    hasher = hashlib.md5()
    total = 0

    stream0, upload = await _open_blocks(ctx, src, dest_key, spans[0][1], bs, reserve[0])

    async def stage_block(index: int, offset: int, data: bytes, hashed: asyncio.Event) -> None:
        # Holds its k slots until the block is staged and folded into the whole-object MD5.
        try:
            block_md5 = await _md5(data) if ctx.dst.capabilities.block_md5 else None
            await ctx.pacing.transfer(len(data))
            await retry(lambda: upload.stage(index, offset, data, block_md5), ctx.policy,
                        ctx.dst_limit)
            ctx.events.emit(BytesMoved(len(data)))
            await hashed.wait()
        finally:
            ctx.slots.release(k)

    async def read_span(tg: asyncio.TaskGroup, n: int, stream: RangeStream | None) -> None:
        start, end = spans[n]
        pos, launched, attempt = start, 0, 0
        try:
            while pos < end:
                try:
                    if stream is None:
                        stream = await ctx.src.open_range(src.key, pos, end, if_match=src.etag)
                    async for chunk in stream.chunks(bs):
                        if launched >= blocks_in[n] or pos + len(chunk) > end:
                            raise IntegrityError(f"{src.key}: the ranged read returned more "
                                                 f"than the {end - start} bytes asked for")
                        index = n * _SPAN_STRIDE + launched
                        hashed = asyncio.Event()
                        await arrived[n].put((chunk, hashed))
                        staged[n].append(index)
                        tg.create_task(stage_block(index, pos, chunk, hashed))
                        pos += len(chunk)
                        launched += 1
                    if pos < end:
                        raise TransientError(f"{src.key}: ranged read ended early at {pos}")
                except TransientError as e:
                    # Resume where the stream broke; blocks already cut are kept.
                    if isinstance(e, ThrottledError):
                        ctx.src_limit.throttled()
                    attempt += 1
                    if attempt >= ctx.policy.attempts:
                        raise
                    if stream is not None:
                        stream.close()
                    stream = None
                    await asyncio.sleep(ctx.policy.delay(attempt, e.retry_after))
            await arrived[n].put(None)
        finally:
            if stream is not None:
                stream.close()  # a span given up (or cancelled) frees its connection now
            ctx.slots.release(reserve[n] - launched * k)

    async def launch(tg: asyncio.TaskGroup) -> None:
        tg.create_task(read_span(tg, 0, stream0))
        for n in range(1, len(spans)):
            await ctx.slots.acquire(reserve[n])
            tg.create_task(read_span(tg, n, None))

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
                tg.create_task(launch(tg))
                tg.create_task(hash_in_order())
        except BaseExceptionGroup as eg:
            raise _first_error(eg) from None
        md5 = hasher.digest() if whole else None
        if md5 is not None:
            _check(src, total, md5, src.key)
        if proof is not None:
            proof.check()
        order = [i for span in staged for i in span]
        await retry(lambda: upload.commit(order, md5), ctx.policy, ctx.dst_limit)
        committed = True
    finally:
        if not committed:
            await upload.abort()
    if proof is None:
        return Copied(md5, "source-md5")
    return Copied(md5, "service-md5" if proof.label == "size-only" else proof.label)


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

    async def read_part(start: int, end: int, stream: RangeStream | None) -> Data:
        attempt = 0
        while True:
            try:
                if stream is None:
                    stream = await ctx.src.open_range(src.key, start, end, if_match=src.etag)
                data: Data = b""
                try:
                    async for chunk in stream.chunks(end - start):
                        if data or len(chunk) > end - start:
                            raise IntegrityError(f"{src.key}: the ranged read returned more "
                                                 f"than the {end - start} bytes asked for")
                        data = chunk
                finally:
                    stream.close()
                if len(data) < end - start:
                    raise TransientError(f"{src.key}: ranged read ended early at "
                                         f"{start + len(data)}")
                return data
            except TransientError as e:
                if isinstance(e, ThrottledError):
                    ctx.src_limit.throttled()
                attempt += 1
                if attempt >= ctx.policy.attempts:
                    raise
                stream = None
                await asyncio.sleep(ctx.policy.delay(attempt, e.retry_after))

    async def one(index: int, stream: RangeStream | None) -> None:
        start, end = ranges[index]
        data = await read_part(start, end, stream)
        md5 = digests[index] = await _md5(data)
        await ctx.pacing.transfer(len(data))
        try:
            await retry(lambda: upload.stage(index, start, data, md5), ctx.policy,
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


def _fold(hasher: Any, proof: SourceProof | None, data: Data) -> None:
    if hasher is not None:
        hasher.update(data)
    if proof is not None:
        proof.update(data)


async def delete_source_if_verified(ctx: TransferContext, src: ObjectInfo, dest_key: str,
                                    md5: bytes | None) -> str | None:
    """Delete ``src`` once its copy at ``dest_key`` is proven by MD5; return None when
    deleted, else why the source was kept.

    Proof: the destination has the source's size and a Content-MD5 (equal to ``md5``, the
    MD5 of the bytes this run wrote, when given); that MD5 equals the source's own MD5 —
    or, for a source without one (S3 multipart, local files), the MD5 of the source read
    again now; and the source is still the version that was copied (same ETag).  A copy
    by parts (``_copy_parts``) or in blocks proven by the source's checksum keeps no
    Content-MD5: the destination's bytes, read back, must have the source's own checksum
    (CRC32, SHA) where it keeps one, else rebuild its multipart ETag (where that can be
    rebuilt: ``_etag_rebuilds``)."""
    d = await retry(lambda: ctx.dst.exists(dest_key), ctx.policy, ctx.dst_limit)
    if d is None or d.size != src.size:
        return "the destination copy is missing or has another size"
    if d.md5 is None and src.md5 is None and md5 is None:
        kept = await source_kept(ctx, src)
        proof = SourceProof(src, kept)
        if proof.label.startswith("source-"):
            await stream_checksums(ctx.dst, d, ctx.slots, ctx.policy, limiter=ctx.dst_limit,
                                   chunk=ctx.block_size, proof=proof, whole_md5=False)
            try:
                proof.check()
            except IntegrityError:
                return (f"the destination's bytes, read back, do not have the source's "
                        f"{proof.label.removeprefix('source-')}")
        else:
            if proof.label != "multipart-etag" or not proof.part_size or \
                    not _etag_rebuilds(src, kept):
                return "the destination has no Content-MD5 to prove the copy"
            _, etags = await stream_checksums(ctx.dst, d, ctx.slots, ctx.policy,
                                              [proof.part_size], limiter=ctx.dst_limit,
                                              chunk=ctx.block_size)
            if etags[0] != (src.etag or "").lower():
                return "the destination's bytes, read back, do not rebuild the source's ETag"
    elif d.md5 is None:
        return "the destination has no Content-MD5 to prove the copy"
    elif md5 is not None and d.md5 != md5:
        return "the destination's Content-MD5 is not the MD5 of the bytes written"
    elif src.md5 is not None:
        if src.md5 != d.md5:
            return "the source's MD5 differs from the destination's Content-MD5"
    elif await rehash(ctx, src) != d.md5:
        return "the source, read again, does not match the destination's Content-MD5"
    cur = await retry(lambda: ctx.src.exists(src.key), ctx.policy, ctx.src_limit)
    if cur is None or cur.etag != src.etag or cur.size != src.size:
        return "the source changed after it was copied"
    await retry(lambda: ctx.src.delete(src.key), ctx.policy, ctx.src_limit)
    return None


async def rehash(ctx: TransferContext, src: ObjectInfo) -> bytes:
    """MD5 of the source object's bytes, read again (one slot of memory)."""
    md5, _ = await stream_checksums(ctx.src, src, ctx.slots, ctx.policy, if_match=src.etag,
                                    limiter=ctx.src_limit, chunk=ctx.block_size)
    return md5


def slots_per_block(size: int, block_size: int, max_blocks: int) -> int:
    """How many block-size slots one block of an object of ``size`` bytes takes: 1, unless
    the destination's limit of ``max_blocks`` blocks (0: none) needs bigger blocks."""
    if not max_blocks:
        return 1
    need = -(-size // max_blocks)  # the smallest block that fits within max_blocks
    return max(1, -(-need // block_size))


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


def endpoint_name(store: Store) -> str:
    """Throttling is per account/bucket: one limiter for each."""
    u = store.url
    return f"{u.scheme}://{u.account or ''}/{u.bucket}"
