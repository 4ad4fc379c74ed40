"""The Blob service REST API over the wire client: every Azure operation lakeshift sends.

Measured (bench/README.md): the azure-storage-blob SDK spent ~2 ms of client CPU per Put
Blob, several times the cost of the request itself, and importing it costs ~0.15 s at every
start; on small files client CPU decides throughput, on a short run the start-up does.  This
module sends the same requests — Put Blob (whole or streamed) with ``Content-MD5`` (transit
check) and ``x-ms-blob-content-md5`` (stored), Put Block, Put Block List, List Blobs, Get
Blob Properties, Delete Blob, Create Container, Get Account Information — authorised with
Shared Key, a SAS or an Entra ID bearer token, following the Blob service REST reference
("Authorize with Shared Key", "Authorize with Microsoft Entra ID", each operation's page).
The requests go through ``stores.wire`` (a lean HTTP/1.1 client): aiohttp spent ~0.3 ms of
client CPU per request, about a quarter of a small object's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import cmp_to_key, lru_cache
from itertools import repeat
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from lakeshift.errors import (
    ArchivedError,
    AuthError,
    ConnectError,
    ForbiddenError,
    IntegrityError,
    InvalidNameError,
    LakeshiftError,
    MissingContainerError,
    NotFoundError,
    ServerCopyUnavailable,
    ThrottledError,
    TransientError,
    UsageError,
)
from lakeshift.model import Data, ObjectInfo, ObjectProps
from lakeshift.redact import redact, register_secret
from lakeshift.stores import http, wire
from lakeshift.stores.base import Pieces
from lakeshift.stores.keyed_mac import _MACS, mac_of
from lakeshift.stores.props import is_folder_blob, unquote_etag
from lakeshift.stores.reach import Endpoint, first_contact, not_the_service

API_VERSION = "2023-11-03"
#: The service could not read a copy source (CannotVerifyCopySource: unreachable, refused, not
#: found from where it stands), or does not do From-URL requests at all (501 NotImplemented:
#: Azurite answers Put Blob From URL so).
COPY_SOURCE_CODES = ("CannotVerifyCopySource", "NotImplemented")
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


# The order in which the Blob service sorts x-ms- header names when it checks a Shared Key
# signature: not ordinal (Python's sorted) but a two-level collation in which '-' and "'"
# weigh nothing at the first level (so "x-ms-meta-my_x2D_key" and "x-ms-meta-my1" compare
# as "xmsmetamy_x2D_key" and "xmsmetamy1", and '_' sorts before digits).  The weights are the
# service's, as published in azure-storage-blob (_shared/authentication.py, MIT licence),
# which the differential test in tests/unit/test_azure_signer.py checks against.
_WEIGHTS_1 = (
    [0x0] * 33
    + [0x71C, 0x0, 0x71F, 0x721, 0x723, 0x725, 0x0, 0x0, 0x0, 0x72D, 0x803, 0x0, 0x0, 0x733,
       0x0, 0xD03, 0xD1A, 0xD1C, 0xD1E, 0xD20, 0xD22, 0xD24, 0xD26, 0xD28, 0xD2A, 0x0, 0x0,
       0x0, 0x0, 0x0, 0x0, 0x0]
    + [0xE02, 0xE09, 0xE0A, 0xE1A, 0xE21, 0xE23, 0xE25, 0xE2C, 0xE32, 0xE35, 0xE36, 0xE48,
       0xE51, 0xE70, 0xE7C, 0xE7E, 0xE89, 0xE8A, 0xE91, 0xE99, 0xE9F, 0xEA2, 0xEA4, 0xEA6,
       0xEA7, 0xEA9]
    + [0x0, 0x0, 0x0, 0x743, 0x744, 0x748]
    + [0xE02, 0xE09, 0xE0A, 0xE1A, 0xE21, 0xE23, 0xE25, 0xE2C, 0xE32, 0xE35, 0xE36, 0xE48,
       0xE51, 0xE70, 0xE7C, 0xE7E, 0xE89, 0xE8A, 0xE91, 0xE99, 0xE9F, 0xEA2, 0xEA4, 0xEA6,
       0xEA7, 0xEA9]
    + [0x0, 0x74C, 0x0, 0x750, 0x0]
)
_WEIGHTS_2 = [0x0] * 39 + [0x8012] + [0x0] * 5 + [0x8212] + [0x0] * 82


def _service_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as the service orders header names ``a`` and ``b`` (see the weights)."""
    tables = (_WEIGHTS_1, _WEIGHTS_2)
    level, i, j = 0, 0, 0
    while level < len(tables):
        if level == len(tables) - 1 and i != j:
            return -1 if i > j else 1
        table = tables[level]
        w1 = table[ord(a[i])] if i < len(a) and ord(a[i]) < 128 else (1 if i >= len(a) else 0)
        w2 = table[ord(b[j])] if j < len(b) and ord(b[j]) < 128 else (1 if j >= len(b) else 0)
        if w1 == 1 and w2 == 1:
            level, i, j = level + 1, 0, 0
        elif w1 == w2:
            i, j = i + 1, j + 1
        elif w1 == 0:
            i += 1
        elif w2 == 0:
            j += 1
        else:
            return -1 if w1 < w2 else 1
    return 0


