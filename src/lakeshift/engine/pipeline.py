"""The one pipeline: list → compare → transfer pool → results (DESIGN.md §1).

The listing is consumed page by page and handed to the transfer workers through a bounded
queue; memory is bounded by the queue, the number of workers and the buffer slots, never by
the number of objects.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from lakeshift.engine.checksums import without_unvouched_md5
from lakeshift.engine.events import (
    SKIP_EXISTS,
    SKIP_FOLDER_MARKER,
    SKIP_IDENTICAL,
    BytesMoved,
    EventBus,
    Listed,
    ListingDone,
    ObjectDone,
    ObjectStarted,
    Renamed,
    ServerCopyOff,
    SourceDeleted,
    Subscriber,
    Throttled,
    WindowCount,
)
from lakeshift.engine.limiter import EndpointLimiter, Pacing, validate_pacing
from lakeshift.engine.listing import DEFAULT_POLICY, list_pages
from lakeshift.engine.preserve import (
    ACCESS,
    AccessKeeper,
    IdentityMap,
    UnmappableError,
    check_preserve,
    preserve_set,
    unmapped_principal,
)
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import (
    ServerRoute,
    TransferContext,
    copy_marker,
    copy_object,
    delete_source_if_verified,
)
from lakeshift.engine.watermark import Watermark
from lakeshift.errors import (
    AuthError,
    ChangedError,
    ForbiddenError,
    IntegrityError,
    LakeshiftError,
    ObjectError,
    TransientError,
    UsageError,
)
from lakeshift.model import CopyResult, Failure, ObjectInfo, Rename, TransferStats
from lakeshift.plan.compare import Overwrite, merge, needs_copy, outer_merge
from lakeshift.plan.filters import NameFilter
from lakeshift.plan.names import CollisionTracker, collision_name, encode, problem
from lakeshift.plan.source import (
    SourceSpec,
    destination_root,
    refuse_destination_inside_source,
    resolve_source,
)
from lakeshift.stores.base import Store, StoreConfig
from lakeshift.stores.registry import open_store

T = TypeVar("T")
MiB = 1024 * 1024
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


class StatsCounter:
    """Keeps TransferStats and the failure list from the events."""

    #: Events that change no count (EventBus.ignored: ObjectStarted is then not built).
    ignores = frozenset({ObjectStarted, ListingDone, WindowCount})

    def __init__(self, stats: TransferStats, failures: list[Failure],
                 renames: list[Rename] | None = None,
                 deletions: list[SourceDeleted] | None = None, keep: int = 10_000,
                 proofs: Counter[str] | None = None, server_copy_off: list[str] | None = None):
        self.stats = stats
        self.server_copy_off = server_copy_off if server_copy_off is not None else []
        self.proofs = proofs if proofs is not None else Counter()
        self.failures = failures
        self.renames = renames if renames is not None else []
        self.deletions = deletions if deletions is not None else []
        self.keep = keep

    def __call__(self, event: object) -> None:
        # The events of every object copied (ObjectDone "copied", BytesMoved) told by their
        # exact type, one identity test each, and counted here; any other (or a subclass)
        # through ``_other``'s isinstance chain.
        if type(event) is ObjectDone and event.outcome == "copied":
            s = self.stats
            s.copied += 1
            s.copied_bytes += event.size
            if event.proof is not None:
                self.proofs[event.proof] += 1
        elif type(event) is BytesMoved:
            self.stats.bytes_transferred += event.nbytes
        elif type(event) is not ObjectStarted:
            self._other(event)

    def _done(self, event: ObjectDone) -> None:
        s = self.stats
        if event.outcome == "copied":
            s.copied += 1
            s.copied_bytes += event.size
            if event.proof is not None:
                self.proofs[event.proof] += 1
        elif event.outcome == "skipped":
            s.skipped += 1
            s.skipped_bytes += event.size
            why = event.error_kind or event.reason or "other"
            s.skipped_by_reason[why] = s.skipped_by_reason.get(why, 0) + 1
            if event.error_kind is not None:
                s.skipped_errors += 1
                if len(self.failures) < self.keep:
                    self.failures.append(Failure(event.key, event.error_kind,
                                                 event.message or "", event.attempts,
                                                 skipped=True))
        else:
            s.failed += 1
            s.failed_bytes += event.size
            kind = event.error_kind or "error"
            s.failed_by_kind[kind] = s.failed_by_kind.get(kind, 0) + 1
            if kind == UnmappableError.kind:
                who = unmapped_principal(event.message or "") or "(unnamed)"
                s.unmapped_principals[who] = s.unmapped_principals.get(who, 0) + 1
            if len(self.failures) < self.keep:
                self.failures.append(Failure(event.key, event.error_kind or "error",
                                             event.message or "", event.attempts))

    def _other(self, event: object) -> None:
        s = self.stats
        if isinstance(event, Listed):
            s.listed += event.count
            s.listed_bytes += event.nbytes
        elif isinstance(event, ObjectDone):
            self._done(event)
        elif isinstance(event, BytesMoved):
            s.bytes_transferred += event.nbytes
        elif isinstance(event, Renamed):
            s.renamed += 1
            if len(self.renames) < self.keep:
                self.renames.append(Rename(event.key, event.destination_key, event.rule))
        elif isinstance(event, Throttled):
            s.throttled += 1
        elif isinstance(event, ServerCopyOff):
            self.server_copy_off.append(event.reason)
        elif isinstance(event, SourceDeleted):
            if event.kept is None:
                s.sources_deleted += 1
            else:
                s.sources_kept += 1
            if len(self.deletions) < self.keep:
                self.deletions.append(event)


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
    """Copy everything the source URL names into the destination (see README "copy")."""
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


async def source_items(src: Store, spec: SourceSpec, name_filter: NameFilter,
                       events: EventBus, policy: RetryPolicy = DEFAULT_POLICY,
                       limiter: EndpointLimiter | None = None
                       ) -> AsyncIterator[tuple[str, ObjectInfo]]:
    pages = list_pages(src, spec.listing_prefix(), spec.start_after, policy, limiter,
                       ahead=True, end=spec.range_end)
    # Every key of the prefix, no range, no filter (a copy's usual source): each key's
    # name is its tail after rel_base, taken unless empty, in one comprehension (no four
    # Python calls a key: past_end, takes, rel and the filter; same outcome).
    whole = not spec.single and spec.range_start is None and spec.range_end is None and \
        not name_filter.include and not name_filter.exclude
    cut = len(spec.rel_base)
    async for page in pages:
        if whole:
            taken = [(obj.key[cut:], obj) for obj in page if len(obj.key) > cut]
            if taken:
                events.emit(Listed(len(taken), sum([o.size for _, o in taken])))
            for item in taken:
                yield item
            continue
        taken = []
        ended = False
        for obj in page:
            if spec.past_end(obj.key):
                ended = True
                break
            if not spec.takes(obj.key):
                continue
            rel = spec.rel(obj.key)
            if not rel or not name_filter(rel):
                continue
            taken.append((rel, obj))
        if taken:
            events.emit(Listed(len(taken), sum(o.size for _, o in taken)))
        for item in taken:
            yield item
        if ended:
            break
    events.emit(ListingDone())


def dest_prefix(spec: SourceSpec, root: str) -> str:
    """What to list at the destination: only the names the source spec can produce."""
    return root + spec.rel(spec.listing_prefix())


def dest_range(spec: SourceSpec, root: str) -> tuple[str | None, str | None]:
    """The destination keys ``[low, high)`` a key-range partition's names can take (None:
    unbounded).  Names keep the source's order (a fixed prefix is swapped), so the range
    maps to a range: listing the destination under the common prefix alone would show the
    neighbouring partitions' objects as having no source here."""
    def mapped(key: str | None) -> str | None:
        return root + spec.rel(key) if key is not None and key.startswith(spec.rel_base) \
            else None
    return mapped(spec.range_start), mapped(spec.range_end)


