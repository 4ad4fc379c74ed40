"""LeanBlobClient (stores/azure/rest.py) on the wire client, against the scriptable loopback
server: what it sends is what it signed, data requests have only the stall limit and
control requests a time limit, a failing source is reported as itself, messages hold no
SAS, and aiohttp is no longer loaded for it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from lakeshift.errors import LakeshiftError, NotFoundError, TransientError
from lakeshift.model import ObjectProps
from lakeshift.stores import http
from lakeshift.stores.azure.rest import LeanBlobClient, shared_key_signature
from tests import servers
from tests.wireserver import WireServer

T = TypeVar("T")
KEY = base64.b64encode(b"k" * 64).decode()
SAS = "sv=2023-11-03&sig=SECRETSIGNATURE"


@pytest.fixture
def server() -> Iterator[WireServer]:
    with WireServer() as srv:
        yield srv


def run(srv: WireServer, act: Callable[[LeanBlobClient], Awaitable[T]], sas: bool = False,
        stall: float | None = None) -> T:
    async def main() -> T:
        client = LeanBlobClient(f"{srv.url}/acct", "acct", "c", None if sas else KEY,
                                SAS if sas else None)
        client.stall_seconds = stall
        try:
            return await act(client)
        finally:
            await client.close()
    return asyncio.run(main())


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_what_is_sent_is_what_was_signed(server: WireServer) -> None:
    data = os.urandom(5000)
    md5 = hashlib.md5(data).digest()

    async def act(c: LeanBlobClient) -> None:
        await c.put("dir/a b.bin", data, ObjectProps(content_type="text/plain"), md5, {"m": "v"},
                    "put")
        await c.put_stream("s", 3, pieces(b"xyz", 1), ObjectProps(), None, {}, "stream")
        assert await c.head("dir/a b.bin", "head") is not None

    run(server, act)
    assert server.objects["/acct/c/dir/a%20b.bin"] == data
    for seen in server.requests:
        headers = dict(seen.headers)
        assert set(headers) >= {"Host", "x-ms-date", "x-ms-version", "Authorization"}
        signed = {k: v for k, v in headers.items() if k not in ("Host", "Authorization")}
        url = f"{server.url}{seen.target}"
        assert headers["Authorization"] == shared_key_signature(
            "acct", base64.b64decode(KEY), seen.method, url, signed), seen
    put = dict(server.requests[0].headers)
    assert put["Content-Type"] == "text/plain" and put["Content-Length"] == "5000"


def test_the_dates_sent_and_the_service_clock_follow_time(
        server: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime
    from email.utils import format_datetime

    clock = [1_800_000_000.2]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    dates = ["Mon, 01 Dec 2026 10:00:00 GMT", "Mon, 01 Dec 2026 10:00:01 GMT"]
    for date in dates:
        server.add("answer", method="HEAD", uses=2, headers=[("Date", date)])

    async def act(c: LeanBlobClient) -> list[datetime | None]:
        seen = []
        for step in (0.0, 0.5, 1.0, 0.2):
            clock[0] += step
            await c.head("k", "head")
            seen.append(c.last_date)
        return seen

    seen = run(server, act)
    sent = [dict(r.headers)["x-ms-date"] for r in server.requests]
    expected = [format_datetime(datetime.fromtimestamp(int(t), UTC), usegmt=True)
                for t in (1_800_000_000.2, 1_800_000_000.7, 1_800_000_001.7, 1_800_000_001.9)]
    assert sent == expected
    assert [d.second if d else None for d in seen] == [0, 0, 1, 1]


def test_a_failing_source_is_reported_as_itself(server: WireServer) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"abc"
        raise NotFoundError("s3://b/k: the source vanished")

    with pytest.raises(NotFoundError, match="the source vanished"):
        run(server, lambda c: c.put_stream("k", 10, broken(), ObjectProps(), None, {}, "k"))
    assert "/acct/c/k" not in server.objects


def test_data_requests_have_the_stall_limit_and_no_total_limit(
        server: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "REQUEST_SECONDS", 0.5)
    data = os.urandom(24 * 1024 * 1024)  # more than the sockets' buffers hold
    md5 = hashlib.md5(data).digest()
    # The server reads nothing for 1.5 s (longer than REQUEST_SECONDS): the upload waits.
    server.add("slow_read", method="PUT", delay=1.5, uses=2)
    run(server, lambda c: c.put("big", data, ObjectProps(), md5, {}, "big"), stall=4)
    run(server, lambda c: c.put_stream("big2", len(data), pieces(data, 1 << 20), ObjectProps(),
                                       None, {}, "big2"), stall=4)
    assert server.objects["/acct/c/big"] == data == server.objects["/acct/c/big2"]
    # ... but one that takes nothing for the stall limit is given up.
    server.add("slow_read", method="PUT", delay=30, uses=1)
    start = time.monotonic()
    with pytest.raises(TransientError, match=r"big3: Stalled: .* took no request bytes for 1 s"):
        run(server, lambda c: c.put("big3", data, ObjectProps(), md5, {}, "big3"), stall=1)
    assert time.monotonic() - start < 10
    # A control request must be answered within REQUEST_SECONDS.
    server.add("stall_head", method="HEAD", delay=30)
    with pytest.raises(TransientError, match=r"no response from 127\.0\.0\.1"):
        run(server, lambda c: c.head("k", "head"), stall=60)


def test_messages_hold_no_sas(server: WireServer) -> None:
    server.add("cut", method="GET", body=b"<x/>" * 100, at=10)
    server.add("reset", method="PUT")
    for act in (lambda c: c.list_page("", None, None, "listing"),
                lambda c: c.put("k", b"abc", ObjectProps(), b"0" * 16, {}, "put k")):
        with pytest.raises(TransientError) as e:
            run(server, act, sas=True)
        assert "SECRETSIGNATURE" not in str(e.value) and "sv=" not in str(e.value)
    assert all("sig=SECRETSIGNATURE" in r.target for r in server.requests)


def test_the_blob_client_does_not_load_aiohttp(server: WireServer) -> None:
    code = f"""
