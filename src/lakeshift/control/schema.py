"""Control-DB tables (SQLAlchemy Core).  Portable SQL: SQLite, PostgreSQL and SQL Server.

Indexed and unique columns are bounded strings (SQL Server cannot index TEXT); times are
stored in UTC.  Every change to these tables is a numbered migration in ``migrations.py``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)

metadata = MetaData()

schema_version = Table(
    "lakeshift_schema", metadata,
    Column("version", Integer, nullable=False),
)

jobs = Table(
    "lakeshift_jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("destination", Text, nullable=False),
    #: JSON: copy options and store options (never secrets).
    Column("options", Text, nullable=False),
    #: Name of an ADF-template control table the partitions came from, if any.
    Column("adf_table", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

partitions = Table(
    "lakeshift_partitions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("lakeshift_jobs.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    #: The source URL the user gave (its path is the root names are relative to).
    Column("source", Text, nullable=False),
    #: Full key prefix listed for this partition.
    Column("prefix", Text, nullable=False),
    #: Removed from each key to get its name under the destination (the source root).
    Column("rel_base", Text, nullable=False),
    #: Key range [range_start, range_end) inside the prefix, for split prefixes.
    Column("range_start", Text),
    Column("range_end", Text),
    #: Destination URL names are written under.
    Column("destination", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending running succeeded failed
    #: Low watermark: every key <= cursor in this partition is done.
    Column("cursor", Text),
    Column("lease_owner", String(200)),
    Column("lease_expires", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("listed", BigInteger, nullable=False, default=0),
    Column("copied", BigInteger, nullable=False, default=0),
    Column("skipped", BigInteger, nullable=False, default=0),
    Column("failed_objects", BigInteger, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("last_error", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_s", Float),
    #: The ADF control table's PartitionPrefix this partition stands for.
    Column("adf_prefix", String(255)),
    #: Counters of the keys at or before ``cursor`` only (added in version 3).  A run that
    #: takes the partition over starts from these: what lies after the cursor is listed and
    #: counted again, so counting it twice would be wrong.  No failed key is ever before the
    #: cursor, hence no failed counter.
    Column("cursor_copied", BigInteger, nullable=False, server_default="0"),
    Column("cursor_skipped", BigInteger, nullable=False, server_default="0"),
    Column("cursor_bytes", BigInteger, nullable=False, server_default="0"),
    Index("ix_lakeshift_partitions_job_state", "job_id", "state"),
    # A claim walks this index in seq order and stops at the first free row: its cost does
    # not grow with the number of pending partitions (migration 6).
    Index("ix_lakeshift_partitions_claim", "job_id", "state", "seq"),
)

runs = Table(
    "lakeshift_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("lakeshift_jobs.id"), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("state", String(16), nullable=False),  # running succeeded failed interrupted
    Column("batch_count", Integer, nullable=False),
    Column("settings", Text, nullable=False),
    Column("partitions_done", Integer, nullable=False, default=0),
    Column("partitions_failed", Integer, nullable=False, default=0),
    Column("copied", BigInteger, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    #: The run's number within its job: 1, 2, 3 … (added in version 3).
    Column("number", Integer, nullable=False, server_default="0"),
    #: DB-clock time of the run's last heartbeat, and until when it holds (version 3): a
    #: running run past it, or whose process is gone, is closed as interrupted.
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("lease_expires", DateTime(timezone=True)),
    #: 1 once someone asked the run to stop (the monitor's cancel, version 5): the run's
    #: heartbeat reads it and stops at a checkpoint (its partitions pending at their cursor).
    Column("cancel_requested", Integer, nullable=False, server_default="0"),
)

failures = Table(
    "lakeshift_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("lakeshift_jobs.id"), nullable=False),
    Column("partition_id", Integer, ForeignKey("lakeshift_partitions.id")),
    Column("run_id", Integer, ForeignKey("lakeshift_runs.id")),
    Column("object_key", Text, nullable=False),
    Column("error_kind", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    #: 1 = skipped on purpose (--skip-errors / --invalid-names skip); added in version 2.
    Column("skipped", Integer, nullable=False, server_default="0"),
    #: The run whose pass of the partition went past this key without failing it (the
    #: object was copied or found identical since, or is gone); NULL while the failure is
    #: current.  ``lakeshift failures --job`` lists only current ones (version 9).
    Column("cleared_run_id", Integer),
    #: 1 = a failure of sync --delete's deletion phase, under the destination object's key
    #: (version 10): only a later --delete pass clears it, never a copy's going past a key.
    Column("deletion", Integer, nullable=False, server_default="0"),
    Index("ix_lakeshift_failures_job", "job_id"),
    #: A run's failures (the monitor's pages, its CSV, sync --delete's holds) and one
    #: partition's in a run, in order, without reading the job's others (version 8).
    Index("ix_lakeshift_failures_run", "run_id", "id"),
    Index("ix_lakeshift_failures_partition_run", "run_id", "partition_id", "id"),
    #: A partition's current failures, which a pass going past their keys clears (version 9;
    #: SQL Server, which cannot index TEXT, keeps it: see the two below).
    Index("ix_lakeshift_failures_partition_open", "partition_id", "cleared_run_id")
    .ddl_if(dialect="mssql"),
)

#: Version 10: a partition's current failures by key, so that a heartbeat clears those in
#: the keys it went past by walking those keys alone, not every open failure of the
#: partition (repo_base ``_clear_failures``).  PostgreSQL compares keys in the "C"
#: collation (as listings order them) and limits an index row to about 2.7 kB: its index
#: holds the key's first KEY_INDEXED characters (4 bytes each at most), which the clearing
#: bounds as well.
KEY_INDEXED = 500
Index("ix_lakeshift_failures_open_key", failures.c.partition_id, failures.c.cleared_run_id,
      failures.c.object_key).ddl_if(dialect="sqlite")
Index("ix_lakeshift_failures_open_key_c", failures.c.partition_id, failures.c.cleared_run_id,
      func.left(failures.c.object_key, KEY_INDEXED).collate("C")).ddl_if(dialect="postgresql")

#: Objects written under another name (--invalid-names encode); added in version 2.
renames = Table(
    "lakeshift_renames", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("lakeshift_jobs.id"), nullable=False),
    Column("partition_id", Integer, ForeignKey("lakeshift_partitions.id")),
    Column("source_key", Text, nullable=False),
    Column("destination_key", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_lakeshift_renames_job", "job_id"),
)

#: Source objects deleted by --delete-source-after-verify; added in version 2.
deletions = Table(
    "lakeshift_deletions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("lakeshift_jobs.id"), nullable=False),
    Column("partition_id", Integer, ForeignKey("lakeshift_partitions.id")),
    Column("source_key", Text, nullable=False),
    Column("destination_key", Text, nullable=False),
    Column("md5", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_lakeshift_deletions_job", "job_id"),
)

#: One row per partition and sync pass: the window of modification times [window_start,
#: window_end) it took (window_start NULL: everything, a full copy) and what it did.  The
#: next pass of a partition starts at the window_end of its last succeeded row; a failed,
#: interrupted or keyed (--files-from: no window looked at) row does not move it.  Added in
#: version 4.
sync_windows = Table(
    "lakeshift_sync_windows", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("lakeshift_jobs.id"), nullable=False),
    Column("partition_id", Integer, ForeignKey("lakeshift_partitions.id"), nullable=False),
    Column("run_id", Integer, ForeignKey("lakeshift_runs.id")),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True), nullable=False),
    # pending succeeded failed interrupted keyed keyed-failed
    Column("state", String(16), nullable=False),
    Column("listed", BigInteger, nullable=False, default=0),
    Column("copied", BigInteger, nullable=False, default=0),
    Column("skipped", BigInteger, nullable=False, default=0),
    Column("failed_objects", BigInteger, nullable=False, default=0),
    Column("deleted", BigInteger, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_lakeshift_sync_windows_partition", "partition_id", "state"),
)

#: The sync schedule of a job (--every / --cron) and the lease of the one process that
#: follows it: a second scheduler on the job is refused while the lease is live.  Added in
#: version 4.
schedules = Table(
    "lakeshift_schedules", metadata,
    Column("job_id", Integer, ForeignKey("lakeshift_jobs.id"), primary_key=True),
    Column("schedule", String(200), nullable=False),
    Column("owner", String(200)),
    Column("lease_expires", DateTime(timezone=True)),
    Column("next_run_at", DateTime(timezone=True)),
    Column("last_run_at", DateTime(timezone=True)),
)

#: Destination objects removed by ``sync --delete`` because their source is gone.  Added in
#: version 4.
sync_deletions = Table(
    "lakeshift_sync_deletions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("lakeshift_jobs.id"), nullable=False),
    Column("partition_id", Integer, ForeignKey("lakeshift_partitions.id")),
    Column("run_id", Integer, ForeignKey("lakeshift_runs.id")),
    #: The source key that no longer exists, and the destination object deleted for it.
    Column("source_key", Text, nullable=False),
    Column("destination_key", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_lakeshift_sync_deletions_job", "job_id"),
)

#: What ``sync --delete`` found to delete in a pass, recorded as found (not held in memory):
#: the pass checks their number against --max-delete across all its partitions, then
#: deletes them (each row removed as its object is).  Added in version SYNC_CANDIDATES (a
#: migration of its own, migrations.py).
sync_delete_candidates = Table(
    "lakeshift_sync_delete_candidates", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("lakeshift_runs.id"), nullable=False),
    Column("partition_id", Integer, ForeignKey("lakeshift_partitions.id"), nullable=False),
    Column("source_key", Text, nullable=False),
    Column("destination_key", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_lakeshift_sync_delete_candidates_run", "run_id", "id"),
)

#: The delta table of Data Factory's "copy delta data from AWS S3" template, under its name.
ADF_DELTA_TABLE = "s3_partition_delta_control_table"


def adf_delta_table(name: str, schema: str | None = None) -> Table:
    """The template's columns: PartitionPrefix varchar(255), JobRunTime datetime (UTC),
    SuccessOrFailure bit (1 success, 0 failure)."""
    from sqlalchemy import Boolean

    return Table(name, MetaData(), Column("PartitionPrefix", String(255)),
                 Column("JobRunTime", DateTime), Column("SuccessOrFailure", Boolean),
                 schema=schema)

# -- what the monitor shows (version 5): recorded as a run goes, by its heartbeat ----------

#: One partition's part in one run (Data Factory's "activity run"): this run's counters,
#: time per stage, peak objects in flight and retries by error class.
partition_runs = Table(
    "lakeshift_partition_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("lakeshift_runs.id"), nullable=False),
    Column("partition_id", Integer, ForeignKey("lakeshift_partitions.id"), nullable=False),
    Column("state", String(16), nullable=False),  # running succeeded failed interrupted
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    #: Objects of this run only (the partition's own counters span runs).
    Column("listed", BigInteger, nullable=False, server_default="0"),
    Column("copied", BigInteger, nullable=False, server_default="0"),
    Column("skipped", BigInteger, nullable=False, server_default="0"),
    Column("failed_objects", BigInteger, nullable=False, server_default="0"),
    Column("bytes_read", BigInteger, nullable=False, server_default="0"),
    Column("bytes_written", BigInteger, nullable=False, server_default="0"),
    #: Seconds: waiting for a batch slot after the run started; listing the source (start
    #: to end of its listing); transferring (first object started to last object done);
    #: finishing (last object done to the partition's end).  Listing and transferring
    #: overlap: the listing is consumed as it arrives.
    Column("queued_s", Float, nullable=False, server_default="0"),
    Column("listing_s", Float, nullable=False, server_default="0"),
    Column("transferring_s", Float, nullable=False, server_default="0"),
    Column("finishing_s", Float, nullable=False, server_default="0"),
    Column("in_flight", Integer, nullable=False, server_default="0"),
    Column("peak_in_flight", Integer, nullable=False, server_default="0"),
    #: JSON {error class: retries}; throttled requests are the "throttled" class.
    Column("retries", Text, nullable=False, server_default="{}"),
    Column("throttled", BigInteger, nullable=False, server_default="0"),
    Column("error", Text),
    Index("ix_lakeshift_partition_runs_run", "run_id"),
)

#: A run's totals at each heartbeat: the throughput-over-time chart.
run_samples = Table(
    "lakeshift_run_samples", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("lakeshift_runs.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("copied", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("in_flight", Integer, nullable=False),
    Index("ix_lakeshift_run_samples_run", "run_id"),
)
