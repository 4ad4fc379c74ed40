"""Over plain HTTP each block sent to Azure carries its CRC64 (``x-ms-content-crc64``), which
the service checks, instead of its MD5: a source proven by its own checksum (an S3 CRC32)
is copied in blocks with no MD5 computed at all.

Azurite (``--loose``) takes the header without checking it, so these tests put
``tests/crc64proxy.Crc64Service`` in front of it: it checks each body against its CRC64 with
the Azure SDK's implementation and refuses a mismatch as the service does (400
Crc64Mismatch).  Faults are injected per kind of request by a FaultProxy in front of that:
a data request changed in transit is refused, retried, and never committed; a listing or
metadata fault is retried as before."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import Iterator
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

import lakeshift
from lakeshift.errors import IntegrityError
from lakeshift.model import ObjectProps
from lakeshift.stores.azure.rest import LeanBlobClient
from tests import servers
from tests.crc64proxy import Crc64Service, md5_only_destination, service_crc64
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes, blobs, upload_parts
from tests.piecewatch import BlockBodies

MiB = 1024 * 1024
PARTS = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                       use_threads=False)


def _connection(url: str) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
            f"AccountKey={servers.AZURITE_KEY};BlobEndpoint={url}/{servers.AZURITE_ACCOUNT};")


@pytest.fixture
def service(azurite: servers.Server, azure_env: dict[str, str],
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Crc64Service]:
    """lakeshift's Azure requests go through the CRC64 check (the test's SDK client,
    ``blob_service``, straight to Azurite)."""
    svc = Crc64Service(f"http://127.0.0.1:{azurite.port}")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", _connection(svc.url))
    yield svc
    svc.stop()


@pytest.fixture
def faults(service: Crc64Service, s3_env: dict[str, str], moto: servers.Server,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    """FaultProxies in front of moto and in front of the checked Azurite (a byte flipped in
    transit reaches the check)."""
    s3p = FaultProxy(f"http://127.0.0.1:{moto.port}")
    azp = FaultProxy(service.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3p.url)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", _connection(azp.url))
    yield s3p, azp
    s3p.stop()
    azp.stop()


def _upload(s3: Any, bucket: str, data: bytes, key: str = "d/mp.bin") -> None:
    s3.upload_fileobj(io.BytesIO(data), bucket, key, Config=PARTS)  # with a CRC32


def _copy(bucket: str, container: str, **kw: Any) -> lakeshift.CopyResult:
    return lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/", copy_mode="stream",
                          block_size=MiB, concurrency=4, **kw)


def _block_puts(svc: Crc64Service) -> list[Any]:
    return [s for s in svc.seen if s.method == "PUT" and "comp=block&" in s.path]


def test_put_block_carries_the_crc64_the_service_checks(service: Crc64Service,
                                                        container: str,
                                                        blob_service: Any) -> None:
    from lakeshift.engine.checksums import crc64nvme

    data = os.urandom(100_003)

    async def main() -> None:
        c = LeanBlobClient(f"{service.url}/{servers.AZURITE_ACCOUNT}",
                           servers.AZURITE_ACCOUNT, container, servers.AZURITE_KEY, None)
        try:
            await c.put_block("k", "block-0", data, None, "k", crc64=crc64nvme(data))
            with pytest.raises(IntegrityError, match=r"different CRC64 \(Crc64Mismatch\)"):
                await c.put_block("k", "block-1", data, None, "k",
                                  crc64=crc64nvme(data + b"x"))
            await c.put_block_list("k", ["block-0"], ObjectProps(), None, {}, "k")
        finally:
            await c.close()

    asyncio.run(main())
    assert [(s.crc64, s.content_md5, s.refused) for s in _block_puts(service)] == [
        (True, False, False), (True, False, True)]
    assert blob_bytes(blob_service, container, "k") == data
    assert service_crc64(data) == service_crc64(bytes(data))


def test_a_crc32_source_goes_in_blocks_each_checked_by_its_crc64_and_nothing_md5_hashed(
        service: Crc64Service, s3: Any, bucket: str, blob_service: Any, container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(12 * MiB + 77)  # 3 parts of 5 MiB, with a CRC32
    _upload(s3, bucket, data)
    hashed: list[int] = []
    real = hashlib.md5

    class CountingMd5:
        def __init__(self, data: bytes = b"", **kw: Any) -> None:
            self._h = real(data, **kw)
            hashed.append(len(data))

        def update(self, data: Any) -> None:
            hashed.append(len(data))
            self._h.update(data)

        def digest(self) -> bytes:
            return self._h.digest()

        def hexdigest(self) -> str:
            return self._h.hexdigest()

    monkeypatch.setattr(hashlib, "md5", CountingMd5)
    res = _copy(bucket, container)
    assert res.exit_code == 0 and res.failures == []
    assert dict(res.proofs) == {"source-crc32": 1}
    assert sum(hashed) == 0, hashed
    puts = _block_puts(service)
    assert len(puts) == 13 and all(p.crc64 and not p.content_md5 for p in puts)
    assert service.refused == 0
    assert blob_bytes(blob_service, container, "out/mp.bin") == data
    # (The blob keeps no Content-MD5: none was computed; it records the source's ETag.)
    assert not blobs(blob_service, container)["out/mp.bin"].content_settings.content_md5

    # Where the destination checks only a block's MD5, the same copy hashes every byte.
    md5_only_destination(monkeypatch)
    res = _copy(bucket, f"{container}", overwrite="always")
    assert res.exit_code == 0 and res.stats.copied == 1
    assert sum(hashed) >= len(data)


@pytest.mark.parametrize(("kind", "times"), [("data", 1), ("data", 1000), ("listing", 1),
                                             ("metadata", 1)])
def test_a_fault_of_one_kind_of_request(kind: str, times: int, service: Crc64Service,
                                        faults: tuple[FaultProxy, FaultProxy], s3: Any,
                                        bucket: str, blob_service: Any, container: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.engine.retry import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "delay", lambda *_: 0.01)
    s3p, azp = faults
    data = os.urandom(10 * MiB + 3)
    _upload(s3, bucket, data)
    if kind == "data":  # a Put Block's body changed on its way to the service
        rule = azp.add("flip_request", request="data", uses=times)
    elif kind == "listing":  # the destination's listing
        rule = azp.fault("listing", 503, times=times)
    else:  # the source's checksum HEAD
        rule = s3p.fault("metadata", 503, times=times)
    res = _copy(bucket, container)
    assert rule.hits >= 1
    if kind == "data" and times > 1:  # refused every time: fails, nothing committed
        assert res.exit_code == 1 and res.stats.copied == 0
        assert [f.error_kind for f in res.failures] == ["integrity"]
        assert "Crc64Mismatch" in res.failures[0].message
        assert "changed in transit" in res.failures[0].message
        assert blobs(blob_service, container) == {}
        assert service.refused >= 1
        return
    assert res.exit_code == 0 and res.failures == [], res.failures
    assert dict(res.proofs) == {"source-crc32": 1}
    assert blob_bytes(blob_service, container, "out/mp.bin") == data
    # Only the changed block was refused; a listing or metadata fault is no CRC64 matter.
    assert service.refused == (1 if kind == "data" else 0)


def test_a_source_proven_by_nothing_but_the_blocks_is_named_service_crc64(
        service: Crc64Service, s3: Any, bucket: str, blob_service: Any,
        container: str) -> None:
    # Under SSE-KMS a multipart ETag proves nothing and this one keeps no checksum: the
    # copy's proof is the service's check of each block, by its CRC64 here.
    data = upload_parts(s3, bucket, "d/mp.bin", [5 * MiB, 5 * MiB, 77],
                        ServerSideEncryption="aws:kms")
    res = _copy(bucket, container, single_put_max=0)
    assert res.exit_code == 0 and res.failures == []
    assert dict(res.proofs) == {"service-crc64": 1}
    assert all(p.crc64 and not p.content_md5 for p in _block_puts(service))
    assert blob_bytes(blob_service, container, "out/mp.bin") == data


def test_a_block_is_hashed_and_sent_in_the_pieces_the_socket_delivered(
        service: Crc64Service, s3: Any, bucket: str, blob_service: Any, container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No byte of a block is copied in Python between the GET and its Put Block: every
    buffer a Put Block sends is one of the very bytes objects the GET's connection put in
    its body buffer (the block is never joined), and each block's CRC64, chained over the
    pieces, is the one the service checks."""
    data = os.urandom(12 * MiB + 77)  # 3 parts of 5 MiB, with a CRC32
    _upload(s3, bucket, data)
    watch = BlockBodies(monkeypatch)
    res = _copy(bucket, container)
    assert res.exit_code == 0 and dict(res.proofs) == {"source-crc32": 1}
    watch.assert_never_joined(13)
    assert sum(len(p) for body in watch.bodies for p in body) == len(data)
    assert service.refused == 0 and all(p.crc64 for p in _block_puts(service))
    assert blob_bytes(blob_service, container, "out/mp.bin") == data
