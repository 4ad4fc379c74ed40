"""Change sources cheaper than a full listing: a list of keys (``--files-from``) and an S3
Inventory report (``--inventory``).  Parsing only; the engine reads the files.

S3 Inventory (AWS docs, "Configuring Amazon S3 Inventory" / "Locating your inventory
list"): ``manifest.json`` names ``sourceBucket``, ``destinationBucket``
(``arn:aws:s3:::NAME``), ``fileFormat`` (CSV, ORC or Parquet), ``fileSchema`` (the
columns, e.g. ``Bucket, Key, Size, LastModifiedDate, ETag``) and ``files`` (``key``,
``size``, ``MD5checksum`` of each data file in the destination bucket).  CSV files are
gzipped, without a header, every field quoted, and the object keys URL-encoded.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo


@dataclass(frozen=True)
class FilesFrom:
    """The keys a ``--files-from`` file names."""

    keys: tuple[str, ...]
    #: True for a ``lakeshift failures`` CSV: its ``object_key`` cells are source keys as
    #: recorded (the source root included), not keys relative to the root.
    source_keys: bool = False


#: The columns that make a CSV a ``lakeshift failures`` log (api.FAILURE_FIELDS starts so).
FAILURES_HEADER = ("object_key", "error_kind")
#: The columns that make a CSV a ``lakeshift verify --report`` (engine/verify_report.py
#: Report.FIELDS starts so), and the kinds of its rows a copy mends: the source has the
#: object and the destination lacks it or holds other bytes.
VERIFY_HEADER = ("name", "kind", "source_key")
VERIFY_MENDS = frozenset({"missing", "size", "checksum", "time"})


def read_files_from(path: str | Path) -> FilesFrom:
    """Keys relative to the source root: one per line (blank lines and ``#`` comments
    ignored), or a ``.csv`` file with a header that has a ``key`` column.  A file that
    ``lakeshift failures`` wrote (its header starts ``object_key,error_kind``, whatever the
    file's name) is read as written: its ``object_key`` column holds source keys, each
    with the apostrophe that neutralised it for spreadsheets (csv_cells.csv_cell) taken off.
    A ``lakeshift verify --report`` (header ``name,kind,source_key…``) names the source keys
    of its missing and differing rows (``VERIFY_MENDS``; extra and unverifiable rows name
    nothing to copy)."""
    p = Path(path)
    try:
        # Bytes decoded, not read_text: a CR inside a quoted CSV cell is part of its key
        # (universal newlines would make it LF); line files split on any line end below.
        text = p.read_bytes().decode("utf-8")
    except OSError as e:
        raise UsageError(f"cannot read --files-from {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--files-from {path} is not UTF-8 text") from None
    source_keys = False
    if text.lstrip().startswith("{") and _is_json_object(text):  # verify's .json, say
        raise UsageError(f"--files-from {path} is JSON, not a list of keys: give one key per "
                         "line, a .csv with a 'key' column, or the .csv of `lakeshift "
                         "verify --report` or `lakeshift failures --csv-file`")
    first = next(csv.reader(io.StringIO(text.partition("\n")[0])), [])
    if tuple(first[:len(FAILURES_HEADER)]) == FAILURES_HEADER:
        source_keys = True
        keys = [_unneutralised(row.get("object_key") or "")
                for row in csv.DictReader(io.StringIO(text))]
    elif tuple(first[:len(VERIFY_HEADER)]) == VERIFY_HEADER:
        source_keys = True
        keys = [_unneutralised(row.get("source_key") or "")
                for row in csv.DictReader(io.StringIO(text))
                if row.get("kind") in VERIFY_MENDS]
        if not any(keys):
            raise UsageError(f"--files-from {path}: the verify report names nothing to copy "
                             "(no missing or differing object)")
    elif p.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or "key" not in reader.fieldnames:
            raise UsageError(f"--files-from {path}: a .csv file needs a header with a 'key' "
                             f"column (found {', '.join(reader.fieldnames or []) or 'none'})")
        keys = [(row.get("key") or "").strip() for row in reader]
    else:
        keys = [ln.strip() for ln in text.splitlines()]
        keys = [k for k in keys if not k.startswith("#")]
    if source_keys:
        # Source keys are exact (a key may begin or end with a space, or with "/").
        found = sorted({k for k in keys if k})
    else:
        found = sorted({k.lstrip("/") for k in keys if k})
    if not found:
        raise UsageError(f"--files-from {path} names no keys")
    return FilesFrom(tuple(found), source_keys)


def _is_json_object(text: str) -> bool:
    """Whether ``text`` is one JSON object (a key list may start with "{": a key can)."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _unneutralised(cell: str) -> str:
    """A cell as ``lakeshift failures`` had it before csv_cells.csv_cell: that adds one
    apostrophe in front of text starting with a formula character or an apostrophe."""
    return cell[1:] if cell.startswith("'") else cell


@dataclass(frozen=True)
class InventoryManifest:
    source_bucket: str
    #: Where the data files are (the inventory's destination bucket).
    bucket: str
    file_format: str
    columns: tuple[str, ...]
    files: tuple[str, ...]
    #: When S3 took the report (``creationTimestamp``, ms since the epoch): a snapshot,
    #: blind to every change after it.
    created: datetime | None = None


def parse_manifest(data: bytes, where: str) -> InventoryManifest:
    try:
        m = json.loads(data)
        dest = str(m["destinationBucket"])
        bucket = dest.rsplit(":", 1)[-1]
        fmt = str(m["fileFormat"]).upper()
        columns = _schema_columns(str(m["fileSchema"]), fmt)
        files = tuple(str(f["key"]) for f in m["files"])
        source = str(m["sourceBucket"])
        stamp = m.get("creationTimestamp")
        created = None if stamp in (None, "") else datetime.fromtimestamp(
            int(str(stamp)) / 1000, UTC)
    except (ValueError, KeyError, TypeError, OverflowError) as e:
        raise UsageError(f"--inventory {where} is not an S3 Inventory manifest.json "
                         f"({type(e).__name__}: {e})") from None
    if fmt not in ("CSV", "PARQUET"):
        raise UsageError(f"--inventory {where}: format {fmt} is not supported (use CSV, or "
                         "Parquet with lakeshift[parquet])")
    if "Key" not in columns:
        raise UsageError(f"--inventory {where}: its fileSchema has no Key column")
    return InventoryManifest(source, bucket, fmt, columns, files, created)


#: A field of a Parquet message type: ``optional int64 size;``.
_PARQUET_FIELD = re.compile(r"\b(?:required|optional|repeated)\s+\w+\s+(\w+)")


def _schema_columns(schema: str, fmt: str) -> tuple[str, ...]:
    """The report's columns, named as in CSV (``Key``, ``LastModifiedDate``, …).

    A CSV report's fileSchema lists them (``Bucket, Key, Size, …``); a Parquet (or ORC)
    report's is the file's schema (``message s3.inventory { required binary key (UTF8);
    … }``, or ``struct<bucket:string,key:string,…>``), whose columns are in snake case."""
    if fmt == "CSV":
        return tuple(c.strip() for c in schema.split(","))
    names = _PARQUET_FIELD.findall(schema) or re.findall(r"(\w+):", schema)
    return tuple(_PARQUET_COLUMNS.get(n, n) for n in names)


def _parse_time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _info(row: Mapping[str, object], key: str) -> ObjectInfo | None:
    if str(row.get("IsDeleteMarker", "")).lower() == "true":
        return None
    if str(row.get("IsLatest", "true")).lower() == "false":
        return None
    size_text = row.get("Size")
    size = int(str(size_text)) if size_text not in (None, "") else 0
    lm = row.get("LastModifiedDate")
    modified = (lm.astimezone(UTC) if lm.tzinfo else lm.replace(tzinfo=UTC)) \
        if isinstance(lm, datetime) else _parse_time(str(lm or ""))
    etag = str(row.get("ETag") or "").strip('"') or None
    md5 = None
    if etag and len(etag) == 32 and "-" not in etag:
        try:
            md5 = bytes.fromhex(etag)
        except ValueError:
            md5 = None
    return ObjectInfo(key, size, modified, etag, md5, key.endswith("/") and size == 0)


def csv_rows(data: bytes, columns: tuple[str, ...]) -> Iterator[ObjectInfo]:
    """Objects of one gzipped CSV data file (keys URL-decoded)."""
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"an inventory data file is not gzipped UTF-8 CSV: {e}") from None
    yield from csv_lines(io.StringIO(text), columns)


