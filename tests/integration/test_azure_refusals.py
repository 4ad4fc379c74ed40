"""Azure answers that refuse one request after the credentials have worked: that object's
failure, recorded with the service's code and request ID, not the end of the run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import lakeshift
from tests import servers
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes


@pytest.fixture
def az_proxy(azurite: servers.Server, azure_env: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    p = FaultProxy(f"http://127.0.0.1:{azurite.port}")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
        f"AccountKey={servers.AZURITE_KEY};"
        f"BlobEndpoint={p.url}/{servers.AZURITE_ACCOUNT};"))
    yield p
    p.stop()


def test_a_403_on_one_object_after_success_fails_only_that_object(
        az_proxy: FaultProxy, s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    objs = {f"d/ok-{i}.bin": os.urandom(1000 + i) for i in range(4)}
    objs["d/deny.bin"] = os.urandom(500)
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    az_proxy.add("status", method="PUT", path="deny", uses=100, status=403,
                 headers={"x-ms-error-code": "AuthorizationFailure",
                          "x-ms-request-id": "0b6a1d2e-request-id"})

    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/o/", copy_mode="stream")

    assert res.exit_code == 1
    assert [(f.object_key, f.error_kind) for f in res.failures] == [("d/deny.bin", "forbidden")]
    assert "AuthorizationFailure" in res.failures[0].message
    assert "0b6a1d2e-request-id" in res.failures[0].message
    for k, v in objs.items():
        if "deny" not in k:
            assert blob_bytes(blob_service, container, "o/" + k[2:]) == v


def test_a_403_on_the_first_requests_is_still_a_credential_error(
        az_proxy: FaultProxy, s3: Any, bucket: str, container: str) -> None:
    s3.put_object(Bucket=bucket, Key="d/a.bin", Body=b"abc")
    az_proxy.add("status", uses=1000, status=403,
                 headers={"x-ms-error-code": "AuthenticationFailed"})
    with pytest.raises(lakeshift.AuthError):
        lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/o/", copy_mode="stream")


def test_a_failed_namespace_check_is_said_not_assumed_flat(
        az_proxy: FaultProxy, s3: Any, bucket: str, container: str) -> None:
    s3.put_object(Bucket=bucket, Key="d/a.bin", Body=b"abc")
    az_proxy.add("status", method="GET", path="restype=account", uses=1000, status=400,
                 headers={"x-ms-error-code": "InvalidHeaderValue"})
    with pytest.raises(lakeshift.UsageError, match=r"hierarchical namespace.*InvalidHeaderValue"):
        lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/o/", copy_mode="stream")


def test_a_namespace_check_not_permitted_goes_on_flat(
        az_proxy: FaultProxy, s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    s3.put_object(Bucket=bucket, Key="d/a.bin", Body=b"abc")
    az_proxy.add("status", method="GET", path="restype=account", uses=1000, status=403,
                 headers={"x-ms-error-code": "AuthorizationPermissionMismatch"})
    assert lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/o/",
                          copy_mode="stream").exit_code == 0
    assert blob_bytes(blob_service, container, "o/a.bin") == b"abc"
