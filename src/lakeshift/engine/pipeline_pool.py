"""The engine's pool (:func:`drive`): a planner's items through a bounded hand-off to N
workers that run a mode's per-object action.  Copy, run and sync (engine/pipeline.py),
sync's keyed copies and deletions, verify and tune all run on it."""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def drive(work: AsyncIterator[T], action: Callable[[T], Awaitable[None]],
                concurrency: int) -> None:
    """The engine's pool: the planner's ``work`` (listing, merge, decisions) runs as the
    producer and hands items through a bounded queue to ``concurrency`` workers, each of
    which runs the mode's per-object ``action`` (copy: transfer one object; verify: prove
    one pair).  The action records its own outcome; an exception from it or from the
    producer (an auth error, a listing that failed after its retries) ends the pool."""
    # The hand-off: a deque of items (at most ``high``) and the futures of idle workers,
    # not an asyncio.Queue: its put_nowait and get are ~10 Python calls an item (full,
    # _put, clear, _wakeup_next, empty, get_nowait, _get, qsize ...), here a popleft.
    # A full deque makes the producer wait until the workers have taken it down to half
    # (``low``: ``room``), then it fills it again in one go: woken once per 2 x concurrency
    # items, not once per item.  An item put while workers wait wakes one of them.
    if concurrency < 1:  # (no worker: the producer would wait for room for ever)
        raise ValueError(f"drive: concurrency {concurrency}, at least 1 is needed")
    loop = asyncio.get_running_loop()
    items: deque[T] = deque()
    idle: deque[asyncio.Future[None]] = deque()
    high, low = concurrency * 4, concurrency * 2
    room: asyncio.Future[None] | None = None
    ended = False

    def wake_one() -> None:
        while idle:
            waiting = idle.popleft()
            if not waiting.done():  # (not a worker cancelled while it waited)
                waiting.set_result(None)
                return

    async def produce() -> None:
        nonlocal room, ended
        async for item in work:
            if len(items) >= high:
                room = loop.create_future()
                await room
            items.append(item)
            if idle:
                wake_one()
        ended = True
        while idle:
            wake_one()

    async def worker() -> None:
        nonlocal room
        while True:
            if items:
                item = items.popleft()
                if room is not None and len(items) <= low:
                    if not room.done():
                        room.set_result(None)
                    room = None
                await action(item)
            elif ended:
                return
            else:
                waiting: asyncio.Future[None] = loop.create_future()
                idle.append(waiting)
                await waiting

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(produce())
            for _ in range(concurrency):
                tg.create_task(worker())
    except BaseExceptionGroup as eg:
        # One error (the usual case) is raised as itself, so callers see the error tree.
        if len(eg.exceptions) == 1 and isinstance(eg.exceptions[0], Exception):
            raise eg.exceptions[0] from None
        raise
    finally:
        # On every way out (an action's error, a cancel, the end) the planner's generator
        # is closed here, its own ``finally`` and open listings run now, not whenever the
        # garbage collector finds it (after an end it is exhausted: a no-op).
        # An error of its own cleanup is raised only when nothing else is: it would hide
        # the action's error (or the producer's) that ended the pool.
        close = getattr(work, "aclose", None)
        if close is not None:
            ending = sys.exc_info()[1]
            try:
                await close()
            except Exception:
                if ending is None:
                    raise
