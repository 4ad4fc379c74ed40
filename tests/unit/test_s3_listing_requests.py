"""The S3 listing and HEAD requests as sent through wire, on a loopback server that
records them: StartAfter only on a listing's first page (the token carries the position
after it), and a HEAD's answers -- 404 is "no such object", a bucket in another region is
the user's to fix (a UsageError naming --s3-region), not "no such object"."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lakeshift.errors import UsageError
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.s3.store import S3Store
from lakeshift.urls import parse_url
from tests.helpers import serve_in_thread
from tests.unit.test_s3_listing import _body


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, list[str]]]

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        self.seen.append(query)
        if "list-type" in query and query.get("prefix") == ["big/"]:
            keys = [f"big/{i:06d}-{'x' * 120}" for i in range(1000)]
            self._send(200, _body(keys), {"Content-Type": "application/xml"})
        elif "list-type" in query:
            self._send(200, _body(["d/a", "d/b"]), {"Content-Type": "application/xml"})
        else:
            self._send(404, b"<Error><Code>ServerSideEncryptionConfigurationNotFoundError"
                            b"</Code></Error>")

    def do_HEAD(self) -> None:
        if self.path.endswith("/moved"):
            self._send(301, b"", {"x-amz-bucket-region": "eu-central-1"})
        else:
            self._send(404, b"")


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Store, list[Any]]]:
    seen: list[Any] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"seen": seen}))
    serve_in_thread(httpd)
    for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    endpoint = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield S3Store(StoreConfig(parse_url("s3://bkt/"), StoreOptions(s3_endpoint=endpoint))), seen
    httpd.shutdown()
    httpd.server_close()


def test_start_after_only_on_the_first_page(store: tuple[S3Store, list[Any]]) -> None:
    s3, seen = store

    async def use() -> None:
        try:
            await s3.list_page("d/", None, "d/0")
            await s3.list_page("d/", "tok", "d/0")
        finally:
            await s3.close()

    asyncio.run(use())
    first, second = [q for q in seen if "list-type" in q]
    assert first["start-after"] == ["d/0"] and "continuation-token" not in first
    assert second["continuation-token"] == ["tok"] and "start-after" not in second


def test_a_head_tells_missing_from_the_wrong_region(store: tuple[S3Store, list[Any]]) -> None:
    s3, _ = store

    async def use() -> None:
        try:
            assert await s3.exists("d/missing") is None
            with pytest.raises(UsageError, match="--s3-region eu-central-1"):
                await s3.exists("d/moved")
        finally:
            await s3.close()

    asyncio.run(use())


def test_a_full_page_is_parsed_off_the_loop(store: tuple[S3Store, list[Any]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1,000-key page takes tens of ms to parse: in a thread, not in the event loop where
    every transfer would wait; a small page stays on the loop (a hop costs more)."""
    from lakeshift.stores.s3 import store as s3_store

    s3, _ = store
    threads: list[bool] = []
    real = s3_store.parse_list

    def spy(body: bytes, *rest: Any) -> Any:
        threads.append(threading.current_thread() is threading.main_thread())
        return real(body, *rest)

    monkeypatch.setattr(s3_store, "parse_list", spy)

    async def use() -> None:
        try:
            big = await s3.list_page("big/")
            small = await s3.list_page("d/")
            assert len(big.objects) == 1000 and len(small.objects) == 2
        finally:
            await s3.close()

    asyncio.run(use())
    assert threads == [False, True]


def test_a_listed_key_becomes_one_record(store: tuple[S3Store, list[Any]]) -> None:
    """list_page's ObjectInfos are made in the parse: one record built per key (its quick
    ``__init__``), and no Python call per key besides it -- not a ``Listed``, then
    ``_info``, ``unquote_etag``, ``md5_from_etag`` and the ObjectInfo (7 calls a key)."""
    import sys
    from types import FrameType

    s3, _ = store
    inits: list[str] = []
    called: set[str] = set()

    def prof(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            called.add(frame.f_code.co_name)
            if frame.f_code.co_filename.startswith("<quick_init"):
                inits.append(frame.f_code.co_filename)

    async def use() -> None:
        try:
            await s3.list_page("d/")  # (the first: bucket encryption asked, pool opened)
            sys.setprofile(prof)
            try:
                page = await s3.list_page("d/")
            finally:
                sys.setprofile(None)
            assert [o.key for o in page.objects] == ["d/a", "d/b"]
        finally:
            await s3.close()

    asyncio.run(use())
    assert inits == ["<quick_init ObjectInfo>"] * 2, inits
    assert not called & {"_info", "unquote_etag", "md5_from_etag", "parse_timestamp",
                         "<dictcomp>"}, called
