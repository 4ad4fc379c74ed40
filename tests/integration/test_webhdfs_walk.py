"""The WebHDFS store presents a directory tree as sorted keys: every start-after resumes
exactly (names that sort around "d/" — "d-1", "d.txt", "d0" — included), in both dialects."""

from __future__ import annotations

import asyncio

import pytest

from lakeshift.engine.listing import list_pages
from lakeshift.errors import ForbiddenError, TransientError, UsageError
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url
from tests.doubles.fixtures import GEN1_HOST
from tests.doubles.webhdfs import WebHdfsDouble

KEYS = ["d-1", "d.txt", "d/a-b/c", "d/a.b", "d/a/x", "d/a/y/z", "d/a0", "d0", "e/f!/g",
        "e/f/h", "ü"]


@pytest.mark.parametrize("dialect", ["gen1", "hadoop"])
def test_every_start_after_resumes_in_key_order(dialect: str,
                                                request: pytest.FixtureRequest) -> None:
    double: WebHdfsDouble = request.getfixturevalue(dialect)
    keys = sorted(KEYS)
    for k in keys:
        double.write("t/" + k, k.encode())
    url = f"adl://{GEN1_HOST}/" if dialect == "gen1" else "webhdfs://nn:9870/"

    async def main() -> None:
        store = open_store(StoreConfig(parse_url(url)))
        store.page_size = 2
        store.list_size = 2  # type: ignore[attr-defined]
        try:
            async def listed(prefix: str, after: str | None = None) -> list[str]:
                return [o.key async for p in list_pages(store, prefix, after) for o in p]

            want = ["t/" + k for k in keys]
            assert await listed("t/") == want
            for i, k in enumerate([None, *want]):
                assert await listed("t/", k) == want[i:], k
            assert await listed("t/d") == [k for k in want if k.startswith("t/d")]
            assert await listed("t/d/a") == [k for k in want if k.startswith("t/d/a")]
            data = await store.read("t/d/a/y/z")
            assert data.data == b"d/a/y/z"
        finally:
            await store.close()

    asyncio.run(main())


def test_errors_map_to_the_tree(hadoop: WebHdfsDouble) -> None:
    hadoop.write("p/ok", b"1")
    hadoop.write("p/no/x", b"2")
    hadoop.forbidden.add("p/no")

    async def main() -> None:
        store = open_store(StoreConfig(parse_url("webhdfs://nn:9870/")))
        try:
            hadoop.standby = 1
            with pytest.raises(TransientError, match="StandbyException"):
                await store.list_page("p/")
            page = await store.list_page("p/")
            assert [o.key for o in page.objects] == ["p/no", "p/ok"]
            with pytest.raises(ForbiddenError, match="AccessControlException"):
                await store.read("p/no")
            with pytest.raises(UsageError, match="sources only"):
                await store.prepare_destination()
            acl = await store.acl_status("p/ok")  # type: ignore[attr-defined]
            assert acl.owner == "hdfs" and acl.permission == "644"
            algo, digest = await store.file_checksum("p/ok")  # type: ignore[attr-defined]
            assert algo.startswith("MD5-of-") and digest
        finally:
            await store.close()

    asyncio.run(main())


def test_urls() -> None:
    u = parse_url("adl://Acct1.azuredatalakestore.net/a/b/")
    assert (u.scheme, u.bucket, u.path, u.account) == (
        "adl", "acct1.azuredatalakestore.net", "a/b/", "acct1")
    assert parse_url("swebhdfs://nn.corp:9871/x").scheme == "swebhdfs"
    with pytest.raises(UsageError, match="azuredatalakestore"):
        parse_url("adl://acct.example.com/x")
    with pytest.raises(UsageError, match="not loopback"):
        _ = open_store(StoreConfig(parse_url("webhdfs://nn.corp:9870/x"), StoreOptions())).client


def test_an_old_namenode_without_liststatus_batch_is_listed_whole(hadoop: WebHdfsDouble) -> None:
    """Hadoop before 2.8 answers LISTSTATUS_BATCH with IllegalArgumentException: the walk
    lists whole directories (LISTSTATUS) instead, same keys, same order."""
    hadoop.old_namenode = True
    for k in KEYS:
        hadoop.write("o/" + k, k.encode())

    async def main() -> list[str]:
        store = open_store(StoreConfig(parse_url("webhdfs://nn:9870/")))
        try:
            return [o.key async for p in list_pages(store, "o/", "o/d/a.b") for o in p]
        finally:
            await store.close()

    assert asyncio.run(main()) == ["o/" + k for k in sorted(KEYS) if "o/" + k > "o/d/a.b"]
    ops = [op for op, _, _ in hadoop.requests]
    assert ops.count("LISTSTATUS_BATCH") == 1 and "LISTSTATUS" in ops
