"""stores/s3/reads.py on a scripted loopback server (tests/wireserver.py): the request S3
gets (path, signed headers, Range, If-Match, request payer), S3's error answers mapped into
the lakeshift tree as the botocore path maps them, and failures on the wire (reset, cut
short, stalled) as retryable errors that never show the signature."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from lakeshift.errors import (
    ArchivedError,
    AuthError,
    ChangedError,
    ForbiddenError,
    LakeshiftError,
    MissingContainerError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UsageError,
)
from lakeshift.stores import http
from lakeshift.stores.s3.auth import AwsSettings
from lakeshift.stores.s3.reads import S3Reads
from tests.wireserver import WireServer

SECRET = "unit-test-secret-never-shown"


@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer() as s:
        yield s


def _reads(endpoint: str | None, anonymous: bool = False, payer: bool = False,
           region: str = "us-east-1", bucket: str = "bkt") -> S3Reads:
    creds = None if anonymous else Credentials("AKIDTEST", SECRET, "session-token-xyz")
    return S3Reads(AwsSettings(endpoint, region, creds, None), bucket, payer)


def _run(reads: S3Reads, call: Any) -> Any:
    async def main() -> Any:
        try:
            return await call(reads)
        finally:
            await reads.close()

    return asyncio.run(main())


def _xml(code: str, message: str = "", extra: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message>{extra}<RequestId>r</RequestId></Error>").encode()


def test_the_request_is_signed_and_carries_range_if_match_and_payer(
        server: WireServer) -> None:
    server.objects["/bkt/dir/a b+c"] = b"0123456789"
    server.add("answer", method="GET", status=206, body=b"2345",
               headers=[("Content-Range", "bytes 2-5/10"), ("ETag", '"abc"'),
                        ("Content-Type", "text/plain"), ("x-amz-meta-Owner", "me"),
                        ("x-amz-storage-class", "STANDARD")])
    reads = _reads(server.url, payer=True)
    got = _run(reads, lambda r: r.read("dir/a b+c", 2, 6, "abc"))
    assert (bytes(got.data), got.size, got.etag) == (b"2345", 10, "abc")
    assert got.props.content_type == "text/plain" and got.props.metadata == {"Owner": "me"}
    seen = server.requests[-1]
    assert seen.target == "/bkt/dir/a%20b%2Bc"
    h = {k.lower(): v for k, v in seen.headers}
    assert h["range"] == "bytes=2-5" and h["if-match"] == '"abc"'
    assert h["x-amz-request-payer"] == "requester"
    assert h["x-amz-security-token"] == "session-token-xyz"
    assert h["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
    signed = h["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "range", "if-match", "x-amz-request-payer", "x-amz-date",
            "x-amz-content-sha256", "x-amz-security-token"} <= set(signed)


def test_anonymous_requests_are_not_signed(server: WireServer) -> None:
    server.objects["/bkt/k"] = b"data"
    got = _run(_reads(server.url, anonymous=True), lambda r: r.read("k", None, None, None))
    assert bytes(got.data) == b"data" and got.size == 4
    names = {k.lower() for k, _ in server.requests[-1].headers}
    assert "authorization" not in names and "x-amz-date" not in names


def test_endpoints_as_obstore_resolved_them() -> None:
    aws = _reads(None, region="eu-west-1")
    assert (aws.origin, aws.prefix) == ("https://bkt.s3.eu-west-1.amazonaws.com", "/")
    dotted = _reads(None, region="eu-west-1", bucket="my.bucket")
    assert (dotted.origin, dotted.prefix) == ("https://s3.eu-west-1.amazonaws.com",
                                              "/my.bucket/")
    custom = _reads("https://minio.example:9000/base/", bucket="b")
    assert (custom.origin, custom.prefix, custom.host) == (
        "https://minio.example:9000", "/base/b/", "minio.example:9000")


CASES = [
    (404, _xml("NoSuchKey", "The specified key does not exist."), NotFoundError, "not found"),
    (404, _xml("NoSuchBucket"), MissingContainerError, "bucket does not exist"),
    (412, _xml("PreconditionFailed"), ChangedError, "changed during the copy"),
    (403, _xml("InvalidObjectState", "not valid for the storage class"), ArchivedError,
     "--skip-errors archived"),
    (403, _xml("SignatureDoesNotMatch", "The request signature we calculated..."), AuthError,
     "AWS credentials rejected (SignatureDoesNotMatch)"),
    (403, _xml("InvalidAccessKeyId"), AuthError, "AWS_ACCESS_KEY_ID"),
    (403, _xml("ExpiredToken"), AuthError, "credentials rejected (ExpiredToken)"),
    (403, _xml("AccessDenied", "Access Denied"), ForbiddenError, "access denied (AccessDenied)"),
    (403, b"", ForbiddenError, "access denied (403)"),
    (503, _xml("SlowDown", "Please reduce your request rate."), ThrottledError,
     "throttled (SlowDown)"),
    (500, _xml("InternalError"), TransientError, "server error 500 (InternalError)"),
    (500, b"", TransientError, "server error 500"),  # (no code: no empty parentheses)
    (416, _xml("InvalidRange"), ChangedError, "416 InvalidRange"),
    (301, _xml("PermanentRedirect", "The bucket you are attempting to access must be "
                                    "addressed using the specified endpoint."),
     UsageError, "must be addressed using the specified endpoint. (the bucket is in "
                 "eu-west-1, not us-east-1): pass --s3-region eu-west-1"),
    (400, _xml("AuthorizationHeaderMalformed", "The authorization header is malformed; the "
               "region 'us-east-1' is wrong; expecting 'eu-west-1'",
               "<Region>eu-west-1</Region>"),
     UsageError, "expecting 'eu-west-1' (the bucket is in eu-west-1, not us-east-1): pass "
                 "--s3-region eu-west-1"),
    (400, _xml("InvalidArgument", "bad"), LakeshiftError, "400 InvalidArgument bad"),
]


@pytest.mark.parametrize(("status", "body", "kind", "text"), CASES)
def test_error_answers_are_mapped(server: WireServer, status: int, body: bytes,
                                  kind: type[Exception], text: str) -> None:
    headers = [("Content-Type", "application/xml")]
    if status == 301:
        headers.append(("x-amz-bucket-region", "eu-west-1"))
    server.add("answer", method="GET", status=status, body=body, headers=headers)
    with pytest.raises(LakeshiftError) as err:
        _run(_reads(server.url), lambda r: r.read("some/key", 0, 10, None))
    assert type(err.value) is kind
    assert text in str(err.value) and str(err.value).startswith("s3://bkt/some/key: ")
    assert "()" not in str(err.value)
    assert SECRET not in str(err.value) and "Signature=" not in str(err.value)


def test_a_slowdown_with_retry_after_says_when(server: WireServer) -> None:
    server.add("answer", method="GET", status=503, body=_xml("SlowDown"),
               headers=[("Retry-After", "3")])
    with pytest.raises(ThrottledError) as err:
        _run(_reads(server.url), lambda r: r.read("k", None, None, None))
    assert err.value.retry_after == 3.0


@pytest.mark.parametrize("fault", ["reset", "cut", "stall_body", "stall_head"])
@pytest.mark.parametrize("how", ["read", "range"])
def test_wire_failures_are_transient_and_name_no_secret(
        server: WireServer, monkeypatch: pytest.MonkeyPatch, fault: str, how: str) -> None:
    monkeypatch.setattr(http, "STALL_SECONDS", 1.0)
    server.add(fault, method="GET", status=200, body=b"x" * 5000, at=1000, delay=5.0,
               headers=[("ETag", '"e"')])

    async def call(r: S3Reads) -> bytes:
        if how == "read":
            return bytes((await r.read("k", None, None, None)).data)
        rng = await r.open_range("k", 0, 5000, None)
        return b"".join([c async for c in rng.chunks(100)])

    with pytest.raises(TransientError) as err:
        _run(_reads(server.url), call)
    message = str(err.value)
    assert message.startswith("s3://bkt/k: ") and type(err.value) is TransientError
    assert SECRET not in message and "Signature" not in message and "AKIDTEST" not in message
    if fault.startswith("stall"):
        assert "stalled" in message


def test_a_whole_object_answered_to_a_ranged_read_is_cut_to_the_range(
        server: WireServer) -> None:
    server.objects["/bkt/k"] = b"0123456789"  # the default answer ignores Range: 200, all
    got = _run(_reads(server.url), lambda r: r.read("k", 2, 6, None))
    assert (bytes(got.data), got.size) == (b"2345", 10)
    empty = _run(_reads(server.url), lambda r: r.read("k", 4, 4, None))
    assert bytes(empty.data) == b""
    assert not any(n.lower() == "range" for n, _ in server.requests[-1].headers)
    with pytest.raises(LakeshiftError, match="ignored the Range header"):
        _run(_reads(server.url), lambda r: r.open_range("k", 2, 6, None))


def _old_props_from_headers(headers: Any) -> Any:
    """props_from_headers as it was (a Python step per header): the reference."""
    from lakeshift.model import ObjectProps

    names = (("content-type", "content_type"), ("content-encoding", "content_encoding"),
             ("cache-control", "cache_control"), ("content-disposition", "content_disposition"),
             ("content-language", "content_language"))
    std = {field: headers[name] for name, field in names if name in headers}
    meta = {k[len("x-amz-meta-"):]: v for k, v in headers.items()
            if k.lower().startswith("x-amz-meta-")}
    return ObjectProps(metadata=meta, **std)


def test_props_from_headers_as_before_for_any_mix_of_headers() -> None:
    """Differential against the per-header loop it replaced: names in any case, repeated,
    empty values, metadata or none (the new one looks for the prefix in one C pass)."""
    import random

    from multidict import CIMultiDict, CIMultiDictProxy

    from lakeshift.stores.s3.reads import props_from_headers

    rng = random.Random(16)
    names = ["Content-Type", "content-type", "CONTENT-ENCODING", "Cache-Control",
             "content-disposition", "Content-Language", "x-amz-meta-a", "X-Amz-Meta-B",
             "x-amz-meta-", "x-amz-metadata", "x-amz-meta-a", "ETag", "x-amz-request-id",
             "X-AMZ-META-Upper", "amz-meta-x", "Last-Modified"]
    for _ in range(3000):
        pairs = [(rng.choice(names), rng.choice(["", "v", "a b", "ü"]))
                 for _ in range(rng.randint(0, 12))]
        headers = CIMultiDictProxy(CIMultiDict(pairs))
        assert props_from_headers(headers) == _old_props_from_headers(headers), pairs


def test_a_successful_get_makes_no_message_name_and_no_pool_property_call(
        server: WireServer) -> None:
    """The object's name for messages (``where``) is made only for an error, and the pool
    (once made) is taken as it is: two Python calls fewer per GET; a failed GET still names
    the object."""
    import sys
    from types import FrameType

    server.objects["/bkt/k"] = b"data"
    reads = _reads(server.url)
    names: list[str] = []

    def prof(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_name in ("where", "pool") and \
                frame.f_code.co_filename.endswith("s3/reads.py"):
            names.append(frame.f_code.co_name)

    async def call(r: S3Reads) -> bytes:
        await r.read("k", None, None, None)  # (the pool made)
        sys.setprofile(prof)
        try:
            got = await r.read("k", None, None, None)
        finally:
            sys.setprofile(None)
        return bytes(got.data)

    assert _run(reads, call) == b"data"
    assert names == []
    with pytest.raises(NotFoundError, match="s3://bkt/gone"):
        _run(_reads(server.url), lambda r: r.read("gone", None, None, None))
