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
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import itertools
import mimetypes
import os
import shutil
import stat
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from lakeshift.errors import (
    DanglingLinkError,
    DestinationFolderError,
    ForbiddenError,
    IntegrityError,
    InvalidNameError,
    LakeshiftError,
    MissingContainerError,
    NotFoundError,
    SpecialFileError,
    SymlinkLoopError,
    UnreadableRootError,
    UsageError,
)
from lakeshift.model import Data, ObjectInfo, ObjectProps, ReadResult
from lakeshift.stores.base import BlockUpload, Capabilities, Page, StoreConfig
from lakeshift.stores.local.helper import Helper
from lakeshift.stores.local.hops import DISK
from lakeshift.stores.local.writes import (
    _EPOCH,
    _PARTIAL,
    _XATTR,
    _LocalUpload,
    _ns,
    _read_record,
    _write_file,
    _write_whole,
)
from lakeshift.stores.props import SRC_ETAG_KEY

CAPABILITIES = Capabilities(
    list_start_after=True, content_md5=True, hierarchical=True, acls=False,
    copy_from_url=False, block_upload=True, max_block_size=2**62, etag_is_md5=False,
    metadata_in_listing=False, stream_put=True, directories=True, written_here=True,
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


def new_folder_parent(root: str) -> tuple[str, str]:
    """For a destination folder ``root`` that does not exist yet (``lakeshift check``): the
    nearest existing folder above it, in which the copy's makedirs will create it, and how
    that was found writable: an unnamed probe file (O_TMPFILE: no name, gone when closed,
    so check leaves nothing) written there, or, where the system has no O_TMPFILE, what
    ``os.access`` says.  A UsageError naming the fix when a file (or a link to nothing)
    is in the way or that folder cannot be written."""
    path = os.path.abspath(root)
    while True:
        try:
            st = os.stat(path)
            break
        except OSError as e:
            if os.path.islink(path) and e.errno == errno.ELOOP:
                raise UsageError(f"cannot create destination directory {root}: {path} is a "
                                 "symlink that loops (too many levels of symbolic links), in "
                                 "the way: remove it or choose another destination") from None
            if os.path.islink(path) and not os.path.exists(path):
                raise UsageError(f"cannot create destination directory {root}: {path} is a "
                                 "symlink to nothing, in the way: remove it or choose another "
                                 "destination") from None
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP):
                # (A name too long, an I/O error: not a folder still to be made.)
                raise UsageError(f"cannot create destination directory {root}: {path}: "
                                 f"{e.strerror or e}: choose another destination") from None
            up = os.path.dirname(path)
            if up == path:
                raise UsageError(f"cannot create destination directory {root}: no folder "
                                 "above it can be looked at") from None
            path = up
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"cannot create destination directory {root}: {path} is a file, "
                         "not a directory: move it away or choose another destination")
    fix = not_writable(root, path)
    tmpfile = getattr(os, "O_TMPFILE", 0)
    if tmpfile:
        try:
            fd = os.open(path, tmpfile | os.O_WRONLY, 0o600)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise UsageError(f"{fix} ({e.strerror})") from None
            # (A file system without unnamed files: EOPNOTSUPP, EISDIR, EINVAL.)
        else:
            try:
                os.write(fd, b"lakeshift check probe\n")
            except OSError as e:  # a full disk, a quota
                raise UsageError(f"cannot create destination directory {root}: a probe "
                                 f"written in {path} failed: {e.strerror}") from None
            finally:
                os.close(fd)
            return path, "an unnamed probe file written there, gone when closed"
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(fix)
    return path, "its permissions allow this user to write there"


def unreadable_source(path: str) -> str | None:
    """For a local source ``path`` that this user cannot see: the line saying so, naming
    the folder that refuses (the first on the way down it may not enter, else the parent
    whose names it may not list, so a name prefix cannot be matched); None when nothing
    refuses (then ``path`` is missing, or a prefix of names)."""
    path = os.path.abspath(path)
    parent = os.path.dirname(path)
    on_the_way = [parent]
    while (up := os.path.dirname(on_the_way[-1])) != on_the_way[-1]:
        on_the_way.append(up)
    refused = None
    for folder in reversed(on_the_way):
        if not os.path.isdir(folder):
            return None  # missing (or a file) above: not a permission problem
        if not os.access(folder, os.X_OK):
            refused = folder
            break
    if refused is None and not os.access(parent, os.R_OK):
        refused = parent
    if refused is None:
        return None
    return (f"local source {path} cannot be read (permission denied on {refused}): fix the "
            "permissions or run as a user who may read it")


