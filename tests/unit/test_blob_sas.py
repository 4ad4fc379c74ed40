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
