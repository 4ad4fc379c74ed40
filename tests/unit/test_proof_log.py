"""The --proof-log writer (engine/proof_log.py): rows as objects finish, written by a
thread of their own, appended, the keys the events name, and clear refusals."""

from __future__ import annotations

import csv
import os
import re
import threading
import time
from pathlib import Path

import pytest

from lakeshift.engine.events import EventBus, ObjectDone, ObjectStarted
from lakeshift.engine.proof_log import FIELDS, ProofLog
from lakeshift.errors import UsageError


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


def test_a_full_queue_waits_for_the_writer_and_drops_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = ProofLog.open(path, depth=2)
    for i in range(50):
        log(_done(f"k{i}"))
    log.close()
    assert [r[1] for r in _rows(path)[1:]] == [f"k{i}" for i in range(50)]


def test_a_stalled_disk_holds_the_caller_at_depth_rows_behind(tmp_path: Path) -> None:
    """Back-pressure: while the writer is stuck on a flush, the caller hands over at most
    ``depth`` more rows and then waits in the call (memory stays bounded); once the disk
    moves again every row is written, in order."""
    gate = threading.Event()

    fh = GatedFile(gate, 10)
    log = ProofLog(fh, tmp_path / "log.csv", created=False, depth=2)  # type: ignore[arg-type]
    log.start()
    handed: list[int] = []

    def loop() -> None:
        for i in range(10):
            log(_done(f"k{i}"))
            handed.append(i)

    caller = threading.Thread(target=loop)
    caller.start()
    time.sleep(0.3)
    # One row in the writer's stalled flush, two queued, the fourth call waiting.
    assert len(handed) <= 3 and len(log._pending) <= 3, (handed, len(log._pending))
    gate.set()
    caller.join(10)
    log.close()
    assert handed == list(range(10))
    assert [line.split(",")[1] for line in fh.lines] == [f"k{i}" for i in range(10)]


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
