"""The pipeline's stat keeping: :class:`StatsCounter`, the event subscriber that keeps a
command's :class:`TransferStats` and its lists of failures, renames and deletions (copy,
run's partitions, sync, a Dask worker's partitions).  It hears every event of every
object, so the events of an object copied are told by their exact type first."""

from __future__ import annotations

from collections import Counter

from lakeshift.engine.events import (
    BytesMoved,
    Listed,
    ListingDone,
    ObjectDone,
    ObjectStarted,
    Renamed,
    ServerCopyOff,
    SourceDeleted,
    Throttled,
    WindowCount,
)
from lakeshift.engine.preserve import UnmappableError, unmapped_principal
from lakeshift.model import Failure, Rename, TransferStats


class StatsCounter:
    """Keeps TransferStats and the failure list from the events."""

    #: Events that change no count (EventBus.ignored: ObjectStarted is then not built).
    ignores = frozenset({ObjectStarted, ListingDone, WindowCount})

    def __init__(self, stats: TransferStats, failures: list[Failure],
                 renames: list[Rename] | None = None,
                 deletions: list[SourceDeleted] | None = None, keep: int = 10_000,
                 proofs: Counter[str] | None = None, server_copy_off: list[str] | None = None):
        self.stats = stats
        self.server_copy_off = server_copy_off if server_copy_off is not None else []
        self.proofs = proofs if proofs is not None else Counter()
        self.failures = failures
        self.renames = renames if renames is not None else []
        self.deletions = deletions if deletions is not None else []
        self.keep = keep

    def __call__(self, event: object) -> None:
        # The events of every object copied (ObjectDone "copied", BytesMoved) told by their
        # exact type, one identity test each, and counted here; any other (or a subclass)
        # through ``_other``'s isinstance chain.
        if type(event) is ObjectDone and event.outcome == "copied":
            s = self.stats
            s.copied += 1
            s.copied_bytes += event.size
            if event.proof is not None:
                self.proofs[event.proof] += 1
        elif type(event) is BytesMoved:
            self.stats.bytes_transferred += event.nbytes
        elif type(event) is not ObjectStarted:
            self._other(event)

    def _done(self, event: ObjectDone) -> None:
        s = self.stats
        if event.outcome == "copied":
            s.copied += 1
            s.copied_bytes += event.size
            if event.proof is not None:
                self.proofs[event.proof] += 1
        elif event.outcome == "skipped":
            s.skipped += 1
            s.skipped_bytes += event.size
            why = event.error_kind or event.reason or "other"
            s.skipped_by_reason[why] = s.skipped_by_reason.get(why, 0) + 1
            if event.error_kind is not None:
                s.skipped_errors += 1
                if len(self.failures) < self.keep:
                    self.failures.append(Failure(event.key, event.error_kind,
                                                 event.message or "", event.attempts,
                                                 skipped=True))
        else:
            s.failed += 1
            s.failed_bytes += event.size
            kind = event.error_kind or "error"
            s.failed_by_kind[kind] = s.failed_by_kind.get(kind, 0) + 1
            if kind == UnmappableError.kind:
                who = unmapped_principal(event.message or "") or "(unnamed)"
                s.unmapped_principals[who] = s.unmapped_principals.get(who, 0) + 1
            if len(self.failures) < self.keep:
                self.failures.append(Failure(event.key, event.error_kind or "error",
                                             event.message or "", event.attempts))

    def _other(self, event: object) -> None:
        s = self.stats
        if isinstance(event, Listed):
            s.listed += event.count
            s.listed_bytes += event.nbytes
        elif isinstance(event, ObjectDone):
            self._done(event)
        elif isinstance(event, BytesMoved):
            s.bytes_transferred += event.nbytes
        elif isinstance(event, Renamed):
            s.renamed += 1
            if len(self.renames) < self.keep:
                self.renames.append(Rename(event.key, event.destination_key, event.rule))
        elif isinstance(event, Throttled):
            s.throttled += 1
        elif isinstance(event, ServerCopyOff):
            self.server_copy_off.append(event.reason)
        elif isinstance(event, SourceDeleted):
            if event.folder:
                s.folders_removed += 1
            elif event.kept is None:
                s.sources_deleted += 1
            else:
                s.sources_kept += 1
            if len(self.deletions) < self.keep:
                self.deletions.append(event)
