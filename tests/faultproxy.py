"""A loopback HTTP proxy in front of moto or Azurite that injects faults on purpose.

Faults are queued as rules; each matching request consumes one use of the first rule whose
method and path pattern match:

* ``status``: answer with that status (503/429/500) and headers (Retry-After, error codes)
  without forwarding;
* ``reset``: forward, send the headers and half the body, then drop the connection;
* ``truncate``: forward, announce the full length, send half, close;
* ``slow``: forward, send the body in small pieces with pauses;
* ``flip``: forward, flip one byte in the middle of the response body;
* ``flip_request``: flip one byte of the request body before forwarding (the service must
  notice through Content-MD5);
* ``stall_request``: read none of the request body for ``delay`` seconds (the client's
  buffers fill and its upload stops), then answer 500;
* ``delay``: wait ``delay`` seconds, then forward (a slow but alive endpoint).

``opaque_etags(pattern)`` makes the S3 ETags of keys matching ``pattern`` opaque, as S3's
are for objects encrypted with SSE-KMS or SSE-C (moto keeps them MD5s): 32 hex digits that
are not the data's MD5, in listings, GET and HEAD responses; If-Match is mapped back.

A rule may be limited to one kind of request (``request=``, see ``request_kind``):
``listing`` (S3 ListObjectsV2 ``?list-type=2``, Azure List Blobs ``restype=container`` +
``comp=list``), ``metadata`` (HEAD: S3 HeadObject, Azure Get Blob Properties) or ``data``
(GET of an object, PUT of an object / part / block).  ``fault(request, what, times)`` is the
short form: ``what`` is 503, 429 (with Retry-After), ``reset`` or ``truncate``.

It runs in its own thread and event loop; ``stop()`` ends it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

_rng = random.Random(1234)

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate", "host", "content-length"}


@dataclass
class Rule:
    kind: str
    method: str = ".*"
    path: str = ".*"
    uses: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hits: int = 0
    #: Chance that a matching request is hit (1.0 = every one, while uses last).
    probability: float = 1.0
    #: For stall_request: how long nothing is read; for delay: how long before forwarding.
    delay: float = 30.0
    #: Only requests of this kind (request_kind): listing, metadata, data; None for any.
    request: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.uses > 0 and re.fullmatch(self.method, method) is not None
                and re.search(self.path, path) is not None
                and (self.request is None or request_kind(method, path) == self.request)
                and (self.probability >= 1.0 or _rng.random() < self.probability))


def request_kind(method: str, path_qs: str) -> str:
    """listing, metadata, data, or other (container creation, commits, deletes, ...)."""
    query = path_qs.partition("?")[2]
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    if method == "GET" and (params.get("list-type") == "2" or params.get("comp") == "list"):
        return "listing"
    if method == "HEAD":
        return "metadata"
    if method == "GET" and not params.keys() - {"partNumber", "versionId"}:
        return "data"
    if method == "PUT" and ("restype" not in params and
                            params.get("comp") in (None, "block")):
        return "data"  # Put Blob, Put Block, PutObject, UploadPart
    return "other"


class LoopbackProxy:
    """An aiohttp server on a free loopback port, in its own thread and event loop, in front
    of ``upstream``; a subclass answers each request in ``_handle`` (``self._session`` is a
    client for the upstream).  ``stop()`` ends it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()

    async def _serve(self) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=120), auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown: a handler still stalled or streaming when the test ends is cut off
        # instead of holding stop() for aiohttp's default 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self._ready.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def stop(self) -> None:
        if self._loop is None:
            return
        self._stopping = True  # stalled handlers end now

        async def shutdown() -> None:
            await self._runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class FaultProxy(LoopbackProxy):
    def __init__(self, upstream: str) -> None:
        self.rules: list[Rule] = []
        self.lock = threading.Lock()
        self.requests = 0
        #: Body bytes that passed through, both ways; and (method, path, header names) of
        #: each request, to count kinds of requests by what they carry.
        self.body_bytes = 0
        self.seen: list[tuple[str, str, frozenset[str]]] = []
        self._opaque: re.Pattern[str] | None = None
        self._real: dict[str, str] = {}  # opaque ETag -> real one
        self.injected = 0
        super().__init__(upstream)

    def add(self, kind: str, **kw: Any) -> Rule:
        rule = Rule(kind, **kw)
        with self.lock:
            self.rules.append(rule)
        return rule

    def fault(self, request: str, what: str | int, times: int = 1, path: str = ".*",
              retry_after: int = 1) -> Rule:
        """Fault the next ``times`` requests of kind ``request`` (whose path matches
        ``path``) with ``what``: 503, 429 (Retry-After: ``retry_after``), reset, truncate."""
        if what in (503, 429):
            headers = {"Retry-After": str(retry_after)} if what == 429 else {}
            return self.add("status", status=int(what), headers=headers, uses=times,
                            path=path, request=request)
        assert what in ("reset", "truncate"), what
        return self.add(str(what), uses=times, path=path, request=request)

    def opaque_etags(self, pattern: str) -> None:
        self._opaque = re.compile(pattern)

    def _hide(self, etag_hex: str) -> str:
        fake = hashlib.md5(b"sse-kms:" + etag_hex.encode()).hexdigest()
        self._real[fake] = etag_hex
        return fake

    def _hide_in_headers(self, path: str, headers: dict[str, str]) -> None:
        for k in list(headers):
            if k.lower() == "etag" and self._opaque is not None and self._opaque.search(path):
                m = re.fullmatch(r'"?([0-9a-f]{32})"?', headers[k])
                if m:
                    headers[k] = f'"{self._hide(m.group(1))}"'

    def _hide_in_listing(self, body: bytes) -> bytes:
        pattern = self._opaque
        assert pattern is not None

        def contents(m: re.Match[str]) -> str:
            block = m.group(0)
            key = re.search(r"<Key>(.*?)</Key>", block)
            if key is None or not pattern.search(key.group(1)):
                return block
            return re.sub(r"(<ETag>[^<0-9a-f]*)([0-9a-f]{32})(?=[^<0-9a-f]*</ETag>)",
                          lambda e: e.group(1) + self._hide(e.group(2)), block)

        text = body.decode("utf-8")
        return re.sub(r"<Contents>.*?</Contents>", contents, text, flags=re.S).encode("utf-8")

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def _take(self, method: str, path: str) -> Rule | None:
        with self.lock:
            self.requests += 1
            for r in self.rules:
                if r.matches(method, path):
                    r.uses -= 1
                    r.hits += 1
                    self.injected += 1
                    return r
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        rule = self._take(request.method, path)
        if rule is not None and rule.kind == "stall_request":
            deadline = asyncio.get_running_loop().time() + rule.delay
            while asyncio.get_running_loop().time() < deadline and not self._stopping:
                if request.transport is None or request.transport.is_closing():
                    break  # the client gave up
                await asyncio.sleep(0.1)
            return web.Response(status=500)
        if rule is not None and rule.kind == "delay":
            await asyncio.sleep(rule.delay)
            rule = None
        body = await request.read()
        with self.lock:
            self.body_bytes += len(body)
            self.seen.append((request.method, path,
                              frozenset(k.lower() for k in request.headers)))
        if rule is not None and rule.kind == "status":
            return web.Response(status=rule.status, headers=rule.headers, body=rule.body)
        if rule is not None and rule.kind == "flip_request" and body:
            i = len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        headers["Host"] = request.headers.get("Host", "")
        for k in list(headers):
            if k.lower() in ("if-match", "if-none-match"):
                tag = headers[k].strip('"')
                headers[k] = f'"{self._real.get(tag, tag)}"'

        # No header the client did not send (a Content-Type added here would break Shared
        # Key signatures, which cover it).
        async with self._session.request(request.method, self.upstream + path,
                                         data=body or None, headers=headers,
                                         allow_redirects=False,
                                         skip_auto_headers=("Content-Type",)) as up:
            payload = await up.read()
            with self.lock:
                self.body_bytes += len(payload)
            out_headers = {k: v for k, v in up.headers.items() if k.lower() not in HOP}
            if self._opaque is not None:
                self._hide_in_headers(request.path, out_headers)
                if "xml" in up.headers.get("Content-Type", "") and b"<Contents>" in payload:
                    payload = self._hide_in_listing(payload)
            if request.method == "HEAD":  # no body, but the object's length
                head = web.StreamResponse(status=up.status, headers=out_headers)
                if "Content-Length" in up.headers:
                    head.content_length = int(up.headers["Content-Length"])
                await head.prepare(request)
                return head
            if rule is None or rule.kind == "flip_request" or not payload:
                return web.Response(status=up.status, headers=out_headers, body=payload)
            if rule.kind == "flip":
                i = len(payload) // 2
                payload = payload[:i] + bytes([payload[i] ^ 0x01]) + payload[i + 1:]
                return web.Response(status=up.status, headers=out_headers, body=payload)
            resp = web.StreamResponse(status=up.status, headers=out_headers)
            resp.content_length = len(payload)
            await resp.prepare(request)
            if rule.kind in ("reset", "truncate"):
                await resp.write(payload[: len(payload) // 2])
                await asyncio.sleep(0.05)
                transport = request.transport
                if transport is not None:
                    if rule.kind == "reset":
                        sock = transport.get_extra_info("socket")
                        if sock is not None:  # RST instead of FIN
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                            b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    transport.close()
                return resp
            if rule.kind == "slow":
                step = max(1, len(payload) // 20)
                for i in range(0, len(payload), step):
                    await resp.write(payload[i:i + step])
                    await asyncio.sleep(0.02)
                await resp.write_eof()
                return resp
            await resp.write(payload)
            await resp.write_eof()
            return resp


class ArrivalsProxy(FaultProxy):
    """The fault proxy (no faults), noting when each request arrived and its kind
    (``request_kind``): what a request-rate cap let through, and when."""

    def __init__(self, upstream: str) -> None:
        self.arrivals: list[tuple[float, str]] = []
        super().__init__(upstream)

    def _take(self, method: str, path: str) -> Any:
        self.arrivals.append((time.monotonic(), request_kind(method, path)))
        return super()._take(method, path)
