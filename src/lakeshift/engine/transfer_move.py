"""A move's check (engine/transfer.py is the entry): the source is deleted only once its
copy is proven; then the source folders the move emptied are removed (EmptiedFolders)."""

from __future__ import annotations

import functools
from typing import cast

from lakeshift.engine.checksums import SourceProof, stream_checksums
from lakeshift.engine.events import EventBus
from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.transfer_base import TransferContext
from lakeshift.engine.transfer_proofs import _etag_rebuilds, source_kept
from lakeshift.errors import (
    AuthError,
    IntegrityError,
    LakeshiftError,
    UsageError,
)
from lakeshift.model import ObjectInfo, SourceDeleted
from lakeshift.stores.base import DirectoryWriter, Store


class EmptiedFolders:
    """The source folders a move may leave empty, removed once the pipeline is done.

    What a user expects of a move (``mv``): no source tree left behind where everything
    under it moved.  So each folder that held an object the move deleted, and each empty
    folder (``d/``) whose folder is now at the destination, is tried at the end, deepest
    first, then its parents: removed only while empty (``DirectoryWriter.remove_directory``:
    a folder that still holds anything — an object kept, failed, left out by a filter,
    written since — stays), and never the source root (``root``, the folder the names are
    relative to: the folder the user named, or the one holding a name prefix) nor anything
    above it.  Only for sources with real directories (local disk); an object store has
    no folder to leave behind.  Holds one name per folder something moved out of (not per
    object), kept until the end because objects finish in any order.

    Each folder removed is told as the objects deleted are (``SourceDeleted``, with
    ``folder``: key ``d/``, its destination folder ``dest_root`` + its name, no MD5): the
    summary counts them (``TransferStats.folders_removed``) and a job records them in
    ``lakeshift_deletions``."""

    def __init__(self, root: str, dest_root: str = "") -> None:
        self.root = root
        self.dest_root = dest_root
        self.folders: set[str] = set()

    def moved(self, key: str) -> None:
        """``key`` left the source (deleted once its copy was proven), or, a folder marker
        ``d/``, its folder is at the destination."""
        folder = key if key.endswith("/") else key[:key.rfind("/") + 1]
        if len(folder) > len(self.root) and folder.startswith(self.root):
            self.folders.add(folder)

    def candidates(self) -> list[str]:
        """Every folder to try, with its parents below the root, children before parents."""
        todo: set[str] = set()
        for folder in self.folders:
            while len(folder) > len(self.root) and folder not in todo:
                todo.add(folder)
                folder = folder[:folder.rstrip("/").rfind("/") + 1]
        # A child's name is its parent's and more: in reverse order it comes first.
        return sorted(todo, reverse=True)

    async def sweep(self, store: Store, policy: RetryPolicy,
                    limiter: EndpointLimiter | None = None,
                    events: EventBus | None = None) -> None:
        """Remove the emptied folders (see the class), each one removed told to ``events``;
        a folder that cannot be removed for another reason (no right to) stays, as a folder
        that holds anything does."""
        if not store.capabilities.directories or not self.folders:
            return
        dirs = cast(DirectoryWriter, store)
        for folder in self.candidates():
            try:
                await retry(functools.partial(dirs.remove_directory, folder), policy, limiter)
                # remove_directory leaves a folder that holds anything without a word (as
                # Gen2 does): whether this one went is asked.
                gone = not await retry(functools.partial(store.is_folder, folder), policy,
                                       limiter)
            except (AuthError, UsageError):
                raise
            except (LakeshiftError, OSError):
                continue
            if gone and events is not None:
                events.emit(SourceDeleted(folder, self.dest_root + folder[len(self.root):], "",
                                          folder=True))
        self.folders.clear()


