"""The bench's moto (bench/moto_keepalive.py) keeps connections alive and still answers as
moto: bodies, HEADs, errors and multipart uploads as ``moto_server`` gives them."""

from __future__ import annotations

import http.client
import io
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402


@pytest.fixture(scope="module")
def moto_pair():  # type: ignore[no-untyped-def]
    servers = {mode: common.start_moto(mode) for mode in common.MOTO_MODES}
    try:
        yield servers
    finally:
        for srv in servers.values():
            srv.stop()


def _client(port: int):  # type: ignore[no-untyped-def]
    import boto3
    from boto3.s3.transfer import TransferConfig

    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench-secret")
    s3.create_bucket(Bucket="bench")
    s3.put_object(Bucket="bench", Key="a b&c.bin", Body=b"x" * 5000)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024,
                         multipart_chunksize=5 * 1024 * 1024, use_threads=False)
    s3.upload_fileobj(io.BytesIO(b"y" * (11 * 1024 * 1024)), "bench", "big.bin", Config=cfg)
    return s3


def test_one_connection_carries_many_requests(moto_pair) -> None:  # type: ignore[no-untyped-def]
    port = moto_pair["keepalive"].port
    s3 = _client(port)
    url = s3.generate_presigned_url("get_object", {"Bucket": "bench", "Key": "a b&c.bin"})
    target = url.split(f":{port}", 1)[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.connect()
    sock = conn.sock
    for _ in range(3):
        conn.request("GET", target)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b"x" * 5000
        assert resp.getheader("Connection") is None
    conn.request("GET", "/bench/no-such-key")
    resp = conn.getresponse()
    assert resp.status in (403, 404) and b"<Code>" in resp.read()
    head = s3.generate_presigned_url("head_object", {"Bucket": "bench", "Key": "big.bin"},
                                     HttpMethod="HEAD")
    conn.request("HEAD", head.split(f":{port}", 1)[1])
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == str(11 * 1024 * 1024)
    assert resp.read() == b""
    conn.request("GET", target)  # after a HEAD, the connection is still in step
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"x" * 5000
    assert conn.sock is sock  # never reconnected
    conn.close()


def test_answers_as_moto_server_does(moto_pair) -> None:  # type: ignore[no-untyped-def]
    seen = {}
    for mode, srv in moto_pair.items():
        s3 = _client(srv.port)
        listing = s3.list_objects_v2(Bucket="bench")
        big = s3.get_object(Bucket="bench", Key="big.bin")
        seen[mode] = ([(o["Key"], o["Size"], o["ETag"]) for o in listing["Contents"]],
                      big["Body"].read() == b"y" * (11 * 1024 * 1024), big["ETag"])
    assert seen["keepalive"] == seen["close"]
    assert seen["close"][2].endswith('-3"')
