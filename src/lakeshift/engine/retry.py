"""Retry with exponential backoff and full jitter, honouring Retry-After."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.errors import IntegrityError, ThrottledError, TransientError

if TYPE_CHECKING:
    from lakeshift.stores.base import RangeStream

T = TypeVar("T")
#: A ranged read that got this far since its last error has its retries back
#: (resumed_read): a long read over a flaky link fails on a fault it cannot get past,
#: not on the sum of the faults it got past.
PROGRESS_RESETS_RETRIES = 1024 * 1024
_C = TypeVar("_C", bound=Sized)

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
            # A free slot taken and given back inline, as the limiter says (its class
            # docstring): no call, no coroutine, no context manager on the request of
            # every small object, twice an object; success only while it has a limit to
            # raise.
            if limiter.inflight < limiter.quick:
                limiter.inflight += 1
            else:
                await limiter.acquire()
            try:
                result = await fn()
            finally:
                if limiter.waiters:
                    limiter.release()
                else:
                    limiter.inflight -= 1
            if limiter.growing:
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


def _chunks(stream: RangeStream, n: int) -> AsyncIterator[Any]:
    return stream.chunks(n)


@overload
def resumed_read(open_at: Callable[[int, int], Awaitable[RangeStream]], start: int, end: int,
                 chunk: int | None, policy: RetryPolicy, limiter: EndpointLimiter | None,
                 what: str, stream: RangeStream | None = None
                 ) -> AsyncGenerator[bytes, None]: ...
@overload
def resumed_read(open_at: Callable[[int, int], Awaitable[RangeStream]], start: int, end: int,
                 chunk: int | None, policy: RetryPolicy, limiter: EndpointLimiter | None,
                 what: str, stream: RangeStream | None = None, *,
                 read: Callable[[RangeStream, int], AsyncIterator[_C]]
                 ) -> AsyncGenerator[_C, None]: ...
async def resumed_read(open_at: Callable[[int, int], Awaitable[RangeStream]], start: int,
                       end: int,
                       chunk: int | None, policy: RetryPolicy,
                       limiter: EndpointLimiter | None, what: str,
                       stream: RangeStream | None = None, *,
                       read: Callable[[RangeStream, int], AsyncIterator[Any]] = _chunks
                       ) -> AsyncGenerator[Any, None]:
    """The bytes ``start`` to ``end`` of one ranged read, in ``stream.chunks(chunk)`` (None:
    the rest of the range in one chunk), resumed after a TransientError (a broken or short
    read, a failed open) by ``open_at(pos, end)`` from where it stopped: chunks already yielded
    are never read again.  Each retry is reported as ``retry`` reports one (the limiter
    told of throttling, ``retry_observer`` told the error class), up to ``policy.attempts``
    attempts in a row, where an attempt that read ``PROGRESS_RESETS_RETRIES`` bytes or more
    starts the count again; more bytes than asked for are an IntegrityError.
    ``read(stream, n)``: its chunks (``stream.chunks(n)``; a block path may ask for
    ``pieces``).  ``stream``: one already open at ``start``.  Use it under
    ``contextlib.aclosing``: whatever ends the reading (an error in the loop that reads it,
    a cancellation) closes the stream then."""
    pos, attempt, since = start, 0, start
    try:
        while pos < end:
            try:
                if stream is None:
                    stream = await open_at(pos, end)
                async for data in read(stream, end - pos if chunk is None else chunk):
                    if pos + len(data) > end:
                        raise IntegrityError(f"{what}: the ranged read returned more than "
                                             f"the {end - start} bytes asked for")
                    pos += len(data)
                    yield data
                if pos < end:
                    raise TransientError(f"{what}: ranged read ended early at {pos}")
            except TransientError as e:
                if isinstance(e, ThrottledError) and limiter is not None:
                    limiter.throttled()
                attempt = 1 if pos - since >= PROGRESS_RESETS_RETRIES else attempt + 1
                since = pos
                if attempt >= policy.attempts:
                    raise
                _observe(e.kind)
                if stream is not None:
                    stream.close()
                stream = None
                await asyncio.sleep(policy.delay(attempt, e.retry_after))
    finally:
        if stream is not None:
            stream.close()  # a read given up (or cancelled) frees its connection now
