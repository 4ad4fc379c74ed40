"""Faults injected between lakeshift and the emulators (tests/faultproxy.py): throttling
bursts with Retry-After, resets and truncation mid-body, slow bodies, flipped bytes in
either direction.  After each run the destination equals the source by checksum, nothing
partial is visible, and the failure list is exact."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

import lakeshift
from tests import servers
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes, blobs

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message></Error>")
SERVER_BUSY = (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
               b"<Message>The server is busy.</Message></Error>")


@pytest.fixture
def s3_proxy(moto: servers.Server) -> Iterator[FaultProxy]:
    p = FaultProxy(f"http://127.0.0.1:{moto.port}")
    yield p
    p.stop()


@pytest.fixture
def az_proxy(azurite: servers.Server) -> Iterator[FaultProxy]:
    p = FaultProxy(f"http://127.0.0.1:{azurite.port}")
    yield p
    p.stop()


@pytest.fixture
def via_proxies(s3_env: Any, azure_env: Any, s3_proxy: FaultProxy, az_proxy: FaultProxy,
                monkeypatch: pytest.MonkeyPatch) -> tuple[FaultProxy, FaultProxy]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_proxy.url)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
        f"AccountKey={servers.AZURITE_KEY};"
        f"BlobEndpoint={az_proxy.url}/{servers.AZURITE_ACCOUNT};"))
    return s3_proxy, az_proxy


def _seed(s3: Any, bucket: str) -> dict[str, bytes]:
    objs = {f"d/small-{i}.bin": os.urandom(2000 + i) for i in range(8)}
    objs["d/large.bin"] = os.urandom(5 * MiB + 333)  # single part: its ETag is its MD5
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    return objs


def _assert_exact(blob_service: Any, container: str, objs: dict[str, bytes]) -> None:
    got = blobs(blob_service, container, "out/")
    assert set(got) == {"out/" + k[2:] for k in objs}  # nothing partial, nothing extra
    for k, v in objs.items():
        name = "out/" + k[2:]
        assert blob_bytes(blob_service, container, name) == v, name
        assert bytes(got[name].content_settings.content_md5) == hashlib.md5(v).digest()


#: The large object goes as parallel blocks, or streamed into one service-checked Put Blob.
PATHS = ["blocks", "stream"]
#: What the large object's upload looks like to the proxy on each path.
LARGE_PUT = {"blocks": r"comp=block&", "stream": r"/out/large"}


def _copy(bucket: str, container: str, path: str) -> lakeshift.CopyResult:
    return lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                          copy_mode="stream", block_size=MiB,
                          single_put_max=0 if path == "blocks" else 64 * MiB, concurrency=4)


@pytest.mark.parametrize("path", PATHS)
def test_throttling_bursts_are_retried_honouring_retry_after(
        path: str, via_proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str,
        blob_service: Any, container: str) -> None:
    s3p, azp = via_proxies
    objs = _seed(s3, bucket)
    s3p.add("status", method="GET", path=r"/d/", uses=3, status=503,
            headers={"Retry-After": "1"}, body=SLOWDOWN)
    azp.add("status", method="PUT", path=r"/out/small", uses=3, status=503,
            headers={"Retry-After": "1", "x-ms-error-code": "ServerBusy"}, body=SERVER_BUSY)
    azp.add("status", method="PUT", path=LARGE_PUT[path], uses=2, status=429,
            headers={"x-ms-error-code": "ServerBusy"})
    res = _copy(bucket, container, path)
    assert res.exit_code == 0 and res.failures == []
    assert s3p.injected == 3 and azp.injected == 5
    _assert_exact(blob_service, container, objs)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["reset", "truncate", "slow"])
def test_broken_and_slow_bodies(kind: str, path: str, via_proxies: tuple[FaultProxy, FaultProxy],
                                s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    s3p, _ = via_proxies
    objs = _seed(s3, bucket)
    s3p.add(kind, method="GET", path=r"/d/small-3", uses=1)
    s3p.add(kind, method="GET", path=r"/d/large", uses=2)
    res = _copy(bucket, container, path)
    assert res.exit_code == 0 and res.failures == []
    # The streamed path reads the large object in one GET: a slow body is not retried.
    assert s3p.injected == (2 if (path, kind) == ("stream", "slow") else 3)
    _assert_exact(blob_service, container, objs)


@pytest.mark.parametrize("path", PATHS)
def test_a_flipped_byte_is_caught_and_the_object_copied_again(
        path: str, via_proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str,
        blob_service: Any, container: str) -> None:
    s3p, azp = via_proxies
    objs = _seed(s3, bucket)
    s3p.add("flip", method="GET", path=r"/d/small-5", uses=1)  # damaged on the way in
    s3p.add("flip", method="GET", path=r"/d/large", uses=1)
    azp.add("flip_request", method="PUT", path=r"/out/small-6", uses=1)  # on the way out
    azp.add("flip_request", method="PUT", path=LARGE_PUT[path], uses=1)
    res = _copy(bucket, container, path)
    assert res.failures == [] and res.exit_code == 0
    assert s3p.injected == 2 and azp.injected == 2
    _assert_exact(blob_service, container, objs)


def test_a_persistent_error_fails_only_that_object_and_is_logged_exactly(
        via_proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str) -> None:
    s3p, _ = via_proxies
    objs = _seed(s3, bucket)
    s3p.add("status", method="GET", path=r"/d/small-2", uses=100, status=403,
            body=b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>")
    s3p.add("flip", method="GET", path=r"/d/small-4", uses=100)  # corrupt every time
    res = _copy(bucket, container, "stream")
    assert res.exit_code == 1
    assert sorted((f.object_key, f.error_kind) for f in res.failures) == [
        ("d/small-2.bin", "forbidden"), ("d/small-4.bin", "integrity")]
    f4 = next(f for f in res.failures if f.object_key == "d/small-4.bin")
    assert f4.attempts == 6 and "MD5" in f4.message
    del objs["d/small-2.bin"], objs["d/small-4.bin"]
    _assert_exact(blob_service, container, objs)


def test_ten_percent_503s_adapt_the_concurrency_and_lose_nothing(
        via_proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str) -> None:
    _, azp = via_proxies
    objs = {f"d/t{i:03d}.bin": os.urandom(500) for i in range(150)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    azp.add("status", method="PUT", path=r"/out/", uses=10_000, probability=0.1, status=503,
            headers={"x-ms-error-code": "ServerBusy"}, body=SERVER_BUSY)
    throttles: list[int] = []

    def watch(event: object) -> None:
        if isinstance(event, lakeshift.Throttled):
            throttles.append(event.limit)

    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                         copy_mode="stream", concurrency=16,
                         subscribers=[watch])
    assert res.exit_code == 0 and res.failures == []
    assert res.stats.throttled == azp.injected > 5
    assert min(throttles) < 16  # the destination's limit came down
    got = blobs(blob_service, container, "out/")
    assert len(got) == 150
    assert all(bytes(got["out/" + k[2:]].content_settings.content_md5) ==
               hashlib.md5(v).digest() for k, v in objs.items())


def test_a_stalled_streamed_upload_is_given_up_and_sent_again(
        via_proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.stores.azure.rest import LeanBlobClient

    monkeypatch.setattr(LeanBlobClient, "stall_seconds", 1.5)
    _, azp = via_proxies
    objs = {"d/big.bin": os.urandom(32 * MiB)}  # more than the sockets' buffers hold
    s3.put_object(Bucket=bucket, Key="d/big.bin", Body=objs["d/big.bin"])
    # Never answered within the test's time: only giving up on the stall lets it finish.
    azp.add("stall_request", method="PUT", path=r"/out/big", uses=1, delay=3600)
    res = _copy(bucket, container, "stream")
    assert res.exit_code == 0 and res.failures == []
    assert azp.injected == 1
    _assert_exact(blob_service, container, objs)
