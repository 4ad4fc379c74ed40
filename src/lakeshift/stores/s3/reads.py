"""S3 GETs through ``stores/wire/``: one SigV4-signed request per read, whole or ranged.

obstore spent ~0.5 ms of client CPU per small GET (and botocore far more); here a GET is a
signature (``sigv4.py``) and a request on a keep-alive pool, one per store.  Any key can be
named (the path is the key percent-encoded as S3 wants it, nothing collapsed), so keys with
empty or dot segments or control characters need no second path.

Endpoint as obstore's was: a custom endpoint (``--s3-endpoint``, ``AWS_ENDPOINT_URL[_S3]``)
path-style (``ENDPOINT/BUCKET/KEY``); else AWS virtual-hosted
(``https://BUCKET.s3.REGION.amazonaws.com/KEY``), path-style for a bucket whose name has a
dot (its virtual host would not match S3's certificate).

Neither kind of GET has a limit on the whole request: each gives up when no bytes arrive
for ``http.STALL_SECONDS`` (the response head, then the body).  Errors come back in the
lakeshift tree (``s3_error``); a wire error is transient and its message never holds the
request target or headers (so no signature)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from lakeshift.errors import (
    ArchivedError,
    AuthError,
    ChangedError,
    ConnectError,
    ForbiddenError,
    LakeshiftError,
    MissingContainerError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UsageError,
)
from lakeshift.model import ObjectInfo, ObjectProps, ReadResult
from lakeshift.stores import http, wire
from lakeshift.stores.base import Pieces, SourceChecksum
from lakeshift.stores.obstore_common import ARCHIVED_CODES, archived_message
from lakeshift.stores.props import unquote_etag
from lakeshift.stores.s3 import sigv4
from lakeshift.stores.s3.auth import AwsSettings

#: The prefix of user metadata headers (the other ObjectProps fields are the standard
#: Content-Type, -Encoding, -Disposition, -Language and Cache-Control, as obstore's
#: attributes were).
_META = "x-amz-meta-"
#: Codes that say the credentials (not the permissions) are wrong.
_AUTH_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                         "InvalidToken", "TokenRefreshRequired"})


class S3Reads:
    """Signed GETs of one bucket's objects."""

    def __init__(self, settings: AwsSettings, bucket: str, request_payer: bool,
                 connections: int = 128) -> None:
        self.bucket = bucket
        self.region = settings.region
        endpoint = settings.endpoint
        if endpoint:
            parts = urlsplit(endpoint)
            origin = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}"
            self.prefix = f"{parts.path.rstrip('/')}/{sigv4.quote_path(bucket)}/"
        elif "." in bucket:
            origin = f"https://s3.{settings.region}.amazonaws.com"
            self.prefix = f"/{sigv4.quote_path(bucket)}/"
        else:
            origin = f"https://{bucket}.s3.{settings.region}.amazonaws.com"
            self.prefix = "/"
        self.origin = origin
        self.host = sigv4.host_header(origin)
        self.signer = None if settings.credentials is None else \
            sigv4.Signer(settings.credentials, settings.region)
        self.request_payer = request_payer
        self._connections = connections
        self._pool: wire.Pool | None = None

    @property
    def bucket_path(self) -> str:
        """The bucket's own path (ListObjectsV2, the bucket's settings): ``/BUCKET``
        path-style, ``/`` virtual-hosted (as botocore sends them)."""
        return self.prefix[:-1] or "/"

    @property
    def pool(self) -> wire.Pool:
        if self._pool is None:
            self._pool = wire.Pool(self.origin, connections=self._connections)
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    async def get(self, key: str, start: int | None, end: int | None,
                  if_match: str | None) -> wire.Response:
        """The GET up to its response head (2xx); any other answer raised as its error.
        (The object's name for messages, ``where``, is made only for an error.)"""
        path = self.prefix + sigv4.quote_path(key)
        headers: list[tuple[str, str]] = []
        if start is not None and (end is None or end > start):
            # (An empty range has no Range form: "bytes=5-4" would be ignored by S3 anyway.)
            headers.append(("range", f"bytes={start}-{'' if end is None else end - 1}"))
        if if_match:
            headers.append(("if-match", f'"{if_match}"'))
        if self.request_payer:
            headers.append(("x-amz-request-payer", "requester"))
        if self.signer is not None:
            headers = self.signer.sign("GET", self.host, path, "", headers)
        else:
            headers.append(("host", self.host))
        stall = http.STALL_SECONDS
        pool = self._pool or self.pool
        try:
            resp = await pool.request("GET", path, headers,
                                      connect_timeout=http.CONNECT_SECONDS,
                                      stall_timeout=stall)
        except wire.Stalled:
            raise TransientError(f"{self.where(key)}: no response for {stall:g} s (stalled)") \
                from None
        except wire.WireError as e:
            raise TransientError(f"{self.where(key)}: {e}") from None
        if resp.status in (200, 206):
            return resp
        what = self.where(key)
        try:
            body = await resp.read()
        except wire.WireError:
            body = b""
        finally:
            resp.release()
        raise s3_error(resp.status, resp.headers, body, what, self.region)

    async def control(self, query: list[tuple[str, str]], what: str,
                      request_payer: bool | None = None, method: str = "GET",
                      key: str | None = None,
                      extra: list[tuple[str, str]] | None = None) -> tuple[int, Any, bytes]:
        """A signed request (GET unless ``method`` says) of the bucket, or of object
        ``key``, with ``query`` and the ``extra`` headers -- a listing page, a bucket
        setting, a HEAD: (status, headers, body), whatever the status.  ``request_payer``
        overrides the store's setting.  A control request: its answer, body included, must
        come within ``http.REQUEST_SECONDS`` (and bytes must keep arriving within the
        stall limit)."""
        path = self.bucket_path if key is None else self.prefix + sigv4.quote_path(key)
        target = sigv4.canonical_query(query)
        headers: list[tuple[str, str]] = list(extra or ())
        if self.request_payer if request_payer is None else request_payer:
            headers.append(("x-amz-request-payer", "requester"))
        if self.signer is not None:
            headers = self.signer.sign(method, self.host, path, target, headers)
        else:
            headers.append(("host", self.host))
        limit = http.REQUEST_SECONDS
        try:
            async with asyncio.timeout(limit):
                resp = await self.pool.request(method, f"{path}?{target}" if target else path,
                                               headers, connect_timeout=http.CONNECT_SECONDS,
                                               stall_timeout=http.STALL_SECONDS,
                                               response_timeout=limit)
                async with resp:
                    body = await resp.read()
        except TimeoutError:
            raise TransientError(f"{what}: no complete response within {limit:g} s") from None
        except wire.WireError as e:
            raise _wire_failure(e, what) from None
        return resp.status, resp.headers, body

    async def read(self, key: str, start: int | None, end: int | None,
                   if_match: str | None) -> ReadResult:
        """One GET: bytes [start, end) (the whole object when both are None)."""
        resp = await self.get(key, start, end, if_match)
        try:
            data = await resp.read()
        except wire.WireError as e:
            raise _wire_failure(e, self.where(key)) from None
        # The body's own bytes object, viewed: hashed and sent on without a copy.
        view = memoryview(data)
        if start is not None and resp.status == 200:
            view = view[start:end]  # the whole object came back (no Range, or one ignored)
        return ReadResult(view, props_from_headers(resp.headers),
                          _size(resp), unquote_etag(resp.headers.get("ETag")),
                          etag_is_opaque(resp.headers))

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None) -> WireRange:
        resp = await self.get(key, start, end, if_match)
        if resp.status == 200 and start > 0:
            resp.release()
            raise LakeshiftError(f"{self.where(key)}: the service answered a ranged GET with "
                                 "the whole object (200): it ignored the Range header")
        return WireRange(resp, self.where(key))


