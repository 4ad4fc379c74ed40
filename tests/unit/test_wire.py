"""The wire client (lakeshift.stores.wire) against the scriptable loopback server
(tests/wireserver.py): framing, reuse, the dead idle connection, the stall watch both ways,
the pool limit, TLS, and messages that never name the target."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lakeshift.stores import wire
from tests.servers import self_signed_certificate
from tests.wireserver import WireServer

T = TypeVar("T")
SECRET = "sig=TOPSECRET"
TIMEOUTS = {"connect_timeout": 5.0, "stall_timeout": 5.0}


@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer() as srv:
        yield srv


def run(make: Callable[[wire.Pool], Awaitable[T]], url: str, **pool: Any) -> T:
    async def main() -> T:
        p = wire.Pool(url, **pool)
        try:
            return await make(p)
        finally:
            await p.close()
    return asyncio.run(main())


async def get(p: wire.Pool, target: str, method: str = "GET", body: Any = None,
              **kw: Any) -> tuple[int, Any, bytes]:
    options = TIMEOUTS | kw
    async with await p.request(method, target, {}, body, **options) as r:
        return r.status, r.headers, await r.read()


async def stream(data: bytes, piece: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        await asyncio.sleep(0)
        yield data[i:i + piece]


# -- framing -------------------------------------------------------------------------

def test_content_length_chunked_and_eof_bodies(server: WireServer) -> None:
    body = os.urandom(100_000)
    server.add("answer", path="/cl", body=body, headers=[("X-A", "1")])
    server.add("answer", path="/chunked", body=body, chunks=[1, 70_000, 29_999],
               trailers=[("X-Trailer", "t")])
    server.add("raw", path="/eof", raw=b"HTTP/1.1 200 OK\r\nX-B: 2\r\n\r\n" + body, close=True)
    server.add("raw", path="/interim",
               raw=b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    async def main(p: wire.Pool) -> list[tuple[int, Any, bytes]]:
        return [await get(p, t) for t in ("/cl", "/chunked", "/eof", "/interim")]

    (s1, h1, b1), (s2, h2, b2), (s3, h3, b3), (s4, _, b4) = run(main, server.url)
    assert (s1, h1["x-a"], b1) == (200, "1", body)
    assert (s2, h2["Transfer-Encoding"], b2) == (200, "chunked", body)
    assert (s3, h3["X-B"], b3) == (200, "2", body)
    assert (s4, b4) == (200, b"ok")


def test_no_body_for_head_204_and_304(server: WireServer) -> None:
    server.objects["/o"] = b"x" * 1000
    server.add("answer", path="/nc", status=204, headers=[("X-N", "1")])
    server.add("raw", path="/nm", raw=b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")

    async def main(p: wire.Pool) -> list[tuple[int, Any, bytes]]:
        out = [await get(p, t, m) for t, m in (("/o", "HEAD"), ("/nc", "GET"), ("/nm", "GET"))]
        out.append(await get(p, "/o"))  # the same connection: nothing was left unread
        return out

    (s1, h1, b1), (s2, _, b2), (s3, _, b3), (_, _, b4) = run(main, server.url)
    assert (s1, h1["Content-Length"], b1) == (200, "1000", b"")
    assert (s2, b2, s3, b3, b4) == (204, b"", 304, b"", b"x" * 1000)
    assert server.connections() == 1


def test_the_request_head_as_sent(server: WireServer) -> None:
    async def main(p: wire.Pool) -> None:
        await get(p, "/a%20b?x=1", "PUT")  # no body: Content-Length 0
        await get(p, "/a%20b?x=1", "GET")  # none
        async with await p.request("PUT", "/c", [("Host", "example"), ("X-M", "v")], b"abc",
                                   **TIMEOUTS) as r:
            await r.read()

    run(main, server.url)
    put, got, put2 = server.requests
    assert put.target == "/a%20b?x=1"  # never re-encoded
    assert ("Content-Length", "0") in put.headers and ("Host", f"127.0.0.1:{server.port}") \
        in put.headers
    assert not any(n == "Content-Length" for n, _ in got.headers)
    assert put2.headers == [("Host", "example"), ("X-M", "v"), ("Content-Length", "3")]
    assert server.objects["/c"] == b"abc"

    async def bad(p: wire.Pool) -> None:
        await p.request("GET", "/", {"X": "a\r\nInjected: 1"}, **TIMEOUTS)

    with pytest.raises(ValueError):
        run(bad, server.url)


def test_a_head_over_64_kib_is_an_error(server: WireServer) -> None:
    server.add("answer", path="/big", headers=[("X-Big", "v" * 70_000)])
    with pytest.raises(wire.WireError, match="over 65,536 bytes"):
        run(lambda p: get(p, "/big"), server.url)


# -- reuse -----------------------------------------------------------------------------

def test_keep_alive_reuse_and_connection_close(server: WireServer) -> None:
    server.add("answer", path="/closing", close=True, body=b"bye")
    server.add("raw", path="/old", raw=b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz")

    async def main(p: wire.Pool) -> None:
        for _ in range(3):
            await get(p, "/x")
        await get(p, "/closing")  # answered with Connection: close: not reused
        await get(p, "/old")  # HTTP/1.0 without keep-alive: not reused
        await get(p, "/x")

    run(main, server.url)
    seen = [r.connection for r in server.requests]
    assert seen == [1, 1, 1, 1, 2, 3]


def test_an_unread_body_closes_the_connection(server: WireServer) -> None:
    server.objects["/o"] = os.urandom(3 * 1024 * 1024)

    async def main(p: wire.Pool) -> bytes:
        r = await p.request("GET", "/o", {}, **TIMEOUTS)
        first = await anext(aiter(r.chunks()))  # not the whole body
        r.release()
        assert first
        return (await get(p, "/o"))[2]

    assert run(main, server.url) == server.objects["/o"]
    assert server.connections() == 2


def test_a_response_dropped_unread_frees_its_connection(server: WireServer) -> None:
    """A caller that fails before reading a response (a destination that fails before it
    pulls the first chunk of a source stream) must not keep the pool's slot for good: with
    2 connections, the third request would wait forever."""
    server.objects["/o"] = os.urandom(300_000)

    async def main(p: wire.Pool) -> bytes:
        for _ in range(3):
            r = await asyncio.wait_for(p.request("GET", "/o", {}, **TIMEOUTS), 5)
            del r  # neither read nor released
            await asyncio.sleep(0)
        return (await asyncio.wait_for(get(p, "/o"), 5))[2]

    assert run(main, server.url, connections=2) == server.objects["/o"]


def test_a_range_closed_unread_frees_its_connection_while_still_held(
        server: WireServer) -> None:
    """RangeStream.close (what the engine calls when the destination failed before
    reading): the connection is free at once, not when the stream is garbage."""
    from lakeshift.stores.s3.reads import WireRange

    server.objects["/o"] = os.urandom(300_000)

    async def main(p: wire.Pool) -> bytes:
        held = []
        for _ in range(2):
            r = await asyncio.wait_for(p.request("GET", "/o", {}, **TIMEOUTS), 5)
            held.append(WireRange(r, "s3://b/o"))
            held[-1].close()
        return (await asyncio.wait_for(get(p, "/o"), 5))[2]

    assert run(main, server.url, connections=1) == server.objects["/o"]


def test_a_dead_idle_connection_is_retried_once_for_bytes_bodies(server: WireServer) -> None:
    async def main(p: wire.Pool) -> tuple[int, int]:
        await get(p, "/warm")  # leaves one idle connection
        server.add("drop", method="PUT", uses=1)  # the server dropped it: no answer
        status, _, _ = await get(p, "/o", "PUT", b"data")
        server.add("drop", method="GET", uses=1)
        status2, _, _ = await get(p, "/o")
        return status, status2

    assert run(main, server.url) == (201, 200)
    assert server.objects["/o"] == b"data"
    assert [r.connection for r in server.requests] == [1, 1, 2, 2, 3]


def test_a_dead_idle_connection_is_not_retried_for_an_iterator_body(
        server: WireServer) -> None:
    async def main(p: wire.Pool) -> None:
        await get(p, "/warm")
        server.add("drop", method="PUT", uses=1)
        await get(p, "/o", "PUT", stream(b"data", 2), length=4)

    with pytest.raises(wire.Disconnected, match="closed before any response byte"):
        run(main, server.url)
    assert "/o" not in server.objects and len(server.requests) == 2


@pytest.mark.parametrize("method", ["DELETE", "POST"])
def test_a_dead_idle_connection_is_not_retried_for_a_method_that_may_have_acted(
        server: WireServer, method: str) -> None:
    """The peer may have carried out a DELETE or POST before it dropped the connection:
    sending it again is the caller's decision (its retry knows what the answer means)."""
    async def main(p: wire.Pool) -> None:
        await get(p, "/warm")
        server.add("drop", method=method, uses=1)
        await get(p, "/o", method, b"")

    with pytest.raises(wire.Disconnected, match="closed before any response byte"):
        run(main, server.url)
    assert len(server.requests) == 2


