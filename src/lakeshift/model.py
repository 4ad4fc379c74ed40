"""Plain data passed between stages.  Frozen, slotted, no behaviour beyond helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

_EMPTY: Mapping[str, str] = MappingProxyType({})

#: Object data in memory: bytes, or a view of a buffer another library owns (no copy).
Data = bytes | memoryview


@dataclass(frozen=True, slots=True)
class ObjectProps:
    """HTTP-level properties and user metadata carried from source to destination."""

    content_type: str | None = None
    content_encoding: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object as a listing reports it.

    ``key`` is the full key inside the bucket/container (or the path below the local
    root), never URL-encoded.  ``md5`` is the content MD5 when the store knows it without
    reading the data (S3 single-part ETag, Azure Content-MD5).
    """

    key: str
    size: int
    last_modified: datetime | None = None
    etag: str | None = None
    md5: bytes | None = None
    is_dir_marker: bool = False
    metadata: Mapping[str, str] | None = None
    """User metadata, when the listing returns it (Azure with include=metadata)."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Bytes read from a store, with the object's properties (from the same response)."""

    data: Data
    props: ObjectProps
    size: int
    etag: str | None


@dataclass(slots=True)
class TransferStats:
    """Counters of one run.  Mutable: the engine updates it from one event loop."""

    listed: int = 0
    listed_bytes: int = 0
    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    failed: int = 0
    failed_bytes: int = 0
    bytes_transferred: int = 0
    #: Objects skipped because of --skip-errors / --invalid-names skip (part of skipped).
    skipped_errors: int = 0
    renamed: int = 0
    throttled: int = 0
    #: --delete-source-after-verify: source objects deleted, and kept (not provable).
    sources_deleted: int = 0
    sources_kept: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def duration(self) -> float:
        return max(self.finished - self.started, 0.0)

    @property
    def throughput(self) -> float:
        """Bytes per second written to the destination."""
        return self.bytes_transferred / self.duration if self.duration > 0 else 0.0


@dataclass
class RunResult:
    """What one `run` of a job did (its partitions, and the objects across them)."""

    run_id: int
    succeeded: int = 0
    failed: int = 0
    stats: TransferStats = field(default_factory=TransferStats)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (partition, error)
    remaining_failed: int = 0  # failed partitions of the job after this run
    remaining_pending: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.remaining_failed else 0
