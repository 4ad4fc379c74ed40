"""``verify``, ``check`` and ``scan`` (``lakeshift verify``, ``check``, ``scan``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lakeshift import model
from lakeshift.api.common import MiB, _blocking, _control, _make_folders, _remove_folders
from lakeshift.control import DEFAULT_DB
from lakeshift.engine.copy_options import bandwidth_arg
from lakeshift.engine.events import EventBus, Subscriber
from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.plan.source import (
    destination_config,
    source_avoiding_destination,
    source_config,
)
from lakeshift.sizes import size_arg
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.urls import parse_url

if TYPE_CHECKING:
    from lakeshift.engine.verify import Pair


async def verify_async(source: str | None = None, destination: str | None = None, *,
                       job: str | None = None, db: str = DEFAULT_DB, deep: bool = False,
                       report: str | Path | None = None, concurrency: int = 16,
                       include: Sequence[str] = (), exclude: Sequence[str] = (),
                       invalid_names: str = "fail", adaptive: bool = True,
                       max_requests_per_second: float | None = None,
                       max_bandwidth: int | str | None = None, check_times: bool = False,
                       list_verified: bool = False, empty_dirs: bool | None = None,
                       store_options: StoreOptions | None = None,
                       subscribers: list[Subscriber] | None = None) -> model.VerifyResult:
    """Prove that ``destination`` holds exactly what ``source`` holds, or every partition of
    ``job`` (``lakeshift verify``).  Writes ``REPORT.csv`` (the differences) and
    ``REPORT.json`` (the summary), creating REPORT's folder if needed; the default REPORT is
    ``lakeshift-verify-YYYYMMDD-HHMMSS`` in the current folder.  ``list_verified`` also
    writes ``REPORT-verified.csv``: one row per object proven equal, with the proof and the
    checksums compared, written as each is proven.  ``result.exit_code`` is 1 on
    any difference.  ``subscribers`` hear the source listing (``Listed``, ``ListingDone``),
    the bytes hashed (``BytesMoved``) and throttling (``Throttled``).  ``check_times``: a
    kept original modification time that differs is a difference too.  ``empty_dirs``: as
    the copy was run (``--empty-dirs``; None: copy's default, on where both sides have real
    directories): the source's folders (empty directories) are checked as folders at the
    destination and counted under the proof ``folder``; a job's own setting with ``job``."""
    from lakeshift.engine.verify import Report, VerifiedReport, VerifyOptions, write_summary
    from lakeshift.engine.verify import verify_async as verify_pairs

    so = store_options or StoreOptions()
    opts = VerifyOptions(deep=deep, concurrency=concurrency, include=tuple(include),
                         exclude=tuple(exclude), invalid_names=invalid_names,
                         adaptive=adaptive, max_requests_per_second=max_requests_per_second,
                         max_bandwidth=bandwidth_arg(max_bandwidth), check_times=check_times,
                         empty_dirs=empty_dirs)
    if job:
        if source or destination:
            raise UsageError("give SRC DST, or --job, not both")
        pairs, label, saved = await asyncio.to_thread(_job_pairs, db, job, so)
        opts = replace(opts, **saved)
    elif source and destination:
        dst = destination_config(destination, so)
        pairs = [(source_avoiding_destination(source_config(source, so), dst), dst, None,
                  None)]
        label = f"{source} → {destination}"
    else:
        raise UsageError("verify needs SRC DST (or --job NAME)")
    opts.validate()
    prefix = report or Path(time.strftime("lakeshift-verify-%Y%m%d-%H%M%S"))
    if str(prefix).lower().endswith((".csv", ".json")):  # a file's name typed: its stem
        prefix = str(prefix).rsplit(".", 1)[0]
    csv_path, json_path = Path(f"{prefix}.csv"), Path(f"{prefix}.json")
    listed_path = Path(f"{prefix}-verified.csv") if list_verified else None
    made = await asyncio.to_thread(_make_folders, csv_path.parent)
    written: list[Path] = []
    try:
        with ExitStack() as files:
            handles: list[TextIO] = []
            for path in (csv_path, listed_path):
                if path is None:
                    continue
                try:
                    # A name that is not valid UTF-8 (a local file's raw bytes) is written
                    # escaped.
                    fh = await asyncio.to_thread(open, path, "w", newline="",
                                                 encoding="utf-8", errors="backslashreplace")
                except OSError as e:
                    raise UsageError(f"cannot write the report {path}: {e.strerror}"
                                     ) from None
                written.append(path)
                handles.append(files.enter_context(fh))
            listed = VerifiedReport(handles[1]) if listed_path is not None else None
            result = await verify_pairs(pairs, opts, Report(handles[0]),
                                        events=EventBus(subscribers), verified_report=listed)
    except (LakeshiftError, BaseExceptionGroup):
        # Stopped before a verdict (credentials rejected, a missing container): a report
        # with only its header would read as "no differences".  (After Ctrl-C the rows
        # found so far stay.)
        for path in written:
            path.unlink(missing_ok=True)
        _remove_folders(made)
        raise
    extra: dict[str, Any] = {"verified_what": label, "deep": deep,
                             "report_csv": str(csv_path)}
    if listed_path is not None:
        extra["verified_csv"] = str(listed_path)
    s = await asyncio.to_thread(write_summary, json_path, result, extra)
    return model.VerifyResult(
        verified_what=label, deep=deep, report_csv=str(csv_path), report_json=str(json_path),
        checked=s["checked"], verified=s["verified"], missing=s["missing"], extra=s["extra"],
        size=s["size"], checksum=s["checksum"], times=s["time"],
        unverifiable=s["unverifiable"],
        differences=s["differences"], renamed=s["renamed"],
        unverifiable_reasons=dict(s["unverifiable_reasons"]), bytes_read=s["bytes_read"],
        duration_s=s["duration_s"], exit_code=result.exit_code, summary=s,
        proofs=dict(s["proofs"]), verified_csv=s.get("verified_csv"))


