"""Running sync passes: one (``run_once``) or on a schedule (``follow_schedule``, --every /
--cron), with the job's scheduler lease and SIGINT/SIGTERM checkpointing the pass under
way.  A pass itself is engine/sync.py's ``sync_pass``, handed in as ``one_pass``."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from lakeshift.control.records import Job
from lakeshift.control.repository import ControlDB
from lakeshift.errors import LakeshiftError, UsageError


async def run_once(job: Job, one_pass: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """One pass that SIGTERM checkpoints as it does a scheduled one: the pass is cancelled,
    its partitions go back to pending and their windows are recorded as interrupted (the
    next pass looks at them again); the result then has ``stopped_by`` "SIGTERM".  (SIGINT
    is Python's KeyboardInterrupt, which cancels the pass the same way.)"""
    import signal

    loop = asyncio.get_running_loop()
    task: asyncio.Task[Any] = asyncio.create_task(one_pass())
    stopped: list[str] = []

    def on_sigterm() -> None:
        stopped.append("SIGTERM")
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):
        installed = False  # not the main thread: the caller stops us by cancelling
    try:
        return await task
    except asyncio.CancelledError:
        if not stopped:
            raise
        from lakeshift.model import RunResult, SyncResult

        return SyncResult(job.name, RunResult(0), passes=0, stopped_by="SIGTERM")
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


async def follow_schedule(db: ControlDB, job: Job, schedule: Any,
                          one_pass: Callable[[], Coroutine[Any, Any, Any]],
                          on_pass: Callable[[Any], None] | None, lease_s: float) -> Any:
    """Run ``one_pass`` at the schedule's times until SIGINT or SIGTERM.

    One scheduler per job: its lease (``lakeshift_schedules``) is taken first, renewed
    while it waits and while a pass runs, and a second scheduler is refused.  A signal
    during a pass cancels it: its partitions go back to pending and their windows are
    recorded as interrupted (not advanced: the next pass looks at each again from its
    start, not from a cursor); during the wait it simply ends.  The result is the last
    pass's, with ``stopped_by`` set to the signal's name.
    """
    import signal
    from datetime import UTC

    from lakeshift.engine.jobrunner import owner_id

    call = asyncio.to_thread
    owner = owner_id()
    held = await call(db.acquire_schedule, job.id, owner, schedule.text, lease_s,
                      socket.gethostname())
    if held is not None:
        raise UsageError(f"job {job.name!r} already has a scheduler ({held}): stop it first, "
                         "or run one pass with `lakeshift sync --job` and no schedule")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped_by: list[str] = []
    current: list[asyncio.Task[Any]] = []

    def on_signal(name: str) -> None:
        if not stopped_by:
            stopped_by.append(name)
        stop.set()
        for t in current:
            t.cancel()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: the caller stops us by cancelling
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
        for sig in installed:
            loop.remove_signal_handler(sig)
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
