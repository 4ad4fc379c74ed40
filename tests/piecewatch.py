"""Watches the wire for bytes copied in Python between a GET and its Put Block: records
every buffer the connections put in a body buffer (by id, kept alive so ids stay unique)
and every Put Block body sent, so a test can check that each body is a tuple of those very
buffers (the block never joined)."""

from __future__ import annotations

from typing import Any

import pytest


class BlockBodies:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from lakeshift.stores.wire import connection

        self.received: dict[int, bytes] = {}
        self.bodies: list[Any] = []
        real_append, real_send = connection._Connection._append, connection._Connection.send

        def append(conn: Any, piece: bytes) -> None:
            self.received[id(piece)] = piece
            real_append(conn, piece)

        async def send(conn: Any, method: str, head: bytes, body: Any, length: int,
                       stall: float) -> None:
            if b"comp=block&" in head:
                self.bodies.append(body)
            await real_send(conn, method, head, body, length, stall)

        monkeypatch.setattr(connection._Connection, "_append", append)
        monkeypatch.setattr(connection._Connection, "send", send)

    def assert_never_joined(self, blocks: int) -> None:
        """``blocks`` Put Blocks were sent, each as a tuple of received buffers (or of
        memoryview slices of them, where a block ends inside one: cut, not copied)."""
        assert len(self.bodies) == blocks
        for body in self.bodies:
            assert isinstance(body, tuple) and body, type(body)
            for piece in body:
                buf = piece.obj if isinstance(piece, memoryview) else piece
                assert self.received.get(id(buf)) is buf
