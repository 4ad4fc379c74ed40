"""Entra ID (bearer token) credentials: the same lean requests as with a key — streamed,
service-checked puts and block uploads included — against Azurite over HTTPS with OAuth.
Only the token's issuer is a stand-in (tests/conftest.py: EntraTestCredential)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import lakeshift
from lakeshift.engine.listing import list_pages
from lakeshift.model import ObjectProps
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url
from tests.conftest import EntraTestCredential
from tests.helpers import seed_each_path

MiB = 1024 * 1024


def _listing(url: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        store = open_store(StoreConfig(parse_url(url), StoreOptions(azure_auth="cli")))
        try:
            return {o.key: o async for page in list_pages(store, "") for o in page}
        finally:
            await store.close()

    return asyncio.run(main())


def test_copy_and_rerun_with_an_entra_id_token(
        entra_env: dict[str, str], entra_credential: EntraTestCredential, s3: Any,
        bucket: str, tmp_path: Any) -> None:
    objs = seed_each_path(s3, bucket, "e/")

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


def test_a_token_the_service_refuses_is_renewed_once_and_the_request_sent_again(
        entra_env: dict[str, str], entra_credential: EntraTestCredential) -> None:
    """The first token handed out is one the service refuses (expired): the store asks for a
    new one and the request goes through, instead of the run ending as a credentials
    error."""
    from tests import servers

    tokens = iter([servers.entra_token(minutes=-5)])  # expired: the service refuses it (403)

    async def first_refused(*scopes: str, **kw: object) -> object:
        import time

        from azure.core.credentials import AccessToken

        entra_credential.issued += 1
        return AccessToken(next(tokens, None) or servers.entra_token(), int(time.time()) + 3600)

    entra_credential.get_token = first_refused  # type: ignore[method-assign]
    container = f"entra-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        store = open_store(StoreConfig(parse_url(f"az://{container}/"),
                                       StoreOptions(azure_auth="cli")))
        try:
            await store.prepare_destination()
            await store.put("k", b"v", ObjectProps(), hashlib.md5(b"v").digest())
        finally:
            await store.close()

    asyncio.run(main())
    assert set(_listing(f"az://{container}/")) == {"k"}
    assert entra_credential.issued >= 2


def test_a_block_sent_in_pieces_is_sent_again_with_a_renewed_token(
        entra_env: dict[str, str], entra_credential: EntraTestCredential) -> None:
    """The same for a Put Block whose body is the pieces a GET's socket delivered (a tuple
    of buffers, the multipart path): it too is sent again, whole, with the new token."""
    from lakeshift.stores.base import Pieces
    from tests import servers

    container = f"entra-{uuid.uuid4().hex[:8]}"
    pieces = Pieces([b"a" * 1000, b"b" * 3000, b"c" * 96])
    data = b"".join(pieces.parts)

    async def main() -> None:
        store = open_store(StoreConfig(parse_url(f"az://{container}/"),
                                       StoreOptions(azure_auth="cli")))
        try:
            await store.prepare_destination()
            # From here on the store's token is one the service refuses (expired).
            tokens = iter([servers.entra_token(minutes=-5)])

            async def refused_first(*scopes: str, **kw: object) -> object:
                import time

                from azure.core.credentials import AccessToken

                entra_credential.issued += 1
                return AccessToken(next(tokens, None) or servers.entra_token(),
                                   int(time.time()) + 3600)

            entra_credential.get_token = refused_first  # type: ignore[method-assign]
            assert store._blobs.tokens is not None
            store._blobs.tokens.expire()
            up: Any = await store.start_blocks("p", len(data), len(data), ObjectProps())
            await up.stage_pieces(0, 0, pieces, hashlib.md5(data).digest(), None)
            await up.commit([0], hashlib.md5(data).digest())
        finally:
            await store.close()

    issued = entra_credential.issued
    asyncio.run(main())
    assert set(_listing(f"az://{container}/")) == {"p"}
    assert entra_credential.issued >= issued + 2  # the refused one, then a new one
