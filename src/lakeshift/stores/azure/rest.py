"""The Blob service REST API over the wire client: every Azure operation lakeshift sends.

Measured (bench/README.md): the azure-storage-blob SDK spent ~2 ms of client CPU per Put
Blob, several times the cost of the request itself, and importing it costs ~0.15 s at every
start; on small files client CPU decides throughput, on a short run the start-up does.  This
module sends the same requests — Put Blob (whole or streamed) with ``Content-MD5`` (transit
check) and ``x-ms-blob-content-md5`` (stored), Put Block, Put Block List, List Blobs, Get
Blob Properties, Delete Blob, Create Container, Get Account Information — authorised with
Shared Key, a SAS or an Entra ID bearer token, following the Blob service REST reference
("Authorize with Shared Key", "Authorize with Microsoft Entra ID", each operation's page).
The requests go through ``stores.wire`` (a lean HTTP/1.1 client): aiohttp spent ~0.3 ms of
client CPU per request, about a quarter of a small object's.

What a request carries and what an answer holds are in azure/blob_format.py, the Shared Key
signer in azure/shared_key.py, the error an answer means in azure/status.py and Entra ID
tokens in azure/tokens.py; their names that other modules and the tests import from here
are still here (the same objects).
"""

from __future__ import annotations

import asyncio
import base64
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from lakeshift.errors import ConnectError, LakeshiftError, NotFoundError, TransientError
from lakeshift.model import Data, ObjectInfo, ObjectProps
from lakeshift.redact import redact, register_secret
from lakeshift.stores import http, wire
from lakeshift.stores.azure.blob_format import (
    _UNRESERVED,
    API_VERSION,
    PUT_FROM_URL_MAX,
    SYNC_COPY_MAX,
    DelegationKey,
    ListPage,
    _b64,
    _blob_headers,
    _block_list_xml,
    _object_info,
    _property_headers,
    _wire_id,
    copy_from_url_headers,
    parse_list,
    put_block_from_url_headers,
    put_from_url_headers,
    quote_key,
)
from lakeshift.stores.azure.shared_key import canonical_resource, shared_key_signature
from lakeshift.stores.azure.status import _looks_like_s3, status_error
from lakeshift.stores.azure.tokens import GEN1_SCOPE, STORAGE_SCOPE, BearerTokens
from lakeshift.stores.base import Pieces
from lakeshift.stores.props import unquote_etag
from lakeshift.stores.reach import Endpoint, not_the_service

__all__ = [
    "API_VERSION",
    "GEN1_SCOPE",
    "PUT_FROM_URL_MAX",
    "STORAGE_SCOPE",
    "SYNC_COPY_MAX",
    "BearerTokens",
    "DelegationKey",
    "LeanBlobClient",
    "canonical_resource",
    "copy_from_url_headers",
    "put_from_url_headers",
    "quote_key",
    "shared_key_signature",
    "status_error",
]

_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """Now as an HTTP date (x-ms-date), formatted once a second: formatting it for every
    request cost ~10-30 µs, a tenth of a small object's request."""
    global _date_cache
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache = (now, format_datetime(datetime.fromtimestamp(now, UTC), usegmt=True))
    return _date_cache[1]


