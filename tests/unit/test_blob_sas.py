"""Service SAS for one blob (stores/azure/sas.py) against azure-storage-blob's
generate_blob_sas: the same inputs give the same token, signature included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from lakeshift.stores.azure.sas import blob_sas
from tests.servers import AZURITE_KEY


@pytest.mark.parametrize("blob", ["a.bin", "folder/with space/ünï.csv", "x+y=z&w"])
def test_blob_sas_equals_the_sdks(blob: str) -> None:
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    start = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    expiry = start + timedelta(minutes=30)
    theirs = generate_blob_sas("acct", "cont", blob, account_key=AZURITE_KEY,
                               permission=BlobSasPermissions(read=True), start=start,
                               expiry=expiry)
    version = parse_qs(theirs)["sv"][0]
    ours = blob_sas("acct", AZURITE_KEY, "cont", blob, "r", start, expiry, version)
    assert parse_qs(ours) == parse_qs(theirs)


def test_another_blob_gets_another_signature() -> None:
    t = datetime(2026, 3, 4, tzinfo=UTC)
    one = parse_qs(blob_sas("acct", AZURITE_KEY, "c", "a", "r", t, t))["sig"]
    two = parse_qs(blob_sas("acct", AZURITE_KEY, "c", "b", "r", t, t))["sig"]
    assert one != two


@pytest.mark.parametrize("blob", ["a.bin", "folder/with space/ünï.csv"])
def test_user_delegation_sas_equals_the_sdks(blob: str) -> None:
    """The SDK signs the newest layout (sv 2025-07-05+: two delegated-user lines after the
    correlation ID, two signed-request lines after the encryption scope, all empty here);
    ours is the 2020-12-06 layout of API_VERSION: the same string without those lines."""
    import base64
    import hashlib
    import hmac

    from azure.storage.blob import BlobSasPermissions, UserDelegationKey, generate_blob_sas

    from lakeshift.stores.azure.sas import (
        DelegationKey,
        user_delegation_sas,
        user_delegation_string_to_sign,
    )

    start = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    expiry = start + timedelta(minutes=30)
    udk = UserDelegationKey()
    udk.signed_oid, udk.signed_tid = "0b0b0b0b-0000-4000-8000-000000000001", "tenant-1"
    udk.signed_start, udk.signed_expiry = "2026-03-04T05:00:00Z", "2026-03-04T06:00:00Z"
    udk.signed_service, udk.signed_version, udk.value = "b", "2023-11-03", AZURITE_KEY
    signed: list[str] = []
    theirs = generate_blob_sas("acct", "cont", blob, user_delegation_key=udk,
                               permission=BlobSasPermissions(read=True), start=start,
                               expiry=expiry, sts_hook=signed.append)
    lines = signed[0].split("\n")
    assert lines[13:15] == ["", ""] and lines[21:23] == ["", ""]
    version = parse_qs(theirs)["sv"][0]
    key = DelegationKey(udk.signed_oid, udk.signed_tid, udk.signed_start, udk.signed_expiry,
                        "b", "2023-11-03", AZURITE_KEY)
    ours_signed = user_delegation_string_to_sign("acct", key, "cont", blob, "r",
                                                 parse_qs(theirs)["st"][0],
                                                 parse_qs(theirs)["se"][0], version)
    assert ours_signed == "\n".join(lines[:13] + lines[15:21] + lines[23:])
    ours = parse_qs(user_delegation_sas("acct", key, "cont", blob, "r", start, expiry,
                                        version))
    want = base64.b64encode(hmac.new(base64.b64decode(AZURITE_KEY), ours_signed.encode(),
                                     hashlib.sha256).digest()).decode()
    assert ours.pop("sig") == [want]
    assert ours == {k: v for k, v in parse_qs(theirs).items() if k != "sig"}


def test_a_token_store_asks_for_a_delegation_key_once_and_again_before_it_expires(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from lakeshift import StoreOptions, parse_url
    from lakeshift.stores.azure.rest import DelegationKey
    from lakeshift.stores.azure.store import AzureBlobStore
    from lakeshift.stores.base import StoreConfig

    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_KEY",
                 "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    store = AzureBlobStore(StoreConfig(parse_url("abfss://lake@acct.dfs.core.windows.net/"),
                                       StoreOptions(azure_auth="cli")))
    asked: list[tuple[datetime, datetime]] = []

    class Blobs:
        def blob_url(self, key: str) -> str:
            return f"https://acct.blob.core.windows.net/lake/{key}"

        async def user_delegation_key(self, start: datetime, expiry: datetime,
                                      what: str) -> DelegationKey:
            asked.append((start, expiry))
            return DelegationKey("oid", "tid", "s", "e", "b", "2023-11-03", AZURITE_KEY)

    store.__dict__["_blobs"] = Blobs()

    async def main() -> list[str]:
        urls = await asyncio.gather(*(store.read_url(f"k{i}", 900) for i in range(5)))
        # Close to its expiry (less than a URL's lifetime left): asked for again.
        store._udk_expiry = datetime.now(UTC) + timedelta(minutes=10)
        urls.append(await store.read_url("k9", 900))
        return list(urls)

    urls = asyncio.run(main())
    assert len(asked) == 2
    start, expiry = asked[0]
    assert start < datetime.now(UTC)
    assert timedelta(minutes=55) < expiry - datetime.now(UTC) <= timedelta(hours=1)
    q = parse_qs(urls[0].partition("?")[2])
    assert (q["skoid"], q["sktid"], q["sp"], q["sr"]) == (["oid"], ["tid"], ["r"], ["b"])
    assert urls[0].startswith("https://acct.blob.core.windows.net/lake/k0?")
