"""A response's status line and headers, and the reading of its body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING

from multidict import CIMultiDictProxy

if TYPE_CHECKING:
    from lakeshift.stores.wire.connection import _Connection


class Response:
    """The status line and headers of a response; its body is read with ``read`` or
    ``chunks``.  Release it (``release`` or ``async with``): until then it holds its
    connection."""

    __slots__ = ("_conn", "headers", "reason", "status")

    def __init__(self, conn: _Connection, status: int, reason: str,
                 headers: CIMultiDictProxy[str]) -> None:
        self._conn: _Connection | None = conn
        self.status = status
        self.reason = reason
        self.headers = headers

    async def read(self) -> bytes:
        """The whole body (stall-watched); releases the connection."""
        conn = self._conn
        if conn is None:
            return b""
        try:
            return await conn.take_all()
        finally:
            self.release()

    async def chunks(self, min_size: int = 1) -> AsyncIterator[bytes]:
        """The body in pieces of at least ``min_size`` bytes (the last may be shorter),
        stall-watched; a piece that arrived whole is handed on without a copy.  Releases
        the connection at the end."""
        conn = self._conn
        if conn is None:
            return
        try:
            while True:
                piece = await conn.take(min_size)
                if not piece:
                    break
                yield piece
        finally:
            self.release()

    async def pieces(self, min_size: int = 1) -> AsyncIterator[list[bytes]]:
        """As ``chunks``, each chunk the list of buffers it arrived in, never joined."""
        conn = self._conn
        if conn is None:
            return
        try:
            while True:
                parts = await conn.take_pieces(min_size)
                if not parts:
                    break
                yield parts
        finally:
            self.release()

    def release(self) -> None:
        """Done with it: a fully read body returns the connection to the pool; otherwise
        the connection is closed (never reused with unread bytes)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.finish()

    def __del__(self) -> None:
        # A response dropped without release (a caller that failed before reading it)
        # would keep its connection, and its pool slot, taken for good: free it.  (From the
        # loop's thread: the garbage collector may run in any thread.)
        conn = self._conn
        if conn is not None:
            self._conn = None
            try:
                conn.loop.call_soon_threadsafe(conn.finish)
            except RuntimeError:  # the loop is closed: so is the connection
                pass

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()
