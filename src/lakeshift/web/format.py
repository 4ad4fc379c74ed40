"""How the pages write numbers, sizes, durations and times (binary units, like the CLI)."""

from __future__ import annotations

from datetime import datetime

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: float | None) -> str:
    """1536 → '1.5 KiB'."""
    value = float(n or 0)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_UNITS[-1]}"  # pragma: no cover


def rate(bytes_per_s: float | None) -> str:
    return f"{size(bytes_per_s)}/s"


def seconds(s: float | None) -> str:
    """65.2 → '1m 05s'; under a minute with one decimal."""
    value = float(s or 0)
    if value < 60:
        return f"{value:.1f} s"
    m, sec = divmod(int(value), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%SZ") if t is not None else "—"


def count(n: int | None) -> str:
    return f"{int(n or 0):,}"


FILTERS = {"size": size, "rate": rate, "seconds": seconds, "when": when, "count": count}
