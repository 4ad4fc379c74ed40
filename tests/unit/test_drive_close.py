"""drive() closes the planner's generator on every way out (an action's error, a cancel,
the end), not when the garbage collector finds it: its ``finally`` (open listings, the
merge's state) runs before drive returns or raises."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from lakeshift.engine.pipeline_pool import drive


class _Work:
    """An endless planner that records whether its ``finally`` ran; the test keeps a
    reference to the generator, so nothing but drive can close it in time."""

    def __init__(self) -> None:
        self.closed = False
        self.made = 0

    async def items(self) -> AsyncIterator[int]:
        # No await of its own: the producer is then suspended outside the generator (waiting
        # for room in the hand-off), so a cancel of the producer does not end it.
        try:
            while True:
                self.made += 1
                yield self.made
        finally:
            self.closed = True


@pytest.mark.parametrize("concurrency", [1, 3])
@pytest.mark.parametrize("fail_at", [1, 5, 40])
def test_an_action_error_closes_the_work_before_drive_raises(concurrency: int,
                                                              fail_at: int) -> None:
    """Failing at once, with the hand-off part full, and with the producer waiting for
    room (40 > 4 x concurrency): the generator is closed when the error reaches the caller."""
    async def main() -> None:
        w = _Work()
        gen = w.items()

        async def action(i: int) -> None:
            await asyncio.sleep(0)
            if i == fail_at:
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await drive(gen, action, concurrency)
        assert w.closed, "drive left the planner's generator open"
        del gen

    asyncio.run(main())


def test_a_cancel_closes_the_work() -> None:
    async def main() -> None:
        w = _Work()
        gen = w.items()
        started = asyncio.Event()

        async def action(i: int) -> None:
            started.set()
            await asyncio.sleep(3600)

        task = asyncio.create_task(drive(gen, action, 2))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert w.closed
        del gen

    asyncio.run(main())


def test_a_producer_error_and_a_normal_end_leave_it_closed_and_raise_as_before() -> None:
    async def main() -> None:
        closed: list[str] = []

        async def failing() -> AsyncIterator[int]:
            try:
                yield 1
                raise ValueError("listing failed")
            finally:
                closed.append("failing")

        async def short() -> AsyncIterator[int]:
            try:
                for i in range(10):
                    yield i
            finally:
                closed.append("short")

        seen: list[int] = []

        async def action(i: int) -> None:
            seen.append(i)

        with pytest.raises(ValueError, match="listing failed"):
            await drive(failing(), action, 2)
        await drive(short(), action, 2)
        assert closed == ["failing", "short"]
        assert sorted(seen) == sorted([1, *range(10)])

    asyncio.run(main())


def test_an_error_of_the_works_cleanup_does_not_hide_the_one_that_ended_the_pool() -> None:
    """The close runs in drive's ``finally``: a cleanup that fails there replaced the
    action's error (the caller saw only the cleanup's); raised only when nothing else is."""
    async def work() -> AsyncIterator[int]:
        try:
            for i in range(100):
                yield i
        finally:
            raise ValueError("the cleanup failed")

    async def broken(item: int) -> None:
        raise RuntimeError("the action failed")

    async def fine(item: int) -> None:
        pass

    async def short() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.sleep(0)
        finally:
            raise ValueError("the cleanup failed")

    with pytest.raises(RuntimeError, match="the action failed"):
        asyncio.run(drive(work(), broken, 1))
    with pytest.raises(ValueError, match="the cleanup failed"):  # (nothing else to see)
        asyncio.run(drive(short(), fine, 2))
