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
from operator import attrgetter
from typing import Any
from urllib.parse import unquote_plus

from lakeshift.model import ObjectInfo, quick_init

#: A Contents element's fields as ``parse_list`` reads them: (key, size, last modified,
#: ETag as sent, storage class) -- a tuple, not a record, per listed key.
Row = tuple[str, int, datetime | None, str | None, str | None]


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
    #: The Contents elements: (key, size, last modified, ETag, storage class) tuples
    #: (``contents`` gives them as ``Listed`` records), or the listing's ObjectInfos
    #: when parsed with ``etag_md5`` (``parse_list(body, etag_md5)``: S3Store.list_page).
    rows: list[Any]
    common_prefixes: list[str]
    is_truncated: bool
    next_token: str | None
    key_count: int | None

    @property
    def contents(self) -> list[Listed]:
        """Each Contents element as a ``Listed`` (when parsed without ``etag_md5``)."""
        return [Listed(*r) for r in self.rows]


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


def parse_list(body: bytes, etag_md5: bool | None = None) -> ListResult:
    """A ListObjectsV2 response body (ListBucketResult).  ValueError when it is not one:
    a body cut short, or something else answered.

    Its ``rows`` are (key, size, last modified, ETag as sent, storage class) tuples; with
    ``etag_md5`` (True or False) they are the ObjectInfos S3Store.list_page gives instead
    (ETag unquoted; its MD5 when ``etag_md5`` and it is one; folder marker; STANDARD when
    no storage class came): one record per key, not a ``Listed`` and then an ObjectInfo.
    A Contents element's children are read in one C-level pass (``zip`` of their tags and
    texts into a dict), not a Python step per child."""
    root = _root(body)
    tag = root.tag
    ns = tag[:tag.index("}") + 1] if tag.startswith("{") else ""
    if tag[len(ns):] != "ListBucketResult":
        raise ValueError(f"not a ListBucketResult: <{tag[len(ns):]}>")
    encoded = root.findtext(ns + "EncodingType") == "url"
    contents_tag, prefixes_tag = ns + "Contents", ns + "CommonPrefixes"
    key_tag, modified_tag, etag_tag = ns + "Key", ns + "LastModified", ns + "ETag"
    size_tag, class_tag = ns + "Size", ns + "StorageClass"
    infos = etag_md5 is not None
    rows: list[Any] = []
    prefixes: list[str] = []
    truncated = False
    token = None
    count = None
    fromisoformat = datetime.fromisoformat
    for el in root:
        name = el.tag
        if name == contents_tag:
            f = dict(zip(map(_tag, el), map(_text, el), strict=True))
            key = f.get(key_tag) or ""
            if encoded and ("%" in key or "+" in key):
                key = unquote_plus(key)
            size = f.get(size_tag)
            modified = f.get(modified_tag)
            when = None
            if modified:
                try:  # (parse_timestamp's own first step, inline)
                    when = fromisoformat(modified)
                except ValueError:
                    pass
                if when is None or when.tzinfo is None:
                    when = parse_timestamp(modified)
            etag = f.get(etag_tag)
            storage_class = f.get(class_tag)
            if not infos:
                if etag is None and etag_tag in f:
                    etag = ""  # (present and empty: "", as botocore gives it)
                if storage_class is None and class_tag in f:
                    storage_class = ""
                rows.append((key, int(size) if size else 0, when, etag, storage_class))
                continue
            md5 = None
            if etag:  # (props.unquote_etag and reads.md5_from_etag, inline)
                etag = etag.strip()
                if etag.startswith("W/"):
                    etag = etag[2:]
                etag = etag.strip('"') or None
                if etag_md5 and etag is not None and len(etag) == 32 and "-" not in etag:
                    try:
                        md5 = bytes.fromhex(etag)
                    except ValueError:
                        pass
            else:
                etag = None
            size_n = int(size) if size else 0
            rows.append(ObjectInfo(key, size_n, when, etag, md5,
                                   size_n == 0 and key.endswith("/"), None,
                                   # STANDARD when absent: some S3-compatible stores omit it.
                                   storage_class or "STANDARD"))
        elif name == prefixes_tag:
            p = el.findtext(ns + "Prefix") or ""
            prefixes.append(unquote_plus(p) if encoded else p)
        else:
            name = name[len(ns):]
            if name == "IsTruncated":
                truncated = el.text == "true"  # (botocore: only the text "true" is True)
            elif name == "NextContinuationToken":
                token = el.text or ""
            elif name == "KeyCount":
                count = int(el.text) if el.text else None
    return ListResult(rows, prefixes, truncated, token, count)


_tag, _text = attrgetter("tag"), attrgetter("text")


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
