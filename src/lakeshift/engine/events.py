"""Progress as events (like s3transfer's subscribers): the engine emits, the CLI's progress
display, the stats counter and later the web monitor subscribe."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from lakeshift.model import SourceDeleted, quick_init

__all__ = ["EVENT_TYPES", "SKIP_EXISTS", "SKIP_FOLDER_MARKER", "SKIP_IDENTICAL", "BytesMoved",
           "Event", "EventBus", "Listed", "ListingDone", "ObjectDone", "Outcome", "Renamed",
           "SourceDeleted", "Subscriber", "Throttled", "WindowCount"]

Outcome = Literal["copied", "skipped", "failed"]


@quick_init
@dataclass(frozen=True, slots=True)
class Listed:
    count: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class ListingDone:
    pass


@quick_init
@dataclass(frozen=True, slots=True)
class BytesMoved:
    nbytes: int


@quick_init
@dataclass(frozen=True, slots=True)
class ObjectStarted:
    """A worker took an object to copy (its ObjectDone follows): objects in flight."""

    key: str


@quick_init
@dataclass(frozen=True, slots=True)
class ObjectDone:
    key: str
    size: int
    outcome: Outcome
    error_kind: str | None = None
    message: str | None = None
    attempts: int = 1
    #: How a copied object was proven (transfer.Copied.proof; PROOF_FOLDER for a folder),
    #: else None.
    proof: str | None = None
    #: A "skipped" outcome with an error_kind was skipped because of --skip-errors or
    #: --invalid-names skip; it is recorded like a failure but does not fail the run.
    #: Why a "skipped" outcome without an error was skipped (SKIP_* below).
    reason: str | None = None
    #: Where a copied object was written: its full key in the destination's bucket or
    #: container (the copy's naming applied: destination root, renames, folder markers).
    dest_key: str | None = None


#: Reasons of skips that are not errors (a skipped error's reason is its error kind).
#: The proof of a copied folder (an empty directory, a kept folder marker): no bytes to
#: prove; it was made at the destination as a directory (or a marker), with the source's
#: owner, group and ACL under --preserve.  The summary's `proven` line and the proof log
#: name it so.
PROOF_FOLDER = "folder"

SKIP_IDENTICAL = "identical"  # proven identical at the destination (--overwrite if-different)
SKIP_EXISTS = "exists"  # the name exists at the destination (--overwrite never)
SKIP_FOLDER_MARKER = "folder-marker"  # an S3 folder marker (--folder-markers skip)


@dataclass(frozen=True, slots=True)
class Renamed:
    """An object written under another name than its source key maps to (--invalid-names
    encode)."""

    key: str
    destination_key: str
    rule: str


@dataclass(frozen=True, slots=True)
class Throttled:
    """A request was throttled (429/503); ``limit`` is the endpoint's new in-flight limit."""

    endpoint: str
    limit: int


@dataclass(frozen=True, slots=True)
class ServerCopyOff:
    """``--copy-mode auto``: the destination service cannot read the source itself
    (``reason``), so every object of this run is streamed through the client."""

    reason: str


@dataclass(frozen=True, slots=True)
class WindowCount:
    """sync: one partition's window was looked at.  ``selected``: its objects in the window
    (copied or found identical); ``held_back``: objects seen that were modified at or after
    the window's end, left to the next pass (whose window starts there)."""

    partition: str
    start: datetime | None
    end: datetime
    selected: int
    held_back: int


Event = (Listed | ListingDone | BytesMoved | ObjectStarted | ObjectDone | Renamed | Throttled
         | SourceDeleted | ServerCopyOff | WindowCount)


class Subscriber(Protocol):
    def __call__(self, event: Event) -> None: ...


#: Every kind of event.
EVENT_TYPES: frozenset[type] = frozenset({
    Listed, ListingDone, BytesMoved, ObjectStarted, ObjectDone, Renamed, Throttled,
    SourceDeleted, ServerCopyOff, WindowCount})


class EventBus:
    """Gives each event to every subscriber.  A subscriber may say which kinds of event it
    does nothing with (an ``ignores`` attribute: a frozenset of event types, as StatsCounter and
    the CLI's progress displays do); ``ignored`` holds the kinds that every subscriber
    ignores (all of them without subscribers), which the engine then need not build
    (ObjectStarted: one record per object, for the job runner's objects in flight and the
    public API's subscribers).  A subscriber without ``ignores`` (a function, a bound
    method) is given every kind.

    ``emit`` is synchronous: a subscriber must never wait in it.  One that may need the
    engine to slow down (``--proof-log``'s writer, behind a slow disk) has a ``held``
    method instead: None while it lets new objects start, else what to await first.  The
    engine asks ``held`` here before it starts each object, when ``holding`` (no cost per
    object otherwise; two calls, no coroutine, while nothing holds).  Another bus's
    ``emit`` as a subscriber (a run's partitions feed the run's totals so) brings that
    bus's holds along."""

    def __init__(self, subscribers: list[Subscriber] | None = None) -> None:
        self._subscribers: list[Subscriber] = list(subscribers or [])
        self.ignored = self._ignored()
        self._holds = self._held_by()
        #: Some subscriber may hold new objects back: the engine asks ``held()``.
        self.holding = bool(self._holds)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)
        self.ignored = self._ignored()
        self._holds = self._held_by()
        self.holding = bool(self._holds)

    def _held_by(self) -> tuple[Callable[[], Awaitable[None] | None], ...]:
        holds = []
        for s in self._subscribers:
            # (Looked up on the class: a stand-in that makes up attributes, a Mock, holds
            # nothing.)
            held = getattr(s, "held", None) if callable(getattr(type(s), "held", None)) \
                else None
            bus = getattr(s, "__self__", None)
            if isinstance(bus, EventBus) and getattr(s, "__func__", None) is EventBus.emit:
                held = bus.held if bus.holding else None
            if held is not None:
                holds.append(held)
        return tuple(holds)

    def held(self) -> Awaitable[None] | None:
        """None when no subscriber holds new objects back now; else what to await before
        asking again (see the class).  What it raises (the proof log stalled) stops the
        object, and the command."""
        for held in self._holds:
            wait = held()
            if wait is not None:
                return wait
        return None

    async def room(self) -> None:
        """Wait until no subscriber holds new objects back."""
        while (wait := self.held()) is not None:
            await wait

    def _ignored(self) -> frozenset[type]:
        ignored = EVENT_TYPES
        for s in self._subscribers:
            ignores = getattr(s, "ignores", None)
            ignored = ignored & ignores if isinstance(ignores, frozenset) else frozenset()
        return ignored

    def emit(self, event: Event) -> None:
        for s in self._subscribers:
            s(event)
