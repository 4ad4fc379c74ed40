"""What a Blob service request carries and what its answer holds, as the Blob service REST
reference spells them (each operation's page): the API version, the blob's property and
metadata headers of Put Blob, Put Block List and the From-URL operations, block IDs and the
block list, blob names in a path, and the List Blobs and Get User Delegation Key bodies.
Plain functions of their arguments; the lean Blob client (azure/rest.py) sends them."""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from lakeshift.model import ObjectInfo, ObjectProps
from lakeshift.stores.props import is_folder_blob, unquote_etag

API_VERSION = "2023-11-03"
#: The largest source Copy Blob From URL (synchronous) takes; Put Blob From URL takes 5000 MiB
#: (above it: Put Block From URL per block, then Put Block List).
SYNC_COPY_MAX = 256 * 1024 * 1024
PUT_FROM_URL_MAX = 5000 * 1024 * 1024

_PROPERTY_HEADERS = (
    ("content_type", "x-ms-blob-content-type"),
    ("content_encoding", "x-ms-blob-content-encoding"),
    ("content_language", "x-ms-blob-content-language"),
    ("cache_control", "x-ms-blob-cache-control"),
    ("content_disposition", "x-ms-blob-content-disposition"),
)

#: Text ``quote(text, safe="/")`` leaves as it is (checked in one C call before quoting).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~/-]*")


_b2a = binascii.b2a_base64


def _b64(data: bytes) -> str:
    """``base64.b64encode(data).decode()`` in one C call (no Python wrapper per request)."""
    return binascii.b2a_base64(data, newline=False).decode()


def quote_key(key: str) -> str:
    """A blob name as the request path carries it: ``quote(key, safe="/")``."""
    return key if _UNRESERVED.fullmatch(key) else quote(key, safe="/")


