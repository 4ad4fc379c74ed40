"""The ceiling: a bare loop of lakeshift's own lowest store calls, with no engine in the
way — list the source (``list_page``), then copy every object as ``lakeshift copy`` would,
``--in-flight`` objects at a time (64 for the small set, 16 for the large ones).

Run by ``copy_vs_rclone.py --sets bare`` (small objects), ``--sets large-bare`` and
``--sets multipart-bare`` (16 × 64 MiB) under /usr/bin/time beside ``lakeshift copy`` of
the same set on fresh emulators; the target (issue 16) is lakeshift >= 90 % of its files/s.

    python bench/bare_loop.py s3://bench/data/ az://bench/data/ [--in-flight 64]

Per object, the requests of the engine's path for it (engine/transfer.py, with lakeshift
copy's defaults: 8 MiB blocks, one put up to 64 MiB), without its slots, retries, pacing,
events or records:

- up to one block: one GET (``read``) and one Put Blob (``put``) carrying the listing's
  MD5 (hashed here when the listing has none);
- up to 64 MiB with the source's MD5 (a single-part S3 object): one streamed GET
  (``open_range``) into one streamed Put Blob carrying that MD5 (``put_stream``), which the
  service checks; the client hashes nothing;
- without an MD5 (an S3 multipart object): its checksums first (``source_checksums``, the
  HEADs), then, where the destination checks a block's CRC64 over plain HTTP
  (``block_md5`` and ``block_crc64``) and the source keeps a checksum of its own: one
  streamed GET cut into blocks as they arrive (``start_blocks``, Put Block with the
  block's CRC64, at most 2 blocks read ahead of their Put Blocks, then Put Block List),
  the source's checksum folded in order (``SourceProof``); otherwise one streamed Put Blob
  without an MD5, the bytes proven by the source's checksum and (plain HTTP) by their MD5
  against the one the service returns.  (An ETag-only source over plain HTTP goes by
  parts in lakeshift copy: here it is streamed; the stderr line names every path taken.)

``--requests`` makes the loop send what ``lakeshift copy`` sends for each object, to tell
the engine's cost from the requests' cost at the services: ``if-match`` (the GET carries
the listing's ETag in If-Match, as lakeshift's reads do), ``metadata`` (the Put Blob
carries the source's ETag and time as metadata, as lakeshift's writes do), ``both``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import cast

from lakeshift.engine.checksums import SourceProof
from lakeshift.engine.transfer_base import (
    _crc64,
    _dest_props,
    _fold,
    chunk_reader,
    stage_request,
)
from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.stores.base import BlockUpload, ChecksumSource, Chunk, StoreConfig
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url

MiB = 1024 * 1024
#: lakeshift copy's defaults: --block-size, --single-put-max, a streamed put's chunk, and
#: the blocks of one span read ahead of their Put Blocks (TransferContext.read_ahead).
BLOCK = 8 * MiB
SINGLE_PUT_MAX = 64 * MiB
CHUNK = 1 * MiB
READ_AHEAD = 2

STREAMED_MD5 = "streamed put with the source's MD5"
BLOCKS_CRC64 = "blocks with CRC64, proven by the source's checksum"
STREAMED_PROVEN = "streamed put without an MD5, proven by the source's checksum"


async def main(source: str, destination: str, in_flight: int, requests: str) -> int:
    if_match = requests in ("if-match", "both")
    metadata = requests in ("metadata", "both")
    s_url, d_url = parse_url(source), parse_url(destination)
    src = open_store(StoreConfig(s_url))
    dst = open_store(StoreConfig(d_url))
    caps = dst.capabilities
    paths: Counter[str] = Counter()

    def props_for(props: ObjectProps, obj: ObjectInfo) -> ObjectProps:
        return _dest_props(props, obj) if metadata else props

    async def streamed(obj: ObjectInfo, key: str, md5: bytes) -> None:
        stream = await src.open_range(obj.key, 0, obj.size, if_match=obj.etag if if_match
                                      else None)
        try:
            await dst.put_stream(key, obj.size, stream.chunks(CHUNK),
                                 props_for(stream.props, obj), md5)
        finally:
            stream.close()

    async def streamed_proven(obj: ObjectInfo, key: str, proof: SourceProof) -> None:
        hasher = hashlib.md5() if caps.block_md5 else None
        stream = await src.open_range(obj.key, 0, obj.size, if_match=obj.etag if if_match
                                      else None)
        loop = asyncio.get_running_loop()

        async def body() -> AsyncIterator[bytes]:
            # Each chunk hashed in a worker thread while it is sent, as lakeshift's.
            hashing: asyncio.Future[None] | None = None
            async for data in stream.chunks(CHUNK):
                if hashing is not None:
                    await hashing
                hashing = loop.run_in_executor(None, _fold, hasher, proof, data)
                yield data
            if hashing is not None:
                await hashing

        try:
            stored = await dst.put_stream(key, obj.size, body(),
                                          props_for(stream.props, obj), None)
        finally:
            stream.close()
        proof.check()
        if hasher is not None and stored != hasher.digest():
            raise RuntimeError(f"{key}: the destination stored another MD5 than the bytes sent")

    async def blocks(obj: ObjectInfo, key: str, proof: SourceProof) -> None:
        stream = await src.open_range(obj.key, 0, obj.size, if_match=obj.etag if if_match
                                      else None)
        try:
            upload = await dst.start_blocks(key, obj.size, BLOCK, props_for(stream.props, obj))
        except BaseException:
            stream.close()
            raise
        ahead = asyncio.Semaphore(READ_AHEAD)

        async def stage(up: BlockUpload, index: int, offset: int, data: Chunk) -> None:
            try:
                await stage_request(up, index, offset, data, None, await _crc64(data))()
            finally:
                ahead.release()

        order: list[int] = []
        committed = False
        try:
            async with asyncio.TaskGroup() as tg, \
                    aclosing(chunk_reader(upload)(stream, BLOCK)) as chunks:  # type: ignore[type-var]
                offset = 0
                while True:
                    await ahead.acquire()
                    if (chunk := await anext(chunks, None)) is None:
                        break
                    order.append(len(order))
                    tg.create_task(stage(upload, order[-1], offset, chunk))
                    offset += len(chunk)
                    await asyncio.to_thread(_fold, None, proof, chunk)
                    del chunk
            proof.check()
            await upload.commit(order, None)
            committed = True
        finally:
            stream.close()
            if not committed:
                await upload.abort()

    async def copy(obj: ObjectInfo) -> None:
        key = d_url.path + obj.key[len(s_url.path):]
        if obj.size <= BLOCK:
            r = await src.read(obj.key, if_match=obj.etag if if_match else None)
            md5 = obj.md5 if obj.md5 is not None else hashlib.md5(r.data).digest()
            await dst.put(key, r.data, props_for(r.props, obj), md5)
            paths["one GET, one Put Blob"] += 1
        elif obj.md5 is not None and obj.size <= SINGLE_PUT_MAX and caps.stream_put:
            await streamed(obj, key, obj.md5)
            paths[STREAMED_MD5] += 1
        else:
            kept = await cast(ChecksumSource, src).source_checksums(obj.key, obj.etag) \
                if src.capabilities.source_checksums else None
            proof = SourceProof(obj, kept)
            if caps.block_md5 and caps.block_crc64 and proof.label.startswith("source-"):
                await blocks(obj, key, proof)
                paths[BLOCKS_CRC64] += 1
            else:
                await streamed_proven(obj, key, proof)
                paths[f"{STREAMED_PROVEN} ({proof.label})"] += 1

    try:
        await dst.prepare_destination()
        queue: asyncio.Queue[ObjectInfo | None] = asyncio.Queue(in_flight * 4)

        async def lister() -> None:
            token = None
            while True:
                page = await src.list_page(s_url.path, token)
                for obj in page.objects:
                    await queue.put(obj)
                token = page.token
                if token is None:
                    break
            for _ in range(in_flight):
                await queue.put(None)

        async def worker() -> None:
            while (obj := await queue.get()) is not None:
                await copy(obj)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(lister())
            for _ in range(in_flight):
                tg.create_task(worker())
    finally:
        await asyncio.gather(src.close(), dst.close(), return_exceptions=True)
    done = sum(paths.values())
    print(f"{done} objects: " + "; ".join(f"{path}: {n}" for path, n in sorted(paths.items())),
          file=sys.stderr)
    return 0 if done else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("destination")
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--requests", default="bare", choices=("bare", "if-match", "metadata", "both"))
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.source, a.destination, a.in_flight, a.requests)))
