"""How a source without an MD5 is proven (engine/transfer.py is the entry): what it
keeps, whether its multipart ETag can be rebuilt, whether it goes by parts, and what a
copy that nothing the source keeps proves is named (``unchecked_proof``)."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

from lakeshift.engine.checksums import SourceProof
from lakeshift.engine.retry import retry
from lakeshift.engine.transfer_base import TransferContext
from lakeshift.errors import (
    ObjectError,
)
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import (
    ChecksumSource,
    SourceChecksum,
)

#: The proof of a copy to a disk lakeshift writes itself that nothing the source keeps
#: proves: the MD5 of the bytes written, computed as they were written and recorded with
#: the file (``user.lakeshift``); no service checked them.
WRITTEN_MD5 = "written-md5"


def unchecked_proof(ctx: TransferContext, by_crc64: bool = False) -> str:
    """The proof of a copy that nothing the source keeps proves (no MD5, no checksum: its
    size only), named for what checked the bytes written: the destination service, against
    the MD5 sent with them (``service-md5``) or each block's CRC64 (``service-crc64``); on
    a disk lakeshift writes itself (``Capabilities.written_here``) no service did, so
    ``written-md5``: lakeshift's own MD5 of the bytes it wrote."""
    if ctx.dst.capabilities.written_here:
        return WRITTEN_MD5
    return "service-crc64" if by_crc64 else "service-md5"


def write_unchecked(label: str) -> str:
    """The proof of a copy whose write nothing checked (an S3 multipart upload under
    SSE-KMS or SSE-C: its ETag is no digest of the parts, and obstore sends no Content-MD5
    per part): ``label`` says what proved the bytes read, the suffix that what the
    destination stored was not compared with them (only TLS guarded the transit);
    ``size-only`` stays as it is, nothing was proven beyond the size."""
    return label if label == "size-only" else f"{label}-write-unchecked"


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
    # run's slots at most, stay within the memory the slots allow).  (A part kept in its
    # pieces, S3 into Azure, is never joined: it needs only half of them.)
    k = 2 * -(-part // ctx.block_size)
    return k if k <= ctx.slots.total else None
