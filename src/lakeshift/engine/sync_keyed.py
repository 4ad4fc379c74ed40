"""Keyed copies of a sync pass (engine/sync.py): the keys of ``--files-from`` or of an
S3 Inventory report are copied as named, with no listing on either side; a window's
selection of listed objects (``_Tally``)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

from lakeshift.engine.events import ObjectDone, Renamed
from lakeshift.engine.jobrunner import ClaimedPartition
from lakeshift.engine.pipeline_action import _not_copied, transfer_one
from lakeshift.engine.pipeline_names import DestinationNamer
from lakeshift.engine.pipeline_pool import drive
from lakeshift.engine.retry import retry
from lakeshift.engine.transfer import TransferContext
from lakeshift.errors import AuthError, LakeshiftError, UsageError
from lakeshift.model import ObjectInfo
from lakeshift.plan.compare import needs_copy
from lakeshift.plan.filters import NameFilter
from lakeshift.plan.inventory import Inventory
from lakeshift.plan.source import SourceSpec
from lakeshift.plan.windows import Window, utc


class _Tally:
    """A window's selection of listed objects, counted: those taken, and those modified at
    or after its end (held back for the next pass)."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.selected = 0
        self.held_back = 0

    def select(self, obj: ObjectInfo) -> bool:
        if _in(self.window, obj):
            self.selected += 1
            return True
        if obj.last_modified is not None and utc(obj.last_modified) >= self.window.end:
            self.held_back += 1
        return False

    def every(self, obj: ObjectInfo) -> bool:
        """A path template's folders: every object in them is taken."""
        self.selected += 1
        return True


def _in(window: Window, obj: ObjectInfo) -> bool:
    # An object whose store gives no modification time cannot be placed: it is taken (and
    # skipped by compare when identical).
    return obj.last_modified is None or window.contains(obj.last_modified)


def _inside(spec: SourceSpec, key: str) -> bool:
    return key.startswith(spec.listing_prefix()) and spec.takes(key) and not spec.past_end(key)


async def _each(items: list[tuple[str, ObjectInfo | None]]
                ) -> AsyncIterator[tuple[str, ObjectInfo | None]]:
    for item in items:
        yield item


async def _inventory_items(inventory: Inventory, spec: SourceSpec, tally: _Tally
                           ) -> AsyncIterator[tuple[str, ObjectInfo | None]]:
    """The report's objects in the partition and the window, in key order, read from its
    spill file a page at a time (those newer than the window are counted as held back)."""
    prefix = spec.listing_prefix()
    pages = inventory.pages_from(max(prefix, spec.range_start or ""))
    while page := await asyncio.to_thread(next, pages, None):
        for o in page:
            if not o.key.startswith(prefix) or spec.past_end(o.key):
                return
            if _inside(spec, o.key) and tally.select(o):
                yield o.key, o


async def _keyed(part: ClaimedPartition, root: str,
                 items: AsyncIterator[tuple[str, ObjectInfo | None]]) -> None:
    """Copy exactly these keys: no listing on either side.  A key the source does not
    have (files-from) is that key's ``missing`` failure; the destination is looked up by
    key (one HEAD) to skip identical objects."""
    opts, events = part.opts, part.events
    ctx = TransferContext(part.src, part.dst, opts.block_size, part.slots, part.policy,
                          events, part.pacing, opts.single_put_max)
    name_filter = NameFilter(opts.include, opts.exclude)
    namer = DestinationNamer(opts.invalid_names, part.dst.capabilities.hierarchical)

    skip_invalid = opts.invalid_names == "skip" or "invalid-name" in opts.skip_errors

    async def planned() -> AsyncIterator[tuple[str, str | None, ObjectInfo | None, int,
                                               str | None]]:
        async for key, info in items:  # in key order (collisions need it)
            rel = part.spec.rel(key)
            if not rel or not name_filter(rel):
                continue
            name, why = namer(rel)
            await part.watermark.wait_for_room()
            ticket = part.watermark.add(key)
            if name is None:
                # Refused by name, but only once the source is asked (in ``one``).
                yield key, None, info, ticket, why
                continue
            if name != rel:
                events.emit(Renamed(key, root + name, why or ""))
            yield key, root + name, info, ticket, None

    async def one(item: tuple[str, str | None, ObjectInfo | None, int, str | None]) -> None:
        key, dest_key, info, ticket, refused = item
        while events.holding and (held := events.held()) is not None:
            await held  # a subscriber holds new objects back (--proof-log, behind)
        if dest_key is None:
            ok = await _refused_key(ctx, key, info, refused or "", skip_invalid,
                                    opts.skip_errors)
        else:
            ok = await _copy_key(ctx, key, dest_key, info, opts.overwrite, opts.retries,
                                 opts.skip_errors, opts.delete_source)
        part.watermark.done(ticket, ok)

    await drive(planned(), one, opts.concurrency)


