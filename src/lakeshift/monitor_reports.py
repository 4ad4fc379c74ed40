"""The records the web monitor's reads return: one run in detail (``lakeshift.run_detail``),
one partition run (``partition_run``), a page of a run's failure log
(``run_failures_page``) and a job's figures for Prometheus (``metrics``).

Like the rest of :mod:`lakeshift.reports` (which loads this module and re-exports its
records), they are :mod:`lakeshift.model`'s names (``__module__`` ``"lakeshift.model"``),
built on first use: a copy needs none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from lakeshift import model
from lakeshift.model import Failure

if TYPE_CHECKING:
    from lakeshift.reports import RunStatus


@dataclass(frozen=True, slots=True)
class PartitionRunStatus:
    """One partition's part in one run (Data Factory's "activity run").  Counters are this
    run's only; times are UTC; stage times in seconds (``listing_s`` and
    ``transferring_s`` overlap: the listing is consumed as it arrives)."""

    id: int
    run_id: int
    job: str
    partition_id: int
    seq: int
    source: str
    prefix: str
    range_start: str | None
    range_end: str | None
    destination: str
    #: running | succeeded | failed | interrupted | cancelled
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float
    listed: int
    copied: int
    skipped: int
    failed_objects: int
    #: Bytes read from the source (re-sent bytes included) and bytes of objects written.
    bytes_read: int
    bytes_written: int
    throughput_bytes_per_s: float
    queued_s: float
    listing_s: float
    transferring_s: float
    finishing_s: float
    in_flight: int
    peak_in_flight: int
    #: Requests retried by error class (``throttled``, ``transient``; ``object``: whole
    #: objects copied again after an integrity or change error).
    retries: Mapping[str, int]
    throttled: int
    error: str | None
    #: The run's settings and the job's options, secrets never included.
    settings: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ThroughputSample:
    """A run's totals at one heartbeat (UTC)."""

    at: datetime | None
    copied: int
    bytes: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One run with its partition runs and its throughput samples."""

    job: str
    run: RunStatus
    duration_s: float
    throughput_bytes_per_s: float
    cancel_requested: bool
    partition_runs: tuple[PartitionRunStatus, ...]
    samples: tuple[ThroughputSample, ...]
    #: How many partition runs the run has (``partition_runs`` may hold one page of them).
    partition_runs_total: int = 0
    #: Where that page starts in the run's partition runs (partition order).
    partition_runs_offset: int = 0


@dataclass(frozen=True, slots=True)
class FailurePage:
    """One page of a run's failure log (``lakeshift.run_failures_page``): ``failures`` are
    rows ``offset`` … ``offset + len(failures) - 1`` of ``total``, oldest first."""

    run_id: int
    partition_run_id: int | None
    total: int
    offset: int
    limit: int
    failures: tuple[Failure, ...]


@dataclass(frozen=True, slots=True)
class JobMetrics:
    """A job's figures for Prometheus: totals over its partitions and partition runs."""

    job: str
    objects_copied: int
    bytes_copied: int
    #: Objects being copied now by running runs.
    in_flight: int
    runs_running: int
    partitions: Mapping[str, int]
    retries: Mapping[str, int]
    throttled: int
    #: Failed objects by error class (skipped ones not counted).
    errors: Mapping[str, int]


_RECORDS: tuple[type, ...] = (
    PartitionRunStatus, ThroughputSample, RunDetail, FailurePage, JobMetrics,
)
for _record in _RECORDS:
    _record.__module__ = "lakeshift.model"
vars(model).update({r.__name__: r for r in _RECORDS})
