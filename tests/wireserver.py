"""A small HTTP/1.1 server on a free loopback port, for the tests of the wire client
(``lakeshift.stores.wire``) and of what is built on it.

It runs its own event loop in a thread, so sync tests, ``asyncio.run`` and other clients
(aiohttp) all reach it.  By default it is a tiny object store: PUT stores the body under the
path (201, an MD5 ETag), GET returns it (404 if none), HEAD gives the headers only, DELETE
answers 204.  Rules, matched per request kind (method and a path regex) and used a given
number of times, script everything else:

- ``answer``: a given status, headers and body; ``chunks=[sizes]`` sends it chunked
  (``trailers`` after the last chunk), ``close=True`` adds ``Connection: close`` and closes;
- ``raw``: bytes sent verbatim as the response (odd heads, HTTP/1.0), then ``close`` (a FIN),
  ``reset`` (an RST) or neither;
- ``cut``: declares the whole body and sends only ``at`` bytes of it, then closes;
- ``stall_head``: reads the request, answers nothing for ``delay`` seconds;
- ``stall_body``: sends the head and ``at`` body bytes, then nothing for ``delay``;
- ``reset`` / ``drop``: reads the request, then resets the connection (RST) / closes it
  (FIN) without answering (a keep-alive connection the server dropped);
- ``slow_read``: reads nothing of the body for ``delay`` seconds (the client's send
  blocks), then reads it and answers as the default would.

Every request is recorded (method, target, headers, body length, connection number).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Rule:
    kind: str
    method: str | None = None
    path: str | None = None
    uses: int | None = None
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    chunks: list[int] | None = None
    trailers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False
    #: raw: end with an RST after the bytes, not a FIN.
    reset: bool = False
    raw: bytes = b""
    at: int = 0
    delay: float = 0.0

    def matches(self, method: str, target: str) -> bool:
        if self.uses is not None and self.uses <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.path is None or re.search(self.path, target) is not None


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]
    length: int
    connection: int


class WireServer:
    """See the module docstring.  ``tls``: (certificate, key) PEM files to serve HTTPS."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.rules: list[Rule] = []
        self.requests: list[Seen] = []
        self.objects: dict[str, bytes] = {}
        self.injected = 0
        self._connections = itertools.count(1)
        self._context: ssl.SSLContext | None = None
        if tls is not None:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(str(tls[0]), str(tls[1]))
        self._loop = asyncio.new_event_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        started = threading.Event()
        self._loop.call_soon(started.set)
        self._thread.start()
        started.wait(10)
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    @property
    def url(self) -> str:
        return f"{'https' if self._context else 'http'}://127.0.0.1:{self.port}"

    def add(self, kind: str, **options: Any) -> Rule:
        rule = Rule(kind, **options)
        self.rules.append(rule)
        return rule

    def connections(self) -> int:
        """How many connections the server accepted so far."""
        return len({r.connection for r in self.requests})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self._sock,
                                                  ssl=self._context)

    def stop(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> WireServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -------------------------------------------------------------------

    def _match(self, method: str, target: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(method, target):
                if rule.uses is not None:
                    rule.uses -= 1
                self.injected += 1
                return rule
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        number = next(self._connections)
        try:
            while await self._one(number, reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError,
                ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.transport.abort()

    async def _one(self, number: int, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is to end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [(n.strip(), v.strip()) for n, _, v in (x.partition(":") for x in lines[1:])]
        lengths = [v for n, v in headers if n.lower() == "content-length"]
        length = int(lengths[0]) if lengths else 0
        rule = self._match(method, target)
        kind = rule.kind if rule else "default"
        if rule is not None and kind == "slow_read":
            await asyncio.sleep(rule.delay)
        body = await reader.readexactly(length) if length else b""
        self.requests.append(Seen(method, target, headers, len(body), number))
        path = target.split("?", 1)[0]
        if rule is None or kind == "slow_read":
            return await self._default(method, path, body, writer)
        if kind == "drop":
            writer.close()
            return False
        if kind == "reset":
            _reset(writer)
            return False
        if kind == "stall_head":
            await asyncio.sleep(rule.delay)
            return False
        if kind == "raw":
            writer.write(rule.raw)
            await writer.drain()
            if rule.reset:
                await asyncio.sleep(0.05)  # the bytes reach the client before the RST
                _reset(writer)
                return False
            if rule.close:
                writer.close()
            return not rule.close
        response_headers = list(rule.headers)
        if rule.close:
            response_headers.append(("Connection", "close"))
        if rule.chunks is not None:
            response_headers.append(("Transfer-Encoding", "chunked"))
        elif not any(n.lower() == "content-length" for n, _ in rule.headers) and \
                rule.status not in (204, 304):
            response_headers.append(("Content-Length", str(len(rule.body))))
        writer.write(_head(rule.status, response_headers))
        if kind == "cut":
            writer.write(rule.body[:rule.at])
            await writer.drain()
            return False
        if kind == "stall_body":
            writer.write(rule.body[:rule.at])
            await writer.drain()
            await asyncio.sleep(rule.delay)
            return False
        if method != "HEAD" and rule.status not in (204, 304):
            if rule.chunks is not None:
                pos = 0
                for size in rule.chunks:
                    writer.write(b"%x\r\n" % size + rule.body[pos:pos + size] + b"\r\n")
                    pos += size
                    await writer.drain()
                trailer = "".join(f"{n}: {v}\r\n" for n, v in rule.trailers)
                writer.write(b"0\r\n" + trailer.encode() + b"\r\n")
            else:
                writer.write(rule.body)
        await writer.drain()
        return not rule.close

    async def _default(self, method: str, path: str, body: bytes,
                       writer: asyncio.StreamWriter) -> bool:
        if method in ("PUT", "POST"):
            self.objects[path] = body
            etag = hashlib.md5(body).hexdigest()
            writer.write(_head(201, [("ETag", f'"{etag}"'), ("Content-Length", "0")]))
        elif method in ("GET", "HEAD"):
            data = self.objects.get(path)
            if data is None:
                writer.write(_head(404, [("Content-Length", "9")]) +
                             (b"not found" if method == "GET" else b""))
            else:
                etag = hashlib.md5(data).hexdigest()
                writer.write(_head(200, [("ETag", f'"{etag}"'),
                                         ("Content-Length", str(len(data)))]) +
                             (data if method == "GET" else b""))
        elif method == "DELETE":
            self.objects.pop(path, None)
            writer.write(_head(204, []))
        else:
            writer.write(_head(405, [("Content-Length", "0")]))
        await writer.drain()
        return True


def _reset(writer: asyncio.StreamWriter) -> None:
    """End the connection with an RST (SO_LINGER 0), not a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _head(status: int, headers: list[tuple[str, str]]) -> bytes:
    reason = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found"}.get(status, "X")
    lines = "".join(f"{n}: {v}\r\n" for n, v in headers)
    return f"HTTP/1.1 {status} {reason}\r\n{lines}\r\n".encode("latin-1")
