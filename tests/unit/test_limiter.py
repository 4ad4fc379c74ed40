from __future__ import annotations

import asyncio
import time

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


def test_token_bucket_paces() -> None:
    async def main() -> float:
        bucket = TokenBucket(100.0)  # 100 a second, burst 100
        t0 = time.monotonic()
        for _ in range(150):
            await bucket.take()
        return time.monotonic() - t0

    assert 0.4 <= asyncio.run(main()) < 1.5
