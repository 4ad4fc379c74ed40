"""A sync pass takes SIGINT/SIGTERM only when nobody else did, and gives them back
(issue 10): a program that embeds lakeshift keeps its own handlers."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.control.records import Job
from lakeshift.engine.schedule import follow_schedule, run_once
from lakeshift.model import RunResult, SyncResult
from lakeshift.plan.windows import Schedule

JOB = Job(1, "j", "dst", {}, None, datetime.now(UTC))


@pytest.fixture(autouse=True)
def _handlers_back() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _result() -> SyncResult:
    return SyncResult("j", RunResult(0), passes=1)


def test_sigterm_is_taken_from_the_default_and_given_back() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    during: list[Any] = []

    async def one_pass() -> SyncResult:
        during.append(signal.getsignal(signal.SIGTERM))
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(5)
        return _result()

    result = asyncio.run(run_once(JOB, one_pass))
    assert result.stopped_by == "SIGTERM"  # the pass was cancelled, not the process killed
    assert during[0] is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_programs_own_sigterm_handler_is_kept() -> None:
    heard: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        heard.append(signum)

    signal.signal(signal.SIGTERM, mine)

    async def one_pass() -> SyncResult:
        assert signal.getsignal(signal.SIGTERM) is mine
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        return _result()

    result = asyncio.run(run_once(JOB, one_pass))
    assert result.stopped_by is None and heard == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is mine


def _scheduled(tmp_path: Path, one_pass: Any) -> tuple[SyncResult, Any, Any]:
    """follow_schedule inside asyncio.run; the SIGINT handler before it and after it."""
    from lakeshift.control.repository import ControlDB

    src = tmp_path / "src"
    src.mkdir()
    db = f"sqlite:///{tmp_path}/c.db"
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="j", db=db)

    async def main() -> tuple[SyncResult, Any, Any]:
        control = ControlDB(db)
        try:
            before = signal.getsignal(signal.SIGINT)
            r = await follow_schedule(control, control.job("j"), Schedule.parse("1h", None),
                                      one_pass, None, 30.0)
            return r, before, signal.getsignal(signal.SIGINT)
        finally:
            control.close()

    return asyncio.run(main())


def test_asyncio_runs_sigint_handler_is_taken_and_given_back(tmp_path: Path) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)

    async def one_pass() -> SyncResult:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(5)
        return _result()

    result, before, after = _scheduled(tmp_path, one_pass)
    assert result.stopped_by == "SIGINT"
    # asyncio.run's own (it cancels the main task on Ctrl-C), not the default left behind.
    assert before is not signal.default_int_handler and after is before


def test_a_programs_own_sigint_handler_is_kept_by_a_schedule(tmp_path: Path) -> None:
    heard: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        heard.append(signum)

    signal.signal(signal.SIGINT, mine)
    passes: list[int] = []

    async def one_pass() -> SyncResult:
        passes.append(1)
        assert signal.getsignal(signal.SIGINT) is mine
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # still taken (default): ends the schedule
        await asyncio.sleep(5)
        return _result()

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    result, before, after = _scheduled(tmp_path, one_pass)
    assert result.stopped_by == "SIGTERM" and heard == [signal.SIGINT]
    assert before is mine and after is mine
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