def test_a_body_read_to_the_end_of_the_stream_is_cut_by_a_reset(server: WireServer) -> None:
    """Framed by the connection's end (no Content-Length, not chunked): a reset is not the
    end of the body, only a clean close is."""
    server.add("raw", path="/eof", raw=b"HTTP/1.1 200 OK\r\n\r\npartial", reset=True)
    server.add("raw", path="/clean", raw=b"HTTP/1.1 200 OK\r\n\r\nwhole", close=True)
    assert run(lambda p: get(p, "/clean"), server.url)[2] == b"whole"
    with pytest.raises(wire.Disconnected, match="reset"):
        run(lambda p: get(p, "/eof"), server.url)


def test_a_new_connection_that_drops_is_not_retried(server: WireServer) -> None:
    server.add("drop", method="GET", uses=1)
    with pytest.raises(wire.Disconnected):
        run(lambda p: get(p, "/x"), server.url)
    assert len(server.requests) == 1


# -- faults ----------------------------------------------------------------------------

def test_a_body_cut_short_and_a_reset(server: WireServer) -> None:
    server.add("cut", path="/cut", body=b"x" * 67_890, at=12_345)
    server.add("reset", path="/reset")
    with pytest.raises(wire.Disconnected, match=r"closed after 12,345 of 67,890 body bytes"):
        run(lambda p: get(p, f"/cut?{SECRET}"), server.url)
    with pytest.raises(wire.Disconnected, match="reset before any response byte"):
        run(lambda p: get(p, f"/reset?{SECRET}"), server.url)


