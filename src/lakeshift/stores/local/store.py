"""Local disk (and mounted file systems).

Keys are paths below the root with ``/`` separators.  Listing walks directories in key
order (a directory sorts as ``name/``, exactly where its keys sort in an object store), so
start-after and merge-compare work as on S3.  Writes (writes.py) go to a temporary file —
unnamed (O_TMPFILE) where the system has them, else hidden — that is linked or renamed
into place on commit: a reader never sees a partial file.

A file lakeshift writes gets an extended attribute (``user.lakeshift``, where the file system
has them) recording its MD5 and the source's ETag, together with the file's size and
modification time (writes.py ``_record_value``).  A listing offers them only while size and
mtime still match, so a rerun skips files already copied and a file changed since is
copied again.

This module is the store itself (LocalStore: listing pages, look-ups, reads, writes and
local → local copies, through its disk worker threads, hops.py, or its helper process,
helper.py); its parts: the walk and what it lists (walk.py), reading files (reads.py),
writing them (writes.py), and what check and the copy say about folders (folders.py).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import itertools
import os
import shutil
import stat
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from types import MappingProxyType

from lakeshift.errors import (
    DestinationFolderError,
    IntegrityError,
    InvalidNameError,
    MissingContainerError,
    UnreadableRootError,
    UsageError,
)
from lakeshift.model import Data, ObjectInfo, ObjectProps, ReadResult
from lakeshift.stores.base import BlockUpload, Capabilities, Page, StoreConfig
from lakeshift.stores.local.folders import folder_refusal, new_folder_parent, not_writable
from lakeshift.stores.local.helper import Helper
from lakeshift.stores.local.hops import DISK
from lakeshift.stores.local.reads import (
    _copy_file,
    _exists,
    _LocalRange,
    _read_file,
    content_type,
)
from lakeshift.stores.local.walk import (
    _above_or_at,
    _destination_folder_error,
    _identity,
    _identity_of,
    _info,
    _inside_or_at,
    _into_destination,
    _walk,
)
from lakeshift.stores.local.writes import _PARTIAL, _LocalUpload, _ns, _write_whole

CAPABILITIES = Capabilities(
    list_start_after=True, content_md5=True, hierarchical=True, acls=False,
    copy_from_url=False, block_upload=True, max_block_size=2**62, etag_is_md5=False,
    metadata_in_listing=False, stream_put=True, directories=True, written_here=True,
    reads_here=True,
)
PAGE = 1000
#: Local → local copies a store makes in its worker threads before it starts a helper
#: process for the rest (helper.py); negative: never.  A small copy never starts one.
#: Low, as the threads go on until the child has started (~0.2 s of imports): from 1,000,
#: the helper took over ~0.3 s later on 20,000 × 64 B files, with the copy at the threads'
#: third of its speed meanwhile (measured: 6.2 → 4.1 s median wall, 3.4 → 2.8 s CPU on a
#: busy machine).  A copy that ends before the child has started kills it (helper.py).
HELPER_AFTER = 100
#: A read's metadata (local files have none): one shared empty mapping.
_NO_METADATA: Mapping[str, str] = MappingProxyType({})


class LocalStore:
    capabilities = CAPABILITIES

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.url = config.url
        self.root = config.url.bucket
        self.page_size = PAGE
        #: What os.path.join puts before a plain key (``_path``).
        self._prefix = self.root + "/" if self.root and not self.root.endswith("/") \
            else self.root
        #: Reads, whole-file writes and look-ups: in worker threads, several per hop; one
        #: pool for every local store of the process (hops.py).
        self.hops = DISK
        #: Local → local copies made so far, and the helper process taking them once
        #: there were HELPER_AFTER (helper.py).
        self._copies = 0
        self._helper: Helper | None = None
        #: The copy's local destination folder, never walked into, nor anything inside it
        #: (``_walk``), and the path its entries' reads name (``_read_file``).
        self._avoid = config.destination_folder
        #: Folders the walk listed as one entry because this user may not list or enter
        #: them, with why (``refused_directory``: what ``scan`` reports), and the pages
        #: of the walk listed so far (``list_requests_made``).
        self._refused: dict[str, str] = {}
        self._pages = 0

    def _path(self, key: str) -> str:
        if "//" not in key and key[:1] != "/" and os.sep == "/":
            # What os.path.join gives for such a key (two Python calls fewer, per file).
            return self._prefix + key
        return os.path.join(self.root, *key.split("/"))

    async def list_page(self, prefix: str, token: str | None = None,
                        start_after: str | None = None, delimiter: str | None = None) -> Page:
        """One page of the sorted walk; the token is the last key of the page before."""
        if delimiter:
            return await asyncio.to_thread(self._folder_page, prefix)
        after = token if token is not None else start_after
        size = self.page_size

        def walk() -> Page:
            if os.path.isfile(self.root):
                # The URL named one file: it is the only object, with an empty key.
                return Page([_info("", os.stat(self.root), self.root)])
            folder, _, name_prefix = prefix.rpartition("/")
            avoid, avoid_real = self._destination_marks()
            if folder and (why := self._named_into_destination(folder, avoid)) is not None:
                # A listing that starts below a link to the destination (a partition's
                # prefix): refused as a folder it may not list is (ForbiddenError, _walk),
                # never walked; the whole walk lists that link as one skipped entry.
                raise why
            items = list(itertools.islice(_walk(self.root, folder, name_prefix, after,
                                                avoid=avoid, avoid_real=avoid_real), size))
            self._pages += 1
            for it in items:
                # An entry the walk did not enter (no ETag, not a marker): a folder this
                # user may not list or enter is noted, one access() each (rare entries).
                if it.etag is None and not it.is_dir_marker and \
                        os.path.isdir(path := self._path(it.key)) and \
                        (refusal := folder_refusal(path)) is not None:
                    self._refused[it.key] = refusal
            return Page(items, (), items[-1].key if len(items) == size else None)

        return await asyncio.to_thread(walk)

    def list_requests_made(self) -> int:
        """Pages of the walk listed so far (TreeWalker): a local listing is no request,
        and its pages are what ``scan`` counts for any other store."""
        return self._pages

    def refused_directory(self, key: str) -> str | None:
        """Why the walk did not enter the folder ``key``, a page of it listed as one entry
        (``folder_refusal``: permissions), else None; the copy's read of that entry fails
        ``forbidden`` with these words."""
        return self._refused.get(key)

    def _destination_marks(self) -> tuple[tuple[int, int] | None, str | None]:
        """The destination folder's identity (st_dev, st_ino; None while it does not exist)
        and realpath, as the walk and the folder listing compare their entries with them;
        (None, None) when the store has no destination to avoid.  Asked afresh at each call
        (one stat, one realpath: each page): the destination is made after the store opens."""
        if not self._avoid:
            return None, None
        return _identity(self._avoid), os.path.realpath(self._avoid)

    def _named_into_destination(self, key: str, avoid: tuple[int, int] | None
                                ) -> DestinationFolderError | None:
        """The walk's destination-folder rule for a name it is given rather than one it
        meets (a --files-from key, sync --delete's look-up of a source key, a listing that
        starts below the root): the error when ``key`` — the entry it names, or a folder on
        its way down from the root — is a symlink leading to the destination folder or
        inside it (its realpath, dangling or not: ``_into_destination``) or a folder whose
        identity is ``avoid``, the destination's (a mount).  The walk never enters such an
        entry, so it lists nothing below it and never reads it; neither does a look-up.
        One lstat per name on the way (a realpath and a stat more for a symlink)."""
        if not self._avoid:
            return None
        path = self.root
        for name in key.split("/"):
            if not name:
                continue  # as _path joins an empty segment
            path = f"{path}/{name}" if path != "/" else f"/{name}"  # (join: 2 calls)
            try:
                st = os.lstat(path)
            except OSError:
                return None  # nothing there, so nothing below it either
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
            if stat.S_ISLNK(st.st_mode):
                if (why := _into_destination(path, self._avoid)) is not None:
                    return why
                ident = _identity(path)  # where it leads (None: dangling, or a loop)
            if avoid is not None and ident == avoid:
                return _destination_folder_error(path, self._avoid)
        return None

    def _folder_page(self, prefix: str) -> Page:
        """The delimiter listing: one level of the tree, in one page."""
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        folders, objects = [], []
        avoid, avoid_real = self._destination_marks()
        if prefix and (why := self._named_into_destination(prefix, avoid)) is not None:
            raise why  # as the walk refuses to start there
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return Page([])
        here = os.path.realpath(base)
        for e in entries:
            if e.name.startswith(_PARTIAL):
                continue
            try:
                # As in the walk: a symlink's realpath (a plain folder is neither above
                # here nor inside the destination), the destination's identity (a mount).
                real = os.path.realpath(e.path) if e.is_symlink() else None
                if real is not None and avoid_real is not None and \
                        _inside_or_at(real, avoid_real):
                    objects.append(ObjectInfo(prefix + e.name, 0))  # even while it dangles
                    continue
                is_dir = e.is_dir(follow_symlinks=True)
                if is_dir and (real is None or not _above_or_at(real, here)) and (
                        avoid is None or _identity_of(e) != avoid) and \
                        os.access(e.path, os.R_OK | os.X_OK):
                    folders.append(prefix + e.name + "/")
                    continue
                if not is_dir:
                    objects.append(_info(prefix + e.name, e.stat(follow_symlinks=True),
                                         e.path))
                    continue
            except FileNotFoundError:
                if e.is_symlink():  # dangling: an entry whose read says so, as in the walk
                    objects.append(ObjectInfo(prefix + e.name, 0))
                continue  # gone
            except OSError:
                pass  # a symlink loop (ELOOP)
            # As in the walk: a symlink to a folder above it (or itself), the destination
            # folder (a mount), or a folder it may not list (forbidden: a partition below
            # it would fail whole, --skip-errors or not) is one empty entry, whose read
            # says why.
            objects.append(ObjectInfo(prefix + e.name, 0))
        folders.sort()
        objects.sort(key=lambda o: o.key)
        return Page(objects, folders)

    async def check_source(self) -> None:
        if not os.path.isdir(self.root):
            if os.path.isfile(self.root):
                return
            raise MissingContainerError(f"local directory {self.root} does not exist")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise UnreadableRootError(f"local directory {self.root} is not readable: check "
                                      "its permissions")

    async def prepare_destination(self) -> None:
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise UsageError(f"destination {self.root} is an existing file, not a directory: "
                             "name a directory")
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as e:
            # What is in the way, named with its fix, as ``check`` says it (a file, a link
            # to nothing or a looping one, a folder above not writable); else the system's words.
            new_folder_parent(self.root)
            raise UsageError(f"cannot create destination directory {self.root}: "
                             f"{e.strerror}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise UsageError(not_writable(self.root, self.root))

    async def is_folder(self, path: str) -> bool:
        # Off the loop, as every other disk call (a stat can stall on a busy or remote disk).
        return await self.hops.run(os.path.isdir, self._path(path.rstrip("/")))

    async def exists(self, key: str) -> ObjectInfo | None:
        """What ``key`` is (a HEAD): None for nothing there, or a folder.  A source told its
        destination raises DestinationFolderError for a key that is, or goes through, a link
        to the destination folder or inside it (``_named_into_destination``): the walk never
        lists such a key and nothing there is read, stat'ed nor copied."""
        if self._avoid:
            return await self.hops.run(self._exists_avoiding, key)
        return await self.hops.run(_exists, key, self._path(key))

    def _exists_avoiding(self, key: str) -> ObjectInfo | None:
        # The destination's identity only: its realpath (_destination_marks) is a pure-Python
        # lstat of each of its folders, which a HEAD (one per key of a --files-from list, a
        # move's check, a deletion's look-up) has no use for.
        avoid = _identity(self._avoid) if self._avoid else None
        if (why := self._named_into_destination(key, avoid)) is not None:
            raise why
        return _exists(key, self._path(key))

    async def read(self, key: str, start: int | None = None, end: int | None = None,
                   if_match: str | None = None) -> ReadResult:
        # In a thread, however small: a disk (or a network mount) that stalls must not stall
        # the event loop and every transfer with it; several reads per hop (hops.py).
        return await self.hops.run(self._read, key, start, end, if_match)

    def _read(self, key: str, start: int | None, end: int | None,
              if_match: str | None) -> ReadResult:
        data, size, etag = _read_file(self._path(key), start, end, if_match, self._avoid)
        return ReadResult(data, ObjectProps(content_type(key), metadata=_NO_METADATA), size,
                          etag)

    async def copy_from(self, source: LocalStore, key: str, if_match: str | None,
                        dest_key: str, size: int, md5: bytes | None, src_etag: str | None,
                        mtime: datetime | None) -> bytes:
        """``key`` of the local ``source`` written here as ``dest_key``, whole, in ONE call
        (read, MD5, checked against the listed ``size`` and ``md5`` as the engine's
        ``_check`` does, temporary file, time, record, link): what a read and then a put do,
        with one hop instead of two and no props built for a file that keeps none but its
        time and record.  The first ``HELPER_AFTER`` files go to the disk worker threads,
        the rest to a helper process (helper.py) once it has started, while it lasts.
        Returns the MD5."""
        args = (source._path(key), if_match, self._path(dest_key), key, size, md5, src_etag,
                None if mtime is None else _ns(mtime), source._avoid)
        helper = self._helper
        if helper is None:
            self._copies += 1
            if self._copies > HELPER_AFTER and HELPER_AFTER >= 0:
                helper = self._start_helper()
        if helper is not None and helper.ready and not helper.broken:
            return await helper.copy(args)
        return await self.hops.run(_copy_file, *args)

    def _start_helper(self) -> Helper | None:
        try:
            self._helper = Helper()
        except (OSError, NotImplementedError):
            self._copies = -(2**62)  # no process to be had: worker threads for good
            return None
        return self._helper

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> _LocalRange:
        # Reads nothing yet but checks the file is there and unchanged (like a GET would).
        head = await self.read(key, start, start, if_match)
        return _LocalRange(self._path(key), head, start, end)

    async def make_directory(self, key: str) -> None:
        """An empty directory of the source (--empty-dirs) as a directory here."""
        path = self._path(key.rstrip("/"))
        try:
            await asyncio.to_thread(os.makedirs, path, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidNameError(f"{path}: a file is in the way of the directory") from None

    async def remove_directory(self, key: str, recursive: bool = False) -> None:
        path = self._path(key.rstrip("/"))
        if recursive:
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
            return
        try:
            await asyncio.to_thread(os.rmdir, path)
        except FileNotFoundError:
            pass
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise  # one that holds anything stays (as on ADLS Gen2)

    async def put(self, key: str, data: Data, props: ObjectProps, md5: bytes) -> None:
        # One thread hop for the whole file (was three), but not in the event loop: creating
        # a file can block in the kernel for long under load (measured: 16 s of 20 in a
        # profile while other jobs wrote to the same disk), and the loop must not wait.
        await self.hops.run(_write_whole, self._path(key), data, props, md5)

    async def start_blocks(self, key: str, size: int, block_size: int,
                           props: ObjectProps) -> BlockUpload:
        final = self._path(key)
        return await asyncio.to_thread(_LocalUpload, final, size, props)

    async def put_stream(self, key: str, size: int, chunks: AsyncIterator[bytes],
                         props: ObjectProps, md5: bytes | None) -> bytes | None:
        """Hashed here as it is written to a temporary file, renamed into place only when
        the MD5 matches (any MD5 when ``md5`` is None); returns the MD5 written."""
        up = await asyncio.to_thread(_LocalUpload, self._path(key), size, props)
        hasher = hashlib.md5()

        def write(data: bytes, offset: int) -> None:
            hasher.update(data)
            os.pwrite(up.fd, data, offset)

        try:
            offset = 0
            async for data in chunks:
                await asyncio.to_thread(write, data, offset)
                offset += len(data)
            if offset != size:
                raise IntegrityError(f"{self._path(key)}: {offset} bytes arrived, "
                                     f"{size} were announced")
            written = hasher.digest()
            if md5 is not None and written != md5:
                raise IntegrityError(f"{self._path(key)}: the bytes written have MD5 "
                                     f"{hasher.hexdigest()}, not {md5.hex()}")
        except BaseException:
            await up.abort()
            raise
        await up.commit([0], written)
        return written

    async def delete(self, key: str) -> None:
        try:
            os.remove(self._path(key))
        except FileNotFoundError:
            pass

    async def server_time(self) -> datetime | None:
        return None

    async def close(self) -> None:
        if self._helper is not None:
            helper, self._helper = self._helper, None
            await helper.close()
