"""``copy --proof-log FILE``: one CSV row per object copied, appended as each one finishes.

The summary counts objects per proof; an audit needs the proof of each object.  The log is
a subscriber of the engine's events (``ObjectDone`` of a copied object, ``Renamed``), so it
costs the copy nothing when not asked for and holds nothing per object: a row is written
and flushed when its object is done (a run killed at any instant keeps every row of the
objects it finished), and the only state is the destination key of each renamed object
between its ``Renamed`` and its ``ObjectDone`` (objects in flight, at most).

Rows are appended: a second copy into the same log adds its rows below the first's, so the
log of a migration done in several runs is one file.  A file that is not such a log (its
first line is not the header below) is refused, never appended to.
"""

from __future__ import annotations

import csv
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from lakeshift.csv_cells import csv_cell
from lakeshift.engine.events import ObjectDone, Renamed
from lakeshift.errors import UsageError

FIELDS = ("finished_at", "source_key", "destination_key", "size", "proof", "attempts")
#: The proof column of a copied directory (a folder marker, an empty directory): no bytes.
FOLDER = "folder"


def destination_keys(source_path: str, destination_root: str) -> Callable[[str], str]:
    """The destination key of each source key a copy of ``source_path`` (the source URL's
    path) into ``destination_root`` writes, by the rule of ``plan.source.resolve_source``:
    below a folder (a path ending in ``/``, or one some key continues with ``/``) a key
    keeps its name relative to that folder; a single object or a string prefix keeps its
    name relative to the prefix's folder.  (A key renamed for the destination comes with
    its own ``Renamed`` event instead.)"""
    parent = source_path[: source_path.rfind("/") + 1]
    folder = source_path + "/"

    def key_of(source_key: str) -> str:
        if source_path == "" or source_path.endswith("/"):
            base = source_path
        elif source_key.startswith(folder):
            base = folder
        else:
            base = parent
        return destination_root + source_key[len(base):]

    return key_of


class ProofLog:
    """The log's writer and an event subscriber (``EventBus``).  ``open`` checks the file
    before anything is copied; ``close`` flushes and closes it (and removes a file it
    created when the copy stopped before its first row: ``discard``)."""

    def __init__(self, fh: TextIO, path: Path, destination_key: Callable[[str], str],
                 created: bool) -> None:
        self.fh = fh
        self.path = path
        self.rows = 0
        self._writer = csv.writer(fh)
        self._key_of = destination_key
        self._renamed: dict[str, str] = {}
        self._created = created
        self._second = -1
        self._second_text = ""

    @classmethod
    def open(cls, path: str | Path, destination_key: Callable[[str], str]) -> ProofLog:
        """Open ``path`` for appending (a new file gets the header); a path that cannot be
        written, or a file that is not a proof log, is a UsageError naming it."""
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
        log = cls(fh, path, destination_key, created)
        if empty:  # new, or empty: the header first
            log._write(list(FIELDS))
        return log

    @classmethod
    def check(cls, path: str | Path) -> None:
        """What :meth:`open` would refuse, creating and changing nothing (a dry run checks
        its command line so)."""
        path = cls._path(path)
        if path.is_dir() or (path.exists() and path.stat().st_size > 0):
            cls.open(path, str).fh.close()  # refuses a folder or a file that is no log
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
        return Path(path)

    @staticmethod
    def _unwritable(path: Path, e: OSError) -> UsageError:
        fix = (f": create the folder {path.parent} first"
               if e.errno == errno.ENOENT and not path.parent.is_dir() else
               ": choose a file you can write")
        return UsageError(f"cannot write the --proof-log {path}: {e.strerror or e}{fix}")

    def __call__(self, event: object) -> None:
        if isinstance(event, ObjectDone):
            if event.outcome != "copied":
                self._renamed.pop(event.key, None)
                return
            dest = self._renamed.pop(event.key, None) or self._key_of(event.key)
            if event.proof is None:
                # A folder (marker ``dir/``) is written as ``dir``: a directory, or a
                # marker blob without the slash (transfer.copy_marker).
                dest = dest.rstrip("/")
            # Keys as text a spreadsheet never evaluates (csv_cells: one leading
            # apostrophe added to a key starting = + - @ ' or a tab or CR).
            self._write([self._now(), csv_cell(event.key), csv_cell(dest), event.size,
                         event.proof or FOLDER, event.attempts])
            self.rows += 1
        elif isinstance(event, Renamed):
            self._renamed[event.key] = event.destination_key

    def _now(self) -> str:
        """UTC to the millisecond, ``2026-12-02T15:40:01.123Z`` (the seconds formatted once
        per second: datetime's isoformat cost 4 µs a row, more than the write)."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((now - second) * 1000):03d}Z"

    def _write(self, cells: list[object]) -> None:
        try:
            self._writer.writerow(cells)
            self.fh.flush()
        except (OSError, UnicodeError) as e:
            # A copy whose proofs cannot be kept stops (a UsageError stops the run).
            why = getattr(e, "strerror", None) or e
            raise UsageError(f"cannot write the --proof-log {self.path}: {why}; the copy "
                             f"stopped after {self.rows} logged objects") from None

    def close(self, discard: bool = False) -> None:
        """Close the file; with ``discard`` (the copy stopped before it began) a file this
        log created and wrote no row to is removed."""
        try:
            self.fh.close()
        except OSError:
            pass
        if discard and self._created and self.rows == 0:
            try:
                os.unlink(self.path)
            except OSError:
                pass
