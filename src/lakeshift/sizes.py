"""Human sizes, as the CLI and the API take them: 8MiB, 4M, 100MB, 65536; and rates, a size
per second with an optional ``/s``: 200MiB/s."""

from __future__ import annotations

import re

from lakeshift.errors import UsageError

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1024**3, "gb": 1000**3, "gib": 1024**3, "t": 1024**4,
          "tb": 1000**4, "tib": 1024**4}


def parse_size(text: str, option: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"{option} {text!r} is not a size: use e.g. 8MiB, 100MB or 65536")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def size_per_second(text: str, option: str) -> str:
    """A rate as a user writes it, ``200MiB/s`` or ``200MiB``, as the size moved each second
    (``200MiB``); one that is no size per second is refused naming ``option``."""
    size = re.sub(r"\s*/\s*s\s*$", "", text, flags=re.IGNORECASE)
    try:
        parse_size(size, option)
    except UsageError:
        raise UsageError(f"{option} {text!r} is not a size per second: use e.g. 200MiB/s, "
                         "100MB/s or 65536") from None
    return size


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def size_arg(value: int | str, option: str) -> int:
    """A size given to the API: bytes as an int, or a string such as ``"8MiB"``."""
    return value if isinstance(value, int) else parse_size(value, option)
