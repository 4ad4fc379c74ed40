"""--include / --exclude globs, matched by wcmatch (a maintained glob library).

A pattern is matched against the name relative to the source root.  ``*`` and ``?`` match
within one path segment, ``**`` matches across segments; a pattern without ``/`` matches the
last segment (the file name) at any depth; a leading ``/`` anchors a pattern at the root.
``[abc]``, ``[a-z]`` and ``[!abc]`` match one character other than ``/``; a ``!`` that is not
first in the brackets is a plain ``!``; a ``]`` first in the brackets is a plain ``]``.  A
``[`` without its ``]`` (``a[b``, ``a[]b``) is refused: it is a typo more often than a name
(``[[]`` or ``\\[`` match a plain ``[``).  Matching
is case-sensitive and ``*`` matches names starting with ``.``.  An object is taken when it
matches some include (or there are none) and no exclude.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lakeshift.errors import UsageError

# GLOBSTAR: ``**`` crosses folders; DOTGLOB: ``*`` takes dot-files too; CASE: the same on
# every OS.  MATCHBASE (a pattern without ``/`` matches the file name) is added per pattern.
# (wcmatch is imported with the first pattern: a run without --include/--exclude does not
# pay for it at start-up.)
# What wcmatch compiles a bracket holding only reversed ranges (``[z-a]``) into: a pattern
# that can match nothing, which is always a mistake.
_NEVER = "(?!)"


def compile_glob(pattern: str, option: str = "--include") -> Callable[[str], bool]:
    """A matcher for one pattern; UsageError (naming the option) for a pattern that is
    empty, cannot be compiled, or can never match."""
    from wcmatch import glob

    body = pattern.lstrip("/")
    flags = glob.GLOBSTAR | glob.DOTGLOB | glob.CASE
    if "/" not in pattern:
        flags |= glob.MATCHBASE
    if not body:
        raise UsageError(f"{option} {pattern!r}: empty pattern: give a glob such as '*.csv'")
    if (at := _unclosed_bracket(pattern)) is not None:
        raise UsageError(f"{option} {pattern!r} is not a valid glob: the '[' at character "
                         f"{at + 1} has no closing ']' (a ']' right after '[' or '[!' is "
                         "part of the set); to match a '[' itself write [[] or \\[")
    try:
        regexes, _ = glob.translate(body, flags=flags)
        matcher = glob.compile(body, flags=flags)
    except Exception as e:  # the library's own errors (ValueError, re.error, limits)
        raise UsageError(f"{option} {pattern!r} is not a valid glob ({e}): see "
                         "docs/copy.md, \"Globs\"") from None
    if any(_NEVER in r for r in regexes):
        raise UsageError(f"{option} {pattern!r} can match nothing (a range such as [z-a] is "
                         "reversed): write ranges low to high, e.g. [a-z]")
    return matcher.match


class NameFilter:
    """Built once per run; building it checks every pattern (UsageError, exit 2)."""

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._include = [compile_glob(p, "--include") for p in self.include]
        self._exclude = [compile_glob(p, "--exclude") for p in self.exclude]

    def __call__(self, rel: str) -> bool:
        if self._include and not any(m(rel) for m in self._include):
            return False
        return not any(m(rel) for m in self._exclude)


def _unclosed_bracket(pattern: str) -> int | None:
    """The index of the first ``[`` that opens no complete set (as glob syntax reads it: a
    ``!`` or ``^`` and then a ``]`` right after the ``[`` belong to the set), else None.
    wcmatch would match such a ``[`` as itself; ``a[]b`` is a slip, not a name."""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] in "!^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            close = pattern.find("]", j)
            if close < 0:
                return i
            i = close + 1
            continue
        i += 1
    return None