class WireRange:
    """A ranged GET's body, in chunks, with the object's size, ETag and properties, and
    whether that ETag is no digest of the bytes (``opaque_etag``, as ``ReadResult``'s)."""

    def __init__(self, resp: wire.Response, what: str) -> None:
        self._resp = resp
        self._what = what
        self.props = props_from_headers(resp.headers)
        self.size = _size(resp)
        self.etag = unquote_etag(resp.headers.get("ETag"))
        self.opaque_etag = etag_is_opaque(resp.headers)

    async def chunks(self, min_size: int) -> AsyncIterator[bytes]:
        """The body in chunks of at least ``min_size`` bytes (the last may be shorter),
        stall-watched per piece arriving from the socket (``wire.Response.chunks``: a
        piece that arrived whole is handed on without a copy, others joined once)."""
        stream = self._resp.chunks(min_size)
        try:
            while True:
                try:
                    piece = await anext(stream)
                except StopAsyncIteration:
                    break
                except wire.WireError as e:
                    raise _wire_failure(e, self._what) from None
                yield piece
        finally:
            self._resp.release()  # the connection is closed when not read to the end

    async def pieces(self, min_size: int) -> AsyncIterator[Pieces]:
        """As ``chunks``, each chunk the buffers it arrived in from the socket, never
        joined (``PiecesStream``): a block that is hashed and sent on in pieces."""
        stream = self._resp.pieces(min_size)
        try:
            while True:
                try:
                    parts = await anext(stream)
                except StopAsyncIteration:
                    break
                except wire.WireError as e:
                    raise _wire_failure(e, self._what) from None
                yield Pieces(parts)
        finally:
            self._resp.release()  # the connection is closed when not read to the end

    def close(self) -> None:
        self._resp.release()


