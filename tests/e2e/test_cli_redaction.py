"""Secrets planted in error paths never reach what lakeshift keeps: the control DB, the
verify report, the JSON summary, the output."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.e2e.cli import lakeshift
from tests.faultproxy import FaultProxy

SIG = "PlantedSasSignature0123456789abcdef"


@pytest.fixture
def proxy(azurite: servers.Server) -> Iterator[FaultProxy]:
    p = FaultProxy(f"http://127.0.0.1:{azurite.port}")
    yield p
    p.stop()


def _sas(container: str) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        servers.AZURITE_ACCOUNT, container, servers.AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, write=True, list=True, create=True,
                                           add=True, delete=True),
        expiry=datetime.now(UTC) + timedelta(hours=1))


def test_secrets_in_error_paths_are_kept_nowhere(
        cli_env: dict[str, str], proxy: FaultProxy, s3: Any, bucket: str, container: str,
        tmp_path: Path) -> None:
    sas = _sas(container)
    real_sig = next(p.split("=", 1)[1] for p in sas.split("&") if p.startswith("sig="))
    env = {**cli_env, "AZURE_STORAGE_CONNECTION_STRING": (
        f"BlobEndpoint={proxy.url}/{servers.AZURITE_ACCOUNT};SharedAccessSignature={sas}")}
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"d/ok-{i}.bin", Body=b"x" * (100 + i))
    s3.put_object(Bucket=bucket, Key="d/bad.bin", Body=b"y" * 50)
    s3.put_object(Bucket=bucket, Key="d/moved.bin", Body=b"z" * 50)
    # The service (here the proxy) echoes the request's URL, SAS included, and a connection
    # string with the account key in its error text, as a misbehaving gateway might.
    leaky = (f"<Error><Code>InternalError</Code><Message>PUT {proxy.url}/"
             f"{servers.AZURITE_ACCOUNT}/{container}/o/bad.bin?{sas}&sig={SIG} failed; "
             f"AccountKey={servers.AZURITE_KEY}</Message></Error>").encode()
    proxy.add("status", method="PUT", path="bad", uses=10_000, status=500,
              headers={"x-ms-error-code": "InternalError"}, body=leaky)
    # A redirect to a URL with a SAS in it (aiohttp names the URL in its errors).
    proxy.add("status", method="PUT", path="moved", uses=10_000, status=307,
              headers={"Location": f"/{servers.AZURITE_ACCOUNT}/{container}/o/moved.bin?"
                                   f"{sas}&sig={SIG}"})
    secrets = (SIG, real_sig, servers.AZURITE_KEY)

    copied = lakeshift("copy", f"s3://{bucket}/d/", f"az://{container}/o/", "--json",
                       "--copy-mode", "stream", env=env)
    assert copied.returncode == 1, copied.stderr
    assert "bad.bin" in copied.stdout and "moved.bin" in copied.stdout

    db = tmp_path / "jobs.db"
    planned = lakeshift("plan", f"s3://{bucket}/d/", f"az://{container}/p/", "--job", "j",
                        "--db", f"sqlite:///{db}", env=env)
    assert planned.returncode == 0, planned.stderr
    ran = lakeshift("run", "--job", "j", "--db", f"sqlite:///{db}", env=env)
    assert ran.returncode == 1, ran.stderr
    failures = lakeshift("failures", "--job", "j", "--db", f"sqlite:///{db}", env=env)

    report = tmp_path / "rep"
    verified = lakeshift("verify", f"s3://{bucket}/d/", f"az://{container}/o/", "--report",
                         str(report), "--json", env=env)
    assert verified.returncode == 1, verified.stderr

    kept = {"copy output": copied.stdout + copied.stderr,
            "run output": ran.stdout + ran.stderr + failures.stdout + failures.stderr,
            "verify output": verified.stdout + verified.stderr}
    for path in [db, *tmp_path.glob("jobs.db*"), *tmp_path.glob("rep*")]:
        kept[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert str(report) + ".csv" in kept and str(db) in kept
    assert "bad.bin" in kept[str(db)]
    for where, text in kept.items():
        for secret in secrets:
            assert secret not in text, f"{secret[:8]}… in {where}"
