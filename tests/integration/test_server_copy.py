"""Server-side copies (--copy-mode): the destination service reads each source object
itself through a URL minted for the request, and no byte passes through lakeshift.

Azurite does Copy Blob From URL from a blob SAS of the same instance (Blob → Blob here);
it answers Put Blob From URL with 501, which is what `auto` meets from S3 sources: one
attempt for the whole run, then every object streamed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

import lakeshift
from lakeshift.model import ObjectProps
from lakeshift.stores.azure.rest import copy_from_url_headers, put_from_url_headers
from tests import servers
from tests.e2e.cli import BIN
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes, blobs

MiB = 1024 * 1024


@pytest.fixture
def az_proxy(azurite: servers.Server, azure_env: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    p = FaultProxy(f"http://127.0.0.1:{azurite.port}")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
        f"AccountKey={servers.AZURITE_KEY};BlobEndpoint={p.url}/{servers.AZURITE_ACCOUNT};"))
    yield p
    p.stop()


def _from_url_requests(proxy: FaultProxy) -> int:
    return sum(1 for m, _, h in proxy.seen if m == "PUT" and "x-ms-copy-source" in h)


def test_blob_to_blob_server_side_moves_no_bytes_through_the_client(
        az_proxy: FaultProxy, blob_service: Any, container: str) -> None:
    src = blob_service.get_container_client(container)
    objs = {f"in/f-{i}.bin": os.urandom(700_000 + i) for i in range(6)}
    objs["in/big.bin"] = os.urandom(12 * MiB + 5)
    for k, v in objs.items():
        src.upload_blob(k, v, metadata={"origin": "test"})
    blob_service.create_container(container + "-dst")
    total = sum(len(v) for v in objs.values())

    res = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/",
                         copy_mode="server", concurrency=4)

    assert res.exit_code == 0, res.failures
    assert res.stats.copied == len(objs)
    assert dict(res.proofs) == {"server-md5": len(objs)}
    assert az_proxy.body_bytes < total // 50  # listings and answers, not the data
    assert _from_url_requests(az_proxy) == len(objs)
    got = blobs(blob_service, container + "-dst", "out/")
    for k, v in objs.items():
        name = "out/" + k[3:]
        assert blob_bytes(blob_service, container + "-dst", name) == v
        assert bytes(got[name].content_settings.content_md5) == hashlib.md5(v).digest()
        assert got[name].metadata["origin"] == "test"

    again = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/",
                           copy_mode="server")
    assert again.stats.copied == 0 and again.stats.skipped == len(objs)


def test_auto_tries_the_service_once_then_streams_everything(
        az_proxy: FaultProxy, s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    objs = {f"d/o-{i}.bin": os.urandom(3000 + i) for i in range(10)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)

    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/", copy_mode="auto",
                         concurrency=8)

    assert res.exit_code == 0, res.failures
    assert res.stats.copied == len(objs)
    assert _from_url_requests(az_proxy) == 1  # Azurite: 501 to Put Blob From URL
    assert res.server_copy_off and "cannot copy from the source" in res.server_copy_off[0]
    for k, v in objs.items():
        assert blob_bytes(blob_service, container, "out/" + k[2:]) == v


def test_server_mode_fails_each_object_the_service_cannot_copy_and_shows_no_secret(
        az_proxy: FaultProxy, s3: Any, bucket: str, container: str,
        cli_env: dict[str, str]) -> None:
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"d/o-{i}.bin", Body=os.urandom(100))
    env = {**cli_env, "AZURE_STORAGE_CONNECTION_STRING": os.environ[
        "AZURE_STORAGE_CONNECTION_STRING"]}
    proc = subprocess.run([str(BIN), "copy", f"s3://{bucket}/d/", f"az://{container}/out/",
                           "--copy-mode", "server", "--json", "--progress", "none"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["copied"] == 0 and out["failed"] == 3
    assert {f["kind"] for f in out["failures"]} == {"server-copy"}
    # Each failure names the way out (it used to be 3 bare APINotImplemented lines).
    assert all("--copy-mode auto streams" in f["message"] for f in out["failures"])
    for text in (proc.stdout, proc.stderr):
        assert "X-Amz-Signature" not in text and "X-Amz-Credential" not in text
        assert "testing-secret" not in text and "sig=" not in text


def test_bad_copy_mode_is_a_usage_error(cli_env: dict[str, str], bucket: str,
                                        container: str) -> None:
    proc = subprocess.run([str(BIN), "copy", f"s3://{bucket}/d/", f"az://{container}/out/",
                           "--copy-mode", "fast"], env=cli_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "--copy-mode 'fast': use auto, server, stream" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_from_url_requests_carry_the_source_md5_for_the_service_to_check() -> None:
    md5 = hashlib.md5(b"x").digest()
    b64 = base64.b64encode(md5).decode()
    put = put_from_url_headers("https://src/u?sig=s", ObjectProps(content_type="text/csv"),
                               md5, {"k": "v"})
    assert put["x-ms-copy-source"] == "https://src/u?sig=s"
    assert put["x-ms-source-content-md5"] == put["x-ms-blob-content-md5"] == b64
    assert put["x-ms-blob-type"] == "BlockBlob" and put["x-ms-blob-content-type"] == "text/csv"
    assert put["x-ms-meta-k"] == "v"
    # An S3 listing knows no Content-Type: the service keeps the one it reads.
    assert "x-ms-blob-content-type" not in put_from_url_headers("u", ObjectProps(), md5, {})
    copy = copy_from_url_headers("https://a/c/b?sig=s", md5, {"k": "v"}, "0x8D")
    assert copy["x-ms-requires-sync"] == "true"
    assert copy["x-ms-source-if-match"] == '"0x8D"'
    assert copy["x-ms-source-content-md5"] == b64


def test_copy_is_auto_by_default_and_a_server_side_failure_streams_the_rest(
        az_proxy: FaultProxy, blob_service: Any, container: str) -> None:
    """Not only "cannot reach the source": the first server-side failure of any kind (here
    the service refuses the request) turns server-side copies off for the rest of the run,
    and that object is streamed instead of failing."""
    src = blob_service.get_container_client(container)
    objs = {f"in/f-{i}.bin": os.urandom(50_000 + i) for i in range(5)}
    for k, v in objs.items():
        src.upload_blob(k, v)
    blob_service.create_container(container + "-dst")
    az_proxy.add("status", method="PUT", path=f"{container}-dst/out/", status=403,
                 headers={"x-ms-error-code": "AuthorizationPermissionMismatch"})

    res = lakeshift.copy(f"az://{container}/in/", f"az://{container}-dst/out/")

    assert res.exit_code == 0, res.failures
    assert res.stats.copied == len(objs)
    assert _from_url_requests(az_proxy) == 1  # tried once (the default is auto), refused
    assert res.server_copy_off and "AuthorizationPermissionMismatch" in res.server_copy_off[0]
    assert dict(res.proofs) == {"source-md5": len(objs)}
    for k, v in objs.items():
        assert blob_bytes(blob_service, container + "-dst", "out/" + k[3:]) == v


def test_jobs_stream_unless_planned_or_run_with_a_copy_mode(
        az_proxy: FaultProxy, blob_service: Any, container: str, tmp_path: Any) -> None:
    src = blob_service.get_container_client(container)
    for i in range(3):
        src.upload_blob(f"in/f-{i}.bin", os.urandom(10_000 + i))
    blob_service.create_container(container + "-dst")
    db = f"sqlite:///{tmp_path / 'c.db'}"

    lakeshift.plan(f"az://{container}/in/", f"az://{container}-dst/a/", job="plain", db=db)
    assert lakeshift.run(job="plain", db=db).exit_code == 0
    assert _from_url_requests(az_proxy) == 0  # a job streams unless told

    lakeshift.plan(f"az://{container}/in/", f"az://{container}-dst/b/", job="server", db=db,
                   copy_mode="server")
    res = lakeshift.run(job="server", db=db)
    assert res.exit_code == 0 and res.stats.copied == 3
    assert _from_url_requests(az_proxy) == 3  # kept with the job's options

    lakeshift.plan(f"az://{container}/in/", f"az://{container}-dst/c/", job="told", db=db)
    res = lakeshift.run(job="told", db=db, copy_mode="server")
    assert res.exit_code == 0 and res.stats.copied == 3
    assert _from_url_requests(az_proxy) == 6  # this run's --copy-mode wins


def test_plan_and_run_take_copy_mode_and_refuse_a_bad_one(
        cli_env: dict[str, str], bucket: str, container: str, tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    for argv in (["plan", f"s3://{bucket}/d/", f"az://{container}/o/", "--job", "j"],
                 ["run", "--job", "j"]):
        proc = subprocess.run([str(BIN), *argv, "--db", db, "--copy-mode", "fast"],
                              env=cli_env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "--copy-mode 'fast': use auto, server, stream" in proc.stderr
        assert "Traceback" not in proc.stderr
        if argv[0] == "plan":  # a valid plan, for the run to be refused on its own flag
            ok = subprocess.run([str(BIN), *argv, "--db", db, "--copy-mode", "server"],
                                env=cli_env, capture_output=True, text=True, timeout=60)
            assert ok.returncode == 0, ok.stderr
