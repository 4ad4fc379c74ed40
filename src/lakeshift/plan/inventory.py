"""An S3 Inventory report read for ``sync --inventory``, with memory that does not grow
with the report: each data file is downloaded in ranged reads to a temporary file and
parsed from there a row (CSV) or a batch (Parquet) at a time, and the objects are spilled
into a temporary SQLite file indexed by key, which each partition reads in key order, a
page at a time.  Parsing is plan/changes.py's."""

from __future__ import annotations

import gzip
import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo
from lakeshift.plan.changes import csv_lines, parquet_file_rows, parse_manifest

#: Bytes per ranged read of a data file; objects per insert and per page read back.
CHUNK = 8 * 1024 * 1024
PAGE = 1000


class Inventory:
    """A report's objects as of ``created`` (when S3 took it), in a spill file.  Owned by
    the pass that loaded it: ``close`` removes the file."""

    def __init__(self, created: datetime | None) -> None:
        self.created = created
        self._dir = tempfile.mkdtemp(prefix="lakeshift-inventory-")
        self._db = sqlite3.connect(os.path.join(self._dir, "objects.db"),
                                   check_same_thread=False)
        self._db.execute("CREATE TABLE objects (key TEXT NOT NULL, size INTEGER NOT NULL, "
                         "modified TEXT, etag TEXT, md5 BLOB, dir INTEGER NOT NULL)")
        self.count = 0
        self._lock = threading.Lock()

    def add(self, objects: Iterable[ObjectInfo]) -> None:
        batch: list[tuple[Any, ...]] = []
        for o in objects:
            batch.append((o.key, o.size, o.last_modified.isoformat() if o.last_modified
                          else None, o.etag, o.md5, int(o.is_dir_marker)))
            if len(batch) >= PAGE:
                self._insert(batch)
        self._insert(batch)

    def _insert(self, batch: list[tuple[Any, ...]]) -> None:
        if batch:
            self._db.executemany("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?)", batch)
            self.count += len(batch)
            batch.clear()

    def ready(self) -> None:
        self._db.execute("CREATE INDEX objects_key ON objects (key)")
        self._db.commit()

    def pages_from(self, low: str) -> Iterator[list[ObjectInfo]]:
        """The objects with keys ≥ ``low``, in key order (SQLite's BINARY order of UTF-8
        is the order of code points, as Python compares strings), a page at a time."""
        after: tuple[str, int] = (low, -1)  # (key, rowid) of the last row read
        while True:
            with self._lock:  # partitions read their pages from several threads
                rows = self._db.execute(
                    "SELECT key, size, modified, etag, md5, dir, rowid FROM objects "
                    "WHERE key > ? OR (key = ? AND rowid > ?) ORDER BY key, rowid LIMIT ?",
                    (after[0], after[0], after[1], PAGE)).fetchall()
            if not rows:
                return
            after = (rows[-1][0], rows[-1][6])
            yield [ObjectInfo(k, s, datetime.fromisoformat(m) if m else None, e, md5,
                              bool(d)) for k, s, m, e, md5, d, _ in rows]

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._dir, ignore_errors=True)


async def load_inventory(url: str, store_options: Any, buckets: set[str]) -> Inventory:
    """Read the report whose manifest.json is at ``url``.  Refused when its sourceBucket
    is not the job's source bucket."""
    from lakeshift.stores.base import StoreConfig
    from lakeshift.stores.registry import open_store
    from lakeshift.urls import parse_url

    parsed = parse_url(url)
    if parsed.scheme != "s3":
        raise UsageError(f"--inventory {url}: give the s3:// URL of the report's "
                         "manifest.json")
    store = open_store(StoreConfig(parsed, store_options))
    inventory: Inventory | None = None
    try:
        manifest = parse_manifest(bytes((await store.read(parsed.path)).data), url)
        if manifest.source_bucket not in buckets:
            raise UsageError(f"--inventory {url} lists bucket {manifest.source_bucket!r}, "
                             f"not the job's source ({', '.join(sorted(buckets))}): give "
                             "the inventory of the source bucket")
        if manifest.bucket != parsed.bucket:
            store2 = open_store(StoreConfig(replace(parsed, bucket=manifest.bucket, path=""),
                                            store_options))
            await store.close()
            store = store2
        inventory = Inventory(manifest.created)
        for key in manifest.files:
            local = Path(inventory._dir) / "data"
            await _download(store, key, local)
            if manifest.file_format == "CSV":
                try:
                    with gzip.open(local, "rt", encoding="utf-8", newline="") as fh:
                        inventory.add(csv_lines(fh, manifest.columns))
                except (OSError, UnicodeDecodeError, EOFError) as e:
                    raise UsageError(f"an inventory data file is not gzipped UTF-8 CSV: "
                                     f"{e}") from None
            else:
                inventory.add(parquet_file_rows(str(local)))
            local.unlink()
        inventory.ready()
        return inventory
    except BaseException:
        if inventory is not None:
            inventory.close()
        raise
    finally:
        await store.close()


async def _download(store: Any, key: str, path: Path) -> None:
    """``key`` into ``path``, CHUNK bytes per ranged read."""
    info = await store.exists(key)
    if info is None:
        raise UsageError(f"the inventory's data file {key} is missing")
    with path.open("wb") as fh:
        for start in range(0, info.size, CHUNK):
            fh.write(bytes((await store.read(key, start, min(start + CHUNK,
                                                              info.size))).data))
