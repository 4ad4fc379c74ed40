"""`lakeshift tune SRC DST`: a short trial on a sample of the source before a big migration
(the proof of concept Data Factory recommends): the sample is copied once per setting of
concurrency, block size and single-put limit into a scratch folder at the destination,
which is deleted after each trial; the fastest setting wins.

Settings are searched one at a time (concurrency, then block size, then the single-put
limit), each from the best found so far: 3 + 2 + 2 trials rather than every combination,
after one unrecorded warm-up round.  Block sizes are tried only when the sample has an
object larger than the smallest of them, single-put limits only when it has one larger
than the block size chosen (otherwise neither can change a thing); the result says which
were not tried and why (``TuneResult.not_tried``).
During runs the adaptive limiter keeps adjusting concurrency to throttling.

Tune leaves nothing it made: the trials' objects are deleted after each trial, the scratch
folder after the last (on a destination with real directories: ADLS Gen2, local disk; on a
flat one whatever is left under the scratch prefix, e.g. by a trial stopped with Ctrl-C), and
a local destination folder it had to create is removed again.  A bucket or container that
does not exist is refused rather than created: no store here can delete one again.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar, cast

from lakeshift.engine.events import EventBus
from lakeshift.engine.limiter import Pacing
from lakeshift.engine.listing import list_pages
from lakeshift.engine.pipeline import SKIPPABLE, check_reachable
from lakeshift.engine.pipeline_pool import drive
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import TransferContext, copy_object
from lakeshift.errors import (
    AuthError,
    InternalError,
    LakeshiftError,
    MissingContainerError,
    ObjectError,
    UsageError,
)
from lakeshift.model import ObjectInfo, Setting, Trial, TuneResult
from lakeshift.plan.filters import NameFilter
from lakeshift.plan.jobconfig import size_text
from lakeshift.plan.source import destination_root, resolve_source
from lakeshift.stores.base import DirectoryWriter, Store, StoreConfig
from lakeshift.stores.registry import open_store

T = TypeVar("T")
MiB = 1024 * 1024
CONCURRENCIES = (8, 32, 64)
BLOCK_SIZES = (4 * MiB, 16 * MiB)
SINGLE_PUT_MAXES = (0, 256 * MiB)
#: The scratch folder, under the destination's root: never a name a migration writes.
SCRATCH = ".lakeshift-tune-"


async def sample_of(src: Store, max_objects: int, max_bytes: int, policy: RetryPolicy,
                    names: NameFilter | None = None) -> list[ObjectInfo]:
    """The first objects of the source's listing that ``names`` takes (copy's --include and
    --exclude), up to ``max_objects`` or ``max_bytes``."""
    spec = await resolve_source(src)
    out: list[ObjectInfo] = []
    total = 0
    async for page in list_pages(src, spec.listing_prefix(), None, policy, None):
        for o in page:
            if o.is_dir_marker or o.key.endswith("/"):
                continue
            if names is not None and not names(spec.rel(o.key)):
                continue
            out.append(o)
            total += o.size
            if len(out) >= max_objects or total >= max_bytes:
                return out
    return out


async def _trial(src: Store, dst: Store, sample: list[ObjectInfo], base: str, scratch: str,
                 setting: Setting, policy: RetryPolicy
                 ) -> tuple[Trial, dict[int, LakeshiftError]]:
    """One trial, and the errors of the objects it failed by their place in the sample.  A
    credential or usage error (credentials refused, a bucket or container gone) ends tune
    there, as it ends a copy: every other trial would meet it too."""
    ctx = TransferContext(src, dst, setting.block_size, SlotPool(setting.concurrency), policy,
                          EventBus([]), Pacing(setting.concurrency, adaptive=False),
                          setting.single_put_max)
    skipped = 0
    failures: dict[int, LakeshiftError] = {}
    written: list[str] = []

    async def one(item: tuple[int, ObjectInfo]) -> None:
        nonlocal skipped
        i, o = item
        key = scratch + o.key[len(base):]
        try:
            await copy_object(ctx, o, key)
            written.append(key)
        except (AuthError, UsageError):
            raise
        except LakeshiftError as e:
            # Nothing to copy (a symlink loop, a link to the destination): skipped, as
            # copy skips it, not a failed trial.
            if isinstance(e, ObjectError) and e.skipped_always:
                skipped += 1
            else:
                failures[i] = e

    t0 = time.monotonic()
    await drive(_each(list(enumerate(sample))), one, setting.concurrency)
    seconds = time.monotonic() - t0
    await drive(_each(written), lambda k: retry(lambda: dst.delete(k), policy), 16)
    failed = len(failures)
    trial = Trial(setting, seconds, len(sample) - failed - skipped,
                  sum(o.size for i, o in enumerate(sample) if i not in failures), failed)
    return trial, {i: failures[i] for i in sorted(failures)}


def comparable(failed: list[dict[int, LakeshiftError]], sample: int
               ) -> tuple[set[int], list[int]]:
    """Which trials timed the same objects, by their place in ``failed`` (each trial's
    failed objects), and the objects they left out: the trials that failed the same objects,
    each for a reason of its own (the kinds ``copy --skip-errors`` accepts: unreadable,
    a dangling link, archived…) and copied some, as many of them as there are (on a tie the
    fewest objects left out).  A trial that failed other objects (flaky: a transient error,
    one object read once and not again) timed other work: it is compared with none."""
    groups: dict[frozenset[int], list[int]] = {}
    for n, errors in enumerate(failed):
        if len(errors) < sample and all(e.kind in SKIPPABLE for e in errors.values()):
            groups.setdefault(frozenset(errors), []).append(n)
    if not groups:
        return set(), []
    left_out = min(groups, key=lambda k: (-len(groups[k]), len(k)))
    return set(left_out), groups[left_out]


#: What to do when every trial failed, by the kind of the first object's error.
_FIXES = {
    "forbidden": "let lakeshift read the source and write the destination (the credentials' "
                 "permissions, a local file's mode; lakeshift check SRC DST tests both), or "
                 "tune a folder it may copy (--exclude leaves names out)",
    "missing": "the objects went away between the listing and the read: tune again when "
               "nothing deletes them meanwhile",
    "dangling-link": "their targets do not exist: tune a folder without such links (copy "
                     "fails them too, or skips them with --skip-errors dangling-link)",
    "archived": "rehydrate them, or tune a folder whose objects are not archived",
    "invalid-name": "the destination cannot name them: tune a folder whose names it takes "
                    "(copy can encode them: --invalid-names encode)",
    "integrity": "the bytes differed on the way: tune a folder nothing writes to meanwhile, "
                 "and check the network",
    "changed": "the source changed under the copy: tune a folder nothing writes to meanwhile",
    "transient": "the service kept failing, each try retried: try again later",
    "throttled": "the service kept throttling, each try retried: try again later",
}
_FIX_OTHERWISE = "lakeshift copy SRC DST records each object's error"


def _one_line(e: LakeshiftError) -> str:
    """An object's error for tune's one line: on one line (a service's message may hold its
    own line breaks: an XML body), at most 300 characters."""
    said = " ".join(str(e).split())
    return said if len(said) <= 300 else said[:297] + "..."


def every_trial_failed(trials: list[Trial], failures: list[LakeshiftError],
                       sample: int) -> LakeshiftError:
    """The error that ends tune when no trial copied its whole sample: its line names the
    first failed object's error (of the last trial), how many objects had that kind of
    error, and the fix; its exit code is the one copy gives for it (1: objects failed).
    An error lakeshift does not classify (not an object's: a bug, an answer it does not
    know) stays an internal error (exit 4)."""
    first = failures[0]
    alike = sum(1 for e in failures if e.kind == first.kind)
    last = trials[-1].failed
    times = "each time" if all(t.failed == last for t in trials) else "in the last trial"
    said = _one_line(first)
    line = (f"every trial failed: {last} of {sample} objects {times}; "
            f"{alike} of them {first.kind}, the first: {said}")
    if not isinstance(first, ObjectError):
        return InternalError(f"{line} (an error lakeshift does not classify)")
    error = ObjectError(f"{line} — {_FIXES.get(first.kind, _FIX_OTHERWISE)}")
    error.kind = first.kind
    return error


def _flaky(failed: list[dict[int, LakeshiftError]], sample: int) -> LakeshiftError:
    """The error that ends tune when its trials failed different objects (one object failed
    in some and was copied in others) and no two of them timed the same objects: no winner
    can be picked from trials that timed different work."""
    ever = set().union(*(f.keys() for f in failed))
    always = set.intersection(*(set(f) for f in failed))
    kinds = sorted({e.kind for f in failed for i, e in f.items() if i not in always})
    first = next(e for f in failed for i, e in f.items() if i not in always)
    said = _one_line(first)
    error = ObjectError(
        f"no winner: the trials failed different objects ({len(ever - always)} of {sample} "
        f"failed in some trials and not in others: {', '.join(kinds)}; the first: {said}), so "
        "no two of them timed the same work — tune again, or lakeshift copy SRC DST records "
        "each object's error")
    error.kind = first.kind
    return error


async def _each(items: list[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


async def _prepare(dst: Store, policy: RetryPolicy) -> list[str]:
    """Make the destination ready for the trials; returns the local folders this made,
    deepest first (removed after the trials).  A missing bucket or container is refused:
    tune would leave it behind."""
    try:
        await check_reachable(dst.check_source, "destination", policy)
    except MissingContainerError as e:
        if dst.url.scheme != "file":
            raise UsageError(f"{e}: tune writes its trials into an existing one and leaves "
                             "nothing behind, so it creates none: create it first (lakeshift "
                             "copy and run create it)") from None
    made: list[str] = []
    if dst.url.scheme == "file":
        folder = os.path.abspath(dst.url.bucket)
        while folder and not os.path.exists(folder):
            made.append(folder)
            parent = os.path.dirname(folder)
            folder = parent if parent != folder else ""
    await check_reachable(dst.prepare_destination, "destination", policy)
    if dst.capabilities.directories:  # known once prepared (asked of the account)
        # ADLS Gen2: the trials' blobs make the destination path's directories that are not
        # there yet; those are tune's to remove after.
        parts = destination_root(dst).rstrip("/").split("/")
        for i in range(len(parts), 0, -1):
            path = "/".join(parts[:i])
            if not path:  # the container's root: no folder (and a HEAD of it is a 400)
                break
            found: ObjectInfo | None = await retry(functools.partial(dst.exists, path), policy)
            if found is not None:
                break
            made.append(path + "/")
    return made


#: After a trial stopped midway, how long a write the client gave up on may still land on
#: the service (its body was sent; the service finishes it): the sweep looks again after
#: this, and again while it still finds something, up to ``SETTLE_PASSES`` looks.
SETTLE_SECONDS = 1.0
SETTLE_PASSES = 5


async def _remove_scratch(dst: Store, scratch: str, made: list[str],
                          stopped: bool = False) -> None:
    """What the trials left that is tune's: the scratch folder (its objects are deleted
    already; the folder stays where directories are real), and the local folders made.
    ``stopped``: a trial ended midway (Ctrl-C, an error), so writes it abandoned may still
    land after a first sweep: the remote scratch is looked at again until it stays empty."""
    if dst.url.scheme == "file":
        if scratch:
            # Deleting the files leaves their folders on a disk: the scratch tree goes too.
            await asyncio.to_thread(shutil.rmtree, os.path.join(dst.url.bucket, scratch),
                                    ignore_errors=True)
        for folder in made:  # deepest first; one that holds anything else stays
            try:
                await asyncio.to_thread(os.rmdir, folder)
            except OSError:
                break
    elif dst.capabilities.directories:
        # ADLS Gen2: the files are gone, their directories are not: one recursive delete
        # of the scratch folder, which holds only tune's own, then each destination folder
        # the trials made, deepest first, while it is empty.  Those are deleted without
        # recursion: a run writing into one between the listing and the delete keeps its
        # files (the service refuses to delete a directory that is not empty; it stays).
        writer = cast(DirectoryWriter, dst)
        try:
            if scratch:
                await writer.remove_directory(scratch, recursive=True)
                for _ in range(SETTLE_PASSES - 1 if stopped else 0):
                    await asyncio.sleep(SETTLE_SECONDS)
                    if await dst.exists(scratch.rstrip("/")) is None:
                        break
                    await writer.remove_directory(scratch, recursive=True)
            for folder in made:
                if (await dst.list_page(folder)).objects:
                    break
                await writer.remove_directory(folder)
        except LakeshiftError:
            pass
    elif scratch:
        # A flat namespace (S3, Blob): a trial stopped midway (Ctrl-C, an error) leaves the
        # objects it wrote; every key under the scratch prefix (unique to this tune) is
        # tune's own, so whatever is listed there is deleted.
        try:
            for n in range(SETTLE_PASSES if stopped else 1):
                if n:
                    await asyncio.sleep(SETTLE_SECONDS)
                if not await _sweep(dst, scratch) and n:
                    break
        except LakeshiftError:
            pass


async def _sweep(dst: Store, prefix: str) -> int:
    """Delete every object listed under ``prefix``; returns how many there were."""
    found = 0
    token: str | None = None
    while True:
        page = await dst.list_page(prefix, token)
        found += len(page.objects)
        await drive(_each([o.key for o in page.objects]), lambda k: dst.delete(k), 16)
        token = page.token
        if token is None:
            return found


async def tune_async(source: StoreConfig, destination: StoreConfig, max_objects: int = 200,
                     max_bytes: int = 512 * MiB, include: Sequence[str] = (),
                     exclude: Sequence[str] = ()) -> TuneResult:
    names = NameFilter(include, exclude)  # a glob that cannot work: refused before anything
    src, dst = open_store(source), open_store(destination)
    policy = RetryPolicy()
    scratch = ""
    made: list[str] = []
    finished = False
    try:
        await check_reachable(src.check_source, "source", policy)
        made = await _prepare(dst, policy)
        sample = await sample_of(src, max_objects, max_bytes, policy, names)
        if not sample:
            raise UsageError(f"{src.url.display()}: nothing to try: the source lists no object"
                             + (" that --include/--exclude take" if include or exclude else ""))
        base = (await resolve_source(src)).rel_base
        scratch = f"{destination_root(dst)}{SCRATCH}{uuid.uuid4().hex[:8]}/"
        result = TuneResult(len(sample), sum(o.size for o in sample))
        best: Trial | None = None
        failed: list[dict[int, LakeshiftError]] = []  # each trial's, by sample place

        async def run(setting: Setting) -> None:
            nonlocal best
            trial, errors = await _trial(src, dst, sample, base,
                                         f"{scratch}{len(result.trials)}/", setting, policy)
            result.trials.append(trial)
            failed.append(errors)
            # The fastest of the trials that timed the same objects (so far).
            _, alike = comparable(failed, len(sample))
            best = min((result.trials[n] for n in alike), key=lambda t: t.seconds,
                       default=None)

        # One unrecorded round first: the first copy of a sample pays for cold caches,
        # connections and imports, which would count against whichever setting came first.
        warm, _ = await _trial(src, dst, sample, base, f"{scratch}warm-up/", Setting(),
                               policy)
        if warm.objects == 0 and not warm.failed:
            # Every object skipped, as copy skips it: the trials would time nothing, and
            # the fastest of them would be written as the best setting.
            raise UsageError(f"{src.url.display()}: nothing to try: copy skips each of the "
                             f"{len(sample)} objects of the sample (symlink loops, links to "
                             "the destination folder, special files): tune a folder with "
                             "files to copy")
        for c in CONCURRENCIES:
            await run(Setting(concurrency=c))
        # A block size matters only for an object larger than a block, the single-put limit
        # only for one larger than the block size chosen: on a sample without such objects
        # those trials would only time noise, and the noise would be written as the best.
        largest = max(o.size for o in sample)
        for axis in ("block_size", "single_put_max"):
            start = best.setting if best is not None else Setting()
            limit = min(BLOCK_SIZES) if axis == "block_size" else start.block_size
            if largest <= limit:
                result.not_tried[axis] = (
                    f"no object in the sample is larger than {size_text(limit)} "
                    + ("(the smallest block size tried)" if axis == "block_size" else
                       "(the block size chosen)") + ", so it cannot matter for it")
                continue
            for value in BLOCK_SIZES if axis == "block_size" else SINGLE_PUT_MAXES:
                await run(Setting(**{**_fields(start), axis: value}))
        left_out, alike = comparable(failed, len(sample))
        result.not_compared = [n for n in range(len(result.trials)) if n not in alike]
        if best is None or (result.not_compared and len(alike) < 2):
            if all(f.keys() == failed[-1].keys() for f in failed):
                raise every_trial_failed(result.trials, list(failed[-1].values()),
                                         len(sample))
            raise _flaky(failed, len(sample))
        for i in sorted(left_out):
            e = failed[alike[0]][i]
            result.left_out.setdefault(e.kind, []).append(sample[i].key[len(base):])
        result.best = best.setting
        finished = True
        return result
    finally:
        await _remove_scratch(dst, scratch, made, stopped=not finished)
        await asyncio.gather(src.close(), dst.close(), return_exceptions=True)


def _fields(s: Setting) -> dict[str, int]:
    return {"concurrency": s.concurrency, "block_size": s.block_size,
            "single_put_max": s.single_put_max}
