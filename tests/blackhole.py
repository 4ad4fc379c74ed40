"""Loopback endpoints that never answer, for the tests of an unreachable endpoint.

* ``Blackhole``: a port whose SYNs go unanswered, as behind a firewall that drops packets
  or at a wrong address: a listening socket with a backlog of 0 whose accept queue is
  filled by connections nobody accepts.  Linux then drops every further SYN, so a
  ``connect()`` times out.
* ``Silent``: a port that accepts connections and reads what is sent, but never answers.
* ``refused_port()``: a loopback port nothing listens on (a connection is refused).
"""

from __future__ import annotations

import select
import socket
import threading


class Blackhole:
    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(16):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(s)
            _, ready, _ = select.select([], [s], [], 0.5)
            if not ready:  # this SYN went unanswered: the queue is full, the hole is open
                return
        raise RuntimeError("the loopback accept queue never filled up: no blackhole")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        for s in self._fillers:
            s.close()
        self._listener.close()


class Silent:
    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self._conns.append(conn)  # kept open, never written to

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        for c in self._conns:
            c.close()
        self._listener.close()


def refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port