async def _at_source(ctx: TransferContext, key: str, info: ObjectInfo | None,
                     skip_errors: frozenset[str]) -> ObjectInfo | bool:
    """What the source has under ``key`` (``info`` when the report listed it), or, when it
    has nothing to copy there, that outcome recorded: True skipped, False failed.  A key
    it does not have is ``missing``; its look-up's error is skipped as a listing pass
    skips it: by --skip-errors, or always (a local source's HEAD of a name that is, or
    goes through, a link to the destination folder or into it: DestinationFolderError,
    as the walk's entry reads)."""
    events = ctx.events
    try:
        s = info or await retry(functools.partial(ctx.src.exists, key), ctx.policy,
                                ctx.src_limit) or await _listed_entry(ctx, key)
    except (AuthError, UsageError):
        raise
    except LakeshiftError as e:
        return _not_copied(events, info or ObjectInfo(key, 0), e, 1, skip_errors)
    if s is None:
        kind = "missing"
        message = "not at the source (named by --files-from)"
        skip = kind in skip_errors
        events.emit(ObjectDone(key, 0, "skipped" if skip else "failed", kind, message))
        return skip
    return s


async def _refused_key(ctx: TransferContext, key: str, info: ObjectInfo | None, why: str,
                       skip_invalid: bool, skip_errors: frozenset[str]) -> bool:
    """A key whose destination name is refused (plan/names.py: a name the destination
    cannot hold, or a file/folder collision with a key named before it).  The source is
    asked first, as a listing pass only refuses names its listing met: a key it does not
    have is ``missing``, and one below a link it never follows is skipped as the link is
    (``link`` and ``link/x`` named together: ``link`` is not written, so ``link/x``
    collides with nothing there; both are ``destination-folder``).  Only a key the
    source has is ``invalid-name``."""
    s = await _at_source(ctx, key, info, skip_errors)
    if isinstance(s, bool):
        return s
    ctx.events.emit(ObjectDone(key, s.size, "skipped" if skip_invalid else "failed",
                               "invalid-name", why))
    return skip_invalid


async def _copy_key(ctx: TransferContext, key: str, dest_key: str, info: ObjectInfo | None,
                    overwrite: Any, attempts: int, skip_errors: frozenset[str],
                    delete_source: bool) -> bool:
    events = ctx.events
    s = await _at_source(ctx, key, info, skip_errors)
    if isinstance(s, bool):
        return s
    try:
        d = None if overwrite == "always" else await retry(
            functools.partial(ctx.dst.exists, dest_key), ctx.policy, ctx.dst_limit)
    except (AuthError, UsageError):
        raise
    except LakeshiftError as e:
        return _not_copied(events, s, e, 1, skip_errors)
    if not needs_copy(s, d, overwrite):
        events.emit(ObjectDone(s.key, s.size, "skipped"))
        return True
    return await transfer_one(ctx, s, dest_key, events, attempts, skip_errors,
                              delete_source)


async def _listed_entry(ctx: TransferContext, key: str) -> ObjectInfo | None:
    """A key the source's HEAD finds no file at, as its listing names it.  A store with
    folders (local disk) lists a symlink it does not follow — a loop, a dangling link — or
    a folder it may not read as one entry of that name, whose read says why (the walk's
    ``ObjectInfo(key, 0)``): named by --files-from (a ``failures`` CSV fed back), it is
    that entry, skipped again or failed with its own reason as a listing pass would, never
    ``missing``.  (A name that is, or goes through, a link to the destination folder never
    gets here: the local source's HEAD raises DestinationFolderError for it.)  One listing
    of the name (its first page; the name itself sorts first), asked only of such stores
    and only for a key the HEAD did not find."""
    if not key or not ctx.src.capabilities.hierarchical:
        return None
    page = await retry(functools.partial(ctx.src.list_page, key), ctx.policy, ctx.src_limit)
    first = page.objects[0] if page.objects else None
    return first if first is not None and first.key == key and not first.is_dir_marker \
        else None
