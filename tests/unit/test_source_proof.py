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


KEPT = {
    "crc32-full": SourceChecksum("crc32", _b64(zlib.crc32(DATA).to_bytes(4, "big"))),
    "crc32-composite": SourceChecksum("crc32", _b64(zlib.crc32(b"".join(
        zlib.crc32(p).to_bytes(4, "big") for p in PIECES)).to_bytes(4, "big")), True, PART, 3),
    "sha256-composite": SourceChecksum("sha256", _b64(hashlib.sha256(b"".join(
        hashlib.sha256(p).digest() for p in PIECES)).digest()), True, PART, 3),
    "etag": SourceChecksum(None, None, False, PART, 3),
    "crc32c-falls-back-to-etag": SourceChecksum("crc32c", "AAAAAA==", True, PART, 3),
}
LABELS = {"crc32-full": "source-crc32", "crc32-composite": "source-crc32",
          "sha256-composite": "source-sha256", "etag": "multipart-etag",
          "crc32c-falls-back-to-etag": "multipart-etag"}


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
