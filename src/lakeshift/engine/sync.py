"""`lakeshift sync`: delta passes over a job's partitions (issue 11).

A pass is one `run` of the job (engine/jobrunner.py: claims, leases, heartbeat, records)
whose per-partition work is :class:`SyncMode`: the partition's window of modification
times ``[start, end)`` selects what the one pipeline (engine/pipeline.py) copies, its
change source decides what is listed (the partition's listing; only the folders of a
``--path-template`` inside the window; the keys of ``--files-from``; an S3 Inventory
report), and ``--delete`` removes destination objects whose source is gone, as one more
action on ``pipeline_pool.drive``.  Every window is a row of ``lakeshift_sync_windows``
and of the ADF delta table; a failed or interrupted partition does not advance its window.
"""

from __future__ import annotations

import asyncio
import shlex
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping

from lakeshift.control.records import Job, KeySpan
from lakeshift.control.repository import ControlDB, PartitionStats
from lakeshift.engine.events import EventBus, ObjectDone, WindowCount
from lakeshift.engine.jobrunner import ClaimedPartition
from lakeshift.engine.pipeline import (
    run_pipeline,
)
from lakeshift.engine.renames import NewNames
from lakeshift.engine.schedule import follow_schedule, run_once
from lakeshift.engine.sync_keyed import _each, _inside, _inventory_items, _keyed, _Tally
from lakeshift.model import ObjectInfo, RunResult
from lakeshift.plan.inventory import Inventory, load_inventory
from lakeshift.plan.source import SourceSpec, destination_root
from lakeshift.plan.windows import DeleteCap, PathTemplate, Window, delta_window, utc

#: --delete candidates are written to the DB in batches of this many; the deletion phase
#: reads them back as many at a time.
CANDIDATE_BATCH = 500


@dataclass(frozen=True)
class SyncSettings:
    """One pass's settings (the API validated them)."""

    now: datetime
    lag: timedelta
    overlap: timedelta = timedelta(0)
    path_template: PathTemplate | None = None
    #: --files-from: keys relative to the source root, sorted.  A keyed pass examines no
    #: window: its windows are recorded as ``keyed`` and move no partition's start.
    files_from: tuple[str, ...] | None = None
    #: The keys are source keys, the source root included (a ``lakeshift failures`` CSV).
    files_from_source_keys: bool = False
    #: --inventory: the report, read once per pass.
    inventory: Inventory | None = None
    delete: bool = False
    max_delete: DeleteCap = field(default_factory=DeleteCap)
    #: The ADF delta table every window is recorded in.
    adf_delta_table: str = "s3_partition_delta_control_table"
    #: The partitions came from that table (--adf-delta-table): windows start at its
    #: max(JobRunTime) of successful rows.
    windows_from_adf: bool = False
    #: More for the pass's run row to record with its settings (the S3 endpoint the pass
    #: uses and where it came from: the monitor shows them, as for a `run`).
    recorded: dict[str, Any] = field(default_factory=dict)


@dataclass
class WindowOutcome:
    partition: str
    start: datetime | None
    end: datetime
    state: str = "pending"
    copied: int = 0
    skipped: int = 0
    failed_objects: int = 0
    deleted: int = 0
    error: str | None = None
    #: Objects seen modified at or after ``end`` (the next pass takes them).
    held_back: int = 0


@dataclass
class _PartitionPass:
    window: Window
    window_id: int
    outcome: WindowOutcome
    #: What a path template let the pass list, when not the whole partition: only the
    #: failures there are cleared when its window ends (repo_sync ``finish_window``).
    listed: tuple[KeySpan, ...] | None = None


def partition_label(row: Any) -> str:
    """The PartitionPrefix a partition has in the ADF delta table."""
    if row["adf_prefix"] is not None:
        return str(row["adf_prefix"])
    label = str(row["prefix"])
    if row["range_start"] or row["range_end"]:
        label += f"[{row['range_start'] or ''},{row['range_end'] or ''})"
    return label


