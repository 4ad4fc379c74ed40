"""A move's check (engine/transfer.py is the entry): the source is deleted only once its
copy is proven."""

from __future__ import annotations

from lakeshift.engine.checksums import SourceProof, stream_checksums
from lakeshift.engine.retry import retry
from lakeshift.engine.transfer_base import TransferContext
from lakeshift.engine.transfer_proofs import _etag_rebuilds, source_kept
from lakeshift.errors import (
    IntegrityError,
)
from lakeshift.model import ObjectInfo


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

