"""Delta windows: which modification times a sync pass takes, and which time-partitioned
folders (``--path-template``) can hold them.

All times are timezone-aware UTC. A window is half-open, ``[start, end)``, like Data
Factory's ``modifiedDatetimeStart`` / ``modifiedDatetimeEnd``; ``start=None`` means "since
the beginning" (a full copy).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lakeshift.errors import UsageError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, option: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m``, or a bare number of seconds."""
    t = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return timedelta(seconds=float(t))
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(t):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t):
        raise UsageError(f"{option} {text!r} is not a duration: use e.g. 30s, 15m, 2h, 1d or 1h30m")
    return timedelta(seconds=total)


def utc(t: datetime) -> datetime:
    """``t`` as aware UTC; a naive time is taken to be UTC already (as the DB stores it)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """Modification times ``[start, end)``; ``start`` None takes everything before ``end``."""

    start: datetime | None
    end: datetime

    def __post_init__(self) -> None:
        if self.start is not None and self.start > self.end:
            raise ValueError(f"window start {self.start} is after its end {self.end}")

    def contains(self, t: datetime) -> bool:
        t = utc(t)
        return (self.start is None or t >= self.start) and t < self.end

    @property
    def empty(self) -> bool:
        return self.start is not None and self.start >= self.end


def delta_window(last_end: datetime | None, now: datetime, lag: timedelta,
                 overlap: timedelta = timedelta(0)) -> Window:
    """The window of the next pass of a partition.

    ``last_end``: the end of that partition's last successful window (its JobRunTime), or
    None for a partition with no history (a full copy). The new window ends at ``now - lag``
    — an object's LastModified is when its upload *started*, and listings lag behind writes,
    so the newest minutes are left to the next pass — and starts ``overlap`` before the last
    end, so that the edge of the previous window is looked at twice (identical objects are
    skipped, so this costs requests, not bytes).
    """
    end = utc(now) - lag
    if last_end is None:
        return Window(None, end)
    start = utc(last_end) - overlap
    return Window(min(start, end), end)


# --- time-partitioned folders -------------------------------------------------------------

#: Template tokens, coarsest first, with the strftime field each renders.
_TOKENS = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M"}
_ORDER = list(_TOKENS)
_TOKEN_RE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class PathTemplate:
    """A folder layout such as ``logs/{yyyy}/{MM}/{dd}/{HH}/``.

    Tokens: ``{yyyy}`` year, ``{MM}`` month, ``{dd}`` day, ``{HH}`` hour, ``{mm}`` minute;
    they must appear coarsest first without gaps (``{yyyy}…{MM}…{dd}``), each at most once.
    Text between them is literal (``dt={yyyy}-{MM}-{dd}/``).
    """

    text: str
    #: The finest token, which sets the step between folders.
    finest: str

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        tokens = _TOKEN_RE.findall(text)
        if "{" in _TOKEN_RE.sub("", text) or "}" in _TOKEN_RE.sub("", text):
            raise UsageError(f"--path-template {text!r}: unbalanced braces")
        if not tokens:
            raise UsageError(f"--path-template {text!r} has no time token: use "
                             "{yyyy}, {MM}, {dd}, {HH}, {mm}, e.g. 'logs/{yyyy}/{MM}/{dd}/'")
        unknown = [t for t in tokens if t not in _TOKENS]
        if unknown:
            raise UsageError(f"--path-template {text!r}: unknown token {{{unknown[0]}}}; "
                             "use {yyyy}, {MM}, {dd}, {HH}, {mm}")
        if tokens != _ORDER[:len(tokens)]:
            raise UsageError(f"--path-template {text!r}: tokens must run coarsest first "
                             "without gaps ({yyyy}, then {MM}, {dd}, {HH}, {mm})")
        if text.startswith("/"):
            raise UsageError(f"--path-template {text!r} must be relative to the source root")
        return cls(text, tokens[-1])

    @property
    def static_prefix(self) -> str:
        """The literal text before the first token: all a full pass can list."""
        return self.text[:self.text.index("{")]

    def render(self, t: datetime) -> str:
        """The prefix of the slot holding ``t``: every token filled in, literal text kept (a
        template may end in a folder, ``…/{HH}/``, or in a name prefix, ``…/events-{HH}``)."""
        out = self.text
        for token, fmt in _TOKENS.items():
            out = out.replace("{" + token + "}", t.strftime(fmt))
        return out

    def slot_start(self, t: datetime) -> datetime:
        t = utc(t)
        if self.finest == "yyyy":
            return t.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        if self.finest == "MM":
            return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if self.finest == "dd":
            return t.replace(hour=0, minute=0, second=0, microsecond=0)
        if self.finest == "HH":
            return t.replace(minute=0, second=0, microsecond=0)
        return t.replace(second=0, microsecond=0)

    def next_slot(self, t: datetime) -> datetime:
        if self.finest == "yyyy":
            return t.replace(year=t.year + 1)
        if self.finest == "MM":
            return t.replace(year=t.year + t.month // 12, month=t.month % 12 + 1)
        step = {"dd": timedelta(days=1), "HH": timedelta(hours=1),
                "mm": timedelta(minutes=1)}[self.finest]
        return t + step

    def prefixes(self, window: Window, limit: int = 1_000_000) -> Iterator[str]:
        """The folder prefixes whose time slot overlaps ``window``, oldest first. A window
        without a start cannot be enumerated: callers list ``static_prefix`` instead."""
        if window.start is None:
            raise ValueError("a window without a start has no finite set of folders")
        t = self.slot_start(window.start)
        n = 0
        while t < window.end:
            n += 1
            if n > limit:
                raise UsageError(f"--path-template {self.text!r}: the window "
                                 f"{window.start:%Y-%m-%d %H:%M} – {window.end:%Y-%m-%d %H:%M} "
                                 f"spans more than {limit:,} folders; use a coarser template "
                                 "or a full listing")
            yield self.render(t)
            t = self.next_slot(t)
