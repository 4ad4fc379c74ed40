"""lakeshift: migrate data lakes into Azure Data Lake Storage Gen2.

The public API is what ``__all__`` lists (docs/api.md); everything else is private and may
change.  ``copy``, ``plan``, ``run``, ``status``, ``failures``, ``verify`` and ``check`` are
the commands of the same names, with the same options.
"""

from __future__ import annotations

from lakeshift.api import (
    check,
    copy,
    delete_job,
    destination_config,
    failures,
    plan,
    plan_job,
    reset_job,
    run,
    run_job,
    source_config,
    status,
    verify,
)
from lakeshift.engine.events import (
    BytesMoved,
    Event,
    Listed,
    ListingDone,
    ObjectDone,
    Renamed,
    Subscriber,
    Throttled,
)
from lakeshift.engine.pipeline import CopyOptions, CopyResult, Failure, Rename
from lakeshift.errors import (
    AuthError,
    ForbiddenError,
    IntegrityError,
    InvalidNameError,
    LakeshiftError,
    NotFoundError,
    ThrottledError,
    TransientError,
    UsageError,
)
from lakeshift.model import (
    CheckLine,
    CheckResult,
    FailedObject,
    FailuresResult,
    JobStatus,
    ObjectInfo,
    ObjectProps,
    PartitionSpec,
    PartitionStatus,
    PlanResult,
    RunResult,
    RunStatus,
    StatusResult,
    TransferStats,
    VerifyResult,
)
from lakeshift.stores.base import Capabilities, StoreConfig, StoreOptions
from lakeshift.urls import StoreURL, parse_url

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BytesMoved",
    "Capabilities",
    "CheckLine",
    "CheckResult",
    "CopyOptions",
    "CopyResult",
    "Event",
    "FailedObject",
    "Failure",
    "FailuresResult",
    "ForbiddenError",
    "IntegrityError",
    "InvalidNameError",
    "JobStatus",
    "LakeshiftError",
    "Listed",
    "ListingDone",
    "NotFoundError",
    "ObjectDone",
    "ObjectInfo",
    "ObjectProps",
    "PartitionSpec",
    "PartitionStatus",
    "PlanResult",
    "Rename",
    "Renamed",
    "RunResult",
    "RunStatus",
    "StatusResult",
    "StoreConfig",
    "StoreOptions",
    "StoreURL",
    "Subscriber",
    "Throttled",
    "ThrottledError",
    "TransferStats",
    "TransientError",
    "UsageError",
    "VerifyResult",
    "__version__",
    "check",
    "copy",
    "delete_job",
    "destination_config",
    "failures",
    "parse_url",
    "plan",
    "plan_job",
    "reset_job",
    "run",
    "run_job",
    "source_config",
    "status",
    "verify",
]
