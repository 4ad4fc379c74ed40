"""The one pipeline: list → compare → transfer pool → results (DESIGN.md §1), and the entry
every mode runs it by: :class:`CopyOptions`, :func:`copy_async` (copy), :func:`run_pipeline`
(copy's source, or one partition of run or sync: its planner — the merge of both listings
and the decisions — feeding the pool with the per-object action), :func:`check_reachable`.

The listing is consumed page by page and handed to the transfer workers through a bounded
queue; memory is bounded by the queue, the number of workers and the buffer slots, never by
the number of objects.  Its parts: the listings (engine/pipeline_listings.py), the pool
(engine/pipeline_pool.py), the per-object action (engine/pipeline_action.py), destination
names (engine/pipeline_names.py) and the stat keeping (engine/pipeline_stats.py).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from lakeshift.engine.events import (
    SKIP_EXISTS,
    SKIP_FOLDER_MARKER,
    SKIP_IDENTICAL,
    EventBus,
    Listed,
    ObjectDone,
    ObjectStarted,
    Renamed,
    Subscriber,
    Throttled,
)
from lakeshift.engine.limiter import Pacing, validate_pacing
from lakeshift.engine.pipeline_action import (
    _not_copied,
    access_again,
    move_source,
    renamed_copy,
    skipped_unread,
    transfer_one,
    undescribed,
)
from lakeshift.engine.pipeline_listings import (
    dest_items,
    dest_prefix,
    dest_range,
    source_items,
    within,
)
from lakeshift.engine.pipeline_names import DestinationNamer
from lakeshift.engine.pipeline_pool import drive
from lakeshift.engine.pipeline_stats import StatsCounter
from lakeshift.engine.preserve import (
    ACCESS,
    AccessKeeper,
    IdentityMap,
    check_preserve,
    preserve_set,
)
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import ServerRoute, TransferContext
from lakeshift.engine.transfer_move import EmptiedFolders
from lakeshift.engine.watermark import Watermark
from lakeshift.errors import AuthError, ForbiddenError, TransientError, UsageError
from lakeshift.model import CopyResult, ObjectInfo, TransferStats
from lakeshift.plan.compare import (
    Overwrite,
    merge,
    needs_copy,
    outer_merge,
    record_may_prove,
)
from lakeshift.plan.filters import NameFilter
from lakeshift.plan.source import (
    SourceSpec,
    destination_root,
    refuse_destination_inside_source,
    resolve_source,
)
from lakeshift.stores.base import Store, StoreConfig
from lakeshift.stores.registry import open_store

MiB = 1024 * 1024
#: An object the planner hands a worker: its destination key, the source object, its
#: watermark ticket, whether only its access is set again (--preserve), and the listed
#: destination object whose record a HEAD must read first (None: nothing to read).
Planned = tuple[str, ObjectInfo, int, bool, ObjectInfo | None]
SKIPPABLE = frozenset({"missing", "forbidden", "invalid-name", "archived", "dangling-link"})
COPY_MODES = ("auto", "server", "stream")


@dataclass(frozen=True)
class CopyOptions:
    concurrency: int = 32
    block_size: int = 8 * MiB
    #: Objects above one block and up to this size whose source has an MD5 go in one
    #: streamed put the destination checks against that MD5 (where it can); 0 turns it off.
    single_put_max: int = 64 * MiB
    overwrite: Overwrite = "if-different"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    dry_run: bool = False
    folder_markers: str = "skip"  # skip | keep
    retries: int = 6
    #: Error kinds recorded and skipped instead of failing: missing, forbidden, invalid-name,
    #: archived.
    skip_errors: frozenset[str] = frozenset()
    #: What to do with names the destination cannot hold: fail, skip, encode.
    invalid_names: str = "fail"
    #: AIMD concurrency per endpoint (halve on throttling, creep back up).
    adaptive: bool = True
    max_requests_per_second: float | None = None
    max_bandwidth: float | None = None  # bytes per second
    #: Move instead of copy: delete each source object once its copy is verified.
    delete_source: bool = False
    #: Create the source's empty directories (folder markers) at the destination; None:
    #: when both sides are hierarchical (WebHDFS → ADLS Gen2 or local disk).  Real
    #: directories on a destination with ``capabilities.directories``, marker blobs elsewhere.
    empty_dirs: bool | None = None
    #: --preserve: acl, owner, group, permissions (engine/preserve.py).
    preserve: frozenset[str] = frozenset()
    #: --map-identities: (source principal, destination object ID or UPN) pairs.
    identity_map: tuple[tuple[str, str], ...] = ()
    #: auto | server | stream: whether the destination service reads sources itself
    #: (transfer.ServerRoute).
    copy_mode: str = "stream"

    def pacing(self, events: EventBus) -> Pacing:
        return Pacing(self.concurrency, self.adaptive, self.max_requests_per_second,
                      self.max_bandwidth,
                      on_throttle=lambda name, limit: events.emit(Throttled(name, limit)))

    def validate(self) -> None:
        if not 1 <= self.concurrency <= 1024:
            raise UsageError("--concurrency must be between 1 and 1024")
        if not MiB // 4 <= self.block_size <= 4000 * MiB:
            raise UsageError("--block-size must be between 256KiB and 4000MiB")
        if not 0 <= self.single_put_max <= 5000 * MiB:
            raise UsageError("--single-put-max must be between 0 (off) and 5000MiB")
        if 0 < self.single_put_max < self.block_size:
            from lakeshift.plan.jobconfig import size_text

            # Objects up to one block go in one request anyway: a lower limit is a no-op
            # that reads as if it did something.
            raise UsageError(
                f"--single-put-max {size_text(self.single_put_max)} is below --block-size "
                f"{size_text(self.block_size)}, so it would change nothing (objects up to one "
                f"block already go in one request): give --single-put-max 0 (every larger "
                f"object as blocks) or at least {size_text(self.block_size)}")
        if self.overwrite not in ("if-different", "always", "never"):
            raise UsageError("--overwrite must be if-different, always or never")
        if self.folder_markers not in ("skip", "keep"):
            raise UsageError("--folder-markers must be skip or keep")
        unknown = set(self.skip_errors) - SKIPPABLE
        if unknown:
            raise UsageError(f"--skip-errors {','.join(sorted(unknown))}: use any of "
                             f"{','.join(sorted(SKIPPABLE))}")
        preserve_set(self.preserve)
        if self.identity_map and not {"acl", "owner", "group"} & set(self.preserve):
            raise UsageError("--map-identities maps the principals --preserve "
                             "acl/owner/group keeps: add --preserve")
        if self.invalid_names not in ("fail", "skip", "encode"):
            raise UsageError("--invalid-names must be fail, skip or encode")
        validate_pacing(self.max_requests_per_second, self.max_bandwidth)
        if self.copy_mode not in COPY_MODES:
            raise UsageError(f"--copy-mode {self.copy_mode!r}: use {', '.join(COPY_MODES)}")
        NameFilter(self.include, self.exclude)  # a glob that cannot work: UsageError


async def check_reachable(fn: Callable[[], Awaitable[None]], label: str,
                          policy: RetryPolicy) -> None:
    """Run a start-up check; a store that stays unreachable is a UsageError, not a hang."""
    try:
        await retry(fn, RetryPolicy(attempts=min(policy.attempts, 3), base=0.2, cap=1.0))
    except TransientError as e:
        raise UsageError(f"cannot reach the {label}: {e} — check the URL/endpoint and the "
                         "network") from None
    except ForbiddenError as e:
        raise AuthError(f"{e}: the credentials lack permission for the {label} (to list it, "
                        "and for a destination to write)") from None


async def copy_async(source: StoreConfig, destination: StoreConfig,
                     options: CopyOptions | None = None,
                     subscribers: list[Subscriber] | None = None) -> CopyResult:
    """Copy everything the source URL names into the destination (see docs/copy.md)."""
    opts = options or CopyOptions()
    opts.validate()
    refuse_destination_inside_source(source, destination)
    stats = TransferStats(started=time.monotonic())
    result = CopyResult(stats, dry_run=opts.dry_run)
    events = EventBus([StatsCounter(stats, result.failures, result.renames, result.deletions,
                                    proofs=result.proofs,
                                    server_copy_off=result.server_copy_off),
                       *(subscribers or [])])
    src = open_store(source)
    dst = open_store(destination)
    policy = RetryPolicy(attempts=opts.retries)
    try:
        await check_reachable(src.check_source, "source", policy)
        spec = await resolve_source(src)
        # Refused before anything is written: a string prefix (``raw`` also lists ``raw2/``)
        # is known from a folder only now.
        refuse_destination_inside_source(source, destination, spec)
        if not opts.dry_run:
            await check_reachable(dst.prepare_destination, "destination", policy)
        await run_pipeline(src, dst, spec, destination_root(dst), opts, events,
                           SlotPool(opts.concurrency), policy, pacing=opts.pacing(events))
    finally:
        stats.finished = time.monotonic()
        await asyncio.gather(src.close(), dst.close(), return_exceptions=True)
    return result


async def run_pipeline(src: Store, dst: Store, spec: SourceSpec, root: str, opts: CopyOptions,
                       events: EventBus, slots: SlotPool, policy: RetryPolicy,
                       watermark: Watermark | None = None, pacing: Pacing | None = None,
                       select: Callable[[ObjectInfo], bool] | None = None,
                       on_dest: Callable[[str, ObjectInfo, bool], Awaitable[None] | None]
                       | None = None,
                       route: ServerRoute | None = None,
                       on_renamed: Callable[[str], None] | None = None,
                       on_unmatched: Callable[[str, ObjectInfo], None] | None = None,
                       copy_unmatched: bool = False) -> None:
    """List ``spec`` on ``src``, compare with ``dst`` under ``root``, copy what differs.

    ``slots`` may be shared by several pipelines (partitions) to bound their memory
    together; ``watermark``, when given, follows the listing's low watermark.  ``select``
    (sync's window) picks which listed source objects are considered at all; ``on_dest``
    (sync --delete) receives every destination object under the listed names, in name
    order, and whether a source object has its name (what it returns, when not None, is
    awaited before the merge goes on: a batch it writes off the loop).  ``route`` (shared by a job's
    partitions, so the service is tried once) decides server-side copies, by default one
    of its own for ``opts.copy_mode``; ``on_renamed`` (sync --delete) the destination key
    of every listed source object whose name changed, selected or not (its copy there has
    a source); ``on_unmatched`` (sync --delete) the destination name (relative to ``root``)
    and source object of every listed source object, selected or not, that has no
    destination object of its source name (a renamed object's new name is one).
    ``copy_unmatched`` (sync --delete): such an object is copied whatever ``select`` says:
    a file renamed at the source keeps its modification time, so its new name can lie
    outside the window while its old name is about to be deleted.
    """
    ctx = TransferContext(src, dst, opts.block_size, slots, policy, events,
                          pacing or opts.pacing(events), opts.single_put_max,
                          route or ServerRoute(opts.copy_mode))
    if opts.delete_source and not opts.dry_run and src.capabilities.directories:
        ctx.emptied = EmptiedFolders(spec.rel_base, root)  # a move leaves no emptied folder
    name_filter = NameFilter(opts.include, opts.exclude)
    dest_after = None
    if spec.start_after is not None and spec.start_after.startswith(spec.rel_base):
        dest_after = root + spec.rel(spec.start_after)

    def finish(ticket: int, ok: bool) -> None:
        if watermark is not None:
            watermark.done(ticket, ok)

    namer = DestinationNamer(opts.invalid_names, dst.capabilities.hierarchical)
    # By default empty directories go where directories are real: a hierarchical source to a
    # hierarchical destination (a flat one gets marker blobs only when asked).
    empty_dirs = opts.empty_dirs if opts.empty_dirs is not None else (
        src.capabilities.hierarchical and dst.capabilities.hierarchical)
    keep_markers = opts.folder_markers == "keep" or empty_dirs
    keeper = None
    if opts.preserve & ACCESS and not opts.dry_run:  # times: kept on every copy anyway
        check_preserve(opts.preserve, src, dst)
        keeper = AccessKeeper(ctx, opts.preserve & ACCESS, IdentityMap.of(opts.identity_map),
                              spec.rel_base, root, events)

    async def planned() -> AsyncIterator[Planned]:
        """What to copy: the merge of both listings, minus what is decided here."""
        low, high = dest_range(spec, root)
        # The folder the source names is made the destination root (when that is a folder,
        # not the bucket's or container's own root), as the folders below it are made; a
        # partition of a folder (d1/) takes that folder's own marker (both sides asked for
        # it where a listing leaves it out: Azure).
        root_folder = keep_markers and bool(root)
        own = keep_markers and (root_folder or spec.listing_prefix() != spec.rel_base)
        dest = None if opts.overwrite == "always" and on_dest is None else within(
            dest_items(dst, root, dest_prefix(spec, root), dest_after, opts.dry_run, policy,
                       ctx.dst_limit, high, folders=own), low, high)
        items = source_items(src, spec, name_filter, events, policy, ctx.src_limit,
                             folders=keep_markers, root_folder=root_folder)
        # Listed objects ``select`` leaves out (sync: outside the pass's window), not yet
        # taken back: a negative Listed takes them off the totals (progress, stats), which
        # then count only what the run considers, so a bar ends at its total.
        left_out = [0, 0]

        def take_back() -> None:
            if left_out[0]:
                events.emit(Listed(-left_out[0], -left_out[1]))
                left_out[0] = left_out[1] = 0

        pairs: AsyncIterator[tuple[str, ObjectInfo | None, ObjectInfo | None]]
        if on_dest is not None and dest is not None:
            pairs = outer_merge(items, dest)
        else:
            pairs = merge(items, dest)
        async for rel, s_or_none, d in pairs:
            # Names --include/--exclude leave out are not this job's to judge.
            if on_dest is not None and d is not None and name_filter(rel) and (
                    pending := on_dest(rel, d, s_or_none is not None)) is not None:
                await pending
            if s_or_none is None:
                continue
            s = s_or_none
            # Every name goes through the namer, in listing order and whether ``select``
            # takes it or not (collisions need every name before it; folder markers keep
            # theirs: copy_marker writes "dir/" as "dir", or "dir/" on S3).
            name, why = (rel, None) if s.is_dir_marker else namer(rel)
            if on_renamed is not None and name is not None and name != rel:
                on_renamed(root + name)
            if on_unmatched is not None and d is None and dest is not None and name is not None:
                on_unmatched(name, s)
            if select is not None and not select(s) and not (
                    copy_unmatched and d is None and dest is not None and name == rel):
                left_out[0] += 1
                left_out[1] += s.size
                if left_out[0] >= 1000:
                    take_back()
                continue
            if left_out[0]:
                take_back()
            ticket = -1
            if watermark is not None:
                await watermark.wait_for_room()
                ticket = watermark.add(s.key)
            if s.is_dir_marker and not keep_markers:
                events.emit(ObjectDone(s.key, 0, "skipped", reason=SKIP_FOLDER_MARKER))
                finish(ticket, True)
                continue
            if name is None:
                # A name the destination cannot hold: fail, or skip (recorded) when asked.
                skip = opts.invalid_names == "skip" or "invalid-name" in opts.skip_errors
                events.emit(ObjectDone(s.key, s.size, "skipped" if skip else "failed",
                                       "invalid-name", why))
                finish(ticket, skip)
                continue
            if name != rel:
                # The destination listing is merged by source names, so a renamed object is
                # looked up under its new name (one HEAD; renames are rare).
                d = await renamed_copy(ctx, root + name) if opts.overwrite != "always" else None
                events.emit(Renamed(s.key, root + name, why or ""))
            if s.is_dir_marker and d is None and dst.capabilities.directories and \
                    not dst.capabilities.lists_folders and opts.overwrite != "always":
                # A directory the listing shows no marker for (local disk lists only empty
                # ones: this one holds files) is asked once per empty source directory
                # whether it is there (not where the listing shows every folder: Azure).
                asked = functools.partial(dst.is_folder, root + name)
                if await retry(asked, policy, ctx.dst_limit):
                    d = s
            recheck = None
            if d is not None and opts.overwrite == "if-different" and \
                    not dst.capabilities.metadata_in_listing and \
                    not dst.capabilities.written_here and record_may_prove(s, d):
                # S3: its listing has no metadata; one HEAD reads the copy's record.  In a
                # worker (``transfer``), so the HEADs of a rerun run as many at once as
                # copies do (here, one after another, 1,000 took ~3x the copy's time);
                # a dry run asks here, as it decides here.
                if opts.dry_run:
                    d = await renamed_copy(ctx, root + name) or d
                else:
                    recheck = d
            if recheck is None and not needs_copy(s, d, opts.overwrite):
                if keeper is not None and d is not None:
                    # --preserve: the copy is there, its access is set again (the source's
                    # may have changed, or an earlier run could not map a principal).
                    yield root + name, s, ticket, True, None
                    continue
                events.emit(ObjectDone(s.key, s.size, "skipped", reason=SKIP_EXISTS
                                       if opts.overwrite == "never" else SKIP_IDENTICAL))
                if opts.delete_source and not opts.dry_run and d is not None:
                    # Already there from an earlier run: move it too, when MD5 proves it.
                    await move_source(ctx, s, root + name, None, events)
                finish(ticket, True)
                continue
            if opts.dry_run and (s.is_dir_marker or not (
                    src.capabilities.reads_here or undescribed(s))):
                # (A folder marker — an empty directory — has no bytes to read: the copy
                # makes it.  Anything else is asked by a worker: ``transfer``.)
                events.emit(ObjectDone(s.key, s.size, "copied"))
                finish(ticket, True)
                continue
            yield root + name, s, ticket, False, recheck
        take_back()

    async def transfer(item: Planned) -> None:
        dest_key, s, ticket, access_only, recheck = item
        if opts.dry_run:
            # The source is asked what the copy's read would meet, in the workers (as many
            # at once as copies): an entry the listing could not describe (local: a link
            # to the destination folder, a folder it may not list, a link to nothing), and
            # on a disk this process reads (``reads_here``) every file, opened without a
            # byte read (one this user may not read: ``forbidden``).  What the copy would
            # skip or fail, the dry run skips or fails, not copies.
            unread = await skipped_unread(ctx, s)
            if unread is None:
                events.emit(ObjectDone(s.key, s.size, "copied"))
                finish(ticket, True)
            else:
                finish(ticket, _not_copied(events, s, unread, 1, opts.skip_errors))
            return
        if recheck is not None:
            # (record_may_prove, above: the destination's record read by one HEAD.)
            d = await renamed_copy(ctx, dest_key) or recheck
            if not needs_copy(s, d, opts.overwrite):
                if keeper is not None:
                    access_only = True
                else:
                    events.emit(ObjectDone(s.key, s.size, "skipped", reason=SKIP_IDENTICAL))
                    if opts.delete_source:
                        await move_source(ctx, s, dest_key, None, events)
                    finish(ticket, True)
                    return
        while events.holding and (held := events.held()) is not None:
            await held  # a subscriber holds new objects back (--proof-log, behind)
        if ObjectStarted not in events.ignored:  # (a subscriber listens: the job runner's)
            events.emit(ObjectStarted(s.key))
        if access_only and keeper is not None:
            ok = await access_again(keeper, s, dest_key, events, opts)
        else:
            ok = await transfer_one(ctx, s, dest_key, events, opts.retries, opts.skip_errors,
                                    opts.delete_source, keeper)
        if watermark is not None:  # (finish, inline)
            watermark.done(ticket, ok)

    await drive(planned(), transfer, opts.concurrency)
    if ctx.emptied is not None:
        await ctx.emptied.sweep(src, policy, ctx.src_limit, events)
