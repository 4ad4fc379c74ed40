"""Pair source objects with destination objects by merging two sorted listings (like
rclone's march), so comparing costs no request per object and memory stays flat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from lakeshift.model import ObjectInfo
from lakeshift.stores.props import SRC_ETAG_KEY

Overwrite = Literal["if-different", "always", "never"]


async def merge(source: AsyncIterator[tuple[str, ObjectInfo]],
                dest: AsyncIterator[tuple[str, ObjectInfo]] | None
                ) -> AsyncIterator[tuple[str, ObjectInfo, ObjectInfo | None]]:
    """Yield (relative name, source object, destination object or None).

    Both inputs are ascending by relative name.  A destination listing out of order (a
    service sorting differently) can only make an object look missing: it is then copied
    again, never skipped wrongly.
    """
    d: tuple[str, ObjectInfo] | None = None
    if dest is not None:
        d = await anext(dest, None)
    async for rel, s in source:
        while dest is not None and d is not None and d[0] < rel:
            d = await anext(dest, None)
        yield rel, s, (d[1] if d is not None and d[0] == rel else None)


async def outer_merge(source: AsyncIterator[tuple[str, ObjectInfo]],
                      dest: AsyncIterator[tuple[str, ObjectInfo]]
                      ) -> AsyncIterator[tuple[str, ObjectInfo | None, ObjectInfo | None]]:
    """Every name on either side once: (name, source or None, destination or None)."""
    s = await anext(source, None)
    d = await anext(dest, None)
    while s is not None or d is not None:
        if d is None or (s is not None and s[0] < d[0]):
            assert s is not None
            yield s[0], s[1], None
            s = await anext(source, None)
        elif s is None or d[0] < s[0]:
            yield d[0], None, d[1]
            d = await anext(dest, None)
        else:
            yield s[0], s[1], d[1]
            s, d = await anext(source, None), await anext(dest, None)


def identical(src: ObjectInfo, dst: ObjectInfo) -> bool:
    """Provably the same content: same size, and the same MD5, or the destination records
    that it was copied from exactly this source version (its ETag; the copy was proven by
    MD5 when it was written).  The recorded ETag also settles an MD5 mismatch, because an
    S3 ETag that looks like an MD5 may not be one (SSE-KMS, SSE-C)."""
    if src.is_dir_marker and dst.is_dir_marker:
        return True  # a directory (or its marker blob) is there: nothing to copy
    if src.size != dst.size:
        return False
    if src.md5 is not None and dst.md5 is not None and src.md5 == dst.md5:
        return True
    recorded = (dst.metadata or {}).get(SRC_ETAG_KEY)
    return bool(recorded and src.etag and recorded == src.etag)


def record_may_prove(src: ObjectInfo, dst: ObjectInfo) -> bool:
    """Whether the destination's own record (its ``lakeshift_src_etag`` metadata) could
    prove ``dst`` a copy of ``src`` where its listing, which carries no metadata (S3),
    could not: same size, a source version to compare (a local file's ETag is its mtime
    and size), and no MD5 pair that already settles it.  Then one HEAD of the destination
    object reads the record, so that a rerun from a source without an MD5 (local disk, an
    S3 multipart object) skips unchanged objects without reading them."""
    return dst.metadata is None and src.size == dst.size and bool(src.etag) and \
        not src.is_dir_marker and not identical(src, dst)


def needs_copy(src: ObjectInfo, dst: ObjectInfo | None, overwrite: Overwrite) -> bool:
    if dst is None or overwrite == "always":
        return True
    if overwrite == "never":
        return False
    return not identical(src, dst)
