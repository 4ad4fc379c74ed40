"""Server-side copies of objects larger than one Put Blob From URL takes (5000 MiB; lowered
here): Put Block From URL per block, Put Block List, then the committed blob read back and
hashed (``server-read-md5``).  Azurite answers Put Block From URL with 501, so it runs
through the double of tests/doubles/fromurl.py in front of Azurite."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from azure.storage.blob import ContentSettings

import lakeshift
from lakeshift.stores.azure import store as azure_store
from lakeshift.stores.base import StoreOptions
from tests import servers
from tests.doubles.fromurl import FromURLDouble
from tests.helpers import blob_bytes, blobs

MiB = 1024 * 1024


@pytest.fixture
def az_double(azurite: servers.Server, azure_env: Any,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[FromURLDouble]:
    d = FromURLDouble(f"http://127.0.0.1:{azurite.port}")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
        f"AccountKey={servers.AZURITE_KEY};BlobEndpoint={d.url}/{servers.AZURITE_ACCOUNT};"))
    # One From-URL put takes at most 4 MiB here (5000 MiB on Azure).
    monkeypatch.setattr(azure_store, "CAPABILITIES",
                        replace(azure_store.CAPABILITIES, from_url_max=4 * MiB))
    yield d
    d.stop()


def _data_puts(proxy: FromURLDouble) -> int:
    """PUTs that carried object data through the client (not From-URL ones, nor the
    commit, nor the properties and metadata set once the copy is proven)."""
    return sum(1 for m, p, h in proxy.seen
               if m == "PUT" and "x-ms-copy-source" not in h
               and not any(c in p for c in ("comp=blocklist", "comp=properties",
                                            "comp=metadata", "restype=container")))


def test_a_blob_above_the_from_url_limit_is_staged_block_by_block_and_read_back(
        az_double: FromURLDouble, blob_service: Any, container: str) -> None:
    src = blob_service.get_container_client(container)
    objs = {"in/big.bin": os.urandom(10 * MiB + 7), "in/small.bin": os.urandom(3 * MiB)}
    for k, v in objs.items():
        src.upload_blob(k, v, metadata={"origin": "test"}, content_settings=ContentSettings(
            content_type="application/x-parquet", content_language="de"))
    blob_service.create_container(container + "-dst")

    res = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/",
                         copy_mode="server", block_size="2MiB")

    assert res.exit_code == 0, res.failures
    assert dict(res.proofs) == {"server-read-md5": 1, "server-md5": 1}
    assert az_double.from_url_blocks == 6  # 10 MiB + 7 bytes in 2 MiB blocks
    assert _data_puts(az_double) == 0  # no byte of either object sent by the client
    got = blobs(blob_service, container + "-dst", "out/")
    for k, v in objs.items():
        name = "out/" + k[3:]
        assert blob_bytes(blob_service, container + "-dst", name) == v
        assert bytes(got[name].content_settings.content_md5) == hashlib.md5(v).digest()
        assert got[name].metadata["origin"] == "test"
        assert got[name].content_settings.content_type == "application/x-parquet"
        assert got[name].content_settings.content_language == "de"

    again = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/",
                           copy_mode="server", block_size="2MiB")
    assert again.stats.copied == 0 and again.stats.skipped == len(objs)


def test_a_block_staged_wrong_is_caught_by_the_read_back_and_nothing_stays(
        az_double: FromURLDouble, blob_service: Any, container: str) -> None:
    blob_service.get_container_client(container).upload_blob("in/big.bin",
                                                             os.urandom(6 * MiB))
    blob_service.create_container(container + "-dst")
    az_double.corrupt_next = True

    res = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/",
                         copy_mode="server", block_size="2MiB")

    # The IntegrityError is retried: the second copy is staged right and proven.
    assert res.exit_code == 0, res.failures
    assert dict(res.proofs) == {"server-read-md5": 1}
    assert az_double.from_url_blocks == 6
    assert blob_bytes(blob_service, container + "-dst", "out/big.bin") == \
        blob_bytes(blob_service, container, "in/big.bin")


def test_auto_streams_the_object_whose_server_side_copy_was_not_proven(
        az_double: FromURLDouble, blob_service: Any, container: str) -> None:
    data = os.urandom(6 * MiB)
    blob_service.get_container_client(container).upload_blob("in/big.bin", data)
    blob_service.create_container(container + "-dst")
    az_double.corrupt_next = True

    res = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/",
                         copy_mode="auto", block_size="2MiB")

    assert res.exit_code == 0, res.failures
    assert res.server_copy_off and "read back" in res.server_copy_off[0]
    assert dict(res.proofs) == {"source-md5": 1}
    assert blob_bytes(blob_service, container + "-dst", "out/big.bin") == data


def test_a_token_source_is_copied_server_side_through_a_user_delegation_sas(
        entra_env: dict[str, str], azurite_oauth: servers.Server,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """An Entra ID token cannot sign a SAS: the source asks for a user delegation key once
    (Get User Delegation Key, which Azurite's OAuth mode answers) and signs each block's
    URL with it; Azurite checks those SAS when the copies read the source."""
    d = FromURLDouble(f"https://127.0.0.1:{azurite_oauth.port}",
                      ca=azurite_oauth.workdir / "ca.pem")
    try:
        monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", f"{d.url}/{servers.AZURITE_ACCOUNT}")
        monkeypatch.setattr(azure_store, "CAPABILITIES",
                            replace(azure_store.CAPABILITIES, from_url_max=4 * MiB))
        objs = {"small.bin": os.urandom(300_000), "big.bin": os.urandom(6 * MiB + 3)}
        (tmp_path / "in").mkdir()
        for k, v in objs.items():
            (tmp_path / "in" / k).write_bytes(v)
        c = f"udk-{uuid.uuid4().hex[:8]}"
        opts = StoreOptions(azure_auth="cli")
        seeded = lakeshift.copy(str(tmp_path / "in"), f"az://{c}/in/", store_options=opts)
        assert seeded.exit_code == 0, seeded.failures

        res = lakeshift.copy(f"az://{c}/in/", f"az://{c}/out/", copy_mode="server",
                             block_size="2MiB", store_options=opts)

        assert res.exit_code == 0, res.failures
        assert dict(res.proofs) == {"server-md5": 1, "server-read-md5": 1}
        assert d.from_url_blocks == 4
        assert sum(1 for m, p, _ in d.seen if "comp=userdelegationkey" in p) == 1
        back = lakeshift.copy(f"az://{c}/out/", str(tmp_path / "back"), store_options=opts)
        assert back.exit_code == 0
        for k, v in objs.items():
            assert (tmp_path / "back" / k).read_bytes() == v
    finally:
        d.stop()


def test_an_object_committed_but_not_yet_proven_does_not_look_copied(
        az_double: FromURLDouble, blob_service: Any, container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that stops between Put Block List and the read-back's verdict (a crash, a
    kill) leaves a blob with neither the MD5 nor the record of the source's version: the
    next run copies it again instead of skipping it as done."""
    data = os.urandom(6 * MiB)
    blob_service.get_container_client(container).upload_blob("in/big.bin", data)
    blob_service.create_container(container + "-dst")

    async def crash(self: Any, md5: bytes) -> None:
        raise lakeshift.LakeshiftError("stopped before the proof was stored")

    with monkeypatch.context() as m:
        m.setattr(azure_store._AzureBlocks, "prove", crash)
        res = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/",
                             copy_mode="server", block_size="2MiB")
    assert res.exit_code != 0
    left = blobs(blob_service, container + "-dst", "out/")["out/big.bin"]
    assert left.content_settings.content_md5 is None
    assert "lakeshift_src_etag" not in left.metadata

    again = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/",
                           copy_mode="server", block_size="2MiB")
    assert again.exit_code == 0, again.failures
    assert again.stats.copied == 1 and dict(again.proofs) == {"server-read-md5": 1}
    done = blobs(blob_service, container + "-dst", "out/")["out/big.bin"]
    assert bytes(done.content_settings.content_md5) == hashlib.md5(data).digest()
    assert done.metadata.get("lakeshift_src_etag")
    assert blob_bytes(blob_service, container + "-dst", "out/big.bin") == data
