"""No limit on a whole data request, a limit on a stalled one (issue 9 item 3): reads
through obstore and Put Blob / Put Block paced slower than a total limit of the same size
would allow still succeed; a connection that moves nothing for the stall limit is given up
and the object sent again.  The stall limit is made 8 s here (120 s by default).  It also
covers the wait for the answer once a body is sent: late in a whole suite Azurite, holding
every earlier test's blobs, took more than 2 s and then 4 s to answer a 12 MiB Put Blob."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout, web

import lakeshift
from lakeshift.stores import http
from tests import servers
from tests.helpers import blob_bytes

# A copy that waits out a stall instead of giving up on it would take the proxy's hour.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MiB = 1024 * 1024
STALL = 8.0
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
       "content-length"}


@dataclass
class Pace:
    """``kind``: pace_response / pace_request (``piece`` bytes every ``interval`` s),
    stall_response (half the body, then nothing for ``pause`` s) or stall_request (read
    nothing of the body for ``pause`` s, then 500)."""

    kind: str
    method: str
    path: str
    uses: int = 1
    piece: int = 256 * 1024
    interval: float = 0.25
    pause: float = 3600.0


class PacingProxy:
    """A loopback proxy (its own thread and loop) that paces or stalls bodies; it counts
    the requests it paced (``paced``) and stalled (``stalled``)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: list[Pace] = []
        self.paced = 0
        self.stalled = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._serve(sock),), daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _take(self, method: str, path: str) -> Pace | None:
        for r in self.rules:
            if r.uses > 0 and r.method == method and re.search(r.path, path):
                r.uses -= 1
                return r
        return None

    async def _serve(self, sock: socket.socket) -> None:
        self._stop = asyncio.Event()
        self._session = ClientSession(timeout=ClientTimeout(total=None), auto_decompress=False)
        app = web.Application(client_max_size=1 << 31)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=2.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self._ready.set()
        await self._stop.wait()
        await self._session.close()
        await runner.cleanup()

    async def _wait_or_client_gone(self, request: web.Request, seconds: float) -> None:
        """Wait ``seconds``, or until the client leaves."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            if request.transport is None or request.transport.is_closing():
                return
            await asyncio.sleep(0.05)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        rule = self._take(request.method, request.path_qs)
        if rule is not None and rule.kind == "stall_request":
            # Reading nothing, the server does not see the client leave: only the object
            # arriving again (and the copy finishing) shows that it gave up.
            self.stalled += 1
            await self._wait_or_client_gone(request, rule.pause)
            return web.Response(status=500)
        if rule is not None and rule.kind == "pace_request":
            parts = []
            while chunk := await request.content.read(rule.piece):
                parts.append(chunk)
                await asyncio.sleep(rule.interval)
            body = b"".join(parts)
            self.paced += 1
        else:
            body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         data=body or None, headers=headers,
                                         allow_redirects=False,
                                         skip_auto_headers=("Content-Type",)) as up:
            payload = await up.read()
            out = {k: v for k, v in up.headers.items() if k.lower() not in HOP}
        if rule is None or rule.kind not in ("pace_response", "stall_response") or \
                request.method == "HEAD" or not payload:
            return web.Response(status=up.status, headers=out, body=payload)
        resp = web.StreamResponse(status=up.status, headers=out)
        resp.content_length = len(payload)
        await resp.prepare(request)
        if rule.kind == "stall_response":
            self.stalled += 1
            await resp.write(payload[: len(payload) // 2])
            await self._wait_or_client_gone(request, rule.pause)
            return resp
        self.paced += 1
        for i in range(0, len(payload), rule.piece):
            await resp.write(payload[i:i + rule.piece])
            await asyncio.sleep(rule.interval)
        await resp.write_eof()
        return resp

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture(autouse=True)
def short_stall_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "STALL_SECONDS", STALL)


@pytest.fixture
def s3_proxy(moto: servers.Server, s3_env: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[PacingProxy]:
    p = PacingProxy(f"http://127.0.0.1:{moto.port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
    yield p
    p.stop()


@pytest.fixture
def az_proxy(azurite: servers.Server, azure_env: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[PacingProxy]:
    p = PacingProxy(f"http://127.0.0.1:{azurite.port}")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
        f"AccountKey={servers.AZURITE_KEY};BlobEndpoint={p.url}/{servers.AZURITE_ACCOUNT};"))
    yield p
    p.stop()


def _seed(s3: Any, bucket: str) -> dict[str, bytes]:
    objs = {"d/whole.bin": os.urandom(3 * MiB + 17), "d/blocks.bin": os.urandom(6 * MiB + 5)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    return objs


def _copy_to_local(bucket: str, out: Path) -> lakeshift.CopyResult:
    # whole.bin is read in one GET; blocks.bin in ranged GETs of 2 MiB blocks.
    return lakeshift.copy(f"s3://{bucket}/d/", str(out), block_size=2 * MiB,
                          single_put_max=4 * MiB)


def test_reads_paced_longer_than_the_stall_limit_succeed(
        s3_proxy: PacingProxy, s3: Any, bucket: str, tmp_path: Path) -> None:
    objs = _seed(s3, bucket)
    # 1/6 MiB/s: each GET takes 12-18 s, longer than a total limit of STALL seconds would
    # allow; bytes keep coming, so the stall limit is never reached.
    s3_proxy.rules += [Pace("pace_response", "GET", r"/d/(whole|blocks)\.bin", uses=20,
                            piece=128 * 1024, interval=0.75)]
    res = _copy_to_local(bucket, tmp_path / "out")
    assert res.exit_code == 0 and res.failures == []
    # One GET each: none was given up and sent again.
    assert s3_proxy.paced == 2
    for k, v in objs.items():
        assert (tmp_path / "out" / k[2:]).read_bytes() == v


def test_a_stalled_read_is_given_up_and_read_again(
        s3_proxy: PacingProxy, s3: Any, bucket: str, tmp_path: Path) -> None:
    objs = _seed(s3, bucket)
    # Half of each body, then nothing for an hour: only giving up on the stall lets the copy
    # finish (the proxy may notice the client leaving only after the copy has returned).
    s3_proxy.rules += [Pace("stall_response", "GET", r"/d/whole\.bin"),
                       Pace("stall_response", "GET", r"/d/blocks\.bin")]
    res = _copy_to_local(bucket, tmp_path / "out")
    assert res.exit_code == 0 and res.failures == []
    assert s3_proxy.stalled == 2
    for k, v in objs.items():
        assert (tmp_path / "out" / k[2:]).read_bytes() == v


def test_uploads_paced_longer_than_the_stall_limit_succeed(
        s3: Any, bucket: str, az_proxy: PacingProxy, blob_service: Any, container: str) -> None:
    objs = {"d/whole.bin": os.urandom(12 * MiB + 17), "d/blocks.bin": os.urandom(24 * MiB + 5)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    # 1 MiB/s into the service: Put Blob of 12 MiB and Put Blocks of 12 MiB take ~12 s each.
    az_proxy.rules += [Pace("pace_request", "PUT", r"/o/(whole|blocks)\.bin", uses=20,
                            piece=256 * 1024, interval=0.25)]
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/o/",
                         copy_mode="stream", block_size=12 * MiB,
                         single_put_max=16 * MiB)
    assert res.exit_code == 0 and res.failures == []
    # Put Blob, two Put Blocks and Put Block List, each once: none was given up.
    assert az_proxy.paced == 4
    for k, v in objs.items():
        assert blob_bytes(blob_service, container, "o/" + k[2:]) == v


@pytest.mark.parametrize("name", ["whole", "blocks"])
def test_a_stalled_put_is_given_up_and_sent_again(
        name: str, s3: Any, bucket: str, az_proxy: PacingProxy, blob_service: Any,
        container: str) -> None:
    data = os.urandom(24 * MiB + 5)  # more than the sockets' buffers hold
    s3.put_object(Bucket=bucket, Key=f"d/{name}.bin", Body=data)
    # Never answered within the test's time: only giving up on the stall lets it finish.
    az_proxy.rules += [Pace("stall_request", "PUT", rf"/o/{name}\.bin")]
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/o/",
                         copy_mode="stream", block_size=12 * MiB,
                         single_put_max=32 * MiB if name == "whole" else 0)
    assert res.exit_code == 0 and res.failures == []
    assert az_proxy.stalled == 1
    assert blob_bytes(blob_service, container, f"o/{name}.bin") == data
