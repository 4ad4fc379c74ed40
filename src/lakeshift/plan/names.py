"""Names the destination cannot hold, and what to do about them (--invalid-names).

Rules for Azure Blob / ADLS Gen2 names (REST reference "Naming and Referencing Containers,
Blobs, and Metadata"): 1 to 1,024 characters; at most 254 path segments; no segment may end
in "." (a trailing dot or slash is dropped or refused); no backslash (clients turn it into
"/" and signatures break); no control characters (U+0000–U+001F, U+007F), no U+FFFE/U+FFFF,
and nothing that is not UTF-8 (a local file name in another encoding); no empty segment
("//", a leading "/") and no "." or ".." segment.  On a hierarchical destination (ADLS Gen2,
local disk) a name cannot be both a file and a directory: S3's "a" and "a/b" collide.

``--invalid-names encode`` percent-encodes the offending characters (``\\`` → ``%5C``, a
control character → ``%0A``…, a trailing dot → ``%2E``, the "/" of an empty segment or of a
file/directory collision → ``%2F``, and "%" itself → ``%25`` in a renamed name); every
renaming is recorded (control DB, verify report) so the objects still pair.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LENGTH = 1024
MAX_SEGMENTS = 254


@dataclass(frozen=True, slots=True)
class NameProblem:
    rule: str
    detail: str


def _bad_char(ch: str) -> bool:
    o = ord(ch)
    # Lone surrogates are bytes of a local file name that are not UTF-8; U+FFFE and U+FFFF
    # are not characters.  Neither can travel in a URL.
    return ch == "\\" or o < 0x20 or o == 0x7F or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF)


# Anything that could break a rule: a fast screen before the detailed checks.
_SUSPECT = re.compile(r"[\\\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]|//|^/|/$|\.(/|$)"
                      r"|(^|/)\.\.?(/|$)")
#: ``_SUSPECT``'s characters alone: one scan of a character set (the alternation above
#: tried each branch at every position, ~16k instructions for a 25-character name, once
#: per object listed).  Its other branches are substring tests (``(^|/)\.\.?(/|$)`` needs
#: a "." before a "/" or the end, which ``\.(/|$)`` already matches).
_SUSPECT_CHAR = re.compile(r"[\\\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def problem(name: str) -> NameProblem | None:
    """The first rule ``name`` breaks, or None."""
    if name and len(name) <= MAX_LENGTH and name[0] != "/" and name[-1] != "/" and \
            name[-1] != "." and "//" not in name and "./" not in name and \
            not _SUSPECT_CHAR.search(name) and name.count("/") < MAX_SEGMENTS:
        return None  # (the screen _SUSPECT, in C-level tests: see _SUSPECT_CHAR)
    if not name:
        return NameProblem("empty", "empty name")
    if len(name) > MAX_LENGTH:
        return NameProblem("too-long", f"{len(name)} characters (at most {MAX_LENGTH})")
    segments = name.split("/")
    if len(segments) > MAX_SEGMENTS:
        return NameProblem("too-many-segments",
                           f"{len(segments)} path segments (at most {MAX_SEGMENTS})")
    for ch in name:
        if ch == "\\":
            return NameProblem("backslash", "contains a backslash")
        if _bad_char(ch):
            if 0xD800 <= ord(ch) <= 0xDFFF:
                return NameProblem("not-utf8", "is not valid UTF-8")
            if ord(ch) >= 0xFFFE:
                return NameProblem("noncharacter", f"contains U+{ord(ch):04X}")
            return NameProblem("control-character", f"contains control character U+{ord(ch):04X}")
    for seg in segments:
        if seg == "":
            return NameProblem("empty-segment", "has an empty path segment (// or a leading or "
                               "trailing /)")
        if seg in (".", ".."):
            return NameProblem("dot-segment", f"has a {seg!r} path segment")
        if seg.endswith("."):
            return NameProblem("trailing-dot", f"segment {seg!r} ends with a dot")
    return None


def encode(name: str) -> str | None:
    """A valid name standing for ``name``, or None when none can be made (too long)."""
    out = []
    segments = name.split("/")
    for i, seg in enumerate(segments):
        enc = "".join(_escape(c) if (_bad_char(c) or c == "%") else c for c in seg)
        if enc.endswith("."):
            enc = enc[:-1] + "%2E"
        if enc in ("", ".", ".."):
            enc = {"": "%2F" if i < len(segments) - 1 or i == 0 else "",
                   ".": "%2E", "..": "%2E%2E"}[enc]
        out.append(enc)
    # Empty segments were turned into "%2F"; join them to their neighbour, not with "/".
    result = ""
    for seg in out:
        if seg == "%2F":
            result += "%2F"
        else:
            result += ("/" if result and not result.endswith("%2F") else "") + seg
    if problem(result) is not None:
        return None
    return result


def _escape(ch: str) -> str:
    """%XX for each byte: a lone surrogate stands for the undecodable byte it escapes."""
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:
        return f"%{o - 0xDC00:02X}"
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


class CollisionTracker:
    """Finds names that need a directory where a file of that name was already written
    (``a`` then ``a/b``) in a sorted listing, holding only the files that are prefixes of
    what comes next."""

    def __init__(self) -> None:
        self._files: list[str] = []

    def check(self, name: str) -> str | None:
        """The file ``name`` collides with, or None; then remember ``name`` as a file."""
        while self._files and not name.startswith(self._files[-1]):
            self._files.pop()
        hit = next((f for f in self._files if name.startswith(f + "/")), None)
        self._files.append(name)
        return hit


def collision_name(name: str, file: str) -> str:
    """``a/b`` colliding with the file ``a`` becomes ``a%2Fb``."""
    return file + "%2F" + name[len(file) + 1:]
