"""Keep-alive connections to one origin, and the request that uses them."""

from __future__ import annotations

import asyncio
import errno
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from urllib.parse import urlsplit

from lakeshift.stores.wire.connection import _Body, _Connection
from lakeshift.stores.wire.errors import (
    ConnectFailed,
    Disconnected,
    WireError,
    _DeadIdle,
    connect_reason,
    tls_stalled,
)
from lakeshift.stores.wire.response import Response

#: Methods sent again on a fresh connection when a reused one was found dead.
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "OPTIONS"})


def _proxy_note() -> str:
    """What a failed connection adds when a proxy is configured: lakeshift's data requests
    do not go through one."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        if os.environ.get(name):
            return (f" ({name} is set, but lakeshift connects to the storage services "
                    "directly: it does not use proxies)")
    return ""


class Pool:
    """Keep-alive connections to one origin (``http://host:port`` or ``https://host[:port]``):
    idle ones reused last-in first-out, at most ``connections`` open at once (further
    requests wait).  Over https without ``ssl_context``, ``ssl.create_default_context()``
    made when first needed (so SSL_CERT_FILE as it is then counts)."""

    def __init__(self, endpoint: str, *, connections: int = 128,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        split = urlsplit(endpoint)
        if split.scheme not in ("http", "https") or not split.hostname or \
                split.path not in ("", "/") or split.query:
            raise ValueError("endpoint must be http://host[:port] or https://host[:port]")
        self.tls = split.scheme == "https"
        self.host = split.hostname
        self.port = split.port or (443 if self.tls else 80)
        self.peer = f"{self.host}:{self.port}"
        default = (self.port == 443) if self.tls else (self.port == 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_line = f"Host: {host}" if default else f"Host: {host}:{self.port}"
        self.connections = connections
        self._ssl = ssl_context
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._all: set[_Connection] = set()
        self._head_lines: dict[str, tuple[str, str]] = {}  # response header lines, parsed
        self._closed = False
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]

    async def request(self, method: str, target: str,
                      headers: Iterable[tuple[str, str]] | Mapping[str, str],
                      body: _Body | tuple[_Body, ...] | AsyncIterator[_Body] | None = None,
                      *, length: int | None = None,
                      connect_timeout: float, stall_timeout: float,
                      response_timeout: float | None = None) -> Response:
        """Send one request; returns once the status line and headers are in.

        ``target`` is sent exactly as given (already percent-encoded).  ``Host`` is added
        unless given; ``Content-Length`` (``length``, required for an iterator body, else
        the body's length) for any body and for PUT/POST without one, unless given.
        ``stall_timeout``: while sending, the peer must take data, and while waiting for
        and reading the response, bytes must arrive, within it (else Stalled).
        ``response_timeout``: a limit on the whole exchange up to the end of the head (for
        control requests).  A reused connection found dead before any response byte is
        retried once on a new one when the body can be sent again (bytes or None).  A
        tuple of buffers is one body sent buffer after buffer, never joined."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._closed:
            raise WireError(f"connection pool for {self.peer} is closed")
        replayable = body is None or isinstance(body, bytes | bytearray | memoryview | tuple)
        if length is None:
            if not replayable:
                raise ValueError("an iterator body needs its length")
            length = 0 if body is None else sum(map(len, body)) if isinstance(
                body, tuple) else len(body)  # type: ignore[arg-type]
        head = self.request_head(method, target, headers, body is not None, length)

        deadline = None if response_timeout is None else self._loop.time() + response_timeout
        try:
            return await self._exchange(method, head, body, length, connect_timeout,
                                        stall_timeout, deadline, fresh=False)
        except _DeadIdle as e:
            # Sent again only when the body can be, and the request is idempotent: a POST
            # or a DELETE the peer may have acted on is left to the caller's retry, which
            # knows what it means.
            if not replayable or method not in _IDEMPOTENT:
                raise Disconnected(str(e)) from None
        return await self._exchange(method, head, body, length, connect_timeout,
                                    stall_timeout, deadline, fresh=True)

    def request_head(self, method: str, target: str,
                     headers: Iterable[tuple[str, str]] | Mapping[str, str], has_body: bool,
                     length: int) -> bytes:
        """The request's head as sent: the request line, ``headers`` in order, ``Host``
        unless given, ``Content-Length: length`` unless given when there is a body or the
        method is PUT/POST, and the empty line.  A line break in any name or value is a
        ValueError (no header can be smuggled in)."""
        # The head, as one bytes object, built in C-level passes (joins, one lowered copy
        # searched for the two names it may add), not a Python step per header.
        # (A list or a dict, as the signers give, without an isinstance against the Mapping
        # ABC: a Python-level check, per request.)
        # (No typing.cast here: a Python-level call too.)
        kind = type(headers)
        items: list[tuple[str, str]]
        if kind is list:
            items = headers  # type: ignore[assignment]
        elif kind is dict:
            items = list(headers.items())  # type: ignore[union-attr]
        else:
            items = list(headers.items() if isinstance(headers, Mapping) else headers)
        parts = [f"{method} {target} HTTP/1.1"]
        if items:
            block = "\r\n".join(map(": ".join, items))
            parts.append(block)
            names = "\n" + block.lower()
            given_host = "\nhost:" in names
            given_length = "\ncontent-length:" in names
        else:
            given_host = given_length = False
        if not given_host:
            parts.append(self._host_line)
        extra = len(parts) - 1 - bool(items)
        if not given_length and (has_body or method in ("PUT", "POST")):
            parts.append(f"Content-Length: {length}")
            extra += 1
        text = "\r\n".join(parts) + "\r\n\r\n"
        lines = len(items) + extra + 2  # the request line, headers, the empty line
        if text.count("\n") != lines or text.count("\r") != lines:
            raise ValueError("a header name or value holds a line break")
        return text.encode("utf-8")

    async def _exchange(self, method: str, head: bytes,
                        body: _Body | tuple[_Body, ...] | AsyncIterator[_Body] | None,
                        length: int,
                        connect_timeout: float, stall: float, deadline: float | None,
                        fresh: bool) -> Response:
        conn = await self._acquire(connect_timeout, deadline, fresh)
        timer = None
        if deadline is not None:
            timer = self._loop.call_at(deadline, conn._fail, WireError(
                f"no response from {self.peer} within the request's time limit"))
        try:
            await conn.send(method, head, body, length, stall)
            status, reason, headers = await conn.wait_head()
        except _DeadIdle as e:
            conn.keep_alive = False
            conn.finish()
            if not conn.reused:
                raise Disconnected(str(e)) from None
            raise
        except BaseException:
            conn.keep_alive = False
            conn.finish()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        response = Response(conn, status, reason, headers)
        if conn.done and not conn.body:
            conn.finish()  # nothing to read: free the connection now
            response._conn = None
        return response

    async def _acquire(self, connect_timeout: float, deadline: float | None,
                       fresh: bool) -> _Connection:
        while True:
            if self._closed:
                raise WireError(f"connection pool for {self.peer} is closed")
            if not fresh:
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed:
                        conn.reused = True
                        conn.busy = True
                        return conn
                    self._open -= 1
            if self._open < self.connections:
                break
            waiter = self._loop.create_future()
            self._waiting.append(waiter)
            try:
                if deadline is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, max(0.0, deadline - self._loop.time()))
            except TimeoutError:
                raise WireError(f"no connection to {self.peer} free within the request's "
                                "time limit") from None
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass the slot on
                raise
        self._open += 1
        try:
            return await self._connect(connect_timeout, deadline)
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise

    async def _connect(self, connect_timeout: float, deadline: float | None) -> _Connection:
        limit = connect_timeout if deadline is None else \
            min(connect_timeout, max(0.0, deadline - self._loop.time()))
        context = None
        if self.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        opened: asyncio.Transport | None = None
        try:
            async with asyncio.timeout(limit):
                # TCP, then TLS over it (rather than create_connection(ssl=…), whose one
                # wait covers both): a connection that opens but whose handshake never
                # completes is said so, not as a connect that timed out.
                opened, conn = await self._loop.create_connection(
                    lambda: _Connection(self), self.host, self.port)
                if context is not None:
                    tls = await self._loop.start_tls(opened, conn, context,
                                                     server_hostname=self.host)
                    if tls is None:
                        raise ConnectionResetError(errno.ECONNRESET, "closed during the "
                                                   "TLS handshake")
                    conn.connection_made(tls)
        except TimeoutError:
            if opened is not None:  # the TLS handshake is what did not complete
                opened.close()
                reason = tls_stalled(limit)
                raise ConnectFailed(f"connecting to {self.peer}: {reason}", reason) from None
            raise ConnectFailed(f"connecting to {self.peer} took over {limit:g} s",
                                f"connect timed out after {limit:g} s") from None
        except OSError as e:
            if opened is not None:
                opened.close()
            reason = e.strerror or type(e).__name__
            if isinstance(e, ssl.SSLCertVerificationError):
                reason = f"certificate not trusted ({e.verify_message})"
            elif isinstance(e, ssl.SSLError):
                reason = f"TLS: {e.reason or e}"
            note = _proxy_note()
            raise ConnectFailed(f"cannot connect to {self.peer}: {reason}{note}",
                                connect_reason(e) + note) from None
        conn.busy = True
        self._all.add(conn)
        return conn

    def _release(self, conn: _Connection, reusable: bool) -> None:
        if reusable and not self._closed:
            conn.reused = False
            self._idle.append(conn)
        else:
            self._all.discard(conn)
            self._open -= 1
        if self._waiting:
            self._wake_one()

    def _forget(self, conn: _Connection) -> None:
        """An idle connection the peer closed."""
        if conn in self._idle:
            self._idle.remove(conn)
            self._all.discard(conn)
            self._open -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Close every connection (idempotent); requests in progress fail."""
        self._closed = True
        for conn in list(self._all):
            conn._fail(Disconnected(f"connection pool for {self.peer} closed"))
        self._idle.clear()
        self._all.clear()
        while self._waiting:  # requests waiting for a connection: they fail
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
        if self._loop is not None:
            await asyncio.sleep(0)  # let the transports' connection_lost run
