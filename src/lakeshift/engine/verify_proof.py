"""verify's per-object action (engine/verify.py runs it on the pipeline's pool):
:class:`PairCheck` holds what the check of one source/destination pair shares — both
stores and their endpoints' limiters, the report, the result — and proves each item its
planner hands the workers (:meth:`PairCheck.prove`): present on both sides, same size, same
checksum — the source's MD5 against the destination's Content-MD5; an S3 multipart object
as the copy proved it: its own CRC32/SHA checked on the destination's bytes, else its
multipart ETag rebuilt from them (:func:`multipart_part_sizes`), else the MD5 of its bytes;
``--deep`` hashes both sides' bytes — and the kept time (--check-times).  A
destination-only encoded name is looked up under the source name it decodes to; a source
object without a copy is read (its first byte) to tell a missing one from one the copy
always skips or the source refuses.
Its :meth:`~PairCheck.differ`, :meth:`~PairCheck.proven` and
:meth:`~PairCheck.settled_by_listing` also serve the planner, which settles what the
listings alone can."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote

from lakeshift.engine.checksums import (
    CHEAP_PROOFS,
    SourceProof,
    stream_checksums,
    without_unvouched_md5,
)
from lakeshift.engine.events import PROOF_FOLDER, BytesMoved, EventBus
from lakeshift.engine.limiter import EndpointLimiter, Pacing
from lakeshift.engine.pipeline_names import DestinationNamer
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import _etag_rebuilds, _parts_fit
from lakeshift.engine.verify_report import Report, VerifiedReport, VerifyResult
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
from lakeshift.plan.source import SourceSpec
from lakeshift.stores.base import ChecksumSource, SourceChecksum, Store
from lakeshift.stores.props import SRC_MTIME_KEY, format_time, parse_time

if TYPE_CHECKING:
    from lakeshift.engine.verify import VerifyOptions

MiB = 1024 * 1024
#: One item of verify's work: (name, source object, destination object or — renamed — its
#: destination key, or None: an empty source object not at the destination); a source of
#: None is a destination-only name that may be a renaming.
Work = tuple[str, ObjectInfo | None, ObjectInfo | str | None]
_PART_SIZES = [5, 8, 10, 15, 16, 25, 32, 50, 64, 100, 128, 256, 512]
_MULTIPART = re.compile(r"^[0-9a-f]{32}-(\d+)$")
#: The reason given for a source path that may not be read (a 403 subtree), not "missing".
FORBIDDEN_AT_SOURCE = "forbidden at the source: permission denied, so not copied"
#: The detail of a source folder (an empty directory's marker) with no folder at the
#: destination.
FOLDER_MISSING = "folder not at the destination"


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


def source_time(s: ObjectInfo) -> datetime | None:
    """The time a copy of ``s`` keeps: the original one ``s`` itself kept, or its own."""
    kept = parse_time((s.metadata or {}).get(SRC_MTIME_KEY))
    return kept or s.last_modified


@dataclass
class PairCheck:
    """The check of one source/destination pair (``verify_pair``): what its planner and
    its per-object action share, and the action.  Every result row goes through
    :meth:`differ` or :meth:`proven`."""

    src: Store
    dst: Store
    spec: SourceSpec
    opts: VerifyOptions
    report: Report
    result: VerifyResult
    slots: SlotPool
    policy: RetryPolicy
    pacing: Pacing
    events: EventBus
    verified_report: VerifiedReport | None
    src_limit: EndpointLimiter
    dst_limit: EndpointLimiter
    #: --include / --exclude, on names relative to the source's base.
    names: NameFilter
    #: The destination name a source name is written under, without collision state: for
    #: telling a renamed copy from an extra.
    plain_namer: DestinationNamer

    async def differ(self, name: str, kind: str, s: ObjectInfo | None, d: ObjectInfo | None,
                     s_sum: str | None = None, d_sum: str | None = None,
                     detail: str = "") -> None:
        self.result.counts[kind] += 1
        if kind == "unverifiable":
            self.result.reasons[detail] += 1
        await self.report.row(name, kind, s, d, s_sum, d_sum, detail)

    async def proven(self, name: str, s: ObjectInfo, d: ObjectInfo, proof: str, s_sum: str,
                     d_sum: str) -> None:
        self.result.verified += 1
        self.result.proofs[proof] += 1
        if self.verified_report is not None:
            await self.verified_report.verified(name, s, d, proof, s_sum, d_sum)

    async def settled_by_listing(self, name: str, s: ObjectInfo, d: ObjectInfo | None,
                                 missing: str) -> bool:
        """Decide from listings alone when possible (missing, size, both MD5s known)."""
        if d is None:
            await self.differ(name, "missing", s, None, detail=missing)
        elif s.size != d.size:
            await self.differ(name, "size", s, d, detail=f"{s.size} != {d.size} bytes")
        elif not self.opts.deep and s.md5 is not None and d.md5 is not None and s.md5 == d.md5:
            await self.proven(name, s, d, "source-md5", s.md5.hex(), d.md5.hex())
        else:  # not decided here; an MD5 mismatch is looked at closer (_deep_check)
            return False
        return True

    async def check_time(self, name: str, s: ObjectInfo, d: ObjectInfo) -> None:
        want = source_time(s)
        if want is None:
            return
        meta = d.metadata or {}
        if SRC_MTIME_KEY not in meta and not self.dst.capabilities.metadata_in_listing \
                and not self.dst.capabilities.hierarchical:
            # S3 destinations list no metadata: a HEAD shows it.
            found = await retry(functools.partial(self.dst.exists, d.key), self.policy,
                                self.dst_limit)
            meta = (found.metadata or {}) if found is not None else {}
        kept = meta.get(SRC_MTIME_KEY)
        # A local destination keeps the time as the file's mtime.
        got = parse_time(kept) if kept else (
            d.last_modified if self.dst.capabilities.hierarchical and
            not self.dst.capabilities.metadata_in_listing else None)
        if got is None:
            await self.differ(name, "time", s, d, format_time(want), None,
                              f"no {SRC_MTIME_KEY} at the destination")
        elif abs((got - want).total_seconds()) >= 1:
            await self.differ(name, "time", s, d, format_time(want), format_time(got),
                              "original modification time differs")

    async def maybe_renamed(self, name: str, d: ObjectInfo) -> None:
        """A destination-only name with a percent sign: the renamed copy of the source name
        it decodes to (checked from that source object's side), or an extra."""
        # "%2F" stands for a "/" (a file-directory collision, a leading empty segment) or
        # for "//" (an empty segment inside the name): both readings are looked up.
        for spelled in dict.fromkeys((name, name.replace("%2F", "/%2F"))):
            original = unquote(spelled, errors="surrogateescape")
            if original == name or not self.names(original):
                continue
            # Only a name the copy would have written for it (a stray "a%20b" beside the
            # source "a b" is an extra); "%2F" forms come from collisions, which depend
            # on what else was listed.
            if self.plain_namer(original)[0] != name and "%2F" not in name:
                continue
            key = self.spec.rel_base + original
            if await retry(functools.partial(self.src.exists, key), self.policy, self.src_limit):
                return
        self.result.checked += 1
        await self.differ(name, "extra", None, d, detail="only at the destination")

    async def check_folder(self, name: str, s: ObjectInfo, dest_key: str) -> None:
        """A source folder the destination's listing did not show (local disk lists a
        directory only while it is empty: one that holds files): asked whether
        ``dest_key`` is a folder there, as the copy asks it; proven ``folder`` (no bytes
        to prove), else missing."""
        there = await retry(functools.partial(self.dst.is_folder, dest_key), self.policy,
                            self.dst_limit)
        if there:
            await self.proven(name, s, ObjectInfo(dest_key, 0, is_dir_marker=True),
                              PROOF_FOLDER, "", "")
        else:
            await self.differ(name, "missing", s, None, detail=FOLDER_MISSING)

    async def missing_or_skipped(self, name: str, s: ObjectInfo) -> None:
        """A source object without a copy: missing — unless reading it (its first byte, an
        empty one whole) says the copy always skips it (a local symlink loop: not copied on
        purpose), that it links to nothing, or that the source refuses it (a file or a
        folder this user may not read: unverifiable, as nothing can be compared)."""
        read = functools.partial(self.src.read, s.key, 0, 1) if s.size else \
            functools.partial(self.src.read, s.key)
        try:
            await retry(read, self.policy, self.src_limit)
        except DanglingLinkError:
            # Not missing: a link to nothing has no content to copy (the copy recorded it).
            await self.differ(name, "unverifiable", s, None, detail=DanglingLinkError.kind)
            return
        except ForbiddenError as e:
            # A directory the source may not list (an HDFS/Gen1 403 subtree), a file it may
            # not read: nothing there could be copied, and nothing can prove otherwise; the
            # row names it.
            self.result.counts["unverifiable"] += 1
            self.result.reasons[FORBIDDEN_AT_SOURCE] += 1
            await self.report.row(name, "unverifiable", s, None, None, None,
                                  f"{FORBIDDEN_AT_SOURCE} ({e})")
            return
        except ObjectError as e:
            if e.skipped_always:
                await self.differ(name, "unverifiable", s, None,
                                  detail=f"not copied on purpose: {e.kind}")
                return
        await self.differ(name, "missing", s, None, detail="not at the destination")

    async def prove(self, item: Work) -> None:
        """The per-object action: prove one pair equal, or record how it differs."""
        name, s, d = item
        try:
            if s is None:
                assert isinstance(d, ObjectInfo)
                await self.maybe_renamed(name, d)
            elif s.is_dir_marker:
                assert isinstance(d, str)
                await self.check_folder(name, s, d)
            elif d is None:
                await self.missing_or_skipped(name, s)
            elif isinstance(d, str):  # a renamed object: look it up under its new name
                found = await retry(functools.partial(self.dst.exists, d), self.policy,
                                    self.dst_limit)
                missing = f"not at the destination under its encoded name {d}"
                if not await self.settled_by_listing(name, s, found, missing):
                    assert found is not None
                    await self._deep_check(name, s, found)
            else:
                if self.opts.check_times:  # yielded before the listings settled anything
                    await self.check_time(name, s, d)
                    if await self.settled_by_listing(name, s, d, ""):
                        return
                await self._deep_check(name, s, d)
        except (AuthError, UsageError):
            raise
        except LakeshiftError as e:
            if s is None:
                self.result.checked += 1
            await self.differ(name, "unverifiable", s,
                              d if s is None and isinstance(d, ObjectInfo) else None,
                              detail=f"could not read: {e.kind}")

    async def _deep_check(self, name: str, s: ObjectInfo, d: ObjectInfo) -> None:
        if not self.opts.deep and s.md5 is not None and d.md5 is not None and s.md5 != d.md5:
            # The listing's MD5 may not be one (S3 ETags under SSE-KMS / SSE-C): then the
            # source's bytes are hashed below instead.
            s = await without_unvouched_md5(self.src, s, self.policy, self.src_limit) or s
            if s.md5 is not None:
                await self.differ(name, "checksum", s, d, s.md5.hex(), d.md5.hex(),
                                  "source MD5 != destination Content-MD5")
                return
        m = _MULTIPART.match(s.etag or "") if s.md5 is None else None
        multipart = s.etag if m else None
        want_parts = multipart_part_sizes(s.size, int(m.group(1))) if m else []
        if multipart and not self.opts.deep and self.src.capabilities.source_checksums:
            # As the copy proved it (transfer.copy_object): by the source's own checksum,
            # else its multipart ETag where that can be rebuilt (not under SSE-KMS/SSE-C,
            # parts cut from part 1's size), else the MD5 of its bytes.  Where the ETag
            # rebuilds, a kept CRC (CHEAP_PROOFS) is still preferred (cheaper than MD5; a
            # SHA is not).
            store = cast(ChecksumSource, self.src)
            kept = await retry(functools.partial(store.source_checksums, s.key, s.etag),
                               self.policy, self.src_limit)
            rebuilds = _etag_rebuilds(s, kept)
            if (not rebuilds or SourceProof(s, kept).label in CHEAP_PROOFS) and \
                    await self._by_own_checksum(name, s, d, kept):
                return
            if rebuilds:
                assert kept is not None and kept.part_size
                want_parts = [kept.part_size]
            else:
                multipart = None  # an MD5 of the source's bytes proves it (read-md5)
        src_md5 = s.md5
        proof = "source-md5" if src_md5 is not None and not self.opts.deep else "read-md5"
        if self.opts.deep or (src_md5 is None and not multipart):
            src_md5, _ = await stream_checksums(self.src, s, self.slots, self.policy,
                                                limiter=self.src_limit, pacing=self.pacing)
            self.result.bytes_read += s.size
            self.events.emit(BytesMoved(s.size))
        dst_md5 = d.md5
        etags: list[str] = []
        if self.opts.deep or dst_md5 is None or (multipart and src_md5 is None):
            dst_md5, etags = await stream_checksums(self.dst, d, self.slots, self.policy,
                                                    want_parts, limiter=self.dst_limit,
                                                    pacing=self.pacing)
            self.result.bytes_read += d.size
            self.events.emit(BytesMoved(d.size))
        if src_md5 is not None:
            if src_md5 == dst_md5:
                await self.proven(name, s, d, proof, src_md5.hex(), src_md5.hex())
            elif proof == "source-md5" and d.md5 is None and (
                    fresh := await without_unvouched_md5(self.src, s, self.policy, self.src_limit)):
                # As above, for a destination that keeps no MD5 (hashed here): the
                # listing's MD5 was none (SSE-KMS / SSE-C), so the source's bytes decide.
                await self._deep_check(name, fresh, replace(d, md5=dst_md5))
            else:
                await self.differ(name, "checksum", s, d, src_md5.hex(),
                                  dst_md5.hex() if dst_md5 else None, "MD5 of the bytes differs")
            return
        if multipart:
            if multipart in etags:
                await self.proven(name, s, d, "multipart-etag", multipart, multipart)
            elif want_parts:
                await self.differ(name, "checksum", s, d, multipart, ", ".join(etags),
                                  "multipart ETag recomputed from the destination differs")
            else:
                await self.differ(name, "unverifiable", s, d, multipart, None,
                                  "multipart ETag: part size cannot be inferred (use --deep)")
            return
        await self.differ(name, "unverifiable", s, d, None, None, "no checksum on either side")

    async def _by_own_checksum(self, name: str, s: ObjectInfo, d: ObjectInfo,
                               kept: SourceChecksum | None) -> bool:
        """Prove ``d`` by the checksum the source keeps besides its ETag (a CRC, a SHA; a
        COMPOSITE one only where the parts can be cut from part 1's size): the
        destination's bytes read back must have it.  False when it keeps none usable."""
        proof = SourceProof(s, kept)
        if not proof.label.startswith("source-") or (
                proof.part_size and not _parts_fit(s, kept)):
            return False
        await stream_checksums(self.dst, d, self.slots, self.policy, limiter=self.dst_limit,
                               pacing=self.pacing, proof=proof, whole_md5=False)
        self.result.bytes_read += d.size
        self.events.emit(BytesMoved(d.size))
        algorithm = proof.label.removeprefix("source-")
        own = f"{algorithm}:{kept.value if kept else ''}"
        try:
            proof.check()
        except IntegrityError:
            await self.differ(name, "checksum", s, d, own, None,
                              f"the destination's bytes do not have the source's {algorithm}")
        else:
            await self.proven(name, s, d, proof.label, own, own)
        return True
