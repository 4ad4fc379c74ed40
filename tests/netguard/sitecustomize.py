"""The tests' network guard: in a process that imports it, a DNS lookup (or an address
lookup of a literal IP) of anything but loopback fails loudly — a ``socket.gaierror`` naming
the host, and a line on stderr — and so does a connection to an address that is not
loopback (``ConnectionRefusedError``), so no test reaches a cloud endpoint or an
instance-metadata service (IMDS, 169.254.169.254), even by mistake.  Binding to an address
(``getaddrinfo`` with ``AI_PASSIVE`` of a literal IP) is allowed: it reaches nothing.

Wiring: ``tests/conftest.py`` installs it in the test process and puts this folder first on
``PYTHONPATH``, which Python reads at start-up: every Python child a test starts — the CLI
(``tests/e2e/cli.py``), moto, helper scripts, through ``servers.clean_env()`` or the
test process's own environment — imports this ``sitecustomize`` and is guarded too.

It covers what resolves through Python's ``socket`` module: the standard library, boto3,
aiohttp (its default resolver is the threaded ``getaddrinfo``), azure-core and
azure-identity.  Code in Rust (obstore) resolves on its own; lakeshift gives it only
loopback endpoints in tests.  Set ``LAKESHIFT_NETGUARD=off`` to run a child without it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                             "ip6-loopback"})
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname
_real_gethostbyname_ex = socket.gethostbyname_ex


def allowed(host: Any) -> bool:
    """None (a passive or loopback socket), loopback names and loopback or wildcard IPs."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip().strip("[]").rstrip(".").lower()
    if name in ("", *_LOOPBACK_NAMES) or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def _refuse(host: Any) -> socket.gaierror:
    message = (f"netguard: refused a DNS lookup of {host!r}: tests reach loopback servers "
               "only (tests/netguard/sitecustomize.py)")
    try:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return socket.gaierror(socket.EAI_NONAME, message)


def _literal_ip(host: Any) -> bool:
    try:
        ipaddress.ip_address(str(host).strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _getaddrinfo(host: Any, port: Any = None, family: int = 0, type: int = 0,
                 proto: int = 0, flags: int = 0) -> Any:
    # A literal address to bind to (AI_PASSIVE) is no lookup and reaches nothing: allowed
    # (connecting to it is what _connect refuses).
    if not allowed(host) and not (flags & socket.AI_PASSIVE and _literal_ip(host)):
        raise _refuse(host)
    return _real_getaddrinfo(host, port, family, type, proto, flags)


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _target_allowed(sock: socket.socket, address: Any) -> bool:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return True  # Unix sockets and the like
    return isinstance(address, tuple) and allowed(address[0])


def _connect(self: socket.socket, address: Any) -> None:
    if not _target_allowed(self, address):
        raise _refuse_connect(address)
    _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    if not _target_allowed(self, address):
        raise _refuse_connect(address)
    return _real_connect_ex(self, address)


def _refuse_connect(address: Any) -> OSError:
    err = _refuse(address[0] if isinstance(address, tuple) else address)
    return ConnectionRefusedError(err.args[1].replace("a DNS lookup", "a connection"))


def _gethostbyname(host: str) -> str:
    if not allowed(host):
        raise _refuse(host)
    return _real_gethostbyname(host)


def _gethostbyname_ex(host: str) -> Any:
    if not allowed(host):
        raise _refuse(host)
    return _real_gethostbyname_ex(host)


def install() -> None:
    """Guard this process (idempotent)."""
    socket.getaddrinfo = _getaddrinfo
    socket.gethostbyname = _gethostbyname
    socket.gethostbyname_ex = _gethostbyname_ex
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]


def child_pythonpath(current: str | None) -> str:
    """``PYTHONPATH`` with this folder first (once), for the children of a test."""
    here = os.path.dirname(os.path.abspath(__file__))
    parts = [p for p in (current or "").split(os.pathsep) if p and p != here]
    return os.pathsep.join([here, *parts])


if os.environ.get("LAKESHIFT_NETGUARD", "").lower() != "off":
    install()
