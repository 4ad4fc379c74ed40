"""Response heads in the wire client: odd heads parsed as aiohttp parses them (many headers,
duplicate names, odd spacing, mixed case; each served twice, so the second parse goes
through the pool's memo of header lines), a head split across data_received at every byte
boundary, heads over the size limit, malformed lines (never remembered), and the memo's
bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lakeshift.stores import wire
from tests.unit.test_wire_differential import _comparable, _with_aiohttp, _with_wire
from tests.wireserver import WireServer

MANY = "".join(f"X-H{i}: v{i}\r\n" for i in range(60))
HEADS = {
    "/many": f"HTTP/1.1 200 OK\r\n{MANY}Content-Length: 3\r\n\r\nabc",
    "/dup": ("HTTP/1.1 200 OK\r\nX-Dup: a\r\nx-dup: b\r\nX-DUP:c\r\nSet-Cookie: k=1\r\n"
             "set-cookie: k=2\r\nContent-Length: 2\r\n\r\nok"),
    "/spacing": ("HTTP/1.1 200 OK\r\nX-A:no-space\r\nX-B:   lead\r\nX-C: trail  \t\r\n"
                 "X-D:\t\ttabs\t\r\nX-E:\r\nX-F:   \r\nX-G: in  side : colon\r\n"
                 "X-Time: 18:00:01\r\nContent-Length: 1\r\n\r\nz"),
    "/case": ("HTTP/1.1 200 OK\r\ncontent-TYPE: text/plain\r\nETAG: \"e\"\r\n"
              "x-MS-Version: 2025\r\nCONTENT-LENGTH: 4\r\n\r\ncase"),
}
TARGETS = [t for t in HEADS for _ in range(2)]  # each twice: parsed, then remembered


def test_odd_heads_as_aiohttp_parses_them_also_when_remembered() -> None:
    got = {}
    for name, client in (("aiohttp", _with_aiohttp), ("wire", _with_wire)):
        with WireServer() as srv:
            for target, raw in HEADS.items():
                srv.add("raw", path=f"^{target}$", raw=raw.encode(), close=True)
            got[name] = asyncio.run(client(srv.url, [("GET", t, None, []) for t in TARGETS]))
    # (Names compared case-insensitively: aiohttp spells some well-known ones its way.)
    assert _comparable(got["wire"], frozenset()) == _comparable(got["aiohttp"], frozenset())
    by_target = dict(zip(TARGETS, got["wire"], strict=True))
    assert len(by_target["/many"][1]) == 61
    assert [v for k, v in by_target["/dup"][1] if k.lower() == "x-dup"] == ["a", "b", "c"]
    assert ("X-C", "trail") in by_target["/spacing"][1]
    assert ("X-G", "in  side : colon") in by_target["/spacing"][1]
    assert ("content-TYPE", "text/plain") in by_target["/case"][1]  # (as sent)


def _feed(pieces: list[bytes], pool: wire.Pool | None = None) -> wire._Connection:
    """A connection fed ``pieces`` as separate data_received calls (no transport)."""
    async def go() -> wire._Connection:
        p = pool or wire.Pool("http://127.0.0.1:9")
        p._loop = asyncio.get_running_loop()
        conn = wire._Connection(p)
        conn.busy = True
        conn.head_method = "GET"
        for piece in pieces:
            conn.data_received(piece)
        return conn
    return asyncio.run(go())


SHORT = (b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a:  2 \r\nContent-Type: t/p\r\n"
         b"Content-Length: 5\r\n\r\nhello")


def _outcome(conn: wire._Connection) -> Any:
    assert conn.error is None and conn.head is not None
    status, reason, headers = conn.head
    return status, reason, list(headers.items()), b"".join(conn.body), conn.done


def test_a_head_split_at_every_byte_boundary() -> None:
    whole = _outcome(_feed([SHORT]))
    assert whole == (200, "OK", [("X-A", "1"), ("x-a", "2"), ("Content-Type", "t/p"),
                                 ("Content-Length", "5")], b"hello", True)
    for i in range(1, len(SHORT)):
        assert _outcome(_feed([SHORT[:i], SHORT[i:]])) == whole, i
        for j in range(i + 1, len(SHORT), 7):
            assert _outcome(_feed([SHORT[:i], SHORT[i:j], SHORT[j:]])) == whole, (i, j)
    assert _outcome(_feed([SHORT[k:k + 1] for k in range(len(SHORT))])) == whole


@pytest.mark.parametrize("piece", [1000, 70_000])
def test_a_head_over_the_limit_in_pieces_or_whole(piece: int) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%05d: %s\r\n" % (i, b"v" * 90)
                                             for i in range(700))
    data = head + b"Content-Length: 0\r\n\r\n"
    conn = _feed([data[i:i + piece] for i in range(0, len(data), piece)])
    assert isinstance(conn.error, wire.WireError)
    assert "over 65,536 bytes" in str(conn.error) and conn.head is None


@pytest.mark.parametrize("line", [b"no colon", b": empty name", b" X-Lead: v", b"X-Trail : v",
                                  b"X-Tab\t: v", b"\tX-Fold: v"])
def test_a_malformed_header_line_fails_each_time_and_is_not_remembered(line: bytes) -> None:
    pool = wire.Pool("http://127.0.0.1:9")
    raw = b"HTTP/1.1 200 OK\r\nX-Ok: 1\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n"
    for _ in range(2):
        conn = _feed([raw], pool)
        assert isinstance(conn.error, wire.WireError) and conn.head is None
        assert "malformed response header" in str(conn.error)
    assert line.decode() not in pool._head_lines
    assert pool._head_lines["X-Ok: 1"] == ("X-Ok", "1")


def test_the_memo_of_header_lines_is_bounded() -> None:
    pool = wire.Pool("http://127.0.0.1:9")
    long = "X-Long: " + "v" * 300
    for i in range(wire._LINES_MEMO + 100):
        raw = f"HTTP/1.1 200 OK\r\nX-Id: {i}\r\n{long}\r\nContent-Length: 0\r\n\r\n"
        conn = _feed([raw.encode()], pool)
        assert _outcome(conn)[2] == [("X-Id", str(i)), ("X-Long", "v" * 300),
                                     ("Content-Length", "0")]
        assert len(pool._head_lines) <= wire._LINES_MEMO
    assert long not in pool._head_lines  # (a long line is parsed each time)
    assert f"X-Id: {wire._LINES_MEMO + 99}" in pool._head_lines
    # A remembered line gives its pair.
    pair = pool._head_lines["Content-Length: 0"]
    conn = _feed([b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"], pool)
    assert conn.head is not None and list(conn.head[2].items()) == [pair]
