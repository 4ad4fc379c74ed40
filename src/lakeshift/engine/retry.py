"""Retry with exponential backoff and full jitter, honouring Retry-After."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.errors import ThrottledError, TransientError

T = TypeVar("T")

#: Told the error class of every request about to be retried, in the context that set it
#: (a partition's tasks: `run` counts retries by class per partition for the monitor).
retry_observer: ContextVar[Callable[[str], None] | None] = ContextVar("retry_observer",
                                                                      default=None)


def _observe(kind: str) -> None:
    observer = retry_observer.get()
    if observer is not None:
        observer(kind)


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
            # (acquire/release rather than ``async with limiter.slot()``: no context
            # manager object per request on the no-failure path.)
            await limiter.acquire()
            try:
                result = await fn()
            finally:
                limiter.release()
            limiter.success()
            return result
        except ThrottledError as e:
            if limiter is not None:
                limiter.throttled()
            if attempt >= policy.attempts:
                raise
            _observe(e.kind)
            await asyncio.sleep(policy.delay(attempt, e.retry_after))
        except TransientError as e:
            if attempt >= policy.attempts:
                raise
            _observe(e.kind)
            await asyncio.sleep(policy.delay(attempt, e.retry_after))
