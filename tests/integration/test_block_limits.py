"""An object that would need more blocks than the destination allows (Azure: 50,000 per
blob) is sent in bigger blocks, each holding several slots of memory; one too big for the
memory allowed fails alone, with the fix in its message.  The limit is lowered here so a
few MiB show it."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

import lakeshift
from lakeshift.engine.transfer import slots_per_block
from lakeshift.stores.azure import store as azure
from tests.helpers import blob_bytes, put_multipart

KiB, MiB = 1024, 1024 * 1024


def test_slots_per_block() -> None:
    assert slots_per_block(10 * MiB, MiB, 0) == 1
    assert slots_per_block(10 * MiB, MiB, 50_000) == 1
    assert slots_per_block(10 * MiB, MiB, 4) == 3  # 2.5 MiB blocks at least → 3 slots
    assert slots_per_block(500 * 1024**3, 8 * MiB, 50_000) == 2  # 500 GiB: 16 MiB blocks


def test_bigger_blocks_keep_an_object_within_the_block_limit(
        s3: Any, bucket: str, blob_service: Any, container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azure, "CAPABILITIES", replace(azure.CAPABILITIES, max_blocks=4))
    data = os.urandom(6 * MiB + 5)
    put_multipart(s3, bucket, "b/big.bin", data, 5 * MiB)
    # single_put_max=0: the block path even for a multipart object of a few MiB; its 5 MiB
    # parts need more than the 16 × 256 KiB slots, so not by parts (engine/transfer.py).
    res = lakeshift.copy(f"s3://{bucket}/b/", f"az://{container}/b/", block_size=256 * KiB,
                         concurrency=16, single_put_max=0)
    assert res.exit_code == 0, res.failures
    assert blob_bytes(blob_service, container, "b/big.bin") == data
    committed, _ = blob_service.get_blob_client(container, "b/big.bin").get_block_list("all")
    assert 1 < len(committed) <= 4

    # Blocks that would need more memory than the run allows: that object fails, alone.
    s3.put_object(Bucket=bucket, Key="b/small.txt", Body=b"fine")
    res = lakeshift.copy(f"s3://{bucket}/b/", f"az://{container}/c/", block_size=256 * KiB,
                         concurrency=2, single_put_max=0)
    assert res.exit_code == 1
    assert [f.object_key for f in res.failures] == ["b/big.bin"]
    assert "raise --block-size" in res.failures[0].message
    assert blob_bytes(blob_service, container, "c/small.txt") == b"fine"
