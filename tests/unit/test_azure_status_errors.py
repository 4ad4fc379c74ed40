"""The status-to-error map of the Blob REST client: which class (and so which exit code
and retry) each answer of the service becomes."""

from __future__ import annotations

import pytest

from lakeshift.errors import (
    AuthError,
    ForbiddenError,
    IntegrityError,
    InvalidNameError,
    LakeshiftError,
    MissingContainerError,
    NotFoundError,
    ThrottledError,
    TransientError,
)
from lakeshift.stores.azure.rest import status_error


@pytest.mark.parametrize(("status", "code", "message", "expected"), [
    (403, "AuthenticationFailed", "", AuthError),
    (403, "AuthorizationFailure", "", AuthError),
    (401, "NoAuthenticationInformation", "", AuthError),
    (404, "ContainerNotFound", "", MissingContainerError),  # a UsageError
    (404, "BlobNotFound", "", NotFoundError),
    (404, "", "", NotFoundError),
    (400, "Md5Mismatch", "", IntegrityError),
    (400, "InvalidOperation", "Provided contentMD5 doesn't match.", IntegrityError),
    (400, "InvalidResourceName", "", InvalidNameError),
    (400, "OutOfRangeInput", "", InvalidNameError),
    (403, "AuthorizationPermissionMismatch", "", ForbiddenError),
    (503, "ServerBusy", "", ThrottledError),
    (429, "", "", ThrottledError),
    (500, "OperationTimedOut", "", ThrottledError),
    (500, "InternalError", "", TransientError),
    (408, "", "", TransientError),
    (409, "BlobAlreadyExists", "", LakeshiftError),
])
def test_status_maps_to_error_class(status: int, code: str, message: str,
                                    expected: type[LakeshiftError]) -> None:
    err = status_error(status, code, "az://a/c/k", None, message)
    assert type(err) is expected
    assert str(err).startswith("az://a/c/k: ")


def test_throttling_carries_retry_after() -> None:
    err = status_error(503, "ServerBusy", "w", "7")
    assert isinstance(err, ThrottledError) and err.retry_after == 7.0
    assert status_error(503, "ServerBusy", "w", "soon").retry_after is None  # type: ignore[attr-defined]


def test_refusal_after_the_credentials_worked_fails_only_the_object() -> None:
    err = status_error(403, "AuthorizationFailure", "az://a/c/k", None, "", "req-42",
                       credentials_worked=True)
    assert type(err) is ForbiddenError and err.exit_code == 1
    assert "AuthorizationFailure" in str(err) and "req-42" in str(err)
    first = status_error(403, "AuthorizationFailure", "az://a/c/k", None, "", "req-42")
    assert type(first) is AuthError and first.exit_code == 3


def test_messages_are_redacted() -> None:
    err = status_error(500, "InternalError", "w", None,
                       "GET https://a.blob.core.windows.net/c/k?sv=1&sig=SECRETSIG failed")
    assert "SECRETSIG" not in str(err)
