"""S3 multipart sources (no MD5 of their own) copied to Azure in one streamed Put Blob
without Content-MD5: the source side is proven by the object's additional checksum, or by
its multipart ETag rebuilt from its parts, and the transit by the MD5 Azure computed of what
it stored against the MD5 of the bytes sent (plain HTTP here).  A byte changed on either
side is caught, the object copied again, never reported copied while wrong."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

import lakeshift
from tests import servers
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes, blobs

MiB = 1024 * 1024
PARTS = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                       use_threads=False)


def _upload(s3: Any, bucket: str, key: str, data: bytes) -> None:
    s3.upload_fileobj(io.BytesIO(data), bucket, key, Config=PARTS)


@pytest.fixture
def s3_plain(s3_env: dict[str, str]) -> Any:
    """A client that adds no additional checksum (as SDKs before 2025 did)."""
    return boto3.client("s3", config=Config(request_checksum_calculation="when_required"))


@pytest.fixture
def proxies(s3_env: Any, azure_env: Any, moto: servers.Server, azurite: servers.Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    s3p = FaultProxy(f"http://127.0.0.1:{moto.port}")
    azp = FaultProxy(f"http://127.0.0.1:{azurite.port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3p.url)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
        f"AccountKey={servers.AZURITE_KEY};"
        f"BlobEndpoint={azp.url}/{servers.AZURITE_ACCOUNT};"))
    yield s3p, azp
    s3p.stop()
    azp.stop()


def _copy(bucket: str, container: str) -> lakeshift.CopyResult:
    return lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                          copy_mode="stream", block_size=MiB,
                          concurrency=4)


def _assert_copied(blob_service: Any, container: str, name: str, data: bytes) -> None:
    got = blobs(blob_service, container, "out/")
    assert blob_bytes(blob_service, container, name) == data
    assert bytes(got[name].content_settings.content_md5) == hashlib.md5(data).digest()


def test_multipart_with_crc32_is_proven_by_it(s3: Any, bucket: str, blob_service: Any,
                                              container: str) -> None:
    data = os.urandom(12 * MiB + 77)  # 3 parts of 5 MiB
    _upload(s3, bucket, "d/mp.bin", data)
    assert s3.head_object(Bucket=bucket, Key="d/mp.bin", ChecksumMode="ENABLED")["ChecksumCRC32"]
    res = _copy(bucket, container)
    assert res.exit_code == 0 and res.failures == []
    assert dict(res.proofs) == {"source-crc32": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data)


def test_multipart_without_checksum_is_proven_by_its_etag(
        s3_plain: Any, bucket: str, blob_service: Any, container: str) -> None:
    data = os.urandom(11 * MiB + 5)
    _upload(s3_plain, bucket, "d/mp.bin", data)
    head = s3_plain.head_object(Bucket=bucket, Key="d/mp.bin", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in head and head["ETag"].endswith('-3"')
    s3_plain.put_object(Bucket=bucket, Key="d/small.bin", Body=b"x" * 100)
    res = _copy(bucket, container)
    assert res.exit_code == 0 and res.failures == []
    assert dict(res.proofs) == {"multipart-etag": 1, "source-md5": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data)


@pytest.mark.parametrize("checksum", ["crc32", "none"])
@pytest.mark.parametrize("side", ["source", "destination"])
def test_a_byte_changed_in_transit_is_caught_and_copied_again(
        checksum: str, side: str, proxies: tuple[FaultProxy, FaultProxy], s3: Any,
        s3_plain: Any, bucket: str, blob_service: Any, container: str) -> None:
    s3p, azp = proxies
    data = os.urandom(10 * MiB + 3)
    _upload(s3 if checksum == "crc32" else s3_plain, bucket, "d/mp.bin", data)
    if side == "source":
        s3p.add("flip", method="GET", path=r"/d/mp\.bin", uses=1)
    else:
        azp.add("flip_request", method="PUT", path=r"/out/mp\.bin", uses=1)
    res = _copy(bucket, container)
    assert res.exit_code == 0 and res.failures == []
    assert (s3p if side == "source" else azp).injected == 1
    assert dict(res.proofs) == {"source-crc32" if checksum == "crc32" else "multipart-etag": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data)


def test_a_copy_that_stays_corrupt_fails_and_leaves_nothing(
        proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str) -> None:
    _, azp = proxies
    _upload(s3, bucket, "d/mp.bin", os.urandom(10 * MiB + 3))
    azp.add("flip_request", method="PUT", path=r"/out/mp\.bin", uses=1000)
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                         copy_mode="stream", block_size=MiB,
                         concurrency=4)
    assert res.exit_code == 1 and res.stats.copied == 0
    assert [f.error_kind for f in res.failures] == ["integrity"]
    assert "changed in transit" in res.failures[0].message
    assert blobs(blob_service, container, "out/") == {}
