"""Keep secrets out of every message, log line and report.

Two layers: patterns that look like secrets (SAS signatures, account keys, passwords in
URLs, presigned-URL signatures) and the exact secret values lakeshift loaded at run time
(registered by the credential code), so a key never leaks even in an unusual shape.
"""

from __future__ import annotations

import re

_SECRETS: set[str] = set()

#: Where a secret value that the message goes on after ends: before punctuation that runs
#: to the end of the word (``sig=XYZ: error``, ``(…&sig=XYZ)``, ``sig=XYZ.``), so that the
#: punctuation stays.  No SAS signature, account key, AWS credential or token ends in one
#: of these; a ``:`` or ``.`` inside a value (a ``se=`` time, a JWT) is followed by more of
#: it and stays redacted.  Every character a pattern's value stops at is one of the word
#: ends here (``;`` included), so a value is always redacted up to where it stops.
_TO_WORD_END = r"(?=[:),;\]}>.!?]*(?:[\s\"'&<;]|$))"

_PATTERNS = [
    # (A password may end in any character: it runs to the next ; & or space, as before.)
    (re.compile(r"(?i)(password|pwd)=[^;&\s]+"), r"\1=***"),
    (re.compile(r"(?i)(AccountKey|SharedAccessSignature|SharedAccessKey)=[^;&\s]+?"
                + _TO_WORD_END), r"\1=***"),
    (re.compile(r"(?i)([?&](?:sig|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|"
                r"se|skoid|sktid|token)=)[^&\s\"'<]+?" + _TO_WORD_END), r"\1***"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@"), r"\1***@"),
    (re.compile(r"(?i)(Authorization:\s*)(?:[A-Za-z][\w-]*\s+)?\S+?" + _TO_WORD_END),
     r"\1***"),
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
