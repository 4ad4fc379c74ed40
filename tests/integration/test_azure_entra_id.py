"""Entra ID (bearer token) credentials: the same lean requests as with a key — streamed,
service-checked puts and block uploads included — against Azurite over HTTPS with OAuth.
Only the token's issuer is a stand-in (tests/conftest.py: EntraTestCredential)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from typing import Any

import lakeshift
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url
from tests.conftest import EntraTestCredential

MiB = 1024 * 1024


def _listing(url: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        store = open_store(StoreConfig(parse_url(url), StoreOptions(azure_auth="cli")))
        try:
            return {o.key: o async for page in store.list_pages("") for o in page}
        finally:
            await store.close()

    return asyncio.run(main())


def test_copy_and_rerun_with_an_entra_id_token(
        entra_env: dict[str, str], entra_credential: EntraTestCredential, s3: Any,
        bucket: str, tmp_path: Any) -> None:
    objs = {"e/small.txt": b"small", "e/streamed.bin": os.urandom(3 * MiB + 3)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    mpu = s3.create_multipart_upload(Bucket=bucket, Key="e/blocks.bin")
    big = os.urandom(6 * MiB)
    parts = []
    for n, chunk in enumerate([big[:5 * MiB], big[5 * MiB:]], start=1):
        r = s3.upload_part(Bucket=bucket, Key="e/blocks.bin", PartNumber=n,
                           UploadId=mpu["UploadId"], Body=chunk)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="e/blocks.bin", UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": parts})
    objs["e/blocks.bin"] = big

    container = f"entra-{uuid.uuid4().hex[:8]}"
    opts = StoreOptions(azure_auth="cli")
    res = lakeshift.copy(f"s3://{bucket}/e/", f"az://{container}/", block_size=MiB,
                         store_options=opts)
    assert res.exit_code == 0 and res.failures == []
    got = _listing(f"az://{container}/")
    assert set(got) == {k[2:] for k in objs}
    for k, v in objs.items():
        assert got[k[2:]].md5 == hashlib.md5(v).digest() and got[k[2:]].size == len(v)
    again = lakeshift.copy(f"s3://{bucket}/e/", f"az://{container}/", block_size=MiB,
                           store_options=opts)
    assert (again.stats.copied, again.stats.skipped) == (0, 3)
    # Azure as the source too (obstore reads with the same credential), into local disk.
    back = lakeshift.copy(f"az://{container}/", str(tmp_path / "back"), block_size=MiB,
                          store_options=opts)
    assert back.exit_code == 0
    for k, v in objs.items():
        assert (tmp_path / "back" / k[2:]).read_bytes() == v
    # A token is fetched once per client (4 stores; obstore's reader has its own) and
    # reused, not once for each of the dozens of requests.
    assert 4 <= entra_credential.issued <= 6
