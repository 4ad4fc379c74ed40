"""An endpoint that cannot be reached is said so soon, in one line naming it and the fix,
with exit 2 — not after minutes of silence (stores/reach.py).

The commands run with ``LAKESHIFT_CONNECT_SECONDS=1`` (for tests): each connect is given up
after 1 s and a first contact after 4 s in all (10 s and 40 s by default), so a blackhole
costs a few seconds here.  The bound asserted on each run is loose: it is there to catch the
minutes an unbounded wait would take, not to time anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.blackhole import Blackhole, Silent, TlsOnly, refused_port
from tests.doubles import entra
from tests.e2e.cli import lakeshift, stops
from tests.faultproxy import FaultProxy
from tests.helpers import blobs


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    with Blackhole() as hole:
        yield hole


def test_copy_from_a_blackholed_s3_endpoint(quick_env: dict[str, str], blackhole: Blackhole,
                                            tmp_path: Path) -> None:
    stop = stops("copy", "s3://some-bucket/raw/", str(tmp_path / "dst"),
                 "--s3-endpoint", blackhole.url, env=quick_env)
    assert stop.line.startswith(f"lakeshift: cannot reach the S3 endpoint {blackhole.url}: "
                                "connect timed out after 1 s (3 tries in "), stop.line
    assert stop.line.endswith("check --s3-endpoint, the network and any firewall"), stop.line
    assert stop.notices == [f"lakeshift: no answer from {blackhole.url} yet (connect timed out "
                            "after 1 s); trying again…"]
    assert not (tmp_path / "dst").exists()


def test_copy_to_a_blackholed_azure_endpoint_never_prints_the_key(
        quick_env: dict[str, str], blackhole: Blackhole, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    endpoint = f"{blackhole.url}/{servers.AZURITE_ACCOUNT}"
    key_env = dict(quick_env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        blackhole.port))
    stop = stops("copy", str(tmp_path / "src"), "az://box/dst/", "--json", env=key_env)
    assert stop.line.startswith(f"lakeshift: cannot reach the Azure Blob endpoint {endpoint}: "
                                "connect timed out after 1 s (3 tries in "), stop.line
    assert stop.line.endswith("check the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING, the "
                              "network and any firewall"), stop.line
    assert len(stop.notices) == 1
    # --json: stdout holds the JSON error only; the notice went to stderr.
    error = json.loads(stop.stdout)["error"]
    assert (error["kind"], error["exit_code"]) == ("unreachable", 2)
    assert servers.AZURITE_KEY not in stop.stdout + stop.line


def test_plan_and_check_against_a_blackholed_endpoint(quick_env: dict[str, str],
                                                      blackhole: Blackhole,
                                                      tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'j.db'}"
    stop = stops("plan", "s3://some-bucket/raw/", str(tmp_path / "dst"), "--job", "j",
                 "--db", db, "--s3-endpoint", blackhole.url, env=quick_env)
    assert f"cannot reach the S3 endpoint {blackhole.url}: connect timed out" in stop.line
    assert not (tmp_path / "j.db").exists()  # no job, no DB made only to hold it

    (tmp_path / "dst").mkdir()  # the destination's lines are all ok
    stop = stops("check", "s3://some-bucket/raw/", str(tmp_path / "dst"), "--json",
                 "--s3-endpoint", blackhole.url, env=quick_env)
    failed = [ln for ln in json.loads(stop.stdout) if not ln["ok"]]
    assert [(ln["side"], ln["step"]) for ln in failed] == [("source", "reach and list")]
    assert failed[0]["detail"].startswith(f"cannot reach the S3 endpoint {blackhole.url}: "
                                          "connect timed out after 1 s (3 tries in "), failed


def test_a_refused_connection_is_said_at_once(quick_env: dict[str, str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    stop = stops("copy", "s3://some-bucket/raw/", str(tmp_path / "dst"), "--s3-endpoint", url,
                 env=quick_env)
    assert stop.line.startswith(f"lakeshift: cannot reach the S3 endpoint {url}: connection "
                                "refused (3 tries in "), stop.line
    assert stop.notices == [f"lakeshift: no answer from {url} yet (connection refused); trying "
                            "again…"]


def test_an_endpoint_that_connects_but_never_answers(quick_env: dict[str, str],
                                                     tmp_path: Path) -> None:
    with Silent() as silent:
        stop = stops("copy", "s3://some-bucket/raw/", str(tmp_path / "dst"),
                     "--s3-endpoint", silent.url, env=quick_env)
    assert stop.line.startswith(f"lakeshift: cannot reach the S3 endpoint {silent.url}: no "
                                "response within 4 s (1 try in 4 s)"), stop.line
    assert stop.notices == [f"lakeshift: no answer from {silent.url} yet (connected, no "
                            "response after 1.5 s); still waiting…"]


def test_a_slow_but_alive_endpoint_is_not_cut(quick_env: dict[str, str], moto: Any, s3: Any,
                                              bucket: str, container: str,
                                              blob_service: Any) -> None:
    s3.put_object(Bucket=bucket, Key="raw/a.txt", Body=b"hello")
    proxy = FaultProxy(f"http://127.0.0.1:{moto.port}")
    try:
        # Its first answer comes after 2.5 s: past the connect limit (1 s) and past the
        # point where the notice says it is still waited for.
        proxy.add("delay", delay=2.5, request="listing")
        p = lakeshift("copy", f"s3://{bucket}/raw/", f"az://{container}/dst/",
                      "--s3-endpoint", proxy.url, "--progress", "none", env=quick_env)
    finally:
        proxy.stop()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "still waiting" in p.stderr
    assert set(blobs(blob_service, container)) == {"dst/a.txt"}


def test_scan_with_a_blackholed_destination_stops_at_once(
        quick_env: dict[str, str], blackhole: Blackhole, tmp_path: Path) -> None:
    """scan asks the destination's namespace first; an endpoint that never answers is the
    command's one line, not a calibration that tries again and scans on without it."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    key_env = dict(quick_env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        blackhole.port))
    stop = stops("scan", str(tmp_path / "src"), "az://box/dst/", env=key_env)
    assert stop.line.startswith("lakeshift: cannot reach the Azure Blob endpoint "), stop.line
    assert servers.AZURITE_KEY not in stop.stdout + stop.line