def info_from_head(key: str, headers: Any) -> ObjectInfo:
    """A HEAD response's headers as the ObjectInfo ``S3Store.exists`` gives: the MD5 from
    the ETag unless the object is encrypted so that its ETag is not one (SSE-KMS, SSE-C),
    the user metadata (``x-amz-meta-NAME`` -> NAME, as botocore's ``Metadata``)."""
    etag = unquote_etag(headers.get("ETag"))
    opaque = etag_is_opaque(headers)
    modified = headers.get("Last-Modified")
    meta = {k[len(_META):]: v for k, v in headers.items() if k.lower().startswith(_META)}
    return ObjectInfo(key, int(headers.get("Content-Length") or 0),
                      parsedate_to_datetime(modified) if modified else None, etag,
                      None if opaque else md5_from_etag(etag), key.endswith("/"), meta)


#: S3's additional checksums: their response headers (botocore's ChecksumCRC32, ...) in
#: the order they are looked for, and lakeshift's names.
_CHECKSUM_HEADERS = (("x-amz-checksum-crc32", "crc32"), ("x-amz-checksum-crc32c", "crc32c"),
                     ("x-amz-checksum-crc64nvme", "crc64nvme"),
                     ("x-amz-checksum-sha256", "sha256"), ("x-amz-checksum-sha1", "sha1"))


def checksum_from_heads(head: Any, part: Any, etag_parts: int | None) -> SourceChecksum:
    """What ``S3Store.source_checksums`` makes of its HEADs' response headers: ``head``
    (``x-amz-checksum-mode: ENABLED``), ``part`` (``?partNumber=1``, None when not
    asked), ``etag_parts`` (N of a multipart ETag ``...-N``, None for a single-part one).
    Compared with what it made of botocore's ``head_object`` for the same responses in
    ``tests/unit/test_s3_source_checksums.py``."""
    algorithm = value = None
    for header, name in _CHECKSUM_HEADERS:
        found = head.get(header)
        if found:
            algorithm, value = name, found
            break
    part_size = parts = None
    multipart = etag_parts is not None
    if etag_parts is not None and part is not None:
        parts = int(part.get("x-amz-mp-parts-count") or etag_parts)
        part_size = int(part["Content-Length"])
    # S3 writes "value-N" for a COMPOSITE checksum and says x-amz-checksum-type; a
    # multipart object whose type is not given (older services, moto) has a composite one.
    composite = multipart and head.get("x-amz-checksum-type") != "FULL_OBJECT"
    if value is not None and "-" in value:
        value, composite = value.split("-", 1)[0], True
    return SourceChecksum(algorithm, value, composite, part_size, parts,
                          etag_is_opaque(head))


