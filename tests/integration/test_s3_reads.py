"""The S3 store's own request paths against moto: listing timestamps (stores/s3/timestamps.py)
and, once on wire, GETs (stores/s3/store.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import lakeshift
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store


@asynccontextmanager
async def _store(url: str, **options: Any) -> AsyncIterator[Any]:
    store = open_store(StoreConfig(lakeshift.parse_url(url), StoreOptions(**options)))
    try:
        yield store
    finally:
        await store.close()


def test_listing_timestamps_do_not_go_through_dateutil(
        s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """LastModified of a page equals what boto3 says, parsed without dateutil's parser."""
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"t/{i}", Body=b"x" * i)
    expected = {o["Key"]: o["LastModified"] for o in
                s3.list_objects_v2(Bucket=bucket, Prefix="t/")["Contents"]}
    import dateutil.parser

    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError(f"dateutil parsed {a!r}")

    monkeypatch.setattr(dateutil.parser, "parse", refuse)

    async def main() -> dict[str, Any]:
        async with _store(f"s3://{bucket}/t/") as store:
            page = await store.list_page("t/")
            return {o.key: o.last_modified for o in page.objects}

    got = asyncio.run(main())
    assert got == expected and all(v.utcoffset() is not None for v in got.values())


# -- GETs through wire, against the obstore path they replace (a differential test) ----

KEYS = ["plain.txt", "with space/and+plus.csv", "ünïcødé/日本語.bin", "pct%41~tilde=eq&amp",
        "sym!$'()*,;:@[]", "trailing.", "#hash?q"]
# Keys only the wire path can name (obstore refuses empty and dot segments, control chars).
ODD_KEYS = ["double//slash", "/leading", "dots/./x", "up/../x", "tab\there", "end/"]
PROPS: dict[str, Any] = {
    "ContentType": "application/x-parquet", "ContentEncoding": "gzip",
    "CacheControl": "max-age=60, private", "ContentDisposition": 'attachment; filename="a b"',
    "ContentLanguage": "de-CH",
    "Metadata": {"owner": "team-a", "Mixed-Case": "Value  With  Spaces", "dots.in.name": "1"},
}


def _obstore(store: Any) -> Any:
    from lakeshift.stores.obstore_stream import open_range, read

    return read, open_range


def _seed(s3: Any, bucket: str, keys: list[str]) -> dict[str, bytes]:
    import os

    objs = {}
    for i, key in enumerate(keys):
        data = os.urandom(1000 + 997 * i)
        s3.put_object(Bucket=bucket, Key=key, Body=data, **(PROPS if i % 2 == 0 else {}))
        objs[key] = data
    return objs


def _same(a: Any, b: Any) -> None:
    assert (bytes(a.data), a.props, a.size, a.etag) == (bytes(b.data), b.props, b.size, b.etag)


def test_reads_equal_obstores(s3: Any, bucket: str) -> None:
    objs = _seed(s3, bucket, KEYS)
    ob_read, ob_range = _obstore(None)

    async def main() -> None:
        async with _store(f"s3://{bucket}/") as store:
            what = f"s3://{bucket}/"
            for key, data in objs.items():
                etag = s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
                ours = await store.read(key)
                theirs = await ob_read(store._ob, key, None, None, None, what + key)
                _same(ours, theirs)
                assert bytes(ours.data) == data and isinstance(ours.data, memoryview)
                for start, end in ((0, 1), (10, 500), (len(data) - 7, len(data)),
                                   (5, len(data) + 100)):
                    ours = await store.read(key, start, end, etag)
                    theirs = await ob_read(store._ob, key, start, end, etag, what + key)
                    _same(ours, theirs)
                    assert bytes(ours.data) == data[start:end]
                    r1 = await store.open_range(key, start, end, etag)
                    r2 = await ob_range(store._ob, key, start, end, etag, what + key)
                    assert (r1.size, r1.etag, r1.props) == (r2.size, r2.etag, r2.props)
                    got = [c async for c in r1.chunks(64)]
                    assert b"".join(got) == data[start:end]
                    assert all(len(c) >= 64 for c in got[:-1])
                    assert b"".join([c async for c in r2.chunks(64)]) == data[start:end]

    asyncio.run(main())


def test_read_errors_equal_obstores(s3: Any, bucket: str) -> None:
    """A missing key and a changed object (If-Match) are the same errors either way."""
    from lakeshift.errors import ChangedError, NotFoundError

    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    ob_read, _ = _obstore(None)

    async def outcome(call: Any) -> Any:
        try:
            await call
        except Exception as e:
            return type(e), str(e)
        return None

    async def main() -> None:
        async with _store(f"s3://{bucket}/") as store:
            for key, if_match, kind in (("missing", None, NotFoundError),
                                        ("k", "0" * 32, ChangedError)):
                what = f"s3://{bucket}/{key}"
                ours = await outcome(store.read(key, 0, 2, if_match))
                theirs = await outcome(ob_read(store._ob, key, 0, 2, if_match, what))
                assert ours == theirs and ours[0] is kind
                assert await outcome(store.open_range(key, 0, 2, if_match)) == ours

    asyncio.run(main())


