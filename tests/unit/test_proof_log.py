"""The --proof-log writer (engine/proof_log.py): rows as objects finish, written by a
thread of their own, appended, the keys the events name, and clear refusals."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import re
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from lakeshift.engine.events import EventBus, ObjectDone, ObjectStarted
from lakeshift.engine.proof_log import FIELDS, ProofLog
from lakeshift.errors import UsageError

T = TypeVar("T")


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def _done(key: str, size: int = 1, proof: str | None = "source-md5", attempts: int = 1,
          dest: str | None = None) -> ObjectDone:
    """A copied object's event, naming where it was written (``dest``: ``d/`` + key)."""
    return ObjectDone(key, size, "copied", attempts=attempts, proof=proof,
                      dest_key=dest if dest is not None else "d/" + key)


def _soon(check: object, timeout: float = 5.0) -> None:
    """Wait until ``check()`` holds (the writer thread's row reaches the disk)."""
    end = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < end, "not written in time"
        time.sleep(0.001)


def test_a_row_per_copied_object_flushed_as_it_finishes(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = ProofLog.open(path)
    log(ObjectDone("raw/a.csv", 10, "copied", proof="source-md5", dest_key="landing/a.csv"))
    # On disk before the log is closed (a killed run keeps it), written by its thread.
    _soon(lambda: len(_rows(path)) == 2)
    assert [r[1:] for r in _rows(path)[1:]] == [
        ["raw/a.csv", "landing/a.csv", "10", "source-md5", "1"]]
    log(ObjectDone("raw/b.csv", 5, "skipped", reason="identical"))
    log(ObjectDone("raw/c.csv", 5, "failed", "missing", "gone"))
    # A dry run's "copied" names no destination: nothing was written, no row.
    log(ObjectDone("raw/dry.csv", 5, "copied"))
    # The key the object was written under, as the event names it (a renamed one too).
    log(ObjectDone("raw/d\\e", 7, "copied", attempts=2, proof="multipart-etag",
                   dest_key="landing/d%5Ce"))
    log(ObjectDone("raw/dir/", 0, "copied", dest_key="landing/dir/"))
    log.close()
    rows = _rows(path)
    assert tuple(rows[0]) == FIELDS
    assert [r[1:] for r in rows[1:]] == [
        ["raw/a.csv", "landing/a.csv", "10", "source-md5", "1"],
        ["raw/d\\e", "landing/d%5Ce", "7", "multipart-etag", "2"],
        ["raw/dir/", "landing/dir", "0", "folder", "1"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r[0]) for r in rows[1:])
    assert log.rows == log.written == 3


def test_the_log_asks_for_object_done_only(tmp_path: Path) -> None:
    """It ignores every other event, so a bus with it alone builds no ObjectStarted."""
    log = ProofLog.open(tmp_path / "log.csv")
    assert EventBus([log]).ignored >= {ObjectStarted}
    assert ObjectDone not in EventBus([log]).ignored
    log.close()


def test_a_bus_asks_its_subscribers_and_a_bus_it_feeds_whether_they_hold() -> None:
    """EventBus.held: what the engine asks before each object.  A bus whose subscribers
    have no ``held`` is not ``holding`` (the engine then asks nothing); one that holds is
    awaited, then asked again, until it lets go; a run's partition bus feeding the run's
    bus (its ``emit`` a subscriber) holds as that bus does."""
    waits: list[int] = []

    class Holder:
        def __call__(self, event: object) -> None:
            pass

        def held(self) -> Awaitable[None] | None:
            return asyncio.sleep(0, waits.append(1)) if len(waits) < 2 else None

    from unittest import mock

    assert not EventBus([print]).holding and not EventBus([EventBus([print]).emit]).holding
    assert not EventBus([mock.MagicMock()]).holding  # (its made-up ``held`` is no hold)
    totals = EventBus([print, Holder()])
    partition = EventBus([print, totals.emit])
    assert totals.holding and partition.holding
    asyncio.run(partition.room())
    assert waits == [1, 1] and partition.held() is None


class GatedFile:
    """A log file whose every flush waits on ``gate`` (at most ``seconds``): a slow or a
    stalled disk."""

    def __init__(self, gate: threading.Event, seconds: float) -> None:
        self.gate, self.seconds = gate, seconds
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        self.gate.wait(self.seconds)

    def close(self) -> None:
        pass


def test_a_slow_disk_does_not_hold_the_event_loop(tmp_path: Path) -> None:
    """The loop hands rows over; the thread writes and flushes each (here a flush takes
    50 ms): a hundred rows cost the caller far less than one flush, and all are written
    by close."""
    gate = threading.Event()

    fh = GatedFile(gate, 0.05)
    log = ProofLog(fh, tmp_path / "log.csv", created=False)  # type: ignore[arg-type]
    log.start()
    began = time.perf_counter()
    for i in range(100):
        log(_done(f"k{i}"))
    handed_over = time.perf_counter() - began
    assert handed_over < 0.05, handed_over
    gate.set()
    log.close()
    assert len(fh.lines) == 100 and fh.lines[-1].split(",")[1:3] == ["k99", "d/k99"]


async def _longest_block(work: Awaitable[T], tick: float = 0.002) -> tuple[float, T]:
    """``work``'s result and the longest the event loop was held while it ran: the longest
    gap (beyond ``tick``) between the ticks of a coroutine that asks to run every ``tick``
    seconds (a lease's heartbeat, a progress display, Ctrl-C handling)."""
    longest = 0.0
    done = False

    async def beat() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(tick)
            now = time.perf_counter()
            longest = max(longest, now - last - tick)
            last = now

    beating = asyncio.create_task(beat())
    try:
        result = await work
    finally:
        done = True
        await beating
    return longest, result


async def _objects(log: ProofLog, n: int, behind: list[int] | None = None) -> None:
    """What the engine does per object: wait for room, then (copied) hand the row over."""
    for i in range(n):
        await log.room()
        await asyncio.sleep(0)  # (the object's requests)
        log(_done(f"k{i}"))
        if behind is not None:
            behind.append(len(log._pending))


def test_a_full_queue_holds_new_objects_and_drops_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = ProofLog.open(path, depth=2)
    asyncio.run(_objects(log, 50))
    log.close()
    assert [r[1] for r in _rows(path)[1:]] == [f"k{i}" for i in range(50)]


def test_a_slow_disk_slows_the_objects_and_every_row_is_written(tmp_path: Path) -> None:
    """A flush of 3 ms, 200 rows, at most 4 behind: new objects wait for room (the queue
    never grows past its depth), the copy takes longer than the stall limit (0.2 s) and is
    not stopped (a limit on the time without progress, not on the whole), and every row is
    written, in order."""
    gate = threading.Event()
    fh = GatedFile(gate, 0.003)
    log = ProofLog(fh, tmp_path / "log.csv", created=False, depth=4,  # type: ignore[arg-type]
                   stall=0.2)
    log.start()
    behind: list[int] = []
    began = time.monotonic()
    asyncio.run(_objects(log, 200, behind))
    took = time.monotonic() - began
    log.close()
    assert took > 0.4, took  # (200 flushes of 3 ms: well past the stall limit)
    assert max(behind) <= 4, max(behind)
    assert [line.split(",")[1] for line in fh.lines] == [f"k{i}" for i in range(200)]
    assert log.rows == log.written == 200


def test_a_stalled_disk_stops_the_command_and_never_holds_the_loop(tmp_path: Path) -> None:
    """The writer is stuck in a flush (for 30 s here, for ever on a hung mount): new
    objects wait for room without holding the event loop (a heartbeat every 2 ms keeps
    beating: before, the loop slept in the subscriber until the flush returned, 30 s), the
    queue stays at its depth, and after the stall limit (0.5 s) of no row written the
    command is stopped (``on_failure``, once) with one UsageError naming the file.  Closing
    (the command stopping) does not wait for the stuck flush either."""
    gate = threading.Event()
    fh = GatedFile(gate, 30)
    path = tmp_path / "log.csv"
    log = ProofLog(fh, path, created=False, depth=4, stall=0.5)  # type: ignore[arg-type]
    log.start()
    stops: list[int] = []
    log.on_failure = lambda: stops.append(1)
    behind: list[int] = []

    async def copy() -> BaseException | None:
        try:
            await _objects(log, 100, behind)
        except UsageError as e:
            return e
        return None

    try:
        began = time.monotonic()
        longest, error = asyncio.run(_longest_block(copy()))
        took = time.monotonic() - began
        assert isinstance(error, UsageError), error
        assert str(error).startswith(f"cannot write the --proof-log {path}: no row written "
                                     "for 0.5 s (its disk stalled); stopped after 0 logged "
                                     "objects ("), str(error)
        assert re.search(r"\((\d+) more copied without a row\)$", str(error)), str(error)
        assert 0.5 <= took < 3, took
        assert stops == [1]
        assert longest < 0.25, longest  # (the machine's load: scheduling, not the log)
        assert len(behind) <= 5 and max(behind) <= 4, behind  # 1 in the flush, 4 queued
        began = time.monotonic()
        log.close(discard=True)
        assert time.monotonic() - began < 0.5
        with pytest.raises(UsageError, match="its disk stalled"):
            asyncio.run(log.room())  # any later object: refused
    finally:
        gate.set()


def test_closing_gives_up_on_a_stalled_disk_after_the_stall_limit(tmp_path: Path) -> None:
    """The last rows queued when the command ends, and the disk stalls: close waits for
    the stall limit without a row written, not for ever, and says so (a slow disk it
    waits out)."""
    gate = threading.Event()
    fh = GatedFile(gate, 30)
    path = tmp_path / "log.csv"
    log = ProofLog(fh, path, created=False, stall=0.3)  # type: ignore[arg-type]
    log.start()
    try:
        for i in range(3):
            log(_done(f"k{i}"))
        began = time.monotonic()
        with pytest.raises(UsageError, match=re.escape(
                f"--proof-log {path}: no row written for 0.3 s (its disk stalled); "
                "stopped after 0 logged objects (3 more copied without a row)")):
            log.close()
        assert 0.3 <= time.monotonic() - began < 3
    finally:
        gate.set()
    slow = GatedFile(threading.Event(), 0.05)
    log = ProofLog(slow, path, created=False, stall=0.3)  # type: ignore[arg-type]
    log.start()
    for i in range(10):  # 0.5 s of flushes: past the limit, never without progress
        log(_done(f"k{i}"))
    log.close()
    assert len(slow.lines) == 10


def test_rows_are_appended_under_one_header(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    for key in ("a", "b"):
        log = ProofLog.open(path)
        log(_done(key, proof="read-md5"))
        log.close()
    rows = _rows(path)
    assert tuple(rows[0]) == FIELDS and [r[1:3] for r in rows[1:]] == [["a", "d/a"],
                                                                       ["b", "d/b"]]


def test_refusals_are_one_usage_error_and_touch_nothing(tmp_path: Path) -> None:
    other = tmp_path / "notes.csv"
    other.write_text("name,size\nx,1\n")
    with pytest.raises(UsageError, match="not a lakeshift proof log"):
        ProofLog.open(other)
    assert other.read_text() == "name,size\nx,1\n"
    with pytest.raises(UsageError, match="is a folder"):
        ProofLog.open(tmp_path)
    with pytest.raises(UsageError, match="cannot write the --proof-log"):
        ProofLog.open(tmp_path / "no" / "such" / "log.csv")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(UsageError, match="Permission denied"):
            ProofLog.open(ro / "log.csv")


def test_a_failed_write_stops_the_copy_with_a_usage_error(tmp_path: Path) -> None:
    """The thread's failed write is said on the loop at the next object (which stops the
    command), or by close when no object came after it."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    for more in (True, False):
        log = ProofLog(open("/dev/full", "w", newline=""), Path("/dev/full"),  # noqa: SIM115
                       created=False)
        log.start()
        log(_done("a"))
        _soon(lambda log=log: log._error is not None)  # type: ignore[misc]
        if more:
            with pytest.raises(UsageError, match=r"No space left on device.*after 0 logged"):
                log(_done("b"))
            log.close(discard=True)  # stopping anyway: said once, above
        else:
            with pytest.raises(UsageError, match=r"No space left on device.*after 0 logged"):
                log.close()


def test_a_header_that_cannot_be_written_is_one_usage_error(tmp_path: Path) -> None:
    """/dev/full passes the path's check (an empty file that opens for appending), then
    the header's write fails: a UsageError naming the file, not the OSError of closing it
    (which flushes the unwritten header again: an internal error before)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    ProofLog.check("/dev/full")
    with pytest.raises(UsageError, match="cannot write the --proof-log /dev/full: No space"):
        ProofLog.open("/dev/full")


def test_a_name_ending_in_a_slash_is_a_folder_not_a_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``--proof-log logs/`` names a folder (Path() would drop the slash and write a file
    ``logs``): refused, nothing made."""
    monkeypatch.chdir(tmp_path)
    for check in (ProofLog.check, ProofLog.open):
        with pytest.raises(UsageError, match="logs/ names a folder"):
            check("logs/")
    assert list(tmp_path.iterdir()) == []


def test_a_log_created_for_a_copy_that_never_began_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    ProofLog.open(path).close(discard=True)
    assert not path.exists()
    log = ProofLog.open(path)
    log(_done("a"))
    log.close(discard=True)  # it holds a row: kept
    assert len(_rows(path)) == 2


def test_an_empty_file_that_was_there_gets_the_header_and_is_never_removed(
        tmp_path: Path) -> None:
    """``touch log.csv`` first (or /dev/null, /dev/stdout: empty too): the header goes in,
    and a copy that stops before its first row leaves the file where it was."""
    path = tmp_path / "log.csv"
    path.touch()
    ProofLog.open(path).close(discard=True)
    assert path.exists() and tuple(_rows(path)[0]) == FIELDS
    log = ProofLog.open(path)  # now a log: appended, no 2nd header
    log(_done("a"))
    log.close()
    assert len(_rows(path)) == 2


def test_keys_a_spreadsheet_would_evaluate_are_written_as_text(tmp_path: Path) -> None:
    """As in the failures CSV: a key starting = + - @ ' gets one leading apostrophe
    (one taken off gives the key back), so opening the log never runs a formula."""
    path = tmp_path / "log.csv"
    log = ProofLog.open(path)
    for key in ("=SUM(1+1).csv", "@x", "'quoted", "plain=1"):
        log(_done(key, dest=key))
    log.close()
    assert [r[1:3] for r in _rows(path)[1:]] == [
        ["'=SUM(1+1).csv", "'=SUM(1+1).csv"], ["'@x", "'@x"], ["''quoted", "''quoted"],
        ["plain=1", "plain=1"]]


def test_check_refuses_what_open_refuses_and_changes_nothing(tmp_path: Path) -> None:
    """A dry run checks --proof-log as a run would, creating and changing nothing."""
    ProofLog.check(tmp_path / "new.csv")
    assert not (tmp_path / "new.csv").exists()
    with pytest.raises(UsageError, match="is a folder: name a file in it"):
        ProofLog.check(tmp_path)
    with pytest.raises(UsageError, match=re.escape(
            f"No such file or directory: create the folder {tmp_path / 'nodir'} first")):
        ProofLog.check(tmp_path / "nodir" / "x.csv")
    with pytest.raises(UsageError, match="needs a file name"):
        ProofLog.check("")
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    with pytest.raises(UsageError, match="is not a lakeshift proof log"):
        ProofLog.check(other)
    assert other.read_text() == "my notes\n"
    log = tmp_path / "log.csv"
    ProofLog.open(log).close()
    before = log.read_bytes()
    ProofLog.check(log)
    assert log.read_bytes() == before


def test_a_dry_run_checks_the_proof_log_path(tmp_path: Path) -> None:
    import lakeshift

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x")
    with pytest.raises(UsageError, match="is a folder"):
        lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "dst"), dry_run=True,
                       proof_log=tmp_path)
    lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "dst"), dry_run=True,
                   proof_log=tmp_path / "log.csv")
    assert not (tmp_path / "log.csv").exists()


class _WatchedFile(GatedFile):
    """A slow disk (each flush ``seconds``) that notes how many rows waited at each write."""

    log: ProofLog | None = None
    most = 0

    def write(self, text: str) -> int:
        if self.log is not None:
            self.most = max(self.most, len(self.log._pending))
        return super().write(text)


def _slow_log(monkeypatch: pytest.MonkeyPatch, seconds: float, depth: int,
              stall: float | None = None) -> list[_WatchedFile]:
    """``ProofLog.open`` made to write to a slow disk (the files it opened, listed)."""
    opened: list[_WatchedFile] = []

    def slow_open(cls: type[ProofLog], path: str | Path, depth_: int | None = None) -> ProofLog:
        fh = _WatchedFile(threading.Event(), seconds)
        log = cls(fh, Path(path), True, depth, stall)  # type: ignore[arg-type]
        fh.log = log
        opened.append(fh)
        log.start()
        return log

    monkeypatch.setattr(ProofLog, "open", classmethod(slow_open))
    return opened


def _tree(root: Path, n: int) -> None:
    for i in range(n):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"f{i:03d}").write_bytes(b"x")


def test_a_copy_and_a_run_hold_new_objects_while_a_slow_log_is_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the engine (pipeline → EventBus.room → ProofLog.room; a run's partitions
    through the run's bus): with the writer 4 rows behind no more objects start, so the
    rows waiting stay within 4 and one per object in flight, and every row is written."""
    import lakeshift

    _tree(tmp_path / "src", 80)
    opened = _slow_log(monkeypatch, 0.003, depth=4)
    r = lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "dst"), concurrency=8,
                       proof_log=tmp_path / "log.csv")
    assert r.stats.copied == 80
    fh = opened[-1]
    assert len(fh.lines) == 80 and fh.most <= 4 + 8, fh.most
    db = f"sqlite:///{tmp_path}/c.db"
    lakeshift.plan(str(tmp_path / "src"), str(tmp_path / "dst2"), job="j", db=db,
                   prefix=["d0/", "d1/"])
    run = lakeshift.run(job="j", db=db, batch_count=2, concurrency=8,
                        proof_log=tmp_path / "log.csv")
    assert run.stats.copied == 80
    fh = opened[-1]
    assert len(fh.lines) == 80 and fh.most <= 4 + 8, fh.most