def test_the_stall_watch_on_the_response(server: WireServer) -> None:
    server.add("stall_head", path="/head", delay=30)
    server.add("stall_body", path="/body", body=b"y" * 10_000, at=100, delay=30)
    for target, message in (("/head", "while the response head was awaited"),
                            ("/body", "after 100 of 10,000 body bytes")):
        start = time.monotonic()
        with pytest.raises(wire.Stalled, match=message):
            run(lambda p, t=target: get(p, t, stall_timeout=0.4), server.url)  # type: ignore[misc]
        assert time.monotonic() - start < 5


def test_the_stall_watch_on_the_upload_and_the_drain(server: WireServer) -> None:
    body = os.urandom(32 * 1024 * 1024)  # more than the sockets' buffers hold
    server.add("slow_read", method="PUT", path="/stuck", delay=30, uses=1)
    with pytest.raises(wire.Stalled, match=r"took no request bytes for 0.5 s after [\d,]+ of "
                                           r"33,554,432 body bytes"):
        run(lambda p: get(p, "/stuck", "PUT", body, stall_timeout=0.5), server.url)
    # A reader that pauses for less than the stall limit: the whole body arrives (the
    # drain waited for it), for a bytes body and a streamed one.
    server.add("slow_read", method="PUT", delay=0.5)
    assert run(lambda p: get(p, "/slow", "PUT", body, stall_timeout=3), server.url)[0] == 201
    assert hashlib.md5(server.objects["/slow"]).digest() == hashlib.md5(body).digest()
    assert run(lambda p: get(p, "/slow2", "PUT", stream(body, 3_000_000), length=len(body),
                             stall_timeout=3), server.url)[0] == 201
    assert server.objects["/slow2"] == body