def not_writable(root: str, path: str) -> str:
    """The line for a destination folder ``root`` that cannot be written (``path``: the
    folder that refuses, ``root`` itself or, when ``root`` does not exist yet, the nearest
    existing folder above it), naming the fix: ``check`` and the copy say the same."""
    if path == root:
        return (f"destination directory {root} is not writable by this user: make it "
                "writable (chmod/chown) or choose another destination")
    return (f"cannot create destination directory {root}: {path} is not writable by this "
            f"user: make it writable (chmod/chown), create {root} yourself, or choose "
            "another destination")


def local_etag(st: os.stat_result) -> str:
    """A change token for a local file: modification time and size."""
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


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


class _LocalRange:
    """Sequential chunks of a local file."""

    def __init__(self, path: str, head: ReadResult, start: int, end: int) -> None:
        self.path = path
        self.props = head.props
        self.size = head.size
        self.etag = head.etag
        self._pos = start
        self._end = end

    async def chunks(self, min_size: int) -> AsyncIterator[bytes]:
        while self._pos < self._end:
            n = min(min_size, self._end - self._pos)
            data = await asyncio.to_thread(_pread, self.path, self._pos, n)
            if not data:
                return
            self._pos += len(data)
            yield data

    def close(self) -> None:
        self._pos = self._end  # nothing held between reads


def _read_file(path: str, start: int | None, end: int | None, if_match: str | None,
               avoid: str | None = None) -> tuple[bytes, int, str]:
    """The bytes from ``start`` to ``end`` (default: all) of the file at ``path``, its size
    and its ETag; a read's errors as lakeshift errors (a folder's: why the walk listed it
    as an entry, ``avoid`` the destination folder: ``_unwalkable``)."""
    try:
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore
            # it).  O_NOFOLLOW with ``avoid``: a plain file opens as before, no syscall
            # more; a symlink fails (ELOOP), and only then is it resolved (``_open_link``).
            fd = os.open(path, _READ if avoid is None else _READ | os.O_NOFOLLOW)
        except OSError as e:
            if avoid is None or e.errno != errno.ELOOP:
                raise
            fd = _open_link(path, avoid)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                if stat.S_ISDIR(st.st_mode):
                    # (Said here, not by a read that fails: a folder may have size 0.)
                    raise _unwalkable(path, avoid)
                raise SpecialFileError(f"{path}: a FIFO, socket or device, not a file: "
                                       "skipped")
            etag = local_etag(st)
            if if_match and if_match != etag:
                from lakeshift.errors import ChangedError

                raise ChangedError(f"{path}: changed during the copy")
            data = _read_span(fd, start or 0,
                              (end if end is not None else st.st_size) - (start or 0))
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise _dangling(path) or NotFoundError(f"{path}: not found") from None
    except PermissionError:
        why = folder_refusal(path) if os.path.isdir(path) else None
        raise ForbiddenError(f"{path}: {why or 'permission denied (cannot read)'}") from None
    except IsADirectoryError:
        raise _unwalkable(path, avoid) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _unwalkable(path, avoid) from None
        if e.errno == errno.ENXIO:  # a socket
            raise SpecialFileError(f"{path}: a FIFO, socket or device, not a file: "
                                   "skipped") from None
        raise
    return data, st.st_size, etag


_READ = os.O_RDONLY | os.O_NONBLOCK


def _open_link(path: str, avoid: str) -> int:
    """A descriptor to read the symlink ``path``'s target, unless it leads to the
    destination folder ``avoid`` or inside it: DestinationFolderError, as the walk listed
    it (``_into_destination``), even when it dangled then and its target is made since."""
    if (why := _into_destination(path, avoid)) is not None:
        raise why
    return os.open(path, _READ)