def test_a_copy_onto_a_stalled_log_stops_with_one_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log's disk stalls (a flush that does not return for 30 s): the copy's event
    loop keeps running (a heartbeat every 2 ms), and after the stall limit the copy stops
    with the log's UsageError, not a hang, nor a loop held for the stall."""
    import lakeshift

    _tree(tmp_path / "src", 60)
    opened = _slow_log(monkeypatch, 30, depth=4, stall=0.5)
    try:
        began = time.monotonic()

        async def copy() -> BaseException | None:
            try:
                await lakeshift.copy_async(str(tmp_path / "src"), str(tmp_path / "dst"),
                                           concurrency=4, proof_log=tmp_path / "log.csv")
            except UsageError as e:
                return e
            return None

        longest, error = asyncio.run(_longest_block(copy()))
        assert isinstance(error, UsageError) and "its disk stalled" in str(error), error
        assert time.monotonic() - began < 10
        assert longest < 0.25, longest  # (was the flush's 30 s)
        assert opened[-1].most <= 4 + 4
    finally:
        opened[-1].gate.set()


_STALL_LIMIT_SHORT = """\
import sys
from lakeshift.engine import proof_log
from lakeshift.stores import http
http.STALL_SECONDS = 0.5
proof_log.DEPTH = 4
from lakeshift.cli.app import main
sys.argv[0] = "lakeshift"
sys.exit(main())
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/proc").is_dir(), reason="Linux")
def test_the_cli_stops_on_a_stalled_log_with_one_line_and_exit_2(tmp_path: Path) -> None:
    """A real stall: the log is a pipe whose reader never reads (a hung mount writes so),
    its buffer shrunk to a page.  ``lakeshift copy`` stops after the stall limit (0.5 s
    here) with one line naming the file, exit 2, no traceback."""
    import fcntl
    import subprocess
    import sys

    from tests.e2e.cli import one_clear_line

    _tree(tmp_path / "src", 400)
    fifo = tmp_path / "log.csv"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # there, never reading
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(reader, 1031, 4096)  # F_SETPIPE_SZ: ~100 rows fill it
        began = time.monotonic()
        p = subprocess.run([sys.executable, "-c", _STALL_LIMIT_SHORT, "copy",
                            str(tmp_path / "src"), str(tmp_path / "dst"), "--concurrency",
                            "4", "--progress", "none", "--proof-log", str(fifo)],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 2, p.stderr
        line = one_clear_line(p)
        assert f"cannot write the --proof-log {fifo}: no row written for 0.5 s" in line, line
        assert "its disk stalled" in line and time.monotonic() - began < 30
    finally:
        os.close(reader)


def _within(seconds: float, call: object, unblock: object = None) -> object:
    """``call()``'s result (or what it raised, raised), in a thread given ``seconds``: an
    open waiting for a FIFO's reader fails the test instead of hanging it (``unblock``
    then lets the thread go)."""
    out: list[object] = []

    def go() -> None:
        try:
            out.append(("ok", call()))  # type: ignore[operator]
        except BaseException as e:
            out.append(("raised", e))

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            unblock()  # type: ignore[operator]
        raise AssertionError(f"still waiting after {seconds} s")
    how, value = out[0]  # type: ignore[misc]
    if how == "raised":
        raise value  # type: ignore[misc]
    return value


def _read_once(fifo: Path) -> None:
    """Open ``fifo`` for reading and close it (lets a writer's blocking open go)."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_nobody_reads_is_refused_at_once(tmp_path: Path) -> None:
    """``mkfifo f; copy ... --proof-log f`` waited for ever (and a Ctrl-C with it) in the
    open; now one UsageError at once, for the open and a dry run's check.  The check a
    command makes before its own open does not open the FIFO (closing it would end its
    reader)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for call in (lambda: ProofLog.open(fifo), lambda: ProofLog.check(fifo, reader=True)):
        with pytest.raises(UsageError, match=f"cannot write the --proof-log {fifo}: no "
                                             "process reads it.*start the reader first"):
            _within(3, call, lambda: _read_once(fifo))
    _within(3, lambda: ProofLog.check(fifo), lambda: _read_once(fifo))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_with_a_reader_gets_the_rows(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as fh:
            got.append(fh.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    log = None
    for _ in range(500):  # until the reader has opened it
        try:
            log = ProofLog.open(fifo)
            break
        except UsageError:
            time.sleep(0.01)
    assert log is not None
    assert os.get_blocking(log.fh.fileno())  # (rows wait for the reader, never EAGAIN)
    log(_done("a"))
    log.close()
    thread.join(5)
    rows = list(csv.reader(got[0].decode().splitlines()))
    assert tuple(rows[0]) == FIELDS and rows[1][1:3] == ["a", "d/a"] and fifo.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_dry_run_refuses_a_fifo_nobody_reads_at_once(tmp_path: Path) -> None:
    import lakeshift

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UsageError, match="no process reads it"):
        _within(10, lambda: lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "dst"),
                                           dry_run=True, proof_log=fifo),
                lambda: _read_once(fifo))


def _whole(path: Path) -> list[list[str]]:
    """The log's rows, each checked whole (six cells, a time of its own form)."""
    rows = _rows(path)
    assert tuple(rows[0]) == FIELDS
    for row in rows[1:]:
        assert len(row) == len(FIELDS), row
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row[0]), row
    return rows