verify = _blocking(verify_async)


def _job_pairs(db: str, job: str, so: StoreOptions
               ) -> tuple[list[Pair], str, dict[str, Any]]:
    """Each partition of ``job`` as a verify pair (its whole prefix or range, whatever its
    cursor), the label of the report, and the job's settings verify follows (its
    --invalid-names, and --empty-dirs or --folder-markers keep, as VerifyOptions fields)."""
    from lakeshift.plan.jobplan import job_store_options, partition_spec

    control = _control(db)
    try:
        j = control.job(job)
        options = job_store_options(j) if so == StoreOptions() else so
        pairs: list[Pair] = []
        for r in control.partitions(j.id):
            dst = StoreConfig(parse_url(r["destination"]), options)
            pairs.append((source_avoiding_destination(
                StoreConfig(parse_url(r["source"]), options), dst), dst,
                partition_spec(r, after_cursor=False), None))
        n = len(pairs)
        return (pairs, f"job {job} ({n} partition{'' if n == 1 else 's'})",
                {"invalid_names": str(j.options.get("invalid_names", "fail")),
                 # The copy keeps the markers under --folder-markers keep whatever
                 # --empty-dirs says (pipeline.run_pipeline's keep_markers).
                 "empty_dirs": True if j.options.get("folder_markers") == "keep"
                 else j.options.get("empty_dirs")})
    finally:
        control.close()


async def check_async(source: str, destination: str, *,
                      store_options: StoreOptions | None = None) -> model.CheckResult:
    """Test both sides before a migration (``lakeshift check``): credentials, reachability,
    list and read on the source, write and delete of a probe under the destination, clock
    skew.  A failed step is a line of the result, not an exception."""
    from lakeshift.engine.check import check_pair

    src = source_config(source, store_options)
    dst = destination_config(destination, store_options)
    return model.CheckResult(source, destination, tuple(await check_pair(src, dst)))


check = _blocking(check_async)


# -- scan --------------------------------------------------------------------------------


async def scan_async(source: str, destination: str | None = None, *,
                     prices: str | Path | None = None, sample: int = 100,
                     head_all: bool = False, block_size: int | str = 8 * MiB,
                     calibrate: bool = True,
                     store_options: StoreOptions | None = None) -> model.ScanResult:
    """What a migration of ``source`` would meet, before it starts (``lakeshift scan``).

    One streamed listing: objects and bytes by top-level prefix and storage class; what
    cannot be copied as it is (archived, invalid names, colliding metadata keys, SSE-C,
    file/folder collisions, folder markers, empty folders), each with a count and the first
    examples; versioning and request payment; a cost estimate from the price table
    (``prices``: a TOML file over the shipped one) and a duration estimate.  ``sample``
    objects get a HEAD (SSE-C, metadata, restores); ``head_all``: every one.  With a
    ``destination`` a small sample is copied to a temporary prefix there to time it (unless
    ``calibrate`` is false), then removed: nothing else is written.  An empty prefix is a
    UsageError."""
    from lakeshift.plan.prices import load_prices
    from lakeshift.plan.scan import ScanOptions
    from lakeshift.plan.scan import scan_async as scan_pair

    if sample < 0:
        raise UsageError("--sample must be 0 or more")
    table = await asyncio.to_thread(load_prices, prices)  # a file: off the loop
    opts = ScanOptions(sample=sample, head_all=head_all,
                       block_size=size_arg(block_size, "--block-size"), calibrate=calibrate)
    so = store_options or StoreOptions()
    src = source_config(source, so)
    dst = destination_config(destination, so) if destination else None
    # (Its listing counts what a copy to ``dst`` would list: not a linked destination.)
    return await scan_pair(src if dst is None else source_avoiding_destination(src, dst),
                           dst, table, opts)


scan = _blocking(scan_async)