import asyncio, sys
from lakeshift.model import ObjectProps
from lakeshift.stores.azure.rest import LeanBlobClient
async def main():
    c = LeanBlobClient("{server.url}/acct", "acct", "c", {KEY!r}, None)
    await c.put("k", b"abc", ObjectProps(), b"0" * 16, {{}}, "put")
    assert await c.head("k", "head") is not None
    await c.close()
asyncio.run(main())
print("aiohttp" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_set_properties_stores_the_md5_after_a_commit_without_one(
        azurite: servers.Server, blob_service: Any, container: str) -> None:
    port = azurite.port
    parts = [os.urandom(1000), os.urandom(500)]
    md5 = hashlib.md5(b"".join(parts)).digest()
    props = ObjectProps(content_type="text/csv", cache_control="no-cache")

    async def main() -> tuple[str | None, str | None]:
        c = LeanBlobClient(f"http://127.0.0.1:{port}/{servers.AZURITE_ACCOUNT}",
                           servers.AZURITE_ACCOUNT, container, servers.AZURITE_KEY, None)
        try:
            for i, part in enumerate(parts):
                await c.put_block("k", f"block-{i}", part, None, "k")
            etag = await c.put_block_list("k", ["block-0", "block-1"], props, None, {"m": "1"},
                                          "k")
            before = blob_service.get_blob_client(container, "k").get_blob_properties()
            assert before.content_settings.content_md5 is None  # nothing proven yet
            with pytest.raises(LakeshiftError, match="ConditionNotMet"):
                await c.set_properties("k", props, md5, "0xWRONG", "k")
            await c.set_properties("k", props, md5, etag, "k")
            return etag, before.etag
        finally:
            await c.close()

    etag, listed = asyncio.run(main())
    assert etag is not None and etag == listed.strip('"')
    after = blob_service.get_blob_client(container, "k").get_blob_properties()
    assert bytes(after.content_settings.content_md5) == md5
    assert after.content_settings.content_type == "text/csv"
    assert after.content_settings.cache_control == "no-cache"
    assert after.metadata == {"m": "1"}


def test_a_put_blob_enters_no_response_context_manager(server: WireServer) -> None:
    """The response of a request is read whole (``read`` releases the connection whatever
    happens): no ``async with`` around it, nor around a data request (it has no time limit
    on the whole): four Python calls fewer per request; Put Blob
    calls ``_send`` itself (no ``_send_data`` coroutine between) and takes the pool as it
    is once made, the date of the second as it is, and a plain blob name as it is.  The
    connection is back in the pool after each put."""
    import sys
    from types import FrameType

    entered: list[str] = []

    def prof(frame: FrameType, event: str, arg: object) -> None:
        code = frame.f_code
        if event == "call" and (
                (code.co_name in ("__aenter__", "__aexit__")
                and code.co_filename.endswith(("wire/response.py", "azure/rest.py")))
                or (code.co_name in ("_send_data", "_client", "_http_date", "quote_key")
                and code.co_filename.endswith(("azure/rest.py", "azure/blob_format.py")))):
            entered.append(code.co_name)

    async def act(c: LeanBlobClient) -> int:
        data = b"abc"
        md5 = hashlib.md5(data).digest()
        await c.put("a", data, ObjectProps(), md5, {}, "put")
        sys.setprofile(prof)
        try:
            await c.put("b", data, ObjectProps(), md5, {}, "put")
        finally:
            sys.setprofile(None)
        pool = c._client()
        return len(pool._idle)

    assert run(server, act) == 1
    assert server.objects["/acct/c/b"] == b"abc"
    assert entered == []
