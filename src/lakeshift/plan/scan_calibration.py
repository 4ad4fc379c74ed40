"""``scan``'s calibration: how long a copy of what the scan counted would take.

With a destination, a small sample of readable objects (chosen by ``plan/scan.py`` as it
lists: at most ``SAMPLE_OBJECTS`` objects, ``SAMPLE_BYTES`` bytes, ``SAMPLE_OBJECT_MAX``
bytes each) is copied to a temporary prefix of it (``.lakeshift-scan-<random>/``) with
``engine/transfer.copy_object``, timed, and deleted with the folders the copy made: that is
all a scan writes.  Without one, or when the calibration cannot run or fails, the estimate
is at a stated default rate and a note says why.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, cast

from lakeshift.engine.events import EventBus
from lakeshift.engine.pipeline import check_reachable
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
from lakeshift.engine.transfer import TransferContext, copy_object
from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.model import DurationEstimate, ObjectInfo
from lakeshift.plan.source import destination_root
from lakeshift.stores.base import DirectoryWriter, Store

if TYPE_CHECKING:
    from lakeshift.plan.scan import ScanOptions, _Tally

MiB = 1024 * 1024
#: Without a destination to calibrate against: a stated rate.
DEFAULT_BYTES_PER_S = 50 * MiB
DEFAULT_OBJECTS_PER_S = 100.0
#: After a calibration stopped or failed: how long a copy the service already took may
#: take to land before the calibration's objects are deleted.
LATE_LANDING_S = 1.0
#: The calibration sample: at most this many objects, bytes, and bytes per object.
SAMPLE_OBJECTS = 32
SAMPLE_BYTES = 64 * MiB
SAMPLE_OBJECT_MAX = 16 * MiB
CALIBRATION_CONCURRENCY = 8


async def estimate_duration(src: Store, dst: Store | None, sample: list[ObjectInfo],
                            tally: _Tally, opts: ScanOptions, policy: RetryPolicy,
                            notes: list[str]) -> DurationEstimate:
    """How long a copy of the ``tally``'s objects would take: by a calibration copy of
    ``sample`` to ``dst``, else at the default rate (``notes`` then says why)."""
    default = DurationEstimate(
        max(tally.bytes / DEFAULT_BYTES_PER_S, tally.objects / DEFAULT_OBJECTS_PER_S),
        "default rate", DEFAULT_BYTES_PER_S, DEFAULT_OBJECTS_PER_S,
        detail=f"at a stated default of {DEFAULT_BYTES_PER_S // MiB} MiB/s and "
               f"{DEFAULT_OBJECTS_PER_S:.0f} objects/s, whichever takes longer")
    if dst is None or not opts.calibrate:
        return default
    if not sample:
        notes.append("no readable object small enough to calibrate with: default rate used")
        return default
    try:
        await check_reachable(dst.check_source, "destination", policy)
    except UsageError as e:
        notes.append(f"calibration skipped ({e}): default rate used")
        return default
    root = destination_root(dst)
    base = root + f".lakeshift-scan-{uuid.uuid4().hex[:12]}/"
    # A hierarchical destination makes the folders of what is written: those of the root
    # that are not there yet are the calibration's too, and go with it.
    made = await _missing_folders(dst, root, policy) if dst.capabilities.directories else []
    ctx = TransferContext(src, dst, opts.block_size, SlotPool(CALIBRATION_CONCURRENCY * 2),
                          policy, EventBus())
    written: list[str] = []
    gate = asyncio.Semaphore(CALIBRATION_CONCURRENCY)
    failed = False

    async def one(i: int, obj: ObjectInfo) -> None:
        nonlocal failed
        key = f"{base}{i:06d}"
        async with gate:
            if failed:
                return  # the calibration has failed: start nothing more
            written.append(key)
            try:
                await copy_object(ctx, obj, key)
            except BaseException:
                failed = True
                raise

    started = time.monotonic()
    stopped = False
    try:
        # Every copy started is waited for, failed or not, before the removal below: one
        # still in flight would land after it.
        outcomes = await asyncio.gather(*(one(i, o) for i, o in enumerate(sample)),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        elapsed = max(time.monotonic() - started, 1e-3)
    except LakeshiftError as e:
        notes.append(f"calibration copy failed ({e}): default rate used")
        return default
    except BaseException:
        stopped = True  # Ctrl-C, or the scan's task cancelled
        raise
    finally:
        if stopped or failed:
            # A request cut on this side may still be completed by the service (its body
            # was all sent): give it a moment to land before it is deleted.
            await asyncio.sleep(LATE_LANDING_S)
        await _remove(dst, written, [base, *reversed(made)], policy, notes)
    n, b = len(sample), sum(o.size for o in sample)
    per_obj = elapsed / n
    seconds = max(tally.objects * per_obj, tally.bytes / b * elapsed if b else 0.0)
    return DurationEstimate(
        seconds, "calibration", b / elapsed, n / elapsed, n, b,
        detail=f"{n} objects ({b} bytes) copied to the destination in {elapsed:.2f} s at "
               f"{CALIBRATION_CONCURRENCY} in flight, then removed; copy runs 32 in flight "
               "by default, so this errs long")


async def _missing_folders(dst: Store, root: str, policy: RetryPolicy) -> list[str]:
    """The folders of ``root`` ("a/", "a/b/"), from the first one not there."""
    parts = root.rstrip("/").split("/") if root else []
    for i in range(1, len(parts) + 1):
        folder = "/".join(parts[:i]) + "/"
        there = await retry(lambda f=folder: dst.is_folder(f), policy)  # type: ignore[misc]
        if not there and await retry(lambda f=folder: dst.exists(f.rstrip("/")),  # type: ignore[misc]
                                     policy) is None:
            return ["/".join(parts[:k]) + "/" for k in range(i, len(parts) + 1)]
    return []


async def _remove(dst: Store, keys: list[str], folders: list[str], policy: RetryPolicy,
                  notes: list[str]) -> None:
    """Delete the calibration's objects, then (hierarchical destinations) ``folders``: the
    calibration's own folder with whatever is in it, then the folders it made, the deepest
    first, each only while nothing is under it."""
    if not keys:
        return
    left = []
    for key in keys:
        try:
            await retry(lambda k=key: dst.delete(k), policy)  # type: ignore[misc]
        except LakeshiftError:
            left.append(key)
    if left:
        notes.append(f"could not remove {len(left)} calibration objects under {folders[0]}: "
                     "delete them by hand")
        return
    if not dst.capabilities.directories:
        return  # flat object stores have no folders to remove
    writer = cast(DirectoryWriter, dst)
    for i, folder in enumerate(folders):
        try:
            if i == 0:
                # The calibration's own folder (a unique name): everything in it is the
                # calibration's, also a write that landed late, so it goes recursively.
                await retry(lambda f=folder: writer.remove_directory(f, recursive=True),  # type: ignore[misc]
                            policy)
                continue
            page = await retry(lambda f=folder: dst.list_page(f), policy)  # type: ignore[misc]
            if page.objects:
                return  # something else is in it (and so in its parents)
            await retry(lambda f=folder: writer.remove_directory(f), policy)  # type: ignore[misc]
        except (LakeshiftError, OSError) as e:
            notes.append(f"could not remove the calibration folder {folder} ({e}): delete "
                         "it by hand")
            return

