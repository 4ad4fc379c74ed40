"""What `lakeshift verify` hands back and writes (engine/verify.py): the counts
(:class:`VerifyResult`: checked, verified, each kind of difference, unverifiable reasons,
proofs, bytes read), the CSV of differences (:class:`Report`) and of the objects proven
equal (:class:`VerifiedReport`, --list-verified) — each written by a writer thread fed
through a bounded queue, so memory stays flat and a slow disk holds back the workers, not
the event loop — and the JSON summary (:func:`write_summary`)."""

from __future__ import annotations

import asyncio
import csv
import json
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lakeshift.csv_cells import csv_cell
from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo

#: The kinds of row the summary counts ("renamed" rows are counted apart: not a difference).
KINDS = ("missing", "extra", "size", "checksum", "time", "unverifiable")


@dataclass
class VerifyResult:
    checked: int = 0
    verified: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    #: Verified pairs per proof: ``source-md5`` (the source's own MD5 equals the
    #: destination's), ``read-md5`` (the source had none: its bytes were read and hashed),
    #: ``multipart-etag`` (the source's multipart ETag rebuilt from the destination's bytes),
    #: ``source-crc32`` / ``source-sha256`` / ``source-sha1`` (the checksum an S3 multipart
    #: source keeps, checked on the destination's bytes).
    proofs: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0

    @property
    def differences(self) -> int:
        return sum(self.counts[k] for k in ("missing", "extra", "size", "checksum", "time"))

    @property
    def exit_code(self) -> int:
        return 1 if self.differences else 0

    def summary(self) -> dict[str, Any]:
        return {"checked": self.checked, "verified": self.verified,
                **{k: self.counts[k] for k in KINDS}, "differences": self.differences,
                "renamed": self.counts["renamed"],
                "unverifiable_reasons": dict(self.reasons),
                "proofs": dict(sorted(self.proofs.items())), "bytes_read": self.bytes_read,
                "duration_s": round(self.finished - self.started, 3),
                "exit_code": self.exit_code}


class Report:
    """The CSV of differences, written as they are found: by a writer thread fed through a
    bounded queue, so a slow disk holds back the verify (the queue is full) without
    blocking the event loop.  ``close`` waits for every row to be written."""

    FIELDS: tuple[str, ...] = (
        "name", "kind", "source_key", "destination_key", "source_size", "destination_size",
        "source_checksum", "destination_checksum", "detail")
    #: The option naming the file, for the message of a failed write.
    OPTION = "--report"

    def __init__(self, fh: TextIO, depth: int = 1024) -> None:
        self.fh = fh
        self.w = csv.writer(fh)
        self._rows: queue.Queue[list[Any] | None] = queue.Queue(maxsize=depth)
        self._error: Exception | None = None
        self._closed = False
        self._rows.put(list(self.FIELDS))
        self._thread = threading.Thread(target=self._write, name="lakeshift-verify-report",
                                        daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while (cells := self._rows.get()) is not None:
            if self._error is None:
                try:
                    # Keys and details as text a spreadsheet never evaluates (csv_cells).
                    self.w.writerow([csv_cell(c) for c in cells])
                except Exception as e:  # disk full, an unencodable name: said at close
                    self._error = e  # the queue keeps draining, so no row() waits forever

    async def row(self, name: str, kind: str, s: ObjectInfo | None, d: ObjectInfo | None,
                  s_sum: str | None, d_sum: str | None, detail: str) -> None:
        await self._put([name, kind, s.key if s else "", d.key if d else "",
                         s.size if s else "", d.size if d else "", s_sum or "", d_sum or "",
                         detail])

    async def _put(self, cells: list[Any]) -> None:
        try:
            self._rows.put_nowait(cells)
        except queue.Full:  # the writer is behind: wait for room off the loop
            await asyncio.to_thread(self._rows.put, cells)

    async def close(self) -> None:
        """Write what is queued and stop the writer; a write that failed is a UsageError."""
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._stop)
        if self._error is not None:
            why = getattr(self._error, "strerror", None) or self._error
            raise UsageError(f"cannot write the verify report: {why}: free space or choose "
                             f"another {self.OPTION}")

    def _stop(self) -> None:
        self._rows.put(None)
        self._thread.join()
        self.fh.flush()


class VerifiedReport(Report):
    """``--list-verified``: one row per object proven equal, written as it is proven (the
    same bounded writer as the differences' report): its name, both keys, its size, the
    proof (``VerifyResult.proofs``' labels) and the checksum compared on each side
    (``crc32:BASE64`` for a source's own checksum, the ETag for a multipart one, else the
    MD5 in hex)."""

    FIELDS = ("name", "source_key", "destination_key", "size", "proof", "source_checksum",
              "destination_checksum")
    OPTION = "--report (for --list-verified)"

    async def verified(self, name: str, s: ObjectInfo, d: ObjectInfo, proof: str,
                       s_sum: str, d_sum: str) -> None:
        await self._put([name, s.key, d.key, s.size, proof, s_sum, d_sum])


def write_summary(path: Path, result: VerifyResult, extra: dict[str, Any]) -> dict[str, Any]:
    data = {**extra, **result.summary()}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data
