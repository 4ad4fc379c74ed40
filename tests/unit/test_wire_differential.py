"""The wire client against the library it stands in for: the same requests (GET, PUT, HEAD,
DELETE; empty, small, large and streamed bodies; Content-Length, chunked and read-to-EOF
responses; odd header cases) sent by aiohttp and by wire to the same servers — the
scriptable loopback server and Azurite — give the same status, headers (names compared
case-insensitively; Date and the service's per-request values aside) and body."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lakeshift.stores import wire
from tests import servers
from tests.wireserver import WireServer

SMALL = os.urandom(100)
LARGE = os.urandom(5 * 1024 * 1024 + 7)
STREAMED = os.urandom(3 * 1024 * 1024 + 1)
ODD_HEADERS = [("X-Dup", "a"), ("x-dup", "b"), ("x-MiXeD", "V"), ("X-Empty", ""),
               ("X-Inner", "a  b"), ("X-Trailing", "v   "), ("X-Utf8", "caf\u00e9")]

# (method, target, body, extra request headers); body "stream" is STREAMED in 64 KiB pieces.
Request = tuple[str, str, Any, list[tuple[str, str]]]


def _rules(srv: WireServer) -> None:
    srv.add("answer", path="^/odd", body=b"odd body", headers=ODD_HEADERS)
    srv.add("answer", path="^/chunked", body=LARGE[:9000], chunks=[1, 8000, 999],
            trailers=[("X-T", "1")])
    srv.add("answer", path="^/chunked-empty", body=b"", chunks=[])
    srv.add("raw", path="^/eof", raw=b"HTTP/1.1 200 OK\r\nX-E: 1\r\n\r\n" + SMALL, close=True)
    srv.add("raw", path="^/http10", raw=b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            close=True)
    srv.add("answer", path="^/nocontent", status=204, headers=[("X-N", "n")])
    srv.add("answer", path="^/closing", body=b"last", close=True)


SERVER_REQUESTS: list[Request] = [
    ("PUT", "/o/empty", b"", []), ("PUT", "/o/small", SMALL, []), ("PUT", "/o/large", LARGE, []),
    ("PUT", "/o/streamed", "stream", []), ("GET", "/o/empty", None, []),
    ("GET", "/o/small", None, []), ("GET", "/o/large", None, []),
    ("GET", "/o/streamed", None, []), ("HEAD", "/o/large", None, []),
    ("GET", "/odd", None, [("x-lower", "1"), ("X-UPPER", "2")]), ("GET", "/chunked", None, []),
    ("GET", "/chunked-empty", None, []), ("HEAD", "/odd", None, []), ("GET", "/eof", None, []),
    ("GET", "/http10", None, []), ("GET", "/nocontent", None, []),
    ("GET", "/closing", None, []), ("DELETE", "/o/small", None, []),
    ("GET", "/o/small", None, []), ("GET", "/o/a%20b%2Fc?x=%3D&y", None, []),
]


async def _stream() -> AsyncIterator[bytes]:
    for i in range(0, len(STREAMED), 65536):
        yield STREAMED[i:i + 65536]


def _length(body: Any) -> int:
    return len(STREAMED) if body == "stream" else len(body or b"")


Outcome = tuple[int, list[tuple[str, str]], bytes]


async def _with_aiohttp(base: str, requests: list[Request], ctx: Any = None) -> list[Outcome]:
    import aiohttp
    from yarl import URL

    out: list[Outcome] = []
    connector = aiohttp.TCPConnector(ssl=ctx if ctx is not None else True)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     trust_env=False) as session:
        for method, target, body, extra in requests:
            headers = dict(extra)
            data: Any = body
            if body == "stream":
                data = _stream()
            if body is not None:
                headers["Content-Length"] = str(_length(body))
            async with session.request(method, URL(base + target, encoded=True), data=data,
                                       headers=headers) as r:
                out.append((r.status, list(r.headers.items()), await r.read()))
    return out


async def _with_wire(base: str, requests: list[Request], ctx: Any = None) -> list[Outcome]:
    split = base.split("/", 3)
    origin, prefix = "/".join(split[:3]), ("/" + split[3]) if len(split) > 3 else ""
    pool = wire.Pool(origin, ssl_context=ctx)
    out: list[Outcome] = []
    try:
        for method, target, body, extra in requests:
            data: Any = _stream() if body == "stream" else body
            r = await pool.request(method, prefix + target, extra, data,
                                   length=_length(body) if body is not None else None,
                                   connect_timeout=10, stall_timeout=30)
            async with r:
                out.append((r.status, list(r.headers.items()), await r.read()))
    finally:
        await pool.close()
    return out


def _comparable(outcomes: list[Outcome], volatile: frozenset[str],
                scrub: Callable[[bytes], bytes] = lambda b: b) -> list[Outcome]:
    return [(status, [(k.lower(), v) for k, v in headers if k.lower() not in volatile],
             scrub(body)) for status, headers, body in outcomes]


def test_wire_answers_as_aiohttp_from_the_loopback_server() -> None:
    got = {}
    for name, client in (("aiohttp", _with_aiohttp), ("wire", _with_wire)):
        with WireServer() as srv:
            _rules(srv)
            got[name] = asyncio.run(client(srv.url, SERVER_REQUESTS))
            got[name + " sent"] = [(r.method, r.target, r.length) for r in srv.requests]
    assert got["wire sent"] == got["aiohttp sent"]
    volatile = frozenset({"date"})
    assert _comparable(got["wire"], volatile) == _comparable(got["aiohttp"], volatile)
    # The cases hold what they claim to (so a sameness here means something).
    by_target = dict(zip([t for _, t, _, _ in SERVER_REQUESTS], got["wire"], strict=False))
    assert [v for k, v in by_target["/odd"][1] if k.lower() == "x-dup"] == ["a", "b"]
    assert by_target["/o/streamed"][2] == STREAMED and by_target["/chunked"][2] == LARGE[:9000]


def test_wire_answers_as_aiohttp_from_azurite(azurite: servers.Server, container: str) -> None:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(servers.AZURITE_ACCOUNT, container,
                                 account_key=servers.AZURITE_KEY,
                                 permission=ContainerSasPermissions(read=True, write=True,
                                                                    delete=True, list=True,
                                                                    create=True),
                                 expiry=datetime.now(UTC) + timedelta(hours=1))
    base = f"http://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT}"
    blob = [("x-ms-blob-type", "BlockBlob"), ("Content-Type", "application/octet-stream")]

    def requests(prefix: str) -> list[Request]:
        q = f"?{sas}"
        b = f"/{container}/{prefix}"
        return [
            ("PUT", f"{b}empty{q}", b"", blob), ("PUT", f"{b}small{q}", SMALL, blob),
            ("PUT", f"{b}large{q}", LARGE, blob), ("PUT", f"{b}str%20eamed{q}", "stream", blob),
            ("GET", f"{b}small{q}", None, []), ("GET", f"{b}large{q}", None, []),
            ("GET", f"{b}str%20eamed{q}", None, [("x-ms-range", "bytes=5-100004")]),
            ("HEAD", f"{b}large{q}", None, []), ("GET", f"{b}empty{q}", None, []),
            ("GET", f"{b}missing{q}", None, []), ("HEAD", f"{b}missing{q}", None, []),
            ("GET", f"/{container}?restype=container&comp=list&prefix={prefix}&{sas}", None,
             []),
            ("DELETE", f"{b}small{q}", None, []), ("GET", f"{b}small{q}", None, []),
        ]

    def scrub(body: bytes) -> bytes:
        body = re.sub(rb"RequestId:[\w-]+|Time:[\w:.-]+", b"", body)
        times = rb"Etag|Last-Modified|Creation-Time|AccessTierChangeTime"
        body = re.sub(rb"<(" + times + rb")>[^<]*</\1>", b"", body)
        return body.replace(b"p-aio-", b"p-").replace(b"p-wir-", b"p-")

    got = {name: asyncio.run(client(base, requests(f"p-{name[:3]}-")))
           for name, client in (("aiohttp", _with_aiohttp), ("wire", _with_wire))}
    volatile = frozenset({"date", "etag", "last-modified", "x-ms-request-id",
                          "x-ms-creation-time", "x-ms-access-tier-change-time"})
    assert _comparable(got["wire"], volatile, scrub) == \
        _comparable(got["aiohttp"], volatile, scrub)
    statuses = [s for s, _, _ in got["wire"]]
    assert statuses == [201] * 4 + [200, 200, 206, 200, 200, 404, 404, 200, 202, 404]
    assert got["wire"][5][2] == LARGE and got["wire"][6][2] == STREAMED[5:100005]


def test_wire_answers_as_aiohttp_over_tls(tmp_path: Any) -> None:
    import ssl

    from tests.servers import self_signed_certificate

    cert, key = self_signed_certificate(tmp_path)
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    got = {}
    for name, client in (("aiohttp", _with_aiohttp), ("wire", _with_wire)):
        with WireServer(tls=(cert, key)) as srv:
            _rules(srv)
            got[name] = asyncio.run(client(srv.url, SERVER_REQUESTS, ctx))
    volatile = frozenset({"date"})
    assert _comparable(got["wire"], volatile) == _comparable(got["aiohttp"], volatile)
