"""Original modification times survive a migration: S3 LastModified → the blob's
``lakeshift_src_mtime`` → a local file's mtime; a local file's mtime → the blob; and
``verify --check-times`` reports a time that differs (and only with the flag)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from tests.helpers import blobs

pytestmark = pytest.mark.slow


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_timestamps_round_trip_s3_to_azure_to_local(s3: Any, bucket: str, blob_service: Any,
                                                    container: str, tmp_path: Path) -> None:
    for name in ("a.txt", "sub/b.txt"):
        s3.put_object(Bucket=bucket, Key=f"t/{name}", Body=name.encode())
    times = {name: s3.head_object(Bucket=bucket, Key=f"t/{name}")["LastModified"]
             for name in ("a.txt", "sub/b.txt")}

    assert lakeshift.copy(f"s3://{bucket}/t/", f"az://{container}/t/").exit_code == 0
    got = blobs(blob_service, container, "t/")
    for name, when in times.items():
        assert got[f"t/{name}"].metadata["lakeshift_src_mtime"] == _iso(when)

    local = tmp_path / "local"
    assert lakeshift.copy(f"az://{container}/t/", str(local)).exit_code == 0
    for name, when in times.items():
        # The S3 time, not the blob's own (later) Last-Modified.
        assert os.stat(local / name).st_mtime_ns == int(when.timestamp()) * 10**9

    report = tmp_path / "r"
    v = lakeshift.verify(f"s3://{bucket}/t/", str(local), check_times=True, report=report)
    assert (v.exit_code, v.times) == (0, 0)
    v = lakeshift.verify(f"az://{container}/t/", str(local), check_times=True, report=report)
    assert (v.exit_code, v.times) == (0, 0)

    os.utime(local / "a.txt", (1_000_000_000, 1_000_000_000))  # touched after the copy
    v = lakeshift.verify(f"s3://{bucket}/t/", str(local), check_times=True, report=report)
    assert (v.exit_code, v.times, v.differences) == (1, 1, 1)
    rows = Path(v.report_csv).read_text().splitlines()
    assert any(r.startswith("a.txt,time,") and "2001-09-09T01:46:40" in r for r in rows)
    v = lakeshift.verify(f"s3://{bucket}/t/", str(local), report=report)
    assert (v.exit_code, v.times) == (0, 0)  # times are compared only when asked


def test_a_local_source_gives_its_mtime(tmp_path: Path, blob_service: Any,
                                        container: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "old.csv"
    f.write_bytes(b"1,2,3\n")
    ns = 978_350_400_123_456_000  # 2001-01-01T12:00:00.123456Z
    os.utime(f, ns=(ns, ns))

    assert lakeshift.copy(str(src), f"az://{container}/l/").exit_code == 0
    meta = blobs(blob_service, container, "l/")["l/old.csv"].metadata
    assert meta["lakeshift_src_mtime"] == "2001-01-01T12:00:00.123456Z"

    out = tmp_path / "out"
    assert lakeshift.copy(str(src), str(out)).exit_code == 0
    assert os.stat(out / "old.csv").st_mtime_ns == ns
    v = lakeshift.verify(str(src), str(out), check_times=True, report=tmp_path / "r")
    assert (v.exit_code, v.times) == (0, 0)