class LeanBlobClient:
    """The Blob operations of one container (and its account); owns a ``wire.Pool`` of
    connections to the endpoint's origin (close it).  Every method raises lakeshift errors
    (``status_error``).  Authorised by Shared Key (``key``), a SAS (``sas``) or Entra ID
    (``tokens``)."""

    #: An upload whose connection takes no data for this long is given up (and retried);
    #: ``http.STALL_SECONDS`` when None.
    stall_seconds: float | None = None

    def __init__(self, endpoint: str, account: str, container: str, key: str | None,
                 sas: str | None, tokens: BearerTokens | None = None,
                 connections: int = 128) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.base = f"{self.endpoint}/{container}"
        self.account = account
        self.key = base64.b64decode(key) if key else None
        self.sas = sas
        self.tokens = tokens
        self.connections = connections
        split = urlsplit(self.endpoint)
        #: What the Pool connects to; a request's target is its URL after this.
        self._origin = f"{split.scheme}://{split.netloc}"
        self._pool: wire.Pool | None = None
        #: The Date header of the last response: the service's clock.
        self.last_date: datetime | None = None
        self._date_text = ""
        #: A request with these credentials has succeeded (see status_error).
        self.credentials_worked = False

    def _client(self) -> wire.Pool:
        if self._pool is None:
            # Over HTTPS the Pool loads the system's trust store when it first connects (so
            # SSL_CERT_FILE as it is then counts; loading it costs ~17 ms).
            self._pool = wire.Pool(self._origin, connections=self.connections)
        return self._pool

    def _url(self, key: str | None, query: str = "") -> str:
        if key is not None:  # (quote_key, inline: a plain key is taken as it is)
            key = key if _UNRESERVED.fullmatch(key) else quote(key, safe="/")
        url = self.base if key is None else f"{self.base}/{key}"
        if self.sas:
            return f"{url}?{query}&{self.sas}" if query else f"{url}?{self.sas}"
        return f"{url}?{query}" if query else url

    # -- account and container -----------------------------------------------------

    async def account_is_hns(self, what: str, first: Endpoint | None = None) -> bool:
        """Get Account Information: does the account have a hierarchical namespace?
        ``first``: as ``_send``'s."""
        params = "&".join(p for p in ("restype=account&comp=properties", self.sas or "") if p)
        headers, _ = await self._send("GET", f"{self.endpoint}/?{params}", {}, b"", what,
                                      first=first)
        return str(headers.get("x-ms-is-hns-enabled", "")).lower() == "true"

    async def user_delegation_key(self, start: datetime, expiry: datetime,
                                  what: str) -> DelegationKey:
        """Get User Delegation Key (an Entra ID token only): the key a user-delegation SAS
        is signed with, valid from ``start`` to ``expiry`` (at most seven days)."""
        when = "%Y-%m-%dT%H:%M:%SZ"
        body = ('<?xml version="1.0" encoding="utf-8"?><KeyInfo>'
                f"<Start>{start.strftime(when)}</Start><Expiry>{expiry.strftime(when)}</Expiry>"
                "</KeyInfo>").encode()
        params = "restype=service&comp=userdelegationkey"
        _, answer = await self._send("POST", f"{self.endpoint}/?{params}",
                                     {"Content-Type": "application/xml"}, body, what)
        try:
            root = ET.fromstring(answer)
        except ET.ParseError as e:
            raise TransientError(f"{what}: user delegation key is not whole XML ({e})") \
                from None
        fields = [root.findtext(name) or "" for name in (
            "SignedOid", "SignedTid", "SignedStart", "SignedExpiry", "SignedService",
            "SignedVersion", "Value")]
        if not fields[-1]:
            raise TransientError(f"{what}: the user delegation key came without a value")
        register_secret(fields[-1])
        return DelegationKey(*fields)

    async def create_container(self, what: str) -> bool:
        """Create Container; False when it already exists."""
        try:
            await self._send("PUT", self._url(None, "restype=container"), {}, b"", what)
        except LakeshiftError as e:
            if "ContainerAlreadyExists" in str(e):
                return False
            raise
        return True

    # -- listing -------------------------------------------------------------------

    async def list_page(self, prefix: str, delimiter: str | None, marker: str | None,
                        what: str, size: int = 5000, first: Endpoint | None = None) -> ListPage:
        """One page of List Blobs, with metadata.  ``first``: as ``_send``'s."""
        q = {"restype": "container", "comp": "list", "include": "metadata",
             "maxresults": str(size)}
        if prefix:
            q["prefix"] = prefix
        if delimiter:
            q["delimiter"] = delimiter
        if marker:
            q["marker"] = marker
        _, body = await self._send("GET", self._url(None, urlencode(q, quote_via=quote)), {},
                                   b"", what, not_found="ContainerNotFound", first=first)
        try:
            return parse_list(body)
        except ET.ParseError as e:
            # A body cut short that still looked complete: the page can be asked for again.
            raise TransientError(f"{what}: listing response is not whole XML ({e})") from None

    # -- blobs ---------------------------------------------------------------------

    async def head(self, key: str, what: str) -> ObjectInfo | None:
        """Get Blob Properties; None when there is no such blob."""
        try:
            h, _ = await self._send("HEAD", self._url(key), {}, b"", what)
        except NotFoundError:
            return None
        meta = {k[len("x-ms-meta-"):]: v for k, v in h.items()
                if k.lower().startswith("x-ms-meta-")}
        return _object_info(key, h.get("Content-Length"), h.get("Last-Modified"),
                            h.get("ETag"), h.get("Content-MD5"), meta)

    async def delete(self, key: str, what: str) -> None:
        """Delete Blob (a blob already gone is fine)."""
        try:
            await self._send("DELETE", self._url(key), {}, b"", what)
        except NotFoundError:
            pass

    async def put(self, key: str, data: Data, props: ObjectProps, md5: bytes,
                  metadata: dict[str, str], what: str) -> None:
        """Put Blob: the whole object in one request (a data request, as ``_send_data``
        sends it; called directly: one coroutine fewer per object)."""
        await self._send("PUT", self._url(key), _blob_headers(props, md5, metadata), data,
                         what, data_request=True)

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes | None, metadata: dict[str, str],
                         what: str) -> bytes | None:
        """Put Blob with the body streamed from ``chunks`` (``size`` bytes in all); returns
        the Content-MD5 the service computed of what it stored (None if it sent none).

        ``Content-MD5`` is ``md5``: the service hashes what it receives and creates the
        blob only when the two agree, so an object is proven end to end without the
        client hashing it.  Without ``md5`` the caller compares the returned MD5 with its
        own.  Should ``chunks`` fail or fall short, the request is cut and no blob is
        created."""
        headers = await self._send_watched("PUT", self._url(key),
                                           _blob_headers(props, md5, metadata), chunks, size,
                                           what)
        returned = headers.get("Content-MD5")
        return base64.b64decode(returned) if returned else None

    async def put_block(self, key: str, block_id: str, data: Data | Pieces, md5: bytes | None,
                        what: str, crc64: bytes | None = None) -> None:
        """Put Block, with the block's MD5 as Content-MD5 or its CRC-64/NVME (8 bytes,
        little-endian) as ``x-ms-content-crc64`` if given: the service checks either (not
        both: a request with both is refused) and answers a mismatch with 400
        Md5Mismatch / Crc64Mismatch (an IntegrityError, see status_error)."""
        headers = {"Content-Type": "application/octet-stream"}
        if md5 is not None:
            headers["Content-MD5"] = _b64(md5)
        elif crc64 is not None:
            headers["x-ms-content-crc64"] = _b64(crc64)
        url = self._url(key, f"comp=block&blockid={quote(_wire_id(block_id), safe='')}")
        if isinstance(data, Pieces):  # sent buffer after buffer, never joined
            await self._send("PUT", url, headers, data.parts, what, length=len(data),
                             data_request=True)
        else:
            await self._send_data("PUT", url, headers, data, what)

    async def _send_data(self, method: str, url: str, headers: dict[str, str], data: Data,
                         what: str) -> None:
        """A request carrying ``data``: no limit on the whole request, the stall limit
        (``wire`` sends it in slices, each of which the connection must take in time)."""
        await self._send(method, url, headers, data, what, data_request=True)

    async def _send_watched(self, method: str, url: str, headers: dict[str, str],
                            chunks: AsyncIterator[bytes | memoryview], size: int,
                            what: str) -> Any:
        """A request whose body (``size`` bytes from ``chunks``) may take any time to send,
        but whose connection may not stop taking data for the stall limit (time spent
        reading the source or waiting for --max-bandwidth is not counted); returns the
        response's headers.  A failing source cuts the request, and its error (not the
        cut) is what is raised."""
        response_headers, _ = await self._send(method, url, headers, chunks, what,
                                               length=size, data_request=True)
        return response_headers

    async def put_from_url(self, key: str, url: str, props: ObjectProps, md5: bytes,
                           metadata: dict[str, str], what: str) -> None:
        """Put Blob From URL (see put_from_url_headers)."""
        await self._send("PUT", self._url(key), put_from_url_headers(url, props, md5, metadata),
                         b"", what, data_request=True)

    async def copy_from_url(self, key: str, url: str, md5: bytes, metadata: dict[str, str],
                            source_etag: str | None, what: str) -> None:
        """Copy Blob From URL (see copy_from_url_headers); the answer says the copy is
        done (x-ms-copy-status: success) or it is an error."""
        headers, _ = await self._send("PUT", self._url(key),
                                      copy_from_url_headers(url, md5, metadata, source_etag),
                                      b"", what, data_request=True)
        status = headers.get("x-ms-copy-status", "")
        if status != "success":
            raise TransientError(f"{what}: the synchronous copy answered {status or 'nothing'}")

    async def put_block_from_url(self, key: str, block_id: str, url: str, start: int,
                                 end: int, source_etag: str | None, what: str) -> bytes | None:
        """Put Block From URL (see put_block_from_url_headers); returns the MD5 the service
        computed of the block it staged (None if it sent none)."""
        query = f"comp=block&blockid={quote(_wire_id(block_id), safe='')}"
        headers, _ = await self._send("PUT", self._url(key, query),
                                      put_block_from_url_headers(url, start, end, source_etag),
                                      b"", what, data_request=True)
        returned = headers.get("Content-MD5")
        return base64.b64decode(returned) if returned else None

    def blob_url(self, key: str) -> str:
        """The blob's URL without any query (a SAS is added by the caller)."""
        return f"{self.base}/{quote(key, safe='/')}"

    async def put_block_list(self, key: str, block_ids: Sequence[str], props: ObjectProps,
                             md5: bytes | None, metadata: dict[str, str],
                             what: str) -> str | None:
        """Put Block List: commit the blocks in order, storing the whole object's MD5 (none
        when ``md5`` is None); returns the committed blob's ETag (unquoted)."""
        body = _block_list_xml(block_ids)
        headers = _property_headers(props, md5, metadata)
        headers["Content-Type"] = "application/xml; charset=utf-8"
        answer, _ = await self._send("PUT", self._url(key, "comp=blocklist"), headers, body,
                                     what)
        return unquote_etag(answer.get("ETag"))

    async def set_properties(self, key: str, props: ObjectProps, md5: bytes,
                             if_match: str | None, what: str) -> str | None:
        """Set Blob Properties: store ``md5`` as the blob's Content-MD5, with ``props``
        (the service replaces every x-ms-blob-* property at once, so all are sent, as Put
        Blob and Put Block List send them; the metadata is left as it is).  With
        ``if_match`` (an ETag) only that version of the blob is changed (412 otherwise).

        For a blob committed without an MD5 and proven afterwards (a server-side block
        copy read back): the MD5 is stored only once the copy is proven.  Returns the
        blob's new ETag (unquoted)."""
        headers = _property_headers(props, md5, {})
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        answer, _ = await self._send("PUT", self._url(key, "comp=properties"), headers, b"",
                                     what)
        return unquote_etag(answer.get("ETag"))

    async def set_metadata(self, key: str, metadata: dict[str, str], if_match: str | None,
                           what: str) -> str | None:
        """Set Blob Metadata: replace the blob's metadata with ``metadata`` (already
        encoded); with ``if_match`` only that version (412 otherwise).  Returns the new
        ETag (unquoted)."""
        headers = {f"x-ms-meta-{name}": value for name, value in metadata.items()}
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        answer, _ = await self._send("PUT", self._url(key, "comp=metadata"), headers, b"",
                                     what)
        return unquote_etag(answer.get("ETag"))

    # -- the request ---------------------------------------------------------------

    async def _send(self, method: str, url: str, headers: dict[str, str],
                    data: Data | tuple[Data, ...] | AsyncIterator[Data], what: str,
                    length: int | None = None,
                    not_found: str = "", data_request: bool = False,
                    _renewed: bool = False,
                    first: Endpoint | None = None) -> tuple[Any, bytes]:
        """One request; returns the response headers and body on 2xx, else raises the
        lakeshift error for it.  ``length`` is required for a streamed body; ``not_found``
        is the error code a 404 without one means (HEAD responses have no body).  ``first``:
        the request is the first contact with that endpoint; an error answer that is not
        Azure Storage's (no ``x-ms-request-id``, no ``x-ms-error-code``: a web server's 404,
        an S3 service's answer) is EndpointMismatch (stores/reach.py).

        A control request must have its answer within ``http.REQUEST_SECONDS``; a data
        request (``data_request``: a body, or a copy the service makes) has no limit on the
        whole, only the stall limit.  Connecting: ``http.CONNECT_SECONDS``."""
        if length is None:
            assert isinstance(data, bytes | memoryview)
            length = len(data)
        headers["x-ms-version"] = API_VERSION
        # (_http_date's cache looked up here: no Python call per request within a second.)
        headers["x-ms-date"] = _date_cache[1] if _date_cache[0] == int(time.time()) else \
            _http_date()
        if method == "PUT" or length:
            headers["Content-Length"] = str(length)
            # Signed, so sent exactly as signed (the client adds no headers of its own).
            headers.setdefault("Content-Type", "application/octet-stream")
        if self.key is not None:
            headers["Authorization"] = shared_key_signature(self.account, self.key, method, url,
                                                            headers)
        elif self.tokens is not None:
            headers["Authorization"] = f"Bearer {await self.tokens.get()}"
        if data_request:
            stall = self.stall_seconds or http.STALL_SECONDS
            limit: float | None = None
        else:
            stall = limit = http.REQUEST_SECONDS
        pool = self._pool or self._client()
        target, sent = url[len(self._origin):], data if length else None
        try:
            if limit is None:  # a data request: the stall limit only, no context manager
                resp = await pool.request(method, target, headers, sent, length=length,
                                          connect_timeout=http.CONNECT_SECONDS,
                                          stall_timeout=stall)
                body = await resp.read()  # (releases the connection, whatever happens)
            else:
                # A control request's limit holds to the end of its body too (a listing
                # page trickled byte by byte would otherwise never end).
                async with asyncio.timeout(limit):
                    resp = await pool.request(method, target, headers, sent, length=length,
                                              connect_timeout=http.CONNECT_SECONDS,
                                              stall_timeout=stall, response_timeout=limit)
                    body = await resp.read()
        except TimeoutError:
            raise TransientError(f"{what}: no response from {self._client().peer} "
                                 f"complete within {http.REQUEST_SECONDS:g} s") from None
        except wire.ConnectFailed as e:
            raise ConnectError(f"{what}: {type(e).__name__}: {redact(str(e))[:200]}",
                               redact(e.reason)) from None
        except wire.WireError as e:
            # (Its message never holds the URL; redacted all the same.)
            raise TransientError(f"{what}: {type(e).__name__}: {redact(str(e))[:200]}") \
                from None
        date = resp.headers.get("Date")
        if date and date != self._date_text:  # (parsed once a second, not per request)
            self._date_text = date
            self.last_date = parsedate_to_datetime(date)
        if 200 <= resp.status < 300:
            self.credentials_worked = True
            return resp.headers, body
        refused = resp.status == 401 or (
            resp.status == 403
            and resp.headers.get("x-ms-error-code") == "AuthenticationFailed")
        if refused and self.tokens is not None and \
                isinstance(data, bytes | memoryview | tuple) and not _renewed:
            # A token the service refuses (Azure Storage answers an expired one with 403
            # AuthenticationFailed, "Lifetime validation failed"): renewed (once for all
            # requests it refused) and this request sent again, once.
            self.tokens.expire(headers["Authorization"].removeprefix("Bearer "))
            return await self._send(method, url, headers, data, what, length, not_found,
                                    data_request, _renewed=True)
        if first is not None and resp.status < 500 and resp.status != 429 and not (
                resp.headers.get("x-ms-request-id") or resp.headers.get("x-ms-error-code")):
            raise not_the_service(first, resp.status,
                                  "an S3 service" if _looks_like_s3(resp.headers, body) else "")
        code = resp.headers.get("x-ms-error-code", "") or (
            not_found if resp.status == 404 else "")
        raise status_error(resp.status, code, what, resp.headers.get("Retry-After"),
                           body.decode("utf-8", "replace")[:300],
                           resp.headers.get("x-ms-request-id", ""),
                           self.credentials_worked)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