async def delete_source_if_verified(ctx: TransferContext, src: ObjectInfo, dest_key: str,
                                    md5: bytes | None) -> str | None:
    """Delete ``src`` once its copy at ``dest_key`` is proven by MD5; return None when
    deleted, else why the source was kept.

    Proof: the destination has the source's size and a Content-MD5 (equal to ``md5``, the
    MD5 of the bytes this run wrote, when given); that MD5 equals the source's own MD5 —
    or, for a source without one (S3 multipart, local files), the MD5 of the source read
    again now; and the source is still the version that was copied (same ETag).  A copy
    by parts (``_copy_parts``) or in blocks proven by the source's checksum keeps no
    Content-MD5: the destination's bytes, read back, must have the source's own checksum
    (CRC32, SHA) where it keeps one, else rebuild its multipart ETag (where that can be
    rebuilt: ``_etag_rebuilds``)."""
    d = await retry(lambda: ctx.dst.exists(dest_key), ctx.policy, ctx.dst_limit)
    if d is None or d.size != src.size:
        return "the destination copy is missing or has another size"
    if d.md5 is None and src.md5 is None and md5 is None:
        kept = await source_kept(ctx, src)
        proof = SourceProof(src, kept)
        if proof.label.startswith("source-"):
            await stream_checksums(ctx.dst, d, ctx.slots, ctx.policy, limiter=ctx.dst_limit,
                                   chunk=ctx.block_size, proof=proof, whole_md5=False)
            try:
                proof.check()
            except IntegrityError:
                return (f"the destination's bytes, read back, do not have the source's "
                        f"{proof.label.removeprefix('source-')}")
        else:
            if proof.label != "multipart-etag" or not proof.part_size or \
                    not _etag_rebuilds(src, kept):
                return "the destination has no Content-MD5 to prove the copy"
            _, etags = await stream_checksums(ctx.dst, d, ctx.slots, ctx.policy,
                                              [proof.part_size], limiter=ctx.dst_limit,
                                              chunk=ctx.block_size)
            if etags[0] != (src.etag or "").lower():
                return "the destination's bytes, read back, do not rebuild the source's ETag"
    elif d.md5 is None:
        return "the destination has no Content-MD5 to prove the copy"
    elif md5 is not None and d.md5 != md5:
        return "the destination's Content-MD5 is not the MD5 of the bytes written"
    elif src.md5 is not None:
        if src.md5 != d.md5:
            return "the source's MD5 differs from the destination's Content-MD5"
    elif await rehash(ctx, src) != d.md5:
        return "the source, read again, does not match the destination's Content-MD5"
    cur = await retry(lambda: ctx.src.exists(src.key), ctx.policy, ctx.src_limit)
    if cur is None or cur.etag != src.etag or cur.size != src.size:
        return "the source changed after it was copied"
    await retry(lambda: ctx.src.delete(src.key), ctx.policy, ctx.src_limit)
    if ctx.emptied is not None:
        ctx.emptied.moved(src.key)
    return None


async def rehash(ctx: TransferContext, src: ObjectInfo) -> bytes:
    """MD5 of the source object's bytes, read again (one slot of memory)."""
    md5, _ = await stream_checksums(ctx.src, src, ctx.slots, ctx.policy, if_match=src.etag,
                                    limiter=ctx.src_limit, chunk=ctx.block_size)
    return md5



async def delete_folder_object(ctx: TransferContext, src: ObjectInfo) -> str | None:
    """A move of a folder object ``d/`` (S3: the source's own key) whose folder the copy
    made or found at the destination: deleted while it is still the zero-byte object
    listed; return None when deleted (or already gone), else why it was kept.  Nothing
    to prove but the folder, which the copy (or the rerun's listing) just found."""
    cur = await retry(lambda: ctx.src.exists(src.key), ctx.policy, ctx.src_limit)
    if cur is None:
        return None
    if cur.size != 0 or cur.etag != src.etag:
        return "the source changed after it was copied"
    await retry(lambda: ctx.src.delete(src.key), ctx.policy, ctx.src_limit)
    return None
