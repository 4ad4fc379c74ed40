"""`verify` of S3 multipart objects whose ETag cannot be rebuilt from their parts' MD5s:
under SSE-KMS (the ETag is then no digest of the bytes) or uploaded in unequal parts.  The
copy proves them by their own CRC32, or hashes them and keeps the service's MD5; verify
must prove them the same way (never call a good copy different), name the proof, and
still find a flipped byte at the destination.

moto keeps SSE-KMS multipart ETags md5-of-md5s; the proxy here makes them opaque for the
keys it is told (as S3 does), in listings, GET and HEAD, If-Match mapped back."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from azure.storage.blob import ContentSettings
from botocore.config import Config

import lakeshift
from tests import servers
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes, upload_parts

MiB = 1024 * 1024
_ETAG = re.compile(r'"?([0-9a-f]{32})(-\d+)?"?')


class OpaqueMultipartProxy(FaultProxy):
    """The fault proxy, with multipart ETags (``md5-N``) made opaque too."""

    def _opaque_tag(self, real: str, suffix: str) -> str:
        fake = hashlib.md5(b"sse-kms:" + real.encode()).hexdigest()
        self._real[fake + suffix] = real + suffix
        return fake + suffix

    def _hide_in_headers(self, path: str, headers: dict[str, str]) -> None:
        for k in list(headers):
            if k.lower() == "etag" and self._opaque is not None and self._opaque.search(path):
                m = _ETAG.fullmatch(headers[k])
                if m:
                    headers[k] = f'"{self._opaque_tag(m.group(1), m.group(2) or "")}"'

    def _hide_in_listing(self, body: bytes) -> bytes:
        pattern = self._opaque
        assert pattern is not None

        def contents(m: re.Match[str]) -> str:
            block = m.group(0)
            key = re.search(r"<Key>(.*?)</Key>", block)
            if key is None or not pattern.search(key.group(1)):
                return block
            return re.sub(r"<ETag>([^<]*)</ETag>", lambda e: "<ETag>" + re.sub(
                r"([0-9a-f]{32})(-\d+)?",
                lambda t: self._opaque_tag(t.group(1), t.group(2) or ""), e.group(1),
                count=1) + "</ETag>", block)

        text = body.decode("utf-8")
        return re.sub(r"<Contents>.*?</Contents>", contents, text, flags=re.S).encode("utf-8")


@pytest.fixture
def s3_proxy(moto: servers.Server, s3_env: Any, azure_env: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[OpaqueMultipartProxy]:
    p = OpaqueMultipartProxy(f"http://127.0.0.1:{moto.port}")
    p.opaque_etags(r"kms-")
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
    yield p
    p.stop()



def _kms_bucket(s3: Any, bucket: str) -> None:
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})


def _flip_at_destination(blob_service: Any, container: str, name: str,
                         with_md5: bool) -> None:
    """Replace the blob by its bytes with one flipped, metadata kept; with a Content-MD5
    that is the MD5 of *those* bytes, or (as a copy by blocks leaves it) none."""
    blob = blob_service.get_blob_client(container, name)
    meta = blob.get_blob_properties().metadata
    data = bytearray(blob_bytes(blob_service, container, name))
    data[len(data) // 3] ^= 1
    if with_md5:
        blob.upload_blob(bytes(data), overwrite=True, metadata=meta,
                         content_settings=ContentSettings(
                             content_md5=bytearray(hashlib.md5(data).digest())))
    else:
        blob.stage_block("YmxvY2sx", bytes(data))
        blob.commit_block_list(["YmxvY2sx"], metadata=meta)


def _copy_and_verify(bucket: str, container: str, tmp_path: Path, proof: str,
                     blob_service: Any, name: str, **copy_kw: Any) -> None:
    """Copy, verify: equal by ``proof``; flip a byte of ``name`` at the destination,
    verify: a checksum difference."""
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/", copy_mode="stream",
                         concurrency=4, **copy_kw)
    assert res.exit_code == 0 and res.failures == [], res.failures
    good = lakeshift.verify(f"s3://{bucket}/d/", f"az://{container}/out/",
                            report=tmp_path / "good")
    assert good.exit_code == 0 and good.differences == 0, good.summary
    assert dict(good.proofs) == {proof: 1}
    assert good.verified == 1
    props = blob_service.get_blob_client(container, name).get_blob_properties()
    kept_md5 = bool(props.content_settings.content_md5)
    # The cheapest proof: one side read (the destination for its CRC32; the source for
    # its MD5 when the blob keeps the service's), both only when the blob keeps no MD5.
    reads = 2 if proof == "read-md5" and not kept_md5 else 1
    assert good.bytes_read == reads * props.size
    _flip_at_destination(blob_service, container, name, with_md5=kept_md5)
    bad = lakeshift.verify(f"s3://{bucket}/d/", f"az://{container}/out/",
                           report=tmp_path / "bad")
    assert bad.exit_code == 1 and bad.checksum == 1 and bad.differences == 1, bad.summary
    assert bad.verified == 0 and dict(bad.proofs) == {}
    with open(bad.report_csv, newline="") as fh:
        assert [(r["name"], r["kind"]) for r in csv.DictReader(fh)] == [
            (name.removeprefix("out/"), "checksum")]


@pytest.mark.parametrize("crc32", ["COMPOSITE", "FULL_OBJECT"])
@pytest.mark.parametrize("single_put_max", [0, None])
def test_sse_kms_multipart_with_a_crc32_is_verified_by_it(
        crc32: str, single_put_max: int | None, s3_proxy: OpaqueMultipartProxy, s3: Any,
        bucket: str, blob_service: Any, container: str, tmp_path: Path) -> None:
    _kms_bucket(s3, bucket)
    data = upload_parts(s3, bucket, "d/kms-mp.bin", [5 * MiB, 5 * MiB, 77], crc32)
    _assert_opaque(bucket, "d/kms-mp.bin", data, [5 * MiB, 5 * MiB, 77])
    kw = {} if single_put_max is None else {"single_put_max": single_put_max}
    _copy_and_verify(bucket, container, tmp_path, "source-crc32", blob_service,
                     "out/kms-mp.bin", block_size=5 * MiB, **kw)


def _assert_opaque(bucket: str, key: str, data: bytes, sizes: list[int]) -> None:
    """The object is SSE-KMS and its ETag, as a client of the proxy (as lakeshift is) sees
    it, is not md5-of-md5s."""
    head = boto3.client("s3").head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    digests, pos = b"", 0
    for n in sizes:
        digests += hashlib.md5(data[pos:pos + n]).digest()
        pos += n
    rebuilt = f'"{hashlib.md5(digests).hexdigest()}-{len(sizes)}"'
    assert head["ETag"].endswith(f'-{len(sizes)}"') and head["ETag"] != rebuilt


@pytest.mark.parametrize("block_size", [MiB, 5 * MiB])
def test_sse_kms_multipart_without_a_checksum_is_verified_by_md5_of_its_bytes(
        block_size: int, s3_proxy: OpaqueMultipartProxy, s3_env: Any, bucket: str,
        s3: Any, blob_service: Any, container: str, tmp_path: Path) -> None:
    # (A client that adds no additional checksum, as SDKs before 2025; straight to moto.)
    plain = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"],
                         config=Config(request_checksum_calculation="when_required"))
    _kms_bucket(s3, bucket)
    sizes = [5 * MiB, 5 * MiB, 5 * MiB, 1000]
    data = upload_parts(plain, bucket, "d/kms-mp.bin", sizes)
    _assert_opaque(bucket, "d/kms-mp.bin", data, sizes)
    assert "ChecksumCRC32" not in s3.head_object(Bucket=bucket, Key="d/kms-mp.bin",
                                                 ChecksumMode="ENABLED")
    _copy_and_verify(bucket, container, tmp_path, "read-md5", blob_service,
                     "out/kms-mp.bin", block_size=block_size)


@pytest.mark.parametrize("crc32", ["COMPOSITE", "FULL_OBJECT"])
def test_a_multipart_etag_that_rebuilds_still_gives_way_to_a_kept_crc32(
        crc32: str, s3_env: Any, azure_env: Any, s3: Any, bucket: str, blob_service: Any,
        container: str, tmp_path: Path) -> None:
    # Both prove it; the CRC32 of the destination's bytes costs less than their part MD5s.
    upload_parts(s3, bucket, "d/mp.bin", [5 * MiB, 5 * MiB, 77], crc32)
    _copy_and_verify(bucket, container, tmp_path, "source-crc32", blob_service,
                     "out/mp.bin", block_size=5 * MiB)


#: Part 1 larger than the others: 4 parts, not ceil(size / part 1) = 3 (nor do the part
#: sizes verify would guess from size and count rebuild the ETag).
UNEQUAL = [6 * MiB, 5 * MiB, 5 * MiB, 123]


@pytest.mark.parametrize("single_put_max", [0, None])
def test_unequal_parts_with_a_full_object_crc32_are_verified_by_it(
        single_put_max: int | None, s3_env: Any, azure_env: Any, s3: Any, bucket: str,
        blob_service: Any, container: str, tmp_path: Path) -> None:
    upload_parts(s3, bucket, "d/mp.bin", UNEQUAL, "FULL_OBJECT")
    kw = {} if single_put_max is None else {"single_put_max": single_put_max}
    _copy_and_verify(bucket, container, tmp_path, "source-crc32", blob_service,
                     "out/mp.bin", block_size=5 * MiB, **kw)


def test_a_pair_proven_by_a_crc32_costs_verify_no_md5(
        s3_env: Any, azure_env: Any, s3: Any, bucket: str, blob_service: Any,
        container: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The destination read back for the source's CRC32 is hashed by that CRC32 alone: an
    MD5 of the same bytes beside it would be a second pass over every byte, for nothing."""
    import hashlib
    import types

    from lakeshift.engine import checksums

    upload_parts(s3, bucket, "d/mp.bin", [5 * MiB, 5 * MiB, 77], "FULL_OBJECT")
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/", copy_mode="stream",
                         concurrency=4, block_size=5 * MiB)
    assert res.exit_code == 0 and res.failures == [], res.failures
    made: list[str] = []

    def md5(*a: Any, **kw: Any) -> Any:
        made.append("md5")
        return hashlib.md5(*a, **kw)

    monkeypatch.setattr(checksums, "hashlib", types.SimpleNamespace(
        md5=md5, new=hashlib.new))
    good = lakeshift.verify(f"s3://{bucket}/d/", f"az://{container}/out/",
                            report=tmp_path / "good")
    assert good.exit_code == 0 and dict(good.proofs) == {"source-crc32": 1}
    assert made == []
