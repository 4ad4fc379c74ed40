"""`lakeshift verify`: prove that the destination holds exactly what the source holds.

Objects a copy renamed (--invalid-names encode) get a "renamed" row in the report (source
key, destination key, rule) and are then checked like any other.

Both listings are merged (every name on either side once).  Per object: present on both
sides, same size, same checksum — source MD5 against the destination's Content-MD5; an S3
multipart object as the copy proved it: its own CRC32/SHA checked on the destination's
bytes, else its multipart ETag (md5-of-md5s-N) rebuilt from them where it can be (not under
SSE-KMS/SSE-C, parts of part 1's size), else the MD5 of its bytes; a local file hashed;
``--deep`` hashes both sides' bytes.  Each difference is written to a CSV report as it is
found (memory stays flat); the JSON summary counts missing, extra, size mismatch, checksum
mismatch and unverifiable (with reasons).
"""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO, cast
from urllib.parse import unquote

from lakeshift.csv_cells import csv_cell
from lakeshift.engine.checksums import (
    CHEAP_PROOFS,
    SourceProof,
    stream_checksums,
    without_unvouched_md5,
)
from lakeshift.engine.events import BytesMoved, EventBus, Throttled
from lakeshift.engine.limiter import Pacing, validate_pacing
from lakeshift.engine.pipeline import check_reachable
from lakeshift.engine.pipeline_listings import dest_items, dest_prefix, source_items
from lakeshift.engine.pipeline_names import DestinationNamer
from lakeshift.engine.pipeline_pool import drive
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import _etag_rebuilds, _parts_fit, endpoint_name
from lakeshift.errors import (
    AuthError,
    DanglingLinkError,
    ForbiddenError,
    IntegrityError,
    LakeshiftError,
    ObjectError,
    UsageError,
)
from lakeshift.model import ObjectInfo
from lakeshift.plan.filters import NameFilter
from lakeshift.plan.source import SourceSpec, destination_root, resolve_source
from lakeshift.stores.base import ChecksumSource, SourceChecksum, Store, StoreConfig
from lakeshift.stores.props import SRC_MTIME_KEY, format_time, parse_time
from lakeshift.stores.registry import open_store

MiB = 1024 * 1024
#: One item of verify's work: (name, source object, destination object or — renamed — its
#: destination key, or None: an empty source object not at the destination); a source of
#: None is a destination-only name that may be a renaming.
Work = tuple[str, ObjectInfo | None, ObjectInfo | str | None]
KINDS = ("missing", "extra", "size", "checksum", "time", "unverifiable")
_PART_SIZES = [5, 8, 10, 15, 16, 25, 32, 50, 64, 100, 128, 256, 512]
_MULTIPART = re.compile(r"^[0-9a-f]{32}-(\d+)$")
#: The reason given for a source path that may not be read (a 403 subtree), not "missing".
FORBIDDEN_AT_SOURCE = "forbidden at the source: permission denied, so not copied"


@dataclass
class VerifyResult:
    checked: int = 0
    verified: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    #: Verified pairs per proof: ``source-md5`` (the source's own MD5 equals the
    #: destination's), ``read-md5`` (the source had none: its bytes were read and hashed),
    #: ``multipart-etag`` (the source's multipart ETag rebuilt from the destination's bytes),
    #: ``source-crc32`` / ``source-sha256`` / ``source-sha1`` (the checksum an S3 multipart
    #: source keeps, checked on the destination's bytes).
    proofs: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float = 0.0

    @property
    def differences(self) -> int:
        return sum(self.counts[k] for k in ("missing", "extra", "size", "checksum", "time"))

    @property
    def exit_code(self) -> int:
        return 1 if self.differences else 0

    def summary(self) -> dict[str, Any]:
        return {"checked": self.checked, "verified": self.verified,
                **{k: self.counts[k] for k in KINDS}, "differences": self.differences,
                "renamed": self.counts["renamed"],
                "unverifiable_reasons": dict(self.reasons),
                "proofs": dict(sorted(self.proofs.items())), "bytes_read": self.bytes_read,
                "duration_s": round(self.finished - self.started, 3),
                "exit_code": self.exit_code}


