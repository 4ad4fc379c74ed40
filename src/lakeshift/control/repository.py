"""The only code that writes SQL.  Every method is one short transaction.

``ControlDB`` is assembled from one class per concern: repo_jobs.py (jobs, partitions,
leases), repo_runs.py (runs, the fleet, the monitor's reads), repo_sync.py (records, ADF
tables, delta sync, schedules), on repo_base.py (engine, transactions, shared helpers)."""

from __future__ import annotations

from lakeshift.control.repo_base import (
    MAX_ID,
    ControlBase,
    PartitionStats,
    Records,
    RunGone,
    db_now,
    utcnow,
)
from lakeshift.control.repo_jobs import JobRows
from lakeshift.control.repo_runs import RunRows
from lakeshift.control.repo_sync import SyncRows

__all__ = ["MAX_ID", "ControlBase", "ControlDB", "PartitionStats", "Records", "RunGone",
           "db_now", "utcnow"]


class ControlDB(JobRows, RunRows, SyncRows):
    """The control DB.  ``read_only``: opened by ``db.open_read_only`` (the monitor): every
    write fails, and the reads show a run whose lease expired as ``interrupted`` at its last
    heartbeat instead of closing it (``close_dead_runs``) first."""
