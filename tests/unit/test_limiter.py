from __future__ import annotations

import asyncio

import pytest

from lakeshift.engine import limiter
from lakeshift.engine.limiter import EndpointLimiter, TokenBucket


def test_aimd_halves_once_per_burst_and_creeps_back() -> None:
    seen: list[int] = []
    lim = EndpointLimiter("s3://b", 32, cooldown=10, on_throttle=lambda n, lim_: seen.append(lim_))
    lim.throttled()
    lim.throttled()  # same burst: counted, not halved again
    assert int(lim.limit) == 16 and lim.throttles == 2 and seen == [16, 16]
    for _ in range(17):
        lim.success()
    assert int(lim.limit) == 17  # about +1 per window of successes
    lim._last_cut = 0.0
    lim.throttled()
    assert int(lim.limit) == 8 and lim.lowest == 8


def test_limit_bounds_requests_in_flight() -> None:
    async def main() -> int:
        lim = EndpointLimiter("e", 4)
        lim.limit = 2.0
        peak = 0

        async def one() -> None:
            nonlocal peak
            async with lim.slot():
                peak = max(peak, lim.inflight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(one() for _ in range(10)))
        return peak

    assert asyncio.run(main()) == 2


def test_not_adaptive_keeps_the_limit() -> None:
    lim = EndpointLimiter("e", 8, adaptive=False)
    lim.throttled()
    assert int(lim.limit) == 8 and lim.throttles == 1


