"""`lakeshift verify`: prove that the destination holds exactly what the source holds.

Objects a copy renamed (--invalid-names encode) get a "renamed" row in the report (source
key, destination key, rule) and are then checked like any other.

Both listings are merged (every name on either side once).  Per object: present on both
sides, same size, same checksum — source MD5 against the destination's Content-MD5; an S3
multipart object as the copy proved it: its own CRC32/SHA checked on the destination's
bytes, else its multipart ETag (md5-of-md5s-N) rebuilt from them where it can be (not under
SSE-KMS/SSE-C, parts of part 1's size), else the MD5 of its bytes; a local file hashed;
``--deep`` hashes both sides' bytes; a source's folder (an empty directory's marker), where
the copy made folders (both sides with real directories, --empty-dirs), is proven by a
folder there (``folder``, the copy's word) or is missing.  Each difference is written to a
CSV report as it is found (memory stays flat); the JSON summary counts missing, extra, size
mismatch, checksum mismatch and unverifiable (with reasons).

Here: :class:`VerifyOptions`, :func:`verify_async` (every pair) and :func:`verify_pair`
(one pair: the planner, merging both listings).  Its parts: the per-object action
(engine/verify_proof.py) and the result, the reports and the summary
(engine/verify_report.py); their names are imported from here as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lakeshift.engine.events import PROOF_FOLDER, EventBus, Throttled
from lakeshift.engine.limiter import Pacing, validate_pacing
from lakeshift.engine.pipeline import check_reachable
from lakeshift.engine.pipeline_listings import dest_items, dest_prefix, source_items
from lakeshift.engine.pipeline_names import DestinationNamer
from lakeshift.engine.pipeline_pool import drive
from lakeshift.engine.retry import RetryPolicy
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import endpoint_name
from lakeshift.engine.verify_proof import (
    FOLDER_MISSING,
    FORBIDDEN_AT_SOURCE,
    PairCheck,
    Work,
    multipart_part_sizes,
    source_time,
)
from lakeshift.engine.verify_report import (
    KINDS,
    Report,
    VerifiedReport,
    VerifyResult,
    write_summary,
)
from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo
from lakeshift.plan.filters import NameFilter
from lakeshift.plan.source import SourceSpec, destination_root, resolve_source
from lakeshift.stores.base import NamespaceAsker, Store, StoreConfig
from lakeshift.stores.registry import open_store

__all__ = [
    "FORBIDDEN_AT_SOURCE",
    "KINDS",
    "Pair",
    "PairCheck",
    "Report",
    "VerifiedReport",
    "VerifyOptions",
    "VerifyResult",
    "Work",
    "multipart_part_sizes",
    "source_time",
    "verify_async",
    "verify_pair",
    "write_summary",
]


@dataclass
class VerifyOptions:
    deep: bool = False
    concurrency: int = 16
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: As the copy was run: with "encode", renamed objects are looked up under their
    #: destination names; with "skip", objects with invalid names are reported as
    #: unverifiable (not copied on purpose).
    invalid_names: str = "fail"
    #: Pacing, as for copy (CopyOptions): AIMD per endpoint, request-rate and bandwidth caps.
    adaptive: bool = True
    max_requests_per_second: float | None = None
    max_bandwidth: float | None = None  # bytes per second
    #: Also report a destination whose kept original time (``lakeshift_src_mtime``, or a
    #: local file's mtime) differs from the source's by a second or more.
    check_times: bool = False
    #: As the copy was run (--empty-dirs): the source's folders (its empty directories'
    #: markers) are checked as folders at the destination; None: copy's default, where
    #: both sides have real directories.  Flat sources and destinations have none.
    empty_dirs: bool | None = None

    def validate(self) -> None:
        """A bad value raises a UsageError naming its flag."""
        if self.invalid_names not in ("fail", "skip", "encode"):
            raise UsageError("--invalid-names must be fail, skip or encode")
        if not 1 <= self.concurrency <= 256:
            raise UsageError("--concurrency must be between 1 and 256")
        validate_pacing(self.max_requests_per_second, self.max_bandwidth)
        NameFilter(self.include, self.exclude)  # a glob that cannot work: UsageError

    def pacing(self, events: EventBus | None = None) -> Pacing:
        """The run's pacing, as copy's (CopyOptions.pacing): one limiter per endpoint and
        the bandwidth cap every byte hashed is counted against."""
        bus = events or EventBus()
        return Pacing(self.concurrency, self.adaptive, self.max_requests_per_second,
                      self.max_bandwidth,
                      on_throttle=lambda name, limit: bus.emit(Throttled(name, limit)))


async def verify_pair(src: Store, dst: Store, spec: SourceSpec, root: str, opts: VerifyOptions,
                      report: Report, result: VerifyResult, slots: SlotPool,
                      policy: RetryPolicy, pacing: Pacing | None = None,
                      events: EventBus | None = None,
                      verified_report: VerifiedReport | None = None) -> None:
    """Verify what ``spec`` names on ``src`` against ``dst`` under ``root``; each object
    proven equal also gets a row in ``verified_report`` when one is given.

    Runs on the engine (pipeline_pool.drive): the planner below merges both listings (paged
    under retry and the endpoints' limiters) and settles what listings alone can settle;
    the per-object action (``PairCheck.prove``, engine/verify_proof.py) does the rest.
    Nothing is buffered beside the pool's bounded queue: a renamed object goes to the
    workers as it is listed (looked up under its new name), and a destination-only name
    that may be a renaming is settled by a look-up of the source name it decodes to."""
    pacing = pacing or opts.pacing()
    events = events or EventBus()
    src_limit = pacing.endpoint(endpoint_name(src))
    dst_limit = pacing.endpoint(endpoint_name(dst))
    await check_reachable(src.check_source, "source", policy)
    await check_reachable(dst.check_source, "destination", policy)
    if src.capabilities.hierarchical and opts.empty_dirs is not False and \
            isinstance(dst, NamespaceAsker):
        # Whether the destination has real directories (an ADLS Gen2 account) is asked of
        # the account, as the copy's prepare_destination asks it; nothing is written.
        asker = dst

        async def ask_namespace() -> None:
            await asker.ask_namespace()

        await check_reachable(ask_namespace, "destination", policy)
    # The source's folders, as the copy made them (pipeline.run_pipeline's empty_dirs): by
    # default between two stores with real directories; --empty-dirs made marker blobs on
    # a flat destination too.
    folders = opts.empty_dirs if opts.empty_dirs is not None else (
        src.capabilities.hierarchical and dst.capabilities.hierarchical)
    names = NameFilter(opts.include, opts.exclude)
    namer = DestinationNamer(opts.invalid_names, dst.capabilities.hierarchical)
    check = PairCheck(src, dst, spec, opts, report, result, slots, policy, pacing, events,
                      verified_report, src_limit, dst_limit, names,
                      DestinationNamer(opts.invalid_names, False))  # no collision state
    differ, settled_by_listing = check.differ, check.settled_by_listing

    def dest_kept(item: tuple[str, ObjectInfo]) -> bool:
        rel, d = item
        return (folders or not d.is_dir_marker) and names(rel) and (
            not spec.range_start or root + spec.rel(spec.range_start) <= d.key) and (
            not spec.range_end or d.key < root + spec.rel(spec.range_end))

    async def dest() -> Any:
        async for item in dest_items(dst, root, dest_prefix(spec, root), None, False, policy,
                                     dst_limit, folders=folders and (
                                         bool(root) or spec.listing_prefix() != spec.rel_base)):
            if dest_kept(item):
                yield item

    async def named_source() -> AsyncIterator[tuple[str, ObjectInfo, str | None]]:
        """Source names as the copy wrote them, in listing order: (name, object, None), or
        for an object the copy renamed (name, object, its destination key)."""
        async for rel, s in source_items(src, spec, names, events, policy, src_limit,
                                         folders=folders, root_folder=folders and bool(root)):
            if s.is_dir_marker:
                if folders:
                    yield rel, s, None  # a folder keeps its name (copy_marker)
                continue
            new, why = namer(rel)
            if new is None and opts.invalid_names == "skip":
                result.checked += 1
                await differ(rel, "unverifiable", s, None, detail=f"not copied on purpose: "
                             f"{(why or '').split(':')[0]}")
            elif new is not None and new != rel:
                result.checked += 1
                result.counts["renamed"] += 1
                # Listed in the report so the pairing can be audited (not a difference).
                await report.row(rel, "renamed", s, None, None, None,
                                 f"{root + new} ({(why or '').split(':')[0]})")
                yield rel, s, root + new
            else:
                yield rel, s, None

    #: Source entries its walk listed whole and did not enter (a folder it may not list,
    #: a link it does not follow: no bytes, no time, no ETag), as "name/": what the
    #: destination holds below one was not compared with the source, so it is
    #: unverifiable, not extra (the source may well hold it).
    unentered: list[str] = []

    async def dest_only(name: str, d: ObjectInfo) -> Work | None:
        if d.is_dir_marker:
            # A destination directory with no source folder: one that holds files (made
            # with them), not a difference.
            return None
        if "%" in d.key and opts.invalid_names == "encode":
            return name, None, d  # maybe a renamed copy: the worker looks up its source
        result.checked += 1
        below = next((u for u in unentered if name.startswith(u)), None)
        if below is not None:
            await differ(name, "unverifiable", None, d, detail=f"below {below[:-1]}, which "
                         "the source's walk did not enter (its own row says why): not "
                         "compared")
            return None
        await differ(name, "extra", None, d, detail="only at the destination")
        return None

    async def planned() -> AsyncIterator[Work]:
        """Both listings merged (every name on either side once); yields the pairs the
        listings cannot settle, renamed objects and possible renamings."""
        dests = dest()
        d: tuple[str, ObjectInfo] | None = await anext(dests, None)
        async for name, s, renamed_to in named_source():
            if renamed_to is not None:
                yield name, s, renamed_to
                continue
            while d is not None and d[0] < name:
                if (work := await dest_only(*d)) is not None:
                    yield work
                d = await anext(dests, None)
            pair = d[1] if d is not None and d[0] == name else None
            if pair is not None:
                d = await anext(dests, None)
            result.checked += 1
            if s.is_dir_marker:
                if pair is not None and pair.is_dir_marker:
                    # Named as the copy names the folder it made (copy_marker, the proof
                    # log): "d", also where the listing says "d/" (a local disk's empty
                    # directory, an Azure folder); "d/" on S3, where that is its key.
                    there = pair if not pair.key.endswith("/") or \
                        dst.capabilities.slash_folders else \
                        ObjectInfo(pair.key[:-1], 0, is_dir_marker=True)
                    await check.proven(name, s, there, PROOF_FOLDER, "", "")
                elif pair is None and dst.capabilities.directories and \
                        not dst.capabilities.lists_folders:
                    # A directory the listing shows no marker for (local disk lists only
                    # empty ones: this one holds files) is asked, as the copy asks it,
                    # whether the folder is there.
                    yield name, s, root + name.rstrip("/")
                else:
                    await check.differ(name, "missing", s, pair, detail=FOLDER_MISSING)
            elif opts.check_times and pair is not None:
                # The kept time may need a HEAD of the destination: a worker's job (prove),
                # as are the checks of the pair that follow it.
                yield name, s, pair
            elif pair is None and s.size == 0:
                if s.etag is None and s.last_modified is None:
                    unentered.append(name + "/")  # (the walk's whole entry: see above)
                yield name, s, None  # missing, or a symlink loop the copy skipped: read it
            elif pair is None:
                # Missing, or a file the source will not let anyone read (which the copy
                # failed or skipped as forbidden): its first byte is read to tell them apart.
                yield name, s, None
            elif not await settled_by_listing(name, s, pair, "not at the destination"):
                assert pair is not None
                yield name, s, pair
        while d is not None:
            if (work := await dest_only(*d)) is not None:
                yield work
            d = await anext(dests, None)

    await drive(planned(), check.prove, opts.concurrency)


Pair = tuple[StoreConfig, StoreConfig, SourceSpec | None, str | None]


async def verify_async(pairs: list[Pair], opts: VerifyOptions, report: Report,
                       pacing: Pacing | None = None, events: EventBus | None = None,
                       verified_report: VerifiedReport | None = None) -> VerifyResult:
    """Verify each (source, destination, spec, destination root) pair; a spec of None means
    what the source URL names (as `copy` reads it), a root of None the destination's path.
    ``pacing`` (default: ``opts.pacing()``) is shared by every pair, as a run's is.
    ``events`` hears the source listing (Listed, ListingDone), the bytes hashed
    (BytesMoved) and throttling (Throttled).  ``verified_report`` (--list-verified) gets a
    row per object proven equal; it is closed with ``report``."""
    result = VerifyResult()
    slots = SlotPool(opts.concurrency)
    policy = RetryPolicy()
    events = events or EventBus()
    pacing = pacing or opts.pacing(events)
    stores: dict[str, Store] = {}

    def store(cfg: StoreConfig) -> Store:
        key = repr(cfg)
        if key not in stores:
            stores[key] = open_store(cfg)
        return stores[key]

    try:
        for src_cfg, dst_cfg, spec, root in pairs:
            src, dst = store(src_cfg), store(dst_cfg)
            if spec is None:
                await check_reachable(src.check_source, "source", policy)
                spec = await resolve_source(src)
            await verify_pair(src, dst, spec, destination_root(dst) if root is None else root,
                              opts, report, result, slots, policy, pacing, events,
                              verified_report)
    finally:
        result.finished = time.monotonic()
        await asyncio.gather(*(s.close() for s in stores.values()), return_exceptions=True)
        try:
            await report.close()
        finally:
            if verified_report is not None:
                await verified_report.close()
    return result
