"""Buffer slots: the run's memory budget for object data.

One slot is one block (≤ block size) of data in memory.  ``acquire(n)`` takes n slots at
once, first come first served, so a reader can reserve a whole span of blocks before it
opens a ranged GET; since the spans of one object reserve in order and every holder can
finish without waiting for a later one, the pool cannot deadlock.
"""

from __future__ import annotations

import asyncio
from collections import deque


class SlotPool:
    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def try_take(self) -> bool:
        """One slot taken at once where nobody waits and one is free (True), as
        ``acquire(1)`` would take it; else False (then ``acquire``): no coroutine for the
        slot of every small object."""
        if not self._waiters and self.free >= 1 and self.total >= 1:
            self.free -= 1
            return True
        return False

    async def acquire(self, n: int = 1) -> int:
        """Take ``n`` slots (at most the pool's size); return how many were taken."""
        n = max(1, min(n, self.total))
        if not self._waiters and self.free >= n:
            self.free -= n
            return n
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        self._waiters.append(entry)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(n)  # granted just as we were cancelled: give it back
            else:
                try:
                    self._waiters.remove(entry)
                except ValueError:
                    pass
                self._wake()
            raise
        return n

    def release(self, n: int = 1) -> None:
        self.free += n
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            n, fut = self._waiters[0]
            if fut.done():
                self._waiters.popleft()
                continue
            if n > self.free:
                return
            self._waiters.popleft()
            self.free -= n
            fut.set_result(None)
