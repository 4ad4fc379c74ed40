"""Checksums of an object's bytes, read once as a stream: its MD5 and, for candidate part
sizes, the S3 multipart ETag (md5-of-md5s-N).  Used by `verify` and by moves that must prove
a source without an MD5 of its own."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import zlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lakeshift.engine.limiter import EndpointLimiter, Pacing
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.errors import IntegrityError, LakeshiftError
from lakeshift.model import Data, ObjectInfo
from lakeshift.stores.base import SourceChecksum, Store

CHUNK = 8 * 1024 * 1024


async def stream_checksums(store: Store, obj: ObjectInfo, slots: SlotPool, policy: RetryPolicy,
                           part_sizes: Sequence[int] = (), if_match: str | None = None,
                           limiter: EndpointLimiter | None = None,
                           chunk: int = CHUNK, pacing: Pacing | None = None,
                           proof: SourceProof | None = None, whole_md5: bool = True
                           ) -> tuple[bytes, list[str]]:
    """Stream ``obj`` (holding one slot of memory) and return its MD5 (empty unless
    ``whole_md5``: a read that only feeds ``proof`` hashes nothing else) and the multipart
    ETags for ``part_sizes``.  With ``pacing``, every byte read counts against its bandwidth
    cap (--max-bandwidth), as a copy's do; ``proof`` is fed the bytes too (its ``check``
    is the caller's)."""
    md5 = hashlib.md5() if whole_md5 else None
    parts: dict[int, tuple[Any, list[bytes]]] = {ps: (hashlib.md5(), []) for ps in part_sizes}
    pos = 0
    if obj.size:
        await slots.acquire(1)
        try:
            stream = await retry(lambda: store.open_range(obj.key, 0, obj.size,
                                                          if_match=if_match), policy, limiter)
            try:
                async for data in stream.chunks(chunk):
                    if pacing is not None:
                        await pacing.transfer(len(data))
                    await asyncio.to_thread(_fold, md5, parts, pos, bytes(data), proof)
                    pos += len(data)
            finally:
                stream.close()
        finally:
            slots.release(1)
    etags = []
    for ps, (cur, digests) in parts.items():
        done = [*digests, cur.digest()] if pos % ps else digests
        etags.append(hashlib.md5(b"".join(done)).hexdigest() + f"-{len(done)}")
    return (b"" if md5 is None else md5.digest()), etags


def _fold(md5: Any, parts: dict[int, tuple[Any, list[bytes]]], pos: int, data: bytes,
          proof: SourceProof | None = None) -> None:
    if md5 is not None:
        md5.update(data)
    if proof is not None:
        proof.update(data)
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


#: Algorithms a source's additional checksum can be checked with here (CRC32 from ISA-L,
#: else zlib; CRC32C and CRC64NVME from awscrt; the SHAs from hashlib).
_ALGORITHMS = {"crc32", "crc32c", "crc64nvme", "sha256", "sha1"}
#: The proofs by a checksum cheaper than MD5 (~0.2-0.3 s/GiB here against ~2 s): where the
#: source keeps one, it is preferred to rebuilding a multipart ETag from part MD5s.
CHEAP_PROOFS = frozenset({"source-crc32", "source-crc32c", "source-crc64nvme"})
_MULTIPART_ETAG = re.compile(r"^([0-9a-fA-F]{32})-(\d+)$")


def crc64nvme(*data: Data) -> bytes:
    """CRC-64/NVME of ``data`` (the buffers one after the other, chained: a block in the
    pieces it was read in is never joined) as Azure's ``x-ms-content-crc64`` carries it
    (the service checks a Put Block's against the body): 8 bytes, little-endian.  From
    awscrt (hardware-accelerated, ~0.2 s/GiB here against MD5's ~2 s; it lets go of the
    GIL); imported at the first block that needs it, not at every start (~50 ms)."""
    from awscrt.checksums import crc64nvme as crc64

    value = 0
    for piece in data:
        value = crc64(piece, value)
    return value.to_bytes(8, "little")


def _crc32_function() -> Any:
    """ISA-L's CRC32 (``isal``: ~0.06 s/GiB here, the same function as zlib's, checked
    against it in tests/unit/test_source_proof.py), else zlib's (~0.5 s/GiB: the largest
    client cost of copying a CRC32 source over plain HTTP)."""
    try:
        from isal.isal_zlib import crc32
    except ImportError:  # (a platform without its wheel)
        return zlib.crc32
    return crc32


_crc32: Any = None


