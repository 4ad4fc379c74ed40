"""Python-level function calls counted while a step runs (``sys.setprofile``'s "call"
events): deterministic, unlike a timing, so a cost test can bound them.  A coroutine's
every resumption is a "call" too."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any


class _Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            self.calls += 1


def python_calls(step: Callable[[], Any]) -> int:
    """Calls made while ``step()`` runs (``step`` itself counts one if it is Python)."""
    counter = _Counter()
    sys.setprofile(counter)
    try:
        step()
    finally:
        sys.setprofile(None)
    return counter.calls


async def python_calls_awaited(step: Callable[[], Awaitable[Any]]) -> int:
    """Calls made while awaiting ``step()`` (the awaited store call itself is a coroutine
    that returns at once and counts one)."""
    counter = _Counter()
    sys.setprofile(counter)
    try:
        await step()
    finally:
        sys.setprofile(None)
    return counter.calls