class Report:
    """The CSV of differences, written as they are found: by a writer thread fed through a
    bounded queue, so a slow disk holds back the verify (the queue is full) without
    blocking the event loop.  ``close`` waits for every row to be written."""

    FIELDS: tuple[str, ...] = (
        "name", "kind", "source_key", "destination_key", "source_size", "destination_size",
        "source_checksum", "destination_checksum", "detail")
    #: The option naming the file, for the message of a failed write.
    OPTION = "--report"

    def __init__(self, fh: TextIO, depth: int = 1024) -> None:
        self.fh = fh
        self.w = csv.writer(fh)
        self._rows: queue.Queue[list[Any] | None] = queue.Queue(maxsize=depth)
        self._error: Exception | None = None
        self._closed = False
        self._rows.put(list(self.FIELDS))
        self._thread = threading.Thread(target=self._write, name="lakeshift-verify-report",
                                        daemon=True)
        self._thread.start()

    def _write(self) -> None:
        while (cells := self._rows.get()) is not None:
            if self._error is None:
                try:
                    # Keys and details as text a spreadsheet never evaluates (csv_cells).
                    self.w.writerow([csv_cell(c) for c in cells])
                except Exception as e:  # disk full, an unencodable name: said at close
                    self._error = e  # the queue keeps draining, so no row() waits forever

    async def row(self, name: str, kind: str, s: ObjectInfo | None, d: ObjectInfo | None,
                  s_sum: str | None, d_sum: str | None, detail: str) -> None:
        await self._put([name, kind, s.key if s else "", d.key if d else "",
                         s.size if s else "", d.size if d else "", s_sum or "", d_sum or "",
                         detail])

    async def _put(self, cells: list[Any]) -> None:
        try:
            self._rows.put_nowait(cells)
        except queue.Full:  # the writer is behind: wait for room off the loop
            await asyncio.to_thread(self._rows.put, cells)

    async def close(self) -> None:
        """Write what is queued and stop the writer; a write that failed is a UsageError."""
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._stop)
        if self._error is not None:
            why = getattr(self._error, "strerror", None) or self._error
            raise UsageError(f"cannot write the verify report: {why}: free space or choose "
                             f"another {self.OPTION}")

    def _stop(self) -> None:
        self._rows.put(None)
        self._thread.join()
        self.fh.flush()


class VerifiedReport(Report):
    """``--list-verified``: one row per object proven equal, written as it is proven (the
    same bounded writer as the differences' report): its name, both keys, its size, the
    proof (``VerifyResult.proofs``' labels) and the checksum compared on each side
    (``crc32:BASE64`` for a source's own checksum, the ETag for a multipart one, else the
    MD5 in hex)."""

    FIELDS = ("name", "source_key", "destination_key", "size", "proof", "source_checksum",
              "destination_checksum")
    OPTION = "--report (for --list-verified)"

    async def verified(self, name: str, s: ObjectInfo, d: ObjectInfo, proof: str,
                       s_sum: str, d_sum: str) -> None:
        await self._put([name, s.key, d.key, s.size, proof, s_sum, d_sum])