def test_keys_obstore_cannot_name_are_read_through_wire_too(s3: Any, bucket: str) -> None:
    objs = _seed(s3, bucket, ODD_KEYS)

    async def main() -> None:
        async with _store(f"s3://{bucket}/") as store:
            for key, data in objs.items():
                got = await store.read(key)
                assert bytes(got.data) == data and got.size == len(data)
                head = s3.head_object(Bucket=bucket, Key=key)
                assert got.etag == head["ETag"].strip('"')
                assert got.props.metadata == head["Metadata"]
                rng = await store.open_range(key, 3, 900)
                assert b"".join([c async for c in rng.chunks(100)]) == data[3:900]

    asyncio.run(main())


@pytest.fixture
def checking_moto(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A moto that checks SigV4 signatures (with botocore's S3SigV4Auth, on the request as
    it arrived) for an IAM user made in its first unauthenticated requests (the start-up
    probe, then three)."""
    import json
    import tempfile
    from pathlib import Path

    import boto3

    from tests import servers

    workdir = Path(tempfile.mkdtemp(prefix="lakeshift-moto-auth-"))
    port = servers.free_port()
    moto_bin = Path(servers.REPO / ".venv" / "bin" / "moto_server")
    proc, log = servers._spawn("moto", [str(moto_bin), "-H", "127.0.0.1", "-p", str(port)],
                               workdir, {"INITIAL_NO_AUTH_ACTION_COUNT": "4"})
    srv = servers.Server("moto", port, proc, workdir, log)
    servers._wait_or_stop(srv, f"http://127.0.0.1:{port}/")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="x")
        iam.create_user(UserName="reader")
        iam.put_user_policy(UserName="reader", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        yield boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"])
    finally:
        srv.stop()


def test_a_service_that_checks_signatures_takes_ours_and_refuses_a_wrong_secret(
        checking_moto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.errors import AuthError

    s3 = checking_moto
    s3.create_bucket(Bucket="signed")
    keys = ["plain.txt", "with space/and+plus.csv", "ünï/日本.bin", "x~y=z&w"]
    for k in keys:
        s3.put_object(Bucket="signed", Key=k, Body=k.encode() * 100)

    async def read_all() -> dict[str, bytes]:
        async with _store("s3://signed/", s3_request_payer="requester") as store:
            out = {}
            for k in keys:
                out[k] = bytes((await store.read(k)).data)
                rng = await store.open_range(k, 2, 50, None)
                assert b"".join([c async for c in rng.chunks(8)]) == out[k][2:50]
            return out

    assert asyncio.run(read_all()) == {k: k.encode() * 100 for k in keys}

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-wrong-secret-never-printed")
    with pytest.raises(AuthError) as err:
        asyncio.run(read_all())
    message = str(err.value)
    assert "credentials rejected (SignatureDoesNotMatch)" in message
    assert "a-wrong-secret" not in message and "Signature=" not in message


def test_chunks_larger_than_what_wire_buffers_arrive(
        s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A block larger than wire's unconsumed-bytes limit (it stops reading the socket past
    it) is still delivered whole, not waited for until the stall limit."""
    import os

    from lakeshift.stores import http, wire

    monkeypatch.setattr(http, "STALL_SECONDS", 3.0)
    data = os.urandom(3 * wire.MAX_BUFFERED + 11)
    s3.put_object(Bucket=bucket, Key="big", Body=data)

    async def main() -> list[bytes]:
        async with _store(f"s3://{bucket}/") as store:
            rng = await store.open_range("big", 0, len(data))
            return [c async for c in rng.chunks(2 * wire.MAX_BUFFERED)]

    chunks = asyncio.run(main())
    assert b"".join(chunks) == data
    assert all(len(c) >= 2 * wire.MAX_BUFFERED for c in chunks[:-1])


@pytest.mark.parametrize("what", [503, "reset", "truncate"])
def test_faulted_data_gets_still_copy_byte_exact(
        what: Any, moto: Any, s3: Any, bucket: str, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only data GETs are faulted (whole reads and ranged blocks); listings pass."""
    import os

    from tests.faultproxy import FaultProxy

    objs = {f"d/small-{i}": os.urandom(3000 + i) for i in range(6)}
    objs["d/large"] = os.urandom(5 * 1024 * 1024 + 3)
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    proxy = FaultProxy(f"http://127.0.0.1:{moto.port}")
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        proxy.fault("data", what, times=2, path=r"/d/small-")
        proxy.fault("data", what, times=2, path=r"/d/large")
        res = lakeshift.copy(f"s3://{bucket}/d/", str(tmp_path / "out"), block_size=1024 * 1024,
                             single_put_max=1024 * 1024, concurrency=4)
        assert res.exit_code == 0 and res.failures == []
        assert proxy.injected == 4
    finally:
        proxy.stop()
    for k, v in objs.items():
        assert (tmp_path / "out" / k[2:]).read_bytes() == v