class _Crc:
    """A chained CRC function (``fn(data, previous)``) behind the hashlib interface, its
    digest ``size`` bytes big-endian, as S3 keeps it in x-amz-checksum-* (not Azure's
    little-endian x-ms-content-crc64)."""

    def __init__(self, fn: Any, size: int) -> None:
        self.value = 0
        self._fn = fn
        self._size = size

    def update(self, data: Data) -> None:
        self.value = self._fn(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(self._size, "big")


def _new(algorithm: str) -> Any:
    global _crc32
    if algorithm == "crc32":
        if _crc32 is None:
            _crc32 = _crc32_function()
        return _Crc(_crc32, 4)
    if algorithm in ("crc32c", "crc64nvme"):
        # awscrt's, imported at the first object that needs it.
        from awscrt import checksums

        if algorithm == "crc32c":
            return _Crc(checksums.crc32c, 4)
        return _Crc(checksums.crc64nvme, 8)
    return hashlib.new(algorithm)


class SourceProof:
    """Proves that the bytes read of a source object are the source's, from what the
    source keeps besides an MD5: its additional checksum (whole-object, or COMPOSITE: the
    checksum of the parts' checksums), else its multipart ETag rebuilt from the parts' MD5s.
    Fed the bytes in order, each once (``update``); ``check`` after the last.

    ``label`` names the proof for the summary and the docs: ``source-crc32``,
    ``source-sha256``, ``source-sha1``, ``multipart-etag``, or ``size-only`` when the
    source keeps nothing usable (then only the size is checked; an ETag under SSE-KMS or
    SSE-C, ``kept.opaque_etag``, is no digest of the bytes)."""

    def __init__(self, obj: ObjectInfo, kept: SourceChecksum | None) -> None:
        self.obj = obj
        self.kept = kept
        self.expected: bytes | str | None = None
        self.algorithm: str | None = None
        self.part_size: int | None = None
        m = _MULTIPART_ETAG.match(obj.etag or "")
        if kept is not None and kept.algorithm in _ALGORITHMS and kept.value and (
                not kept.composite or kept.part_size or kept.algorithm == "crc64nvme"):
            self.algorithm = kept.algorithm
            self.expected = base64.b64decode(kept.value)
            # (S3 keeps CRC64NVME only of the whole object, FULL_OBJECT; a service that
            # does not say so, as moto, still means the whole.)
            composite = kept.composite and kept.algorithm != "crc64nvme"
            self.part_size = kept.part_size if composite else None
            self.label = f"source-{kept.algorithm}"
        elif m and kept is not None and kept.part_size and not kept.opaque_etag:
            self.algorithm = "md5"
            self.expected = m.group(1).lower()
            self.part_size = kept.part_size
            self.label = "multipart-etag"
        else:
            self.label = "size-only"
        algorithm = self.algorithm or "md5"
        self._whole = _new(algorithm) if self.algorithm and not self.part_size else None
        self._part = _new(algorithm) if self.part_size else None
        self._digests: list[bytes] = []
        self._pos = 0
        self._given = False

    def parts_hashed(self, digests: Sequence[bytes], size: int) -> None:
        """Instead of ``update``: the parts' checksums, in order, computed by the caller
        (a copy whose blocks are the source's parts hashes each block once, for its
        Content-MD5 and for this proof), ``size`` bytes in all."""
        self._digests = list(digests)
        self._pos = size
        self._given = True

    def update(self, data: Data) -> None:
        if self._whole is not None:
            self._whole.update(data)
        elif self._part is not None and self.part_size:
            view = memoryview(data)
            while view:
                room = self.part_size - self._pos % self.part_size
                self._part.update(view[:room])
                self._pos += min(room, len(view))
                view = view[room:]
                if self._pos % self.part_size == 0:
                    self._digests.append(self._part.digest())
                    self._part = _new(self.algorithm or "md5")
            return
        self._pos += len(data)

    def check(self) -> None:
        """Raise IntegrityError unless the bytes fed have the source's size and checksum."""
        where = self.obj.key
        if self._pos != self.obj.size:
            raise IntegrityError(f"{where}: read {self._pos} bytes, the listing said "
                                 f"{self.obj.size}")
        if self._whole is not None:
            got: bytes | str = self._whole.digest()
        elif self._part is not None:
            digests = [*self._digests, self._part.digest()] if self._pos % (
                self.part_size or 1) else self._digests
            if not self._pos:
                digests = [self._part.digest()]
            if self._given:
                digests = self._digests
            joined = _new(self.algorithm or "md5")
            joined.update(b"".join(digests))
            got = joined.digest()
            if self.label == "multipart-etag":
                got = joined.hexdigest()
                m = _MULTIPART_ETAG.match(self.obj.etag or "")
                if m and int(m.group(2)) != len(digests):
                    raise IntegrityError(f"{where}: {len(digests)} parts of "
                                         f"{self.part_size} bytes, the ETag says {m.group(2)}")
        else:
            return
        if got != self.expected:
            raise IntegrityError(f"{where}: the bytes read do not have the source's "
                                 f"{self.label.removeprefix('source-')} "
                                 f"({_shown(got)}, the source keeps {_shown(self.expected)})")


def _shown(value: bytes | str | None) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)
