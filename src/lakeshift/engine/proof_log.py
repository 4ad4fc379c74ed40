"""``--proof-log FILE`` (copy, run, sync): one CSV row per object copied, appended as
each one finishes.

The summary counts objects per proof; an audit needs the proof of each object.  The log is
a subscriber of the engine's events (``ObjectDone`` of a copied object, which names where
it was written: ``dest_key``), so it costs a command nothing when not asked for and holds
nothing per object.  The keys are those of the events: the source key in its bucket or
container, and the full destination key in the destination's bucket or container (the
copy's naming applied: destination root, ``--invalid-names encode``, a folder marker kept
as a folder); for local disk, the path below the URL's folder.

Rows are written by a thread of their own, fed through a bounded queue: the event loop
only hands over the event (a slow or stalled disk does not stall the transfers until the
queue is full), and the thread writes and flushes each row as soon as it is handed over,
so a run killed at any instant keeps every row but those still queued at that instant
(normally none or a few).  An object whose row was lost so, or whose copy was in flight at
a kill or Ctrl-C (its bytes may be written, its event never emitted), is at the destination
without a row, and a rerun skips it as identical: no row for it ever (``verify
--list-verified`` proves every object).  ``close`` writes what is queued.  A row that
cannot be written (a full disk) is raised on the loop at the next object, after
``on_failure``, or by ``close``: a command whose proofs cannot be kept stops.

Rows are appended: a second command into the same log adds its rows below the first's, so
the log of a migration done in several copies, runs and sync passes is one file.  A file
that is not such a log (its first line is not the header below) is refused, never appended
to.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from lakeshift.csv_cells import csv_cell
from lakeshift.engine.events import EVENT_TYPES, ObjectDone
from lakeshift.errors import UsageError

FIELDS = ("finished_at", "source_key", "destination_key", "size", "proof", "attempts")
#: The proof column of a copied directory (a folder marker, an empty directory): no bytes.
FOLDER = "folder"
#: Rows the writer may be behind by before the event loop waits for it.
DEPTH = 1024


class ProofLog:
    """The log's writer and an event subscriber (``EventBus``).  ``open`` checks the file
    before anything is copied; ``close`` writes the queued rows and closes it (and removes
    a file it created when the command stopped before its first row: ``discard``)."""

    #: Only ObjectDone matters here (EventBus then need not build ObjectStarted for it).
    ignores = EVENT_TYPES - {ObjectDone}

    def __init__(self, fh: TextIO, path: Path, created: bool, depth: int = DEPTH) -> None:
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
        self._depth = depth
        self._wake = threading.Event()
        self._closing = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        #: Called once, on the loop, when a row could not be written: what stops the whole
        #: command (the API cancels it; a run's partitions would each fail on their own).
        self.on_failure: Callable[[], object] | None = None

    @classmethod
    def open(cls, path: str | Path, depth: int = DEPTH) -> ProofLog:
        """Open ``path`` for appending (a new file gets the header) and start its writer; a
        path that cannot be written, or a file that is not a proof log, is a UsageError
        naming it."""
        path = cls._path(path)
        try:
            if path.is_dir():
                raise UsageError(f"--proof-log {path} is a folder: name a file in it")
            # Only a file this log makes is its to remove (``close(discard=True)``): an
            # empty one that was there (``touch``ed, or /dev/null, /dev/stdout) is not.
            created = not path.exists()
            empty = created or path.stat().st_size == 0
            if not empty:
                with open(path, newline="", encoding="utf-8", errors="replace") as old:
                    first = next(csv.reader(old), [])
                if tuple(first) != FIELDS:
                    raise UsageError(f"--proof-log {path} is not a lakeshift proof log (its "
                                     "first line is not the log's header): choose another "
                                     "file; rows are only appended to a proof log")
            # A name that is not valid UTF-8 (a local file's raw bytes) is written escaped.
            fh = open(path, "a", newline="", encoding="utf-8",  # noqa: SIM115 (closed by close)
                      errors="backslashreplace")
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

    def start(self) -> None:
        self._thread = threading.Thread(target=self._write_rows, daemon=True,
                                        name="lakeshift-proof-log")
        self._thread.start()

    @classmethod
    def check(cls, path: str | Path) -> None:
        """What :meth:`open` would refuse, creating and changing nothing (a dry run checks
        its command line so)."""
        path = cls._path(path)
        if path.is_dir() or (path.exists() and path.stat().st_size > 0):
            cls.open(path).close()  # refuses a folder or a file that is no log
            return
        try:
            if path.exists():  # empty: opened for appending, which changes nothing
                with open(path, "a", encoding="utf-8"):
                    pass
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
                stop, self.on_failure = self.on_failure, None
                if stop is not None:
                    stop()
                raise self.failure()
            pending = self._pending
            pending.append((time.time(), event))
            self.rows += 1
            if not self._wake.is_set():
                self._wake.set()
            while len(pending) > self._depth and self._error is None:
                # The disk is DEPTH rows behind: the command waits for it (memory stays
                # bounded; a proof is never dropped).
                time.sleep(0.001)

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
            if closing:
                return
            wake.wait()

    def _cells(self, now: float, event: ObjectDone) -> list[object]:
        dest = event.dest_key or ""
        if event.proof is None:
            # A folder (marker ``dir/``) is written as ``dir``: a directory, or a marker
            # blob without the slash (transfer.copy_marker).
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
        return UsageError(f"cannot write the --proof-log {self.path}: {why}; stopped after "
                          f"{self.written} logged objects")

    def close(self, discard: bool = False) -> None:
        """Write the queued rows and close the file: a row that could not be written is a
        UsageError (unless ``discard``: the command stopped anyway).  With ``discard``
        (the command stopped before it began) a file this log created and wrote no row to
        is removed."""
        if self._thread is not None:
            self._closing = True
            self._wake.set()
            self._thread.join()
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