@dataclass(frozen=True, slots=True)
class DelegationKey:
    """A user delegation key as Get User Delegation Key returns it (``value`` is base64 and
    a secret; the other fields go into every SAS signed with it)."""

    oid: str
    tid: str
    start: str
    expiry: str
    service: str
    version: str
    value: str


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of List Blobs: blobs, folder prefixes (with a delimiter), next marker."""

    objects: Sequence[ObjectInfo]
    prefixes: Sequence[str]
    marker: str | None


def _property_headers(props: ObjectProps, md5: bytes | None,
                      metadata: dict[str, str]) -> dict[str, str]:
    """The blob's ``x-ms-blob-*`` properties (the MD5 to store among them) and metadata,
    for Put Blob and Put Block List."""
    headers: dict[str, str] = {}
    if md5 is not None:
        headers["x-ms-blob-content-md5"] = _b2a(md5, newline=False).decode()  # (_b64)
    for field, header in _PROPERTY_HEADERS:
        value = getattr(props, field)
        if value:
            headers[header] = value
    headers.setdefault("x-ms-blob-content-type", "application/octet-stream")
    for name, value in metadata.items():
        headers[f"x-ms-meta-{name}"] = value
    return headers


def _blob_headers(props: ObjectProps, md5: bytes | None,
                  metadata: dict[str, str]) -> dict[str, str]:
    """Put Blob headers: ``Content-MD5`` (checked by the service) and the same MD5 as
    ``x-ms-blob-content-md5`` (stored), the blob's properties and its metadata.  Without
    ``md5`` the service stores the MD5 it computes itself (and returns it)."""
    headers = _property_headers(props, md5, metadata)
    headers["x-ms-blob-type"] = "BlockBlob"
    if md5 is not None:
        headers["Content-MD5"] = headers["x-ms-blob-content-md5"]
    # The request's Content-Type is signed: send the blob's own.
    headers["Content-Type"] = headers["x-ms-blob-content-type"]
    return headers


def put_from_url_headers(url: str, props: ObjectProps, md5: bytes,
                         metadata: dict[str, str]) -> dict[str, str]:
    """Put Blob From URL: the service reads ``url`` and creates the blob with the
    properties we know and our metadata, only if what it read has MD5 ``md5``
    (``x-ms-source-content-md5``), which it also stores (``x-ms-blob-content-md5``)."""
    headers = _property_headers(props, md5, metadata)
    if props.content_type is None:
        # Not known here (an S3 listing has none): the service takes the source's own, as
        # it copies the properties of what it reads (x-ms-copy-source-blob-properties).
        del headers["x-ms-blob-content-type"]
    headers.update({"x-ms-blob-type": "BlockBlob", "x-ms-copy-source": url,
                    "x-ms-source-content-md5": base64.b64encode(md5).decode()})
    return headers


def copy_from_url_headers(url: str, md5: bytes, metadata: dict[str, str],
                          source_etag: str | None) -> dict[str, str]:
    """Copy Blob From URL (synchronous, a blob of this service up to SYNC_COPY_MAX): the
    blob's properties, Content-MD5 included, come with it; the service checks what it read
    against ``md5`` and reads only version ``source_etag``; the metadata is ours (with the
    source's ETag that the skip rule reads)."""
    headers = {"x-ms-copy-source": url, "x-ms-requires-sync": "true",
               "x-ms-source-content-md5": base64.b64encode(md5).decode()}
    if source_etag:
        headers["x-ms-source-if-match"] = f'"{source_etag}"'
    for name, value in metadata.items():
        headers[f"x-ms-meta-{name}"] = value
    return headers


def put_block_from_url_headers(url: str, start: int, end: int,
                               source_etag: str | None) -> dict[str, str]:
    """Put Block From URL: the service reads bytes ``start`` to ``end`` (exclusive) of
    ``url`` (``x-ms-source-range``, inclusive as HTTP ranges are) and stages them as a
    block; ``source_etag`` (a blob of this service) makes it read only that version."""
    headers = {"x-ms-copy-source": url, "x-ms-source-range": f"bytes={start}-{end - 1}"}
    if source_etag:
        headers["x-ms-source-if-match"] = f'"{source_etag}"'
    return headers


def parse_list(body: bytes) -> ListPage:
    """A List Blobs response (EnumerationResults)."""
    root = ET.fromstring(body)
    objects: list[ObjectInfo] = []
    prefixes: list[str] = []
    blobs = root.find("Blobs")
    for el in blobs if blobs is not None else ():
        if el.tag == "BlobPrefix":
            prefixes.append(_name(el))
        elif el.tag == "Blob":
            objects.append(_blob_info(el))
    return ListPage(objects, prefixes, root.findtext("NextMarker") or None)


def _name(el: ET.Element) -> str:
    """A Name element; names with characters XML cannot carry come percent-encoded."""
    name = el.find("Name")
    if name is None:
        return ""
    text = name.text or ""
    return unquote(text) if name.get("Encoded") == "true" else text


def _blob_info(el: ET.Element) -> ObjectInfo:
    p = el.find("Properties")
    prop = {c.tag: c.text or "" for c in p} if p is not None else {}
    m = el.find("Metadata")
    meta = {c.tag: c.text or "" for c in m} if m is not None else {}
    return _object_info(_name(el), prop.get("Content-Length"), prop.get("Last-Modified"),
                        prop.get("Etag"), prop.get("Content-MD5"), meta,
                        prop.get("AccessTier") or None)


def _object_info(key: str, length: str | None, modified: str | None, etag: str | None,
                 md5: str | None, meta: dict[str, str], tier: str | None = None) -> ObjectInfo:
    size = int(length or 0)
    return ObjectInfo(key, size, parsedate_to_datetime(modified) if modified else None,
                      unquote_etag(etag), base64.b64decode(md5) if md5 else None,
                      is_folder_blob(size, meta), meta, tier)


def _wire_id(block_id: str) -> str:
    """Block IDs travel base64-encoded (as the SDK sends them)."""
    return base64.b64encode(block_id.encode()).decode()


def _block_list_xml(block_ids: Sequence[str]) -> bytes:
    items = "".join(f"<Latest>{_wire_id(i)}</Latest>" for i in block_ids)
    return f'<?xml version="1.0" encoding="utf-8"?><BlockList>{items}</BlockList>'.encode()

