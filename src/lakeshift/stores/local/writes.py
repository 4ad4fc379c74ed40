"""The write side of the local store: a file is written whole to a temporary file, given
its time and record through its descriptor, then linked (or renamed) into place.

Temporary files are unnamed (O_TMPFILE) where the system has them, linked into place
complete (``_link_in``); elsewhere hidden named files (``_PARTIAL`` + a random part per
process + a counter), renamed.  The record (``user.lakeshift``, where the file system has
extended attributes) keeps the file's MD5 and the source's ETag for as long as its size and
mtime stay those it was made with (``_record_value``, read back by ``_read_record``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import struct
import threading
import uuid
from datetime import UTC, datetime, timedelta

from lakeshift.errors import ForbiddenError, InvalidNameError
from lakeshift.model import Data, ObjectProps
from lakeshift.stores.props import SRC_ETAG_KEY, SRC_MTIME_KEY, parse_time

#: Temporary files' names start so (a listing leaves them out).
_PARTIAL = ".lakeshift-partial-"
_XATTR = "user.lakeshift"


#: Temporary names: a random part per process and a counter (one uuid4, so one read of
#: the kernel's random source, per process rather than per file); a forked child draws
#: its own.
_TMP_PREFIX = ""
_tmp_numbers = itertools.count()
#: Where the system has O_TMPFILE (Linux), a file is written with no name at all and linked
#: into place complete (``_link_in``): one directory entry made per file instead of a
#: temporary one made, then removed by the rename (measured on ext4: a quarter of the
#: kernel time of a small file), and a process that dies mid-write leaves nothing behind.
#: Turned off for the process (named temporary files, renamed) the first time a file
#: system refuses it, or when /proc/self/fd (the link's way to the open file) cannot be
#: opened.
_TMPFILE: int = getattr(os, "O_TMPFILE", 0)
_proc_fds: int | None = None
_proc_lock = threading.Lock()


def _new_tmp_prefix() -> None:
    global _TMP_PREFIX, _tmp_numbers, _proc_fds
    _TMP_PREFIX = f"{_PARTIAL}{uuid.uuid4().hex[:16]}-"
    _tmp_numbers = itertools.count()
    if _proc_fds is not None:  # a forked child: that folder lists the parent's files
        with contextlib.suppress(OSError):
            os.close(_proc_fds)
        _proc_fds = None


_new_tmp_prefix()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_tmp_prefix)
#: The folder the last temporary file was created in (it existed then): files come in
#: listing order, so most files go to the folder of the one before.  A folder removed or
#: replaced since makes the open fail, which takes the full path below.
_last_parent: str | None = None


def _create(final: str) -> tuple[str | None, int]:
    """An open temporary file for ``final``: its name, or None for an unnamed one."""
    global _last_parent
    last = _last_parent
    if last and final.startswith(last) and final[len(last):len(last) + 1] == "/" \
            and "/" not in final[len(last) + 1:]:
        parent = last  # (what os.path.dirname gives, without its two calls)
    else:
        parent = os.path.dirname(final)
    if parent == last:
        try:
            return _open_tmp(parent)
        except (FileNotFoundError, NotADirectoryError):
            pass
    if os.path.isfile(parent):
        raise InvalidNameError(f"cannot create directory {parent}: a file has that name")
    try:
        os.makedirs(parent, exist_ok=True)
    except PermissionError:
        raise ForbiddenError(f"{parent}: permission denied") from None
    made = _open_tmp(parent)
    _last_parent = parent
    return made


#: The folder where the last unnamed file found its name taken (a rerun replacing files):
#: named temporary files there, renamed over the old ones (one step; linking first would
#: be three), until the copy moves on to another folder.
_replacing_in: str | None = None


def _open_tmp(parent: str) -> tuple[str | None, int]:
    global _TMPFILE
    if _TMPFILE and parent != _replacing_in and (_proc_fds is not None or
                                                 _proc_folder() is not None):
        try:
            return None, os.open(parent, os.O_WRONLY | _TMPFILE, 0o644)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
            _TMPFILE = 0  # this file system has none (EISDIR: nor has the kernel)
    tmp = os.path.join(parent, f"{_TMP_PREFIX}{next(_tmp_numbers)}")
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


def _proc_folder() -> int | None:
    """/proc/self/fd of this process, open (once); None (and no O_TMPFILE) without it."""
    global _proc_fds, _TMPFILE
    if _proc_fds is None:
        with _proc_lock:
            if _proc_fds is None:
                try:
                    _proc_fds = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
                except OSError:
                    _TMPFILE = 0
    return _proc_fds


def _link_in(fd: int, final: str) -> str | None:
    """The unnamed file ``fd`` linked as ``final``: it appears there complete, in one step.
    When something has that name already (a file being replaced, or a folder), linked as
    a temporary name instead, returned for the rename that replaces it (atomically)."""
    global _replacing_in
    try:
        os.link(str(fd), final, src_dir_fd=_proc_fds, follow_symlinks=True)
        return None
    except FileExistsError:
        _replacing_in = os.path.dirname(final)
    tmp = os.path.join(_replacing_in, f"{_TMP_PREFIX}{next(_tmp_numbers)}")
    os.link(str(fd), tmp, src_dir_fd=_proc_fds, follow_symlinks=True)
    return tmp


class _LocalUpload:
    def __init__(self, final: str, size: int, props: ObjectProps, whole: bool = False) -> None:
        self.final = final
        self.src_etag = props.metadata.get(SRC_ETAG_KEY)
        #: The source's original time, given to the file as its mtime.
        self.mtime = parse_time(props.metadata.get(SRC_MTIME_KEY))
        self.tmp, self.fd = _create(final)
        if not whole:  # blocks land at their offsets, in any order
            os.ftruncate(self.fd, size)

    async def stage(self, index: int, offset: int, data: Data, md5: bytes | None) -> None:
        await asyncio.to_thread(os.pwrite, self.fd, data, offset)

    async def commit(self, order: list[int], md5: bytes | None) -> None:
        await asyncio.to_thread(self.finish, md5)

    def finish(self, md5: bytes | None) -> None:
        _finish(self.fd, self.tmp, self.final, md5, self.src_etag,
                None if self.mtime is None else _ns(self.mtime))

    async def abort(self) -> None:
        await asyncio.to_thread(self.drop)

    def drop(self) -> None:
        _drop(self.fd, self.tmp)


def _finish(fd: int, tmp: str | None, final: str, md5: bytes | None,
            src_etag: str | None, mtime_ns: int | None, size: int | None = None) -> None:
    """Time and record set through the open file (no path look-ups), then into place: an
    unnamed file linked (``_link_in``), a named one renamed.  Both travel with the file,
    and neither changes its mtime.  ``size``: the bytes written, when the caller knows
    them (the record then needs no fstat where the folder keeps times exactly)."""
    try:
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        if md5 is not None:
            exact = _exact_in  # (read once: a disk thread may set it meanwhile)
            if size is not None and mtime_ns is not None and 0 <= mtime_ns < _LATEST and \
                    final.startswith(exact) and "/" not in final[len(exact):]:
                try:
                    os.setxattr(fd, _XATTR, _record_value(mtime_ns, size, md5, src_etag))
                except OSError:
                    pass  # (as in _set_record)
            else:
                _record(fd, md5, src_etag, mtime_ns, final)
        if tmp is None:
            tmp = _link_in(fd, final)
            if tmp is None:
                return
    finally:
        os.close(fd)
    try:
        os.replace(tmp, final)
    except IsADirectoryError:
        os.remove(tmp)
        raise InvalidNameError(f"cannot write {final}: a directory has that "
                               "name") from None


def _drop(fd: int, tmp: str | None) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    if tmp is None:
        return  # unnamed: gone with its last descriptor
    try:
        os.remove(tmp)
    except FileNotFoundError:
        pass


def _write_whole(final: str, data: Data, props: ObjectProps, md5: bytes) -> None:
    """A whole file in one go: temporary file, rename, remembered MD5."""
    mtime = parse_time(props.metadata.get(SRC_MTIME_KEY))
    _write_file(final, data, md5, props.metadata.get(SRC_ETAG_KEY),
                None if mtime is None else _ns(mtime))


def _write_file(final: str, data: Data, md5: bytes, src_etag: str | None,
                mtime_ns: int | None) -> None:
    tmp, fd = _create(final)
    try:
        if data and os.pwrite(fd, data, 0) < len(data):
            _write_all(fd, data)  # a short write (rare): all of it again, from the start
    except BaseException:
        _drop(fd, tmp)
        raise
    _finish(fd, tmp, final, md5, src_etag, mtime_ns, len(data))


def _write_all(fd: int, data: Data) -> None:
    pos = os.pwrite(fd, data, 0) if data else 0
    if pos < len(data):  # a short write (rare): the rest, from where it stopped
        view = memoryview(data)
        while pos < len(view):
            pos += os.pwrite(fd, view[pos:], pos)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _ns(when: datetime) -> int:
    """Nanoseconds since the epoch, exactly (no float rounding of the microseconds)."""
    return (when - _EPOCH) // _MICROSECOND * 1000


#: The folder (with its trailing "/") where a file given its time ``mtime_ns`` read it
#: back exactly (``_record``): files written whole there get their record from the time
#: given and the bytes written, without an fstat each (one system call and a stat result
#: of 56 per file: ~5 % of the helper's time on 64 B files).  A file system that keeps
#: coarser times (FAT: 2 s; ext4 with 128-byte inodes: 1 s; some network mounts) reads
#: back another time: there every record is made from the fstat, as it must match it.
#: (Times before 1970 always are: a file system may clamp them.)  Only ever set where
#: setxattr exists.
_exact_in = "\0"
#: Only a time with digits below the millisecond read back exactly shows it: a whole
#: second reads back exactly from a 1 s file system too (FAT: an even second), and the
#: next file's fraction would not.  Times from 2038 take the fstat too: a file system may
#: clamp them (XFS without bigtime: 2038-01-19; ext4: 2446).
_LATEST = 2**31 * 10**9


def _record(fd: int, md5: bytes, src_etag: str | None, mtime_ns: int | None = None,
            final: str | None = None) -> None:
    """Remember the MD5 (and source ETag) of the file just written, for as long as its size
    and mtime stay as they are now (an fstat says what they are)."""
    global _exact_in
    if not hasattr(os, "setxattr"):
        return
    try:
        st = os.fstat(fd)
    except OSError:
        return
    if final is not None and mtime_ns is not None and st.st_mtime_ns == mtime_ns and \
            mtime_ns % 1_000_000:
        _exact_in = os.path.dirname(final) + "/"
    _set_record(fd, _record_value(st.st_mtime_ns, st.st_size, md5, src_etag))


def _set_record(fd: int, value: bytes) -> None:
    try:
        os.setxattr(fd, _XATTR, value)
    except OSError:
        pass  # a file system without user extended attributes: reruns compare less


#: The record, binary (version 2): version byte, mtime_ns (signed) and size, 8 bytes each,
#: little-endian, the raw MD5, then the source's ETag, if any: a byte n > 0 and n raw bytes
#: for its lowercase hex digits up to its first "-" (an even number of them: an odd last
#: one goes with the text), then the rest of it as text ("-10000" of an S3 multipart
#: ETag); or a 0 byte and all of it as text.
#: 56 bytes at most for an S3 ETag (plain or multipart) and 46 for a local one, where the
#: text record of version 1 took 77-86: ext4 keeps values up to 56 bytes (with this name)
#: in the inode, a longer one costs every file a 4 KiB block of its own (an allocation
#: and a write more per file).  Records of version 1 (text: "1 <mtime_ns> <size> <md5 hex>
#: <source ETag or ->", written by earlier versions) are still read.
_RECORD = struct.Struct("<BqQ16s")


def _record_value(mtime_ns: int, size: int, md5: bytes, src_etag: str | None) -> bytes:
    head = _RECORD.pack(2, mtime_ns, size, md5)
    if src_etag is None:
        return head
    # The hex part: up to the first "-" (S3's multipart ETag, a local file's), but an even
    # number of digits (a local file's mtime before mid-2006 has 15: its last goes with the
    # text); taken raw only when it reads back exactly (lowercase).
    dash = src_etag.find("-")
    hex_part = src_etag if dash < 0 else src_etag[:dash]
    hex_part = hex_part[:len(hex_part) & ~1]
    if 0 < len(hex_part) <= 2 * 255:
        try:
            raw = bytes.fromhex(hex_part)
        except ValueError:
            raw = b""
        if raw and raw.hex() == hex_part:
            return head + bytes((len(raw),)) + raw + src_etag[len(hex_part):].encode()
    return head + b"\0" + src_etag.encode()


def _read_record(value: bytes, st: os.stat_result) -> tuple[bytes, str | None] | None:
    """The MD5 and source ETag a record keeps, while the file's mtime and size are still
    those it was made for; None for a stale, foreign or damaged record."""
    if value[:1] == b"\x02":
        if len(value) < _RECORD.size:
            return None
        _, mtime_ns, size, md5 = _RECORD.unpack_from(value)
        if mtime_ns != st.st_mtime_ns or size != st.st_size:
            return None
        rest = value[_RECORD.size:]
        if not rest:
            return md5, None
        n = rest[0]
        if len(rest) < 1 + n:
            return None
        try:
            return md5, rest[1:1 + n].hex() + rest[1 + n:].decode()
        except UnicodeDecodeError:
            return None
    try:
        fields = value.decode().split(" ")
    except UnicodeDecodeError:
        return None
    if (len(fields) == 5 and fields[0] == "1" and fields[1] == str(st.st_mtime_ns)
            and fields[2] == str(st.st_size)):
        try:
            return bytes.fromhex(fields[3]), None if fields[4] == "-" else fields[4]
        except ValueError:
            return None
    return None
