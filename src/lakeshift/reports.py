"""The records the job, status, check, verify, scan, monitor and tune commands return.

Part of :mod:`lakeshift.model` (they are its names: ``lakeshift.model.JobStatus``, with
``__module__`` ``"lakeshift.model"``), kept in a module of their own so that a copy, which
needs none of them, does not pay for building ~27 dataclasses at start-up: each dataclass
compiles its generated methods when the class is created, about 1.5 ms apiece.  The
monitor's records (a run in detail, a partition run, a failure page, a job's metrics) are
defined in :mod:`lakeshift.monitor_reports`, loaded with these and re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from lakeshift import model
from lakeshift.model import Failure, RunResult
from lakeshift.monitor_reports import FailurePage as FailurePage
from lakeshift.monitor_reports import JobMetrics as JobMetrics
from lakeshift.monitor_reports import PartitionRunStatus as PartitionRunStatus
from lakeshift.monitor_reports import RunDetail as RunDetail
from lakeshift.monitor_reports import ThroughputSample as ThroughputSample


@dataclass(frozen=True)
class PartitionSpec:
    """One partition of a job as the planner cuts it: a prefix (or key range) of a source,
    and where its objects go."""

    source: str
    prefix: str
    rel_base: str
    destination: str
    range_start: str | None = None
    range_end: str | None = None
    cursor: str | None = None
    adf_prefix: str | None = None



@dataclass(frozen=True, slots=True)
class CheckLine:
    """One step of ``check``: ok, or what to fix (``exit_code`` says how bad: 2 or 3)."""

    side: str  # source | destination
    step: str
    ok: bool
    detail: str
    exit_code: int = 0


@dataclass(frozen=True, slots=True)
class CheckResult:
    source: str
    destination: str
    lines: tuple[CheckLine, ...]

    @property
    def ok(self) -> bool:
        return all(ln.ok for ln in self.lines)

    @property
    def exit_code(self) -> int:
        """0 when every step passed; else the worst step's code (3 credentials, 2 other)."""
        failed = [ln for ln in self.lines if not ln.ok]
        return max((ln.exit_code for ln in failed), default=0) or (2 if failed else 0)


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    """One row of a job's partition table.  Times are UTC."""

    seq: int
    state: str  # pending | running | succeeded | failed
    source: str
    prefix: str
    range_start: str | None
    range_end: str | None
    destination: str
    cursor: str | None
    attempts: int
    listed: int
    copied: int
    skipped: int
    failed_objects: int
    bytes: int
    duration_s: float
    throughput_bytes_per_s: float
    last_error: str | None
    lease_owner: str | None
    started_at: datetime | None
    finished_at: datetime | None
    adf_prefix: str | None
    #: How the state reads: the state itself, or for a partition ``running`` in the control
    #: DB that no running run holds (its run died) ``interrupted (lease expired; the next
    #: run takes it over)``.
    reads: str = ""


