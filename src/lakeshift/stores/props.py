"""Object properties across stores: obstore attributes, Azure metadata names, ETags.

Azure metadata names must be C# identifiers (letters, digits, underscore; not starting with a
digit).  S3 allows more (``my-key``, ``a.b``).  Rule, applied to every user metadata key on
the way into Azure: each character outside ``[A-Za-z0-9_]`` becomes ``_xHH_`` (HH = the hex
of each of its UTF-8 bytes) and a leading digit gets a ``_`` in front.  ``decode_metadata_name``
reverses it.  Keys lakeshift writes for itself start with ``lakeshift_``.

Metadata values travel in HTTP headers, which carry printable ASCII and tabs and drop
whitespace at either end.  Rule, applied to every value on the way into Azure: a value that
holds any other character (é, 日本, a newline), begins or ends with a space or tab, or itself
begins with ``=?utf-8?b?`` is sent as ``=?utf-8?b?BASE64?=`` (the RFC 2047 encoded-word form;
BASE64 = its UTF-8 bytes).  Every other value, inner runs of spaces and tabs included, is sent
exactly as received.  ``decode_metadata_value`` reverses it when reading from Azure.

``hdi_isfolder`` (any case) is the folder flag to ADLS Gen2 and to lakeshift: only a
zero-length blob that carries it is a folder.  A non-empty object that carries it (an S3
object with that user metadata key) is written to Azure with the key renamed to
``lakeshift_hdi_isfolder``, value unchanged, so that Gen2 never takes a file for a folder and
the value is not dropped; reading does not rename it back.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from lakeshift.model import ObjectProps

SRC_ETAG_KEY = "lakeshift_src_etag"
#: The source object's original modification time (S3 LastModified, a local file's mtime,
#: a Gen1/HDFS modificationTime), kept on every copy: RFC 3339 UTC, microseconds
#: (``2024-05-01T12:34:56.123456Z``).  A copy of a copy keeps the first original.
SRC_MTIME_KEY = "lakeshift_src_mtime"
FOLDER_KEY = "hdi_isfolder"
#: What ``FOLDER_KEY`` on a non-empty object becomes on the way into Azure.
RENAMED_FOLDER_KEY = "lakeshift_hdi_isfolder"

_STANDARD = {
    "Content-Type": "content_type",
    "Content-Encoding": "content_encoding",
    "Cache-Control": "cache_control",
    "Content-Disposition": "content_disposition",
    "Content-Language": "content_language",
}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_time(when: datetime) -> str:
    """``when`` as SRC_MTIME_KEY holds it (a naive datetime is taken as UTC)."""
    if when.tzinfo is not UTC:
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    year = when.year
    if year < 1000:  # strftime writes such a year unpadded: keep its exact text
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # (Two-digit fields from a table, in one f-string: ~9k instructions, where isoformat's
    # generic formatting took ~15k and a "%02d" format ~12k, once per object copied.)
    return (f"{year}-{_TWO[when.month]}-{_TWO[when.day]}T{_TWO[when.hour]}:"
            f"{_TWO[when.minute]}:{_TWO[when.second]}.{str(1000000 + when.microsecond)[1:]}Z")


_TWO = [f"{i:02d}" for i in range(100)]


def parse_time(text: str | None) -> datetime | None:
    """A SRC_MTIME_KEY value back as an aware UTC datetime; None when it is not one."""
    if not text:
        return None
    try:
        # Python 3.11 reads a final "Z" itself (a seventh of the cost of the replace below,
        # once per file written to local disk); anything else takes the path it always did.
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def unquote_etag(etag: str | None) -> str | None:
    if not etag:
        return None
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"') or None


def props_from_attributes(attrs: Any) -> ObjectProps:
    std: dict[str, str] = {}
    meta: dict[str, str] = {}
    for k, v in dict(attrs or {}).items():
        if k in _STANDARD:
            std[_STANDARD[k]] = v
        elif k != "Storage-Class":
            meta[k] = v
    return ObjectProps(metadata=meta, **std)


def attributes_from_props(props: ObjectProps) -> dict[str, str]:
    out: dict[str, str] = {}
    for header, field in _STANDARD.items():
        value = getattr(props, field)
        if value:
            out[header] = value
    out.update(props.metadata)
    return out


@lru_cache(maxsize=4096)
def encode_metadata_name(name: str) -> str:
    """(Cached: the same few names, lakeshift's own among them, recur on every object.)"""
    if _IDENT.match(name) and "_x" not in name and not (name[:1] == "_" and
                                                       name[1:2].isdigit()):
        return name
    out = []
    for i, ch in enumerate(name):
        literal_underscore = ch == "_" and name[i + 1:i + 2] != "x" and not (
            i == 0 and name[1:2].isdigit())
        if ch.isascii() and (ch.isalnum() or literal_underscore):
            out.append(ch)
        else:
            out.append("".join(f"_x{b:02X}_" for b in ch.encode()))
    encoded = "".join(out)
    return "_" + encoded if encoded[0].isdigit() else encoded


# Any case: reads through obstore see header names lowercased (``my_x2d_key``).
_ESCAPE = re.compile(r"(_x[0-9A-Fa-f]{2}_)")


def decode_metadata_name(name: str) -> str:
    if name.startswith("_") and name[1:2].isdigit():
        name = name[1:]
    buf = bytearray()
    for part in _ESCAPE.split(name):
        if _ESCAPE.fullmatch(part):
            buf.append(int(part[2:4], 16))
        else:
            buf += part.encode()
    return buf.decode("utf-8", "replace")


_ENCODED_PREFIX = "=?utf-8?b?"
# (\Z, not $: "$" also matches before a final newline, which let "v\n" through as it is
# and the request head then refused it as a smuggled line break.)
_HEADER_SAFE = re.compile(r"[\x20-\x7e\t]*\Z")


def encode_metadata_value(value: str) -> str:
    if _HEADER_SAFE.match(value) and value == value.strip(" \t") and \
            not value.lower().startswith(_ENCODED_PREFIX):
        return value
    return f"{_ENCODED_PREFIX}{base64.b64encode(value.encode('utf-8')).decode()}?="


def decode_metadata_value(value: str) -> str:
    if not (value.lower().startswith(_ENCODED_PREFIX) and value.endswith("?=")):
        return value
    try:
        return base64.b64decode(value[len(_ENCODED_PREFIX):-2], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value  # not written by this rule: kept as the service holds it


def encode_metadata(meta: dict[str, str] | Any, size: int = 0) -> dict[str, str]:
    """``meta`` as Azure takes it for a blob of ``size`` bytes: names and values encoded,
    and a folder flag on a non-empty blob renamed (RENAMED_FOLDER_KEY)."""
    out: dict[str, str] = {}
    named = _blob_name if size > 0 else encode_metadata_name
    for k, v in (meta if type(meta) is dict else dict(meta)).items():
        name = named(k)
        # (encode_metadata_value's test for a value sent as it is, inline and without a
        # regular expression: printable ASCII holds no tab, so only spaces can pad it, and
        # only a value that begins "=?" can look encoded; any other goes through
        # encode_metadata_value's own test.  ~7K instructions less for the ETag and time
        # of every object copied.)
        if not (v.isascii() and v.isprintable() and v[:2] != "=?" and v == v.strip(" ")):
            v = encode_metadata_value(v)
        out.setdefault(name, v)
    return out


@lru_cache(maxsize=4096)
def _blob_name(name: str) -> str:
    """``encode_metadata_name`` of a name on a non-empty blob, where a folder flag
    (``hdi_isfolder``, any case) is renamed (RENAMED_FOLDER_KEY)."""
    encoded = encode_metadata_name(name)
    return RENAMED_FOLDER_KEY if encoded.lower() == FOLDER_KEY else encoded


def is_folder_blob(size: int, meta: dict[str, str]) -> bool:
    """A zero-length blob whose ``hdi_isfolder`` (any case) is true: a folder to ADLS Gen2."""
    return size == 0 and any(k.lower() == FOLDER_KEY and v.strip().lower() == "true"
                             for k, v in meta.items())


def decode_metadata(meta: dict[str, str] | Any) -> dict[str, str]:
    """Azure metadata as it was before ``encode_metadata``: names and values."""
    return {decode_metadata_name(k): decode_metadata_value(v) for k, v in dict(meta).items()}
