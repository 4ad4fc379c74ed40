"""Requester-pays buckets: ``--s3-request-payer requester`` puts ``x-amz-request-payer:
requester`` on every S3 request, signed (botocore's listings, HEADs and bucket settings,
obstore's GETs); without it, the refusal of such a bucket names the flag.

moto does not enforce request payment, so the requests are checked as built, on a loopback
server that records them and, like S3, refuses a requester-pays bucket's requests that do
not carry the header (403 AccessDenied)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lakeshift.errors import UsageError
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.s3.store import S3Store, request_payer
from lakeshift.urls import parse_url
from tests.helpers import serve_in_thread

LAST_MODIFIED = "Tue, 01 Dec 2026 03:00:00 GMT"
LISTING = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
           b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>rpb</Name><Prefix></Prefix>'
           b"<KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
           b"<Contents><Key>k</Key><LastModified>2026-12-01T03:00:00.000Z</LastModified>"
           b'<ETag>"5d41402abc4b2a76b9719d911017c592"</ETag><Size>5</Size>'
           b"<StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>")
DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
          b"<Message>Access Denied</Message></Error>")


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, str]]]

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, body: bytes) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.seen.append((self.command, self.path, headers))
        if headers.get("x-amz-request-payer") != "requester":
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(DENIED)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(DENIED)
            return
        self.send_response(200)
        if self.path.startswith("/rpb/k"):
            self.send_header("ETag", '"5d41402abc4b2a76b9719d911017c592"')
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.send_header("Content-Type", "text/plain")
        else:
            self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        if "list-type=2" in self.path:
            self._answer(LISTING)
        elif "versioning" in self.path:
            self._answer(b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/'
                         b'2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>')
        elif "requestPayment" in self.path:
            self._answer(b'<RequestPaymentConfiguration xmlns="http://s3.amazonaws.com/doc/'
                         b'2006-03-01/"><Payer>Requester</Payer></RequestPaymentConfiguration>')
        else:
            self._answer(b"hello")

    def do_HEAD(self) -> None:
        self._answer(b"hello")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[Any]]]:
    seen: list[Any] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serve_in_thread(httpd)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def _store(endpoint: str, payer: str | None) -> S3Store:
    return S3Store(StoreConfig(parse_url("s3://rpb/"),
                               StoreOptions(s3_endpoint=endpoint, s3_request_payer=payer)))


def test_every_request_carries_the_signed_request_payer_header(
        server: tuple[str, list[Any]]) -> None:
    endpoint, seen = server
    store = _store(endpoint, "requester")

    async def use() -> None:
        try:
            await store.check_source()
            page = await store.list_page("")
            assert [o.key for o in page.objects] == ["k"]
            details = await store.inspect("k")
            assert not details.sse_customer
            facts = await store.bucket_facts()
            assert (facts.versioned, facts.requester_pays) == (True, True)
            got = await store.read("k")
            assert bytes(got.data) == b"hello"
        finally:
            await store.close()

    asyncio.run(use())
    kinds = {(m, p.split("?")[0], p.partition("?")[2].split("=")[0]) for m, p, _ in seen}
    assert ("GET", "/rpb/k", "") in kinds          # obstore's GET
    assert ("HEAD", "/rpb/k", "") in kinds         # botocore's HEAD
    assert len(seen) >= 6
    for method, path, headers in seen:
        assert headers.get("x-amz-request-payer") == "requester", (method, path)
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        assert "x-amz-request-payer" in signed.split(";"), (method, path)


def test_without_the_flag_the_refusal_names_it(server: tuple[str, list[Any]]) -> None:
    endpoint, _ = server
    store = _store(endpoint, None)
    with pytest.raises(UsageError, match=r"requester-pays bucket: pass --s3-request-payer "
                                         r"requester"):
        asyncio.run(store.check_source())


def test_the_flag_takes_only_requester() -> None:
    assert request_payer("requester") and not request_payer(None)
    with pytest.raises(UsageError, match="--s3-request-payer 'owner'"):
        request_payer("owner")
