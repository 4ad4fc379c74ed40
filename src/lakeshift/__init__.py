"""lakeshift: migrate data lakes into Azure Data Lake Storage Gen2.

The public API is what ``__all__`` lists; everything else is private and may change.
"""

from __future__ import annotations

from lakeshift.api import copy, destination_config, plan_job, run_job, source_config
from lakeshift.engine.events import (
    BytesMoved,
    Event,
    Listed,
    ListingDone,
    ObjectDone,
    Renamed,
    Throttled,
)
from lakeshift.engine.pipeline import CopyOptions, CopyResult, Failure
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
from lakeshift.model import ObjectInfo, ObjectProps, RunResult, TransferStats
from lakeshift.stores.base import Capabilities, StoreConfig, StoreOptions
from lakeshift.urls import StoreURL, parse_url

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BytesMoved",
    "Capabilities",
    "CopyOptions",
    "CopyResult",
    "Event",
    "Failure",
    "ForbiddenError",
    "IntegrityError",
    "InvalidNameError",
    "LakeshiftError",
    "Listed",
    "ListingDone",
    "NotFoundError",
    "ObjectDone",
    "ObjectInfo",
    "ObjectProps",
    "Renamed",
    "RunResult",
    "StoreConfig",
    "StoreOptions",
    "StoreURL",
    "Throttled",
    "ThrottledError",
    "TransferStats",
    "TransientError",
    "UsageError",
    "__version__",
    "copy",
    "destination_config",
    "parse_url",
    "plan_job",
    "run_job",
    "source_config",
]
