"""Renamed objects in a ``sync --delete`` pass: an object moved to a new name at the source
is a deletion candidate under its old name and an object with no destination copy under
its new one.  The pass spills every such new name (flat memory: a temporary SQLite file
indexed by size); before an old name is deleted it is paired, across the whole pass, with
a new name of the same size and content, and that new name's copy is made first.  A
rename that keeps the modification time (a file system's, HDFS's or Gen1's) leaves the
new name outside the window: without the pairing its copy would never be made."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from lakeshift.model import ObjectInfo
from lakeshift.stores.base import Store

#: New names written per insert.
BATCH = 500
#: Objects without an MD5 on both sides are compared by reading them, up to this size;
#: larger ones pair by size alone (the pairing only makes a copy before a deletion).
READ_TO_COMPARE = 16 * 1024 * 1024


@dataclass(frozen=True)
class NewName:
    row: int
    partition_id: int
    key: str
    destination_key: str
    size: int
    md5: bytes | None


class NewNames:
    """Source objects the pass listed with no destination object of their name.  Owned by
    one pass: ``close`` removes the file.

    ``add`` is called on the event loop (the pipeline's ``on_unmatched``): a full batch is
    handed to one writer thread, which inserts the batches in the order given; ``flush``
    (from a thread: ``of_size``) writes the rest and waits for them all."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="lakeshift-renames-")
        self._db = sqlite3.connect(os.path.join(self._dir, "new.db"),
                                   check_same_thread=False)
        self._db.execute("CREATE TABLE new (id INTEGER PRIMARY KEY, partition_id INTEGER "
                         "NOT NULL, key TEXT NOT NULL, dest_key TEXT NOT NULL, size INTEGER "
                         "NOT NULL, md5 BLOB, paired INTEGER NOT NULL DEFAULT 0)")
        self._db.execute("CREATE INDEX ix_new_size ON new (size, paired)")
        self._lock = threading.Lock()
        #: Guards ``_batch`` and ``_writes`` (held for a swap, never for I/O).
        self._handoff = threading.Lock()
        self._batch: list[tuple[int, str, str, int, bytes | None]] = []
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="lakeshift-renames")
        self._writes: list[Future[None]] = []
        self.count = 0

    def add(self, partition_id: int, obj: ObjectInfo, destination_key: str) -> None:
        if obj.is_dir_marker:
            return
        with self._handoff:
            self._batch.append((partition_id, obj.key, destination_key, obj.size, obj.md5))
            self.count += 1
            if len(self._batch) >= BATCH:
                self._submit()

    def _submit(self) -> None:
        """The batch to the writer thread (``_handoff`` held)."""
        batch, self._batch = self._batch, []
        self._writes = [f for f in self._writes if not f.done() or f.exception()]
        self._writes.append(self._writer.submit(self._write, batch))

    def _write(self, batch: list[tuple[int, str, str, int, bytes | None]]) -> None:
        with self._lock:
            self._db.executemany("INSERT INTO new (partition_id, key, dest_key, size, md5) "
                                 "VALUES (?, ?, ?, ?, ?)", batch)
            self._db.commit()

    def flush(self) -> None:
        """Every name added so far written (blocks: call it off the event loop)."""
        with self._handoff:
            if self._batch:
                self._submit()
            writes, self._writes = self._writes, []
        for f in writes:
            f.result()  # a failed write raises here

    def of_size(self, size: int, limit: int = 50) -> list[NewName]:
        """Unpaired new names of this size."""
        self.flush()
        with self._lock:
            return [NewName(*r) for r in self._db.execute(
                "SELECT id, partition_id, key, dest_key, size, md5 FROM new WHERE size = ? "
                "AND paired = 0 ORDER BY id LIMIT ?", (size, limit))]

    def take(self, name: NewName) -> None:
        with self._lock:
            self._db.execute("UPDATE new SET paired = 1 WHERE id = ?", (name.row,))
            self._db.commit()

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        with self._lock:
            self._db.close()
        shutil.rmtree(self._dir, ignore_errors=True)


async def same_content(old: ObjectInfo, old_store: Store, new: NewName,
                       new_store: Store) -> bool:
    """Whether the destination's ``old`` copy and the source's ``new`` object hold the same
    bytes: by their MD5s when both are known, else by reading both (small objects), else
    by size alone."""
    if old.size != new.size:
        return False
    if old.md5 is not None and new.md5 is not None:
        return old.md5 == new.md5
    if old.size > READ_TO_COMPARE:
        return True

    async def md5(store: Store, key: str) -> bytes:
        data = (await store.read(key)).data if old.size else b""
        return hashlib.md5(bytes(data), usedforsecurity=False).digest()

    return await md5(old_store, old.key) == await md5(new_store, new.key)
