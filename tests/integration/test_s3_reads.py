"""The S3 store's own request paths against moto: listing timestamps (stores/s3/timestamps.py)
and, once on wire, GETs (stores/s3/store.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import lakeshift
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store


@asynccontextmanager
async def _store(url: str, **options: Any) -> AsyncIterator[Any]:
    store = open_store(StoreConfig(lakeshift.parse_url(url), StoreOptions(**options)))
    try:
        yield store
    finally:
        await store.close()


def test_listing_timestamps_do_not_go_through_dateutil(
        s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """LastModified of a page equals what boto3 says, parsed without dateutil's parser."""
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"t/{i}", Body=b"x" * i)
    expected = {o["Key"]: o["LastModified"] for o in
                s3.list_objects_v2(Bucket=bucket, Prefix="t/")["Contents"]}
    import dateutil.parser

    def refuse(*a: Any, **k: Any) -> Any:
        raise AssertionError(f"dateutil parsed {a!r}")

    monkeypatch.setattr(dateutil.parser, "parse", refuse)

    async def main() -> dict[str, Any]:
        async with _store(f"s3://{bucket}/t/") as store:
            page = await store.list_page("t/")
            return {o.key: o.last_modified for o in page.objects}

    got = asyncio.run(main())
    assert got == expected and all(v.utcoffset() is not None for v in got.values())
