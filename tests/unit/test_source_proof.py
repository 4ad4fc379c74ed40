"""SourceProof: a read of a source object proven by what the source keeps besides an MD5."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib

import pytest

from lakeshift.engine.checksums import SourceProof
from lakeshift.errors import IntegrityError
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import SourceChecksum

PART = 5 * 1024 * 1024
DATA = os.urandom(2 * PART + 1234)
PIECES = [DATA[i:i + PART] for i in range(0, len(DATA), PART)]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _etag() -> str:
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in PIECES)).hexdigest() + "-3"


def _fed(proof: SourceProof, data: bytes, chunk: int = 1024 * 1024 + 17) -> SourceProof:
    for i in range(0, len(data), chunk):
        proof.update(memoryview(data)[i:i + chunk])
    return proof


def _boto(algorithm: str, data: bytes) -> str:
    """botocore's checksum of ``data`` as S3 keeps it (x-amz-checksum-*, base64)."""
    from botocore.httpchecksum import _CHECKSUM_CLS

    checksum = _CHECKSUM_CLS[algorithm]()
    checksum.update(data)
    return str(checksum.b64digest())


KEPT = {
    "crc32-full": SourceChecksum("crc32", _b64(zlib.crc32(DATA).to_bytes(4, "big"))),
    "crc32-composite": SourceChecksum("crc32", _b64(zlib.crc32(b"".join(
        zlib.crc32(p).to_bytes(4, "big") for p in PIECES)).to_bytes(4, "big")), True, PART, 3),
    "sha256-composite": SourceChecksum("sha256", _b64(hashlib.sha256(b"".join(
        hashlib.sha256(p).digest() for p in PIECES)).digest()), True, PART, 3),
    "etag": SourceChecksum(None, None, False, PART, 3),
    "xxhash64-falls-back-to-etag": SourceChecksum("xxhash64", "AAAAAAAAAAA=", True, PART, 3),
    # CRC32C and CRC64NVME (awscrt) against botocore's own (what an SDK upload sends).
    "crc32c-full": SourceChecksum("crc32c", _boto("crc32c", DATA)),
    "crc32c-composite": SourceChecksum("crc32c", _boto("crc32c", b"".join(
        base64.b64decode(_boto("crc32c", p)) for p in PIECES)), True, PART, 3),
    "crc64nvme-full": SourceChecksum("crc64nvme", _boto("crc64nvme", DATA)),
    # S3 keeps CRC64NVME of the whole object only, even where it does not say FULL_OBJECT.
    "crc64nvme-multipart": SourceChecksum("crc64nvme", _boto("crc64nvme", DATA), True, PART, 3),
}
LABELS = {"crc32-full": "source-crc32", "crc32-composite": "source-crc32",
          "sha256-composite": "source-sha256", "etag": "multipart-etag",
          "xxhash64-falls-back-to-etag": "multipart-etag",
          "crc32c-full": "source-crc32c", "crc32c-composite": "source-crc32c",
          "crc64nvme-full": "source-crc64nvme", "crc64nvme-multipart": "source-crc64nvme"}


@pytest.mark.parametrize("case", sorted(KEPT))
def test_the_right_bytes_pass_and_one_changed_byte_fails(case: str) -> None:
    obj = ObjectInfo("k", len(DATA), etag=_etag())
    proof = _fed(SourceProof(obj, KEPT[case]), DATA)
    assert proof.label == LABELS[case]
    proof.check()
    bad = bytearray(DATA)
    bad[PART + 3] ^= 1
    with pytest.raises(IntegrityError):
        _fed(SourceProof(obj, KEPT[case]), bytes(bad)).check()


def test_a_part_size_that_does_not_give_the_etag_count_fails() -> None:
    obj = ObjectInfo("k", len(DATA), etag=_etag())
    proof = _fed(SourceProof(obj, SourceChecksum(None, None, False, 3 * 1024 * 1024, 3)), DATA)
    with pytest.raises(IntegrityError, match="parts"):
        proof.check()


