"""Multipart sources whose ETag cannot be rebuilt from part MD5s (SSE-KMS / SSE-C, or parts
of unequal size) but which keep a CRC32: copied in blocks to an Azure-like destination over
TLS and over plain HTTP, then moved.  The CRC32 proves the copy and the move; the ETag is
never relied on.  (From the reviewer's /tmp/rv/kms_move.py and kms_http.py.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from lakeshift.engine import transfer as T
from lakeshift.engine.events import EventBus
from lakeshift.engine.retry import RetryPolicy
from lakeshift.engine.slots import SlotPool
from lakeshift.errors import IntegrityError, ObjectError
from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.stores.azure.store import CAPABILITIES as AZ
from lakeshift.stores.base import SourceChecksum
from lakeshift.stores.s3.store import CAPABILITIES as S3
from lakeshift.urls import parse_url

MiB = 1 << 20
PART = 5 * MiB


def _crc_composite(parts: list[bytes]) -> str:
    crcs = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    return base64.b64encode(zlib.crc32(crcs).to_bytes(4, "big")).decode()


class _Stream:
    def __init__(self, data: bytes, etag: str) -> None:
        self.data, self.props, self.size, self.etag = data, ObjectProps(), len(data), etag

    async def chunks(self, n: int) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), n):
            yield self.data[i:i + n]

    def close(self) -> None:
        pass


class _Src:
    url = parse_url("s3://bkt/")
    capabilities = S3

    def __init__(self, data: bytes, etag: str, kept: SourceChecksum) -> None:
        self.data, self.etag, self.kept = data, etag, kept
        self.deleted: list[str] = []
        self.reads = 0

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> _Stream:
        self.reads += 1
        return _Stream(self.data[start:end], self.etag)

    async def source_checksums(self, key: str, etag: str | None) -> SourceChecksum:
        return self.kept

    async def exists(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(self.data), etag=self.etag)

    async def delete(self, key: str) -> None:
        self.deleted.append(key)


class _Upload:
    def __init__(self, dst: _Dst) -> None:
        self.dst, self.blocks = dst, {}  # type: ignore[var-annotated]

    async def stage(self, i: int, off: int, data: Any, md5: bytes | None) -> None:
        self.blocks[i] = bytes(data)

    async def commit(self, order: list[int], md5: bytes | None) -> None:
        self.dst.blob = b"".join(self.blocks[i] for i in order)
        self.dst.md5 = md5

    async def abort(self) -> None:
        pass


class _Dst:
    url = parse_url("az://cont/")

    def __init__(self, block_md5: bool) -> None:
        # Azure: over TLS no per-block MD5 is needed; over plain HTTP each block has one.
        self.capabilities = replace(AZ, put_checks_md5=True, block_md5=block_md5)
        self.blob: bytes = b""
        self.md5: bytes | None = None

    async def start_blocks(self, key: str, size: int, bs: int, props: Any) -> _Upload:
        return _Upload(self)

    async def exists(self, key: str) -> ObjectInfo:
        return ObjectInfo(key, len(self.blob), md5=self.md5)

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> _Stream:
        return _Stream(self.blob[start:end], "")


def _ctx(src: _Src, dst: _Dst) -> T.TransferContext:
    return T.TransferContext(src, dst, MiB, SlotPool(64),  # type: ignore[arg-type]
                             RetryPolicy(attempts=2), EventBus([]), single_put_max=0)


def _source(sizes: list[int], opaque: bool, crc: bool = True,
            composite: bool = True) -> tuple[bytes, _Src]:
    parts = [os.urandom(n) for n in sizes]
    data = b"".join(parts)
    if opaque:
        etag = os.urandom(16).hex() + f"-{len(parts)}"  # as under SSE-KMS: no digest
    else:
        etag = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + \
            f"-{len(parts)}"
    if not crc:
        value = None
    elif composite:
        value = _crc_composite(parts)
    else:
        value = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    kept = SourceChecksum("crc32" if crc else None, value, crc and composite, sizes[0],
                          len(parts), opaque)
    return data, _Src(data, etag, kept)


def _copy_then_move(src: _Src, dst: _Dst, size: int) -> tuple[T.Copied, str | None]:
    """Copy object ``k`` from ``src`` to ``dst``, then ask to delete the source (a move):
    what the copy proved, and why the source was kept (None: it was deleted)."""
    ctx = _ctx(src, dst)
    info = ObjectInfo("k", size, etag=src.etag)

    async def run() -> tuple[T.Copied, str | None]:
        copied = await T.copy_object(ctx, info, "k")
        return copied, await T.delete_source_if_verified(ctx, info, "k", copied.md5)

    return asyncio.run(run())


#: (part sizes, SSE-KMS, composite CRC32).  Parts of unequal size: part 1 larger, so the
#: count (4) is not ceil(size / part 1) (3); only a full-object CRC32 can prove them.
CASES = {
    "sse-kms": ([PART, PART, PART, 123], True, True),
    "sse-kms-full-object": ([PART, PART, PART, 123], True, False),
    "unequal-parts-full-object": ([PART + MiB, PART, PART, 123], False, False),
}


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain-http"])
@pytest.mark.parametrize("case", CASES)
def test_an_unrebuildable_etag_source_is_copied_and_moved_by_its_crc32(
        case: str, tls: bool) -> None:
    sizes, opaque, composite = CASES[case]
    data, src = _source(sizes, opaque, composite=composite)
    dst = _Dst(block_md5=not tls)
    copied, kept = _copy_then_move(src, dst, len(data))
    assert copied.proof == "source-crc32"
    assert dst.blob == data
    assert kept is None and src.deleted == ["k"]


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain-http"])
def test_a_move_keeps_the_source_when_the_destination_does_not_have_its_crc32(
        tls: bool) -> None:
    data, src = _source([PART, PART, PART, 123], opaque=True)
    dst = _Dst(block_md5=not tls)
    ctx = _ctx(src, dst)
    info = ObjectInfo("k", len(data), etag=src.etag)

    async def run() -> str | None:
        copied = await T.copy_object(ctx, info, "k")
        dst.blob = dst.blob[:-1] + bytes([dst.blob[-1] ^ 1])
        return await T.delete_source_if_verified(ctx, info, "k", copied.md5)

    assert asyncio.run(run()) == ("the destination's bytes, read back, do not have the "
                                  "source's crc32")
    assert src.deleted == []


@pytest.mark.parametrize("crc", [False, True], ids=["etag-only", "composite-crc32"])
def test_a_source_with_unequal_parts_proven_by_parts_fails_in_one_line_before_reading(
        crc: bool) -> None:
    data, src = _source([PART + MiB, PART, PART, 123], opaque=False, crc=crc)
    ctx = _ctx(src, _Dst(block_md5=True))
    what = "composite crc32" if crc else "multipart ETag"
    with pytest.raises(ObjectError, match=rf"^k: its 4 parts are not all 6291456 bytes "
                                          rf"\(but the last\), so its {what}, .*"
                                          r"upload it again with equal parts"):
        asyncio.run(T.copy_object(ctx, ObjectInfo("k", len(data), etag=src.etag), "k"))
    assert src.reads == 0


def test_a_rebuildable_etag_over_plain_http_still_goes_by_parts() -> None:
    data, src = _source([PART, PART, PART, 123], opaque=False)
    dst = _Dst(block_md5=True)
    copied, kept = _copy_then_move(src, dst, len(data))
    assert copied.proof == "multipart-etag" and dst.blob == data
    assert kept is None and src.deleted == ["k"]


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain-http"])
def test_an_sse_kms_source_keeping_no_checksum_is_copied_by_md5_and_moved(tls: bool) -> None:
    # Its ETag proves nothing: the bytes read are hashed here (a whole-object MD5, which
    # the blob keeps), and a move rehashes the source, as for a single-part SSE-KMS object.
    data, src = _source([PART, PART, PART, 123], opaque=True, crc=False)
    dst = _Dst(block_md5=not tls)
    copied, kept = _copy_then_move(src, dst, len(data))
    assert copied.proof == "service-md5" and dst.blob == data
    assert dst.md5 == hashlib.md5(data).digest()
    assert kept is None and src.deleted == ["k"]


@pytest.mark.parametrize("case", ["opaque-unnamed", "unequal-parts-count-fits"])
def test_over_plain_http_parts_that_do_not_rebuild_the_etag_fall_back_to_the_crc32(
        case: str) -> None:
    # Nothing said the ETag cannot be rebuilt (no SSE header; a part count that fits part
    # 1's size), so the copy goes by parts; the ETag does not rebuild, and the source's
    # full-object CRC32 proves the bytes read again in blocks (the reviewer's kms_http.py).
    if case == "opaque-unnamed":
        data, src = _source([PART, PART, PART, 123], opaque=True, composite=False)
        src.kept = replace(src.kept, opaque_etag=False)
    else:
        data, src = _source([PART, PART + MiB, PART, 123], opaque=False, composite=False)
    dst = _Dst(block_md5=True)
    copied, kept = _copy_then_move(src, dst, len(data))
    assert copied.proof == "source-crc32" and dst.blob == data
    assert src.reads > 4  # by parts (a GET each: 10 of a span's 16 slots), then in blocks
    assert kept is None and src.deleted == ["k"]


def test_an_etag_only_source_whose_parts_do_not_rebuild_it_still_fails() -> None:
    data, src = _source([PART, PART + MiB, PART, 123], opaque=False, crc=False)
    ctx = _ctx(src, _Dst(block_md5=True))
    with pytest.raises(IntegrityError, match="do not have the source's multipart-etag"):
        asyncio.run(T.copy_object(ctx, ObjectInfo("k", len(data), etag=src.etag), "k"))
    # By parts only, nothing else could prove it: a GET per part (a 5 MiB part read
    # whole holds 10 slots, a span 16).
    assert src.reads == 4
