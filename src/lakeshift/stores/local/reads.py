"""Reading local files: a read's bytes, size and ETag with its errors as lakeshift errors
(``_read_file``: a folder the walk listed as an entry, a dangling or looping link, a FIFO,
a file this user may not read; a link to the destination folder is never opened), ranged
reads (``_LocalRange``), a HEAD (``_exists``), content types by extension
(``content_type``), and the one-call local → local copy (``_copy_file``: this read, then
writes.py's whole-file write), which a disk worker thread or the helper process
(helper.py) runs.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import mimetypes
import os
import stat
from collections.abc import AsyncIterator

from lakeshift.errors import (
    ForbiddenError,
    IntegrityError,
    NotFoundError,
    SpecialFileError,
)
from lakeshift.model import ObjectInfo, ReadResult
from lakeshift.stores.local.folders import folder_refusal
from lakeshift.stores.local.walk import (
    _dangling,
    _info,
    _into_destination,
    _unwalkable,
    local_etag,
)
from lakeshift.stores.local.writes import _write_file


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