def test_nothing_kept_is_size_only_and_still_checks_the_size() -> None:
    obj = ObjectInfo("k", len(DATA), etag="abc")
    proof = _fed(SourceProof(obj, None), DATA)
    assert proof.label == "size-only"
    proof.check()
    with pytest.raises(IntegrityError, match="read"):
        _fed(SourceProof(obj, None), DATA[:-1]).check()


def test_part_md5s_hashed_elsewhere_prove_the_etag_and_a_wrong_part_fails() -> None:
    # A copy by parts hashes each block once and hands the MD5s over (parts_hashed).
    obj = ObjectInfo("k", len(DATA), etag=_etag())
    digests = [hashlib.md5(p).digest() for p in PIECES]
    proof = SourceProof(obj, KEPT["etag"])
    proof.parts_hashed(digests, len(DATA))
    proof.check()
    wrong = [digests[0], hashlib.md5(PIECES[1][:-1] + b"?").digest(), digests[2]]
    for given, size in ((wrong, len(DATA)), (digests[:2], len(DATA)),
                        (digests, len(DATA) - 1), (digests[::-1], len(DATA))):
        proof = SourceProof(obj, KEPT["etag"])
        proof.parts_hashed(given, size)
        with pytest.raises(IntegrityError):
            proof.check()


def test_an_etag_under_sse_kms_or_sse_c_is_no_proof_but_a_checksum_still_is() -> None:
    # The ETag is no digest of the bytes there: proving by it could only ever fail.
    obj = ObjectInfo("k", len(DATA), etag=os.urandom(16).hex() + "-3")
    proof = _fed(SourceProof(obj, SourceChecksum(None, None, False, PART, 3, True)), DATA)
    assert proof.label == "size-only"
    proof.check()
    crc = SourceChecksum("crc32", _b64(zlib.crc32(DATA).to_bytes(4, "big")), False, PART, 3,
                         True)
    assert SourceProof(obj, crc).label == "source-crc32"


@pytest.mark.parametrize("algorithm", ["crc32c", "crc64nvme"])
@pytest.mark.parametrize("size", [0, 1, 7, 4096 + 3, PART + 1])
def test_crc32c_and_crc64nvme_equal_botocores_fed_in_any_pieces(algorithm: str,
                                                                size: int) -> None:
    data = DATA[:size]
    kept = SourceChecksum(algorithm, _boto(algorithm, data))
    for chunk in (1, 3, 4096, 1024 * 1024 + 17):
        if size > 100_000 and chunk < 4096:
            continue
        proof = _fed(SourceProof(ObjectInfo("k", size), kept), data, chunk)
        assert proof.label == f"source-{algorithm}"
        proof.check()
    other = SourceChecksum(algorithm, _boto(algorithm, data + b"x"))
    with pytest.raises(IntegrityError, match=algorithm):
        _fed(SourceProof(ObjectInfo("k", size), other), data).check()


@pytest.mark.parametrize("size", [0, 1, 15, 16, 4096 + 3, PART + 1])
def test_the_crc32_is_isals_and_equals_zlibs_fed_in_any_pieces(size: int) -> None:
    # ISA-L's CRC32 (~10x zlib's here) stands in for zlib's: the same value, chained
    # over pieces of any size and over views.
    from isal import isal_zlib

    from lakeshift.engine import checksums

    data = DATA[:size]
    proof = SourceProof(ObjectInfo("k", size), SourceChecksum(
        "crc32", _b64(zlib.crc32(data).to_bytes(4, "big"))))
    assert checksums._crc32 is isal_zlib.crc32
    for chunk in (1, 7, 4096, 1024 * 1024 + 17):
        if size > 100_000 and chunk < 4096:
            continue
        crc = 0
        for i in range(0, size, chunk):
            crc = checksums._crc32(memoryview(data)[i:i + chunk], crc)
        assert crc == zlib.crc32(data)
        _fed(SourceProof(ObjectInfo("k", size), proof.kept), data, chunk).check()