def test_a_body_in_pieces_that_stalls_names_the_bytes_handed_over(
        server: WireServer) -> None:
    """A body given as several buffers (a block in the pieces it was read in) that the
    peer stops taking: the message counts the bytes handed to the transport so far, slice
    by slice (not 0 until a whole piece is out, nor a whole piece for a part of one)."""
    import re

    half = os.urandom(16 * 1024 * 1024)  # one piece: more than the sockets' buffers hold
    server.add("slow_read", method="PUT", path="/stuck", delay=30, uses=1)
    with pytest.raises(wire.Stalled) as info:
        run(lambda p: get(p, "/stuck", "PUT", (half, half), length=2 * len(half),
                          stall_timeout=0.5), server.url)
    found = re.search(r"after ([\d,]+) of 33,554,432 body bytes", str(info.value))
    assert found, str(info.value)
    sent = int(found[1].replace(",", ""))
    assert 0 < sent < len(half), sent


def test_a_short_stall_limit_after_a_long_one_on_the_same_connection(
        server: WireServer) -> None:
    server.add("stall_head", path="/stuck", delay=30)

    async def main(p: wire.Pool) -> None:
        await get(p, "/x", stall_timeout=300)  # its stall timer is due in 150 s
        await get(p, "/stuck", stall_timeout=0.4)

    start = time.monotonic()
    with pytest.raises(wire.Stalled):
        run(main, server.url)
    assert time.monotonic() - start < 5
    assert server.connections() == 1


def test_a_response_time_limit_for_control_requests(server: WireServer) -> None:
    server.add("stall_head", path="/slow", delay=30)
    start = time.monotonic()
    with pytest.raises(wire.WireError, match=r"no response from 127\.0\.0\.1"):
        run(lambda p: get(p, "/slow", stall_timeout=30, response_timeout=0.3), server.url)
    assert time.monotonic() - start < 5


def test_streamed_bodies_report_the_source_error_and_a_wrong_length(
        server: WireServer) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"abc"
        raise KeyError("the source broke")

    with pytest.raises(KeyError, match="the source broke"):
        run(lambda p: get(p, "/f", "PUT", failing(), length=10), server.url)
    with pytest.raises(wire.WireError, match="ended after 4 of 10 bytes"):
        run(lambda p: get(p, "/f", "PUT", stream(b"data", 2), length=10), server.url)
    with pytest.raises(wire.WireError, match="longer than its Content-Length 3"):
        run(lambda p: get(p, "/f", "PUT", stream(b"data", 2), length=3), server.url)
    with pytest.raises(ValueError):
        run(lambda p: get(p, "/f", "PUT", stream(b"data", 2)), server.url)
    assert "/f" not in server.objects
    data = os.urandom(1_000_003)
    assert run(lambda p: get(p, "/ok", "PUT", stream(data, 300_000), length=len(data)),
               server.url)[0] == 201
    assert server.objects["/ok"] == data


