"""A Microsoft Entra ID token endpoint for tests: no real identity provider may be reached.

Follows the Microsoft identity platform reference for the OAuth 2.0 client credentials
grant ("Microsoft identity platform and the OAuth 2.0 client credentials flow"):
``POST https://{authority}/{tenant}/oauth2/v2.0/token`` with a form body ``client_id``,
``client_secret``, ``scope`` and ``grant_type=client_credentials``; the answer is JSON
``{"token_type": "Bearer", "expires_in", "access_token"}``, an error is JSON
``{"error": "invalid_client", "error_description": "AADSTS7000215: …"}`` with status 401.

azure-identity reaches it through its authority-host setting (``AZURE_AUTHORITY_HOST``),
which must be HTTPS: the server uses a certificate from the tests' throw-away CA
(``servers.self_signed_certificate``; trust it with SSL_CERT_FILE).  Stdlib only.
"""

from __future__ import annotations

import json
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tests import servers
from tests.helpers import serve_in_thread

CLIENT_ID = "c1c1c1c1-0000-4000-8000-000000000001"
TENANT_ID = "7e7e7e7e-0000-4000-8000-000000000001"
CLIENT_SECRET = "test-client-secret-9f8e7d6c"


@dataclass
class TokenEndpoint:
    #: The tokens to issue, in turn (the last one is issued from then on).
    tokens: list[str]
    port: int = 0
    ca: Path = Path()
    #: Each token request's form (scope, client_id…), secret removed.
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def authority(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def env(self, secret: str = CLIENT_SECRET) -> dict[str, str]:
        return {"AZURE_AUTHORITY_HOST": self.authority, "AZURE_CLIENT_ID": CLIENT_ID,
                "AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_SECRET": secret,
                "SSL_CERT_FILE": str(self.ca)}


class _Handler(BaseHTTPRequestHandler):
    endpoint: TokenEndpoint

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _json(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        e = self.endpoint
        form = {k: v[0] for k, v in parse_qs(
            self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()).items()}
        if self.path != f"/{TENANT_ID}/oauth2/v2.0/token":
            self._json(400, {"error": "invalid_request",
                             "error_description": f"AADSTS90002: Tenant not found: {self.path}"})
            return
        secret = form.pop("client_secret", "")
        e.requests.append(form)
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != CLIENT_ID \
                or secret != CLIENT_SECRET:
            self._json(401, {"error": "invalid_client", "error_description":
                             "AADSTS7000215: Invalid client secret provided."})
            return
        token = e.tokens.pop(0) if len(e.tokens) > 1 else e.tokens[0]
        self._json(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": token})

    def do_GET(self) -> None:
        self._json(404, {"error": "not_found"})


@contextmanager
def serve(tokens: list[str]) -> Iterator[TokenEndpoint]:
    workdir = Path(tempfile.mkdtemp(prefix="lakeshift-entra-"))
    cert, key = servers.self_signed_certificate(workdir)
    endpoint = TokenEndpoint(tokens, ca=workdir / "ca.pem")
    handler = type("Handler", (_Handler,), {"endpoint": endpoint})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    serve_in_thread(srv)
    endpoint.port = srv.server_address[1]
    try:
        yield endpoint
    finally:
        srv.shutdown()
        srv.server_close()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
