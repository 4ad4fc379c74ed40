"""A loopback proxy in front of Azurite that checks ``x-ms-content-crc64`` as Azure does.

Azure Storage checks a request body against the CRC64 the request carries
(``x-ms-content-crc64``: CRC-64/NVME, base64 of its 8 bytes little-endian; Put Block, Put
Blob, Append Block) and refuses a mismatch with 400 and error code ``Crc64Mismatch``
(Blob service REST reference, "Put Block").  Azurite in ``--loose`` mode, as the tests run
it, takes the header without checking it (strict mode refuses it), so this proxy plays the
service's check: it computes the body's CRC64 with the Azure SDK's own implementation
(``azure-storage-extensions``, not the awscrt that lakeshift uses) and answers a mismatch
as the service does (the XML error body and headers of a recording of the real service);
every other request, and every matching one, goes on to Azurite unchanged.

Each request is recorded (method, path and query, whether it carried Content-MD5 and
x-ms-content-crc64), so a test can say which transit checksum each kind of request had.
It runs in its own thread and event loop; ``stop()`` ends it.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from azure.storage.extensions.checksums import crc64

from tests.faultproxy import LoopbackProxy

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
       "content-length"}


def service_crc64(body: bytes) -> str:
    """The body's CRC64 as the service computes and names it (base64, little-endian)."""
    return base64.b64encode(crc64.compute(body, 0).to_bytes(8, "little")).decode()


def mismatch_body(sent: str, computed: str, request_id: str) -> bytes:
    """The service's answer to a wrong x-ms-content-crc64 (as recorded from Azure)."""
    time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    return ('<?xml version="1.0" encoding="utf-8"?><Error><Code>Crc64Mismatch</Code>'
            "<Message>The CRC64 value specified in the request did not match with the "
            f"CRC64 value calculated by the server.\nRequestId:{request_id}\nTime:{time}"
            f"</Message><UserSpecifiedCrc>{sent}</UserSpecifiedCrc>"
            f"<ServerCalculatedCrc>{computed}</ServerCalculatedCrc></Error>").encode()


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    content_md5: bool
    crc64: bool
    refused: bool


class Crc64Service(LoopbackProxy):
    def __init__(self, upstream: str) -> None:
        self.seen: list[Seen] = []
        super().__init__(upstream)

    @property
    def refused(self) -> int:
        return sum(s.refused for s in self.seen)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        sent = request.headers.get("x-ms-content-crc64")
        computed = service_crc64(body) if sent is not None else None
        refused = sent is not None and sent != computed
        self.seen.append(Seen(request.method, request.path_qs,
                              "Content-MD5" in request.headers, sent is not None, refused))
        if refused:
            assert sent is not None and computed is not None
            request_id = str(uuid.uuid4())
            return web.Response(status=400, body=mismatch_body(sent, computed, request_id),
                                headers={"Content-Type": "application/xml",
                                         "x-ms-error-code": "Crc64Mismatch",
                                         "x-ms-request-id": request_id,
                                         "x-ms-version": "2023-11-03"})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        headers["Host"] = request.headers.get("Host", "")
        # No header the client did not send (Shared Key signs the Content-Type).
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         headers=headers, data=body or None,
                                         allow_redirects=False,
                                         skip_auto_headers=("Content-Type",)) as up:
            payload = await up.read()
            out = {k: v for k, v in up.headers.items() if k.lower() not in HOP}
            if request.method == "HEAD":  # no body, but the blob's length
                head = web.StreamResponse(status=up.status, headers=out)
                if "Content-Length" in up.headers:
                    head.content_length = int(up.headers["Content-Length"])
                await head.prepare(request)
                return head
            return web.Response(status=up.status, body=payload, headers=out)


def md5_only_destination(monkeypatch: Any) -> None:
    """Azure stores built from now on (in this process) check no block's CRC64, only its
    MD5, as a destination without ``block_crc64``: the paths lakeshift takes there."""
    from dataclasses import replace

    from lakeshift.stores.azure.store import AzureBlobStore

    init = AzureBlobStore.__init__

    def without_crc64(self: AzureBlobStore, config: Any) -> None:
        init(self, config)
        self.capabilities = replace(self.capabilities, block_crc64=False)

    monkeypatch.setattr(AzureBlobStore, "__init__", without_crc64)
