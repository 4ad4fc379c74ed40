"""Plain data passed between stages.  Frozen, slotted, no behaviour beyond helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

_EMPTY: Mapping[str, str] = MappingProxyType({})

_R = TypeVar("_R")


class _Factory:
    """The default of a field with a default factory in a quick ``__init__``'s signature."""

    def __repr__(self) -> str:
        return "<factory>"  # (as in a dataclass's own)


_FACTORY = _Factory()


def quick_init(cls: type[_R]) -> type[_R]:
    """A frozen, slotted dataclass built per object (a listing's entry, a read's result, an
    event) gets an ``__init__`` that sets each field through its slot's own setter: the
    generated one calls ``object.__setattr__`` per field (a frozen class's only way in),
    which looks the name up again every time -- ~0.7k instructions a field, ~10k for an
    ``ObjectDone``.  Same signature, defaults and factories; still frozen (assignment
    raises as before).  (Applied after ``@dataclass``, so type checkers see its own.)"""
    _refuse_unless_plain(cls)
    ns: dict[str, Any] = {"_MISSING": _FACTORY}
    params: list[str] = []
    body: list[str] = []
    for f in fields(cls):  # type: ignore[arg-type]
        name = f.name
        ns[f"_set_{name}"] = getattr(cls, name).__set__  # the slot's member descriptor
        value = name
        if f.default is not MISSING:
            ns[f"_default_{name}"] = f.default
            params.append(f"{name}=_default_{name}")
        elif f.default_factory is not MISSING:
            ns[f"_factory_{name}"] = f.default_factory
            params.append(f"{name}=_MISSING")
            value = f"_factory_{name}() if {name} is _MISSING else {name}"
        else:
            params.append(name)
        body.append(f"    _set_{name}(self, {value})\n")
    source = f"def __init__(self, {', '.join(params)}):\n{''.join(body) or '    pass'}"
    exec(compile(source, f"<quick_init {cls.__qualname__}>", "exec"), ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    init.__annotations__ = dict(cls.__init__.__annotations__)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls

def _refuse_unless_plain(cls: Any) -> None:
    """``quick_init``'s ``__init__`` takes every field, positionally or by name, and does
    nothing else: a class whose own ``__init__`` does more (``__post_init__``, an InitVar,
    a ``field(init=False)`` or keyword-only field) or that is not frozen and slotted would
    silently lose it, so it is refused where it is declared."""
    import inspect
    from types import MemberDescriptorType

    names = [f.name for f in fields(cls)]
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if hasattr(cls, "__post_init__") or [p.name for p in params] != names or any(
            p.kind is not p.POSITIONAL_OR_KEYWORD for p in params) or \
            not cls.__dataclass_params__.frozen or \
            not all(isinstance(getattr(cls, n, None), MemberDescriptorType) for n in names):
        raise TypeError(f"quick_init: {cls.__qualname__} is not a plain frozen, slotted "
                        "dataclass (its generated __init__ does more than set its fields)")


#: Object data in memory: bytes, or a view of a buffer another library owns (no copy).
Data = bytes | memoryview


@quick_init
@dataclass(frozen=True, slots=True)
class ObjectProps:
    """HTTP-level properties and user metadata carried from source to destination."""

    content_type: str | None = None
    content_encoding: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@quick_init
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
    storage_class: str | None = None
    """The storage class (S3: STANDARD, GLACIER, DEEP_ARCHIVE…) or access tier (Azure: Hot,
    Cool, Cold, Archive) the listing reports; None where the store has none (local disk)."""


@quick_init
@dataclass(frozen=True, slots=True)
class ReadResult:
    """Bytes read from a store, with the object's properties (from the same response).
    ``opaque_etag``: the response says the object's ETag is no digest of its bytes (S3
    under SSE-KMS or SSE-C), so an MD5 its listing took from that ETag is none."""

    data: Data
    props: ObjectProps
    size: int
    etag: str | None
    opaque_etag: bool = False


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
    #: Skipped objects by reason: identical, exists, folder-marker, or a skipped error's
    #: kind (missing, forbidden, invalid-name); the counts add up to ``skipped``.
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    #: Failed objects by error kind (archived, forbidden, transient…); adds up to ``failed``.
    failed_by_kind: dict[str, int] = field(default_factory=dict)
    #: --preserve: source principals the identity map lacks ("user:bob"), with how many
    #: paths each failed (part of failed_by_kind["unmappable-principal"]).
    unmapped_principals: dict[str, int] = field(default_factory=dict)
    renamed: int = 0
    throttled: int = 0
    #: --delete-source-after-verify: source objects deleted, and kept (not provable).
    sources_deleted: int = 0
    sources_kept: int = 0
    #: --delete-source-after-verify from a source with real directories (local disk): the
    #: source folders the move left empty and removed (not in sources_deleted).
    folders_removed: int = 0
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
    job: str = ""  # the job's name (set by lakeshift.run)
    #: The run's number within its job (set by lakeshift.run when the DB numbers runs).
    number: int | None = None
    #: The run was cancelled (``lakeshift.cancel_run``, the monitor's Cancel): it stopped
    #: at a checkpoint; running the job again continues it.
    cancelled: bool = False
    #: For a job with an S3 store: the endpoint the run reached it by (None: AWS's own) and
    #: where that came from: ``--s3-endpoint`` (given for the run), ``job`` (the plan's),
    #: ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL`` or ``aws`` (set by lakeshift.run and
    #: lakeshift.sync).
    s3_endpoint: tuple[str | None, str] | None = None
    #: For a job saved with a relative local destination (before plan saved them
    #: absolute): (as saved, the absolute path it resolved to for this run); else None.
    relative_destination: tuple[str, str] | None = None
    #: The store options (``StoreOptions`` fields; the S3 endpoint is ``s3_endpoint``)
    #: that a flag given for this run or the environment also set: field → (the value the
    #: run used, where it came from, the job's saved value).  Where: the flag
    #: (``"--azure-auth"``: for this run only), ``"job"`` (saved with the job), ``"environment"``
    #: (the job has the default), ``"default"``; flag > job > environment (set by
    #: lakeshift.run and lakeshift.sync).
    store_settings: dict[str, tuple[Any, str, Any]] = field(default_factory=dict)
    #: The copy mode, when ``run --copy-mode`` or LAKESHIFT_COPY_MODE was involved: (the
    #: mode used, where it came from -- ``"--copy-mode"``, ``"job"``, ``"environment"`` --
    #: the job's saved mode), in the store options' order (set by lakeshift.run).
    copy_mode_setting: tuple[str, str, str] | None = None

    @property
    def exit_code(self) -> int:
        if self.cancelled:
            return 130  # stopped before the end, as after Ctrl-C: run again to continue
        return 1 if self.failed or self.remaining_failed else 0

    @property
    def nothing_to_do(self) -> bool:
        """No partition was left to run: every one had succeeded before this run."""
        return not (self.succeeded or self.failed or self.remaining_failed
                    or self.remaining_pending or self.errors)


# -- results of the public API (lakeshift.copy, plan, status, failures, verify, check) ---
# ``run`` returns RunResult (above).


@dataclass(frozen=True, slots=True)
class Failure:
    """An object that failed, or was skipped on purpose: one row of a job's failure log
    (``lakeshift failures``), or of ``CopyResult.failures``.  The field names are the failure
    log's columns.  ``at``, ``partition_id`` and ``run_id`` are known once it is recorded in
    a control DB (None in a ``copy``'s result)."""

    object_key: str
    error_kind: str
    message: str
    attempts: int
    #: Skipped on purpose (--skip-errors, --invalid-names skip, a symlink loop), not a
    #: failure of the run.
    skipped: bool = False
    at: datetime | None = None
    partition_id: int | None = None
    run_id: int | None = None


#: Older name of :class:`Failure` (the failure log's rows).
FailedObject = Failure


@dataclass(frozen=True, slots=True)
class Rename:
    """An object written under another name than its source key maps to (--invalid-names
    encode), and the rule that renamed it."""

    key: str
    destination_key: str
    rule: str


@dataclass(frozen=True, slots=True)
class SourceDeleted:
    """--delete-source-after-verify removed a source object (``kept`` says why not, when
    it was kept), or (``folder``) a source folder the move left empty (``d/``, its
    destination folder ``destination_key``, no MD5).  Also an engine event
    (engine/events.py)."""

    key: str
    destination_key: str
    md5: str
    kept: str | None = None
    folder: bool = False


@dataclass
class CopyResult:
    """What ``copy`` did: counters, then the objects that failed or were skipped on purpose,
    renamed, or moved (the first 10,000 of each)."""

    stats: TransferStats
    failures: list[Failure] = field(default_factory=list)
    dry_run: bool = False
    renames: list[Rename] = field(default_factory=list)
    deletions: list[SourceDeleted] = field(default_factory=list)
    #: Copied objects per proof they got (engine/transfer.py: Copied.proof).
    proofs: Counter[str] = field(default_factory=Counter)
    #: --copy-mode auto: why the service could not copy server-side (everything streamed).
    server_copy_off: list[str] = field(default_factory=list)
    #: Both sides as lakeshift understood them (URLs, secrets left out).
    source: str = ""
    destination: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if self.stats.failed else 0


if TYPE_CHECKING:
    from lakeshift.reports import (
        CheckLine as CheckLine,
    )
    from lakeshift.reports import (
        CheckResult as CheckResult,
    )
    from lakeshift.reports import (
        CostEstimate as CostEstimate,
    )
    from lakeshift.reports import (
        CostLine as CostLine,
    )
    from lakeshift.reports import (
        DurationEstimate as DurationEstimate,
    )
    from lakeshift.reports import (
        FailurePage as FailurePage,
    )
    from lakeshift.reports import (
        FailuresResult as FailuresResult,
    )
    from lakeshift.reports import (
        JobMetrics as JobMetrics,
    )
    from lakeshift.reports import (
        JobStatus as JobStatus,
    )
    from lakeshift.reports import (
        PartitionRunStatus as PartitionRunStatus,
    )
    from lakeshift.reports import (
        PartitionSpec as PartitionSpec,
    )
    from lakeshift.reports import (
        PartitionStatus as PartitionStatus,
    )
    from lakeshift.reports import (
        PlanResult as PlanResult,
    )
    from lakeshift.reports import (
        RunDetail as RunDetail,
    )
    from lakeshift.reports import (
        RunStatus as RunStatus,
    )
    from lakeshift.reports import (
        ScanFinding as ScanFinding,
    )
    from lakeshift.reports import (
        ScanGroup as ScanGroup,
    )
    from lakeshift.reports import (
        ScanResult as ScanResult,
    )
    from lakeshift.reports import (
        Setting as Setting,
    )
    from lakeshift.reports import (
        StateTotals as StateTotals,
    )
    from lakeshift.reports import (
        StatusResult as StatusResult,
    )
    from lakeshift.reports import (
        SyncResult as SyncResult,
    )
    from lakeshift.reports import (
        SyncWindow as SyncWindow,
    )
    from lakeshift.reports import (
        ThroughputSample as ThroughputSample,
    )
    from lakeshift.reports import (
        Trial as Trial,
    )
    from lakeshift.reports import (
        TuneResult as TuneResult,
    )
    from lakeshift.reports import (
        VerifyResult as VerifyResult,
    )

#: The records lakeshift.reports defines (the other commands' results), loaded on first use.
_REPORTS = frozenset({
    "CheckLine", "CheckResult", "CostEstimate", "CostLine", "DurationEstimate", "FailurePage",
    "FailuresResult", "JobMetrics", "JobStatus", "PartitionRunStatus", "PartitionSpec",
    "PartitionStatus", "PlanResult", "RunDetail", "RunStatus", "ScanFinding", "ScanGroup",
    "ScanResult", "Setting", "StateTotals", "StatusResult", "SyncResult", "SyncWindow",
    "ThroughputSample", "Trial", "TuneResult", "VerifyResult",
})


def __getattr__(name: str) -> Any:
    if name in _REPORTS:
        import lakeshift.reports  # noqa: F401 (it adds its records to this module)

        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _REPORTS)


#: ``from lakeshift.model import *`` gives the records too (loaded through __getattr__:
#: without a list, a star import takes only what the module has loaded).
__all__ = sorted({
    "Data", "ObjectProps", "ObjectInfo", "ReadResult", "TransferStats", "RunResult",
    "Failure", "FailedObject", "Rename", "SourceDeleted", "CopyResult", *_REPORTS,
})