#: Server-side encryption under which S3 ETags are not the MD5 of the data (SSE-C is told by
#: its own header).
OPAQUE_ETAG_SSE = frozenset({"aws:kms", "aws:kms:dsse"})


def etag_is_opaque(headers: Any) -> bool:
    """Whether an object response's headers (HEAD, GET) say that the object's ETag is no
    digest of its bytes: encrypted with SSE-KMS (``x-amz-server-side-encryption``) or
    SSE-C (its customer-algorithm header).  A listing says neither, so the MD5 it offers
    from such an ETag is no MD5 (S3's ETag documentation)."""
    return headers.get("x-amz-server-side-encryption") in OPAQUE_ETAG_SSE or \
        bool(headers.get("x-amz-server-side-encryption-customer-algorithm"))


def md5_from_etag(etag: str | None) -> bytes | None:
    if etag and len(etag) == 32 and "-" not in etag:
        try:
            return bytes.fromhex(etag)
        except ValueError:
            return None
    return None


def _wire_failure(e: wire.WireError, what: str) -> TransientError:
    if isinstance(e, wire.ConnectFailed):
        return ConnectError(f"{what}: {e}", e.reason)
    if isinstance(e, wire.Stalled):
        return TransientError(f"{what}: no data for {http.STALL_SECONDS:g} s (stalled): {e}")
    return TransientError(f"{what}: {e}")


def _size(resp: wire.Response) -> int:
    """The object's size: Content-Range's total for a 206, else Content-Length."""
    rng = resp.headers.get("Content-Range") or ""
    total = rng.rpartition("/")[2]
    if resp.status == 206 and total.isdigit():
        return int(total)
    return int(resp.headers.get("Content-Length") or 0)


def props_from_headers(headers: Any) -> ObjectProps:
    """What ``props_from_attributes`` made of obstore's attributes for the same response:
    the standard content headers and the user metadata (``x-amz-meta-NAME`` -> NAME).  The
    names are searched for the metadata prefix in one C-level pass first: most responses
    have none, and a Python step per header cost more than the rest of this."""
    get = headers.get
    std = (get("content-type"), get("content-encoding"), get("cache-control"),
           get("content-disposition"), get("content-language"))
    if _META_LINE in "\n" + "\n".join(headers).lower():
        meta = {k[len(_META):]: v for k, v in headers.items() if k.lower().startswith(_META)}
        return ObjectProps(*std, meta)
    # Without metadata the same few sets of properties recur (a content type, rarely more):
    # one immutable ObjectProps each, not one per object read.
    props = _PLAIN_PROPS.get(std)
    if props is None:
        if len(_PLAIN_PROPS) >= 256:
            _PLAIN_PROPS.clear()
        _PLAIN_PROPS[std] = props = ObjectProps(*std)
    return props


#: props_from_headers' ObjectProps without metadata, by their standard properties.
_PLAIN_PROPS: dict[tuple[str | None, ...], ObjectProps] = {}


_META_LINE = "\n" + _META


_CODE = re.compile(r"<Code>([^<]*)</Code>")
_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")
_REGION = re.compile(r"<Region>([^<]*)</Region>")

