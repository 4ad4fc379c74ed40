"""Request pacing per endpoint: an AIMD concurrency limiter and optional rate caps.

AIMD (additive increase, multiplicative decrease, as TCP does): at most ``limit`` requests
are in flight to an endpoint; a throttled answer (429, 503 SlowDown, ServerBusy) halves the
limit — at most once per ``cooldown`` seconds, so one burst counts once — and every success
adds 1/limit, so the limit creeps back up by one per window of successes.  A request-rate
cap (``--max-requests-per-second``) and a bandwidth cap (``--max-bandwidth``) are token
buckets that start empty and hold a tenth of a second's worth (``paced``), so each cap
holds from the first request and the first byte over any window of a second or more.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from lakeshift.errors import UsageError

#: A cap's bucket holds this many seconds' worth (of bytes, of requests), and starts empty:
#: over any window of a second or more a run moves at most the cap's worth plus this
#: fraction (and one request larger than it, taken whole), from its first byte and its
#: first request.  (A full bucket of one second's worth let a 2 MiB/s cap move 6 MiB in its
#: first 2.1 s, and a 20 requests/s cap send 40 in its first second.)
BURST_S = 0.1


class TokenBucket:
    """``rate`` tokens a second, bursts up to ``burst`` (default ``rate``: one second's
    worth); it starts holding ``start`` tokens (default: full)."""

    def __init__(self, rate: float, burst: float | None = None,
                 start: float | None = None) -> None:
        self.rate = rate
        self.burst = rate if burst is None else burst
        self.tokens = self.burst if start is None else start
        self.stamp = time.monotonic()
        self._lock = asyncio.Lock()
        #: Tokens taken in all (bytes, for the bandwidth cap) and how many times a taker had
        #: to wait for them: what the cap did, counted rather than timed.
        self.taken = 0.0
        self.waits = 0

    async def take(self, n: float = 1.0) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                # A request larger than the bucket waits until the bucket is full, and
                # leaves it owing the rest: the next taker waits for that too.
                need = min(n, self.burst)
                if self.tokens >= need:
                    self.tokens -= n
                    self.taken += n
                    return
                self.waits += 1
                await asyncio.sleep((need - self.tokens) / self.rate)


def paced(rate: float) -> TokenBucket:
    """A cap's bucket: ``rate`` a second, bursting to ``BURST_S`` seconds' worth, empty at
    the start (a request or block larger than the burst goes whole once the bucket is
    full, and the next takers pay for it)."""
    return TokenBucket(rate, burst=rate * BURST_S, start=0.0)


class EndpointLimiter:
    """At most ``slots`` (the AIMD ``limit``'s whole part) requests in flight to an
    endpoint, first come first served.

    A request takes its slot in one of two ways, both the limiter's rule:
    ``acquire``/``release``, or, where a call per request counts (retry's no-failure path:
    the requests of every small object), inline, through the fields the limiter keeps for
    it: ``if lim.inflight < lim.quick: lim.inflight += 1`` (else ``await lim.acquire()``),
    and back with ``lim.release()`` when ``lim.waiters``, else ``lim.inflight -= 1``.
    ``quick`` is ``slots``, or 0 under a request-rate cap (every request then takes its
    token in ``acquire``).  That never goes ahead of a waiter: the limiter keeps that
    whenever someone waits, ``inflight >= slots`` (each release, cancel and growth of the
    limit hands free slots to the waiters first: ``_wake``)."""

    def __init__(self, name: str, maximum: int, adaptive: bool = True,
                 max_rps: float | None = None, cooldown: float = 1.0,
                 on_throttle: Callable[[str, int], None] | None = None) -> None:
        self.name = name
        self.maximum = max(1, maximum)
        self.adaptive = adaptive
        self.cooldown = cooldown
        self.inflight = 0
        self.lowest = self.maximum
        self.throttles = 0
        #: Throttling another process of the fleet met at this endpoint (Pacing.
        #: throttled_elsewhere): each counted, each a cut like one met here.
        self.throttles_elsewhere = 0
        self._last_cut = 0.0
        #: The requests waiting for a slot, in the order they came.
        self.waiters: deque[asyncio.Future[None]] = deque()
        self._rps = paced(max_rps) if max_rps else None
        self._on_throttle = on_throttle
        self.limit = float(self.maximum)

    @property
    def limit(self) -> float:
        """The AIMD limit (fractional: every success adds 1/limit)."""
        return self._limit

    @limit.setter
    def limit(self, value: float) -> None:
        self._limit = value
        #: Requests that may be in flight.
        self.slots = int(value)
        #: Below this many in flight a slot is taken inline (see the class): ``slots``, 0
        #: under a request-rate cap.
        self.quick = self.slots if self._rps is None else 0
        #: ``success`` has a limit to raise (retry calls it only then).
        self.growing = self.adaptive and value < self.maximum
        if self.waiters:
            self._wake()  # the limit grew by a whole slot: a waiter may go now

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Take one in-flight slot (first come, first served); the caller must
        ``release()`` it.  A free slot is taken without suspending (nobody waits then)."""
        if self.inflight < self.slots:
            self.inflight += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self.release()  # granted just as we were cancelled: give it back
                else:
                    try:
                        self.waiters.remove(fut)
                    except ValueError:
                        pass
                    self._wake()
                raise
        if self._rps is not None:
            try:
                await self._rps.take()
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        self.inflight -= 1
        if self.waiters:
            self._wake()

    def _wake(self) -> None:
        # Waiters are granted their slot here (counted in ``inflight`` before they run), in
        # the order they came, while the limit (which throttling may have cut) has room.
        while self.waiters and self.inflight < self.slots:
            fut = self.waiters.popleft()
            if not fut.done():
                self.inflight += 1
                fut.set_result(None)

    def success(self) -> None:
        limit = self._limit
        if self.adaptive and limit < self.maximum:
            limit += 1.0 / limit
            if limit < self.slots + 1 and limit < self.maximum:
                self._limit = limit  # (no whole slot more: nothing else changes)
            else:
                self.limit = min(float(self.maximum), limit)

    def throttled(self, here: bool = True) -> None:
        """A throttled answer: halve the limit (once per cooldown).  ``here``: met by this
        process, which tells ``on_throttle``; else heard from another process of the fleet
        (which told its own), so it is not told again."""
        if here:
            self.throttles += 1
        else:
            self.throttles_elsewhere += 1
        now = time.monotonic()
        if self.adaptive and now - self._last_cut >= self.cooldown:
            self._last_cut = now
            self.limit = max(1.0, self.limit / 2)
            self.lowest = min(self.lowest, int(self.limit))
        if here and self._on_throttle is not None:
            self._on_throttle(self.name, int(self.limit))


def validate_pacing(max_rps: float | None, max_bandwidth: float | None) -> None:
    """The request-rate and bandwidth caps a user gave (copy, run, sync and verify)."""
    if max_rps is not None and max_rps <= 0:
        raise UsageError("--max-requests-per-second must be positive")
    if max_bandwidth is not None and max_bandwidth < 1024:
        raise UsageError("--max-bandwidth must be at least 1KiB (per second)")


class Pacing:
    """The limiters of one run: one per endpoint (shared by every partition using it) and
    the bandwidth cap."""

    def __init__(self, concurrency: int, adaptive: bool = True,
                 max_rps: float | None = None, max_bandwidth: float | None = None,
                 on_throttle: Callable[[str, int], None] | None = None) -> None:
        self.concurrency = concurrency
        self.adaptive = adaptive
        self.max_rps = max_rps
        self.bandwidth = paced(max_bandwidth) if max_bandwidth else None
        self.on_throttle = on_throttle
        self.endpoints: dict[str, EndpointLimiter] = {}

    def endpoint(self, name: str) -> EndpointLimiter:
        if name not in self.endpoints:
            self.endpoints[name] = EndpointLimiter(name, self.concurrency, self.adaptive,
                                                   self.max_rps, on_throttle=self.on_throttle)
        return self.endpoints[name]

    def throttled_elsewhere(self, endpoint: str) -> None:
        """Another process of the fleet (a Dask worker: scale/throttle.py) was throttled by
        ``endpoint``, which throttles the account as a whole: back off as if this one had
        been."""
        self.endpoint(endpoint).throttled(here=False)

    async def transfer(self, nbytes: int) -> None:
        if self.bandwidth is not None and nbytes:
            await self.bandwidth.take(nbytes)
