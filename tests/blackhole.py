"""Loopback endpoints that never answer, or answer only a TLS handshake, for the tests of a
first contact (stores/reach.py).

* ``Blackhole``: a port whose SYNs go unanswered, as behind a firewall that drops packets
  or at a wrong address: a listening socket with a backlog of 0 whose accept queue is
  filled by connections nobody accepts.  Linux then drops every further SYN, so a
  ``connect()`` times out.
* ``Silent``: a port that accepts connections and reads what is sent, but never answers.
* ``TlsOnly``: a port that speaks TLS only, with a certificate from a throw-away CA this
  machine does not trust, and closes each connection after the handshake (or after a
  handshake that failed: the client refused the certificate, or sent plain HTTP).
* ``refused_port()``: a loopback port nothing listens on (a connection is refused).

Each is a context manager (``close`` on exit).
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from pathlib import Path
from typing import Self

from tests import servers


class _Port:
    """A listening loopback socket, its URLs, and a thread serving ``_serve(conn)`` for each
    connection when ``accept`` (until ``close``)."""

    def __init__(self, backlog: int, accept: bool) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.port: int = self._listener.getsockname()[1]
        self._stop = False
        self._conns: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        if accept:
            self._listener.settimeout(0.2)
            self._thread = threading.Thread(target=self._accept, daemon=True)
            self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        self._conns.append(conn)  # kept open, never written to

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(5)
        for c in self._conns:
            c.close()
        self._listener.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Blackhole(_Port):
    def __init__(self) -> None:
        super().__init__(backlog=0, accept=False)
        for _ in range(16):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self._conns.append(s)
            _, ready, _ = select.select([], [s], [], 0.5)
            if not ready:  # this SYN went unanswered: the queue is full, the hole is open
                return
        self.close()
        raise RuntimeError("the loopback accept queue never filled up: no blackhole")


class Silent(_Port):
    def __init__(self) -> None:
        super().__init__(backlog=16, accept=True)


class TlsOnly(_Port):
    """``workdir``: where the throw-away CA's certificate and key are written."""

    def __init__(self, workdir: Path) -> None:
        cert, key = servers.self_signed_certificate(workdir)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert, key)
        super().__init__(backlog=16, accept=True)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            self._context.wrap_socket(conn, server_side=True).close()
        except (OSError, ssl.SSLError):
            conn.close()


def refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port
