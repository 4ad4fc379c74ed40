"""Review of the proof log's back-pressure (session 16): the hold asked on every path that
copies, and the log closed off the event loop when a command stops."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from lakeshift.engine.proof_log import ProofLog
from tests.unit.test_proof_log import _longest_block, _slow_log, _tree


def test_a_keyed_sync_holds_new_objects_while_a_slow_log_is_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyed pass (--files-from) copies through its own driver, not run_pipeline's
    transfer: it asks the hold too, so the rows waiting stay within the depth and one per
    object in flight (they grew with every object while the disk was behind)."""
    import lakeshift

    _tree(tmp_path / "src", 80)
    keys = tmp_path / "keys.txt"
    keys.write_text("".join(f"d{i % 2}/f{i:03d}\n" for i in range(80)))
    opened = _slow_log(monkeypatch, 0.003, depth=4)
    s = lakeshift.sync(str(tmp_path / "src"), str(tmp_path / "dst"), job="s",
                       db=f"sqlite:///{tmp_path}/c.db", lag="0", files_from=keys,
                       concurrency=8, proof_log=tmp_path / "log.csv")
    assert s.exit_code == 0
    fh = opened[-1]
    assert len(fh.lines) == 80 and fh.most <= 4 + 8, fh.most


def test_a_command_stopped_during_a_stalled_flush_never_holds_the_loop_to_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (the command cancelled) while the log's disk is stuck in a flush, fewer rows
    queued than the depth (no hold met the stall): closing the log waits for the stall
    limit (1 s here) for the rows queued, off the event loop (a heartbeat every 2 ms
    keeps beating; it was held the whole second, as by close's join on the loop)."""
    import lakeshift

    _tree(tmp_path / "src", 400)
    opened = _slow_log(monkeypatch, 30, depth=1024, stall=1.0)
    try:
        async def stopped() -> None:
            copy = asyncio.create_task(lakeshift.copy_async(
                str(tmp_path / "src"), str(tmp_path / "dst"), concurrency=4,
                proof_log=tmp_path / "log.csv"))
            while not opened or len(opened[-1].lines) < 1:  # the first row: its flush stuck
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.01)  # (more rows queued behind it)
            assert not copy.done()  # (still copying: stopped, not ended)
            copy.cancel()
            with pytest.raises(asyncio.CancelledError):
                await copy

        began = time.monotonic()
        longest, _ = asyncio.run(_longest_block(stopped()))
        assert time.monotonic() - began < 10
        assert longest < 0.25, longest  # (was the stall limit: 1 s)
    finally:
        if opened:
            opened[-1].gate.set()


def test_closing_off_the_loop_still_writes_the_queued_rows_and_raises_a_failure(
        tmp_path: Path) -> None:
    """The close awaited off the loop is the same close: the queued rows are written, and
    a log that failed says so (unless discarded)."""
    from lakeshift.api.copying import _closed

    path = tmp_path / "log.csv"
    log = ProofLog.open(path)
    from tests.unit.test_proof_log import _done
    for i in range(5):
        log(_done(f"k{i}"))
    asyncio.run(_closed(log, discard=False))
    assert path.read_text().count("\n") == 6
    log = ProofLog.open(path)
    log._error = OSError(28, "No space left on device")
    from lakeshift.errors import UsageError
    with pytest.raises(UsageError, match="No space left on device"):
        asyncio.run(_closed(log, discard=False))
    log = ProofLog.open(path)
    log._error = OSError(28, "No space left on device")
    asyncio.run(_closed(log, discard=True))  # (discarded: the command stopped anyway)


def test_a_writer_that_never_drains_below_half_is_not_a_lost_wake_up(tmp_path: Path) -> None:
    """Many objects waiting at once while the writer drains row by row: every waiter goes
    on once the queue is down to half (no waiter left behind until the stall limit)."""
    gate = threading.Event()
    from tests.unit.test_proof_log import GatedFile, _done

    fh = GatedFile(gate, 0.002)
    log = ProofLog(fh, tmp_path / "log.csv", created=False, depth=8,  # type: ignore[arg-type]
                   stall=5.0)
    log.start()

    async def worker(w: int) -> None:
        for i in range(40):
            await log.room()
            await asyncio.sleep(0)
            log(_done(f"w{w}-{i}"))

    async def all_of_them() -> None:
        await asyncio.gather(*(worker(w) for w in range(16)))

    began = time.monotonic()
    asyncio.run(all_of_them())
    log.close()
    assert log.written == 640 and time.monotonic() - began < 4.5


def test_an_object_cancelled_as_the_hold_lifts_is_cancelled(tmp_path: Path) -> None:
    """Ctrl-C cancels the objects waiting for room; the writer may lift the hold in the
    same turn of the loop.  The cancel is never lost (asyncio.wait_for, before Python 3.12,
    returned the finished wait instead: the worker went on, waiting for room again until
    the stall limit, and then for items from a planner already cancelled)."""
    from tests.unit.test_proof_log import GatedFile, _done

    gate = threading.Event()
    fh = GatedFile(gate, 30)
    log = ProofLog(fh, tmp_path / "log.csv", created=False, depth=2,  # type: ignore[arg-type]
                   stall=5.0)
    log.start()

    async def main() -> None:
        for i in range(3):  # one stuck in the flush, two queued: full
            log(_done(f"k{i}"))
        waiting = asyncio.create_task(log.room())
        await asyncio.sleep(0.01)
        assert not waiting.done() and log._opened is not None
        log._opened.set()  # (as the writer's call_soon_threadsafe does) ...
        waiting.cancel()   # ... and Ctrl-C, in the same turn
        await asyncio.sleep(0.05)
        assert waiting.done(), "the cancel was lost: still waiting for room"
        assert waiting.cancelled()

    try:
        asyncio.run(main())
    finally:
        gate.set()
