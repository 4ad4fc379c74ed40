"""One keep-alive connection of a ``Pool`` (an asyncio Protocol): sends a request
with its body, parses the response head (header lines memoised per pool) and frames
its body (Content-Length, chunked, to EOF) into a buffer read by ``take``, under a
stall watch."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

from multidict import CIMultiDict, CIMultiDictProxy

from lakeshift.stores.wire.errors import Disconnected, Stalled, WireError, _DeadIdle

if TYPE_CHECKING:
    from lakeshift.stores.wire.pool import Pool

#: Bodies go to the transport in slices of at most this, awaiting drain after each: the
#: memory in flight per connection is one slice, and each drain is a moment at which the
#: stall watch sees whether the peer takes data.
SLICE = 256 * 1024
#: A response head larger than this is an error.
MAX_HEAD = 64 * 1024
#: Reading pauses while more than this waits unconsumed.
MAX_BUFFERED = 1024 * 1024
#: A response whose Content-Length is at most this wakes the task awaiting its head only
#: once its body is in too: a small object's GET is one wake-up, not two (the head and
#: the body often arrive in separate reads).
SMALL_BODY = 256 * 1024
#: Header lines remembered parsed, per pool (emptied when full), and the longest one kept.
_LINES_MEMO = 512
_LINE_MEMO = 256

_Body = bytes | bytearray | memoryview


_STDLIB_TIME = asyncio.BaseEventLoop.time

# Body framing of a response.
_NONE, _LENGTH, _CHUNKED, _EOF = range(4)
# Chunked parser states.
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class _Connection(asyncio.Protocol):
    """One connection: the request in progress on it, its response's parser and body
    buffer, and its stall watch."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop = pool._loop
        #: The loop's clock (read ~8 times per exchange): the stdlib loop's is
        #: ``time.monotonic``, called directly (not through a Python-level method).
        self.now = time.monotonic if type(self.loop).time is _STDLIB_TIME else self.loop.time
        self.peer = pool.peer
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.busy = False  # a request/response is in progress (else idle in the pool)
        # The stall watch: while a waiter is pending, some progress must happen within
        # ``stall`` seconds; the timer (one per connection) checks every stall/2 s.
        self.stall = 0.0
        self.progress = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0  # the timer's when()
        self.waiter: asyncio.Future[None] | None = None  # head / body data
        #: Body bytes the waiter needs before it is woken (take's min_size): a MiB that
        #: arrives in 64-256 KiB reads wakes its task once, not at every read.
        self.want = 0
        self.drain: asyncio.Future[None] | None = None  # the transport taking data
        self.write_paused = False
        self.write_size = 0  # the transport's buffer at the last tick (drain progress)
        self.sent = 0  # body bytes handed to the transport
        self.to_send = 0
        self.error: BaseException | None = None
        self._reset_response()

    def _reset_response(self) -> None:
        self.head_buf = bytearray()
        self.head: tuple[int, str, CIMultiDictProxy[str]] | None = None
        self.head_method = ""
        self.received = 0  # response bytes of any kind
        self.framing = _NONE
        self.remaining = 0  # _LENGTH: body bytes to come; _CHUNKED: of this chunk
        self.expected = -1  # the Content-Length, for messages
        self.chunk_state = _SIZE
        self.line = bytearray()
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.body_read = 0
        self.done = False
        self.keep_alive = True
        self.read_paused = False
        self.limit = MAX_BUFFERED  # reading pauses above this (raised by take's min_size)

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.progress = self.now()
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.done:
            # Bytes nobody asked for (or after the response ended): the stream is out of
            # step; never reuse it.
            self.keep_alive = False
            self._close()
            return
        self.progress = self.now()
        self.received += len(data)
        if self.head is None:
            # (A whole head in one read, the common case, goes to _parse_head directly.)
            end = -1 if self.head_buf else data.find(b"\r\n\r\n")
            data = self._parse_head(data[:end], data[end + 4:]) if end >= 0 else \
                self._feed_head(data)
            if self.head is None:
                return
            if self.framing == _LENGTH and self.expected <= SMALL_BODY:
                self.want = self.expected  # the head's waiter: woken with the whole body
        if data:
            self._feed_body(data)
        if self.buffered >= self.want or self.done:
            self._wake()

    def eof_received(self) -> bool | None:
        if self.head is not None and self.framing == _EOF and not self.done:
            self.done = True
            self.keep_alive = False
            self._wake()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.busy and not self.done:
            # A body read to the end of the stream ends with a clean close, not a reset.
            if self.head is not None and self.framing == _EOF and exc is None:
                self.done = True
                self.keep_alive = False
            elif self.error is None:
                self.error = self._lost_error(exc)
        self._wake()
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_exception(self.error or Disconnected(f"connection to {self.peer} closed"))
        if not self.busy:
            self.pool._forget(self)

    # -- the response ----------------------------------------------------------------

    def _lost_error(self, exc: Exception | None) -> WireError:
        how = "reset" if isinstance(exc, ConnectionResetError) else "closed"
        if self.received == 0:
            where = "before any response byte"
            if self.sent < self.to_send:
                where = f"after {self.sent:,} of {self.to_send:,} request body bytes"
            cls = _DeadIdle if self.reused else Disconnected
            return cls(f"connection to {self.peer} {how} {where}")
        if self.head is None:
            return Disconnected(f"connection to {self.peer} {how} within the response head")
        total = f"{self.expected:,}" if self.expected >= 0 else "?"
        return Disconnected(f"connection to {self.peer} {how} after {self.body_read:,} of "
                            f"{total} body bytes")

    def _feed_head(self, data: bytes) -> bytes:
        """Take the head from ``data``; returns what follows it."""
        buf = self.head_buf
        if not buf:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                return self._parse_head(data[:end], data[end + 4:])
            buf += data
        else:
            start = max(0, len(buf) - 3)
            buf += data
            end = buf.find(b"\r\n\r\n", start)
            if end >= 0:
                head, rest = bytes(buf[:end]), bytes(buf[end + 4:])
                self.head_buf = bytearray()
                return self._parse_head(head, rest)
        if len(buf) > MAX_HEAD:
            self._fail(WireError(f"response head from {self.peer} over {MAX_HEAD:,} bytes"))
        return b""

    def _parse_head(self, head: bytes, rest: bytes) -> bytes:
        eol = head.find(b"\r\n")
        status_line = head if eol < 0 else head[:eol]
        try:
            if not status_line.startswith(b"HTTP/1.") or status_line[12:13] not in (b" ", b""):
                raise ValueError
            status = int(status_line[9:12])
        except ValueError:
            self._fail(WireError(f"malformed response from {self.peer}"))
            return b""
        if 100 <= status < 200 and status != 101:
            # An interim response (100 Continue, 103 Early Hints): the real one follows.
            return self._feed_head(rest) if rest else b""
        if len(head) > MAX_HEAD:
            self._fail(WireError(f"response head from {self.peer} over {MAX_HEAD:,} bytes"))
            return b""
        # (Decoded as aiohttp does, once for the whole head.)
        lines = head[eol + 2:].decode("utf-8", "surrogateescape").split("\r\n") \
            if eol >= 0 else []
        # Most lines repeat from response to response (Server, Content-Type, x-ms-version,
        # a Content-Length, a Date within the second...): a line seen before is looked up
        # (one C-level pass), only the others are parsed, and valid short ones remembered.
        seen = self.pool._head_lines
        pairs = list(map(seen.get, lines))
        if None in pairs:
            for i, pair in enumerate(pairs):
                if pair is not None:
                    continue
                line = lines[i]
                name, colon, value = line.partition(":")
                if not colon or not name or name[0] in " \t" or name[-1] in " \t":
                    self._fail(WireError(f"malformed response header from {self.peer}"))
                    return b""
                pairs[i] = pair = (name, value.strip(" \t"))
                if len(line) <= _LINE_MEMO:
                    if len(seen) >= _LINES_MEMO:
                        seen.clear()
                    seen[line] = pair
        headers: CIMultiDict[str] = CIMultiDict(pairs)  # type: ignore[arg-type]  # (no None left)
        http10 = status_line[7:8] == b"0"
        connection = headers.get("Connection", "").lower()
        if "close" in connection or (http10 and "keep-alive" not in connection):
            self.keep_alive = False
        if self.head_method == "HEAD" or status in (204, 304):
            self.framing = _NONE
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            self.framing = _CHUNKED
        elif "Content-Length" in headers:
            values = set(headers.getall("Content-Length"))
            try:
                if len(values) != 1:
                    raise ValueError
                self.remaining = self.expected = int(values.pop())
                if self.remaining < 0:
                    raise ValueError
            except ValueError:
                self._fail(WireError(f"malformed Content-Length from {self.peer}"))
                return b""
            self.framing = _LENGTH
        else:
            self.framing = _EOF
            self.keep_alive = False
        self.head = (status, status_line[13:].decode("latin-1"), CIMultiDictProxy(headers))
        if self.framing == _NONE or (self.framing == _LENGTH and self.remaining == 0):
            self.done = True
            if rest:
                self.keep_alive = False  # more than the response: out of step
            return b""
        return rest

    def _feed_body(self, data: bytes) -> None:
        if self.framing == _LENGTH:
            n = len(data)
            if n >= self.remaining:
                if n > self.remaining:
                    self.keep_alive = False
                    data = data[:self.remaining]
                self.remaining = 0
                self.done = True
            else:
                self.remaining -= n
            self._append(data)
        elif self.framing == _EOF:
            self._append(data)
        else:
            self._feed_chunked(data)

    def _append(self, data: bytes) -> None:
        if data:
            self.body.append(data)
            self.buffered += len(data)
            self.body_read += len(data)
            if self.buffered > self.limit and not self.read_paused and \
                    self.transport is not None:
                self.read_paused = True
                self.transport.pause_reading()

    def _feed_chunked(self, data: bytes) -> None:
        pos, n = 0, len(data)
        while pos < n and not self.done:
            state = self.chunk_state
            if state == _DATA:
                take = min(self.remaining, n - pos)
                self._append(data if pos == 0 and take == n else data[pos:pos + take])
                pos += take
                self.remaining -= take
                if not self.remaining:
                    self.chunk_state = _DATA_END
                    self.line = bytearray()
                continue
            end = data.find(b"\n", pos)
            self.line += data[pos:] if end < 0 else data[pos:end + 1]
            pos = n if end < 0 else end + 1
            if len(self.line) > MAX_HEAD:
                self._fail(WireError(f"malformed chunked body from {self.peer}"))
                return
            if end < 0:
                continue
            line, self.line = bytes(self.line), bytearray()
            if state == _DATA_END:
                if line != b"\r\n":
                    self._fail(WireError(f"malformed chunked body from {self.peer}"))
                    return
                self.chunk_state = _SIZE
            elif state == _SIZE:
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                    if size < 0:
                        raise ValueError
                except ValueError:
                    self._fail(WireError(f"malformed chunked body from {self.peer}"))
                    return
                if size:
                    self.remaining, self.chunk_state = size, _DATA
                else:
                    self.chunk_state = _TRAILER
            elif line == b"\r\n":  # _TRAILER: trailers are ignored; an empty line ends
                self.done = True
        if self.done and pos < n:
            self.keep_alive = False

    # -- waiting, under the stall watch ----------------------------------------------

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if self.error is not None:
                waiter.set_exception(self.error)
            else:
                waiter.set_result(None)

    def _fail(self, error: WireError) -> None:
        """End the exchange with ``error``: the waiters get it, the connection closes."""
        if self.error is None:
            self.error = error
        self.keep_alive = False
        self._wake()
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_exception(error)
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True

    def _watch(self, stall: float) -> None:
        """Start the stall watch for an exchange (the timer is re-armed by itself).  (send
        does the same inline while the running timer serves: no call per request.)"""
        self.stall = stall
        self.progress = now = self.now()
        timer = self.timer
        if timer is None or self.timer_due > now + stall / 2:
            # (None, or left from an exchange with a longer limit: too late for this one.)
            if timer is not None:
                timer.cancel()
            self._arm(stall / 2)

    def _arm(self, delay: float) -> None:
        self.timer = timer = self.loop.call_later(delay, self._tick)
        self.timer_due = timer.when()

    def _tick(self) -> None:
        self.timer = None
        if self.closed or not self.busy:
            return
        now = self.now()
        if self.drain is not None and self.transport is not None:
            size = self.transport.get_write_buffer_size()
            if size != self.write_size:  # the peer took some bytes
                self.write_size = size
                self.progress = now
        if (self.waiter is not None or self.drain is not None) and \
                now - self.progress > self.stall:
            if self.drain is not None:
                what = (f"took no request bytes for {self.stall:g} s after {self.sent:,} of "
                        f"{self.to_send:,} body bytes")
            elif self.head is None:
                what = f"sent nothing for {self.stall:g} s while the response head was awaited"
            else:
                total = f"{self.expected:,}" if self.expected >= 0 else "?"
                what = (f"sent nothing for {self.stall:g} s after {self.body_read:,} of "
                        f"{total} body bytes")
            self._fail(Stalled(f"connection to {self.peer} {what}"))
            return
        self._arm(self.stall / 2)

    async def _wait(self) -> None:
        """Until data arrives (or the response ends or fails)."""
        if self.error is not None:
            raise self.error
        self.progress = self.now()
        self.waiter = self.loop.create_future()
        await self.waiter

    async def _drain(self) -> None:
        if self.write_paused and not self.closed:
            self.progress = self.now()
            self.write_size = self.transport.get_write_buffer_size() if self.transport else 0
            self.drain = self.loop.create_future()
            await self.drain
        if self.error is not None:
            raise self.error

    # -- the exchange ----------------------------------------------------------------

    async def send(self, method: str, head: bytes,
                   body: _Body | tuple[_Body, ...] | AsyncIterator[_Body] | None,
                   length: int, stall: float) -> None:
        """Send the request (head and body), under the stall watch."""
        self._reset_response()
        self.busy = True
        self.error = None
        self.head_method = method
        self.sent, self.to_send = 0, length
        self.stall = stall
        self.progress = now = self.now()
        if self.timer is None or self.timer_due > now + stall / 2:
            self._watch(stall)  # (the stall watch started, or restarted sooner)
        transport = self.transport
        if transport is None or self.closed:
            raise self._lost_error(None)
        if body is None:
            transport.write(head)
        elif isinstance(body, bytes | bytearray | memoryview) and length <= SLICE:
            transport.write(head + body if length else head)
            self.sent = length
        elif isinstance(body, bytes | bytearray | memoryview | tuple):
            # A body in one buffer, or in several (a block in the pieces it was read in):
            # each sent as it is, in slices, none joined.
            transport.write(head)
            done = 0  # (the bytes of the parts before this one)
            for part in body if isinstance(body, tuple) else (body,):
                view = memoryview(part).cast("B")
                for i in range(0, len(view), SLICE):
                    await self._drain()
                    if self.closed:
                        break
                    transport.write(view[i:i + SLICE])
                    self.sent = done + min(len(view), i + SLICE)
                if self.closed:
                    break
                done += len(view)
        else:
            transport.write(head)
            async for chunk in body:
                size = len(chunk)
                if self.sent + size > length:
                    raise WireError(f"request body for {self.peer} longer than its "
                                    f"Content-Length {length:,}")
                if size > SLICE:
                    view = memoryview(chunk).cast("B")
                    for i in range(0, size, SLICE):
                        await self._drain()
                        if self.closed:
                            break
                        transport.write(view[i:i + SLICE])
                else:
                    await self._drain()
                    if self.closed:
                        break
                    transport.write(chunk)
                self.sent += size
            if self.sent < length and not self.closed:
                raise WireError(f"request body for {self.peer} ended after {self.sent:,} of "
                                f"{length:,} bytes")
        if self.write_paused or self.error is not None:  # (else _drain has nothing to do)
            await self._drain()

    async def wait_head(self) -> tuple[int, str, CIMultiDictProxy[str]]:
        while self.head is None:
            if self.error is not None:
                raise self.error
            if self.closed:
                raise self._lost_error(None)
            # (_wait, inline: one coroutine fewer per response.)
            self.progress = self.now()
            self.waiter = self.loop.create_future()
            await self.waiter
        self.want = 0
        return self.head

    async def take(self, min_size: int) -> bytes:
        """The next piece of the body, of at least ``min_size`` bytes unless it is the
        last; b"" at the end.  (Reading pauses above ``max(MAX_BUFFERED, min_size)``.)"""
        parts = await self.take_pieces(min_size)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    async def take_pieces(self, min_size: int) -> list[bytes]:
        """As ``take``, the bytes as the list of buffers they arrived in (never joined:
        a block read for a Put Block is hashed and sent piece by piece); [] at the end."""
        self.limit = max(MAX_BUFFERED, min_size)
        await self._fill(min_size, resume=True)
        body = self.body
        if not body:
            return []
        first = body[0]
        if len(first) >= min_size or len(body) == 1:
            body.popleft()
            parts = [first]
            got = len(first)
        else:
            parts = []
            got = 0
            while body and got < min_size:
                part = body.popleft()
                parts.append(part)
                got += len(part)
        self.buffered -= got
        if self.buffered <= self.limit // 4:
            self._resume()
        return parts

    async def _fill(self, n: int, resume: bool) -> None:
        """Wait until ``n`` bytes are buffered or the body is done (woken once they are:
        ``want``); the connection's error, or its loss, if it comes first.  ``resume``:
        reading is resumed before each wait (``take``'s limit may have been raised)."""
        while self.buffered < n and not self.done:
            if self.error is not None:
                raise self.error
            if self.closed:
                raise self._lost_error(None)
            if resume:
                self._resume()
            self.want = n
            try:
                await self._wait()
            finally:
                self.want = 0
        if self.error is not None and not self.done:
            raise self.error

    def _resume(self) -> None:
        if self.read_paused and self.buffered <= self.limit and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()

    async def take_all(self) -> bytes:
        parts: list[bytes] = []
        while True:
            await self._fill(MAX_BUFFERED, resume=False)
            parts.extend(self.body)
            self.body.clear()
            self.buffered = 0
            if self.read_paused and self.transport is not None:
                self.read_paused = False
                self.transport.resume_reading()
            if self.done:
                return parts[0] if len(parts) == 1 else b"".join(parts)

    def finish(self) -> None:
        """The exchange is over: back to the pool when the whole response was read on a
        connection that stays open, else closed."""
        if not self.busy:
            return
        reusable = self.done and self.keep_alive and not self.closed and \
            self.error is None and self.sent >= self.to_send
        self.busy = False
        self.waiter = self.drain = None
        self.body.clear()
        # (The stall timer is left to run out: its tick sees the connection idle and stops;
        # a request that reuses the connection before then keeps it.)
        if not reusable:
            self._close()
        self.pool._release(self, reusable)
