"""Retry with exponential backoff and full jitter, honouring Retry-After."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.errors import ThrottledError, TransientError

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


async def retry(fn: Callable[[], Awaitable[T]], policy: RetryPolicy,
                limiter: EndpointLimiter | None = None) -> T:
    """Call ``fn`` until it succeeds, retrying TransientError (and ThrottledError).

    With a ``limiter`` every attempt takes one of the endpoint's in-flight slots and reports
    how it went (throttling halves the endpoint's limit)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            if limiter is None:
                return await fn()
            async with limiter.slot():
                result = await fn()
            limiter.success()
            return result
        except ThrottledError as e:
            if limiter is not None:
                limiter.throttled()
            if attempt >= policy.attempts:
                raise
            await asyncio.sleep(policy.delay(attempt, e.retry_after))
        except TransientError as e:
            if attempt >= policy.attempts:
                raise
            await asyncio.sleep(policy.delay(attempt, e.retry_after))
