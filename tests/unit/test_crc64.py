"""The CRC64 a block carries over plain HTTP (``x-ms-content-crc64``): CRC-64/NVME, 8 bytes
little-endian, from awscrt (``checksums.crc64nvme``).  Checked against a reference written
from the algorithm's parameters, against the Azure SDK's own implementation
(azure-storage-extensions, which azure-storage-blob uses for the same header) and against a
recorded answer of the real service."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from azure.storage.extensions.checksums import crc64 as sdk_crc64

from lakeshift.engine.checksums import crc64nvme
from lakeshift.errors import IntegrityError, UsageError
from lakeshift.stores.azure.rest import status_error

MiB = 1024 * 1024


def _table() -> list[int]:
    poly = 0x9A6C9329AC4BC9B5  # 0xAD93D23594C93659 reflected
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()
_MASK = (1 << 64) - 1


def reference(data: bytes, previous: int = 0) -> int:
    """CRC-64/NVME (width 64, poly 0xAD93D23594C93659, init and xorout all ones,
    reflected), table-driven and slow: for short inputs only."""
    crc = previous ^ _MASK
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK


def test_the_check_value_of_crc64_nvme() -> None:
    assert reference(b"123456789") == 0xAE8B14860A799888
    assert crc64nvme(b"123456789") == (0xAE8B14860A799888).to_bytes(8, "little")


@pytest.mark.parametrize("size", [0, 1, 2, 7, 8, 9, 63, 64, 65, 1000, 4099])
def test_crc64nvme_equals_the_reference(size: int) -> None:
    data = os.urandom(size)
    assert crc64nvme(data) == reference(data).to_bytes(8, "little")


def test_the_reference_chains_as_the_checksum_of_the_whole() -> None:
    a, b = os.urandom(1001), os.urandom(333)
    assert reference(b, reference(a)) == reference(a + b)
    assert crc64nvme(a + b) == reference(b, reference(a)).to_bytes(8, "little")


@pytest.mark.parametrize("size", [0, 1, 3, 4095, MiB + 1, 4 * MiB + 3])
def test_crc64nvme_equals_the_azure_sdks(size: int) -> None:
    data = os.urandom(size)
    assert crc64nvme(data) == sdk_crc64.compute(data, 0).to_bytes(8, "little")
    # A block is sometimes a view into a larger buffer.
    view = memoryview(b"x" + data + b"y")[1:-1]
    assert crc64nvme(view) == crc64nvme(data)


def test_crc64nvme_equals_the_azure_sdks_chained() -> None:
    pieces = [os.urandom(n) for n in (5, 4 * MiB + 3, 0, 77)]
    crc = 0
    for piece in pieces:
        crc = sdk_crc64.compute(piece, crc)
    assert crc64nvme(b"".join(pieces)) == crc.to_bytes(8, "little")
    # A block given in the pieces it was read in is chained over them, never joined.
    assert crc64nvme(*pieces) == crc.to_bytes(8, "little")
    assert crc64nvme(*[memoryview(p) for p in pieces]) == crc.to_bytes(8, "little")
    assert crc64nvme() == sdk_crc64.compute(b"", 0).to_bytes(8, "little")


def test_the_header_value_is_what_the_service_computes() -> None:
    # A recording of Azure's 400 Crc64Mismatch to a Put Blob of 1,024 "b"s (the
    # azure-storage-blob JavaScript SDK's test recordings, API version 2019-02-02):
    # <ServerCalculatedCrc>pK+ypU+jreM=</ServerCalculatedCrc>.  Base64 of the 8 bytes
    # little-endian, as lakeshift sends it.
    assert base64.b64encode(crc64nvme(b"b" * 1024)).decode() == "pK+ypU+jreM="


def test_a_crc64_mismatch_is_an_integrity_error() -> None:
    err = status_error(400, "Crc64Mismatch", "az://a/c/k", None,
                       "The CRC64 value specified in the request did not match with the "
                       "CRC64 value calculated by the server.")
    assert type(err) is IntegrityError
    assert str(err) == "az://a/c/k: the service saw a different CRC64 (Crc64Mismatch)"


def test_azurite_in_strict_mode_refusing_the_header_is_one_line_naming_the_fix() -> None:
    # Azurite's answer (500) to a Put Block with x-ms-content-crc64 unless it runs --loose.
    body = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Error>\n  <Code>'
            "FeatureNotSupported</Code>\n  <Message>x-ms-content-crc64 header or parameter "
            "is not supported in Azurite strict mode. Switch to loose model by Azurite "
            'command line parameter "--loose" or Visual Studio Code configuration "Loose". '
            "Please vote your wanted features to https://github.com/azure/azurite/issues\n"
            "RequestId:0ca48fc5-d037-48e1-a011")[:300]
    err = status_error(500, "FeatureNotSupported", "az://a/c/k", None, body)
    assert type(err) is UsageError and err.exit_code == 2
    assert "\n" not in str(err) and '"--loose"' in str(err), str(err)


def test_the_stores_whose_blocks_carry_a_crc64(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Any) -> None:
    from lakeshift import parse_url
    from lakeshift.stores.base import StoreConfig
    from lakeshift.stores.registry import open_store
    from tests import servers

    # Azure checks a Put Block's x-ms-content-crc64 over either transport; the engine asks
    # for a transit check (block_md5) over plain HTTP only.
    for scheme, transit in (("http", True), ("https", False)):
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                           servers.azurite_connection_string(10000, scheme=scheme))
        caps = open_store(StoreConfig(parse_url("az://cont/"))).capabilities
        assert (caps.block_md5, caps.block_crc64) == (transit, True)
    # S3 parts and local files carry none.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    for url in ("s3://bkt/", str(tmp_path)):
        assert not open_store(StoreConfig(parse_url(url))).capabilities.block_crc64
