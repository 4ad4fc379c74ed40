"""Checksums of an object's bytes, read once as a stream: its MD5 and, for candidate part
sizes, the S3 multipart ETag (md5-of-md5s-N).  Used by `verify` and by moves that must prove
a source without an MD5 of its own."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lakeshift.engine.limiter import EndpointLimiter, Pacing
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.errors import LakeshiftError
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import Store

CHUNK = 8 * 1024 * 1024


async def stream_checksums(store: Store, obj: ObjectInfo, slots: SlotPool, policy: RetryPolicy,
                           part_sizes: Sequence[int] = (), if_match: str | None = None,
                           limiter: EndpointLimiter | None = None,
                           chunk: int = CHUNK, pacing: Pacing | None = None
                           ) -> tuple[bytes, list[str]]:
    """Stream ``obj`` (holding one slot of memory) and return its MD5 and the multipart
    ETags for ``part_sizes``.  With ``pacing``, every byte read counts against its bandwidth
    cap (--max-bandwidth), as a copy's do."""
    md5 = hashlib.md5()
    parts: dict[int, tuple[Any, list[bytes]]] = {ps: (hashlib.md5(), []) for ps in part_sizes}
    pos = 0
    if obj.size:
        await slots.acquire(1)
        try:
            stream = await retry(lambda: store.open_range(obj.key, 0, obj.size,
                                                          if_match=if_match), policy, limiter)
            async for data in stream.chunks(chunk):
                if pacing is not None:
                    await pacing.transfer(len(data))
                await asyncio.to_thread(_fold, md5, parts, pos, bytes(data))
                pos += len(data)
        finally:
            slots.release(1)
    etags = []
    for ps, (cur, digests) in parts.items():
        done = [*digests, cur.digest()] if pos % ps else digests
        etags.append(hashlib.md5(b"".join(done)).hexdigest() + f"-{len(done)}")
    return md5.digest(), etags


def _fold(md5: Any, parts: dict[int, tuple[Any, list[bytes]]], pos: int, data: bytes) -> None:
    md5.update(data)
    for ps, (cur, digests) in list(parts.items()):
        view = memoryview(data)
        p = pos
        while view:
            room = ps - p % ps
            piece = view[:room]
            cur.update(piece)
            p += len(piece)
            view = view[len(piece):]
            if p % ps == 0:
                digests.append(cur.digest())
                cur = hashlib.md5()
                parts[ps] = (cur, digests)


async def without_unvouched_md5(store: Store, obj: ObjectInfo, policy: RetryPolicy,
                                limiter: EndpointLimiter | None = None) -> ObjectInfo | None:
    """``obj`` without the MD5 its listing offered, when the object's own HEAD does not
    vouch for it (an S3 ETag under SSE-KMS or SSE-C looks like an MD5 but is not one);
    None when the HEAD confirms the MD5, or cannot tell.  Asked only after a mismatch."""
    if obj.md5 is None:
        return None
    try:
        fresh = await retry(lambda: store.exists(obj.key), policy, limiter)
    except LakeshiftError:
        return None
    if fresh is None or fresh.etag != obj.etag or fresh.md5 is not None:
        return None
    return replace(obj, md5=None)