@dataclass(frozen=True, slots=True)
class RunStatus:
    """One ``run`` of a job (newest first in JobStatus.runs).  Times are UTC."""

    #: The run's id in the control DB (unique across jobs).
    id: int
    state: str
    owner: str
    batch_count: int
    partitions_succeeded: int
    partitions_failed: int
    copied: int
    bytes: int
    started_at: datetime | None
    finished_at: datetime | None
    settings: Mapping[str, object]
    #: The run's number within its job (1, 2, 3 …); None in a control DB that does not
    #: number runs.
    number: int | None = None


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job and its totals; ``partition_table`` and ``runs`` are filled when the job was
    asked for by name (``detail``)."""

    job: str
    destination: str
    created_at: datetime | None
    adf_table: str | None
    partitions: int
    pending: int
    running: int
    succeeded: int
    failed: int
    copied: int
    bytes: int
    failed_objects: int
    detail: bool = False
    partition_table: tuple[PartitionStatus, ...] = ()
    runs: tuple[RunStatus, ...] = ()
    #: ``partition_table`` is the job's partitions from this one (0: the first), when
    #: status was asked for a page of them (``offset``/``limit``); ``partitions`` counts
    #: them all.
    partition_table_offset: int = 0
    #: How many partitions ``partition_table`` was paged from: the job's, or those in one of
    #: ``partition_table_states`` when status was asked for some states only.
    partition_table_total: int = 0
    #: The states ``partition_table`` was chosen from, in the order it groups them (None:
    #: every partition, in order).
    partition_table_states: tuple[str, ...] | None = None
    #: The partitions by state: how many, and their objects and bytes (one row per state
    #: any partition is in, in the order pending, running, succeeded, failed).
    by_state: tuple[StateTotals, ...] = ()
    #: How many partitions are key ranges (``--partition-by auto``); the others are
    #: prefixes.  Counted when the job was asked for by name (``detail``).
    key_range_partitions: int = 0
    #: The sync schedule followed for this job (``every 15m``, ``cron */15 * * * *``) and
    #: when its next pass starts (UTC; None when no scheduler is running).
    sync_schedule: str | None = None
    next_sync_at: datetime | None = None
    #: The job's newest sync pass (None for a job never synced).  A synced job's ``copied``
    #: and ``bytes`` are summed over all its runs and passes, not its partitions' last pass.
    last_sync_pass: RunStatus | None = None
    #: Of the ``running`` partitions, those no running run holds: a run that died left them
    #: (they read as interrupted; the next run takes them over).
    interrupted: int = 0
    #: The ADF delta template's table the job was made from (``sync --adf-delta-table``,
    #: ``plan --adf-delta-table``; kept by ``plan --replan``): its partitions are the
    #: table's ``PartitionPrefix`` values and each sync pass's window starts where the
    #: table's last success ended.  None for a job made otherwise.
    adf_delta_table: str | None = None


@dataclass(frozen=True, slots=True)
class StateTotals:
    """The partitions of a job in one state (``lakeshift status --job``'s summary): how
    many, objects listed, copied and failed in them, and bytes copied."""

    state: str
    partitions: int
    listed: int
    copied: int
    bytes: int
    failed_objects: int


@dataclass(frozen=True, slots=True)
class StatusResult:
    db: str  # the control DB's URL, password redacted
    jobs: tuple[JobStatus, ...]


@dataclass(frozen=True, slots=True)
class PlanResult:
    """The planned (or, with ``show``, the existing) job, with its partition table."""

    db: str
    job: JobStatus
    #: True when this call wrote the job; False for ``show`` of an existing one.
    created: bool = True
    #: The ADF delta table the written job's partitions came from (given, or kept by a
    #: replan of a job ``sync --adf-delta-table`` made); None otherwise.
    adf_delta_table: str | None = None


@dataclass(frozen=True, slots=True)
class FailuresResult:
    job: str
    #: Rows of the failure log; empty when they were streamed to ``csv_file`` instead.
    failures: tuple[Failure, ...]
    count: int
    csv_file: str | None = None
    #: The rows by error kind (archived, forbidden, …), skipped or not; adds up to count.
    by_kind: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``verify`` found; the differences themselves are in ``report_csv``."""

    verified_what: str
    deep: bool
    report_csv: str
    report_json: str
    checked: int
    verified: int
    missing: int
    extra: int
    size: int
    checksum: int
    unverifiable: int
    differences: int
    renamed: int
    unverifiable_reasons: Mapping[str, int]
    bytes_read: int
    duration_s: float
    exit_code: int
    #: Exactly what was written to ``report_json`` (the CLI's ``--json`` prints it).
    summary: Mapping[str, object]
    #: Kept original modification times that differ (only counted with ``check_times``).
    times: int = 0
    #: Verified objects by the proof each got (``source-md5``, ``read-md5``,
    #: ``multipart-etag``: the summary's ``proofs``).
    proofs: Mapping[str, int] = field(default_factory=dict)
    #: With ``list_verified``: the CSV of every object proven equal (one row each: name,
    #: both keys, size, proof, the checksums compared); else None.
    verified_csv: str | None = None


@dataclass(frozen=True, slots=True)
class SyncWindow:
    """One partition's window in a sync pass: modification times ``[start, end)`` (UTC;
    start None = everything, a full copy) and what the pass did with it."""

    partition: str
    start: datetime | None
    end: datetime
    state: str  # succeeded | failed | interrupted
    copied: int
    skipped: int
    failed_objects: int
    deleted: int
    error: str | None
    #: Objects seen modified at or after ``end``: left to the next pass.
    held_back: int = 0


@dataclass
class SyncResult:
    """What ``lakeshift.sync`` did: its last pass (``run``: partitions, objects, bytes), that
    pass's windows, and the destination objects that pass deleted (--delete)."""

    job: str
    run: RunResult
    windows: tuple[SyncWindow, ...] = ()
    passes: int = 1
    deleted: int = 0
    #: Destination keys the pass deleted (the first 1,000; every one is in
    #: lakeshift_sync_deletions).
    deleted_keys: tuple[str, ...] = ()
    #: With a schedule: when the next pass would have started; the signal that stopped it.
    next_run_at: datetime | None = None
    stopped_by: str | None = None
    #: Objects renamed at the source that --delete paired: (old destination key, new
    #: destination key); the new name was copied before the old one was deleted.
    renames: tuple[tuple[str, str], ...] = ()
    #: Destination objects --delete found without a source but kept: the source was
    #: there again when asked before the deletion, or the pass recorded a failure at or
    #: above its key (it could not see all there).
    kept: int = 0
    #: False for a pass on Dask: renames are not paired there (``renames`` is empty; a
    #: renamed object's new name was copied by the worker that listed it, its old name is
    #: among the deletions).
    renames_paired: bool = True

    @property
    def exit_code(self) -> int:
        if self.stopped_by == "SIGINT":
            return 130
        if self.stopped_by == "SIGTERM":
            return 143
        return self.run.exit_code


# -- scan (lakeshift.scan) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScanGroup:
    """Objects and bytes under one top-level prefix, or of one storage class."""

    name: str
    objects: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ScanFinding:
    """One kind of object that cannot be copied as it is: how many, the first examples, and
    how it was found (``checked_by``: "listing", or "HEAD of N objects")."""

    kind: str  # forbidden | dangling-link | symlink-loop | not-a-file | archived
    #            | archived-restored | invalid-name | metadata-collision | sse-c
    #            | file-folder-collision | folder-marker | empty-folder | unknown-storage-class
    objects: int
    bytes: int
    examples: tuple[str, ...]
    checked_by: str
    advice: str


@dataclass(frozen=True, slots=True)
class CostLine:
    what: str  # e.g. "source egress", "source GET requests"
    quantity: float
    unit: str  # GB, requests
    amount: float


@dataclass(frozen=True, slots=True)
class CostEstimate:
    currency: str
    total: float
    lines: tuple[CostLine, ...]
    #: Where the figures come from: the price table's region, date and source pages.
    region: str
    date: str
    sources: tuple[str, ...]
    price_file: str


@dataclass(frozen=True, slots=True)
class DurationEstimate:
    seconds: float
    #: "calibration" (a sample copied to the destination and removed) or "default rate".
    method: str
    bytes_per_s: float
    objects_per_s: float
    sample_objects: int = 0
    sample_bytes: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What ``scan`` found under a source (and about its destination, when given)."""

    source: str
    destination: str | None
    objects: int
    bytes: int
    by_prefix: tuple[ScanGroup, ...]
    by_storage_class: tuple[ScanGroup, ...]
    findings: tuple[ScanFinding, ...]
    #: True / False from the bucket's settings; None where unknown or not applicable.
    versioned: bool | None
    requester_pays: bool | None
    cost: CostEstimate
    duration: DurationEstimate
    listing_requests: int
    head_requests: int
    notes: tuple[str, ...] = ()

    def finding(self, kind: str) -> ScanFinding | None:
        return next((f for f in self.findings if f.kind == kind), None)


# -- tune ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting `lakeshift tune` tries (and ``TuneResult.best``)."""

    concurrency: int = 32
    block_size: int = 8 * 1024 * 1024
    single_put_max: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Trial:
    """One trial of ``lakeshift tune``: the sample copied once with ``setting``."""

    setting: Setting
    seconds: float
    objects: int
    nbytes: int
    failed: int

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.seconds if self.seconds > 0 else 0.0

    @property
    def objects_per_s(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0


@dataclass
class TuneResult:
    """Every trial in the order run, and the best setting (the fastest of the trials that
    timed the same objects: ``left_out`` and ``not_compared``)."""

    sample_objects: int
    sample_bytes: int
    trials: list[Trial] = field(default_factory=list)
    best: Setting = Setting()
    #: The settings not tried (``block_size``, ``single_put_max``) and why: none of the
    #: sample's objects is large enough for them to matter.
    not_tried: dict[str, str] = field(default_factory=dict)
    #: The objects left out of the timing, by the kind of their error (one ``copy
    #: --skip-errors`` accepts), each by its name under the source: they failed in every
    #: trial compared, each the same way, so those trials timed the rest.
    left_out: dict[str, list[str]] = field(default_factory=dict)
    #: The trials (places in ``trials``) not compared: they failed other objects than the
    #: trials compared did (flaky), so they timed other work.
    not_compared: list[int] = field(default_factory=list)


_RECORDS: tuple[type, ...] = (
    PartitionSpec, CheckLine, CheckResult, PartitionStatus, RunStatus, JobStatus, StateTotals,
    StatusResult, PlanResult, FailuresResult, VerifyResult, SyncWindow, SyncResult, ScanGroup,
    ScanFinding, CostLine, CostEstimate, DurationEstimate, ScanResult, Setting, Trial,
    TuneResult,
)
for _record in _RECORDS:
    _record.__module__ = "lakeshift.model"
# Into lakeshift.model's namespace: its readers (and typing.get_type_hints, which resolves
# the records' annotations there) find them as if they were defined in it.
vars(model).update({r.__name__: r for r in _RECORDS})
