"""ADLS Gen1 and Hadoop HDFS as a source, over WebHDFS (``client.py``).

WebHDFS lists one directory at a time, by name; lakeshift's engine wants keys in ascending
order from a string prefix, after a given key (merge-compare, partition cursors, name-range
partitions).  ``list_page`` therefore walks the tree depth first in *key* order: a directory
``d`` sorts as ``d/`` — after ``d-1`` and ``d.txt``, which come after ``d`` by name — so a
directory seen in a listing waits in a small heap until the listing passes ``d/``.  A walk
resumes inside the tree at a key: each level is listed from just before the key's component
there (``startAfter`` / ``listAfter``), so resuming costs one request per level, not a rescan.

An empty directory is listed as a folder marker (``d/``, ``is_dir_marker``).  A directory the
credentials may not list (403) is listed as one object named ``d`` whose read fails with
ForbiddenError, so the rest of the tree copies and ``--skip-errors forbidden`` records it.

No ETag exists in WebHDFS: the change token is modification time and length (and HDFS's
inode id).  Sources only: every write fails with a UsageError.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lakeshift.errors import ChangedError, ForbiddenError, NotFoundError, UsageError
from lakeshift.model import Data, ObjectInfo, ObjectProps, ReadResult
from lakeshift.stores.azure import auth as azure_auth
from lakeshift.stores.azure.tokens import GEN1_SCOPE, BearerTokens
from lakeshift.stores.base import BlockUpload, Capabilities, Page, StoreConfig
from lakeshift.stores.reach import Endpoint, first_contact
from lakeshift.stores.webhdfs import auth
from lakeshift.stores.webhdfs.client import (
    GEN1_LIST_SIZE,
    AclStatus,
    DirPage,
    FileStatus,
    WebHdfsClient,
)

CAPABILITIES = Capabilities(
    list_start_after=True, content_md5=False, hierarchical=True, acls=True,
    copy_from_url=False, block_upload=False, max_block_size=0, etag_is_md5=False,
    metadata_in_listing=False,
)


@dataclass(order=True)
class _PendingDir:
    key: str  # "parent/name/"
    status: FileStatus = field(compare=False)
    first: DirPage = field(compare=False)


class WebHdfsStore:
    capabilities = CAPABILITIES

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.url = config.url
        self.page_size = 1000
        #: Entries per Gen1 directory request (Hadoop's is the NameNode's own).
        self.list_size = GEN1_LIST_SIZE
        self.settings = auth.resolve(config.url, config.options)
        self._tokens: BearerTokens | None = None
        self._client: WebHdfsClient | None = None
        #: Directories a listing could not enter (key → the error's message).
        self._unlisted: dict[str, str] = {}

    def _where(self, key: str = "") -> str:
        return f"{self.url.scheme}://{self.url.bucket}/{key}"

    @property
    def client(self) -> WebHdfsClient:
        if self._client is None:
            tokens = None
            if self.settings.dialect == "gen1":
                source = self.settings.token_source
                tokens = self._tokens = BearerTokens(
                    azure_auth.token_credential(source), GEN1_SCOPE,
                    renew=lambda: azure_auth.token_credential(source),
                    authority=azure_auth.token_authority(source),
                    connect_seconds=azure_auth.token_connect_seconds(source))
            self._client = WebHdfsClient(self.settings, self.config.options.allow_http, tokens)
        return self._client

    # -- listing -------------------------------------------------------------------

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None, delimiter: str | None = None) -> Page:
        """One page of the key-ordered walk; the token is the page's last key."""
        if delimiter:
            return await self._folder_page(prefix, token)
        after = token if token is not None else start_after
        folder, _, name_prefix = prefix.rpartition("/")
        items: list[ObjectInfo] = []
        async with aclosing(self._walk(folder, name_prefix, after, None)) as walk:
            async for info in walk:
                items.append(info)
                if len(items) >= self.page_size:
                    break
        return Page(items, (), items[-1].key if len(items) >= self.page_size else None)

    def list_requests_made(self) -> int:
        """LISTSTATUS / LISTSTATUS_BATCH requests sent so far (a page of the walk is one
        per directory entered and per batch of a large one)."""
        return self._client.list_requests if self._client is not None else 0

    def refused_directory(self, key: str) -> str | None:
        """Why the walk could not enter the directory ``key`` (a 403), else None: the walk
        lists such a directory as one entry, which a read then refuses."""
        return self._unlisted.get(key)

    async def _list(self, folder: str, after: str | None) -> DirPage:
        return await self.client.list_dir(folder, after, self._where(folder + "/"),
                                          self.list_size)

    async def _walk(self, folder: str, name_prefix: str, after: str | None,
                    first: DirPage | None) -> AsyncGenerator[ObjectInfo]:
        """Keys under ``folder`` whose name there starts with ``name_prefix``, in key
        order, after ``after``.  ``first`` is the folder's first page when already listed
        (a directory met in its parent's listing)."""
        base = folder + "/" if folder else ""
        rel_after: str | None = None
        if after is not None:
            if after.startswith(base):
                rel_after = after[len(base):]
            elif after > base:
                return  # every key here sorts before ``after``
        server_after = _server_start(rel_after, name_prefix)
        page = first if first is not None and server_after is None else None
        if page is None:
            try:
                page = await self._list(folder, server_after)
            except NotFoundError:
                return
        if first is not None and not page.entries and not page.more and rel_after is None:
            # An empty directory (met in its parent): a folder marker keeps it.
            yield ObjectInfo(base, 0, None, None, None, True)
            return
        pending: list[_PendingDir] = []
        while True:
            last = ""
            for e in page.entries:
                last = e.name
                if not e.name.startswith(name_prefix):
                    if e.name > name_prefix:
                        page = DirPage((), False)  # sorted: nothing further matches
                        break
                    continue
                # Directories waiting for their place in key order ("d/" < this name).
                while pending and pending[0].key < base + e.name:
                    async for info in self._descend(heapq.heappop(pending), after):
                        yield info
                key = base + e.name
                if e.is_dir:
                    if after is not None and not (key + "/" > after
                                                  or after.startswith(key + "/")):
                        continue
                    probe = await self._probe(key)
                    if isinstance(probe, str):
                        if after is None or key > after:
                            yield ObjectInfo(key, 0, _time(e), e.change_token())
                        continue
                    heapq.heappush(pending, _PendingDir(key + "/", e, probe))
                elif after is None or key > after:
                    yield ObjectInfo(key, e.length, _time(e), e.change_token())
            if not page.more or not last:
                break
            page = await self._list(folder, last)
        while pending:
            async for info in self._descend(heapq.heappop(pending), after):
                yield info

    async def _probe(self, key: str) -> DirPage | str:
        """A directory's first page, or the message when it may not be listed."""
        try:
            return await self._list(key, None)
        except NotFoundError:
            return DirPage((), False)  # gone since its parent was listed
        except ForbiddenError as e:
            self._unlisted[key] = str(e)
            return str(e)

    async def _descend(self, d: _PendingDir, after: str | None) -> AsyncGenerator[ObjectInfo]:
        async with aclosing(self._walk(d.key[:-1], "", after, d.first)) as walk:
            async for info in walk:
                yield info

    async def _folder_page(self, prefix: str, token: str | None) -> Page:
        """The delimiter listing: one batch of one directory's entries."""
        folder, _, name_prefix = prefix.rpartition("/")
        base = folder + "/" if folder else ""
        try:
            page = await self._list(folder, token or _server_start(None, name_prefix))
        except NotFoundError:
            return Page([])
        entries = [e for e in page.entries if e.name.startswith(name_prefix)]
        folders = sorted(base + e.name + "/" for e in entries if e.is_dir)
        objects = sorted((ObjectInfo(base + e.name, e.length, _time(e), e.change_token())
                          for e in entries if not e.is_dir), key=lambda o: o.key)
        more = page.more and bool(page.entries) and (
            not name_prefix or page.entries[-1].name <= name_prefix
            or page.entries[-1].name.startswith(name_prefix))
        return Page(objects, folders, page.entries[-1].name if more else None)

    async def check_source(self) -> None:
        # A start-up check: an endpoint that never answers is said so within a bounded time
        # (stores/reach.py).
        setting = "LAKESHIFT_WEBHDFS_ENDPOINT" if os.environ.get(
            "LAKESHIFT_WEBHDFS_ENDPOINT") else "the host in the URL"
        service = "ADLS Gen1" if self.settings.dialect == "gen1" else "WebHDFS"
        tokens = self.client.tokens
        if tokens is not None:
            # The token first: its endpoint's first contact is bounded and named on its own
            # (azure/tokens.py BearerTokens), not inside the NameNode's.
            await tokens.get()
        await first_contact(self._check_source,
                            Endpoint(service, self.settings.endpoint, setting))

    async def _check_source(self) -> None:
        path = self.url.path.rstrip("/")
        try:
            await self.client.status(path, self._where(path))
        except NotFoundError:
            if path and not self.url.path.endswith("/"):
                # A string prefix of names: its folder must exist.
                folder = path.rpartition("/")[0]
                try:
                    await self.client.status(folder, self._where(folder))
                    return
                except NotFoundError:
                    pass
            raise UsageError(f"{self._where(path)}: no such file or directory: fix the URL"
                             ) from None

    async def is_folder(self, path: str) -> bool:
        try:
            st = await self.client.status(path.rstrip("/"), self._where(path))
        except NotFoundError:
            return False
        return st.is_dir

    async def exists(self, key: str) -> ObjectInfo | None:
        try:
            st = await self.client.status(key, self._where(key))
        except NotFoundError:
            return None
        if st.is_dir:
            return None
        return ObjectInfo(key, st.length, _time(st), st.change_token())

    async def acl_status(self, key: str) -> AclStatus:
        """Owner, group, permission bits and ACL entries of a file or directory."""
        return await self.client.acl_status(key, self._where(key))

    async def file_checksum(self, key: str) -> tuple[str, str]:
        """HDFS's own checksum (algorithm, hex): compares HDFS copies, not an MD5."""
        return await self.client.file_checksum(key, self._where(key))

    async def server_time(self) -> datetime | None:
        await self.client.status("", self._where())  # any response carries the Date
        return self.client.last_date

    # -- data ----------------------------------------------------------------------

    def _refuse_unlisted(self, key: str) -> None:
        message = self._unlisted.get(key)
        if message is not None:
            raise ForbiddenError(f"{message} — the directory and everything below it were "
                                 "not copied")

    async def _current(self, key: str, if_match: str | None) -> FileStatus:
        st = await self.client.status(key, self._where(key))
        if st.is_dir:
            raise NotFoundError(f"{self._where(key)}: is a directory")
        if if_match is not None and st.change_token() != if_match:
            raise ChangedError(f"{self._where(key)}: changed during the copy")
        return st

    async def read(self, key: str, start: int | None = None, end: int | None = None,
                   if_match: str | None = None) -> ReadResult:
        """A whole read is one OPEN (its size checked against the listing by the engine);
        a ranged read first asks the file's status, for its size and change token."""
        self._refuse_unlisted(key)
        if start is None and end is None:
            resp = await self.client.open(key, 0, None, self._where(key))
            data = await self.client.read_all(resp, self._where(key))
            return ReadResult(data, ObjectProps(), len(data), None)
        st = await self._current(key, if_match)
        lo = start or 0
        hi = st.length if end is None else min(end, st.length)
        if hi <= lo:
            return ReadResult(b"", ObjectProps(), st.length, st.change_token())
        resp = await self.client.open(key, lo, hi - lo, self._where(key))
        data = await self.client.read_all(resp, self._where(key))
        return ReadResult(data, ObjectProps(), st.length, st.change_token())

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> _WebHdfsRange:
        """One ranged OPEN (the engine runs several at once for a large file), after a
        status check that the file is still the one listed."""
        self._refuse_unlisted(key)
        st = await self._current(key, if_match)
        resp = None
        if end > start:
            resp = await self.client.open(key, start, end - start, self._where(key))
        return _WebHdfsRange(self.client, resp, st, self._where(key))

    def _source_only(self, key: str) -> UsageError:
        return UsageError(f"{self._where(key)}: WebHDFS stores (adl://, webhdfs://) are "
                          "sources only: write to az://, abfss://, s3:// or a local path")

    async def put(self, key: str, data: Data, props: ObjectProps, md5: bytes) -> None:
        raise self._source_only(key)

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes) -> None:
        raise self._source_only(key)

    async def start_blocks(self, key: str, size: int, block_size: int,
                           props: ObjectProps) -> BlockUpload:
        raise self._source_only(key)

    async def prepare_destination(self) -> None:
        raise self._source_only("")

    async def delete(self, key: str) -> None:
        raise self._source_only(key)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._tokens is not None:
            await self._tokens.close()