def test_no_error_message_names_the_target(server: WireServer) -> None:
    server.add("cut", path="/c", body=b"x" * 100, at=5)
    server.add("stall_head", path="/s", delay=30)
    server.add("reset", path="/r")
    server.add("raw", path="/m", raw=b"garbage\r\n\r\n")
    messages = []
    for path in ("/c", "/s", "/r", "/m"):
        with pytest.raises(wire.WireError) as e:
            run(lambda p, t=path: get(p, f"{t}/blob?{SECRET}", stall_timeout=0.3),  # type: ignore[misc]
                server.url)
        messages.append(str(e.value))
    assert len(set(messages)) == 4
    assert not any("TOPSECRET" in m or "blob" in m for m in messages), messages


def test_connecting_fails_as_a_wire_error() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(wire.WireError, match=f"cannot connect to 127.0.0.1:{port}"):
        run(lambda p: get(p, f"/x?{SECRET}"), f"http://127.0.0.1:{port}")


# -- the pool ----------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [2, 128])
def test_the_pool_limit(server: WireServer, limit: int) -> None:
    server.objects["/o"] = b"z" * 100

    async def main(p: wire.Pool) -> list[int]:
        got = await asyncio.gather(*(get(p, "/o") for _ in range(10)))
        return [s for s, _, _ in got]

    assert run(main, server.url, connections=limit) == [200] * 10
    assert server.connections() == min(limit, 10)


def test_reads_in_pieces_of_at_least_min_size_with_flow_control(server: WireServer) -> None:
    data = os.urandom(8 * 1024 * 1024 + 5)
    server.objects["/big"] = data

    async def main(p: wire.Pool) -> list[bytes]:
        r = await p.request("GET", "/big", {}, **TIMEOUTS)
        await asyncio.sleep(0.5)  # nothing consumed: the client holds about 1 MiB at most
        assert r._conn is not None and r._conn.buffered < 2 * 1024 * 1024
        pieces = []
        async for piece in r.chunks(1024 * 1024):
            await asyncio.sleep(0.01)  # a slow consumer: reading pauses, nothing is lost
            pieces.append(piece)
        return pieces

    pieces = run(main, server.url)
    assert b"".join(pieces) == data
    assert all(len(x) >= 1024 * 1024 for x in pieces[:-1])


def test_pieces_larger_than_the_read_buffer(server: WireServer) -> None:
    data = os.urandom(8 * 1024 * 1024 + 5)
    server.objects["/big"] = data

    async def main(p: wire.Pool) -> list[bytes]:
        r = await p.request("GET", "/big", {}, connect_timeout=5, stall_timeout=1)
        return [piece async for piece in r.chunks(3 * 1024 * 1024)]

    pieces = run(main, server.url)
    assert b"".join(pieces) == data
    assert [len(x) >= 3 * 1024 * 1024 for x in pieces] == [True, True, False]


def test_close_is_idempotent_and_later_requests_fail(server: WireServer) -> None:
    server.add("stall_head", path="/slow", delay=30)

    async def main() -> None:
        p = wire.Pool(server.url, connections=1)
        await get(p, "/x")
        busy = asyncio.ensure_future(get(p, "/slow"))
        waiting = asyncio.ensure_future(get(p, "/x"))  # for the one connection
        await asyncio.sleep(0.2)
        await p.close()
        for request in (busy, waiting):
            with pytest.raises(wire.WireError, match="closed"):
                await request
        await p.close()
        with pytest.raises(wire.WireError, match="closed"):
            await get(p, "/x")

    asyncio.run(main())


# -- TLS -------------------------------------------------------------------------------

