"""``--proof-log FILE`` (copy, run, sync): one CSV row per object copied, appended as
each one finishes.

The summary counts objects per proof; an audit needs the proof of each object.  The log is
a subscriber of the engine's events (``ObjectDone`` of a copied object, which names where
it was written: ``dest_key``), so it costs a command nothing when not asked for and holds
nothing per object.  The keys are those of the events: the source key in its bucket or
container, and the full destination key in the destination's bucket or container (the
copy's naming applied: destination root, ``--invalid-names encode``, a folder marker kept
as a folder); for local disk, the path below the URL's folder.

Rows are written by a thread of their own, fed through a queue: the event loop only hands
over the event, and the thread writes and flushes each row as soon as it is handed over,
so a run killed at any instant keeps every row but those still queued at that instant
(normally none or a few).  An object whose row was lost so, or whose copy was in flight at
a kill or Ctrl-C (its bytes may be written, its event never emitted), is at the destination
without a row, and a rerun skips it as identical: no row for it ever (``verify
--list-verified`` proves every object).  ``close`` writes what is queued.  A row that
cannot be written (a full disk) is raised on the loop at the next object, after
``on_failure``, or by ``close``: a command whose proofs cannot be kept stops.

The event loop never waits for the disk.  When the writer is ``DEPTH`` rows behind, new
objects wait to start (``held``, which the engine asks before each object through
``EventBus.held``) while the objects in flight finish: memory stays bounded (``DEPTH`` rows
and one per object in flight) and a slow disk slows the copy down.  No row written for the
stall limit (``http.STALL_SECONDS``, as for a data transfer's connection) while rows wait
stops the command with a UsageError naming the file; a disk that is merely slow never
does.

Rows are appended: a second command into the same log adds its rows below the first's, so
the log of a migration done in several copies, runs and sync passes is one file.  A file
that is not such a log (its first line is not the header below) is refused, never appended
to.  A last row left half-written (a write that failed part way: a full disk, ``ulimit
-f``) is cut off when the log is opened again, rather than ended with a newline: a row cut
short can read as a whole one with wrong values (a size or attempts cut to its first
digits), and an auditor's row must be whole or absent; its object has no row then, as an
object whose row was lost at a kill.

The log may be a FIFO or a pipe (``/dev/stdout``, ``>(gzip > log.gz)``): it is opened
without waiting for a reader (O_NONBLOCK, then blocking again), and one nobody reads is
refused at once, never waited for (a wait the event loop and a Ctrl-C could not end).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import errno
import io
import os
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO, NoReturn, TextIO

from lakeshift.csv_cells import csv_cell
from lakeshift.engine.events import EVENT_TYPES, PROOF_FOLDER, ObjectDone
from lakeshift.errors import UsageError

FIELDS = ("finished_at", "source_key", "destination_key", "size", "proof", "attempts")
#: The proof column of a copied directory (a folder marker, an empty directory): no bytes.
FOLDER = PROOF_FOLDER
#: Rows the writer may be behind by before new objects wait for it (``held``).
DEPTH = 1024
#: The header line as written (csv's lines end in CRLF).
HEADER = (",".join(FIELDS) + "\r\n").encode()


class ProofLog:
    """The log's writer and an event subscriber (``EventBus``).  ``open`` checks the file
    before anything is copied; ``close`` writes the queued rows and closes it (and removes
    a file it created when the command stopped before its first row: ``discard``)."""

    #: Only ObjectDone matters here (EventBus then need not build ObjectStarted for it).
    ignores = EVENT_TYPES - {ObjectDone}

    def __init__(self, fh: TextIO, path: Path, created: bool, depth: int | None = None,
                 stall: float | None = None) -> None:
        self.fh = fh
        self.path = path
        #: Rows handed to the writer (objects logged, written or queued).
        self.rows = 0
        #: Rows written and flushed.
        self.written = 0
        self._writer = csv.writer(fh)
        self._created = created
        self._second = -1
        self._second_text = ""
        # The hand-over: the loop appends, the thread pops (deque's append and popleft are
        # atomic); ``_wake`` is set by the loop only when the thread may be asleep, so a
        # row costs the loop an append, not a lock and a wake-up (callgrind, the loop's
        # thread: 3.1K instructions a row; 10.5K through a queue.Queue; 44K when the loop
        # wrote and flushed the row itself).
        self._pending: deque[tuple[float, ObjectDone]] = deque()
        #: (``DEPTH`` when None, read here: tests make it small.)
        self._depth = depth = depth if depth is not None else DEPTH
        #: Seconds without a row written, while rows wait, that stop the command (None:
        #: ``http.STALL_SECONDS``, read when it is needed).
        self._stall = stall
        self._wake = threading.Event()
        # The hold (``held``): objects wait on ``_opened`` (an asyncio.Event of ``_loop``)
        # with ``_wanted`` set; the thread sets it, through the loop, once it has taken the
        # queue down to ``_low`` rows (not once per row: a wake-up per DEPTH/2 rows).
        self._low = depth // 2
        self._wanted = False
        self._opened: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stalled = False
        self._abandoned = False
        self._closing = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        #: Called once, on the loop, when a row could not be written: what stops the whole
        #: command (the API cancels it; a run's partitions would each fail on their own).
        self.on_failure: Callable[[], object] | None = None
        #: Taken by the command that closes it (``api.copying._proofs``): a log opened
        #: before (``sync``'s) is the opener's to close until then.
        self.taken = False

    @classmethod
    def open(cls, path: str | Path, depth: int | None = None) -> ProofLog:
        """Open ``path`` for appending (a new file gets the header) and start its writer; a
        path that cannot be written, or a file that is not a proof log, is a UsageError
        naming it.  A FIFO (or a pipe: ``/dev/stdout``, ``>(gzip > log.gz)``) is opened at
        once when a process reads it, and refused at once when none does: the open never
        waits for a reader.  A last row left half-written (a write that failed: a full
        disk, ``ulimit -f``) is cut off, so the rows appended now start on a line of their
        own and every row of the log is whole."""
        path = cls._path(path)
        try:
            created, empty, cut = cls._inspect(path)
            fh = cls._append(path)
            if cut is not None:
                try:
                    os.ftruncate(fh.fileno(), cut)
                except BaseException:
                    fh.close()
                    raise
                empty = cut == 0  # (only a header was there, and not whole)
        except OSError as e:
            raise cls._unwritable(path, e) from None
        log = cls(fh, path, created, depth)
        if empty:  # new, or empty: the header first
            try:
                log._writer.writerow(FIELDS)
                fh.flush()
            except OSError as e:
                # Closing flushes the unwritten header again, and fails again: the first
                # error is the one said.  A file made here for the header is removed.
                with contextlib.suppress(OSError):
                    fh.close()
                if created:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                raise cls._unwritable(path, e) from None
        log.start()
        return log

    @classmethod
    def _inspect(cls, path: Path) -> tuple[bool, bool, int | None]:
        """(created, empty, cut) of the file at ``path``, refusing a folder or a file that
        is no proof log: ``created`` when there is none yet, ``empty`` when it has no byte
        (a new file, a FIFO, /dev/null), ``cut`` the size to cut it back to when its last
        row is not whole (None when it is)."""
        if path.is_dir():
            raise UsageError(f"--proof-log {path} is a folder: name a file in it")
        # Only a file this log makes is its to remove (``close(discard=True)``): an
        # empty one that was there (``touch``ed, or /dev/null, /dev/stdout) is not.
        created = not path.exists()
        if created or path.stat().st_size == 0:
            return created, True, None
        with open(path, "rb") as old:
            start = old.read(len(HEADER))
            if len(start) < len(HEADER) and b"\n" not in start and HEADER.startswith(start):
                return created, False, 0  # a header whose write failed part way
            old.seek(0)
            text = io.TextIOWrapper(old, newline="", encoding="utf-8", errors="replace")
            first = next(csv.reader(text), [])
            if tuple(first) != FIELDS:
                raise UsageError(f"--proof-log {path} is not a lakeshift proof log (its "
                                 "first line is not the log's header): choose another "
                                 "file; rows are only appended to a proof log")
            text.detach()
            size = old.seek(0, os.SEEK_END)
            old.seek(max(0, size - TAIL))
            if _last_row_whole(old.read()):
                return created, False, None
            cut = _last_row_end(old)
            return created, False, None if cut == size else cut

    @staticmethod
    def _append(path: Path) -> TextIO:
        """``path`` opened for appending, without waiting for a FIFO's reader (O_NONBLOCK:
        no reader is ENXIO at once; the writes then block as any file's)."""
        nonblock = getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | nonblock, 0o666)
        try:
            if nonblock:
                os.set_blocking(fd, True)
            # A name that is not valid UTF-8 (a local file's raw bytes) is written escaped.
            return open(fd, "a", newline="", encoding="utf-8", errors="backslashreplace")
        except BaseException:
            os.close(fd)
            raise

    def start(self) -> None:
        self._thread = threading.Thread(target=self._write_rows, daemon=True,
                                        name="lakeshift-proof-log")
        self._thread.start()

    @classmethod
    def check(cls, path: str | Path, reader: bool = False) -> None:
        """What :meth:`open` would refuse, creating and changing nothing (a dry run checks
        its command line so).  A FIFO is not opened unless ``reader`` (a dry run: a FIFO
        nobody reads is refused): its reader would see the end of the stream when it is
        closed again, and the command's own open would find nobody reading it."""
        path = cls._path(path)
        try:
            if path.is_dir() or (path.exists() and path.stat().st_size > 0):
                cls._inspect(path)  # refuses a folder or a file that is no log
                with open(path, "a", encoding="utf-8"):
                    pass
            elif path.is_fifo() and not reader:
                if not os.access(path, os.W_OK):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            elif path.exists():  # empty: opened for appending, which changes nothing
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND
                                 | getattr(os, "O_NONBLOCK", 0)))
            elif not path.parent.is_dir():
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            elif not os.access(path.parent, os.W_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        except OSError as e:
            raise cls._unwritable(path, e) from None

    @staticmethod
    def _path(path: str | Path) -> Path:
        if not str(path).strip():
            raise UsageError("--proof-log needs a file name (e.g. --proof-log proofs.csv)")
        text = str(path)
        if text.endswith(("/", os.sep)) and not os.path.isdir(text):
            # Path() drops the slash: it would write a file of the folder's name.
            raise UsageError(f"--proof-log {text} names a folder (it ends in /): name a file "
                             f"in it (e.g. --proof-log {text}proofs.csv)")
        return Path(path)

    @staticmethod
    def _unwritable(path: Path, e: OSError) -> UsageError:
        if e.errno == errno.ENXIO:  # a FIFO (or a socket) opened with nobody reading it
            return UsageError(f"cannot write the --proof-log {path}: no process reads it (a "
                              "FIFO takes rows only while its reader runs): start the reader "
                              f"first (e.g. `gzip < {path} > proofs.csv.gz &`)")
        fix = (f": create the folder {path.parent} first"
               if e.errno == errno.ENOENT and not path.parent.is_dir() else
               ": choose a file you can write")
        return UsageError(f"cannot write the --proof-log {path}: {e.strerror or e}{fix}")

    def __call__(self, event: object) -> None:
        """On the event loop: hand a copied object's event to the writer (its time taken
        now).  A dry run's "copied" (nothing written: no ``dest_key``) is no row."""
        if type(event) is ObjectDone and event.outcome == "copied" \
                and event.dest_key is not None:
            if self._error is not None:
                self.rows += 1  # (copied, no row: counted in what the failure says)
                self._stop()
            self._pending.append((time.time(), event))
            self.rows += 1
            if not self._wake.is_set():
                self._wake.set()

    def _stop(self) -> NoReturn:
        """The log cannot be kept: stop the whole command (``on_failure``, once) and raise
        what it says."""
        stop, self.on_failure = self.on_failure, None
        if stop is not None:
            stop()
        raise self.failure()

    def held(self) -> Awaitable[None] | None:
        """Asked by the engine before each object starts (``EventBus.held``): None unless
        the writer is ``DEPTH`` rows behind (or the log failed); then what waits, without
        holding the event loop, until it has taken the queue down to half, and raises
        (stopping the command, as a failed write does) when the log failed or no row was
        written for the stall limit while rows waited."""
        if len(self._pending) < self._depth and self._error is None:
            return None
        return self._held()

    async def room(self) -> None:
        """Wait while the log holds new objects back (``held``)."""
        wait = self.held()
        if wait is not None:
            await wait

    async def _held(self) -> None:
        from lakeshift.stores import http

        stall = self._stall if self._stall is not None else http.STALL_SECONDS
        pending = self._pending
        while self._error is None and len(pending) >= self._depth:
            opened = self._opened
            if opened is None:
                self._loop = asyncio.get_running_loop()
                opened = self._opened = asyncio.Event()
            opened.clear()
            self._wanted = True  # then look again: the thread may have passed low before
            if len(pending) <= self._low:
                break
            seen = self.written
            try:
                # (asyncio.timeout, not wait_for: before Python 3.12 wait_for returned the
                # wait finished in the turn a cancel came, and the cancel (Ctrl-C) was lost.)
                async with asyncio.timeout(stall):
                    await opened.wait()
            except TimeoutError:
                if self.written == seen and self._error is None and pending:
                    self._stalled = True
                    self._error = self._stall_error(stall)
        if self._error is not None:
            self._stop()

    def _write_rows(self) -> None:
        """The writer thread: each row written and flushed as it comes, until ``close``
        (after a failed write the rows are dropped: the command stops)."""
        pending, wake = self._pending, self._wake
        while True:
            wake.clear()  # before looking: a row appended after this sets it again
            closing = self._closing  # before draining: every row of the command is in
            while pending:
                item = pending.popleft()
                if self._error is None:
                    try:
                        self._writer.writerow(self._cells(*item))
                        self.fh.flush()
                        self.written += 1
                    except Exception as e:  # a full disk, an I/O error: said on the loop
                        self._error = e
                if self._wanted and (len(pending) <= self._low or self._error is not None):
                    self._open()
            if closing:
                if self._abandoned:  # close gave up on a stalled flush: the file is ours
                    with contextlib.suppress(OSError):
                        self.fh.close()
                return
            wake.wait()

    def _open(self) -> None:
        """On the writer thread: let the objects that wait for room go (or raise)."""
        self._wanted = False
        loop, opened = self._loop, self._opened
        if loop is not None and opened is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(opened.set)

    def _cells(self, now: float, event: ObjectDone) -> list[object]:
        dest = event.dest_key or ""
        if event.proof is None:
            # (A folder's ObjectDone names the key transfer.copy_marker wrote: ``dir`` for
            # a directory or a marker blob, ``dir/`` for an S3 folder object.)
            dest = dest.rstrip("/")
        # Keys as text a spreadsheet never evaluates (csv_cells: one leading apostrophe
        # added to a key starting = + - @ ' or a tab or CR).
        return [self._time(now), csv_cell(event.key), csv_cell(dest), event.size,
                event.proof or FOLDER, event.attempts]

    def _time(self, now: float) -> str:
        """UTC to the millisecond, ``2026-12-02T15:40:01.123Z`` (the seconds formatted once
        per second: datetime's isoformat cost 4 µs a row, more than the write)."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((now - second) * 1000):03d}Z"

    @property
    def failed(self) -> bool:
        """A row could not be written."""
        return self._error is not None

    def failure(self) -> UsageError:
        """What a failed write says; a command whose proofs cannot be kept stops."""
        why = getattr(self._error, "strerror", None) or self._error
        # The objects copied whose rows were not written (queued for the writer when it
        # failed, or done after): at the destination, without a row, as in-flight ones
        # after a kill; `verify --list-verified` lists every object.
        unlogged = self.rows - self.written
        more = f" ({unlogged} more copied without a row)" if unlogged > 0 else ""
        return UsageError(f"cannot write the --proof-log {self.path}: {why}; stopped after "
                          f"{self.written} logged objects{more}")

    def close(self, discard: bool = False) -> None:
        """Write the queued rows and close the file: a row that could not be written is a
        UsageError (unless ``discard``: the command stopped anyway).  With ``discard``
        (the command stopped before it began) a file this log created and wrote no row to
        is removed."""
        if self._thread is not None and not self._join(self._thread):
            return self._give_up(discard)
        self._thread = None
        try:
            self.fh.close()
        except OSError as e:
            self._error = self._error or e
        if discard and self._created and self.rows == 0:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        if self._error is not None and not discard:
            raise self.failure()

    def _join(self, thread: threading.Thread) -> bool:
        """Let the writer write what is queued and end: True once it has; False when no row
        was written for the stall limit (or the writer is stuck in the stalled flush that
        stopped the command already)."""
        from lakeshift.stores import http

        stall = self._stall if self._stall is not None else http.STALL_SECONDS
        self._closing = True
        self._wake.set()
        while True:
            seen = self.written
            thread.join(0 if self._stalled else stall)
            if not thread.is_alive():
                return True
            if self._stalled or self.written == seen:
                if not self._stalled:
                    self._stalled = True
                    self._error = self._error or self._stall_error(stall)
                return False

    @staticmethod
    def _stall_error(stall: float) -> TimeoutError:
        return TimeoutError(f"no row written for {stall:g} s (its disk stalled)")

    def _give_up(self, discard: bool) -> None:
        """The writer is stuck in a flush: it is left to end on its own (a daemon thread,
        which closes the file if the flush ever returns: closing it here would wait for
        that flush)."""
        self._abandoned = True
        thread, self._thread = self._thread, None
        if thread is not None and not thread.is_alive():  # it ended meanwhile
            with contextlib.suppress(OSError):
                self.fh.close()
        if not discard:
            raise self.failure()


#: The log's last bytes that :func:`_last_row_whole` reads (a row is a few KiB at most).
TAIL = 1 << 16
#: Where a row starts: a newline, then its time (never quoted).
_ROW_START = re.compile(rb"\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z,")


def _last_row_whole(tail: bytes) -> bool:
    """Whether the log ending in ``tail`` ends in a whole row (or its header): a last row
    of six cells ending in a newline, after the last newline followed by a time.  (A key
    holding such a newline and time can make a whole row look cut: :func:`_last_row_end`
    then finds it whole, reading the file.)"""
    if not tail.endswith(b"\n"):
        return False
    starts = list(_ROW_START.finditer(tail))
    if not starts:
        return tail == HEADER
    last = tail[starts[-1].start() + 1:].decode("utf-8", "replace")
    try:
        rows = list(csv.reader(io.StringIO(last, newline="")))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == len(FIELDS)


def _last_row_end(f: BinaryIO) -> int:
    """Where the last whole row of the log ``f`` ends: after its last newline outside
    quotes (a key holding a newline is quoted, and a quote in a key doubled, so a row ends
    at a newline after an even number of quotes).  Read from the start: asked only of a
    log whose last row does not look whole (a write failed part way)."""
    f.seek(0)
    end = offset = 0
    inside = False
    while chunk := f.read(1 << 20):
        for part in chunk.split(b'"'):  # the parts alternate outside and inside quotes
            if not inside:
                newline = part.rfind(b"\n")
                if newline >= 0:
                    end = offset + newline + 1
            offset += len(part) + 1
            inside = not inside
        offset -= 1  # (the chunk's last part has no quote after it)
        inside = not inside
    return end