class _WebHdfsRange:
    def __init__(self, client: WebHdfsClient, resp: Any, st: FileStatus, what: str) -> None:
        self._client = client
        self._resp = resp
        self._what = what
        self.props = ObjectProps()
        self.size = st.length
        self.etag: str | None = st.change_token()

    async def chunks(self, min_size: int) -> AsyncIterator[bytes]:
        if self._resp is None:
            return
        async for data in self._client.chunks(self._resp, min_size, self._what):
            yield data

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()  # (a no-op once read to the end and released)


def _time(st: FileStatus) -> datetime | None:
    return datetime.fromtimestamp(st.modification_time / 1000, UTC) \
        if st.modification_time else None


def _prefixes_below_slash(comp: str) -> Iterator[str]:
    """Proper prefixes ``p`` of ``comp`` whose next character sorts before "/": a directory
    named ``p`` has keys ``p/…`` that sort after ``comp``."""
    for i in range(1, len(comp)):
        if comp[i] < "/":
            yield comp[:i]


def _server_start(rel_after: str | None, name_prefix: str) -> str | None:
    """A ``startAfter``/``listAfter`` name below every entry whose keys may follow
    ``rel_after`` (the resume key relative to the folder) and start with ``name_prefix``:
    the server skips what sorts before it; the walk filters the rest by key."""
    bounds: list[str] = []
    if rel_after:
        comp = rel_after.split("/", 1)[0]
        lowest = min([comp, *_prefixes_below_slash(comp)])
        if len(lowest) > 1:
            bounds.append(lowest[:-1])
        else:
            return None if not name_prefix[:-1] else name_prefix[:-1]
    if len(name_prefix) > 1:
        bounds.append(name_prefix[:-1])
    return max(bounds) if bounds else None