class SyncMode:
    """The per-partition work of a sync pass (a ``jobrunner.PartitionMode``)."""

    #: A cursor left by a pass that died (its lease expired) belongs to that pass's
    #: window, not to this one, which ends later; keys at or before it may have changed
    #: since.  Each partition is claimed with no cursor and no counters and listed from
    #: its start (its objects counted once, by this pass's claim).
    from_start = True

    def __init__(self, db: ControlDB, job: Job, settings: SyncSettings,
                 historical_start: datetime | None, historical_ids: set[int]) -> None:
        self.db = db
        #: Partitions a copy run (plan/run) finished before this pass.
        self.historical_ids = historical_ids
        self.job = job
        self.settings = settings
        self.historical_start = historical_start
        self.outcomes: list[WindowOutcome] = []
        self.deleted_keys: list[str] = []
        self._passes: dict[int, _PartitionPass] = {}
        #: --files-from keys (full) that lie in no partition of the job.
        self.stray_keys: tuple[str, ...] = ()
        # --delete, across the pass: destination objects listed, the largest batch of
        # candidates held, deletions per partition, windows waiting for the deletions and
        # why a partition's window fails after all.
        self.destination_objects = 0
        self.peak_batch = 0
        #: The pass's run (known once a partition is claimed).
        self.run_id: int | None = None
        self.deleted_count: dict[int, int] = {}
        #: Source keys that were gone when listed but there again when about to be deleted
        #: (their copies were kept, or copied back).
        self.reappeared: list[str] = []
        #: Candidates dropped because the pass had failures in their folder.
        self.held_by_failures = 0
        #: The pass's progress subscribers (the deletion phase reports through them too).
        self.subscribers: list[Any] = []
        #: --delete: the source objects listed with no destination copy of their name (a
        #: renamed object's new name is one), and the renames paired — (old destination
        #: key, new destination key), the new name copied before the old was deleted.
        self.new_names: NewNames | None = None
        self.renames: list[tuple[str, str]] = []
        self._deferred: list[tuple[RowMapping, _PartitionPass, PartitionStats]] = []
        self._deferred_failure: dict[int, str] = {}

    # -- the window ---------------------------------------------------------------------

    def window_for(self, row: RowMapping) -> Window:
        """Start: the end of the partition's last succeeded window; a partition whose
        windows all failed retries from the first one's start; else the historical run's
        start less the lag (the template's seeding); else nothing (a full copy)."""
        st = self.settings
        if st.windows_from_adf:
            last = self.db.adf_delta_last_success(st.adf_delta_table, partition_label(row))
        else:
            last = self.db.last_sync_end(row["id"])
            if last is None:
                first = self.db.first_sync_window(row["id"])
                if first is not None:
                    last = first[0]
                elif row["id"] in self.historical_ids and self.historical_start is not None:
                    # The lag applies here too: an object whose upload started just before
                    # the historical run may have been missing from its listing.
                    last = self.historical_start - st.lag
        window = delta_window(last, st.now, st.lag, st.overlap if last is not None
                              else timedelta(0))
        created = st.inventory.created if st.inventory is not None else None
        if created is not None and utc(created) - st.lag < window.end:
            # A report is a snapshot: what changed after S3 took it is not in it, and, as
            # for a listing, an upload begun just before it may be missing from it (the
            # lag).  So the window ends the lag before the report's date: the next pass
            # starts there; the report's objects modified since are held back for it.
            end = (utc(created) - st.lag).replace(microsecond=0)
            start = window.start if window.start is None else min(window.start, end)
            window = Window(start, end)
        return window

    # -- PartitionMode -----------------------------------------------------------------

    async def run(self, part: ClaimedPartition) -> None:
        row = part.row
        self.run_id = part.run_id
        window = await asyncio.to_thread(self.window_for, row)
        ids = await asyncio.to_thread(self.db.start_windows, self.job.id, part.run_id,
                                      [(row["id"], window.start, window.end)])
        p = _PartitionPass(window, ids[row["id"]],
                           WindowOutcome(partition_label(row), window.start, window.end))
        self._passes[row["id"]] = p
        root = destination_root(part.dst)
        st = self.settings
        if st.files_from is not None:
            if self.stray_keys:
                # Keys in no partition of the job: the first partition of the pass records
                # them as failures (they would otherwise vanish without a word).
                stray, self.stray_keys = self.stray_keys, ()
                for k in stray:
                    part.events.emit(ObjectDone(k, 0, "failed", "outside-partitions",
                                                "named by --files-from but in no partition "
                                                "of the job (see `lakeshift status --job "
                                                f"{shlex.quote(self.job.name)}`)"))
            keys = [k if st.files_from_source_keys else row["rel_base"] + k
                    for k in st.files_from]
            await _keyed(part, root, _each([(k, None) for k in sorted(keys)
                                            if _inside(part.spec, k)]))
            return
        if st.inventory is not None:
            tally = _Tally(window)
            await _keyed(part, root, _inventory_items(st.inventory, part.spec, tally))
            self._counted(part, p, tally)
            return
        #: Destination keys of renamed sources (--invalid-names encode, collisions), in the
        #: window or not: their copies have a source.
        renamed: set[str] = set()
        #: Deletion candidates not yet written to the DB (at most CANDIDATE_BATCH).
        batch: list[tuple[str, str, int]] = []

        def flush() -> None:
            if batch:
                self.db.add_delete_candidates(part.run_id, row["id"], batch)
                batch.clear()

        def on_dest(rel: str, d: ObjectInfo, has_source: bool) -> Awaitable[None] | None:
            self.destination_objects += 1
            if not has_source and not d.is_dir_marker:
                batch.append((part.spec.rel_base + rel, d.key, d.size))
                self.peak_batch = max(self.peak_batch, len(batch))
                if len(batch) >= CANDIDATE_BATCH:
                    # One write of a bounded batch keeps memory flat however many objects
                    # are gone; the merge awaits it, made in a thread (the loop stays free).
                    return asyncio.to_thread(flush)
            return None

        on_dest_cb = on_dest if st.delete else None

        def on_new(name: str, s: ObjectInfo) -> None:
            assert self.new_names is not None
            self.new_names.add(int(row["id"]), s, root + name)

        tally = _Tally(window)
        specs = _specs(part.spec, st.path_template, window)
        if specs != [(part.spec, False)]:
            p.listed = tuple(KeySpan(s.list_prefix, s.start_after, s.range_start, s.range_end)
                             for s, _ in specs)
        for spec, folder in specs:
            await run_pipeline(part.src, part.dst, spec, root, part.opts, part.events,
                               part.slots, part.policy, part.watermark, part.pacing,
                               select=tally.every if folder else tally.select,
                               on_dest=on_dest_cb,
                               on_renamed=renamed.add if st.delete else None,
                               on_unmatched=on_new if self.new_names is not None else None,
                               copy_unmatched=st.delete)
        self._counted(part, p, tally)
        if st.delete:
            await asyncio.to_thread(flush)
            if renamed:
                await asyncio.to_thread(self.db.drop_delete_candidates, part.run_id,
                                        sorted(renamed))

    @staticmethod
    def _counted(part: ClaimedPartition, p: _PartitionPass, tally: _Tally) -> None:
        p.outcome.held_back = tally.held_back
        part.events.emit(WindowCount(p.outcome.partition, p.window.start, p.window.end,
                                     tally.selected, tally.held_back))

    async def delete_found(self, run: RunResult, store_options: Any, opts: Any) -> None:
        """The pass's deletion phase: :func:`lakeshift.engine.sync_delete.delete_found`."""
        from lakeshift.engine.sync_delete import delete_found

        await delete_found(self, run, store_options, opts)

    async def finished(self, part: ClaimedPartition | None, row: RowMapping, state: str,
                       error: str | None, stats: PartitionStats) -> None:
        p = self._passes.pop(row["id"], None)
        if p is None:
            return  # ended before its window was taken (a store could not be opened)
        window_state = "interrupted" if state == "pending" else state
        keyed = self.settings.files_from is not None and window_state != "interrupted"
        if keyed:
            # Not "succeeded": only the named keys were looked at, not the window.
            window_state = "keyed" if window_state == "succeeded" else "keyed-failed"
        o = p.outcome
        o.state, o.error = window_state, error
        o.copied, o.skipped, o.failed_objects = stats.copied, stats.skipped, stats.failed_objects
        self.outcomes.append(o)
        if self.settings.delete and window_state == "succeeded":
            # Its deletions come after every partition's listing: the window ends then.
            self._deferred.append((row, p, stats))
            return
        await self._finish_window(row, p, stats, keyed)

    async def _finish_window(self, row: RowMapping, p: _PartitionPass, stats: PartitionStats,
                             keyed: bool = False) -> None:
        o = p.outcome
        call = asyncio.to_thread
        await call(self.db.finish_window, p.window_id, o.state, stats, o.deleted, o.error,
                   p.listed)
        if o.state != "interrupted" and not keyed:
            await call(self.db.adf_delta_record, self.settings.adf_delta_table,
                       partition_label(row), p.window.end, o.state == "succeeded")

    def deferred_windows(self) -> tuple[list[tuple[dict[str, Any], Any, PartitionStats]], int]:
        """A --delete pass's windows that wait for its deletions, and the destination
        objects listed: what a Dask worker hands to the driver, which deletes once every
        partition is listed (scale/driver.py, :meth:`adopt_windows`)."""
        return ([(dict(row), p, stats) for row, p, stats in self._deferred],
                self.destination_objects)

    def adopt_windows(self, windows: list[tuple[dict[str, Any], Any, PartitionStats]],
                      destination_objects: int, run_id: int) -> None:
        """Take over windows another process's pass deferred (:meth:`deferred_windows`)."""
        self._deferred.extend(windows)  # type: ignore[arg-type]
        self.destination_objects += destination_objects
        self.run_id = run_id

    async def finish_deferred(self, run: RunResult) -> None:
        """The windows of a --delete pass, once its deletions are done (or refused).  A
        partition that fails here (the cap, a deletion) is failed in the DB as well, so it
        is retried, and its window does not advance."""
        failing = {int(row["id"]): self._deferred_failure[int(row["id"])]
                   for row, _, _ in self._deferred if int(row["id"]) in self._deferred_failure}
        if failing:
            await asyncio.to_thread(self.db.fail_sync_partitions, failing)
        for row, p, stats in self._deferred:
            pid_ = int(row["id"])
            p.outcome.deleted = self.deleted_count.get(pid_, 0)
            error = self._deferred_failure.get(pid_)
            if error is not None:
                p.outcome.state, p.outcome.error = "failed", error
                run.succeeded -= 1
                run.failed += 1
                run.errors.append((p.outcome.partition, error))
            await self._finish_window(row, p, stats)
        self._deferred.clear()




