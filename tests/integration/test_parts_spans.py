"""A copy by parts over the real wire (moto -> Azurite, plain HTTP) whose spans hold
several parts (engine/transfer_parts.py): 16 slots of 5 MiB, parts of 5 MiB (2 slots each,
read whole), so a span is two parts.  Each part cut where it ends inside a received buffer
is sent as memoryview slices of it; a reset at a part's end and then inside a part resumes
at the byte where it broke; a byte flipped in a later span's GET is caught."""

from __future__ import annotations

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
from tests.helpers import blob_bytes
from tests.piecewatch import BlockBodies

MiB = 1024 * 1024
PART = 5 * MiB


@pytest.fixture
def s3p(s3_env: Any, azure_env: Any, moto: servers.Server,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    proxy = FaultProxy(f"http://127.0.0.1:{moto.port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.stop()


def _upload(s3_env: Any, bucket: str, size: int) -> bytes:
    # (No additional checksum: the multipart ETag is the only proof.)
    s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"],
                      config=Config(request_checksum_calculation="when_required"))
    data = os.urandom(size)
    s3.upload_fileobj(io.BytesIO(data), bucket, "d/mp.bin", Config=TransferConfig(
        multipart_threshold=PART, multipart_chunksize=PART, use_threads=False))
    return data


def _copy(bucket: str, container: str) -> lakeshift.CopyResult:
    return lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/", copy_mode="stream",
                          block_size=PART, concurrency=16)


def _data_gets(proxy: FaultProxy) -> int:
    return sum(1 for method, path, _ in proxy.seen
               if method == "GET" and path.startswith("/") and "mp.bin" in path
               and "?" not in path)


def test_parts_cut_from_spans_are_sent_as_the_buffers_received(
        s3_env: Any, bucket: str, blob_service: Any, container: str,
        s3p: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _upload(s3_env, bucket, 4 * PART + 123)  # 5 parts: spans of 2, 2, 1
    watch = BlockBodies(monkeypatch)
    res = _copy(bucket, container)
    assert res.exit_code == 0 and res.failures == [] and dict(res.proofs) == {
        "multipart-etag": 1}
    assert blob_bytes(blob_service, container, "out/mp.bin") == data
    watch.assert_never_joined(5)
    assert _data_gets(s3p) == 3


def test_a_span_reset_at_a_part_end_then_inside_a_part_resumes_where_it_broke(
        s3_env: Any, bucket: str, blob_service: Any, container: str,
        s3p: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.stores.s3.store import S3Store

    data = _upload(s3_env, bucket, 2 * PART)  # one span of two parts
    ranges: list[tuple[int, int, str | None]] = []
    real = S3Store.open_range

    async def open_range(self: Any, key: str, start: int, end: int,
                         if_match: str | None = None) -> Any:
        ranges.append((start, end, if_match))
        return await real(self, key, start, end, if_match)

    monkeypatch.setattr(S3Store, "open_range", open_range)
    # The span's GET is reset after half its body is sent (part 1's end; a reset loses
    # what was in flight), the resumed GET after half of its own; the third reads the rest.
    s3p.add("reset", method="GET", request="data", uses=2)
    res = _copy(bucket, container)
    assert res.exit_code == 0 and res.failures == []
    assert blob_bytes(blob_service, container, "out/mp.bin") == data
    assert s3p.injected == 2 and _data_gets(s3p) == 3
    (a, *_), (b, end_b, etag_b), (c, end_c, etag_c) = ranges
    # Each resumed at the byte where the last broke (never the span's start), to the
    # span's end, under the same If-Match.
    assert a == 0 < b < c < 2 * PART and end_b == end_c == 2 * PART
    assert etag_b == etag_c == ranges[0][2] is not None


def test_a_byte_flipped_in_a_later_spans_get_is_caught_and_copied_again(
        s3_env: Any, bucket: str, blob_service: Any, container: str,
        s3p: FaultProxy) -> None:
    data = _upload(s3_env, bucket, 4 * PART)  # spans of parts 1-2 and 3-4
    s3p.add("pass", method="GET", request="data", uses=1)  # span 1
    s3p.add("flip", method="GET", request="data", uses=1)  # span 2
    res = _copy(bucket, container)
    assert res.exit_code == 0 and res.failures == [] and dict(res.proofs) == {
        "multipart-etag": 1}
    assert blob_bytes(blob_service, container, "out/mp.bin") == data
    assert s3p.injected == 2 and _data_gets(s3p) > 2  # the object read again


@pytest.mark.timeout(30)
def test_spans_of_parts_never_hang_on_a_pool_of_one_connection(
        s3_env: Any, bucket: str, blob_service: Any, container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The S3 reads' pool (wire.Pool: further requests wait for a connection) cut to one,
    # 40 slots of 1 MiB, parts of 5 MiB (10 slots each): a span that waited for its next
    # part's slots while holding the connection, and spans holding all the slots while
    # waiting for it, hung the copy (tests/unit/test_parts_spans.py: the same with a
    # stand-in pool).
    from lakeshift.stores.s3 import reads

    real = reads.S3Reads.__init__

    def one(self: Any, *args: Any, **kw: Any) -> None:
        real(self, *args, **{**kw, "connections": 1})

    monkeypatch.setattr(reads.S3Reads, "__init__", one)
    data = _upload(s3_env, bucket, 10 * PART)
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/", copy_mode="stream",
                         block_size=MiB, concurrency=40)
    assert res.exit_code == 0 and res.failures == [] and dict(res.proofs) == {
        "multipart-etag": 1}
    assert blob_bytes(blob_service, container, "out/mp.bin") == data
