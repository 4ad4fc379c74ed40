"""The public API: one function per command, with every option the command has under the
same name (``lakeshift copy --max-bandwidth`` ↔ ``lakeshift.copy(max_bandwidth=...)``), and
typed results.  The CLI is a face over these functions; so will be the web monitor and
the Dask workers.  See docs/api.md.

Conventions shared by every function:

- Sizes (``block_size``, ``single_put_max``, ``max_bandwidth``) are bytes as an ``int`` or a
  string such as ``"8MiB"`` (``max_bandwidth`` also ``"200MiB/s"``, as the flag takes it);
  repeatable flags (``include``, ``prefix``) are sequences;
  ``skip_errors`` is ``"missing,forbidden"`` or a sequence of kinds.
- How to reach the stores (``--s3-endpoint`` … ``--allow-http``) is one ``store_options``
  argument, a :class:`StoreOptions` whose fields carry the flags' names.
- A user mistake raises :class:`UsageError`, bad credentials :class:`AuthError` (the tree in
  ``lakeshift.errors``); objects that fail are counted in the result, not raised.

The functions live in one module per family of commands: ``common`` (what they share:
``_blocking``, ``reading_only``, the control DB's opening, the start-up store checks),
``copying`` (copy and the proof log), ``jobs`` (plan, run, reset/delete a job), ``syncing``,
``state`` (status, failures), ``checks`` (verify, check, scan), ``tuning`` and ``monitor``
(the monitor's reads and actions).  This package binds each name on first use (PEP 562),
so ``lakeshift copy`` loads only ``common`` and ``copying``.  ``lakeshift.api.X`` and
``from lakeshift.api import X`` give every name the modules define; patch a name in the
module that uses it (``lakeshift.api.copying._copy_pair``), not here.

Nothing here imports SQLAlchemy at module level: ``copy`` and ``check`` never need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lakeshift import model

if TYPE_CHECKING:
    from lakeshift.api.checks import check, check_async, scan, scan_async, verify, verify_async
    from lakeshift.api.common import _sqlite_db_file as _sqlite_db_file
    from lakeshift.api.common import reading_only
    from lakeshift.api.copying import copy, copy_async
    from lakeshift.api.jobs import _CHANGEABLE as _CHANGEABLE
    from lakeshift.api.jobs import (
        delete_job,
        delete_job_async,
        plan,
        plan_async,
        plan_job,
        reset_job,
        reset_job_async,
        run,
        run_async,
        run_job,
    )
    from lakeshift.api.monitor import (
        MAX_SAMPLES,
        cancel_run,
        cancel_run_async,
        iter_run_failures,
        metrics,
        metrics_async,
        partition_run,
        partition_run_async,
        rerun_failed,
        rerun_failed_async,
        run_detail,
        run_detail_async,
        run_failures,
        run_failures_async,
        run_failures_page,
        run_failures_page_async,
    )
    from lakeshift.api.state import ATTENTION_STATES as ATTENTION_STATES
    from lakeshift.api.state import FAILURE_FIELDS as FAILURE_FIELDS
    from lakeshift.api.state import INTERRUPTED_READS as INTERRUPTED_READS
    from lakeshift.api.state import failures, failures_async, status, status_async
    from lakeshift.api.state import run_going_on as run_going_on
    from lakeshift.api.state import write_failures_csv as write_failures_csv
    from lakeshift.api.syncing import sync, sync_async
    from lakeshift.api.tuning import tune, tune_async
    from lakeshift.control import DEFAULT_DB
    from lakeshift.csv_cells import csv_cell as csv_cell  # the web monitor writes CSV
    from lakeshift.model import (
        CheckLine,
        CheckResult,
        CopyResult,
        Failure,
        FailurePage,
        FailuresResult,
        JobMetrics,
        JobStatus,
        PartitionRunStatus,
        PartitionStatus,
        PlanResult,
        Rename,
        RunDetail,
        RunResult,
        RunStatus,
        ScanResult,
        SourceDeleted,
        StateTotals,
        StatusResult,
        SyncResult,
        SyncWindow,
        TransferStats,
        TuneResult,
        VerifyResult,
    )
    from lakeshift.plan.jobconfig import size_text as size_text  # the monitor's settings
    from lakeshift.stores.base import StoreOptions

#: The other commands' records (lakeshift.model's, defined in lakeshift.reports): bound here
#: by ``_records()`` (lakeshift/__init__.py calls it) or on first access, so that a copy
#: does not build their ~27 dataclasses at start-up.  The modules' functions build them as
#: ``model.X`` and annotate them so: typing.get_type_hints resolves that through
#: lakeshift.model (which loads them).
_RECORDS = (
    "CheckLine", "CheckResult", "FailurePage", "FailuresResult", "JobMetrics", "JobStatus",
    "PartitionRunStatus", "PartitionStatus", "PlanResult", "RunDetail", "RunStatus",
    "ScanResult", "StateTotals", "StatusResult", "SyncResult", "SyncWindow", "TuneResult",
    "VerifyResult",
)

#: Each module of the package → the names it defines (tests/unit/test_api_package.py checks
#: that every one is here).
_MODULES = {
    "common": "MiB _STATES P T _blocking _READ_ONLY reading_only _control _opened _as_utc "
              "_planning_db _sqlite_db_file _new_sqlite_file _processes_here _dask_cluster "
              "_remove_sqlite_file _check_stores _job_store_pairs _run_store_options "
              "_run_copy_mode _s3_endpoint_used _endpoint_settings _RECORDED_STORE_OPTIONS "
              "_store_settings_recorded _make_folders "
              "_remove_folders _page_args",
    "copying": "_check_proof_log _refuse_proof_log_on_dask _proofs _closed copy_async copy "
               "_copy_pair",
    "jobs": "plan_async plan reset_job_async reset_job delete_job_async delete_job run_async "
            "run _name_the_file _plan_from_config plan_job run_job _delta_table _CHANGEABLE "
            "_changed_options",
    "syncing": "sync_async sync _refuse_other_urls _COPY_DEFAULTS "
               "_refuse_other_copy_options _same_url _sync_job _add_adf_delta_partitions",
    "state": "ATTENTION_STATES READ_STATES INTERRUPTED_READS run_going_on status_async "
             "status _states _status _partition_status _run_status _job_status "
             "FAILURE_FIELDS failures_async failures _failures _failed_object "
             "write_failures_csv csv_cell",
    "checks": "verify_async verify _job_pairs check_async check scan_async scan",
    "tuning": "tune_async _servers_differ _over_config _writable_config tune",
    "monitor": "_SECRET_NAMES _shown_settings _seconds _partition_run_status MAX_SAMPLES "
               "run_detail partition_run run_failures _failure_scope MAX_FAILURE_PAGE "
               "run_failures_page iter_run_failures cancel_run rerun_failed metrics "
               "run_detail_async partition_run_async run_failures_async "
               "run_failures_page_async cancel_run_async rerun_failed_async metrics_async",
}
#: Name → the module it is read from: the package's modules' names, and what the API
#: re-exports from below it.
_HOMES: dict[str, str] = {
    name: f"{__name__}.{module}" for module, names in _MODULES.items()
    for name in names.split()}
_HOMES.update(dict.fromkeys(("DEFAULT_DB", "fold_state_totals"), "lakeshift.control"))
_HOMES["size_text"] = "lakeshift.plan.jobconfig"  # the monitor writes sizes as the CLI takes
_HOMES.update(dict.fromkeys(("StoreOptions", "StoreConfig"), "lakeshift.stores.base"))
_HOMES.update(dict.fromkeys(("CopyResult", "Failure", "Rename", "RunResult", "SourceDeleted",
                             "TransferStats"), "lakeshift.model"))


def _records() -> None:
    """Bind the records of ``_RECORDS`` in this package."""
    if "JobStatus" not in globals():
        globals().update({name: getattr(model, name) for name in _RECORDS})


def _bound(name: str) -> Any:
    """``__getattr__`` (PEP 562): ``name`` read from its module and bound here."""
    if name in _RECORDS:
        _records()
        return globals()[name]
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value
        return value
    if not name.startswith("__"):
        # A name a module imports (the old single module had them all: UsageError, …).
        for module in _MODULES:
            found = importlib.import_module(f"{__name__}.{module}")
            if name in vars(found):
                return vars(found)[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if not TYPE_CHECKING:
    # Hidden from type checkers: with a module ``__getattr__`` mypy types every attribute
    # it does not know as Any, so ``lakeshift.api.stauts(...)`` would pass it.  They see
    # the names imported under TYPE_CHECKING above (the public ones) and nothing else.
    __getattr__ = _bound


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES, *_RECORDS})


#: What docs/api.md documents (lakeshift/__init__.py re-exports it).  Everything else here
#: is private: the CLI imports what it needs beyond this from the modules that own it.
__all__ = [
    "DEFAULT_DB", "CheckLine", "CheckResult", "CopyResult", "Failure", "FailuresResult",
    "JobStatus", "PartitionStatus", "PlanResult", "Rename", "RunResult", "RunStatus",
    "SourceDeleted", "StateTotals", "StatusResult", "StoreOptions", "SyncResult", "SyncWindow",
    "TransferStats", "VerifyResult", "check", "check_async", "copy", "copy_async",
    "delete_job", "delete_job_async", "failures", "failures_async", "plan", "plan_async",
    "plan_job", "reset_job", "reset_job_async", "run", "run_async", "run_job", "status",
    "status_async", "sync", "sync_async", "verify", "verify_async"]
# scan (issue 15), tune (issue 16); the monitor's reads and actions (issue 13).
__all__ += ["JobMetrics", "PartitionRunStatus", "RunDetail", "ScanResult", "TuneResult",
            "cancel_run", "cancel_run_async", "metrics", "metrics_async", "partition_run",
            "partition_run_async", "rerun_failed", "rerun_failed_async", "run_detail",
            "run_detail_async", "run_failures", "run_failures_async", "scan", "scan_async",
            "tune", "tune_async"]
# The monitor's review (issue 13): read-only access.
__all__ += ["MAX_SAMPLES", "FailurePage", "iter_run_failures", "reading_only",
            "run_failures_page", "run_failures_page_async"]
