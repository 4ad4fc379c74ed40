"""Azure as a user meets it first, through the CLI: how its objects are named, and what a
first contact that hangs says (stores/reach.py, stores/azure/).

* Objects are named in the URL's own terms: ``az://lake/…`` for ``az://lake/`` (not
  ``az://devstoreaccount1/lake/…``, a container-looking name the user never wrote), the
  account kept where the URL named it (``abfss://lake@ACCOUNT…``), so that a name
  pasted back names the same place.
* An endpoint that accepts the connection and never completes the TLS handshake is said
  so (the token authority's and the storage endpoint's), not "connect timed out".
* The Azure CLI and a managed identity are under the same first-contact bound as a service
  principal: an ``az`` that hangs is killed (its process group, by its PID), a managed
  identity endpoint that never answers is one line naming its setting.

As in test_cli_unreachable.py, ``LAKESHIFT_CONNECT_SECONDS=1`` (``quick_env``): 1 s a
connect, 4 s a first contact.
"""

from __future__ import annotations

import json
import os
import stat
import time
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
    in its host keeps the account where the URL has it (``abfss://CONTAINER@ACCOUNT…``;
    ``az://ACCOUNT/CONTAINER/`` would read back as a container named ACCOUNT)."""
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
        f"lakeshift: abfss://{container}@{servers.AZURITE_ACCOUNT}.dfs.core.windows.net/: "
        "Azure credentials "), p.stderr

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


# -- the Azure CLI and a managed identity: the same bound ------------------------------

def _token_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with no Azure credential, no managed-identity platform variable, and the
    storage account at a refused port (never reached: the token comes first)."""
    drop = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")
    out = {k: v for k, v in env.items() if not k.startswith(drop)}
    out.update(AZURE_STORAGE_ACCOUNT="acct",
               AZURE_STORAGE_BLOB_ENDPOINT=f"http://127.0.0.1:{refused_port()}/acct")
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, killed and not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_an_azure_cli_that_hangs_is_killed_within_the_bound(
        quick_env: dict[str, str], tmp_path: Path) -> None:
    """``--azure-auth cli`` with an ``az`` that never answers: within the first-contact
    bound (4 s here), ``az`` and the process it started are killed, and one line says
    what to run to see why (exit 3), not azure-identity's "Timed out waiting for Azure CLI"
    under service-principal variables after its own 10 s, with the child left running."""
    bin_dir, pids = tmp_path / "bin", tmp_path / "az.pids"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(f'#!/bin/sh\nsleep 300 &\necho $! > "{pids}"\necho $$ >> "{pids}"\nwait\n')
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    env = _token_env(quick_env)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    started = time.monotonic()
    try:
        line = stops("copy", "az://box/raw/", str(tmp_path / "dst"), "--azure-auth", "cli",
                     env=env, code=3).only_line()
        took = time.monotonic() - started
        assert line == ("lakeshift: --azure-auth cli: `az account get-access-token` gave no "
                        "token within 4 s (stopped): run `az account get-access-token "
                        "--resource https://storage.azure.com` to see why (`az login` if it "
                        "asks), or choose another --azure-auth"), line
        assert took < 9, took  # the bound (4 s), not azure-identity's 10 s
        started_pids = [int(x) for x in pids.read_text().split()]
        assert len(started_pids) == 2
        deadline = time.monotonic() + 5
        while any(_running(p) for p in started_pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(p) for p in started_pids), started_pids
    finally:
        for pid in [int(x) for x in pids.read_text().split()] if pids.exists() else []:
            if _running(pid):
                os.kill(pid, 9)  # only what this test's az started


@pytest.mark.parametrize("platform", ["IDENTITY_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST"])
def test_a_managed_identity_endpoint_that_never_answers_is_bounded(
        quick_env: dict[str, str], tmp_path: Path, platform: str) -> None:
    """``--azure-auth managed-identity`` whose endpoint accepts and never answers (App
    Service's ``IDENTITY_ENDPOINT``; the instance metadata endpoint, here moved to loopback
    by ``AZURE_POD_IDENTITY_AUTHORITY_HOST``): a first contact like any endpoint's, one line
    naming the endpoint and its setting within the bound -- not azure-identity's 300 s read
    limit a try."""
    with Silent() as silent:
        env = _token_env(quick_env)
        if platform == "IDENTITY_ENDPOINT":
            endpoint = f"{silent.url}/msi/token"
            env.update(IDENTITY_ENDPOINT=endpoint, IDENTITY_HEADER="header-secret-value")
        else:
            endpoint = silent.url
            env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = endpoint
        stop = stops("copy", "az://box/raw/", str(tmp_path / "dst"), "--azure-auth",
                     "managed-identity", env=env)
    assert stop.line == (f"lakeshift: cannot reach the managed identity endpoint {endpoint}: "
                         "no response within 4 s (1 try in 4 s): check "
                         f"{platform}, the network and any firewall"), stop.line
    assert stop.notices == [f"lakeshift: no answer from {endpoint} yet (connected, no "
                            "response after 1.5 s); still waiting…"]
    assert "header-secret-value" not in stop.stdout + stop.line