def multipart_part_sizes(size: int, parts: int) -> list[int]:
    """Part sizes that give ``parts`` parts for ``size`` bytes: the common client defaults
    first, then the size the count implies (rounded up to a MiB)."""
    out = [mb * MiB for mb in _PART_SIZES if -(-size // (mb * MiB)) == parts]
    implied = -(-size // parts)
    implied_mib = -(-implied // MiB) * MiB
    for ps in (implied_mib, implied):
        if ps not in out and ps > 0 and -(-size // ps) == parts:
            out.append(ps)
    return out[:3]


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
    the per-object action (``prove``) does the rest.  Nothing is buffered beside the
    pool's bounded queue: a renamed object goes to the workers as it is listed (looked up
    under its new name), and a destination-only name that may be a renaming is settled by
    a look-up of the source name it decodes to."""
    pacing = pacing or opts.pacing()
    events = events or EventBus()
    src_limit = pacing.endpoint(endpoint_name(src))
    dst_limit = pacing.endpoint(endpoint_name(dst))
    await check_reachable(src.check_source, "source", policy)
    await check_reachable(dst.check_source, "destination", policy)
    names = NameFilter(opts.include, opts.exclude)
    namer = DestinationNamer(opts.invalid_names, dst.capabilities.hierarchical)
    plain_namer = DestinationNamer(opts.invalid_names, False)  # no collision state

    def dest_kept(item: tuple[str, ObjectInfo]) -> bool:
        rel, d = item
        return not d.is_dir_marker and names(rel) and (
            not spec.range_start or root + spec.rel(spec.range_start) <= d.key) and (
            not spec.range_end or d.key < root + spec.rel(spec.range_end))

    async def dest() -> Any:
        async for item in dest_items(dst, root, dest_prefix(spec, root), None, False, policy,
                                     dst_limit):
            if dest_kept(item):
                yield item

    async def differ(name: str, kind: str, s: ObjectInfo | None, d: ObjectInfo | None,
               s_sum: str | None = None, d_sum: str | None = None, detail: str = "") -> None:
        result.counts[kind] += 1
        if kind == "unverifiable":
            result.reasons[detail] += 1
        await report.row(name, kind, s, d, s_sum, d_sum, detail)

    async def proven(name: str, s: ObjectInfo, d: ObjectInfo, proof: str, s_sum: str,
                     d_sum: str) -> None:
        result.verified += 1
        result.proofs[proof] += 1
        if verified_report is not None:
            await verified_report.verified(name, s, d, proof, s_sum, d_sum)

    async def named_source() -> AsyncIterator[tuple[str, ObjectInfo, str | None]]:
        """Source names as the copy wrote them, in listing order: (name, object, None), or
        for an object the copy renamed (name, object, its destination key)."""
        async for rel, s in source_items(src, spec, names, events, policy, src_limit):
            if s.is_dir_marker:
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

    async def settled_by_listing(name: str, s: ObjectInfo, d: ObjectInfo | None,
                                 missing: str) -> bool:
        """Decide from listings alone when possible (missing, size, both MD5s known)."""
        if d is None:
            await differ(name, "missing", s, None, detail=missing)
        elif s.size != d.size:
            await differ(name, "size", s, d, detail=f"{s.size} != {d.size} bytes")
        elif not opts.deep and s.md5 is not None and d.md5 is not None and s.md5 == d.md5:
            await proven(name, s, d, "source-md5", s.md5.hex(), d.md5.hex())
        else:  # not decided here; an MD5 mismatch is looked at closer (_deep_check)
            return False
        return True

    async def dest_only(name: str, d: ObjectInfo) -> Work | None:
        if "%" in d.key and opts.invalid_names == "encode":
            return name, None, d  # maybe a renamed copy: the worker looks up its source
        result.checked += 1
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
            if opts.check_times and pair is not None:
                # The kept time may need a HEAD of the destination: a worker's job (prove),
                # as are the checks of the pair that follow it.
                yield name, s, pair
            elif pair is None and s.size == 0:
                yield name, s, None  # missing, or a symlink loop the copy skipped: read it
            elif not await settled_by_listing(name, s, pair, "not at the destination"):
                assert pair is not None
                yield name, s, pair
        while d is not None:
            if (work := await dest_only(*d)) is not None:
                yield work
            d = await anext(dests, None)

    async def check_time(name: str, s: ObjectInfo, d: ObjectInfo) -> None:
        want = source_time(s)
        if want is None:
            return
        meta = d.metadata or {}
        if SRC_MTIME_KEY not in meta and not dst.capabilities.metadata_in_listing \
                and not dst.capabilities.hierarchical:
            # S3 destinations list no metadata: a HEAD shows it.
            found = await retry(functools.partial(dst.exists, d.key), policy, dst_limit)
            meta = (found.metadata or {}) if found is not None else {}
        kept = meta.get(SRC_MTIME_KEY)
        # A local destination keeps the time as the file's mtime.
        got = parse_time(kept) if kept else (
            d.last_modified if dst.capabilities.hierarchical and
            not dst.capabilities.metadata_in_listing else None)
        if got is None:
            await differ(name, "time", s, d, format_time(want), None,
                         f"no {SRC_MTIME_KEY} at the destination")
        elif abs((got - want).total_seconds()) >= 1:
            await differ(name, "time", s, d, format_time(want), format_time(got),
                         "original modification time differs")

    async def maybe_renamed(name: str, d: ObjectInfo) -> None:
        """A destination-only name with a percent sign: the renamed copy of the source name
        it decodes to (checked from that source object's side), or an extra."""
        # "%2F" stands for a "/" (a file-directory collision, a leading empty segment) or
        # for "//" (an empty segment inside the name): both readings are looked up.
        for spelled in dict.fromkeys((name, name.replace("%2F", "/%2F"))):
            original = unquote(spelled, errors="surrogateescape")
            if original == name or not names(original):
                continue
            # Only a name the copy would have written for it (a stray "a%20b" beside the
            # source "a b" is an extra); "%2F" forms come from collisions, which depend
            # on what else was listed.
            if plain_namer(original)[0] != name and "%2F" not in name:
                continue
            key = spec.rel_base + original
            if await retry(functools.partial(src.exists, key), policy, src_limit):
                return
        result.checked += 1
        await differ(name, "extra", None, d, detail="only at the destination")

    async def missing_or_skipped(name: str, s: ObjectInfo) -> None:
        """An empty source object without a copy: missing — unless reading it says the copy
        always skips it (a local symlink loop): then it is not copied on purpose."""
        try:
            await retry(functools.partial(src.read, s.key), policy, src_limit)
        except DanglingLinkError:
            # Not missing: a link to nothing has no content to copy (the copy recorded it).
            await differ(name, "unverifiable", s, None, detail=DanglingLinkError.kind)
            return
        except ForbiddenError as e:
            # A directory the source may not list (an HDFS/Gen1 403 subtree): nothing below
            # it could be copied, and nothing can prove otherwise; the row names it.
            result.counts["unverifiable"] += 1
            result.reasons[FORBIDDEN_AT_SOURCE] += 1
            await report.row(name, "unverifiable", s, None, None, None,
                             f"{FORBIDDEN_AT_SOURCE} ({e})")
            return
        except ObjectError as e:
            if e.skipped_always:
                await differ(name, "unverifiable", s, None,
                             detail=f"not copied on purpose: {e.kind}")
                return
        await differ(name, "missing", s, None, detail="not at the destination")

    async def prove(item: Work) -> None:
        """The per-object action: prove one pair equal, or record how it differs."""
        name, s, d = item
        try:
            if s is None:
                assert isinstance(d, ObjectInfo)
                await maybe_renamed(name, d)
            elif d is None:
                await missing_or_skipped(name, s)
            elif isinstance(d, str):  # a renamed object: look it up under its new name
                found = await retry(functools.partial(dst.exists, d), policy, dst_limit)
                missing = f"not at the destination under its encoded name {d}"
                if not await settled_by_listing(name, s, found, missing):
                    assert found is not None
                    await _deep_check(name, s, found)
            else:
                if opts.check_times:  # yielded before the listings settled anything
                    await check_time(name, s, d)
                    if await settled_by_listing(name, s, d, ""):
                        return
                await _deep_check(name, s, d)
        except (AuthError, UsageError):
            raise
        except LakeshiftError as e:
            if s is None:
                result.checked += 1
            await differ(name, "unverifiable", s, d if s is None and isinstance(d, ObjectInfo)
                         else None, detail=f"could not read: {e.kind}")

    async def _deep_check(name: str, s: ObjectInfo, d: ObjectInfo) -> None:
        if not opts.deep and s.md5 is not None and d.md5 is not None and s.md5 != d.md5:
            # The listing's MD5 may not be one (S3 ETags under SSE-KMS / SSE-C): then the
            # source's bytes are hashed below instead.
            s = await without_unvouched_md5(src, s, policy, src_limit) or s
            if s.md5 is not None:
                await differ(name, "checksum", s, d, s.md5.hex(), d.md5.hex(),
                             "source MD5 != destination Content-MD5")
                return
        m = _MULTIPART.match(s.etag or "") if s.md5 is None else None
        multipart = s.etag if m else None
        want_parts = multipart_part_sizes(s.size, int(m.group(1))) if m else []
        if multipart and not opts.deep and src.capabilities.source_checksums:
            # As the copy proved it (transfer.copy_object): by the source's own checksum,
            # else its multipart ETag where that can be rebuilt (not under SSE-KMS/SSE-C,
            # parts cut from part 1's size), else the MD5 of its bytes.  Where the ETag
            # rebuilds, a kept CRC (CHEAP_PROOFS) is still preferred (cheaper than MD5; a
            # SHA is not).
            store = cast(ChecksumSource, src)
            kept = await retry(functools.partial(store.source_checksums, s.key, s.etag),
                               policy, src_limit)
            rebuilds = _etag_rebuilds(s, kept)
            if (not rebuilds or SourceProof(s, kept).label in CHEAP_PROOFS) and \
                    await _by_own_checksum(name, s, d, kept):
                return
            if rebuilds:
                assert kept is not None and kept.part_size
                want_parts = [kept.part_size]
            else:
                multipart = None  # an MD5 of the source's bytes proves it (read-md5)
        src_md5 = s.md5
        proof = "source-md5" if src_md5 is not None and not opts.deep else "read-md5"
        if opts.deep or (src_md5 is None and not multipart):
            src_md5, _ = await stream_checksums(src, s, slots, policy, limiter=src_limit,
                                                pacing=pacing)
            result.bytes_read += s.size
            events.emit(BytesMoved(s.size))
        dst_md5 = d.md5
        etags: list[str] = []
        if opts.deep or dst_md5 is None or (multipart and src_md5 is None):
            dst_md5, etags = await stream_checksums(dst, d, slots, policy, want_parts,
                                                    limiter=dst_limit, pacing=pacing)
            result.bytes_read += d.size
            events.emit(BytesMoved(d.size))
        if src_md5 is not None:
            if src_md5 == dst_md5:
                await proven(name, s, d, proof, src_md5.hex(), src_md5.hex())
            elif proof == "source-md5" and d.md5 is None and (
                    fresh := await without_unvouched_md5(src, s, policy, src_limit)):
                # As above, for a destination that keeps no MD5 (hashed here): the
                # listing's MD5 was none (SSE-KMS / SSE-C), so the source's bytes decide.
                await _deep_check(name, fresh, replace(d, md5=dst_md5))
            else:
                await differ(name, "checksum", s, d, src_md5.hex(),
                             dst_md5.hex() if dst_md5 else None, "MD5 of the bytes differs")
            return
        if multipart:
            if multipart in etags:
                await proven(name, s, d, "multipart-etag", multipart, multipart)
            elif want_parts:
                await differ(name, "checksum", s, d, multipart, ", ".join(etags),
                             "multipart ETag recomputed from the destination differs")
            else:
                await differ(name, "unverifiable", s, d, multipart, None,
                             "multipart ETag: part size cannot be inferred (use --deep)")
            return
        await differ(name, "unverifiable", s, d, None, None, "no checksum on either side")

    async def _by_own_checksum(name: str, s: ObjectInfo, d: ObjectInfo,
                               kept: SourceChecksum | None) -> bool:
        """Prove ``d`` by the checksum the source keeps besides its ETag (a CRC, a SHA; a
        COMPOSITE one only where the parts can be cut from part 1's size): the
        destination's bytes read back must have it.  False when it keeps none usable."""
        proof = SourceProof(s, kept)
        if not proof.label.startswith("source-") or (
                proof.part_size and not _parts_fit(s, kept)):
            return False
        await stream_checksums(dst, d, slots, policy, limiter=dst_limit, pacing=pacing,
                               proof=proof, whole_md5=False)
        result.bytes_read += d.size
        events.emit(BytesMoved(d.size))
        algorithm = proof.label.removeprefix("source-")
        own = f"{algorithm}:{kept.value if kept else ''}"
        try:
            proof.check()
        except IntegrityError:
            await differ(name, "checksum", s, d, own, None,
                         f"the destination's bytes do not have the source's {algorithm}")
        else:
            await proven(name, s, d, proof.label, own, own)
        return True

    await drive(planned(), prove, opts.concurrency)


def source_time(s: ObjectInfo) -> datetime | None:
    """The time a copy of ``s`` keeps: the original one ``s`` itself kept, or its own."""
    kept = parse_time((s.metadata or {}).get(SRC_MTIME_KEY))
    return kept or s.last_modified


def write_summary(path: Path, result: VerifyResult, extra: dict[str, Any]) -> dict[str, Any]:
    data = {**extra, **result.summary()}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data


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
