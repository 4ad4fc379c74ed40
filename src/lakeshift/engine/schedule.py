"""Running sync passes: one (``run_once``) or on a schedule (``follow_schedule``, --every /
--cron), with the job's scheduler lease and SIGINT/SIGTERM checkpointing the pass under
way.  A pass itself is engine/sync.py's ``sync_pass``, handed in as ``one_pass``."""

from __future__ import annotations

import asyncio
import shlex
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from lakeshift.control.records import Job
from lakeshift.control.repository import ControlDB
from lakeshift.errors import LakeshiftError, UsageError


def _free_to_take(loop: asyncio.AbstractEventLoop, sig: signal.Signals) -> bool:
    """Whether ``sig`` still has a handler nobody chose: the default, Python's own
    KeyboardInterrupt, or asyncio.run's (which cancels the main task).  A program that
    embeds lakeshift and set its own (``signal.signal``, ``loop.add_signal_handler``, or
    SIG_IGN) keeps it."""
    if sig in getattr(loop, "_signal_handlers", {}):
        return False  # the program's own handler on this loop
    current = signal.getsignal(sig)
    # (None: a handler set outside Python, which could not be put back: left alone.)
    if current is signal.SIG_DFL or current is signal.default_int_handler:
        return True
    owner = getattr(getattr(current, "func", current), "__self__", None)
    return isinstance(owner, asyncio.Runner)


@contextmanager
def signal_handlers(sigs: tuple[signal.Signals, ...],
                    callback: Callable[[str], None]) -> Iterator[list[signal.Signals]]:
    """Call ``callback(name)`` on each of ``sigs`` while inside, through the running loop;
    yield the signals it took.  A signal is taken only when its handler is still the
    default (``_free_to_take``), and its previous handler is put back afterwards (asyncio
    alone would leave the default).  Outside the main thread none is taken: the caller is
    stopped by cancelling."""
    loop = asyncio.get_running_loop()
    taken: list[tuple[signal.Signals, Any]] = []
    for sig in sigs:
        if not _free_to_take(loop, sig):
            continue
        previous = signal.getsignal(sig)
        try:
            loop.add_signal_handler(sig, callback, sig.name)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread (or no signals here)
        taken.append((sig, previous))
    try:
        yield [sig for sig, _ in taken]
    finally:
        for sig, previous in taken:
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous)


async def run_once(job: Job, one_pass: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """One pass that SIGTERM checkpoints as it does a scheduled one: the pass is cancelled,
    its partitions go back to pending and their windows are recorded as interrupted (the
    next pass looks at them again); the result then has ``stopped_by`` "SIGTERM".  (SIGINT
    is Python's KeyboardInterrupt, which cancels the pass the same way.)  A program that set
    its own SIGTERM handler keeps it (see ``signal_handlers``)."""
    task: asyncio.Task[Any] = asyncio.create_task(one_pass())
    stopped: list[str] = []

    def on_sigterm(name: str) -> None:
        stopped.append(name)
        task.cancel()

    with signal_handlers((signal.SIGTERM,), on_sigterm):
        try:
            return await task
        except asyncio.CancelledError:
            if not stopped:
                raise
            from lakeshift.model import RunResult, SyncResult

            return SyncResult(job.name, RunResult(0), passes=0, stopped_by="SIGTERM")


async def follow_schedule(db: ControlDB, job: Job, schedule: Any,
                          one_pass: Callable[[], Coroutine[Any, Any, Any]],
                          on_pass: Callable[[Any], None] | None, lease_s: float) -> Any:
    """Run ``one_pass`` at the schedule's times until SIGINT or SIGTERM.

    One scheduler per job: its lease (``lakeshift_schedules``) is taken first, renewed
    while it waits and while a pass runs, and a second scheduler is refused.  A signal
    during a pass cancels it: its partitions go back to pending and their windows are
    recorded as interrupted (not advanced: the next pass looks at each again from its
    start, not from a cursor); during the wait it simply ends.  The result is the last
    pass's, with ``stopped_by`` set to the signal's name.  A program that set its own
    handler of either signal keeps it (see ``signal_handlers``).
    """
    from datetime import UTC

    from lakeshift.engine.jobrunner import owner_id

    call = asyncio.to_thread
    owner = owner_id()
    held = await call(db.acquire_schedule, job.id, owner, schedule.text, lease_s,
                      socket.gethostname())
    if held is not None:
        raise UsageError(f"job {job.name!r} already has a scheduler ({held}): stop it first, "
                         f"or run one pass with `lakeshift sync --job {shlex.quote(job.name)}` "
                         "and no schedule")
    stop = asyncio.Event()
    stopped_by: list[str] = []
    current: list[asyncio.Task[Any]] = []

    def on_signal(name: str) -> None:
        if not stopped_by:
            stopped_by.append(name)
        stop.set()
        for t in current:
            t.cancel()

    with signal_handlers((signal.SIGINT, signal.SIGTERM), on_signal):
        result: Any = None
        passes = 0
        try:
            while not stop.is_set():
                started = datetime.now(UTC)
                task: asyncio.Task[Any] = asyncio.create_task(one_pass())
                current.append(task)
                renew = asyncio.create_task(_renew_while(db, job.id, owner, lease_s, None, task))
                try:
                    result = await task
                except asyncio.CancelledError:
                    if not stopped_by:
                        raise
                    break
                finally:
                    current.clear()
                    renew.cancel()
                passes += 1
                next_at = schedule.next_after(started)
                now = datetime.now(UTC)
                if next_at <= now:  # the pass took longer than the interval: go on at once
                    next_at = schedule.next_after(now) if schedule.cron else now
                if not await call(db.renew_schedule, job.id, owner, lease_s, next_at, started):
                    _lease_lost(job)
                result.passes, result.next_run_at = passes, next_at
                if on_pass is not None:
                    on_pass(result)
                while not stop.is_set() and datetime.now(UTC) < next_at:
                    wait = min(lease_s / 3, (next_at - datetime.now(UTC)).total_seconds())
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
                    except TimeoutError:
                        if not await call(db.renew_schedule, job.id, owner, lease_s, next_at):
                            _lease_lost(job)
        finally:
            await call(db.release_schedule, job.id, owner)

    if result is None:
        from lakeshift.model import RunResult, SyncResult

        result = SyncResult(job.name, RunResult(0), passes=0)
    result.passes = passes
    result.stopped_by = stopped_by[0] if stopped_by else None
    return result


def _lease_lost(job: Job) -> None:
    raise UsageError(f"job {job.name!r}: another scheduler took this one's lease (it ran "
                     "out while the control DB could not be reached): this one stops")


async def _renew_while(db: ControlDB, job_id: int, owner: str, lease_s: float,
                       next_at: datetime | None, task: asyncio.Task[Any]) -> None:
    while not task.done():
        await asyncio.sleep(lease_s / 3)
        try:
            await asyncio.to_thread(db.renew_schedule, job_id, owner, lease_s, next_at)
        except LakeshiftError:
            continue  # the DB is unreachable for now: try again at the next beat