def _specs(spec: SourceSpec, template: PathTemplate | None,
           window: Window) -> list[tuple[SourceSpec, bool]]:
    """What to list for a partition, in key order, each with whether it is a template
    folder (every object in it is taken) or not (the window selects by modification
    time): the partition itself; or with a path template the template's folders inside
    the window (its static prefix when the window has no start) and, when the partition
    is wider than the template's static prefix, the key ranges before and after it (the
    template says nothing about the objects there).  A partition that holds none of the
    template's folders is listed whole."""
    if template is None or not _holds(spec, spec.rel_base + template.static_prefix):
        return [(spec, False)]
    static = spec.rel_base + template.static_prefix
    folders = [template.static_prefix] if window.start is None else list(
        template.prefixes(window))
    out: list[tuple[SourceSpec, bool]] = []
    for folder in folders:
        narrow = spec.rel_base + folder
        if narrow.startswith(spec.list_prefix):
            item = SourceSpec(narrow, spec.rel_base, range_start=spec.range_start,
                              range_end=spec.range_end)
        elif spec.list_prefix.startswith(narrow):
            item = spec
        else:
            continue
        # A partition narrower than several folders would be listed once per folder.
        if (item, True) not in out:
            out.append((item, True))
    if static.startswith(spec.list_prefix) and static != spec.list_prefix:
        after = static[:-1] + chr(ord(static[-1]) + 1)  # the first key past the prefix
        if spec.range_start is None or spec.range_start < static:
            end = static if spec.range_end is None else min(static, spec.range_end)
            out.insert(0, (SourceSpec(spec.list_prefix, spec.rel_base,
                                      range_start=spec.range_start, range_end=end), False))
        if spec.range_end is None or spec.range_end > after:
            start = after if spec.range_start is None else max(after, spec.range_start)
            # Listed from past every key of the prefix (a store without start-after lists
            # from the start and the range drops those keys).
            out.append((SourceSpec(spec.list_prefix, spec.rel_base,
                                   start_after=static + "\U0010ffff", range_start=start,
                                   range_end=spec.range_end), False))
    return out