@lru_cache(maxsize=1024)
def _service_order(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` in the service's order: the same few sets of header names recur on every
    request, and sorting them with ``_service_compare`` in Python cost ~34 µs a request
    (of ~1.5 ms of client CPU per small object)."""
    return tuple(sorted(names, key=cmp_to_key(_service_compare)))


def canonical_resource(account: str, url: str) -> str:
    """``/account/path`` (the path as sent, percent-encoded) and one ``\nname:value`` line
    per query parameter: names lowercased and sorted, values percent-decoded (``+`` stays
    ``+``), repeated names' values sorted and joined by commas."""
    if "?" not in url and "#" not in url:
        # No query (Shared Key requests on a blob): the path is what follows the origin.
        start = url.find("//")
        slash = url.find("/", start + 2) if start >= 0 else url.find("/")
        return f"/{account}{url[slash:] if slash >= 0 else ''}"
    split = urlsplit(url)
    resource = f"/{account}{split.path}"
    query: dict[str, list[str]] = {}
    for pair in split.query.split("&") if split.query else ():
        name, _, value = pair.partition("=")
        query.setdefault(unquote(name).lower(), []).append(unquote(value))
    for name in sorted(query):
        resource += f"\n{name}:{','.join(sorted(query[name]))}"
    return resource


#: The standard headers Shared Key signs, in its order (Date: always empty, x-ms-date is
#: sent); Content-Length is signed empty when it is 0.
_SIGNED_STANDARD = ("content-encoding", "content-language", "content-length", "content-md5",
                    "content-type", "date", "if-modified-since", "if-match", "if-none-match",
                    "if-unmodified-since", "range")


@lru_cache(maxsize=1024)
def _signing_plan(names: tuple[str, ...]) -> tuple[tuple[str | None, ...], tuple[str, ...],
                                                   tuple[str, ...]]:
    """For a request's header names as given (in order), which of them Shared Key signs:
    per standard header the name that holds it (None: empty), and the ``x-ms-`` headers'
    "lowercase name:" prefixes and the names given, in the service's order.  Where two names
    differ only in case the later one counts, as in a dict of the lowercased names.  The
    same few name lists recur on every request: built once each."""
    given = {name.lower(): name for name in names}
    standard = tuple(None if n == "date" else given.get(n) for n in _SIGNED_STANDARD)
    xms = _service_order(tuple(sorted(n for n in given if n.startswith("x-ms-"))))
    return standard, tuple(f"{n}:" for n in xms), tuple(given[n] for n in xms)


_EMPTY = repeat("")


def shared_key_signature(account: str, key: bytes, method: str, url: str,
                         headers: dict[str, str]) -> str:
    """The ``Authorization`` value for the Blob service (Shared Key, version 2015-02-21+).

    As the service and azure-storage-blob compute it: ``x-ms-`` header names lowercased and
    put in the service's order (``_service_compare``), values exactly as sent (no folding of
    inner whitespace: the service does not fold, and ``a  b`` signed as ``a b`` is
    rejected).  A value must not begin or end with whitespace, which HTTP drops in transit
    (``props.encode_metadata_value`` sees to it for metadata).  The string to sign is
    assembled in C-level maps over the cached plan (no Python step per header)."""
    standard, prefixes, names = _signing_plan(tuple(headers))
    parts = [method]
    parts.extend(map(headers.get, standard, _EMPTY))  # type: ignore[arg-type]  # (None: "")
    if parts[3] == "0":  # Content-Length 0 is signed empty
        parts[3] = ""
    parts.extend(map(str.__add__, prefixes, map(headers.__getitem__, names)))
    parts.append(canonical_resource(account, url))
    to_sign = "\n".join(parts)
    # HMAC-SHA256 from the key's states set up once (keyed_mac.KeyedMAC.digest, inline).
    mac = _MACS.get(key) or mac_of(key)
    inner = mac.inner.copy()
    inner.update(to_sign.encode("utf-8"))
    outer = mac.outer.copy()
    outer.update(inner.digest())
    digest = outer.digest()
    return f"SharedKey {account}:{_b2a(digest, newline=False).decode()}"  # (_b64, inline)


AUTH_CODES = frozenset({"AuthenticationFailed", "AuthorizationFailure",
                        "InvalidAuthenticationInfo", "NoAuthenticationInformation"})


def status_error(status: int, code: str, what: str, retry_after: str | None = None,
                 message: str = "", request_id: str = "",
                 credentials_worked: bool = False) -> LakeshiftError:
    """The lakeshift error for an Azure Storage HTTP status and x-ms-error-code.

    An authorisation code is the run's end (AuthError, exit 3) only while the credentials
    have not yet worked; once a request with them has succeeded, it is about this one request
    (a blob the SAS or role does not cover, a signature this request alone got wrong) and
    fails only its object, recorded with the code and the service's request ID."""
    ref = f", request {request_id}" if request_id else ""
    if code in COPY_SOURCE_CODES or status == 501:
        # (Before the auth codes: a source the service may not read is not our credential.)
        return ServerCopyUnavailable(f"{what}: the service cannot copy from the source "
                                     f"itself ({code or status}{ref})")
    if code in AUTH_CODES:
        if credentials_worked:
            return ForbiddenError(f"{what}: the service refused this request ({code}{ref})")
        return AuthError(f"{what}: Azure credentials rejected ({code}): check "
                         "AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_KEY / the SAS")
    if code == "BlobArchived":
        return ArchivedError(f"{what}: archived (Archive tier): rehydrate it to Hot or Cool, "
                             "or pass --skip-errors archived to record and skip it")
    if code == "ContainerNotFound":
        return MissingContainerError(f"{what}: container/filesystem does not exist: create it "
                                     "or fix the URL")
    if status == 404:
        return NotFoundError(f"{what}: not found")
    # Azure says Md5Mismatch; Azurite says InvalidOperation "Provided contentMD5 doesn't match."
    if code in ("Md5Mismatch", "InvalidMd5") or (
            status == 400 and "md5" in message.lower() and "match" in message.lower()):
        return IntegrityError(f"{what}: the service saw a different MD5 ({code})")
    if code == "Crc64Mismatch":  # (x-ms-content-crc64: CRC-64/NVME of the body)
        return IntegrityError(f"{what}: the service saw a different CRC64 ({code})")
    if code == "FeatureNotSupported":
        # Azurite in strict mode (500) refuses what it does not emulate, x-ms-content-crc64
        # among them; its message names the fix (--loose).
        said = re.search(r"<Message>([^<\n]*)", message)
        return UsageError(f"{what}: the service does not support a request lakeshift sends "
                          f"({code}: {said.group(1).strip() if said else message[:200]})")
    if code in ("InvalidResourceName", "InvalidUri", "OutOfRangeInput"):
        return InvalidNameError(f"{what}: invalid name at the destination ({code})")
    if status == 403:
        return ForbiddenError(f"{what}: permission denied ({code or status}{ref})")
    if status in (429, 503) or code in ("ServerBusy", "OperationTimedOut"):
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        return ThrottledError(f"{what}: throttled ({code or status})", delay)
    if status >= 500 or status in (408, 0):
        return TransientError(f"{what}: {code or status} {message}")
    return LakeshiftError(f"{what}: {code or status} {message}")


def _looks_like_s3(headers: Any, body: bytes) -> bool:
    """Whether an answer came from an S3 service: its ``x-amz-…`` headers (moto's
    ``x-amzn-requestid``), or S3's error naming a bucket."""
    return any(name.lower().startswith("x-amz") for name in headers) or \
        b"<BucketName>" in body[:4096]


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


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """Now as an HTTP date (x-ms-date), formatted once a second: formatting it for every
    request cost ~10-30 µs, a tenth of a small object's request."""
    global _date_cache
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache = (now, format_datetime(datetime.fromtimestamp(now, UTC), usegmt=True))
    return _date_cache[1]


def _wire_id(block_id: str) -> str:
    """Block IDs travel base64-encoded (as the SDK sends them)."""
    return base64.b64encode(block_id.encode()).decode()


def _block_list_xml(block_ids: Sequence[str]) -> bytes:
    items = "".join(f"<Latest>{_wire_id(i)}</Latest>" for i in block_ids)
    return f'<?xml version="1.0" encoding="utf-8"?><BlockList>{items}</BlockList>'.encode()


#: The Entra ID scope of Azure Storage (Blob and DFS endpoints).
STORAGE_SCOPE = "https://storage.azure.com/.default"
#: The Entra ID scope of Azure Data Lake Store Gen1.
GEN1_SCOPE = "https://datalake.azure.net/.default"
_SERVICE_NAMES = {STORAGE_SCOPE: "Azure Storage", GEN1_SCOPE: "ADLS Gen1"}


def _no_connection(e: BaseException) -> str | None:
    """Why azure-identity's token request opened no connection (``connection refused``,
    ``connect timed out after 10 s``, ``certificate not trusted (…)``, as wire says it), or
    None when it failed otherwise (an answer, a read that timed out).  Found also beneath
    the error a credential raised in its place (a managed identity's
    CredentialUnavailableError "no response from the IMDS endpoint", from the connect's)."""
    from azure.core.exceptions import ServiceRequestError

    seen: BaseException | None = e
    for _ in range(8):  # the chain of causes, not followed round a loop
        if seen is None or isinstance(seen, ServiceRequestError):
            break
        seen = seen.__cause__ or seen.__context__
    if not isinstance(seen, ServiceRequestError):
        return None
    e = seen
    cause = e.inner_exception or e.__cause__
    certificate = getattr(cause, "certificate_error", None)  # aiohttp's connector errors
    if isinstance(certificate, OSError):
        return wire.connect_reason(certificate)
    if isinstance(cause, TimeoutError):
        return f"connect timed out after {http.CONNECT_SECONDS:g} s"
    os_error = getattr(cause, "os_error", None)
    if isinstance(os_error, OSError):
        return wire.connect_reason(os_error)
    if isinstance(cause, OSError):
        return wire.connect_reason(cause)
    return redact(str(cause or e).splitlines()[0][:200]) if str(cause or e) else \
        type(cause or e).__name__


async def _timed_out_how(url: str) -> str:
    """Why a token request's connect to ``url`` timed out: azure-core's one connect limit
    covers TCP and TLS together, so a TCP connection alone, opened now within a tenth of
    that limit, tells a TLS handshake that never completed (something accepts connections
    and never answers TLS: a proxy, a firewall) from a connect that never did.  Not asked
    when azure-identity goes through a proxy (its connect went there, not to ``url``)."""
    import urllib.request  # (here: its import is not free, and only a failure needs it)

    limit = http.CONNECT_SECONDS
    timed_out = f"connect timed out after {limit:g} s"
    split = urlsplit(url)
    host = split.hostname
    if split.scheme != "https" or not host or (
            urllib.request.getproxies_environment().get("https")
            and not urllib.request.proxy_bypass(host)):
        return timed_out
    try:
        async with asyncio.timeout(limit / 10):
            opened, _ = await asyncio.get_running_loop().create_connection(
                asyncio.Protocol, host, split.port or 443)
    except (OSError, TimeoutError):
        return timed_out
    opened.close()
    return wire.tls_stalled(limit)


class BearerTokens:
    """Entra ID access tokens for one ``scope`` (Azure Storage by default, ADLS Gen1 for
    adl:// sources) from an azure-identity async credential, fetched when first needed and
    renewed five minutes before they expire, or at once after ``expire()``.

    azure-identity's credentials cache their tokens until they near expiry, so asking the
    same credential again after the service refused a token would hand back the refused
    one: ``renew`` (when given) builds a fresh credential for that.  ``close()`` closes
    every credential used.

    ``authority`` (a service principal's token endpoint or a managed identity's,
    ``auth.token_authority``): the first token request is that endpoint's first contact
    (stores/reach.py): each try connects within ``http.CONNECT_SECONDS`` and no connect is
    tried again inside azure-identity (whose own limits are 300 s a connect, four times), so
    an endpoint that never answers is one line naming it and its setting within the
    first-contact bound, not minutes of silence (a connect that timed out is told from a TLS
    handshake that did not complete: ``_timed_out_how``).  Later requests (renewals mid-run)
    keep azure-identity's own retries.  The Azure CLI has no endpoint: its credential
    (azure/cli_token.py) bounds itself and raises its own one line."""

    def __init__(self, credential: Any, scope: str = STORAGE_SCOPE,
                 renew: Callable[[], Any] | None = None,
                 authority: Endpoint | None = None) -> None:
        self.credential = credential
        self.scope = scope
        self.authority = authority
        self._renew = renew
        self._retired: list[Any] = []
        self._token: str | None = None
        self._expires = 0.0
        self._reached = False
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token is None or time.time() > self._expires - 300:
            async with self._lock:
                while self._retired:  # replaced by renew: nothing asks them any more
                    await self._retired.pop().close()
                if self._token is None or time.time() > self._expires - 300:
                    if self.authority is not None and not self._reached:
                        t = await first_contact(self._first_token, self.authority)
                    else:
                        t = await self._ask()
                    self._reached = True
                    self._token, self._expires = t.token, float(t.expires_on)
        assert self._token is not None
        return self._token

    async def _ask(self, **bounds: Any) -> Any:
        try:
            return await self.credential.get_token(self.scope, **bounds)
        except LakeshiftError:
            raise  # lakeshift's own credential (the Azure CLI's) says it in its own words
        except Exception as e:  # azure-identity raises several classes
            reason = _no_connection(e) if bounds else None
            if reason is not None:
                if reason.startswith("connect timed out") and self.authority is not None:
                    reason = await _timed_out_how(self.authority.url)
                raise ConnectError(f"Entra ID token request: {reason}", reason) from None
            first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            service = _SERVICE_NAMES.get(self.scope, self.scope)
            raise AuthError(redact(f"no Entra ID token for {service}: {first} — check "
                                   "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or the "
                                   "--azure-auth credential")) from None

    async def _first_token(self) -> Any:
        # azure-core's per-request options, passed on by azure-identity's get_token: the
        # connect limit, and no connect tried again there (first_contact does that).  A
        # response cut short is still tried again there, as later.
        return await self._ask(connection_timeout=http.CONNECT_SECONDS, retry_connect=0)

    def expire(self, refused: str | None = None) -> None:
        """Forget the token (the service said it expired): the next request gets a new one,
        from a fresh credential when ``renew`` was given.  With ``refused`` (the token the
        service refused), only when that is still the current one: requests refused
        together renew once, not once each.  The replaced credential is closed at the next
        ``get``."""
        if refused is not None and refused != self._token:
            return
        self._token = None
        if self._renew is not None:
            self._retired.append(self.credential)
            self.credential = self._renew()

    async def close(self) -> None:
        for credential in (*self._retired, self.credential):
            await credential.close()
        self._retired.clear()


class LeanBlobClient:
    """The Blob operations of one container (and its account); owns a ``wire.Pool`` of
    connections to the endpoint's origin (close it).  Every method raises lakeshift errors
    (``status_error``).  Authorised by Shared Key (``key``), a SAS (``sas``) or Entra ID
    (``tokens``)."""

    #: An upload whose connection takes no data for this long is given up (and retried);
    #: ``http.STALL_SECONDS`` when None.
    stall_seconds: float | None = None

    def __init__(self, endpoint: str, account: str, container: str, key: str | None,
                 sas: str | None, tokens: BearerTokens | None = None,
                 connections: int = 128) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.base = f"{self.endpoint}/{container}"
        self.account = account
        self.key = base64.b64decode(key) if key else None
        self.sas = sas
        self.tokens = tokens
        self.connections = connections
        split = urlsplit(self.endpoint)
        #: What the Pool connects to; a request's target is its URL after this.
        self._origin = f"{split.scheme}://{split.netloc}"
        self._pool: wire.Pool | None = None
        #: The Date header of the last response: the service's clock.
        self.last_date: datetime | None = None
        self._date_text = ""
        #: A request with these credentials has succeeded (see status_error).
        self.credentials_worked = False

    def _client(self) -> wire.Pool:
        if self._pool is None:
            # Over HTTPS the Pool loads the system's trust store when it first connects (so
            # SSL_CERT_FILE as it is then counts; loading it costs ~17 ms).
            self._pool = wire.Pool(self._origin, connections=self.connections)
        return self._pool

    def _url(self, key: str | None, query: str = "") -> str:
        if key is not None:  # (quote_key, inline: a plain key is taken as it is)
            key = key if _UNRESERVED.fullmatch(key) else quote(key, safe="/")
        url = self.base if key is None else f"{self.base}/{key}"
        if self.sas:
            return f"{url}?{query}&{self.sas}" if query else f"{url}?{self.sas}"
        return f"{url}?{query}" if query else url

    # -- account and container -----------------------------------------------------

    async def account_is_hns(self, what: str, first: Endpoint | None = None) -> bool:
        """Get Account Information: does the account have a hierarchical namespace?
        ``first``: as ``_send``'s."""
        params = "&".join(p for p in ("restype=account&comp=properties", self.sas or "") if p)
        headers, _ = await self._send("GET", f"{self.endpoint}/?{params}", {}, b"", what,
                                      first=first)
        return str(headers.get("x-ms-is-hns-enabled", "")).lower() == "true"

    async def user_delegation_key(self, start: datetime, expiry: datetime,
                                  what: str) -> DelegationKey:
        """Get User Delegation Key (an Entra ID token only): the key a user-delegation SAS
        is signed with, valid from ``start`` to ``expiry`` (at most seven days)."""
        when = "%Y-%m-%dT%H:%M:%SZ"
        body = ('<?xml version="1.0" encoding="utf-8"?><KeyInfo>'
                f"<Start>{start.strftime(when)}</Start><Expiry>{expiry.strftime(when)}</Expiry>"
                "</KeyInfo>").encode()
        params = "restype=service&comp=userdelegationkey"
        _, answer = await self._send("POST", f"{self.endpoint}/?{params}",
                                     {"Content-Type": "application/xml"}, body, what)
        try:
            root = ET.fromstring(answer)
        except ET.ParseError as e:
            raise TransientError(f"{what}: user delegation key is not whole XML ({e})") \
                from None
        fields = [root.findtext(name) or "" for name in (
            "SignedOid", "SignedTid", "SignedStart", "SignedExpiry", "SignedService",
            "SignedVersion", "Value")]
        if not fields[-1]:
            raise TransientError(f"{what}: the user delegation key came without a value")
        register_secret(fields[-1])
        return DelegationKey(*fields)

    async def create_container(self, what: str) -> bool:
        """Create Container; False when it already exists."""
        try:
            await self._send("PUT", self._url(None, "restype=container"), {}, b"", what)
        except LakeshiftError as e:
            if "ContainerAlreadyExists" in str(e):
                return False
            raise
        return True

    # -- listing -------------------------------------------------------------------

    async def list_page(self, prefix: str, delimiter: str | None, marker: str | None,
                        what: str, size: int = 5000, first: Endpoint | None = None) -> ListPage:
        """One page of List Blobs, with metadata.  ``first``: as ``_send``'s."""
        q = {"restype": "container", "comp": "list", "include": "metadata",
             "maxresults": str(size)}
        if prefix:
            q["prefix"] = prefix
        if delimiter:
            q["delimiter"] = delimiter
        if marker:
            q["marker"] = marker
        _, body = await self._send("GET", self._url(None, urlencode(q, quote_via=quote)), {},
                                   b"", what, not_found="ContainerNotFound", first=first)
        try:
            return parse_list(body)
        except ET.ParseError as e:
            # A body cut short that still looked complete: the page can be asked for again.
            raise TransientError(f"{what}: listing response is not whole XML ({e})") from None

    # -- blobs ---------------------------------------------------------------------

    async def head(self, key: str, what: str) -> ObjectInfo | None:
        """Get Blob Properties; None when there is no such blob."""
        try:
            h, _ = await self._send("HEAD", self._url(key), {}, b"", what)
        except NotFoundError:
            return None
        meta = {k[len("x-ms-meta-"):]: v for k, v in h.items()
                if k.lower().startswith("x-ms-meta-")}
        return _object_info(key, h.get("Content-Length"), h.get("Last-Modified"),
                            h.get("ETag"), h.get("Content-MD5"), meta)

    async def delete(self, key: str, what: str) -> None:
        """Delete Blob (a blob already gone is fine)."""
        try:
            await self._send("DELETE", self._url(key), {}, b"", what)
        except NotFoundError:
            pass

    async def put(self, key: str, data: Data, props: ObjectProps, md5: bytes,
                  metadata: dict[str, str], what: str) -> None:
        """Put Blob: the whole object in one request (a data request, as ``_send_data``
        sends it; called directly: one coroutine fewer per object)."""
        await self._send("PUT", self._url(key), _blob_headers(props, md5, metadata), data,
                         what, data_request=True)

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes | None, metadata: dict[str, str],
                         what: str) -> bytes | None:
        """Put Blob with the body streamed from ``chunks`` (``size`` bytes in all); returns
        the Content-MD5 the service computed of what it stored (None if it sent none).

        ``Content-MD5`` is ``md5``: the service hashes what it receives and creates the
        blob only when the two agree, so an object is proven end to end without the
        client hashing it.  Without ``md5`` the caller compares the returned MD5 with its
        own.  Should ``chunks`` fail or fall short, the request is cut and no blob is
        created."""
        headers = await self._send_watched("PUT", self._url(key),
                                           _blob_headers(props, md5, metadata), chunks, size,
                                           what)
        returned = headers.get("Content-MD5")
        return base64.b64decode(returned) if returned else None

    async def put_block(self, key: str, block_id: str, data: Data | Pieces, md5: bytes | None,
                        what: str, crc64: bytes | None = None) -> None:
        """Put Block, with the block's MD5 as Content-MD5 or its CRC-64/NVME (8 bytes,
        little-endian) as ``x-ms-content-crc64`` if given: the service checks either (not
        both: a request with both is refused) and answers a mismatch with 400
        Md5Mismatch / Crc64Mismatch (an IntegrityError, see status_error)."""
        headers = {"Content-Type": "application/octet-stream"}
        if md5 is not None:
            headers["Content-MD5"] = _b64(md5)
        elif crc64 is not None:
            headers["x-ms-content-crc64"] = _b64(crc64)
        url = self._url(key, f"comp=block&blockid={quote(_wire_id(block_id), safe='')}")
        if isinstance(data, Pieces):  # sent buffer after buffer, never joined
            await self._send("PUT", url, headers, data.parts, what, length=len(data),
                             data_request=True)
        else:
            await self._send_data("PUT", url, headers, data, what)

    async def _send_data(self, method: str, url: str, headers: dict[str, str], data: Data,
                         what: str) -> None:
        """A request carrying ``data``: no limit on the whole request, the stall limit
        (``wire`` sends it in slices, each of which the connection must take in time)."""
        await self._send(method, url, headers, data, what, data_request=True)

    async def _send_watched(self, method: str, url: str, headers: dict[str, str],
                            chunks: AsyncIterator[bytes | memoryview], size: int,
                            what: str) -> Any:
        """A request whose body (``size`` bytes from ``chunks``) may take any time to send,
        but whose connection may not stop taking data for the stall limit (time spent
        reading the source or waiting for --max-bandwidth is not counted); returns the
        response's headers.  A failing source cuts the request, and its error (not the
        cut) is what is raised."""
        response_headers, _ = await self._send(method, url, headers, chunks, what,
                                               length=size, data_request=True)
        return response_headers

    async def put_from_url(self, key: str, url: str, props: ObjectProps, md5: bytes,
                           metadata: dict[str, str], what: str) -> None:
        """Put Blob From URL (see put_from_url_headers)."""
        await self._send("PUT", self._url(key), put_from_url_headers(url, props, md5, metadata),
                         b"", what, data_request=True)

    async def copy_from_url(self, key: str, url: str, md5: bytes, metadata: dict[str, str],
                            source_etag: str | None, what: str) -> None:
        """Copy Blob From URL (see copy_from_url_headers); the answer says the copy is
        done (x-ms-copy-status: success) or it is an error."""
        headers, _ = await self._send("PUT", self._url(key),
                                      copy_from_url_headers(url, md5, metadata, source_etag),
                                      b"", what, data_request=True)
        status = headers.get("x-ms-copy-status", "")
        if status != "success":
            raise TransientError(f"{what}: the synchronous copy answered {status or 'nothing'}")

    async def put_block_from_url(self, key: str, block_id: str, url: str, start: int,
                                 end: int, source_etag: str | None, what: str) -> bytes | None:
        """Put Block From URL (see put_block_from_url_headers); returns the MD5 the service
        computed of the block it staged (None if it sent none)."""
        query = f"comp=block&blockid={quote(_wire_id(block_id), safe='')}"
        headers, _ = await self._send("PUT", self._url(key, query),
                                      put_block_from_url_headers(url, start, end, source_etag),
                                      b"", what, data_request=True)
        returned = headers.get("Content-MD5")
        return base64.b64decode(returned) if returned else None

    def blob_url(self, key: str) -> str:
        """The blob's URL without any query (a SAS is added by the caller)."""
        return f"{self.base}/{quote(key, safe='/')}"

    async def put_block_list(self, key: str, block_ids: Sequence[str], props: ObjectProps,
                             md5: bytes | None, metadata: dict[str, str],
                             what: str) -> str | None:
        """Put Block List: commit the blocks in order, storing the whole object's MD5 (none
        when ``md5`` is None); returns the committed blob's ETag (unquoted)."""
        body = _block_list_xml(block_ids)
        headers = _property_headers(props, md5, metadata)
        headers["Content-Type"] = "application/xml; charset=utf-8"
        answer, _ = await self._send("PUT", self._url(key, "comp=blocklist"), headers, body,
                                     what)
        return unquote_etag(answer.get("ETag"))

    async def set_properties(self, key: str, props: ObjectProps, md5: bytes,
                             if_match: str | None, what: str) -> str | None:
        """Set Blob Properties: store ``md5`` as the blob's Content-MD5, with ``props``
        (the service replaces every x-ms-blob-* property at once, so all are sent, as Put
        Blob and Put Block List send them; the metadata is left as it is).  With
        ``if_match`` (an ETag) only that version of the blob is changed (412 otherwise).

        For a blob committed without an MD5 and proven afterwards (a server-side block
        copy read back): the MD5 is stored only once the copy is proven.  Returns the
        blob's new ETag (unquoted)."""
        headers = _property_headers(props, md5, {})
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        answer, _ = await self._send("PUT", self._url(key, "comp=properties"), headers, b"",
                                     what)
        return unquote_etag(answer.get("ETag"))

    async def set_metadata(self, key: str, metadata: dict[str, str], if_match: str | None,
                           what: str) -> str | None:
        """Set Blob Metadata: replace the blob's metadata with ``metadata`` (already
        encoded); with ``if_match`` only that version (412 otherwise).  Returns the new
        ETag (unquoted)."""
        headers = {f"x-ms-meta-{name}": value for name, value in metadata.items()}
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        answer, _ = await self._send("PUT", self._url(key, "comp=metadata"), headers, b"",
                                     what)
        return unquote_etag(answer.get("ETag"))

    # -- the request ---------------------------------------------------------------

    async def _send(self, method: str, url: str, headers: dict[str, str],
                    data: Data | tuple[Data, ...] | AsyncIterator[Data], what: str,
                    length: int | None = None,
                    not_found: str = "", data_request: bool = False,
                    _renewed: bool = False,
                    first: Endpoint | None = None) -> tuple[Any, bytes]:
        """One request; returns the response headers and body on 2xx, else raises the
        lakeshift error for it.  ``length`` is required for a streamed body; ``not_found``
        is the error code a 404 without one means (HEAD responses have no body).  ``first``:
        the request is the first contact with that endpoint; an error answer that is not
        Azure Storage's (no ``x-ms-request-id``, no ``x-ms-error-code``: a web server's 404,
        an S3 service's answer) is EndpointMismatch (stores/reach.py).

        A control request must have its answer within ``http.REQUEST_SECONDS``; a data
        request (``data_request``: a body, or a copy the service makes) has no limit on the
        whole, only the stall limit.  Connecting: ``http.CONNECT_SECONDS``."""
        if length is None:
            assert isinstance(data, bytes | memoryview)
            length = len(data)
        headers["x-ms-version"] = API_VERSION
        # (_http_date's cache looked up here: no Python call per request within a second.)
        headers["x-ms-date"] = _date_cache[1] if _date_cache[0] == int(time.time()) else \
            _http_date()
        if method == "PUT" or length:
            headers["Content-Length"] = str(length)
            # Signed, so sent exactly as signed (the client adds no headers of its own).
            headers.setdefault("Content-Type", "application/octet-stream")
        if self.key is not None:
            headers["Authorization"] = shared_key_signature(self.account, self.key, method, url,
                                                            headers)
        elif self.tokens is not None:
            headers["Authorization"] = f"Bearer {await self.tokens.get()}"
        if data_request:
            stall = self.stall_seconds or http.STALL_SECONDS
            limit: float | None = None
        else:
            stall = limit = http.REQUEST_SECONDS
        pool = self._pool or self._client()
        target, sent = url[len(self._origin):], data if length else None
        try:
            if limit is None:  # a data request: the stall limit only, no context manager
                resp = await pool.request(method, target, headers, sent, length=length,
                                          connect_timeout=http.CONNECT_SECONDS,
                                          stall_timeout=stall)
                body = await resp.read()  # (releases the connection, whatever happens)
            else:
                # A control request's limit holds to the end of its body too (a listing
                # page trickled byte by byte would otherwise never end).
                async with asyncio.timeout(limit):
                    resp = await pool.request(method, target, headers, sent, length=length,
                                              connect_timeout=http.CONNECT_SECONDS,
                                              stall_timeout=stall, response_timeout=limit)
                    body = await resp.read()
        except TimeoutError:
            raise TransientError(f"{what}: no response from {self._client().peer} "
                                 f"complete within {http.REQUEST_SECONDS:g} s") from None
        except wire.ConnectFailed as e:
            raise ConnectError(f"{what}: {type(e).__name__}: {redact(str(e))[:200]}",
                               redact(e.reason)) from None
        except wire.WireError as e:
            # (Its message never holds the URL; redacted all the same.)
            raise TransientError(f"{what}: {type(e).__name__}: {redact(str(e))[:200]}") \
                from None
        date = resp.headers.get("Date")
        if date and date != self._date_text:  # (parsed once a second, not per request)
            self._date_text = date
            self.last_date = parsedate_to_datetime(date)
        if 200 <= resp.status < 300:
            self.credentials_worked = True
            return resp.headers, body
        refused = resp.status == 401 or (
            resp.status == 403
            and resp.headers.get("x-ms-error-code") == "AuthenticationFailed")
        if refused and self.tokens is not None and \
                isinstance(data, bytes | memoryview | tuple) and not _renewed:
            # A token the service refuses (Azure Storage answers an expired one with 403
            # AuthenticationFailed, "Lifetime validation failed"): renewed (once for all
            # requests it refused) and this request sent again, once.
            self.tokens.expire(headers["Authorization"].removeprefix("Bearer "))
            return await self._send(method, url, headers, data, what, length, not_found,
                                    data_request, _renewed=True)
        if first is not None and resp.status < 500 and resp.status != 429 and not (
                resp.headers.get("x-ms-request-id") or resp.headers.get("x-ms-error-code")):
            raise not_the_service(first, resp.status,
                                  "an S3 service" if _looks_like_s3(resp.headers, body) else "")
        code = resp.headers.get("x-ms-error-code", "") or (
            not_found if resp.status == 404 else "")
        raise status_error(resp.status, code, what, resp.headers.get("Retry-After"),
                           body.decode("utf-8", "replace")[:300],
                           resp.headers.get("x-ms-request-id", ""),
                           self.credentials_worked)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
