"""The copy's per-object action and the outcome it records: :func:`transfer_one` copies one
object (engine/transfer.py), again after an integrity or change error, and emits its
ObjectDone (copied, skipped under --skip-errors, failed); an object already there gets its
access again (:func:`access_again`, --preserve) or its source deleted (:func:`move_source`,
--delete-source); what a dry run would skip unread (:func:`skipped_unread`).  Run by the
pipeline's workers and by sync's keyed copies and deletions."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING

from lakeshift.engine.checksums import without_unvouched_md5
from lakeshift.engine.events import (
    PROOF_FOLDER,
    SKIP_EXISTS,
    SKIP_IDENTICAL,
    EventBus,
    ObjectDone,
    SourceDeleted,
)
from lakeshift.engine.preserve import AccessKeeper
from lakeshift.engine.retry import retry
from lakeshift.engine.transfer import (
    TransferContext,
    copy_marker,
    copy_object,
    delete_source_if_verified,
)
from lakeshift.engine.transfer_base import OpaqueETagError
from lakeshift.engine.transfer_move import delete_folder_object
from lakeshift.errors import (
    AuthError,
    ChangedError,
    IntegrityError,
    LakeshiftError,
    ObjectError,
    UsageError,
)
from lakeshift.model import ObjectInfo

if TYPE_CHECKING:
    from lakeshift.engine.pipeline import CopyOptions


async def transfer_one(ctx: TransferContext, s: ObjectInfo, dest_key: str, events: EventBus,
                       attempts: int, skip_errors: frozenset[str] = frozenset(),
                       delete_source: bool = False,
                       access: AccessKeeper | None = None) -> bool:
    """Copy one object, re-copying it after an integrity or change error; an object error
    is recorded and the run goes on (False); auth and usage errors stop the run.  With
    ``access`` (--preserve) the copy then gets the source's owner, group and ACLs (read and
    mapped before the copy is written): a failure there is the object's."""
    attempt = 0
    while True:
        attempt += 1
        try:
            # --preserve: the access is read and mapped first; one that cannot be kept
            # fails the object before any of it is written.
            wanted = None if access is None else await access.access_of(s.key, s.is_dir_marker)
            written = dest_key
            if s.is_dir_marker:
                # (Named as it was written: "d/" on S3, "d" elsewhere; the proof log's key.)
                written = await copy_marker(ctx, dest_key)
                md5, proof = None, PROOF_FOLDER
            else:
                copied = await copy_object(ctx, s, dest_key)
                md5, proof = copied.md5, copied.proof
            if access is not None:
                await access.apply(s, dest_key, wanted)
            events.emit(ObjectDone(s.key, s.size, "copied", attempts=attempt, proof=proof,
                                   dest_key=written))
            if delete_source:
                await move_source(ctx, s, dest_key, md5, events)
            return True
        except (AuthError, UsageError):
            raise
        except ChangedError as e:
            if attempt >= attempts:
                _failed(events, s, e, attempt)
                return False
            # The source changed under the copy: copy what it holds now.  This look-up is
            # a request like any other (retried, paced); its own error is this object's
            # outcome, below, not the run's.
            try:
                fresh = await retry(functools.partial(ctx.src.exists, s.key), ctx.policy,
                                    ctx.src_limit)
            except (AuthError, UsageError):
                raise
            except LakeshiftError as lookup:
                return _not_copied(events, s, lookup, attempt, skip_errors)
            if fresh is None:
                _failed(events, s, e, attempt)
                return False
            s = fresh
        except OpaqueETagError:
            # Its read said the listing's MD5 is no MD5 (S3 under SSE-KMS or SSE-C),
            # before anything was written: copied now hashing the bytes here, and this
            # was no attempt (no HEAD needed: the read said so).
            s = replace(s, md5=None)
            attempt -= 1
        except IntegrityError as e:
            if attempt >= attempts:
                _failed(events, s, e, attempt)
                return False
            # The listing's MD5 may not be one (S3 ETags under SSE-KMS / SSE-C): if the
            # object's HEAD does not vouch for it, copy again hashing the bytes here.
            s = await without_unvouched_md5(ctx.src, s, ctx.policy, ctx.src_limit) or s
        except LakeshiftError as e:
            return _not_copied(events, s, e, attempt, skip_errors)


