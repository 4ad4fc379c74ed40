"""`verify --deep` runs on the engine's pacing: every byte it hashes, on both sides, is
counted against --max-bandwidth (counted by the bucket, not timed)."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

from lakeshift.engine.verify import Report, VerifyOptions, verify_async
from lakeshift.stores.base import StoreConfig
from lakeshift.urls import parse_url

KiB = 1024


def test_deep_verify_takes_every_hashed_byte_from_the_bandwidth_cap(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for i in range(6):
        data = os.urandom(100 * KiB + i)
        (src / f"f{i}.bin").write_bytes(data)
        (dst / f"f{i}.bin").write_bytes(data)
    opts = VerifyOptions(deep=True, concurrency=4, max_bandwidth=256 * KiB)
    pacing = opts.pacing()
    pair = (StoreConfig(parse_url(str(src))), StoreConfig(parse_url(str(dst))), None, None)
    result = asyncio.run(verify_async([pair], opts, Report(io.StringIO()), pacing))
    assert (result.verified, result.exit_code) == (6, 0)
    bucket = pacing.bandwidth
    assert bucket is not None
    # Both sides' bytes went through the cap, and it held the readers back (1.2 MB at
    # 256 KiB/s cannot pass in one burst).
    assert bucket.taken == result.bytes_read == 2 * sum(100 * KiB + i for i in range(6))
    assert bucket.waits > 0
