"""The WebHDFS REST API over aiohttp, in the two dialects lakeshift reads.

Follows Hadoop's WebHDFS REST reference (``LISTSTATUS``, ``LISTSTATUS_BATCH`` with
``startAfter`` and its ``DirectoryListing``/``remainingEntries``, ``GETFILESTATUS``, ``OPEN``
with ``offset``/``length`` and the NameNode → DataNode redirect, ``GETFILECHECKSUM``,
``GETACLSTATUS``, ``RemoteException`` errors) and Azure Data Lake Store Gen1's WebHDFS
deviations (``LISTSTATUS`` paged with ``listSize``/``listAfter``, an Entra ID bearer token in
``Authorization``, no redirects).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urljoin

from yarl import URL

from lakeshift.errors import (
    AuthError,
    ConnectError,
    ForbiddenError,
    LakeshiftError,
    NotFoundError,
    ObjectError,
    ThrottledError,
    TransientError,
)
from lakeshift.redact import redact
from lakeshift.stores import http
from lakeshift.stores.http import check_http
from lakeshift.stores.webhdfs.auth import WebHdfsSettings
from lakeshift.stores.wire.errors import connect_reason

#: Entries per Gen1 LISTSTATUS request (Hadoop's batch size is the NameNode's dfs.ls.limit).
GEN1_LIST_SIZE = 4000
_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class FileStatus:
    """One entry of a listing (WebHDFS ``FileStatus``)."""

    name: str  # pathSuffix: the entry's name in its directory ("" for the path itself)
    is_dir: bool
    length: int
    #: Milliseconds since the epoch.
    modification_time: int
    #: HDFS inode id (Hadoop only): a file replaced under the same name gets a new one.
    file_id: int | None = None

    def change_token(self) -> str:
        """Stands in for an ETag: modification time and length (and the inode id)."""
        token = f"{self.modification_time:x}-{self.length:x}"
        return token if self.file_id is None else f"{token}-{self.file_id:x}"


@dataclass(frozen=True, slots=True)
class AclStatus:
    """``GETACLSTATUS``: owner, group, permission bits (octal text) and the extended ACL
    entries (``user:alice:rwx``, ``default:group::r-x``…)."""

    owner: str
    group: str
    permission: str
    entries: Sequence[str]
    sticky_bit: bool = False


@dataclass(frozen=True, slots=True)
class DirPage:
    entries: Sequence[FileStatus]
    #: More entries follow the last one (ask again with it as ``after``).
    more: bool


def remote_error(status: int, body: bytes, what: str,
                 retry_after: str | None = None) -> LakeshiftError:
    """The lakeshift error for a WebHDFS error response (``RemoteException`` JSON when the
    server sent one; its exception name decides before the status does)."""
    name, message = "", ""
    try:
        remote = json.loads(body or b"{}").get("RemoteException") or {}
        name = str(remote.get("exception") or remote.get("javaClassName") or "")
        name = name.rsplit(".", 1)[-1]
        message = str(remote.get("message") or "")
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace")[:200]
    said = redact(f"{name}: {message}" if name else message or f"HTTP {status}")[:300]
    if name in ("StandbyException", "RetriableException", "SafeModeException",
                "ObserverRetryOnActiveException"):
        return TransientError(f"{what}: the NameNode cannot answer now ({said})")
    if name in ("FileNotFoundException",) or status == 404:
        return NotFoundError(f"{what}: not found ({said})")
    if name == "SecurityException" or status == 401 or "token" in name.lower():
        return AuthError(f"{what}: credentials rejected ({said}): check the service "
                         "principal (AZURE_CLIENT_*) for adl://, HADOOP_USER_NAME or "
                         "HADOOP_DELEGATION_TOKEN for webhdfs://")
    if name == "AccessControlException" or status == 403:
        return ForbiddenError(f"{what}: permission denied ({said})")
    if status == 429 or (status == 503 and not name):
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        return ThrottledError(f"{what}: throttled ({said})", delay)
    if status >= 500 or status == 408:
        return TransientError(f"{what}: server error {status} ({said})")
    # Any other refusal is the server's word about this path (not a bug here): it fails
    # what asked for it, with the server's exception and message.
    return ObjectError(f"{what}: the server refused the request ({said})")


def _status(item: Mapping[str, Any]) -> FileStatus:
    file_id = item.get("fileId")
    return FileStatus(str(item.get("pathSuffix", "")), item.get("type") == "DIRECTORY",
                      int(item.get("length", 0)), int(item.get("modificationTime", 0)),
                      int(file_id) if file_id is not None else None)


class WebHdfsClient:
    """WebHDFS operations on one file system; owns an aiohttp session (close it).  Every
    method raises lakeshift errors (``remote_error``)."""

    def __init__(self, settings: WebHdfsSettings, allow_http: bool, tokens: Any = None,
                 connections: int = 128) -> None:
        self.settings = settings
        self.allow_http = allow_http
        self.http = check_http(settings.endpoint, allow_http)
        #: For gen1: ``stores.azure.tokens.BearerTokens`` for the Gen1 scope.
        self.tokens = tokens
        self.connections = connections
        #: Hadoop: the NameNode takes LISTSTATUS_BATCH (false after it refused it once).
        self.batch_listing = True
        #: Directory listing requests made (LISTSTATUS, LISTSTATUS_BATCH): what a walk of
        #: the tree really costs (one per directory and batch), counted as sent.
        self.list_requests = 0
        self._session: Any = None
        #: The Date header of the last response: the service's clock.
        self.last_date: datetime | None = None

    def _client(self) -> Any:
        if self._session is None:
            import aiohttp

            tls: ssl.SSLContext | bool = (ssl.create_default_context()
                                          if self.settings.endpoint.startswith("https:")
                                          else True)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections, ttl_dns_cache=300,
                                               ssl=tls),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=http.CONNECT_SECONDS,
                                              sock_read=120),
                auto_decompress=False, trust_env=False)
        return self._session

    def _url(self, path: str, op: str, **params: str) -> str:
        query = {"op": op, **params, **self.settings.auth_params()}
        return (f"{self.settings.endpoint}/webhdfs/v1/{quote(path.strip('/'), safe='/')}"
                f"?{urlencode(query, quote_via=quote)}")

    # -- metadata ------------------------------------------------------------------

    async def list_dir(self, path: str, after: str | None, what: str,
                       size: int = GEN1_LIST_SIZE) -> DirPage:
        """One batch of a directory's entries in name order, after the name ``after``."""
        if self.settings.dialect == "gen1":
            params = {"listSize": str(size)}
            if after is not None:
                params["listAfter"] = after
            self.list_requests += 1
            body = await self._json("GET", self._url(path, "LISTSTATUS", **params), what)
            items = (body.get("FileStatuses") or {}).get("FileStatus") or []
            entries = [_status(i) for i in items]
            return DirPage([e for e in entries if e.name], len(entries) >= size)
        if not self.batch_listing:
            return await self._list_whole(path, after, what)
        params = {} if after is None else {"startAfter": after}
        self.list_requests += 1
        try:
            body = await self._json("GET", self._url(path, "LISTSTATUS_BATCH", **params),
                                    what)
        except ObjectError as e:
            if "IllegalArgumentException" not in str(e) and \
                    "UnsupportedOperationException" not in str(e):
                raise
            # Hadoop before 2.8 has no LISTSTATUS_BATCH: list whole directories instead.
            self.batch_listing = False
            return await self._list_whole(path, after, what)
        listing = body.get("DirectoryListing") or {}
        items = ((listing.get("partialListing") or {}).get("FileStatuses") or {}).get(
            "FileStatus") or []
        entries = [_status(i) for i in items]
        return DirPage([e for e in entries if e.name],
                       int(listing.get("remainingEntries") or 0) > 0 and bool(entries))

    async def _list_whole(self, path: str, after: str | None, what: str) -> DirPage:
        """``LISTSTATUS`` (one answer per directory, however large), from after ``after``."""
        self.list_requests += 1
        body = await self._json("GET", self._url(path, "LISTSTATUS"), what)
        items = (body.get("FileStatuses") or {}).get("FileStatus") or []
        entries = [e for e in map(_status, items) if e.name and (after is None or
                                                                 e.name > after)]
        return DirPage(sorted(entries, key=lambda e: e.name), False)

    async def status(self, path: str, what: str) -> FileStatus:
        body = await self._json("GET", self._url(path, "GETFILESTATUS"), what)
        return _status(body.get("FileStatus") or {})

    async def acl_status(self, path: str, what: str) -> AclStatus:
        body = await self._json("GET", self._url(path, "GETACLSTATUS"), what)
        acl = body.get("AclStatus") or {}
        return AclStatus(str(acl.get("owner", "")), str(acl.get("group", "")),
                         str(acl.get("permission", "")), tuple(acl.get("entries") or ()),
                         bool(acl.get("stickyBit", False)))

    async def file_checksum(self, path: str, what: str) -> tuple[str, str]:
        """``GETFILECHECKSUM`` (Hadoop): (algorithm, hex bytes).  HDFS's composite CRC
        checksum, not an MD5 of the content: it compares HDFS copies, not Azure's MD5."""
        body = await self._json("GET", self._url(path, "GETFILECHECKSUM"), what)
        checksum = body.get("FileChecksum") or {}
        return str(checksum.get("algorithm", "")), str(checksum.get("bytes", ""))

    # -- data ----------------------------------------------------------------------

    async def open(self, path: str, offset: int, length: int | None, what: str) -> Any:
        """``OPEN`` from ``offset`` (``length`` bytes, or to the end): the response, after
        the NameNode's redirect to a DataNode; the caller reads and releases it."""
        params = {"offset": str(offset)}
        if length is not None:
            params["length"] = str(length)
        if self.settings.dialect == "gen1":
            params["read"] = "true"
        return await self._request("GET", self._url(path, "OPEN", **params), what)

    async def read_all(self, resp: Any, what: str) -> bytes:
        import aiohttp

        try:
            return bytes(await resp.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise TransientError(f"{what}: {type(e).__name__}: {str(e)[:200]}") from None
        finally:
            resp.release()

    async def chunks(self, resp: Any, min_size: int, what: str) -> AsyncIterator[bytes]:
        """A response body in chunks of at least ``min_size`` bytes (but the last)."""
        import aiohttp

        buf: list[bytes] = []
        held = 0
        try:
            async for piece in resp.content.iter_chunked(1 << 20):
                buf.append(piece)
                held += len(piece)
                if held >= min_size:
                    yield b"".join(buf)
                    buf, held = [], 0
            if buf:
                yield b"".join(buf)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise TransientError(f"{what}: {type(e).__name__}: {str(e)[:200]}") from None
        finally:
            resp.release()

    # -- the request ---------------------------------------------------------------

    async def _json(self, method: str, url: str, what: str) -> dict[str, Any]:
        resp = await self._request(method, url, what)
        body = await self.read_all(resp, what)
        try:
            parsed = json.loads(body)
        except ValueError:
            # A body cut short: the request can be sent again.
            raise TransientError(f"{what}: the answer is not whole JSON") from None
        if not isinstance(parsed, dict):
            raise TransientError(f"{what}: the answer is not a JSON object")
        return parsed

    async def _request(self, method: str, url: str, what: str) -> Any:
        """One request, following the NameNode's redirect (307) to a DataNode; returns the
        2xx response unread, else raises the lakeshift error for it."""
        import aiohttp

        headers: dict[str, str] = {}
        if self.tokens is not None:
            headers["Authorization"] = f"Bearer {await self.tokens.get()}"
        renewed = False
        try:
            for _ in range(_REDIRECTS + 2):
                resp = await self._client().request(method, URL(url, encoded=True),
                                                    headers=headers, allow_redirects=False)
                date = resp.headers.get("Date")
                if date:
                    self.last_date = parsedate_to_datetime(date)
                if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                    resp.release()
                    url = urljoin(url, resp.headers["Location"])
                    # A DataNode over plain HTTP obeys the same rule as the NameNode.
                    check_http(url, self.allow_http)
                    continue
                if 200 <= resp.status < 300:
                    return resp
                body = await resp.read()
                resp.release()
                if resp.status == 401 and self.tokens is not None and not renewed:
                    # A token the service calls expired before we thought: one new one.
                    renewed = True
                    self.tokens.expire(headers["Authorization"].removeprefix("Bearer "))
                    headers["Authorization"] = f"Bearer {await self.tokens.get()}"
                    continue
                raise remote_error(resp.status, body, what, resp.headers.get("Retry-After"))
            raise TransientError(f"{what}: more than {_REDIRECTS} redirects")
        except LakeshiftError:
            raise
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as e:
            # No connection opened (refused, timed out, a name not found, TLS refused).
            cause = getattr(e, "os_error", None)
            reason = "connect timed out" if isinstance(e, aiohttp.ConnectionTimeoutError) \
                else connect_reason(cause) if isinstance(cause, OSError) else type(e).__name__
            raise ConnectError(redact(f"{what}: {type(e).__name__}: {str(e)[:200]}"),
                               reason) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise TransientError(redact(f"{what}: {type(e).__name__}: {str(e)[:200]}")) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