async def access_again(keeper: AccessKeeper, s: ObjectInfo, dest_key: str, events: EventBus,
                       opts: CopyOptions) -> bool:
    """An object already copied gets the source's access again (--preserve)."""
    try:
        await keeper.apply(s, dest_key)
    except (AuthError, UsageError):
        raise
    except LakeshiftError as e:
        return _not_copied(events, s, e, 1, opts.skip_errors)
    events.emit(ObjectDone(s.key, s.size, "skipped", reason=SKIP_EXISTS
                           if opts.overwrite == "never" else SKIP_IDENTICAL))
    if opts.delete_source:
        await move_source(keeper.ctx, s, dest_key, None, events)
    return True


def _not_copied(events: EventBus, s: ObjectInfo, e: LakeshiftError, attempts: int,
                skip_errors: frozenset[str]) -> bool:
    """Record an object's error: skipped when its kind is in --skip-errors (or its class is
    always skipped), else failed."""
    if e.kind in skip_errors or (isinstance(e, ObjectError) and e.skipped_always):
        events.emit(ObjectDone(s.key, s.size, "skipped", e.kind, str(e), attempts))
        return True
    _failed(events, s, e, attempts)
    return False


def undescribed(s: ObjectInfo) -> bool:
    """An entry the listing could not describe: no bytes, no time, no ETag, no folder
    marker (what a local walk lists for what it does not enter or follow: a link to the
    destination folder or into it, a symlink loop, a folder it may not list, a link to
    nothing).  Its read says why; a dry run and ``scan`` ask it."""
    return s.size == 0 and s.etag is None and s.last_modified is None and \
        not s.is_dir_marker


async def skipped_unread(ctx: TransferContext, s: ObjectInfo) -> ObjectError | None:
    """A dry run's question, for a listed entry the listing could not describe
    (``undescribed``), or for any object of a source on a disk this process reads
    (``Capabilities.reads_here``: opening a file costs no request): the error the copy
    would meet reading it, which it records as the copy would (always skipped, skipped by
    --skip-errors, else failed: ``_not_copied``), or None (it would be copied).  Its read
    says, as it says so to the copy: where ``reads_here``, one that opens the object and
    reads no byte (``read(key, 0, 0)``: a file this user may not read is ``forbidden``, a
    FIFO ``not-a-file``); elsewhere the entry's read (it has no bytes).  An error a retry
    could mend (transient) or any other outcome: None."""
    start, end = (0, 0) if ctx.src.capabilities.reads_here else (None, None)
    try:
        await retry(functools.partial(ctx.src.read, s.key, start, end), ctx.policy,
                    ctx.src_limit)
    except (AuthError, UsageError):
        raise
    except ObjectError as e:
        return None if e.retryable else e
    except LakeshiftError:
        return None
    return None


async def renamed_copy(ctx: TransferContext, dest_key: str) -> ObjectInfo | None:
    """What a renamed object's destination name holds (None: nothing, or cannot tell)."""
    try:
        return await retry(lambda: ctx.dst.exists(dest_key), ctx.policy, ctx.dst_limit)
    except (AuthError, UsageError):
        raise
    except LakeshiftError:
        return None


async def move_source(ctx: TransferContext, s: ObjectInfo, dest_key: str, md5: bytes | None,
                      events: EventBus) -> None:
    """--delete-source: delete the source once its copy is proven
    (engine/transfer_move.py); a source kept, or not deleted, says why.  A folder marker
    (an empty folder, whose folder is now at the destination) is no object to delete: its
    folder is removed with the folders the move emptied (``EmptiedFolders``), where the
    source has real ones; an S3 folder object ``d/`` is deleted (``delete_folder_object``)."""
    if s.is_dir_marker and ctx.emptied is not None:
        ctx.emptied.moved(s.key)
        return
    if s.is_dir_marker and not ctx.src.capabilities.slash_folders:
        return  # (an Azure folder blob: listed as "d/", named "d" in the container)
    try:
        kept = await (delete_folder_object(ctx, s) if s.is_dir_marker else
                      delete_source_if_verified(ctx, s, dest_key, md5))
    except LakeshiftError as e:
        kept = f"could not delete the source: {e}"
    events.emit(SourceDeleted(s.key, dest_key, md5.hex() if md5 else "", kept))


def _failed(events: EventBus, s: ObjectInfo, e: LakeshiftError, attempts: int) -> None:
    events.emit(ObjectDone(s.key, s.size, "failed", e.kind, str(e), attempts))
