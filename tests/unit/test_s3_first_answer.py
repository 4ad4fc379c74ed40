"""What an S3 endpoint's first error answer says (``s3/store.py`` ``_first_answer``): an
S3-compatible service that answers a listing with a bare status (no XML body) is an S3
service whose status means what it says -- 403 credentials or permission, 404 no such
bucket -- not "not an S3 service"; a web server, a proxy's error page or an S3 website
endpoint is EndpointMismatch.

The answers are the shapes the services send (their headers, no body), from their sources:
MinIO sets ``Server: MinIO`` and ``X-Amz-Request-Id`` on every response (a middleware) and
puts a bodiless error's code in ``x-minio-error-code``/``x-minio-error-desc``; Ceph RGW
sends ``x-amz-request-id: tx…`` with every S3 response (``end_header``); Amazon S3 sends
``x-amz-request-id``, ``x-amz-id-2`` and ``Server: AmazonS3``, and its website endpoints an
HTML page with ``x-amz-error-code``.  Served by tests/wireserver.py on loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from lakeshift.errors import (
    AuthError,
    EndpointMismatch,
    ForbiddenError,
    LakeshiftError,
    MissingContainerError,
)
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.s3.store import S3Store
from lakeshift.urls import parse_url
from tests.wireserver import WireServer

MINIO = [("Accept-Ranges", "bytes"), ("Server", "MinIO"), ("Vary", "Origin"),
         ("X-Amz-Id-2", "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8"),
         ("X-Amz-Request-Id", "1812E5B1C2D9A3F0"), ("X-Content-Type-Options", "nosniff"),
         ("X-Xss-Protection", "1; mode=block")]
RGW = [("x-amz-request-id", "tx0000000000000000004c6-00581ed716-857b-default")]
AMAZON = [("x-amz-request-id", "4442587FB7D0A2F9"),
          ("x-amz-id-2", "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYB"
                         "DXOo6QBU0Wo="),
          ("Server", "AmazonS3")]
NGINX = [("Server", "nginx/1.24.0")]
WEBSITE_PAGE = (b"<html>\n<head><title>404 Not Found</title></head>\n<body>\n<h1>404 Not Found</h1>"
                b"\n<ul>\n<li>Code: NoSuchBucket</li>\n</ul>\n</body>\n</html>\n")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WireServer]:
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with WireServer() as srv:
        yield srv


def first_answer(server: WireServer, status: int, headers: list[tuple[str, str]],
                 body: bytes = b"") -> LakeshiftError:
    """The error a store's start-up check (``check_source``) raises when every listing is
    answered so."""
    server.add("answer", method="GET", status=status, headers=headers, body=body)
    store = S3Store(StoreConfig(parse_url("s3://bkt/raw/"), StoreOptions(s3_endpoint=server.url)))

    async def check() -> LakeshiftError:
        try:
            await store.check_source()
        except LakeshiftError as e:
            return e
        finally:
            await store.close()
        raise AssertionError("the check passed")

    return asyncio.run(check())


@pytest.mark.parametrize("headers", [MINIO, AMAZON, RGW], ids=["minio", "amazon", "ceph-rgw"])
def test_a_bare_403_from_an_s3_service_is_permission(server: WireServer,
                                                     headers: list[tuple[str, str]]) -> None:
    err = first_answer(server, 403, headers)
    assert type(err) is ForbiddenError, err
    assert str(err) == "s3://bkt/: access denied (403)"


@pytest.mark.parametrize("headers", [RGW, MINIO, AMAZON], ids=["ceph-rgw", "minio", "amazon"])
def test_a_bare_404_from_an_s3_service_is_the_missing_bucket(
        server: WireServer, headers: list[tuple[str, str]]) -> None:
    err = first_answer(server, 404, headers)
    assert type(err) is MissingContainerError, err
    assert str(err) == "s3://bkt/: bucket does not exist: create it or fix the URL"


def test_minio_s_error_code_header_names_the_cause(server: WireServer) -> None:
    err = first_answer(server, 403, [*MINIO, ("x-minio-error-code", "InvalidAccessKeyId"), (
        "x-minio-error-desc", '"The Access Key Id you provided does not exist in our records."')])
    assert isinstance(err, AuthError), err
    assert "AWS credentials rejected (InvalidAccessKeyId)" in str(err)


@pytest.mark.parametrize(("status", "headers", "body"), [
    (404, NGINX, b""),
    (404, [], b""),
    (403, [*NGINX, ("Content-Type", "text/html")],
     b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 "
     b"Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"),
    (403, [], b"<!DOCTYPE html><html><body>Access denied by the proxy</body></html>"),
], ids=["nginx-bare-404", "bare-404", "nginx-403-page", "html-without-type"])
def test_an_answer_without_s3_s_marks_is_not_an_s3_service(
        server: WireServer, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    err = first_answer(server, status, headers, body)
    assert isinstance(err, EndpointMismatch), err
    assert str(err) == (f"the S3 endpoint {server.url} answered {status} without an S3 error "
                        "(not an S3 service?): check --s3-endpoint")


def test_an_s3_website_endpoint_is_said_to_be_one(server: WireServer) -> None:
    err = first_answer(server, 404, [*AMAZON, ("x-amz-error-code", "NoSuchBucket"),
                                     ("Content-Type", "text/html; charset=utf-8")], WEBSITE_PAGE)
    assert isinstance(err, EndpointMismatch), err
    assert str(err) == (f"the S3 endpoint {server.url} answered 404 without an S3 error (it "
                        "looks like an S3 website endpoint, which serves HTML pages, not the S3 "
                        "API): check --s3-endpoint")


def test_s3_s_own_error_body_keeps_its_meaning(server: WireServer) -> None:
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>'
            b"The specified bucket does not exist</Message></Error>")
    err = first_answer(server, 404, [("Content-Type", "application/xml")], body)
    assert type(err) is MissingContainerError, err
