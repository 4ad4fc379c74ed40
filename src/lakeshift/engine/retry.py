"""Retry with exponential backoff and full jitter, honouring Retry-After."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from lakeshift.errors import TransientError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    base: float = 0.2
    cap: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, 120.0)
        return random.uniform(0, min(self.cap, self.base * 2 ** attempt))


async def retry(fn: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Call ``fn`` until it succeeds, retrying TransientError (and ThrottledError)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except TransientError as e:
            if attempt >= policy.attempts:
                raise
            await asyncio.sleep(policy.delay(attempt, e.retry_after))