async def _within(items: AsyncIterator[tuple[str, ObjectInfo]], low: str | None,
                  high: str | None) -> AsyncIterator[tuple[str, ObjectInfo]]:
    async for rel, obj in items:
        if high is not None and obj.key >= high:
            break
        if low is None or obj.key >= low:
            yield rel, obj


async def dest_items(dst: Store, root: str, prefix: str, start_after: str | None,
                     dry_run: bool, policy: RetryPolicy = DEFAULT_POLICY,
                     limiter: EndpointLimiter | None = None, end: str | None = None
                     ) -> AsyncIterator[tuple[str, ObjectInfo]]:
    # A directory is listed as "d" (a Gen2 directory, an hdi_isfolder blob); the source names
    # it "d/": pair them.  "d/" sorts after "d-x" and "d.csv", so it is held back until the
    # listing passes it (merge() needs ascending names).  Held: at most one per open
    # directory name that is a prefix of what follows, so bounded by the depth.
    held: list[tuple[str, ObjectInfo]] = []
    try:
        async for page in list_pages(dst, prefix, start_after, policy, limiter, ahead=True,
                                     end=end):
            for obj in page:
                rel = obj.key[len(root):]
                while held and held[0][0] < rel:
                    yield heapq.heappop(held)
                if obj.is_dir_marker and not rel.endswith("/"):
                    heapq.heappush(held, (rel + "/", obj))
                else:
                    yield rel, obj
        while held:
            yield heapq.heappop(held)
    except UsageError:
        if not dry_run:
            raise  # a missing container in a dry run simply holds nothing yet


