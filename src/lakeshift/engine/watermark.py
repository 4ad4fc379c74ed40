"""The low watermark of a listing being copied: the greatest key such that every key at or
before it is done.  Persisted as a partition's cursor; a rerun lists after it.

Keys enter in listing order and finish in any order.  A failed key freezes the watermark
just before it (the rerun must see that key again).  Memory is the window between the
oldest unfinished key and the newest listed one; ``wait_for_room`` lets the lister pause
when that window is full.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class Watermark:
    def __init__(self, start: str | None = None, window: int = 100_000,
                 on_pass: Callable[[str], None] | None = None) -> None:
        """``on_pass`` is told each key the cursor moves past, in listing order."""
        self.cursor = start
        self.on_pass = on_pass
        self.window = window
        self.frozen = False
        self._next = 0
        self._base = 0  # sequence number of _items[0]
        self._items: deque[list[object]] = deque()  # [key, state]; state None=in flight
        self._room = asyncio.Event()
        self._room.set()

    def add(self, key: str) -> int:
        """Register the next listed key; returns its ticket."""
        self._items.append([key, None])
        self._next += 1
        if len(self._items) >= self.window:
            self._room.clear()
        return self._next - 1

    def done(self, ticket: int, ok: bool = True) -> None:
        self._items[ticket - self._base][1] = ok
        while self._items and self._items[0][1] is not None:
            key, ok_head = self._items.popleft()
            self._base += 1
            if not ok_head:
                self.frozen = True
            elif not self.frozen:
                self.cursor = str(key)
                if self.on_pass is not None:
                    self.on_pass(self.cursor)
        if len(self._items) < self.window:
            self._room.set()

    async def wait_for_room(self) -> None:
        await self._room.wait()