def _copy_file(src_path: str, if_match: str | None, final: str, key: str, size: int,
               listed_md5: bytes | None, src_etag: str | None, mtime_ns: int | None,
               avoid: str | None = None) -> bytes:
    """LocalStore.copy_from, in a disk worker thread or in the helper process."""
    data, _, _ = _read_file(src_path, None, None, if_match, avoid)
    md5 = hashlib.md5(data).digest()
    # What the engine's _check says (tests/unit/test_local_copy.py compares them).
    if len(data) != size:
        raise IntegrityError(f"{key}: read {len(data)} bytes, the listing said {size}")
    if listed_md5 is not None and md5 != listed_md5:
        raise IntegrityError(f"{key}: MD5 of the data read ({md5.hex()}) differs from the "
                             f"source's ({listed_md5.hex()})")
    _write_file(final, data, md5, src_etag, mtime_ns)
    return md5


def _read_span(fd: int, pos: int, n: int) -> bytes:
    """Up to ``n`` bytes from ``pos`` (fewer only at the end of the file), as a buffered
    file's read would return them, without building a file object."""
    if n <= 0:
        return b""
    data = os.pread(fd, n, pos)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = os.pread(fd, n - got, pos + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _pread(path: str, pos: int, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return os.pread(f.fileno(), n, pos)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: vanished during the copy") from None


def _exists(key: str, path: str) -> ObjectInfo | None:
    """What ``key`` is (a HEAD): None for nothing there, or a directory."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return None if stat.S_ISDIR(st.st_mode) else _info(key, st, path)


#: The last file listed had a record: the next one's is asked for straight away.  After
#: one without, listxattr asks first whether there is one: a getxattr of a missing
#: attribute raises (ENODATA), and the OSError made and caught cost ~1.5 µs of the ~4.6
#: per file of a fresh source's listing, under the interpreter lock the loop waits for.
_record_seen = True
_HAS_XATTRS = hasattr(os, "getxattr")


def _info(key: str, st: os.stat_result, path: str) -> ObjectInfo:
    global _record_seen
    md5, meta = None, {}
    if _HAS_XATTRS:
        record = None
        try:
            if _record_seen or _XATTR in os.listxattr(path):
                record = _read_record(os.getxattr(path, _XATTR), st)
                _record_seen = True
        except OSError:
            _record_seen = False
        if record is not None:
            md5 = record[0]
            if record[1] is not None:
                meta[SRC_ETAG_KEY] = record[1]
    return ObjectInfo(key, st.st_size, _mtime(st), local_etag(st), md5, False, meta)


def _mtime(st: os.stat_result) -> datetime:
    """The file's mtime to the microsecond, from the exact nanoseconds (not the float)."""
    # (One timedelta added in C: half the cost of fromtimestamp and replace, per file.)
    return _EPOCH + timedelta(microseconds=st.st_mtime_ns // 1000)


#: Content types by extension: ``mimetypes.guess_type`` parses each key (a URL scheme, the
#: suffix and encoding maps, two tables: ~6 µs, once per file read); its answer for a key
#: with no ``:`` (no scheme) and an extension in neither of its suffix maps depends on
#: that extension alone, so it is asked once per extension.
_TYPES: dict[str, str | None] = {}
_TYPES_MAX = 4096


def content_type(key: str) -> str | None:
    """``mimetypes.guess_type(key, strict=False)[0]``, remembered per extension."""
    slash = key.rfind("/")
    dot = key.rfind(".")
    # posixpath.splitext: the extension starts at the last dot of the last component,
    # unless only dots come before it there (".bashrc", "..x": none).
    ext = key[dot:] if dot > slash and key[slash + 1:dot].lstrip(".") else ""
    plain = ":" not in key  # (a ":" before any "/" is read as a URL scheme)
    if plain and ext in _TYPES:
        return _TYPES[ext]
    guessed = mimetypes.guess_type(key, strict=False)[0]
    if plain and ext.lower() not in mimetypes.suffix_map and \
            ext not in mimetypes.encodings_map and len(_TYPES) < _TYPES_MAX:
        _TYPES[ext] = guessed
    return guessed


def _walk(root: str, folder: str, name_prefix: str, start_after: str | None,
          ancestors: frozenset[tuple[int, int]] | None = None,
          avoid: tuple[int, int] | None = None,
          avoid_real: str | None = None, entered: bool = False) -> Iterator[ObjectInfo]:
    """Keys below ``folder`` in key order.

    ``entered``: the walk came down into ``folder`` from its parent (not where it started:
    the source root, a partition's prefix).  Such a folder with nothing in it is listed as
    a folder marker (``folder/``, ``is_dir_marker``, no time), as the WebHDFS walk lists an
    empty directory, so that --empty-dirs makes it; a folder that holds anything needs
    none (it is made with its files).  Known once the folder is listed: no state is kept
    per folder.  A symlink to an empty folder is followed as every symlink to a folder is:
    a marker of the link's name.

    A folder that cannot be listed (permissions), a
    symlink that loops (to a folder above it, or to itself), a symlink whose realpath is
    ``avoid_real`` or inside it (the destination folder: to a folder or a file there, or
    dangling, as before the copy makes its target) or a folder whose identity is ``avoid``
    (the destination folder's, reached through a mount) is not walked into nor read: it
    is listed as one empty entry, sorted as a file of that name, whose read fails with
    the reason (see ``_read_file``); so it is recorded as that object's failure — or
    skip — and the rest of the walk goes on (an empty one too: it is that entry, not a
    marker)."""
    base = os.path.join(root, *folder.split("/")) if folder else root
    try:
        if ancestors is None:
            # Every folder from here up to / : a symlink to any of them would loop (a
            # partition's walk starts below the store's root, not at it).
            ancestors = frozenset(_identities_up(base))
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return
    except PermissionError:
        why = folder_refusal(base)
        raise ForbiddenError(f"{base}: {why or 'permission denied (cannot list)'}") from None
    keyed: list[tuple[str, str, os.DirEntry[str], tuple[int, int] | None]] = []
    for e in entries:
        if not e.name.startswith(name_prefix) or e.name.startswith(_PARTIAL):
            continue
        key = (folder + "/" if folder else "") + e.name
        try:
            # Resolved only for a symlink: a plain folder inside the source cannot be
            # inside the destination (that pair is refused before the copy starts).
            if avoid_real is not None and e.is_symlink() and \
                    _inside_or_at(os.path.realpath(e.path), avoid_real):
                keyed.append((key, "entry", e, None))
                continue
            if not e.is_dir(follow_symlinks=True):
                keyed.append((key, "file", e, None))
                continue
            st = e.stat(follow_symlinks=True)
        except OSError:  # a symlink loop (ELOOP), or gone
            keyed.append((key, "entry", e, None))
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in ancestors or ident == avoid or not os.access(e.path, os.R_OK | os.X_OK):
            keyed.append((key, "entry", e, None))
        else:
            keyed.append((key + "/", "folder", e, ident))
    if entered and not keyed:
        # (Lakeshift's own partial files do not count: the walk never lists them.)
        key = folder + "/"
        if start_after is None or key > start_after:
            yield ObjectInfo(key, 0, None, None, None, True)
        return
    keyed.sort(key=lambda t: t[0])
    for key, kind, e, folder_id in keyed:
        if kind == "folder":
            assert folder_id is not None
            # Every key below sorts after ``key``; skip the subtree when it is all done.
            if start_after is not None and not (key > start_after or
                                                start_after.startswith(key)):
                continue
            yield from _walk(root, key[:-1], "", start_after, ancestors | {folder_id}, avoid,
                             avoid_real, entered=True)
        elif start_after is None or key > start_after:
            if kind == "entry":
                yield ObjectInfo(key, 0)
                continue
            try:
                yield _info(key, e.stat(follow_symlinks=True), e.path)
            except FileNotFoundError:
                if e.is_symlink():
                    yield ObjectInfo(key, 0)  # a dangling link: its read says so
                continue  # gone since the folder was read
            except OSError:
                yield ObjectInfo(key, 0)  # its read says why


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the folder at ``path``; None while there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _identity_of(e: os.DirEntry[str]) -> tuple[int, int]:
    """(device, inode) of what the entry ``e`` names (followed, as a symlink leads)."""
    st = e.stat(follow_symlinks=True)
    return st.st_dev, st.st_ino


def _identities_up(path: str) -> Iterator[tuple[int, int]]:
    """(device, inode) of ``path`` and of every folder above it."""
    here = os.path.realpath(path)
    while True:
        st = os.stat(here)
        yield st.st_dev, st.st_ino
        up = os.path.dirname(here)
        if up == here:
            return
        here = up


def _above_or_at(target: str, here: str) -> bool:
    """``target`` is ``here`` or a folder above it (a symlink there would loop)."""
    return here == target or here.startswith(target.rstrip(os.sep) + os.sep)


def _inside_or_at(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or inside it (both resolved: realpath)."""
    return _above_or_at(folder, path)


def _into_destination(path: str, avoid: str) -> DestinationFolderError | None:
    """A DestinationFolderError when the symlink ``path`` leads to the destination folder
    ``avoid`` or inside it (its realpath, which a dangling link has too)."""
    real, folder = os.path.realpath(path), os.path.realpath(avoid)
    if not _inside_or_at(real, folder):
        return None
    return _destination_folder_error(path, avoid, None if real == folder else real)


def _destination_folder_error(path: str, avoid: str, inside: str | None = None
                              ) -> DestinationFolderError:
    """Why ``path`` is not followed: it leads to the destination folder ``avoid`` itself,
    or, with ``inside`` (a folder or file there, resolved), inside it."""
    if inside is None:
        return DestinationFolderError(f"{path}: leads to the destination folder {avoid}: not "
                                      "followed (each run would copy the last copy again, "
                                      "one level deeper)")
    return DestinationFolderError(f"{path}: leads to {inside}, inside the destination folder "
                                  f"{avoid}: not followed (a copy never reads its own "
                                  "destination: a run could copy the last copy again, one "
                                  "level deeper)")


def _dangling(path: str) -> DanglingLinkError | None:
    """A DanglingLinkError when ``path`` is a symlink whose target does not exist."""
    try:
        target = os.readlink(path)
    except OSError:  # not a symlink, or gone
        return None
    return DanglingLinkError(f"{path}: a symlink to {target}, which does not exist: nothing "
                             "to copy")


def _unwalkable(path: str, avoid: str | None = None) -> LakeshiftError:
    """Why the walk listed ``path`` as an entry instead of walking into it (``avoid``: the
    destination folder, never walked into)."""
    try:
        target = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return SymlinkLoopError(f"{path}: symlink loop (the link resolves to itself): not "
                                 "followed")
        return NotFoundError(f"{path}: {e.strerror}")
    parent = os.path.dirname(path)
    while True:
        try:
            here = os.stat(parent)
        except OSError:
            break
        if (here.st_dev, here.st_ino) == (target.st_dev, target.st_ino):
            return SymlinkLoopError(f"{path}: symlink loop (it points to {parent}, a folder "
                                 "above it): not followed")
        up = os.path.dirname(parent)
        if up == parent:
            break
        parent = up
    if avoid is not None and _identity(avoid) == (target.st_dev, target.st_ino):
        return _destination_folder_error(path, avoid)
    if (why := folder_refusal(path)) is not None:
        return ForbiddenError(f"{path}: {why}")
    return NotFoundError(f"{path}: is a directory")


def folder_refusal(path: str) -> str | None:
    """What this user may not do with the folder at ``path``, in the words a failure and
    ``scan`` give: list its names (no read permission) or enter it to read its entries (no
    execute permission: ``ls`` shows the names, nothing can be opened or stat'ed); None
    when both are allowed."""
    if not os.access(path, os.R_OK):
        return "permission denied (cannot list the folder)"
    if not os.access(path, os.X_OK):
        return ("permission denied (the folder's names can be listed, but it cannot be "
                "entered: none of its entries can be read)")
    return None