def _holds(spec: SourceSpec, folder: str) -> bool:
    """Whether some key starting with ``folder`` can be in the partition ``spec``."""
    if not (folder.startswith(spec.list_prefix) or spec.list_prefix.startswith(folder)):
        return False
    if spec.range_end is not None and spec.range_end <= folder:
        return False
    start = spec.range_start
    return start is None or start <= folder or start.startswith(folder)




__all__ = ["EventBus", "Inventory", "SyncMode", "SyncSettings", "WindowOutcome",
           "follow_schedule", "load_inventory", "partition_label", "run_once"]


# -- a pass (engine/schedule.py runs one, or a schedule of them) ---------------------------


@dataclass
class PassResult:
    run: Any
    outcomes: list[WindowOutcome]
    #: The first 1,000 destination keys deleted (all are in lakeshift_sync_deletions).
    deleted_keys: list[str]
    deleted: int = 0
    #: The most --delete candidates held in memory at once (at most CANDIDATE_BATCH).
    peak_candidates: int = 0
    #: Renames paired by --delete: (old destination key, new destination key).
    renames: list[tuple[str, str]] = field(default_factory=list)
    #: --delete candidates kept (source reappeared, or a failure of the pass above them).
    kept: int = 0
    #: False on Dask: renames are not paired there (``renames`` stays empty; each new name
    #: is copied by the worker that lists it and the old name is one of the deletions).
    renames_paired: bool = True


