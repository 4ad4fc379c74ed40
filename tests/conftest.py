"""Session-wide real servers (moto, Azurite) on free loopback ports, stopped by PID."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers

# Nothing in a test may reach a cloud endpoint or an instance-metadata service.
for _k in [k for k in os.environ if k.startswith(("AWS_", "AZURE_", "LAKESHIFT_"))]:
    del os.environ[_k]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"


@pytest.fixture(scope="session")
def moto() -> Iterator[servers.Server]:
    srv = servers.start_moto()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def azurite() -> Iterator[servers.Server]:
    srv = servers.start_azurite()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def azurite_oauth() -> Iterator[servers.Server]:
    """Azurite over HTTPS taking Entra ID bearer tokens (servers.start_azurite)."""
    srv = servers.start_azurite(oauth=True)
    yield srv
    srv.stop()


class EntraTestCredential:
    """Stands in for an azure-identity credential (no Entra ID can run here): hands out
    tokens that Azurite's OAuth "basic" level accepts, and counts them."""

    def __init__(self) -> None:
        self.issued = 0

    async def get_token(self, *scopes: str, **kw: object) -> object:
        import time

        from azure.core.credentials import AccessToken

        assert scopes == ("https://storage.azure.com/.default",), scopes
        self.issued += 1
        return AccessToken(servers.entra_token(), int(time.time()) + 3600)

    async def close(self) -> None:
        return None


@pytest.fixture
def entra_credential() -> EntraTestCredential:
    return EntraTestCredential()


@pytest.fixture
def entra_env(azurite_oauth: servers.Server, entra_credential: EntraTestCredential,
              monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a user whose Azure credential is an Entra ID token (here with
    ``--azure-auth cli``, its credential replaced by EntraTestCredential)."""
    from lakeshift.stores.azure import auth as azure_auth

    env = {"AZURE_STORAGE_ACCOUNT": servers.AZURITE_ACCOUNT,
           "AZURE_STORAGE_BLOB_ENDPOINT":
               f"https://127.0.0.1:{azurite_oauth.port}/{servers.AZURITE_ACCOUNT}",
           "SSL_CERT_FILE": str(azurite_oauth.workdir / "ca.pem")}
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(azure_auth, "token_credential", lambda settings: entra_credential)
    return env


@pytest.fixture
def s3_env(moto: servers.Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto.port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def azure_env(azurite: servers.Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"AZURE_STORAGE_CONNECTION_STRING": servers.azurite_connection_string(azurite.port)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def s3(s3_env: dict[str, str]):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret")


@pytest.fixture
def blob_service(azure_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azure_env["AZURE_STORAGE_CONNECTION_STRING"])


@pytest.fixture
def bucket(s3) -> str:  # type: ignore[no-untyped-def]
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def container(blob_service) -> str:  # type: ignore[no-untyped-def]
    name = f"c-{uuid.uuid4().hex[:12]}"
    blob_service.create_container(name)
    return name


@pytest.fixture
def cli_env(s3_env: dict[str, str], azure_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment a user's shell would have: emulator endpoints and credentials only."""
    env = servers.clean_env()
    env.update(s3_env)
    env.update(azure_env)
    env["HOME"] = str(tmp_path / "home")
    env["TMPDIR"] = str(tmp_path)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    env["COLUMNS"] = "120"
    return env


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.Server]:
    srv = servers.start_postgres()
    yield srv
    srv.stop()


@pytest.fixture
def pg_url(postgres: servers.Server) -> str:
    """A fresh database on the session's PostgreSQL server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.extra["url"], autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.extra["url"].rsplit("/", 1)[0] + "/" + name


# The WebHDFS double's fixtures (ADLS Gen1 and Hadoop dialects): gen1, hadoop.
from tests.doubles.fixtures import gen1, hadoop  # noqa: E402, F401