class FakeClock:
    """Stands in for time.monotonic and asyncio.sleep in the limiter: sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # A real clock ticks at least a little during any sleep (1 µs here): the bucket's
        # float arithmetic may ask for a wait too small to move a float clock at all.
        step = max(seconds, 1e-6)
        self.now += step
        self.slept += step


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(limiter.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(limiter.asyncio, "sleep", fake.sleep)
    return fake


@pytest.mark.timeout(20)
def test_token_bucket_paces(clock: FakeClock) -> None:
    async def main() -> None:
        bucket = TokenBucket(100.0)  # 100 a second, burst 100
        for _ in range(150):
            await bucket.take()

    asyncio.run(main())
    # The first 100 are the burst; the other 50 wait for refills at 100 a second.
    assert clock.slept == pytest.approx(0.5, abs=0.02)


@pytest.mark.timeout(20)
def test_bandwidth_cap_waits_for_a_full_bucket_for_a_large_request(clock: FakeClock) -> None:
    async def main() -> None:
        bucket = TokenBucket(1000.0)
        await bucket.take(1000)   # the burst
        await bucket.take(5000)   # larger than the bucket: waits until it is full again

    asyncio.run(main())
    assert clock.slept == pytest.approx(1.0, abs=0.02)


@pytest.mark.timeout(20)
def test_the_bandwidth_cap_starts_empty_and_bursts_a_tenth_of_a_second(
        clock: FakeClock) -> None:
    """--max-bandwidth holds from the first byte: 3 s worth takes 3 s, not 2 (a bucket
    starting full let the first second's worth through at once), and after an idle spell
    no more than a tenth of a second's worth goes at once."""
    async def main() -> tuple[float, float]:
        pacing = limiter.Pacing(4, max_bandwidth=1000.0)
        assert pacing.bandwidth is not None
        for _ in range(30):
            await pacing.transfer(100)
        first = clock.slept
        clock.now += 60.0  # idle: the bucket fills to its burst only
        slept = clock.slept
        for _ in range(10):
            await pacing.transfer(100)  # 1 s worth after the idle spell
        return first, clock.slept - slept

    first, after_idle = asyncio.run(main())
    assert first == pytest.approx(3.0, abs=0.02)
    assert after_idle == pytest.approx(0.9, abs=0.02)


@pytest.mark.timeout(20)
def test_the_request_rate_cap_starts_empty_and_bursts_a_tenth_of_a_second(
        clock: FakeClock) -> None:
    """--max-requests-per-second N holds from the first request: no second from the start
    holds more than N plus a tenth of N (a bucket starting full let a second's worth through
    at once, then a second's worth more: 2 N in the first second), nor does any second after
    an idle spell."""
    rate = 20.0

    async def main() -> tuple[list[float], list[float]]:
        lim = EndpointLimiter("e", 64, max_rps=rate)
        first: list[float] = []
        for _ in range(60):
            await lim.acquire()
            first.append(clock.now)
            lim.release()
        clock.now += 60.0  # idle: the bucket fills to its burst only
        after_idle: list[float] = []
        for _ in range(60):
            await lim.acquire()
            after_idle.append(clock.now)
            lim.release()
        return first, after_idle

    start = clock.now
    first, after_idle = asyncio.run(main())

    def most_in_a_second(times: list[float], since: float) -> int:
        return max(sum(1 for u in times if t <= u < t + 1.0) for t in [since, *times])

    assert most_in_a_second(first, start) <= rate * 1.1
    assert most_in_a_second(after_idle, after_idle[0]) <= rate * 1.1
    # Not slower than the cap either: 60 requests take 3 s (the first after a twentieth).
    assert first[-1] - start == pytest.approx(3.0, abs=0.02)


def test_one_throttle_burst_halves_once_per_cooldown(clock: FakeClock) -> None:
    lim = EndpointLimiter("e", 32, cooldown=1.0)
    lim.throttled()
    clock.now += 0.5
    lim.throttled()
    assert int(lim.limit) == 16
    clock.now += 1.0
    lim.throttled()
    assert int(lim.limit) == 8 and lim.throttles == 3


def test_throttling_heard_from_another_worker_halves_without_being_told_again() -> None:
    told: list[tuple[str, int]] = []
    pacing = limiter.Pacing(16, on_throttle=lambda name, lim: told.append((name, lim)))
    pacing.throttled_elsewhere("s3:///bkt")
    lim = pacing.endpoint("s3:///bkt")
    assert (lim.limit, lim.lowest, lim.throttles, lim.throttles_elsewhere) == (8, 8, 0, 1)
    assert told == []  # the worker that met it told the fleet; no echo back
    lim._last_cut = 0.0  # a later burst
    lim.throttled()
    assert (lim.limit, lim.throttles) == (4, 1)
    assert told == [("s3:///bkt", 4)]


def test_the_fields_retry_takes_slots_by_follow_the_limit() -> None:
    """``slots``, ``quick`` and ``growing`` (what retry takes a slot by, inline) follow the
    AIMD limit through cuts, successes and a limit set outright; under a request-rate cap
    nothing is taken inline (``quick`` 0: the token comes from acquire); a success that
    grows the limit by a whole slot hands it to a waiter at once."""
    async def main() -> None:
        lim = EndpointLimiter("e", 8, cooldown=0.0)
        assert (lim.slots, lim.quick, lim.growing) == (8, 8, False)
        lim.throttled()
        assert (lim.slots, lim.quick, lim.growing) == (4, 4, True)
        for _ in range(4):
            await lim.acquire()
        waiting = asyncio.ensure_future(lim.acquire())
        await asyncio.sleep(0)
        assert not waiting.done() and len(lim.waiters) == 1
        while lim.growing:
            lim.success()
            assert lim.slots == int(lim.limit) == lim.quick, lim.limit
            if lim.slots == 5:
                await asyncio.sleep(0)
                assert waiting.done() and lim.inflight == 5 and not lim.waiters
        assert lim.limit == 8.0 and lim.slots == 8
        lim.limit = 2.5
        assert (lim.slots, lim.quick, lim.growing) == (2, 2, True)
        capped = EndpointLimiter("c", 8, max_rps=10.0)
        assert (capped.slots, capped.quick) == (8, 0)

    asyncio.run(main())


def test_retry_and_the_limiter_keep_their_rule_under_every_kind_of_trouble() -> None:
    """retry's inline slots against the limiter, at random: request-rate caps (nothing
    inline), throttling, the limit set outright, transient and other errors, cancelled
    requests (waiting, granted, or in flight): the count never goes negative, no request
    waits while a slot is free (the inline take is never ahead of a waiter), ``slots``
    follows the limit, every request under a cap took its token, and every slot comes
    back."""
    import random

    from lakeshift.engine.retry import RetryPolicy, retry
    from lakeshift.errors import ThrottledError, TransientError

    broken: list[tuple[object, ...]] = []

    def check(lim: EndpointLimiter, where: str) -> None:
        waiting = any(not f.done() for f in lim.waiters)
        if lim.inflight < 0 or (waiting and lim.inflight < lim.slots) \
                or lim.slots != int(lim.limit):
            broken.append((where, lim.inflight, lim.slots, lim.limit, len(lim.waiters)))

    async def main(seed: int) -> None:
        rng = random.Random(seed)
        lim = EndpointLimiter("e", rng.randint(1, 8), cooldown=rng.choice([0.0, 0.001]),
                              max_rps=rng.choice([None, None, 500.0]))
        policy = RetryPolicy(attempts=3, base=0.0001, cap=0.001)
        calls = 0

        async def request() -> int:
            nonlocal calls
            calls += 1
            check(lim, "request")
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)
            r = rng.random()
            if r < 0.05:
                raise ThrottledError("slow down", retry_after=0)
            if r < 0.08:
                raise TransientError("reset")
            if r < 0.1:
                raise ValueError("not retried")
            return 1

        tasks = [asyncio.ensure_future(retry(request, policy, lim)) for _ in range(150)]
        for _ in range(300):
            await asyncio.sleep(0)
            check(lim, "tick")
            if rng.random() < 0.2:
                rng.choice(tasks).cancel()
            if rng.random() < 0.02:
                lim.limit = rng.uniform(1, lim.maximum)
        await asyncio.gather(*tasks, return_exceptions=True)
        if lim.inflight or lim.waiters:
            broken.append(("end", seed, lim.inflight, len(lim.waiters)))
        if lim._rps is not None and lim._rps.taken < calls:  # a request without its token
            broken.append(("rate", seed, lim._rps.taken, calls))

    for seed in range(100):
        asyncio.run(main(seed))
        assert not broken, (seed, broken[:3])