#: ``Server`` names of S3 services (Amazon S3, MinIO, Wasabi), lower case.
_S3_SERVERS = ("amazons3", "minio", "wasabis3")


def from_s3_service(headers: Any) -> bool:
    """Whether an answer carries what S3 services put on every answer, errors included, so
    that one without a body (a HEAD's, or a bare status) is still known for theirs: an
    ``x-amz-…`` header (Amazon S3's ``x-amz-request-id`` and ``x-amz-id-2``; MinIO sets
    ``X-Amz-Request-Id`` on every request in a middleware, Ceph RGW ``x-amz-request-id`` on
    every S3 response; moto's ``x-amzn-requestid``), an ``x-minio-…`` header (MinIO's
    bodiless errors carry ``x-minio-error-code``), or an S3 service's ``Server`` name."""
    for name in headers:
        low = name.lower()
        if low.startswith(("x-amz", "x-minio-")):
            return True
    return (headers.get("Server") or "").lower().startswith(_S3_SERVERS)


def _header_error(headers: Any) -> tuple[str, str]:
    """The error code and message of a bodiless error, from its headers when the service
    puts them there: MinIO (``x-minio-error-code``, ``x-minio-error-desc`` in quotes) on a
    HEAD; S3 (``x-amz-error-code``, ``x-amz-error-message``) on its website endpoints."""
    code = headers.get("x-amz-error-code") or headers.get("x-minio-error-code") or ""
    message = headers.get("x-amz-error-message") or headers.get("x-minio-error-desc") or ""
    return code.strip(), message.strip().strip('"')


def s3_error(status: int, headers: Any, body: bytes, what: str,
             region: str) -> LakeshiftError:
    """An S3 error response (status, headers, XML body) in the lakeshift tree."""
    from html import unescape  # (only on errors: html.entities is a large table)

    text = body[:4096].decode("utf-8", "replace")
    m = _CODE.search(text)
    code = unescape(m.group(1)) if m else ""
    m = _MESSAGE.search(text)
    message = unescape(m.group(1)) if m else ""
    if not code:
        code, said = _header_error(headers)
        message = message or said
    if status == 412 or code == "PreconditionFailed":
        return ChangedError(f"{what}: the source object changed during the copy")
    if code in ARCHIVED_CODES:
        return ArchivedError(archived_message(what))
    if status in (301, 307) or code in ("PermanentRedirect", "AuthorizationHeaderMalformed",
                                        "IllegalLocationConstraintException"):
        m = _REGION.search(text)
        right = headers.get("x-amz-bucket-region") or (m.group(1) if m else "")
        said = message or f"{status} {code}".strip()
        if right and right != region:
            return UsageError(f"{what}: {said} (the bucket is in {right}, not {region}): "
                              f"pass --s3-region {right}")
        return UsageError(f"{what}: {said}: check --s3-region / AWS_REGION and "
                          "--s3-endpoint")
    if code == "NoSuchBucket":
        return MissingContainerError(f"{what}: bucket does not exist: create it or fix the URL")
    if status == 401 or code in _AUTH_CODES:
        return AuthError(f"{what}: AWS credentials rejected ({code or status}): check "
                         "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile")
    if status == 404 or code == "NoSuchKey":
        return NotFoundError(f"{what}: not found")
    if status == 403:
        return ForbiddenError(f"{what}: access denied ({code or status})")
    retry_after = _seconds(headers.get("Retry-After"))
    if status in (429, 503) or code in ("SlowDown", "Throttling", "RequestLimitExceeded"):
        return ThrottledError(f"{what}: throttled ({code or status})", retry_after)
    if status >= 500 or status == 408:
        return TransientError(f"{what}: server error {status}" + (f" ({code})" if code else ""),
                              retry_after)
    if status == 416:
        return ChangedError(f"{what}: the requested range is not in the object "
                            f"(416 {code}): the source object changed")
    return LakeshiftError(f"{what}: {status} {code} {message}".rstrip())


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
