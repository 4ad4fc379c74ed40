"""What an Azure Storage answer that is not a success means in lakeshift's error tree
(DESIGN.md §4): the HTTP status and ``x-ms-error-code`` of a Blob request (azure/rest.py)
or a DFS one (azure/dfs.py) → one lakeshift error, so nothing above ``stores/`` inspects a
status code."""

from __future__ import annotations

import re
from typing import Any

from lakeshift.errors import (
    ArchivedError,
    AuthError,
    ForbiddenError,
    IntegrityError,
    InvalidNameError,
    LakeshiftError,
    MissingContainerError,
    NotFoundError,
    ServerCopyUnavailable,
    ThrottledError,
    TransientError,
    UsageError,
)

#: The service could not read a copy source (CannotVerifyCopySource: unreachable, refused, not
#: found from where it stands), or does not do From-URL requests at all (501 NotImplemented:
#: Azurite answers Put Blob From URL so).
COPY_SOURCE_CODES = ("CannotVerifyCopySource", "NotImplemented")


AUTH_CODES = frozenset({"AuthenticationFailed", "AuthorizationFailure",
                        "InvalidAuthenticationInfo", "NoAuthenticationInformation"})


def status_error(status: int, code: str, what: str, retry_after: str | None = None,
                 message: str = "", request_id: str = "",
                 credentials_worked: bool = False) -> LakeshiftError:
    """The lakeshift error for an Azure Storage HTTP status and x-ms-error-code.

    An authorisation code is the run's end (AuthError, exit 3) only while the credentials
    have not yet worked; once a request with them has succeeded, it is about this one request
    (a blob the SAS or role does not cover, a signature this request alone got wrong) and
    fails only its object, recorded with the code and the service's request ID."""
    ref = f", request {request_id}" if request_id else ""
    if code in COPY_SOURCE_CODES or status == 501:
        # (Before the auth codes: a source the service may not read is not our credential.)
        return ServerCopyUnavailable(f"{what}: the service cannot copy from the source "
                                     f"itself ({code or status}{ref})")
    if code in AUTH_CODES:
        if credentials_worked:
            return ForbiddenError(f"{what}: the service refused this request ({code}{ref})")
        return AuthError(f"{what}: Azure credentials rejected ({code}): check "
                         "AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_KEY / the SAS")
    if code == "BlobArchived":
        return ArchivedError(f"{what}: archived (Archive tier): rehydrate it to Hot or Cool, "
                             "or pass --skip-errors archived to record and skip it")
    if code == "ContainerNotFound":
        return MissingContainerError(f"{what}: container/filesystem does not exist: create it "
                                     "or fix the URL")
    if status == 404:
        return NotFoundError(f"{what}: not found")
    # Azure says Md5Mismatch; Azurite says InvalidOperation "Provided contentMD5 doesn't match."
    if code in ("Md5Mismatch", "InvalidMd5") or (
            status == 400 and "md5" in message.lower() and "match" in message.lower()):
        return IntegrityError(f"{what}: the service saw a different MD5 ({code})")
    if code == "Crc64Mismatch":  # (x-ms-content-crc64: CRC-64/NVME of the body)
        return IntegrityError(f"{what}: the service saw a different CRC64 ({code})")
    if code == "FeatureNotSupported":
        # Azurite in strict mode (500) refuses what it does not emulate, x-ms-content-crc64
        # among them; its message names the fix (--loose).
        said = re.search(r"<Message>([^<\n]*)", message)
        return UsageError(f"{what}: the service does not support a request lakeshift sends "
                          f"({code}: {said.group(1).strip() if said else message[:200]})")
    if code in ("InvalidResourceName", "InvalidUri", "OutOfRangeInput"):
        return InvalidNameError(f"{what}: invalid name at the destination ({code})")
    if status == 403:
        return ForbiddenError(f"{what}: permission denied ({code or status}{ref})")
    if status in (429, 503) or code in ("ServerBusy", "OperationTimedOut"):
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        return ThrottledError(f"{what}: throttled ({code or status})", delay)
    if status >= 500 or status in (408, 0):
        return TransientError(f"{what}: {code or status} {message}")
    return LakeshiftError(f"{what}: {code or status} {message}")


def _looks_like_s3(headers: Any, body: bytes) -> bool:
    """Whether an answer came from an S3 service: its ``x-amz-…`` headers (moto's
    ``x-amzn-requestid``), or S3's error naming a bucket."""
    return any(name.lower().startswith("x-amz") for name in headers) or \
        b"<BucketName>" in body[:4096]
