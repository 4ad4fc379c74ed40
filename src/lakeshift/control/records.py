"""Records of the control DB as plain data, importable without SQLAlchemy (the planner and
the CLI's help and ``copy`` paths use them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Job", "KeySpan", "as_utc"]


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    destination: str
    options: dict[str, Any]
    adf_table: str | None
    created_at: datetime


@dataclass(frozen=True)
class KeySpan:
    """Source keys a pass listed in full: those starting with ``prefix``, after
    ``start_after`` and in [``range_start``, ``range_end``) (None: no bound) — a listing
    of a partition, or of one folder of it under a path template (engine/sync.py)."""

    prefix: str
    start_after: str | None = None
    range_start: str | None = None
    range_end: str | None = None
