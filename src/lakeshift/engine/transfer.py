"""Copy one object: a single put for small objects, parallel blocks for large ones.

The entry: ``copy_object`` picks the path, each in its own module: ``transfer_put`` (one
put: read whole, streamed, or streamed and proven by the source's own checksum),
``transfer_blocks`` (parallel blocks read in spans), ``transfer_parts`` (a multipart-ETag
source by its parts), ``transfer_server`` (server-side copies).  ``transfer_proofs``
decides how a source without an MD5 is proven, ``transfer_move`` proves a copy before a
move deletes its source, and ``transfer_base`` holds what they share (``TransferContext``,
``Copied``, the properties written, the start of a block upload).  The names other modules
use are importable from here.

Memory contract: every block of object data in memory is held under one slot of the run's
SlotPool (engine/slots.py), so object data never exceeds slots × block size (plus one
chunk being cut per open span), however many objects there are.
"""

from __future__ import annotations

import hashlib
from typing import cast

from lakeshift.engine.checksums import CHEAP_PROOFS, SourceProof
from lakeshift.engine.retry import retry
from lakeshift.engine.transfer_base import (
    Copied,
    TransferContext,
    _dest_props,
    endpoint_name,
    slots_per_block,
)
from lakeshift.engine.transfer_blocks import _copy_blocks
from lakeshift.engine.transfer_move import delete_source_if_verified, rehash
from lakeshift.engine.transfer_proofs import (
    _etag_proof,
    _etag_rebuilds,
    _part_blocks,
    _parts_fit,
    source_kept,
)
from lakeshift.engine.transfer_put import _copy_single, _copy_streamed, _copy_streamed_proven
from lakeshift.engine.transfer_server import URL_LIFETIME, ServerRoute
from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.stores.base import DirectoryWriter
from lakeshift.stores.props import FOLDER_KEY

__all__ = [
    "URL_LIFETIME",
    "Copied",
    "ServerRoute",
    "TransferContext",
    "_dest_props",
    "_etag_rebuilds",
    "_parts_fit",
    "copy_marker",
    "copy_object",
    "delete_source_if_verified",
    "endpoint_name",
    "rehash",
    "slots_per_block",
    "source_kept",
]


#: The Content-Type of a folder object ``d/`` on S3, as the AWS tools write one.
FOLDER_CONTENT_TYPE = "application/x-directory"


async def copy_marker(ctx: TransferContext, dest_key: str) -> str:
    """A folder marker (an S3 ``dir/`` key, a WebHDFS or local empty directory, an Azure
    folder) becomes a directory where the destination has real ones (ADLS Gen2: Path -
    Create on the DFS endpoint; local disk), a zero-byte object ``dir/`` where folders are
    named so (``slash_folders``: S3, as its console and the AWS CLI make one; its listing
    then shows it as the folder marker it pairs with), else an ``hdi_isfolder`` marker blob
    ``dir`` (a flat Azure account; ADLS Gen2 shows one as a folder).  Returns the key it
    wrote (a directory's without its slash)."""
    key = dest_key.rstrip("/")
    if ctx.dst.capabilities.directories:
        dirs = cast(DirectoryWriter, ctx.dst)
        await retry(lambda: dirs.make_directory(dest_key), ctx.policy, ctx.dst_limit)
        return key
    empty = hashlib.md5(b"").digest()
    if ctx.dst.capabilities.slash_folders:
        key += "/"
        props = ObjectProps(content_type=FOLDER_CONTENT_TYPE)
    else:
        props = ObjectProps(metadata={FOLDER_KEY: "true"})
    await retry(lambda: ctx.dst.put(key, b"", props, empty), ctx.policy, ctx.dst_limit)
    return key


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
      like a finished copy).  Over plain HTTP a source proven by its own checksum goes in
      blocks instead where the destination checks a block's CRC64 (``block_crc64``: each
      block's CRC64 proves the transit, no MD5 is computed), and a source proven by its
      multipart ETag (or by a SHA: anything but a cheap CRC, ``CHEAP_PROOFS``, where the destination
      checks only MD5s) goes by parts (``_copy_parts``: each byte hashed once, the
      destination keeps no MD5), since the streamed put would hash it twice;
    - otherwise parallel blocks (each with its own CRC64 or MD5 where the transport needs
      one, ``capabilities.block_md5``), committed with the whole-object MD5 computed here —
      except for a source proven by its multipart ETag (by parts, ``_copy_parts``) or by
      its own checksum (that checksum only; the destination keeps no MD5)."""
    # (A streaming route never applies: its mode read here, no call per object.)
    if ctx.route is not None and ctx.route.mode != "stream" and \
            ctx.route.applies(ctx, src):
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
            caps = ctx.dst.capabilities
            label = SourceProof(src, kept).label
            # Over plain HTTP into a destination that checks a block's CRC64, a source
            # proven by its own checksum goes in blocks: each block's CRC64 (~0.2 s/GiB)
            # proves the transit, so no byte is MD5-hashed (the streamed put needs the MD5
            # of every byte, ~2 s/GiB, to compare with the one the service computed).
            if caps.block_md5 and caps.block_crc64 and label.startswith("source-"):
                return await _copy_blocks(ctx, src, dest_key, kept)
            # By parts over plain HTTP, unless the source keeps a CRC (CHEAP_PROOFS): then
            # the streamed put costs one cheap CRC pass more (~0.2-0.3 s/GiB here) but holds
            # one slot and ~1 MiB per object instead of whole parts, and keeps the service's
            # MD5.
            if caps.block_md5 and label not in CHEAP_PROOFS and \
                    _part_blocks(ctx, src, _etag_proof(src, kept)):
                return await _copy_blocks(ctx, src, dest_key, kept)
            return await _copy_streamed_proven(ctx, src, dest_key, kept)
    return await _copy_blocks(ctx, src, dest_key)
