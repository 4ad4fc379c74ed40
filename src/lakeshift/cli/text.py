"""Words in text output: counts with the right number ("1 object", "2 objects"), skip
reasons, and long messages cut at a word."""

from __future__ import annotations

from collections.abc import Mapping


class StopNotice:
    """Set ``given`` once a command has said in one line why it stopped (a sync schedule
    stopped by SIGINT or SIGTERM): the CLI then adds no generic "interrupted" line."""

    given = False


def noun(n: int, singular: str) -> str:
    """``singular`` or its plural, as ``n`` needs (the nouns of lakeshift's output only:
    object, partition, failure, request, size mismatch…)."""
    if n == 1:
        return singular
    return singular + ("es" if singular.endswith(("ch", "sh", "s", "x")) else "s")


def count(n: int, singular: str) -> str:
    """``1 object``, ``0 objects``, ``2 objects``."""
    return f"{n} {noun(n, singular)}"


#: How a skip reason reads after its count (the JSON summary keeps the keys): an
#: adjective, or a noun that takes the count's number.
_SKIP_ADJECTIVES = {
    "identical": "identical",
    "exists": "already at the destination (--overwrite never)",
    "missing": "missing at the source (--skip-errors)",
    "forbidden": "forbidden (--skip-errors)",
    "archived": "archived, not restored (--skip-errors)",
}
_SKIP_NOUNS = {"folder-marker": "folder marker", "invalid-name": "invalid name",
               "destination-folder": "destination folder", "dangling-link": "dangling link",
               "symlink-loop": "symlink loop"}
#: Skips that only --skip-errors makes (else each is a failure): said so, as for the
#: adjectives above ("2 forbidden (--skip-errors)", "1 dangling link (--skip-errors)").
_SKIP_ERRORS_NOUNS = frozenset({"dangling-link"})


def skip_reasons(by_reason: Mapping[str, int]) -> str:
    """``3 identical, 1 folder marker, 2 invalid names``: largest first."""
    parts = []
    for why, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        if why in _SKIP_NOUNS:
            parts.append(count(n, _SKIP_NOUNS[why]) +
                         (" (--skip-errors)" if why in _SKIP_ERRORS_NOUNS else ""))
        else:
            parts.append(f"{n} {_SKIP_ADJECTIVES.get(why, why)}")
    return ", ".join(parts)


def shorten(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters: cut at a word, ending in "…"
    (a single word longer than ``width`` is cut inside it, as nothing else fits)."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[:width - 1]
    if " " in cut and flat[width - 1] != " ":
        cut = cut[:cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"
