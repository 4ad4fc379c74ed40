"""An endpoint that answers, but is not the service the user thinks, is said so in one line
with exit 2 naming the endpoint and the setting (stores/reach.py ``not_the_service``): a web
server's 404, Azure Storage's 400 to an S3 request, ``https://`` to a plain HTTP server.  A
PostgreSQL control DB that refuses the connection names ``--db`` / ``LAKESHIFT_DB``.
All traffic goes to loopback servers the tests start.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.blackhole import TlsOnly, refused_port
from tests.e2e.cli import stops
from tests.wireserver import WireServer


class _NotFound(BaseHTTPRequestHandler):
    """What ``python3 -m http.server`` answers for a path it has not: 404 and an HTML page."""

    def do_GET(self) -> None:
        self.send_error(404, "File not found")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_web_server_as_the_s3_endpoint(quick_env: dict[str, str], web_server: str,
                                         tmp_path: Path) -> None:
    url = f"http://{web_server}"
    stop = stops("copy", "s3://src/raw/", str(tmp_path / "dst"), "--s3-endpoint", url,
                 "--json", env=quick_env)
    assert stop.only_line() == (f"lakeshift: the S3 endpoint {url} answered 404 without an S3 "
                                "error (not an S3 service?): check --s3-endpoint")
    error = json.loads(stop.stdout)["error"]
    assert (error["kind"], error["exit_code"]) == ("wrong-endpoint", 2)
    assert not (tmp_path / "dst").exists()


def test_a_web_server_as_the_s3_destination_creates_no_bucket(
        quick_env: dict[str, str], web_server: str, tmp_path: Path) -> None:
    # An S3 destination whose listing fails is otherwise created: not on a web server.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    url = f"http://{web_server}"
    line = stops("copy", str(tmp_path / "src"), "s3://dst/x/",
                 env=dict(quick_env, AWS_ENDPOINT_URL=url)).only_line()
    assert line == (f"lakeshift: the S3 endpoint {url} answered 404 without an S3 error (not an "
                    "S3 service?): check AWS_ENDPOINT_URL")


def test_azurite_as_the_s3_endpoint(quick_env: dict[str, str], azurite: servers.Server,
                                    tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{azurite.port}"
    line = stops("copy", "s3://src/raw/", str(tmp_path / "dst"), "--s3-endpoint", url,
                 env=quick_env).only_line()
    assert line.startswith(f"lakeshift: the S3 endpoint {url} answered 4"), line
    assert line.endswith(" without an S3 error (it looks like Azure Storage): check "
                         "--s3-endpoint"), line
    assert "log" not in line


def test_a_missing_bucket_keeps_its_meaning(quick_env: dict[str, str], tmp_path: Path) -> None:
    line = stops("copy", "s3://no-such-bucket-here/raw/", str(tmp_path / "dst"),
                 env=quick_env).only_line()
    assert "bucket does not exist" in line


#: What an S3-compatible service (MinIO here) sends on every answer, a bodiless error too.
_MINIO = [("Server", "MinIO"), ("X-Amz-Request-Id", "1812E5B1C2D9A3F0"),
          ("Accept-Ranges", "bytes")]


@pytest.mark.parametrize(("status", "code", "said"), [
    (403, 3, "lakeshift: s3://src/: access denied (403): the credentials lack permission for "
             "the source (to list it, and for a destination to write)"),
    (404, 2, "lakeshift: s3://src/: bucket does not exist: create it or fix the URL"),
], ids=["403", "404"])
def test_an_s3_service_s_bare_status_keeps_its_meaning(quick_env: dict[str, str],
                                                      tmp_path: Path, status: int, code: int,
                                                      said: str) -> None:
    """An S3-compatible service that answers the listing with a bare status (no XML body)
    is an S3 service all the same (its headers say so): credentials or permission for a
    403, the missing bucket for a 404 -- not "not an S3 service"."""
    with WireServer() as server:
        server.add("answer", method="GET", status=status, headers=_MINIO)
        line = stops("copy", "s3://src/raw/", str(tmp_path / "dst"), "--s3-endpoint",
                     server.url, env=quick_env, code=code).only_line()
    assert line == said


def test_https_to_a_plain_http_server_says_to_use_http(quick_env: dict[str, str],
                                                       web_server: str, tmp_path: Path) -> None:
    line = stops("copy", "s3://src/raw/", str(tmp_path / "dst"), "--s3-endpoint",
                 f"https://{web_server}", env=quick_env).only_line()
    # One line, at once: a handshake that failed is not tried again.
    assert line == (f"lakeshift: cannot reach the S3 endpoint https://{web_server}: TLS: "
                    "WRONG_VERSION_NUMBER (the server speaks plain HTTP, not TLS): use "
                    f"http://{web_server} or check --s3-endpoint")


def test_a_refused_postgres_control_db_names_the_setting(quick_env: dict[str, str]) -> None:
    db = f"postgresql+psycopg://lake:s3cretpw@127.0.0.1:{refused_port()}/lake"
    stop = stops("status", "--job", "j", "--db", db, env=quick_env)
    line = stop.only_line()
    assert line.startswith("lakeshift: cannot use control DB postgresql+psycopg://lake:***@"
                           "127.0.0.1:"), line
    assert line.endswith(": check that its server is up and --db / LAKESHIFT_DB"), line
    assert "s3cretpw" not in stop.stdout + line


def _azure_at(env: dict[str, str], host_port: str) -> dict[str, str]:
    return dict(env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        int(host_port.rsplit(":", 1)[1])))


def test_a_web_server_as_the_azure_endpoint(quick_env: dict[str, str], web_server: str,
                                            tmp_path: Path) -> None:
    endpoint = f"http://{web_server}/{servers.AZURITE_ACCOUNT}"
    want = (f"lakeshift: the Azure Blob endpoint {endpoint} answered 404 without an Azure "
            "Blob error (not an Azure Blob service?): check the BlobEndpoint of "
            "AZURE_STORAGE_CONNECTION_STRING")
    # As the source (it said "container does not exist") and as the destination (it said
    # "cannot tell whether the account has a hierarchical namespace").
    env = _azure_at(quick_env, web_server)
    assert stops("copy", "az://box/raw/", str(tmp_path / "dst"), env=env).only_line() == want
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    stop = stops("copy", str(tmp_path / "src"), "az://box/dst/", env=env)
    assert stop.only_line() == want
    assert servers.AZURITE_KEY not in stop.stdout + stop.line


def test_an_s3_service_as_the_azure_endpoint(quick_env: dict[str, str], moto: servers.Server,
                                             tmp_path: Path) -> None:
    line = stops("copy", "az://box/raw/", str(tmp_path / "dst"),
                 env=_azure_at(quick_env, f"127.0.0.1:{moto.port}")).only_line()
    assert line.startswith(f"lakeshift: the Azure Blob endpoint http://127.0.0.1:{moto.port}/"
                           f"{servers.AZURITE_ACCOUNT} answered 4"), line
    assert line.endswith("without an Azure Blob error (it looks like an S3 service): check "
                         "the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING"), line


def test_an_s3_refusal_at_the_start_is_exit_2_not_an_internal_error(
        quick_env: dict[str, str], tmp_path: Path) -> None:
    # An S3 service's own 400 with a code no other case knows.
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidBucketName</Code>'
            b"<Message>The specified bucket is not valid.</Message></Error>")
    with WireServer() as server:
        server.add("answer", method="GET", status=400, body=body,
                   headers=[("Content-Type", "application/xml")])
        line = stops("copy", "s3://src/raw/", str(tmp_path / "dst"), "--s3-endpoint",
                     server.url, env=quick_env).only_line()
    assert line == ("lakeshift: s3://src/: 400 InvalidBucketName The specified bucket is not "
                    "valid.: check the URL and --s3-endpoint")


def test_http_to_a_tls_only_server_asks_about_https(quick_env: dict[str, str],
                                                    tmp_path: Path) -> None:
    with TlsOnly(tmp_path) as server:  # a plain HTTP request ends in a closed connection
        host = f"127.0.0.1:{server.port}"
        line = stops("copy", "s3://src/raw/", str(tmp_path / "dst"), "--s3-endpoint",
                     f"http://{host}", env=quick_env).only_line()
    assert line == (
        f"lakeshift: cannot reach the S3 endpoint http://{host}: the connection was closed "
        f"before any response (a TLS-only server?): use https://{host} or check --s3-endpoint")
