"""A long ranged read over a flaky link: retries are counted in a row, and an attempt that
got at least PROGRESS_RESETS_RETRIES bytes further gives them back (engine/retry.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lakeshift.engine import retry as R
from lakeshift.errors import TransientError

MiB = 1024 * 1024


class _Stream:
    """Delivers ``data[pos:end]`` in 256 KiB chunks, then breaks after ``cut`` bytes."""

    def __init__(self, data: bytes, pos: int, end: int, cut: int | None) -> None:
        self.data, self.pos, self.end, self.cut = data, pos, end, cut

    async def chunks(self, n: int) -> AsyncIterator[bytes]:
        sent = 0
        while self.pos < self.end:
            if self.cut is not None and sent >= self.cut:
                raise TransientError("connection reset")
            take = min(256 * 1024, self.end - self.pos)
            yield self.data[self.pos:self.pos + take]
            self.pos += take
            sent += take

    def close(self) -> None:
        pass


def _read(data: bytes, cuts: list[int | None], attempts: int) -> tuple[bytes, int]:
    opened = 0

    async def open_at(pos: int, end: int) -> _Stream:
        nonlocal opened
        cut = cuts[opened] if opened < len(cuts) else None
        opened += 1
        return _Stream(data, pos, end, cut)

    async def main() -> bytes:
        out = bytearray()
        policy = R.RetryPolicy(attempts=attempts, base=0.0)
        async for chunk in R.resumed_read(open_at, 0, len(data), None, policy, None, "x",
                                          read=lambda s, n: s.chunks(n)):
            out += chunk
        return bytes(out)

    return asyncio.run(main()), opened


def test_breaks_after_real_progress_each_get_the_retries_back() -> None:
    data = bytes(range(256)) * (24 * MiB // 256)
    # Five resets, each after 2 MiB more: more resets than the 3 attempts, every one of
    # them past the last.  Before, the fourth failed the read (and its object).
    got, opened = _read(data, [2 * MiB] * 5, attempts=3)
    assert got == data and opened == 6


def test_breaks_without_progress_still_fail_after_the_attempts() -> None:
    data = bytes(8 * MiB)
    with pytest.raises(TransientError):
        _read(data, [0, 0, 0, 0], attempts=3)


def test_breaks_with_little_progress_count_as_one_fault() -> None:
    # 256 KiB per attempt is below PROGRESS_RESETS_RETRIES: a link that barely moves is
    # given up on after the attempts, not retried for every few bytes it lets through.
    assert R.PROGRESS_RESETS_RETRIES > 256 * 1024
    data = bytes(8 * MiB)
    with pytest.raises(TransientError):
        _read(data, [256 * 1024] * 10, attempts=3)
