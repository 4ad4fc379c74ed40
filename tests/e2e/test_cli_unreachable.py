"""An endpoint that cannot be reached is said so soon, in one line naming it and the fix,
with exit 2 — not after minutes of silence (stores/reach.py).

The commands run with ``LAKESHIFT_CONNECT_SECONDS=1`` (for tests): each connect is given up
after 1 s and a first contact after 4 s in all (10 s and 40 s by default), so a blackhole
costs a few seconds here.  The bound asserted on each run is loose: it is there to catch the
minutes an unbounded wait would take, not to time anything.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.blackhole import Blackhole, Silent, refused_port
from tests.e2e.cli import lakeshift
from tests.faultproxy import FaultProxy
from tests.helpers import blobs

#: What a run may take at most: well under what an unbounded wait would (300 s a try), well
#: over what a bounded one needs (4 s, plus the start of a Python process on a busy machine).
BOUND_S = 25


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return dict(cli_env, LAKESHIFT_CONNECT_SECONDS="1")


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def run(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    p = lakeshift(*args, env=env, timeout=120)
    return p, time.monotonic() - started


def unreachable(p: subprocess.CompletedProcess[str], took: float) -> tuple[str, list[str]]:
    """The error line and the notices before it, once the run is checked to be one that
    gave up on an endpoint: exit 2, no traceback, within the bound."""
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert took < BOUND_S, (took, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert all(ln.startswith("lakeshift: no answer from ") for ln in lines[:-1]), lines
    return lines[-1], lines[:-1]


def test_copy_from_a_blackholed_s3_endpoint(env: dict[str, str], blackhole: Blackhole,
                                            tmp_path: Path) -> None:
    p, took = run("copy", "s3://some-bucket/raw/", str(tmp_path / "dst"),
                  "--s3-endpoint", blackhole.url, env=env)
    line, notices = unreachable(p, took)
    assert line.startswith(f"lakeshift: cannot reach the S3 endpoint {blackhole.url}: "
                           "connect timed out after 1 s (3 tries in "), line
    assert line.endswith("check --s3-endpoint, the network and any firewall"), line
    assert notices == [f"lakeshift: no answer from {blackhole.url} yet (connect timed out "
                       "after 1 s); trying again…"]
    assert not (tmp_path / "dst").exists()


def test_copy_to_a_blackholed_azure_endpoint_never_prints_the_key(
        env: dict[str, str], blackhole: Blackhole, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    endpoint = f"{blackhole.url}/{servers.AZURITE_ACCOUNT}"
    key_env = dict(env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        blackhole.port))
    p, took = run("copy", str(tmp_path / "src"), "az://box/dst/", "--json", env=key_env)
    line, notices = unreachable(p, took)
    assert line.startswith(f"lakeshift: cannot reach the Azure Blob endpoint {endpoint}: "
                           "connect timed out after 1 s (3 tries in "), line
    assert line.endswith("check the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING, the "
                         "network and any firewall"), line
    assert len(notices) == 1
    # --json: stdout holds the JSON error only; the notice went to stderr.
    error = json.loads(p.stdout)["error"]
    assert (error["kind"], error["exit_code"]) == ("unreachable", 2)
    assert servers.AZURITE_KEY not in p.stdout + p.stderr


def test_plan_and_check_against_a_blackholed_endpoint(env: dict[str, str],
                                                      blackhole: Blackhole,
                                                      tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'j.db'}"
    p, took = run("plan", "s3://some-bucket/raw/", str(tmp_path / "dst"), "--job", "j",
                  "--db", db, "--s3-endpoint", blackhole.url, env=env)
    line, _ = unreachable(p, took)
    assert f"cannot reach the S3 endpoint {blackhole.url}: connect timed out" in line, line
    assert not (tmp_path / "j.db").exists()  # no job, no DB made only to hold it

    (tmp_path / "dst").mkdir()  # the destination's lines are all ok
    p, took = run("check", "s3://some-bucket/raw/", str(tmp_path / "dst"), "--json",
                  "--s3-endpoint", blackhole.url, env=env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert took < BOUND_S, took
    failed = [ln for ln in json.loads(p.stdout) if not ln["ok"]]
    assert [(ln["side"], ln["step"]) for ln in failed] == [("source", "reach and list")]
    assert failed[0]["detail"].startswith(f"cannot reach the S3 endpoint {blackhole.url}: "
                                          "connect timed out after 1 s (3 tries in "), failed


def test_a_refused_connection_is_said_at_once(env: dict[str, str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    p, took = run("copy", "s3://some-bucket/raw/", str(tmp_path / "dst"), "--s3-endpoint",
                  url, env=env)
    line, notices = unreachable(p, took)
    assert line.startswith(f"lakeshift: cannot reach the S3 endpoint {url}: connection "
                           "refused (3 tries in "), line
    assert notices == [f"lakeshift: no answer from {url} yet (connection refused); trying "
                       "again…"]


def test_an_endpoint_that_connects_but_never_answers(env: dict[str, str],
                                                     tmp_path: Path) -> None:
    silent = Silent()
    try:
        p, took = run("copy", "s3://some-bucket/raw/", str(tmp_path / "dst"),
                      "--s3-endpoint", silent.url, env=env)
    finally:
        silent.close()
    line, notices = unreachable(p, took)
    assert line.startswith(f"lakeshift: cannot reach the S3 endpoint {silent.url}: no "
                           "response within 4 s (1 try in 4 s)"), line
    assert notices == [f"lakeshift: no answer from {silent.url} yet (connected, no response "
                       "after 1.5 s); still waiting…"]


def test_a_slow_but_alive_endpoint_is_not_cut(env: dict[str, str], moto: Any, s3: Any,
                                              bucket: str, container: str,
                                              blob_service: Any) -> None:
    s3.put_object(Bucket=bucket, Key="raw/a.txt", Body=b"hello")
    proxy = FaultProxy(f"http://127.0.0.1:{moto.port}")
    try:
        # Its first answer comes after 2.5 s: past the connect limit (1 s) and past the
        # point where the notice says it is still waited for.
        proxy.add("delay", delay=2.5, request="listing")
        p = lakeshift("copy", f"s3://{bucket}/raw/", f"az://{container}/dst/",
                      "--s3-endpoint", proxy.url, "--progress", "none", env=env)
    finally:
        proxy.stop()
    assert p.returncode == 0, p.stdout + p.stderr
    assert "still waiting" in p.stderr
    assert set(blobs(blob_service, container)) == {"dst/a.txt"}


def test_scan_with_a_blackholed_destination_stops_at_once(
        env: dict[str, str], blackhole: Blackhole, tmp_path: Path) -> None:
    """scan asks the destination's namespace first; an endpoint that never answers is the
    command's one line, not a calibration that tries again and scans on without it."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    key_env = dict(env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        blackhole.port))
    p, took = run("scan", str(tmp_path / "src"), "az://box/dst/", env=key_env)
    line, _ = unreachable(p, took)
    assert line.startswith("lakeshift: cannot reach the Azure Blob endpoint "), line
    assert servers.AZURITE_KEY not in p.stdout + p.stderr


