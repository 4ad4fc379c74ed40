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
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m``, or ``0``.  A bare number other than 0
    is refused: ``--every 15`` read as 15 seconds surprised a user who meant minutes."""
    t = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        if float(t) == 0:
            return timedelta(0)
        raise UsageError(f"{option} {text.strip()!r} has no unit: write {t}s, {t}m or {t}h")
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
    # Whole seconds: S3 and Azure report LastModified truncated to the second, so an object
    # written at 12:00:00.7 shows 12:00:00; a window ending at 12:00:00.5 would leave it
    # before the next window's start for ever.  Ending on a whole second puts it in the next.
    end = (utc(now) - lag).replace(microsecond=0)
    if last_end is None:
        return Window(None, end)
    start = (utc(last_end) - overlap).replace(microsecond=0)
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


# --- deletion cap ----------------------------------------------------------------------------

#: What ``--delete`` may remove in a pass (all its partitions together) when
#: ``--max-delete`` is not given.
DEFAULT_MAX_DELETE = 1000


@dataclass(frozen=True)
class DeleteCap:
    """``--max-delete``: at most ``count`` deletions in a pass, or ``percent`` of the
    destination objects the pass listed (all its partitions together); ``explicit`` when
    the user gave it (else the default)."""

    count: int | None = DEFAULT_MAX_DELETE
    percent: float | None = None
    explicit: bool = False

    @classmethod
    def parse(cls, text: str | int | None) -> DeleteCap:
        if text is None:
            return cls()
        t = str(text).strip()
        try:
            if t.endswith("%"):
                pct = float(t[:-1])
                if not 0 <= pct <= 100:
                    raise ValueError(t)
                return cls(None, pct, True)
            n = int(t)
            if n < 0:
                raise ValueError(t)
            return cls(n, None, True)
        except ValueError:
            raise UsageError(f"--max-delete {text!r}: use a number of objects (e.g. 500) or "
                             "a percentage of the destination objects the pass lists (e.g. "
                             "2%)") from None

    def limit(self, destination_objects: int) -> int:
        if self.percent is not None:
            return int(destination_objects * self.percent / 100)
        assert self.count is not None
        return self.count

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


# --- schedules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """``--every 15m`` (a fixed interval from the end of the previous pass's start) or
    ``--cron '*/15 * * * *'`` (UTC)."""

    text: str
    every: timedelta | None = None
    cron: str | None = None

    @classmethod
    def parse(cls, every: str | None, cron: str | None) -> Schedule | None:
        if every is not None and cron is not None:
            raise UsageError("use --every or --cron, not both")
        if every is not None:
            step = parse_duration(every, "--every")
            if step < timedelta(seconds=1):
                raise UsageError(f"--every {every!r}: the interval must be at least 1s")
            return cls(f"every {every}", every=step)
        if cron is not None:
            from cronsim import CronSim, CronSimError

            try:
                CronSim(cron, datetime.now(UTC))
            except (CronSimError, ValueError) as e:
                raise UsageError(f"--cron {cron!r} is not a cron expression ({e}): use five "
                                 "fields, minute hour day month weekday, e.g. "
                                 "'*/15 * * * *'") from None
            return cls(f"cron {cron}", cron=cron)
        return None

    def next_after(self, t: datetime) -> datetime:
        """The first run time after ``t`` (aware UTC)."""
        t = utc(t)
        if self.every is not None:
            return t + self.every
        from cronsim import CronSim

        assert self.cron is not None
        return utc(next(CronSim(self.cron, t)))
