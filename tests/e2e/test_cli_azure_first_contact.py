"""Azure as a user meets it first, through the CLI: how its objects are named, and what a
first contact that hangs says (stores/reach.py, stores/azure/).

* Objects are named in the URL's own terms: ``az://lake/…`` for ``az://lake/`` (not
  ``az://devstoreaccount1/lake/…``, a container-looking name the user never wrote), the
  account kept where the URL named it (``abfss://lake@ACCOUNT…``).
* An endpoint that accepts the connection and never completes the TLS handshake is said
  so (the token authority's and the storage endpoint's), not "connect timed out".

As in test_cli_unreachable.py, ``LAKESHIFT_CONNECT_SECONDS=1`` (``quick_env``): 1 s a
connect, 4 s a first contact.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.blackhole import Silent, refused_port
from tests.doubles import entra
from tests.e2e.cli import lakeshift, one_clear_line, stops

_WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="


def _local_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    return src


# -- names: as the user wrote the place ------------------------------------------------

def test_an_azure_object_is_named_as_the_url_names_its_place(
        cli_env: dict[str, str], azurite: Any, container: str, tmp_path: Path) -> None:
    """``az://CONTAINER/…`` (the account from the credentials) names its objects
    ``az://CONTAINER/…`` in a line and in the failures list; a URL that names the account
    in its host keeps the account (``az://ACCOUNT/CONTAINER/…``), as before."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    src = _local_source(tmp_path)
    wrong = dict(cli_env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        azurite.port, key=_WRONG_KEY))
    p = lakeshift("copy", str(src), f"az://{container}/raw/", env=wrong)
    assert p.returncode == 3, p.stderr
    assert one_clear_line(p).startswith(f"lakeshift: az://{container}/: Azure credentials "
                                        "rejected ("), p.stderr
    assert servers.AZURITE_ACCOUNT not in p.stderr, p.stderr
    abfss = f"abfss://{container}@{servers.AZURITE_ACCOUNT}.dfs.core.windows.net/raw/"
    p = lakeshift("copy", str(src), abfss, env=wrong)
    assert one_clear_line(p).startswith(
        f"lakeshift: az://{servers.AZURITE_ACCOUNT}/{container}/: Azure credentials "), p.stderr

    # A SAS that may list and read but not write: each object fails on its own, and the
    # failures list names it as the URL does.
    sas = generate_container_sas(servers.AZURITE_ACCOUNT, container, servers.AZURITE_KEY,
                                 permission=ContainerSasPermissions(read=True, list=True),
                                 expiry=datetime.now(UTC) + timedelta(hours=1))
    read_only = dict(cli_env, AZURE_STORAGE_CONNECTION_STRING=(
        f"BlobEndpoint=http://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT};"
        f"SharedAccessSignature={sas}"))
    p = lakeshift("copy", str(src), f"az://{container}/ro/", "--json", env=read_only)
    assert p.returncode == 1, p.stdout + p.stderr
    summary = json.loads(p.stdout)
    assert summary["destination"] == f"az://{container}/ro/"
    [failure] = summary["failures"]
    assert failure["message"].startswith(f"az://{container}/ro/a.txt: "), failure
    assert servers.AZURITE_ACCOUNT not in p.stdout + p.stderr


# -- a TLS handshake that never completes ----------------------------------------------

@pytest.mark.parametrize("side", ["azure-blob", "s3"])
def test_a_storage_endpoint_that_never_completes_tls_is_said_so(
        quick_env: dict[str, str], tmp_path: Path, side: str) -> None:
    """An ``https://`` endpoint that accepts the connection and never answers the TLS
    handshake (a proxy or firewall holding it): the line says that, not "connect timed
    out", which sends the user looking for dropped packets."""
    src = _local_source(tmp_path)
    with Silent() as silent:
        url = silent.https_url
        if side == "s3":
            endpoint, setting = url, "--s3-endpoint"
            args = ("copy", "s3://some-bucket/raw/", str(tmp_path / "dst"), "--s3-endpoint", url)
            env = quick_env
        else:
            endpoint, setting = f"{url}/acct", "AZURE_STORAGE_BLOB_ENDPOINT"
            args = ("copy", str(src), "az://box/dst/")
            env = {k: v for k, v in quick_env.items() if not k.startswith("AZURE_STORAGE_")}
            env.update(AZURE_STORAGE_ACCOUNT="acct", AZURE_STORAGE_ACCOUNT_KEY=servers.AZURITE_KEY,
                       AZURE_STORAGE_BLOB_ENDPOINT=endpoint)
        stop = stops(*args, env=env)
    service = "S3" if side == "s3" else "Azure Blob"
    said = ("connected, but the TLS handshake did not complete within 1 s — a proxy or "
            "firewall in the way?")
    assert stop.line.startswith(f"lakeshift: cannot reach the {service} endpoint {endpoint}: "
                                f"{said} (3 tries in "), stop.line
    assert stop.line.endswith(f"check {setting}, the network and any firewall"), stop.line
    assert stop.notices == [f"lakeshift: no answer from {endpoint} yet ({said}); trying "
                            "again…"]
    assert servers.AZURITE_KEY not in stop.stdout + stop.line


def test_a_token_authority_that_never_completes_tls_is_said_so(
        quick_env: dict[str, str], tmp_path: Path) -> None:
    """A service principal's authority (``AZURE_AUTHORITY_HOST``) that accepts and never
    answers the handshake: azure-core's one connect limit covers TCP and TLS, and the line
    said "connect timed out" of an endpoint that did connect."""
    with Silent() as silent:
        env = {k: v for k, v in quick_env.items() if not k.startswith("AZURE_STORAGE_")}
        env.update(AZURE_CLIENT_ID=entra.CLIENT_ID, AZURE_TENANT_ID=entra.TENANT_ID,
                   AZURE_CLIENT_SECRET=entra.CLIENT_SECRET,
                   AZURE_AUTHORITY_HOST=silent.https_url, AZURE_STORAGE_ACCOUNT="acct",
                   AZURE_STORAGE_BLOB_ENDPOINT=f"http://127.0.0.1:{refused_port()}/acct")
        stop = stops("copy", "az://box/raw/", str(tmp_path / "dst"), env=env)
    assert stop.line.startswith(
        f"lakeshift: cannot reach the Entra ID token endpoint {silent.https_url}: connected, "
        "but the TLS handshake did not complete within 1 s — a proxy or firewall in the way? "
        "(3 tries in "), stop.line
    assert stop.line.endswith("check AZURE_AUTHORITY_HOST, the network and any firewall"), \
        stop.line
    assert entra.CLIENT_SECRET not in stop.stdout + stop.line + "".join(stop.notices)