async def drive(work: AsyncIterator[T], action: Callable[[T], Awaitable[None]],
                concurrency: int) -> None:
    """The engine's pool: the planner's ``work`` (listing, merge, decisions) runs as the
    producer and hands items through a bounded queue to ``concurrency`` workers, each of
    which runs the mode's per-object ``action`` (copy: transfer one object; verify: prove
    one pair).  The action records its own outcome; an exception from it or from the
    producer (an auth error, a listing that failed after its retries) ends the pool."""
    # The hand-off: a deque of items (at most ``high``) and the futures of idle workers,
    # not an asyncio.Queue: its put_nowait and get are ~10 Python calls an item (full,
    # _put, clear, _wakeup_next, empty, get_nowait, _get, qsize ...), here a popleft.
    # A full deque makes the producer wait until the workers have taken it down to half
    # (``low``: ``room``), then it fills it again in one go: woken once per 2 x concurrency
    # items, not once per item.  An item put while workers wait wakes one of them.
    if concurrency < 1:  # (no worker: the producer would wait for room for ever)
        raise ValueError(f"drive: concurrency {concurrency}, at least 1 is needed")
    loop = asyncio.get_running_loop()
    items: deque[T] = deque()
    idle: deque[asyncio.Future[None]] = deque()
    high, low = concurrency * 4, concurrency * 2
    room: asyncio.Future[None] | None = None
    ended = False

    def wake_one() -> None:
        while idle:
            waiting = idle.popleft()
            if not waiting.done():  # (not a worker cancelled while it waited)
                waiting.set_result(None)
                return

    async def produce() -> None:
        nonlocal room, ended
        async for item in work:
            if len(items) >= high:
                room = loop.create_future()
                await room
            items.append(item)
            if idle:
                wake_one()
        ended = True
        while idle:
            wake_one()

    async def worker() -> None:
        nonlocal room
        while True:
            if items:
                item = items.popleft()
                if room is not None and len(items) <= low:
                    if not room.done():
                        room.set_result(None)
                    room = None
                await action(item)
            elif ended:
                return
            else:
                waiting: asyncio.Future[None] = loop.create_future()
                idle.append(waiting)
                await waiting

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(produce())
            for _ in range(concurrency):
                tg.create_task(worker())
    except BaseExceptionGroup as eg:
        # One error (the usual case) is raised as itself, so callers see the error tree.
        if len(eg.exceptions) == 1 and isinstance(eg.exceptions[0], Exception):
            raise eg.exceptions[0] from None
        raise
    finally:
        # On every way out (an action's error, a cancel, the end) the planner's generator
        # is closed here, its own ``finally`` and open listings run now, not whenever the
        # garbage collector finds it (after an end it is exhausted: a no-op).
        # An error of its own cleanup is raised only when nothing else is: it would hide
        # the action's error (or the producer's) that ended the pool.
        close = getattr(work, "aclose", None)
        if close is not None:
            ending = sys.exc_info()[1]
            try:
                await close()
            except Exception:
                if ending is None:
                    raise


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

    async def planned() -> AsyncIterator[tuple[str, ObjectInfo, int, bool]]:
        """What to copy: the merge of both listings, minus what is decided here."""
        low, high = dest_range(spec, root)
        dest = None if opts.overwrite == "always" and on_dest is None else _within(
            dest_items(dst, root, dest_prefix(spec, root), dest_after, opts.dry_run, policy,
                       ctx.dst_limit, high), low, high)
        items = source_items(src, spec, name_filter, events, policy, ctx.src_limit)
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
            # theirs: copy_marker writes "dir/" as "dir").
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
                d = await _renamed_copy(ctx, root + name) if opts.overwrite != "always" else None
                events.emit(Renamed(s.key, root + name, why or ""))
            if s.is_dir_marker and d is None and dst.capabilities.directories and \
                    opts.overwrite != "always":
                # A listing that shows no empty directories (local disk) is asked once per
                # empty directory whether it is there.
                asked = functools.partial(dst.is_folder, root + name)
                if await retry(asked, policy, ctx.dst_limit):
                    d = s
            if not needs_copy(s, d, opts.overwrite):
                if keeper is not None and d is not None:
                    # --preserve: the copy is there, its access is set again (the source's
                    # may have changed, or an earlier run could not map a principal).
                    yield root + name, s, ticket, True
                    continue
                events.emit(ObjectDone(s.key, s.size, "skipped", reason=SKIP_EXISTS
                                       if opts.overwrite == "never" else SKIP_IDENTICAL))
                if opts.delete_source and not opts.dry_run and d is not None:
                    # Already there from an earlier run: move it too, when MD5 proves it.
                    await _move(ctx, s, root + name, None, events)
                finish(ticket, True)
                continue
            if opts.dry_run:
                events.emit(ObjectDone(s.key, s.size, "copied"))
                finish(ticket, True)
                continue
            yield root + name, s, ticket, False
        take_back()

    async def transfer(item: tuple[str, ObjectInfo, int, bool]) -> None:
        dest_key, s, ticket, access_only = item
        while events.holding and (held := events.held()) is not None:
            await held  # a subscriber holds new objects back (--proof-log, behind)
        if ObjectStarted not in events.ignored:  # (a subscriber listens: the job runner's)
            events.emit(ObjectStarted(s.key))
        if access_only and keeper is not None:
            ok = await _access_only(keeper, s, dest_key, events, opts)
        else:
            ok = await _transfer_one(ctx, s, dest_key, events, opts.retries, opts.skip_errors,
                                     opts.delete_source, keeper)
        if watermark is not None:  # (finish, inline)
            watermark.done(ticket, ok)

    await drive(planned(), transfer, opts.concurrency)