def test_an_untrusted_certificate_is_said_at_once_with_its_fix(
        env: dict[str, str], tmp_path: Path) -> None:
    """An endpoint whose certificate this machine does not trust has answered: it is not
    "no answer … yet; trying again…" three times with "check the network and any
    firewall", but one line at once naming what to trust (SSL_CERT_FILE)."""
    import socket
    import ssl
    import threading

    cert, key = servers.self_signed_certificate(tmp_path)  # its CA is trusted nowhere
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()  # the client refused the certificate

    threading.Thread(target=serve, daemon=True).start()
    url = f"https://127.0.0.1:{port}"
    try:
        for service, setting, args in (
                ("S3", "--s3-endpoint", ("s3://some-bucket/raw/", "--s3-endpoint", url)),
                ("WebHDFS", "the host in the URL", (f"swebhdfs://127.0.0.1:{port}/raw",))):
            p, took = run("copy", *args[:1], str(tmp_path / "dst"), *args[1:], env=env)
            assert p.returncode == 2, p.stdout + p.stderr
            assert "Traceback" not in p.stderr and took < BOUND_S
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1, lines  # no notice: nothing is tried again
            assert lines[0].startswith(
                f"lakeshift: the {service} endpoint {url} presented a certificate this "
                "machine does not trust (unable to get local issuer certificate): "), lines
            assert lines[0].endswith(
                f"check {setting}, or trust its CA: add it to the system's trust store or set "
                "SSL_CERT_FILE to a PEM file that holds it"), lines
    finally:
        listener.close()
