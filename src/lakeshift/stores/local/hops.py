"""Small blocking disk calls run in worker threads, several per thread hop.

``asyncio.to_thread`` costs, per call, a context copy, a work item through the executor's
queue, two chained futures and one wake-up of the event loop through its self-pipe; for a
64-byte file that is most of the client's CPU (measured: ~0.6 ms of CPU per local file,
half of it system time, with two hops per file).  ``ThreadHops`` keeps a queue of calls:
up to ``threads`` long-lived workers (each ends after ``linger`` seconds without work) take
up to ``batch`` calls at a time, run them, and hand all their results back to the loop in
one wake-up; a call that finds a worker idle wakes it, else waits for a busy one.
Nothing runs in the event loop (issue 10): a disk that stalls holds back the calls of that
worker's batch, not the loop.

Every local store of a process shares one pool, ``DISK`` (2 workers): a local → local copy
had 2 workers per store, 4 threads taking the GIL from each other and from the loop around
every small system call (measured on 20,000 × 64 B files: 208,000 futex calls, against
80,000 with one pool of 2 and 15,000 for rclone); more threads only add hand-offs when the
work is the interpreter's, and a disk that stalls still leaves the other worker free.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Call = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]"]
_Result = tuple["asyncio.Future[Any]", bool, Any]


class ThreadHops:
    def __init__(self, threads: int = 2, batch: int = 32, linger: float = 0.5) -> None:
        self.threads = threads
        self.batch = batch
        #: How long an idle worker waits for calls before its thread ends.
        self.linger = linger
        self._queue: deque[_Call] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._running = 0
        self._idle = 0
        #: Thread hops made (each takes one or more calls): what the batching saves, counted.
        self.hops = 0
        _ALL.add(self)

    def _forked(self) -> None:
        """In a forked child: the parent's workers did not come along (nor did its loop)."""
        self._queue.clear()
        self._cond = threading.Condition(threading.Lock())
        self._running = self._idle = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread; its result or exception, here."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, args, fut))
        with self._cond:
            if self._idle:
                self._cond.notify()
            elif self._running < self.threads:
                self._running += 1
                try:
                    threading.Thread(target=self._work, name="lakeshift-disk",
                                     daemon=True).start()
                except BaseException:
                    self._running -= 1
                    raise
        return await fut

    def _work(self) -> None:
        """A worker: take up to ``batch`` calls at a time; end after ``linger`` seconds
        without any."""
        while True:
            with self._cond:
                while not self._queue:
                    self._idle += 1
                    woken = self._cond.wait(self.linger)
                    self._idle -= 1
                    if not woken and not self._queue:
                        self._running -= 1
                        return
                calls = [self._queue.popleft()
                         for _ in range(min(self.batch, len(self._queue)))]
                self.hops += 1
            results: list[_Result] = []
            for fn, args, fut in calls:
                if fut.cancelled():
                    continue  # its caller gave up before it ran: not run at all
                try:
                    results.append((fut, True, fn(*args)))
                except BaseException as e:  # handed to the caller as it is
                    results.append((fut, False, e))
            by_loop: dict[asyncio.AbstractEventLoop, list[_Result]] = {}
            for r in results:
                by_loop.setdefault(r[0].get_loop(), []).append(r)
            for loop, done in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_deliver, done)
                except RuntimeError:
                    pass  # the loop is closed: nobody is waiting any more


def _deliver(results: list[_Result]) -> None:
    for fut, ok, value in results:
        if fut.cancelled():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


_ALL: weakref.WeakSet[ThreadHops] = weakref.WeakSet()
#: The pool every local store of the process shares (see the top of this file).
DISK = ThreadHops(threads=2, batch=32)


def _after_fork() -> None:
    for hops in list(_ALL):
        hops._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