def test_tls_with_a_throwaway_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with WireServer(tls=(cert, key)) as srv:
        srv.objects["/o"] = os.urandom(600_000)
        trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        assert run(lambda p: get(p, "/o"), srv.url, ssl_context=trusted)[2] == srv.objects["/o"]
        body = os.urandom(3 * 1024 * 1024)
        assert run(lambda p: get(p, "/up", "PUT", stream(body, 1_000_000), length=len(body)),
                   srv.url, ssl_context=trusted)[0] == 201
        assert srv.objects["/up"] == body
        # Without a context: the default one, made when first needed (SSL_CERT_FILE counts).
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing.pem"))

        async def later() -> int:
            pool = wire.Pool(srv.url)
            monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
            try:
                return (await get(pool, "/o"))[0]
            finally:
                await pool.close()

        assert asyncio.run(later()) == 200
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing.pem"))
        with pytest.raises(wire.WireError, match="certificate not trusted"):
            run(lambda p: get(p, f"/o?{SECRET}"), srv.url)


def test_a_failed_connection_says_a_configured_proxy_is_not_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    with pytest.raises(wire.WireError, match="HTTPS_PROXY is set, but lakeshift connects "
                                             "to the storage services directly"):
        run(lambda p: get(p, "/x"), f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HTTPS_PROXY")
    with pytest.raises(wire.WireError) as e:
        run(lambda p: get(p, "/x"), f"http://127.0.0.1:{port}")
    assert "PROXY" not in str(e.value)


def _count_reads_and_wakes(monkeypatch: Any) -> dict[str, int]:
    """Counts, from now on, the connections' socket reads ("reads") and the wake-ups of a
    waiting request ("wakes")."""
    seen = {"reads": 0, "wakes": 0}
    real_received, real_wake = wire._Connection.data_received, wire._Connection._wake

    def received(self: Any, chunk: bytes) -> None:
        seen["reads"] += 1
        real_received(self, chunk)

    def wake(self: Any) -> None:
        seen["wakes"] += self.waiter is not None
        real_wake(self)

    monkeypatch.setattr(wire._Connection, "data_received", received)
    monkeypatch.setattr(wire._Connection, "_wake", wake)
    return seen


def test_a_piece_that_arrives_in_many_reads_wakes_its_reader_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """take(min_size) is woken when min_size bytes are in (or the body ends), not at every
    read from the socket: a MiB read as 16 KiB segments cost its task ~64 steps."""
    size, segment = 2 * 1024 * 1024, 16 * 1024
    data = os.urandom(size)
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            for i in range(0, size, segment):
                conn.sendall(data[i:i + segment])
                time.sleep(0.001)  # (each segment its own read on the client)
            conn.recv(1)

    import threading

    threading.Thread(target=serve, daemon=True).start()
    seen = _count_reads_and_wakes(monkeypatch)

    async def main(p: wire.Pool) -> list[bytes]:
        r = await p.request("GET", "/", {}, **TIMEOUTS)
        return [piece async for piece in r.chunks(1024 * 1024)]

    try:
        pieces = run(main, f"http://127.0.0.1:{srv.getsockname()[1]}")
    finally:
        srv.close()
    assert b"".join(pieces) == data and len(pieces) == 2
    assert seen["reads"] >= 32, seen["reads"]  # (else the test proves nothing)
    assert seen["wakes"] <= 4, (seen["wakes"], seen["reads"])  # the head, then once per MiB


class _DuckTransport:
    """A transport that implements asyncio.Transport's methods without subclassing it, as
    uvloop's do (an application may run lakeshift on uvloop: uvicorn[standard] does)."""

    def __init__(self, real: asyncio.BaseTransport) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _DuckLoop(asyncio.SelectorEventLoop):
    async def create_connection(self, protocol_factory: Any, *args: Any,
                                **kwargs: Any) -> Any:
        def wrapped() -> Any:
            proto = protocol_factory()
            made = proto.connection_made
            proto.connection_made = lambda t: made(_DuckTransport(t))
            return proto
        return await super().create_connection(wrapped, *args, **kwargs)


def test_a_request_on_a_loop_whose_transports_do_not_subclass_transport(
        server: WireServer) -> None:
    body = os.urandom(300_000)
    server.add("answer", path="/cl", body=body)

    async def main() -> tuple[int, Any, bytes]:
        p = wire.Pool(server.url)
        try:
            return await get(p, "/cl", "PUT", body)
        finally:
            await p.close()

    with asyncio.Runner(loop_factory=_DuckLoop) as runner:
        status, _, got = runner.run(main())
    assert (status, got) == (200, body)


@pytest.mark.parametrize("size", [4096, 3 * 1024 * 1024])
def test_a_small_body_arriving_after_its_head_wakes_the_request_once(
        monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """A small response (Content-Length <= SMALL_BODY) whose body arrives in a later read
    than its head wakes the task once, with both in (a small object's GET was two task
    steps and two loop turns); a large one still wakes at its head, so its body can be
    streamed as it comes."""
    data = os.urandom(size)
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.recv(65536)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
            time.sleep(0.05)  # (the body: a read of its own on the client)
            conn.sendall(data)
            conn.recv(1)

    import threading

    threading.Thread(target=serve, daemon=True).start()
    seen = _count_reads_and_wakes(monkeypatch)

    async def main(p: wire.Pool) -> bytes:
        async with await p.request("GET", "/", {}, **TIMEOUTS) as r:
            return await r.read()

    try:
        got = run(main, f"http://127.0.0.1:{srv.getsockname()[1]}")
    finally:
        srv.close()
    assert got == data
    assert seen["reads"] >= 2, seen["reads"]  # (else the test proves nothing)
    if size == 4096:
        assert seen["wakes"] == 1, (seen["wakes"], seen["reads"])
    else:
        assert seen["wakes"] >= 2, (seen["wakes"], seen["reads"])  # the head, then the body


def _second_get_profiled(server: WireServer, prof: Callable[..., Any]) -> bytes:
    """The body of a GET of /t on a kept-alive connection (the second GET), made with
    ``prof`` as the profile function."""
    import sys

    async def make(p: wire.Pool) -> bytes:
        await get(p, "/t")  # (the connection opened)
        sys.setprofile(prof)
        try:
            return (await get(p, "/t"))[2]
        finally:
            sys.setprofile(None)

    return run(make, server.url)


def test_an_exchange_reads_the_stdlib_loop_clock_without_a_python_call(
        server: WireServer) -> None:
    """The connection reads the loop's clock ~8 times per exchange (stall watch, progress):
    on the stdlib loop, ``time.monotonic`` directly, not ``BaseEventLoop.time`` (a Python
    method); the stall watch still works (tests above)."""
    from types import FrameType

    server.add("answer", path="/t", body=b"ok")
    clock = asyncio.BaseEventLoop.time.__code__
    reads = 0

    def prof(frame: FrameType, event: str, arg: object) -> None:
        nonlocal reads
        # (The loop reads its clock itself too, for its timers: not counted.)
        if event == "call" and frame.f_code is clock and frame.f_back is not None and \
                "/stores/wire/" in frame.f_back.f_code.co_filename:
            reads += 1

    assert _second_get_profiled(server, prof) == b"ok"
    assert reads == 0


def test_python_calls_of_one_exchange_on_a_kept_connection(server: WireServer) -> None:
    """What the wire client runs in Python for one small GET on a kept-alive connection
    (frames entered in stores/wire, coroutine resumptions included): no drain coroutine
    when the transport took the request at once, no separate wait coroutine for the head,
    no pool wake-up when nobody waits, the stall watch's running timer left as it is and
    a head that came whole parsed at once (was 33)."""
    from types import FrameType

    server.add("answer", path="/t", body=b"ok")
    frames: list[str] = []

    def prof(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and "/stores/wire/" in frame.f_code.co_filename:
            frames.append(frame.f_code.co_name)

    assert _second_get_profiled(server, prof) == b"ok"
    assert not {"_drain", "_wait", "_wake_one", "_watch", "_feed_head"} & set(frames), frames
    assert len(frames) <= 27, frames
