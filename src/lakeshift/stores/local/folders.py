"""What ``check``, ``plan`` and the copy say about local folders before any file moves: a
destination folder still to be made (the nearest existing folder above it, and whether it
can be written: ``new_folder_parent``), one that cannot be written (``not_writable``), a
source below a folder this user may not enter (``unreadable_source``), and what this user
may not do with a folder (``folder_refusal``: the words of a ``forbidden`` failure and of
``scan``).  Each line names the problem and its fix; ``check`` and the copy share them.
"""

from __future__ import annotations

import errno
import os
import stat

from lakeshift.errors import UsageError


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