async def _transfer_one(ctx: TransferContext, s: ObjectInfo, dest_key: str, events: EventBus,
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
            if s.is_dir_marker:
                await copy_marker(ctx, dest_key)
                md5, proof = None, None
            else:
                copied = await copy_object(ctx, s, dest_key)
                md5, proof = copied.md5, copied.proof
            if access is not None:
                await access.apply(s, dest_key, wanted)
            events.emit(ObjectDone(s.key, s.size, "copied", attempts=attempt, proof=proof,
                                   dest_key=dest_key))
            if delete_source and not s.is_dir_marker:
                await _move(ctx, s, dest_key, md5, events)
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
        except IntegrityError as e:
            if attempt >= attempts:
                _failed(events, s, e, attempt)
                return False
            # The listing's MD5 may not be one (S3 ETags under SSE-KMS / SSE-C): if the
            # object's HEAD does not vouch for it, copy again hashing the bytes here.
            s = await without_unvouched_md5(ctx.src, s, ctx.policy, ctx.src_limit) or s
        except LakeshiftError as e:
            return _not_copied(events, s, e, attempt, skip_errors)


async def _access_only(keeper: AccessKeeper, s: ObjectInfo, dest_key: str, events: EventBus,
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
    if opts.delete_source and not s.is_dir_marker:
        await _move(keeper.ctx, s, dest_key, None, events)
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


async def _renamed_copy(ctx: TransferContext, dest_key: str) -> ObjectInfo | None:
    """What a renamed object's destination name holds (None: nothing, or cannot tell)."""
    try:
        return await retry(lambda: ctx.dst.exists(dest_key), ctx.policy, ctx.dst_limit)
    except (AuthError, UsageError):
        raise
    except LakeshiftError:
        return None


async def _move(ctx: TransferContext, s: ObjectInfo, dest_key: str, md5: bytes | None,
                events: EventBus) -> None:
    try:
        kept = await delete_source_if_verified(ctx, s, dest_key, md5)
    except LakeshiftError as e:
        kept = f"could not delete the source: {e}"
    events.emit(SourceDeleted(s.key, dest_key, md5.hex() if md5 else "", kept))


def _failed(events: EventBus, s: ObjectInfo, e: LakeshiftError, attempts: int) -> None:
    events.emit(ObjectDone(s.key, s.size, "failed", e.kind, str(e), attempts))


class DestinationNamer:
    """The destination name of each source name, in listing order (plan/names.py)."""

    def __init__(self, mode: str, hierarchical: bool) -> None:
        self.mode = mode
        self.collisions = CollisionTracker() if hierarchical else None

    def __call__(self, rel: str) -> tuple[str | None, str | None]:
        """(name, rule) — name None when the object cannot be written; rule says why a name
        changed or was refused."""
        bad = problem(rel)
        name: str | None = rel
        why = None
        if bad is not None:
            why = f"{bad.rule}: {bad.detail}"
            name = encode(rel) if self.mode == "encode" else None
            if name is None:
                return None, why
        if self.collisions is not None and name is not None:
            hit = self.collisions.check(name)
            if hit is not None:
                why = f"file-directory-collision: {hit!r} is a file here"
                if self.mode != "encode":
                    return None, why
                name = collision_name(name, hit)
        return name, why
