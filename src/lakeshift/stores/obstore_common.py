"""What the obstore-backed stores share: client options and error translation."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from obstore import exceptions as obx

from lakeshift.errors import (
    ArchivedError,
    AuthError,
    ChangedError,
    ForbiddenError,
    LakeshiftError,
    NotFoundError,
    ThrottledError,
    TransientError,
)
from lakeshift.redact import redact
from lakeshift.stores import http

# lakeshift retries on its own (engine.retry); obstore's own retries would hide throttling
# from the limiter and make a wrong endpoint hang for minutes.
RETRY_CONFIG: Any = {"max_retries": 0, "retry_timeout": timedelta(seconds=30)}


#: obstore's limit on a whole request, set far out of the way: a large ranged GET under
#: --max-bandwidth or over a slow link may take hours.  Reads are bounded by the stall limit
#: instead (``http.STALL_SECONDS``, applied in obstore_stream).
REQUEST_LIMIT = timedelta(days=7)


def client_options(allow_http: bool) -> Any:
    return {"allow_http": allow_http,
            "connect_timeout": timedelta(seconds=http.CONNECT_SECONDS),
            "timeout": REQUEST_LIMIT, "pool_idle_timeout": timedelta(seconds=60)}


_STATUS = re.compile(r"status(?: code)?:? (\d{3})")
_AUTH_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AuthenticationFailed",
               "ExpiredToken", "InvalidToken", "AuthorizationFailure",
               "NoAuthenticationInformation")


def translate(exc: BaseException, what: str) -> LakeshiftError:
    """Map an obstore exception about ``what`` (a key or URL) into the lakeshift tree."""
    text = redact(str(exc))
    first = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, LakeshiftError):
        return exc
    if isinstance(exc, obx.PreconditionError):
        return ChangedError(f"{what}: the source object changed during the copy")
    if isinstance(exc, FileNotFoundError | obx.NotFoundError):
        return NotFoundError(f"{what}: not found")
    if any(c in text for c in ARCHIVED_CODES):
        return ArchivedError(archived_message(what))
    if isinstance(exc, obx.UnauthenticatedError) or any(c in text for c in _AUTH_CODES):
        code = _code(text)
        detail = "" if code != "403" else f": {first[:200]}"
        return AuthError(f"{what}: credentials rejected ({code}){detail}")
    if isinstance(exc, obx.PermissionDeniedError):
        return ForbiddenError(f"{what}: permission denied ({_code(text)})")
    m = _STATUS.search(text)
    status = int(m.group(1)) if m else 0
    if status in (429, 503) or "SlowDown" in text or "ServerBusy" in text:
        return ThrottledError(f"{what}: throttled ({status})")
    if status >= 500 or status == 0:
        return TransientError(f"{what}: {first[:300]}")
    if status == 403:
        return ForbiddenError(f"{what}: permission denied ({_code(text)})")
    if status == 404:
        return NotFoundError(f"{what}: not found")
    return TransientError(f"{what}: {first[:300]}") if status == 408 else \
        LakeshiftError(f"{what}: {first[:300]}")


#: What S3 (InvalidObjectState: GLACIER / DEEP_ARCHIVE not restored) and Azure (BlobArchived:
#: Archive tier) answer a read of an archived object.
ARCHIVED_CODES = ("InvalidObjectState", "BlobArchived")


def archived_message(what: str) -> str:
    return (f"{what}: archived (storage class or tier needs a restore before it can be "
            "read); restore it, or pass --skip-errors archived to record and skip it")


def _code(text: str) -> str:
    m = re.search(r"<Code>([^<]+)</Code>", text)
    return m.group(1) if m else "403"
