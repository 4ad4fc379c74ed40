"""Keep secrets out of every message, log line and report.

Two layers: patterns that look like secrets (SAS signatures, account keys, passwords in
URLs, presigned-URL signatures) and the exact secret values lakeshift loaded at run time
(registered by the credential code), so a key never leaks even in an unusual shape.
"""

from __future__ import annotations

import re

_SECRETS: set[str] = set()

_PATTERNS = [
    (re.compile(r"(?i)(AccountKey|SharedAccessSignature|SharedAccessKey|password|pwd)=([^;&\s]+)"),
     r"\1=***"),
    (re.compile(r"(?i)([?&](?:sig|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|"
                r"se|skoid|sktid|token)=)[^&\s\"']+"), r"\1***"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@"), r"\1***@"),
    (re.compile(r"(?i)(Authorization:\s*)(\S+\s+)?\S+"), r"\1***"),
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
