"""--include / --exclude globs.

A pattern is matched against the name relative to the source root.  ``*`` and ``?`` match
within one path segment, ``**`` matches across segments; a pattern without ``/`` matches the
last segment (the file name) at any depth.  An object is taken when it matches some
include (or there are none) and no exclude.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1:end].replace("!", "^", 1) + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def _matches(pattern: str, rel: str) -> bool:
    target = rel if "/" in pattern else rel.rsplit("/", 1)[-1]
    return _compile(pattern.lstrip("/")).match(target) is not None


class NameFilter:
    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)

    def __call__(self, rel: str) -> bool:
        if self.include and not any(_matches(p, rel) for p in self.include):
            return False
        return not any(_matches(p, rel) for p in self.exclude)
