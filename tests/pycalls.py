"""Python-level function calls counted while a step runs (``sys.setprofile``'s "call"
events): deterministic, unlike a timing, so a cost test can bound them.  A coroutine's
every resumption is a "call" too.

The garbage collector runs first and is off while counting: a finalizer of an earlier
test's garbage (an unclosed generator, a thread's objects) would otherwise be counted as
the step's calls whenever a collection happened to fall inside it."""

from __future__ import annotations

import gc
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any


class _Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.names: list[str] = []

    def __call__(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            self.calls += 1
            self.names.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:"
                              f"{frame.f_code.co_name}")


def _quiet_gc() -> bool:
    gc.collect()
    was_on = gc.isenabled()
    gc.disable()
    return was_on


#: The functions the last count saw called (for a failing bound's message).
last_calls: list[str] = []


def python_calls(step: Callable[[], Any]) -> int:
    """Calls made while ``step()`` runs (``step`` itself counts one if it is Python)."""
    was_on = _quiet_gc()
    counter = _Counter()
    sys.setprofile(counter)  # (set and cleared here: a helper's own frames would count)
    try:
        step()
    finally:
        sys.setprofile(None)
        if was_on:
            gc.enable()
    last_calls[:] = counter.names
    return counter.calls


async def python_calls_awaited(step: Callable[[], Awaitable[Any]]) -> int:
    """Calls made while awaiting ``step()`` (the awaited store call itself is a coroutine
    that returns at once and counts one)."""
    was_on = _quiet_gc()
    counter = _Counter()
    sys.setprofile(counter)
    try:
        await step()
    finally:
        sys.setprofile(None)
        if was_on:
            gc.enable()
    last_calls[:] = counter.names
    return counter.calls
