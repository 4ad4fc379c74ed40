"""What every copy path of one object shares (engine/transfer.py is the entry): the
context, the result, the properties written, the checks of what was read, and the start of
a copy in blocks.

Memory contract: every block of object data in memory is held under one slot of the run's
SlotPool (engine/slots.py), so object data never exceeds slots × block size (plus one
chunk being cut per open span), however many objects there are.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, cast

from lakeshift.engine.checksums import SourceProof, crc64nvme
from lakeshift.engine.events import EventBus
from lakeshift.engine.limiter import EndpointLimiter, Pacing
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.errors import (
    IntegrityError,
    LakeshiftError,
)
from lakeshift.model import ObjectInfo, ObjectProps, quick_init
from lakeshift.stores.base import (
    BlockUpload,
    Chunk,
    CRC64BlockUpload,
    Pieces,
    PiecesBlockUpload,
    PiecesStream,
    RangeStream,
    Store,
    buffers,
)
from lakeshift.stores.props import SRC_ETAG_KEY, SRC_MTIME_KEY, format_time

if TYPE_CHECKING:
    from lakeshift.engine.transfer_move import EmptiedFolders
    from lakeshift.engine.transfer_server import ServerRoute


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
    #: Blocks of one span read and not yet staged, at most (engine/transfer_blocks.py).
    read_ahead: int = 2
    #: A move (--delete-source-after-verify) from a source with real directories: the
    #: folders its deletions may leave empty, removed at the end (transfer_move.py).
    emptied: EmptiedFolders | None = None

    # (Looked up once per context, then a plain attribute: read for every request.)
    @cached_property
    def src_limit(self) -> EndpointLimiter:
        return self.pacing.endpoint(endpoint_name(self.src))

    @cached_property
    def dst_limit(self) -> EndpointLimiter:
        return self.pacing.endpoint(endpoint_name(self.dst))

    @property
    def span_blocks(self) -> int:
        """Blocks per ranged GET: a quarter of the slots, so several spans (of one large
        object or of several) stream at once."""
        return max(1, self.slots.total // 4)


@quick_init
@dataclass(frozen=True, slots=True)
class Copied:
    """What a copy proved: the MD5 the destination holds (None when it keeps none) and how
    the bytes were proven to be the source's (docs/integrity.md "Proofs"):
    ``source-md5``, ``source-crc32``/``-sha256``/``-sha1``, ``multipart-etag``,
    ``service-md5`` (the source keeps no checksum: the destination holds exactly the bytes
    read, each block checked by the service against its MD5, or over TLS),
    ``service-crc64`` (the same, each block checked by the service against its CRC64),
    ``written-md5`` (the same on a disk lakeshift writes itself: no service checked the
    bytes; the MD5 is lakeshift's own, of the bytes it wrote), ``size-only``,
    ``server-md5`` (a server-side copy the service checked against the source's MD5),
    ``server-read-md5`` (a server-side block copy, read back)."""

    md5: bytes | None
    proof: str


def _md5_of(data: Chunk) -> bytes:
    hasher = hashlib.md5()
    for piece in buffers(data):
        hasher.update(piece)
    return hasher.digest()


async def _md5(data: Chunk) -> bytes:
    if len(data) >= _HASH_IN_THREAD:
        return await asyncio.to_thread(_md5_of, data)
    return _md5_of(data)


async def _crc64(data: Chunk) -> bytes:
    """``checksums.crc64nvme`` of a block (in a worker thread from 1 MiB up, as ``_md5``);
    a block in pieces chained over them, never joined."""
    if len(data) >= _HASH_IN_THREAD:
        return await asyncio.to_thread(crc64nvme, *buffers(data))
    return crc64nvme(*buffers(data))


def _dest_props(props: ObjectProps, src: ObjectInfo) -> ObjectProps:
    if not props.metadata and not src.metadata:
        # (The usual case, a source read without metadata of its own: the two keys set
        # in one dict display, no copy of an empty dict and no look-ups in it.)
        etag, when = src.etag, src.last_modified
        if etag and when is not None:
            meta = {SRC_ETAG_KEY: etag, SRC_MTIME_KEY: format_time(when)}
        elif etag:
            meta = {SRC_ETAG_KEY: etag}
        else:
            meta = {} if when is None else {SRC_MTIME_KEY: format_time(when)}
        return ObjectProps(props.content_type, props.content_encoding, props.cache_control,
                           props.content_disposition, props.content_language, meta)
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


class OpaqueETagError(IntegrityError):
    """The source's read answered that the object's ETag is no digest of its bytes (S3
    under SSE-KMS or SSE-C: ``opaque_etag``), so the MD5 its listing took from that ETag
    is none.  Raised before anything is written; ``transfer_one`` starts the copy again
    without that MD5 (hashing the bytes here), and it is no attempt: no put was made to
    fail."""


def opaque_md5(src: ObjectInfo, response: object) -> bool:
    """Whether ``src`` carries an MD5 that ``response`` (its read: a ``ReadResult`` or a
    ``RangeStream``) says is none (``opaque_etag``: only S3's reads say so, other stores'
    streams have no such attribute)."""
    return src.md5 is not None and getattr(response, "opaque_etag", False) is True


def _check(src: ObjectInfo, size: int, md5: bytes, where: str) -> None:
    if size != src.size:
        raise IntegrityError(f"{where}: read {size} bytes, the listing said {src.size}")
    if src.md5 is not None and md5 != src.md5:
        raise IntegrityError(f"{where}: MD5 of the data read ({md5.hex()}) differs from the "
                             f"source's ({src.md5.hex()})")


def _fold(hasher: Any, proof: SourceProof | None, data: Chunk) -> None:
    for piece in buffers(data):
        if hasher is not None:
            hasher.update(piece)
        if proof is not None:
            proof.update(piece)


async def _open_blocks(ctx: TransferContext, src: ObjectInfo, dest_key: str, end: int,
                       block: int, slots: int) -> tuple[RangeStream, BlockUpload]:
    """The start of a copy in blocks: ``slots`` slots taken, the source opened from 0 to
    ``end``, the destination's block upload begun (with the stream's properties); on a
    failure nothing is left held.  A source whose listed MD5 the stream says is none
    (``opaque_md5``) is OpaqueETagError before the upload begins."""
    await ctx.slots.acquire(slots)
    try:
        stream = await retry(
            lambda: ctx.src.open_range(src.key, 0, end, if_match=src.etag),
            ctx.policy, ctx.src_limit)
        try:
            if opaque_md5(src, stream):
                raise OpaqueETagError(f"{src.key}: its ETag is no MD5 (SSE-KMS or SSE-C)")
            upload = await ctx.dst.start_blocks(dest_key, src.size, block,
                                                _dest_props(stream.props, src))
        except BaseException:
            stream.close()
            raise
    except BaseException:
        ctx.slots.release(slots)
        raise
    return stream, upload


def stage_request(upload: BlockUpload, index: int, offset: int, data: Chunk,
                  md5: bytes | None, crc64: bytes | None) -> Callable[[], Awaitable[None]]:
    """The Put Block of ``data`` as ``upload`` takes it: in pieces (``stage_pieces``,
    never joined), by its CRC64 (``stage_crc64``), else with its MD5 (``stage``)."""
    if isinstance(data, Pieces):
        return partial(cast(PiecesBlockUpload, upload).stage_pieces, index, offset, data,
                       md5, crc64)
    if crc64 is not None:
        return partial(cast(CRC64BlockUpload, upload).stage_crc64, index, offset, data, crc64)
    return partial(upload.stage, index, offset, data, md5)


def span_readers(ctx: TransferContext, reserve: list[int], cut: list[int], taken: list[bool],
                 k: int, read_span: Callable[[asyncio.TaskGroup, int, RangeStream | None],
                                             Coroutine[Any, Any, None]]
                 ) -> Callable[[asyncio.TaskGroup, RangeStream], None]:
    """How an object in blocks or in parts starts its span readers (``read_span(tg, n,
    stream)``) under ``tg``: span 0 at once on ``first`` (opened under its ``reserve[0]``
    slots), each later span as its ``reserve[n]`` slots come free, all taken before its GET
    opens (a reader never waits for slots while it holds a connection).  When a reader's
    task ends, by a done-callback (a task cancelled before its first step never runs a
    ``finally``), the slots it reserved that no piece took go back (``cut[n]`` pieces cut,
    ``k`` slots each, which a piece gives back itself once staged), and a stream opened for
    it that it never ``taken`` is closed."""
    def start(tg: asyncio.TaskGroup, n: int, stream: RangeStream | None) -> None:
        def done(_: object) -> None:
            ctx.slots.release(reserve[n] - cut[n] * k)
            if stream is not None and not taken[n]:
                stream.close()

        tg.create_task(read_span(tg, n, stream)).add_done_callback(done)

    async def launch(tg: asyncio.TaskGroup) -> None:
        for n in range(1, len(reserve)):
            await ctx.slots.acquire(reserve[n])
            start(tg, n, None)

    def start_all(tg: asyncio.TaskGroup, first: RangeStream) -> None:
        start(tg, 0, first)
        tg.create_task(launch(tg))

    return start_all


def chunk_reader(upload: BlockUpload) -> Callable[[RangeStream, int], AsyncIterator[Chunk]]:
    """How the block path reads a source's stream for ``upload``: into an upload that takes
    a block in pieces, from a source that gives them, as the buffers the bytes arrived in
    (``pieces``: never joined, no copy of any byte); else in chunks."""
    in_pieces = isinstance(upload, PiecesBlockUpload)

    def read(stream: RangeStream, n: int) -> AsyncIterator[Chunk]:
        if in_pieces and isinstance(stream, PiecesStream):
            return stream.pieces(n)
        return stream.chunks(n)

    return read


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
