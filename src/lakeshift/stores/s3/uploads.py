"""S3 multipart uploads through obstore's writer (``S3Store.start_blocks``): blocks
written in order, each part's MD5 computed as it is sent (``PartMD5s``) for the ETag check
after the upload, and an abort that leaves no open upload."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from lakeshift.model import Data
from lakeshift.stores.obstore_common import translate

#: Data from this size up is hashed in a worker thread (hashlib lets go of the GIL).
_HASH_IN_THREAD = 1 << 20


class PartMD5s:
    """The MD5 of each ``part_size`` bytes of an upload, fed in order, from which S3's
    ETag of the object is rebuilt: the MD5 of all bytes when they are fewer than one part
    (obstore's writer then sends one PutObject), else the MD5 of the parts' MD5s, ``-N`` (its writer
    cuts parts of exactly its buffer size, but the last)."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self.digests: list[bytes] = []
        self._hasher = hashlib.md5()
        self._in_part = 0

    def update(self, data: Data) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            take = min(len(view), self.part_size - self._in_part)
            self._hasher.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self.part_size:
                self.digests.append(self._hasher.digest())
                self._hasher, self._in_part = hashlib.md5(), 0

    def etag(self, total: int) -> str:
        digests = self.digests + ([self._hasher.digest()] if self._in_part or not total
                                  else [])
        if total < self.part_size:
            return digests[0].hex()  # (exactly one part's bytes make a 1-part upload)
        return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


class _SequentialUpload:
    """S3 multipart through obstore's writer: bytes must arrive in order, so each block
    waits until everything before its offset is written (its predecessors already hold
    their memory slots, so this cannot deadlock).  Each part's MD5 is computed as it is
    written (``PartMD5s``), and the ETag they make is compared with the one S3 gives the
    object (``check``) once the writer is closed: S3 computed each part's MD5 of the bytes
    it stored."""

    def __init__(self, writer: Any, what: str, abort_open: Callable[[], None],
                 parts: PartMD5s | None = None,
                 check: Callable[[str | None], Awaitable[bool]] | None = None) -> None:
        self._writer = writer
        self._what = what
        self._abort_open = abort_open
        self._written = 0
        self._turn = asyncio.Condition()
        self._parts = parts
        self._check = check

    async def stage(self, index: int, offset: int, data: Data, md5: bytes | None) -> None:
        async with self._turn:
            await self._turn.wait_for(lambda: self._written == offset)
            parts = self._parts
            hashing = None if parts is None else asyncio.create_task(
                asyncio.to_thread(parts.update, data) if len(data) >= _HASH_IN_THREAD
                else _now(parts.update, data))
            try:
                await self._writer.write(data)
            except Exception as e:
                raise translate(e, self._what) from None
            finally:
                if hashing is not None:
                    await hashing
            self._written += len(data)
            self._turn.notify_all()

    async def commit(self, order: list[int], md5: bytes | None) -> bool:
        """Whether what S3 stored was checked against the bytes sent (False: it could
        not be, under SSE-KMS or SSE-C)."""
        try:
            await self._writer.close()
        except Exception as e:
            raise translate(e, self._what) from None
        if self._check is None:
            return False
        return await self._check(None if self._parts is None
                                 else self._parts.etag(self._written))

    async def abort(self) -> None:
        """Abort the multipart upload (AbortMultipartUpload), so its parts are neither kept
        nor billed.  A writer merely dropped leaves the upload open, and obstore's own abort
        (leaving the writer's context with an exception) fails once a write was cancelled or
        failed; so the open uploads of this key are also listed and aborted through botocore
        (another writer of the same key at the same moment would lose its upload: two
        writers of one key race anyway).  Never raises: the error that made the copy fail
        is the one to report."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                await writer.__aexit__(_Aborted, _Aborted(self._what), None)
            except Exception:
                pass
        try:
            await asyncio.to_thread(self._abort_open)
        except Exception:
            pass


async def _now(fn: Callable[[Data], None], data: Data) -> None:
    fn(data)


class _Aborted(Exception):
    """Given to obstore's writer so that it aborts the multipart upload."""
