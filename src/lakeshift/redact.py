"""Keep secrets out of every message, log line and report.

Two layers: patterns that look like secrets (SAS signatures, account keys, passwords in
URLs, presigned-URL signatures) and the exact secret values lakeshift loaded at run time
(registered by the credential code), so a key never leaks even in an unusual shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SECRETS: set[str] = set()

#: Where a secret value that the message goes on after ends: at a word end (a space, a
#: quote, ``&``, ``<``, ``;``) and before punctuation that runs to that end (``sig=XYZ:
#: error``, ``(…&sig=XYZ)``, ``sig=XYZ.``), so that the punctuation stays.  No SAS
#: signature, account key, AWS credential or token ends in one of these; a ``:`` or ``.``
#: inside a value (a ``se=`` time, a JWT) is followed by more of it and stays redacted.
#: A value's first character may be any its pattern takes (a quoted key: ``AccountKey="…"``).
#: The value is matched to its word end and the punctuation given back after (``_value``),
#: not found by a lookahead at each character: that took time quadratic in a run of
#: punctuation (16,000 dots after ``?sig=``: 2.5 s).
_REST = r"[^\s\"'&<;]*"
_WORD_END_PUNCTUATION = ":),]}>.!?"


def _value(prefix: str) -> Callable[[re.Match[str]], str]:
    """The replacement of a match whose group 1 is what precedes the value (kept, then
    ``prefix``) and whose last group is the value: redacted, but for the punctuation that
    ends its word (at least its first character is redacted)."""
    def replace(m: re.Match[str]) -> str:
        value = m.group(m.lastindex or 1)
        kept = value.rstrip(_WORD_END_PUNCTUATION) or value[:1]
        return m.group(1) + prefix + "***" + value[len(kept):]
    return replace


_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    # (A password may end in any character: it runs to the next ; & or space, as before.)
    (re.compile(r"(?i)(password|pwd)=[^;&\s]+"), r"\1=***"),
    (re.compile(r"(?i)(AccountKey|SharedAccessSignature|SharedAccessKey)=([^;&\s]"
                + _REST + ")"),
     _value("=")),
    (re.compile(r"(?i)([?&](?:sig|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|"
                r"se|skoid|sktid|token)=)([^&\s\"'<]" + _REST + ")"), _value("")),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@"), r"\1***@"),
    (re.compile(r"(?i)(Authorization:\s*)(?:[A-Za-z][\w-]*\s+)?(\S" + _REST + ")"),
     _value("")),
    # A SigV4 Authorization header goes on after its first word (", SignedHeaders=…,
    # Signature=HEX"): the signature is the secret part of it.
    (re.compile(r"(?i)(\bSignature=)[0-9a-f]{16,}"), r"\1***"),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so that ``redact`` removes it wherever it appears."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text
