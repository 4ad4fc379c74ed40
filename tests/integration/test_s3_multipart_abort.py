"""An upload to an S3 destination that ends short of its commit aborts its multipart upload
(AbortMultipartUpload): nothing is left open to be billed, nothing partial is visible."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from tests import servers
from tests.e2e.cli import BIN
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
PART = r"[?&]partNumber=2(&|$)"


@pytest.fixture
def s3_proxy(moto: servers.Server, s3_env: Any, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[FaultProxy]:
    p = FaultProxy(f"http://127.0.0.1:{moto.port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
    yield p
    p.stop()


def _open_uploads(s3: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_part_that_fails_for_good_aborts_the_upload(
        s3_proxy: FaultProxy, s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(16 * MiB))
    s3_proxy.add("status", method="PUT", path=PART, uses=10_000, status=500)
    res = lakeshift.copy(str(src), f"s3://{bucket}/out/", block_size=5 * MiB,
                         single_put_max=0, concurrency=4)
    assert res.exit_code == 1 and [f.object_key for f in res.failures] == ["big.bin"]
    assert s3_proxy.injected >= 1
    assert _open_uploads(s3, bucket) == []
    assert _keys(s3, bucket) == []


def test_an_object_that_fails_its_integrity_check_aborts_every_upload(
        s3_proxy: FaultProxy, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="in/big.bin", Body=os.urandom(12 * MiB))  # ETag = MD5
    # Every read of the source is damaged: each attempt's upload fails its MD5 check.
    s3_proxy.add("flip", method="GET", path=rf"/{bucket}/in/big\.bin", uses=10_000)
    res = lakeshift.copy(f"s3://{bucket}/in/", f"s3://{bucket}/out/", block_size=5 * MiB,
                         single_put_max=0, concurrency=4)
    assert res.exit_code == 1 and [f.error_kind for f in res.failures] == ["integrity"]
    assert _open_uploads(s3, bucket) == []
    assert _keys(s3, bucket) == ["in/big.bin"]


def test_an_interrupted_run_aborts_its_upload(
        s3_proxy: FaultProxy, s3: Any, bucket: str, tmp_path: Path,
        cli_env: dict[str, str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(16 * MiB))
    rule = s3_proxy.add("stall_request", method="PUT", path=PART, uses=1, delay=60)
    env = {**cli_env, "AWS_ENDPOINT_URL": s3_proxy.url}
    proc = subprocess.Popen([str(BIN), "copy", str(src), f"s3://{bucket}/out/",
                             "--block-size", "5MiB", "--single-put-max", "0",
                             "--progress", "none"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while rule.hits == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rule.hits == 1, "the part upload never reached the proxy"
    assert _open_uploads(s3, bucket) == ["out/big.bin"]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert _open_uploads(s3, bucket) == []
    assert _keys(s3, bucket) == []
