"""Serving the monitor: bind the socket first (so a port in use is one clear line, and
port 0 picks a free one), then uvicorn on it until SIGINT/SIGTERM."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import uvicorn

from lakeshift import UsageError
from lakeshift.web.app import create_app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise UsageError(f"cannot listen on {host}: {e.strerror} — pass --host with an "
                         "address of this machine (default 127.0.0.1)") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        hint = "choose another --port" if e.errno == 98 else "check --host and --port"
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror} — {hint}") from None
    return sock


def serve(db: str, host: str, port: int, token: str | None,
          on_ready: Callable[[str], None]) -> None:
    """Serve the monitor over control DB ``db`` until stopped; ``on_ready`` gets its URL."""
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    if ipaddress.ip_address(bound_host.split("%", 1)[0]).is_unspecified:
        # 0.0.0.0 / :: is where it listens, not an address to open: this machine's name.
        shown = socket.gethostname()
    # Bound to loopback, only loopback names are answered (DNS rebinding cannot reach it).
    # Host headers bracket an IPv6 address ("[::1]:8765"), as allowed_hosts must.
    hosts = (["127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host]
             if is_loopback(host) else None)
    config = uvicorn.Config(create_app(db, token, hosts), log_level="warning", access_log=False,
                            server_header=False, lifespan="off")
    server = uvicorn.Server(config)
    on_ready(f"http://{shown}:{bound_port}/")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
