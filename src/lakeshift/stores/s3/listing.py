"""ListObjectsV2 and GetBucketEncryption as botocore sends and parses them, for
``stores/wire/``.

A listing page through botocore cost ~0.1 s of client CPU to create the client (its service
model) and then ~10 µs per key: its generic XML parser builds a dict per element from the
shape, and every request passes through its event hooks, on a thread.  Here a page is one
SigV4-signed GET (``sigv4.py``, on the reads' connection pool) and one ``ElementTree`` parse
(the C parser) that takes only the fields lakeshift uses.

As botocore's S3 client does: ``encoding-type=url`` is asked for on every listing (S3 then
percent-encodes the keys, so keys holding characters XML 1.0 cannot carry still list), and
when the response says ``<EncodingType>url</EncodingType>`` the keys, the common prefixes
and the echoed Prefix/Delimiter/StartAfter are decoded with ``unquote_plus`` (S3 writes a
space as ``+``).  ``tests/unit/test_s3_listing.py`` parses the same bodies with botocore's
own parser and handlers and compares the results field by field.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_plus

from lakeshift.model import quick_init

#: The fields of a Contents element that lakeshift reads.
_FIELDS = frozenset({"Key", "LastModified", "ETag", "Size", "StorageClass"})


@quick_init
@dataclass(frozen=True, slots=True)
class Listed:
    """One Contents element (as botocore names its fields)."""

    key: str
    size: int
    last_modified: datetime | None
    etag: str | None  # as sent, quotes and all
    storage_class: str | None


@dataclass(frozen=True, slots=True)
class ListResult:
    contents: list[Listed]
    common_prefixes: list[str]
    is_truncated: bool
    next_token: str | None
    key_count: int | None


def list_query(prefix: str, max_keys: int, token: str | None = None,
               start_after: str | None = None,
               delimiter: str | None = None) -> list[tuple[str, str]]:
    """The ListObjectsV2 query parameters, as botocore sends them for the same call
    (``encoding-type=url`` added, as its S3 client adds it)."""
    params = [("list-type", "2"), ("prefix", prefix), ("max-keys", str(max_keys)),
              ("encoding-type", "url")]
    if delimiter:
        params.append(("delimiter", delimiter))
    if token:
        params.append(("continuation-token", token))
    if start_after:
        params.append(("start-after", start_after))
    return params


def parse_list(body: bytes) -> ListResult:
    """A ListObjectsV2 response body (ListBucketResult).  ValueError when it is not one:
    a body cut short, or something else answered."""
    root = _root(body)
    tag = root.tag
    ns = tag[:tag.index("}") + 1] if tag.startswith("{") else ""
    if tag[len(ns):] != "ListBucketResult":
        raise ValueError(f"not a ListBucketResult: <{tag[len(ns):]}>")
    cut = len(ns)
    encoded = root.findtext(ns + "EncodingType") == "url"
    contents: list[Listed] = []
    prefixes: list[str] = []
    truncated = False
    token = None
    count = None
    for el in root:
        name = el.tag[cut:]
        if name == "Contents":
            f = {c.tag[cut:]: c.text or "" for c in el if c.tag[cut:] in _FIELDS}
            key = f.get("Key", "")
            modified = f.get("LastModified")
            size = f.get("Size")
            if encoded and ("%" in key or "+" in key):
                key = unquote_plus(key)
            contents.append(Listed(key,
                                   int(size) if size else 0,
                                   parse_timestamp(modified) if modified else None,
                                   f.get("ETag"), f.get("StorageClass")))
        elif name == "CommonPrefixes":
            p = el.findtext(ns + "Prefix") or ""
            prefixes.append(unquote_plus(p) if encoded else p)
        elif name == "IsTruncated":
            truncated = el.text == "true"  # (botocore: only the text "true" is True)
        elif name == "NextContinuationToken":
            token = el.text or ""
        elif name == "KeyCount":
            count = int(el.text) if el.text else None
    return ListResult(contents, prefixes, truncated, token, count)


def parse_timestamp(text: str) -> datetime:
    """A LastModified: the same instant botocore's parser gives (S3 sends ISO 8601 in UTC,
    ``2026-12-01T14:05:33.000Z``, which ``fromisoformat`` reads in C); any other form goes
    to botocore's parser (``timestamps.parse_timestamp``)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        from lakeshift.stores.s3.timestamps import parse_timestamp as botocore_parse

        return botocore_parse(text)
    return when


def parse_encryption(body: bytes) -> set[str]:
    """The SSEAlgorithm of each rule of a GetBucketEncryption response (ValueError when
    the body is not XML)."""
    root = _root(body)
    tag = root.tag
    ns = tag[:tag.index("}") + 1] if tag.startswith("{") else ""
    return {el.text or "" for el in root.iter(ns + "SSEAlgorithm")}


def _root(body: bytes) -> ET.Element:
    try:
        return ET.fromstring(body)
    except ET.ParseError as e:  # (a SyntaxError, not a ValueError)
        raise ValueError(f"not whole XML: {e}") from None