async def sync_pass(db: ControlDB, job: Job, settings: SyncSettings, opts: Any,
                    store_options: Any, batch_count: int, subscribers: Any,
                    lease_s: float, heartbeat_s: float) -> PassResult:
    """One delta pass over every partition of the job (a `run` whose mode is sync)."""
    from lakeshift.engine.jobrunner import run_job

    call = asyncio.to_thread
    historical_start, historical_ids = await call(prepare_pass, db, job, settings)
    mode = SyncMode(db, job, settings, historical_start, historical_ids)
    if settings.files_from is not None:
        rows = await call(db.partitions, job.id)
        specs = [SourceSpec(r["prefix"], r["rel_base"], range_start=r["range_start"],
                            range_end=r["range_end"]) for r in rows]
        whole = settings.files_from_source_keys
        mode.stray_keys = tuple(
            key if whole else (specs[0].rel_base if specs else "") + key
            for key in settings.files_from
            if not any(_inside(s, key if whole else s.rel_base + key) for s in specs))
    run_settings = pass_run_settings(settings)
    try:
        async def deletions(run: RunResult) -> None:
            await mode.delete_found(run, store_options, opts)
            await mode.finish_deferred(run)

        mode.subscribers = list(subscribers or [])
        if settings.delete:
            mode.new_names = NewNames()
        result = await run_job(db, job, batch_count, opts, store_options, subscribers,
                               lease_s=lease_s, heartbeat_s=heartbeat_s, mode=mode,
                               run_settings=run_settings,
                               before_close=deletions if settings.delete else None)
    finally:
        if settings.inventory is not None:
            settings.inventory.close()
        if mode.new_names is not None:
            await call(mode.new_names.close)  # waits for its writer thread
        if mode.run_id is not None:
            # Windows not finished: partitions lost to another process (their lease ran
            # out), or a pass stopped before its deletions were done.
            await call(db.close_pending_windows, mode.run_id)
            if settings.delete:
                await call(db.clear_delete_candidates, mode.run_id)
    return PassResult(result, mode.outcomes, mode.deleted_keys,
                      sum(mode.deleted_count.values()), mode.peak_batch, mode.renames,
                      mode.held_by_failures + len(mode.reappeared))


def prepare_pass(db: ControlDB, job: Job, settings: SyncSettings
                 ) -> tuple[datetime | None, set[int]]:
    """Before a pass's run: the start of the job's historical run and the partitions it
    finished (``SyncMode``'s inputs), the ADF delta table, the partitions made pending
    with no cursor.  A pass of this host that died leaves its partitions running under a
    lease that has not expired yet: they are expired first, so their cursors are cleared
    too (a pass never resumes a dead pass's cursor: its window differs).  While another
    pass (or run) of the job is live nothing is reset: this pass takes only what is still
    pending, like a second `run` (it neither resets that pass's partitions nor redoes
    those it finished)."""
    rows = db.partitions(job.id)
    historical_ids = {int(r["id"]) for r in rows if r["state"] == "succeeded"}
    historical_start = db.historical_run_start(job.id)
    db.ensure_adf_delta_table(settings.adf_delta_table)
    db.expire_dead_local(job.id, socket.gethostname())
    db.close_dead_runs(job.id)
    db.prepare_sync_pass(job.id)
    return historical_start, historical_ids


def pass_run_settings(settings: SyncSettings) -> dict[str, Any]:
    """What a pass's run row records of its settings."""
    return {"mode": "sync", "lag_s": settings.lag.total_seconds(),
            "overlap_s": settings.overlap.total_seconds(), "delete": settings.delete,
            "window_end": settings.now.isoformat(),
            "path_template": settings.path_template.text
            if settings.path_template else None, **settings.recorded}