def csv_lines(lines: Iterable[str], columns: tuple[str, ...]) -> Iterator[ObjectInfo]:
    """Objects of the lines of a CSV data file (already decompressed), one at a time."""
    for fields in csv.reader(lines):
        row = dict(zip(columns, fields, strict=False))
        info = _info(row, unquote(row.get("Key", "")))
        if info is not None and info.key:
            yield info


_PARQUET_COLUMNS = {"bucket": "Bucket", "key": "Key", "size": "Size",
                    "last_modified_date": "LastModifiedDate", "e_tag": "ETag",
                    "is_latest": "IsLatest", "is_delete_marker": "IsDeleteMarker"}


def parquet_rows(data: bytes) -> Iterator[ObjectInfo]:
    """Objects of one Parquet data file (pyarrow, the optional extra lakeshift[parquet])."""
    return parquet_file_rows(io.BytesIO(data))


def parquet_file_rows(source: Any) -> Iterator[ObjectInfo]:
    """Objects of a Parquet data file (a path or a file object), a batch at a time."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise UsageError("this inventory is Parquet: install the extra "
                         "(pip install 'lakeshift[parquet]') or use a CSV inventory") from None
    try:
        file = pq.ParquetFile(source)
        # Only the columns an object needs, a batch at a time (a report file holds millions).
        wanted = [c for c in file.schema_arrow.names if c in _PARQUET_COLUMNS]
        for batch in file.iter_batches(columns=wanted):
            for raw in batch.to_pylist():
                # Parquet and ORC inventories name their columns in snake case (e_tag, …).
                row = {_PARQUET_COLUMNS[k]: v for k, v in raw.items()}
                info = _info(row, str(row.get("Key") or ""))
                if info is not None and info.key:
                    yield info
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise UsageError(f"an inventory data file is not Parquet: {e}") from None
