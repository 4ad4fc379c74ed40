"""The local store's listing: a depth-first walk of the tree in key order (a folder sorts
as ``name/``, exactly where its keys sort in an object store, so start-after and
merge-compare work as on S3), what it lists for each file (``_info``: size, time, ETag
``local_etag``, and the MD5 and source ETag of lakeshift's record while size and mtime
still match), and why it lists an entry it does not walk into or describe (a folder it may
not list, a symlink that loops or leads to nothing, the destination folder:
``_unwalkable``, ``_dangling``), which that entry's read then says (reads.py).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from datetime import datetime, timedelta

from lakeshift.errors import (
    DanglingLinkError,
    DestinationFolderError,
    ForbiddenError,
    LakeshiftError,
    NotFoundError,
    SymlinkLoopError,
)
from lakeshift.model import ObjectInfo
from lakeshift.stores.local.folders import folder_refusal
from lakeshift.stores.local.writes import _EPOCH, _PARTIAL, _XATTR, _read_record
from lakeshift.stores.props import SRC_ETAG_KEY


def local_etag(st: os.stat_result) -> str:
    """A change token for a local file: modification time and size."""
    return f"{st.st_mtime_ns:x}-{st.st_size:x}"


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