@pytest.mark.parametrize("cut", [1, 20, 29, 35, 48])
def test_a_half_written_last_row_is_cut_off_before_rows_are_appended(
        tmp_path: Path, cut: int) -> None:
    """A write that failed part way (a full disk) left a partial row; the next command's
    rows were appended onto it (``2026-12-02T23:2026-12-02T23:19:26.862Z,f5.bin,...``).
    The partial row is cut back to the last whole one (a key holding a newline or a quote,
    quoted, included), and the new rows start on a line of their own."""
    path = tmp_path / "log.csv"
    log = ProofLog.open(path)
    log(_done("a,\"quoted\"\nkey"))
    log.close()
    whole = path.read_bytes()
    log = ProofLog.open(path)
    log(_done("b\r\nnewline \"key\"", size=1234))
    log.close()
    path.write_bytes(path.read_bytes()[:len(whole) + cut])  # the last row's write failed
    ProofLog.check(path)  # (a check changes nothing)
    assert len(path.read_bytes()) == len(whole) + cut
    log = ProofLog.open(path)
    log(_done("c"))
    log.close()
    rows = _whole(path)
    assert [r[1] for r in rows[1:]] == ["a,\"quoted\"\nkey", "c"]
    assert path.read_bytes().startswith(whole)


def test_a_half_written_header_is_written_again(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    for partial in (b"finished_at,sou", b"finished_at,source_key,destination_key,size,"
                                        b"proof,attempts\r"):
        path.write_bytes(partial)
        log = ProofLog.open(path)
        log(_done("a"))
        log.close()
        assert [r[1] for r in _whole(path)[1:]] == ["a"]
