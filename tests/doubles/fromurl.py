"""Put Block From URL in front of Azurite, which answers it with 501 NotImplemented.

A loopback proxy (tests/faultproxy.py, so its fault rules apply too) that forwards every
request to Azurite unchanged, except Put Block From URL, which it carries out as the Blob
service REST reference ("Put Block From URL", version 2020-10-02 and later) describes:

* ``PUT {blob}?comp=block&blockid=ID`` with an empty body (Content-Length 0),
  ``x-ms-copy-source`` (a URL the service can read: a SAS URL, here of the same Azurite
  through this proxy) and ``x-ms-source-range: bytes=START-END`` (inclusive; required
  here, as lakeshift always sends it); optional ``x-ms-source-content-md5`` (the MD5 of the
  range: 400 Md5Mismatch when what was read differs) and ``x-ms-source-if-match`` (412
  CannotVerifyCopySource when the source's ETag differs);
* the request's own authorisation is Azurite's to check: the request is first sent to
  Azurite as it came, and anything but its 501 (a bad signature: 403) is the answer;
* the source is read with a ranged GET; a source that cannot be read answers with the
  source's status and ``CannotVerifyCopySource``; a range it does not serve whole, with
  416 InvalidRange;
* a block larger than 4000 MiB is refused (413 RequestBodyTooLarge);
* the bytes are staged as block ID (Put Block to Azurite, Shared Key); the answer is 201
  Created with ``Content-MD5`` (the MD5 of the staged block, as the service computes it),
  ``x-ms-request-server-encrypted: true``, ``x-ms-request-id`` and ``x-ms-version``.

``from_url_blocks`` counts the blocks it staged; ``corrupt_next`` flips one byte of the
next block it stages (a service that staged wrong bytes: the read-back proof must see it).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import ssl
import uuid
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from tests import servers
from tests.faultproxy import FaultProxy

MAX_BLOCK = 4000 * 1024 * 1024
_RANGE = re.compile(r"bytes=(\d+)-(\d+)")


class FromURLDouble(FaultProxy):
    def __init__(self, upstream: str, ca: Path | None = None) -> None:
        self.ca = ca
        self.from_url_blocks = 0
        self.corrupt_next = False
        super().__init__(upstream)

    async def _serve(self) -> None:
        await super()._serve()
        if self.ca is not None:
            # aiohttp's default TLS context predates SSL_CERT_FILE: trust the tests' CA here.
            await self._session.close()
            tls = ssl.create_default_context(cafile=str(self.ca))
            self._session = ClientSession(timeout=ClientTimeout(total=120),
                                          auto_decompress=False,
                                          connector=TCPConnector(ssl=tls))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        q = parse_qs(urlsplit(request.path_qs).query)
        if request.method == "PUT" and q.get("comp") == ["block"] and \
                "x-ms-copy-source" in request.headers:
            return await self._put_block_from_url(request, q)
        return await super()._handle(request)

    def _error(self, status: int, code: str, message: str) -> web.Response:
        body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        return web.Response(status=status, body=body, headers={
            "x-ms-error-code": code, "Content-Type": "application/xml",
            "x-ms-request-id": str(uuid.uuid4()), "x-ms-version": _version(request=None)})

    async def _put_block_from_url(self, request: web.Request,
                                  q: dict[str, list[str]]) -> web.StreamResponse:
        await request.read()
        with self.lock:
            self.seen.append((request.method, request.path_qs,
                              frozenset(k.lower() for k in request.headers)))
        # Azurite checks the request's authorisation (and answers 501 once it passes).
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "transfer-encoding", "connection")}
        headers["Host"] = request.headers.get("Host", "")
        async with self._session.put(self.upstream + request.path_qs, headers=headers,
                                     data=None, skip_auto_headers=("Content-Type",)) as up:
            answer = await up.read()
            if up.status != 501:
                return web.Response(status=up.status, body=answer, headers={
                    k: v for k, v in up.headers.items()
                    if k.lower() in ("x-ms-error-code", "content-type", "x-ms-request-id")})
        if request.headers.get("Content-Length", "0") != "0":
            return self._error(400, "InvalidHeaderValue", "Content-Length must be 0.")
        block_ids = q.get("blockid", [])
        if len(block_ids) != 1:
            return self._error(400, "MissingRequiredQueryParameter", "blockid is required.")
        rng = _RANGE.fullmatch(request.headers.get("x-ms-source-range", ""))
        if rng is None:
            return self._error(400, "InvalidHeaderValue", "x-ms-source-range is invalid.")
        start, end = int(rng.group(1)), int(rng.group(2))
        if end < start:
            return self._error(416, "InvalidRange", "The range specified is invalid.")
        if end - start + 1 > MAX_BLOCK:
            return self._error(413, "RequestBodyTooLarge", "The block is too large.")
        source = request.headers["x-ms-copy-source"]
        get_headers = {"Range": f"bytes={start}-{end}", "x-ms-version": _version(request)}
        if "x-ms-source-if-match" in request.headers:
            get_headers["If-Match"] = request.headers["x-ms-source-if-match"]
        async with self._session.get(source, headers=get_headers) as src:
            data = await src.read()
            if src.status == 412:
                return self._error(412, "CannotVerifyCopySource",
                                   "The condition specified using HTTP conditional header(s) "
                                   "is not met.")
            if src.status not in (200, 206):
                return self._error(src.status, "CannotVerifyCopySource",
                                   f"The source answered {src.status}.")
        if len(data) != end - start + 1:
            return self._error(416, "InvalidRange", "The source did not serve the whole range.")
        want = request.headers.get("x-ms-source-content-md5")
        if want is not None and base64.b64decode(want) != hashlib.md5(data).digest():
            return self._error(400, "Md5Mismatch", "The MD5 of the source range differs.")
        if self.corrupt_next:
            self.corrupt_next = False
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        await asyncio.to_thread(self._stage, request.path, unquote(block_ids[0]), data)
        with self.lock:
            self.from_url_blocks += 1
        return web.Response(status=201, headers={
            "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
            "x-ms-request-server-encrypted": "true", "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-version": _version(request), "Date": formatdate(usegmt=True)})

    def _stage(self, path: str, wire_id: str, data: bytes) -> None:
        """Put Block to Azurite with the account key (the SDK base64-encodes the ID)."""
        from azure.storage.blob import BlobServiceClient

        _, _account, container, blob = path.split("/", 3)
        kw: dict[str, Any] = {"connection_verify": str(self.ca)} if self.ca else {}
        service = BlobServiceClient(f"{self.upstream}/{servers.AZURITE_ACCOUNT}",
                                    credential={"account_name": servers.AZURITE_ACCOUNT,
                                                "account_key": servers.AZURITE_KEY}, **kw)
        client = service.get_blob_client(container, unquote(blob))
        client.stage_block(base64.b64decode(wire_id).decode(), data)


def _version(request: web.Request | None) -> str:
    if request is not None and "x-ms-version" in request.headers:
        return request.headers["x-ms-version"]
    return "2023-11-03"
