"""``S3Store.source_checksums`` through wire against what it made of botocore's
``head_object`` (a differential test): one loopback server answers the same HEADs to both --
the additional checksums of every algorithm, COMPOSITE and FULL_OBJECT types, the part count,
SSE headers -- and the two give the same SourceChecksum, from the same requests (checksum
mode, If-Match with the ETag quoted, ``partNumber=1`` without it).  Refusals give the same
kind of error, except where wire's is the better one: a bucket in another region names
--s3-region, and a part HEAD beyond the object's parts (416) says the object changed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from lakeshift.errors import (
    ChangedError,
    ForbiddenError,
    LakeshiftError,
    NotFoundError,
    ThrottledError,
    UsageError,
)
from lakeshift.stores.base import SourceChecksum, StoreConfig, StoreOptions
from lakeshift.stores.s3.reads import OPAQUE_ETAG_SSE
from lakeshift.stores.s3.store import S3Store
from lakeshift.urls import parse_url
from tests.helpers import serve_in_thread

MIB = 1024 * 1024
ONE = "5d41402abc4b2a76b9719d911017c592"
MULTI = "745a0ee26a47605380d3ea370bc281db-3"
#: A part HEAD's answer (part 1: 8 MiB, 3 parts).
PART = {"Content-Length": str(8 * MIB), "x-amz-mp-parts-count": "3"}

#: name -> (ETag given, whole HEAD's headers, part HEAD's headers or None)
CASES: dict[str, tuple[str | None, dict[str, str], dict[str, str] | None]] = {
    "crc32": (ONE, {"x-amz-checksum-crc32": "NhCmhg=="}, None),
    "crc32c": (ONE, {"x-amz-checksum-crc32c": "yZRlqg==",
                     "x-amz-checksum-type": "FULL_OBJECT"}, None),
    "crc64nvme": (ONE, {"x-amz-checksum-crc64nvme": "jSnVw/bqjr4=",
                        "x-amz-checksum-type": "FULL_OBJECT"}, None),
    "sha256": (ONE, {"x-amz-checksum-sha256":
                     "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="}, None),
    "sha1": (ONE, {"x-amz-checksum-sha1": "qvTGHdzF6KLavt4PO0gs2a6pQ00="}, None),
    "two-kinds": (ONE, {"x-amz-checksum-sha256": "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
                        "x-amz-checksum-crc32": "NhCmhg=="}, None),
    "empty-value": (ONE, {"x-amz-checksum-crc32": "", "x-amz-checksum-crc32c": "yZRlqg=="},
                    None),
    "none": (ONE, {}, None),
    "no-etag": (None, {"x-amz-checksum-crc32": "NhCmhg=="}, None),
    "composite": (MULTI, {"x-amz-checksum-crc32": "Ub8Jxg==-3",
                          "x-amz-checksum-type": "COMPOSITE"}, PART),
    "composite-untyped": (MULTI, {"x-amz-checksum-crc32c": "Ub8Jxg==-3"}, PART),
    "full-object": (MULTI, {"x-amz-checksum-crc64nvme": "jSnVw/bqjr4=",
                            "x-amz-checksum-type": "FULL_OBJECT"}, PART),
    "full-object-crc32": (MULTI, {"x-amz-checksum-crc32": "NhCmhg==",
                                  "x-amz-checksum-type": "FULL_OBJECT"}, PART),
    "multipart-bare": (MULTI, {}, PART),  # (moto: no type, no checksum)
    "no-parts-count": (MULTI, {}, {"Content-Length": str(5 * MIB)}),
    "kms": (MULTI, {"x-amz-server-side-encryption": "aws:kms",
                    "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:k"}, PART),
    "dsse": (ONE, {"x-amz-server-side-encryption": "aws:kms:dsse"}, None),
    "aes256": (ONE, {"x-amz-server-side-encryption": "AES256",
                     "x-amz-checksum-crc32": "NhCmhg=="}, None),
    "sse-c": (ONE, {"x-amz-server-side-encryption-customer-algorithm": "AES256",
                    "x-amz-server-side-encryption-customer-key-MD5": "bXlrZXk="}, None),
}
#: name -> (status of the whole HEAD, its headers, status of the part HEAD)
REFUSALS: dict[str, tuple[int, dict[str, str], int]] = {
    "missing": (404, {}, 200),
    "denied": (403, {}, 200),
    "changed": (412, {}, 200),
    "throttled": (503, {}, 200),
    "moved": (301, {"x-amz-bucket-region": "eu-central-1"}, 200),
    "part-beyond": (200, {}, 416),
}


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, str]]]
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        url = urlsplit(self.path)
        name = unquote(url.path).rsplit("/", 1)[1]
        part = "partNumber" in parse_qs(url.query)
        self.seen.append((name, url.query, {k.lower(): v for k, v in self.headers.items()}))
        status, headers = 200, {"Content-Length": str(24 * MIB - 7)}
        if name in CASES:
            etag, whole, part_headers = CASES[name]
            headers.update(part_headers if part and part_headers else whole)
            headers["ETag"] = f'"{etag or ONE}"'
        else:
            status, extra, part_status = REFUSALS[name]
            headers.update(extra)
            headers.update(PART)
            headers["ETag"] = f'"{MULTI}"'
            status = part_status if part else status
        headers["Last-Modified"] = "Tue, 01 Dec 2026 14:05:33 GMT"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[Any]]]:
    seen: list[Any] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"seen": seen}))
    serve_in_thread(httpd)
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def shared(server: tuple[str, list[Any]]) -> Iterator[S3Store]:
    """One store for the module (botocore's client is built once: ~0.2 s each)."""
    with pytest.MonkeyPatch.context() as mp:
        for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                  "AWS_SESSION_TOKEN"):
            mp.delenv(k, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
        mp.setenv("AWS_REGION", "us-east-1")
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        s3 = S3Store(StoreConfig(parse_url("s3://bkt/"), StoreOptions(s3_endpoint=server[0])))
        yield s3
        if "_boto" in s3.__dict__:
            s3._boto.close()


@pytest.fixture
def store(shared: S3Store, server: tuple[str, list[Any]]) -> tuple[S3Store, list[Any]]:
    server[1].clear()
    return shared, server[1]


def _with_wire(s3: S3Store, key: str, etag: str | None) -> SourceChecksum:
    async def run() -> SourceChecksum:
        try:
            return await s3.source_checksums(key, etag)
        finally:
            await s3._reads.close()  # (its pool belongs to this event loop)

    return asyncio.run(run())


_BOTO_FIELDS = (("ChecksumCRC32", "crc32"), ("ChecksumCRC32C", "crc32c"),
                ("ChecksumCRC64NVME", "crc64nvme"), ("ChecksumSHA256", "sha256"),
                ("ChecksumSHA1", "sha1"))
_PARTS = re.compile(r"^[0-9a-fA-F]{32}-(\d+)$")


def _with_botocore(s3: S3Store, key: str, etag: str | None) -> SourceChecksum:
    """What ``source_checksums`` made of botocore's head_object (before it went through
    wire), its two HEADs one after the other."""
    base: dict[str, Any] = {"Bucket": s3.bucket, "Key": key}
    if etag:
        base["IfMatch"] = f'"{etag}"'
    multipart = _PARTS.match(etag or "")
    try:
        head = s3._call("head_object", {**base, "ChecksumMode": "ENABLED"}, key)
        part = s3._call("head_object", {"Bucket": s3.bucket, "Key": key, "PartNumber": 1},
                        key) if multipart else None
    except LakeshiftError as e:
        if "PreconditionFailed" in str(e) or "412" in str(e):
            raise ChangedError(f"s3://{s3.bucket}/{key}: changed during the copy") from None
        raise
    algorithm = value = None
    for field, name in _BOTO_FIELDS:
        if head.get(field):
            algorithm, value = name, str(head[field])
            break
    part_size = parts = None
    if multipart:
        parts = int(part.get("PartsCount") or multipart.group(1))
        part_size = int(part["ContentLength"])
    composite = bool(multipart) and (head.get("ChecksumType") != "FULL_OBJECT")
    if value is not None and "-" in value:
        value, composite = value.split("-", 1)[0], True
    opaque = bool(head.get("ServerSideEncryption") in OPAQUE_ETAG_SSE
                  or head.get("SSECustomerAlgorithm"))
    return SourceChecksum(algorithm, value, composite, part_size, parts, opaque)


def _requests(seen: list[Any]) -> list[tuple[str, str, str | None, str | None]]:
    return sorted((name, query, h.get("if-match"), h.get("x-amz-checksum-mode"))
                  for name, query, h in seen)


@pytest.mark.parametrize("name", CASES)
def test_the_same_heads_give_the_same_checksums(store: tuple[S3Store, list[Any]],
                                                name: str) -> None:
    s3, seen = store
    etag = CASES[name][0]
    theirs = _with_botocore(s3, name, etag)
    sent_theirs = _requests(seen)
    seen.clear()
    ours = _with_wire(s3, name, etag)
    assert ours == theirs
    assert _requests(seen) == sent_theirs
    # (and the cases are what they say: the composite and full-object ones differ)
    if name == "composite":
        assert ours == SourceChecksum("crc32", "Ub8Jxg==", True, 8 * MIB, 3, False)
    if name == "full-object":
        assert ours == SourceChecksum("crc64nvme", "jSnVw/bqjr4=", False, 8 * MIB, 3, False)


@pytest.mark.parametrize("name", REFUSALS)
def test_refusals_give_the_same_kind_of_error(store: tuple[S3Store, list[Any]],
                                              name: str) -> None:
    s3, _ = store
    with pytest.raises(LakeshiftError) as theirs:
        _with_botocore(s3, name, MULTI)
    with pytest.raises(LakeshiftError) as ours:
        _with_wire(s3, name, MULTI)
    expected = {"missing": NotFoundError, "denied": ForbiddenError, "changed": ChangedError,
                "throttled": ThrottledError}
    if name in expected:
        assert type(ours.value) is type(theirs.value) is expected[name]
    elif name == "moved":
        # botocore: a bare "301 Moved Permanently"; wire: the flag that fixes it.
        assert type(theirs.value) is LakeshiftError
        assert isinstance(ours.value, UsageError)
        assert "--s3-region eu-central-1" in str(ours.value)
    else:
        assert type(theirs.value) is LakeshiftError and "416" in str(theirs.value)
        assert isinstance(ours.value, ChangedError)