def test_an_untrusted_certificate_is_said_at_once_with_its_fix(
        quick_env: dict[str, str], tmp_path: Path) -> None:
    """An endpoint whose certificate this machine does not trust has answered: it is not
    "no answer … yet; trying again…" three times with "check the network and any
    firewall", but one line at once naming what to trust (SSL_CERT_FILE)."""
    with TlsOnly(tmp_path) as server:  # its CA is trusted nowhere
        url = server.https_url
        for service, setting, args in (
                ("S3", "--s3-endpoint", ("s3://some-bucket/raw/", "--s3-endpoint", url)),
                ("WebHDFS", "the host in the URL", (f"swebhdfs://127.0.0.1:{server.port}/raw",))):
            line = stops("copy", *args[:1], str(tmp_path / "dst"), *args[1:],
                         env=quick_env).only_line()  # no notice: nothing is tried again
            assert line.startswith(
                f"lakeshift: the {service} endpoint {url} presented a certificate this "
                "machine does not trust (unable to get local issuer certificate): "), line
            assert line.endswith(
                f"check {setting}, or trust its CA: add it to the system's trust store or set "
                "SSL_CERT_FILE to a PEM file that holds it"), line


# -- the Entra ID token endpoint: a service principal's first contact ------------------

def _service_principal(env: dict[str, str], authority: str, store: str) -> dict[str, str]:
    """``env`` with a service principal (the token double's identity) whose tokens come
    from ``authority``, and no other Azure credential; Azure Storage and ADLS Gen1 at
    ``store`` (never reached: the token comes first)."""
    out = {k: v for k, v in env.items() if not k.startswith("AZURE_STORAGE_")}
    out.update(AZURE_CLIENT_ID=entra.CLIENT_ID, AZURE_TENANT_ID=entra.TENANT_ID,
               AZURE_CLIENT_SECRET=entra.CLIENT_SECRET, AZURE_AUTHORITY_HOST=authority,
               AZURE_STORAGE_ACCOUNT="acct", AZURE_STORAGE_BLOB_ENDPOINT=f"{store}/acct",
               LAKESHIFT_WEBHDFS_ENDPOINT=store)
    out.pop("LAKESHIFT_ADL_AUTH", None)
    return out


@pytest.mark.parametrize("source", ["az://box/raw/", "adl://acct.azuredatalakestore.net/raw/"],
                         ids=["azure-blob", "adls-gen1"])
def test_a_blackholed_token_authority_is_named_with_its_setting(
        quick_env: dict[str, str], blackhole: Blackhole, tmp_path: Path, source: str) -> None:
    """A service principal whose authority (``AZURE_AUTHORITY_HOST``) drops packets: the
    first token request is a first contact like any endpoint's -- its tries bounded, one
    notice, one line naming the authority and its setting, never the secret -- not
    azure-identity's own limits (300 s a connect, four times) under the storage
    endpoint's name."""
    env = _service_principal(quick_env, blackhole.https_url, f"http://127.0.0.1:{refused_port()}")
    stop = stops("copy", source, str(tmp_path / "dst"), env=env)
    assert stop.line.startswith(
        f"lakeshift: cannot reach the Entra ID token endpoint {blackhole.https_url}: connect "
        "timed out after 1 s (3 tries in "), stop.line
    assert stop.line.endswith("check AZURE_AUTHORITY_HOST, the network and any firewall"), \
        stop.line
    assert stop.notices == [f"lakeshift: no answer from {blackhole.https_url} yet (connect "
                            "timed out after 1 s); trying again…"]
    assert entra.CLIENT_SECRET not in stop.stdout + stop.line + "".join(stop.notices)
    assert not (tmp_path / "dst").exists()


def test_a_token_authority_with_an_untrusted_certificate(quick_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    with TlsOnly(tmp_path) as server:
        env = _service_principal(quick_env, server.https_url,
                                 f"http://127.0.0.1:{refused_port()}")
        line = stops("copy", "az://box/raw/", str(tmp_path / "dst"), env=env).only_line()
    assert line.startswith(f"lakeshift: the Entra ID token endpoint {server.https_url} "
                           "presented a certificate this machine does not trust "), line
    assert "check AZURE_AUTHORITY_HOST, or trust its CA" in line, line
