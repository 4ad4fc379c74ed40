"""One error tree.  The class of an error decides what happens to it (DESIGN.md §4).

Backends translate SDK errors into these at the store boundary; nothing above
``lakeshift.stores`` looks at HTTP status codes.
"""

from __future__ import annotations

from typing import Any

from lakeshift.redact import redact


class LakeshiftError(Exception):
    """Base of every error lakeshift raises on purpose.

    Its message is redacted when the error is made (``redact``): whatever keeps or prints
    it later — the control DB, reports, the error log — never sees a secret."""

    exit_code = 4
    retryable = False
    #: Short name used in failure logs and ``--skip-errors``.
    kind = "error"

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class UsageError(LakeshiftError):
    """The user must fix a flag, URL, config, or a missing bucket/container first."""

    exit_code = 2
    kind = "usage"


class MissingContainerError(UsageError):
    """The bucket, container, filesystem or local directory a URL names does not exist.
    ``copy`` and ``run`` create a missing destination; ``check`` reports it and creates
    nothing."""

    kind = "missing-container"


class EndpointUnreachable(UsageError):
    """A store's endpoint never answered a command's first contact with it (its start-up
    check): no connection (refused, timed out, a name not found) or no response, over a
    few tries in a bounded time (``stores/reach.py``).  The message names the endpoint and
    where it was set.  Once an endpoint has answered, a later outage is a TransientError."""

    kind = "unreachable"


class EndpointMismatch(EndpointUnreachable):
    """A store's endpoint answered a command's first contact, but not as that service does:
    an error status without the service's own error (a web server's 404, Azure Storage's
    answer to an S3 request).  The message names the endpoint, its status and where it was
    set; like EndpointUnreachable it is exit 2, and nothing is created there."""

    kind = "wrong-endpoint"


class UnreadableRootError(UsageError):
    """The directory (or container) a source URL names exists but may not be read: nothing
    can be listed, so the command stops first (exit 2) -- its kind names the cause, as an
    unreadable object's does (``forbidden``), not ``usage``."""

    kind = "forbidden"


class SchemaOutdated(UsageError):
    """A control DB opened only to read (``lakeshift.reading_only()``, the monitor) has an
    older schema than this lakeshift's: it is upgraded only by a command that may write it
    (``lakeshift status``, ``run``, …), which the message names."""


class AuthError(LakeshiftError):
    """Credentials are missing or invalid; the message names what to set."""

    exit_code = 3
    kind = "auth"


class ObjectError(LakeshiftError):
    """An error about one object: it fails that object, not the run."""

    exit_code = 1
    #: Recorded as skipped, never as a failure, whatever --skip-errors says: there is
    #: nothing the copy could have done (a symlink loop, a link to the destination folder).
    skipped_always = False


class NotFoundError(ObjectError):
    """An object vanished between listing and reading."""

    kind = "missing"


class ForbiddenError(ObjectError):
    """Permission denied on one object."""

    kind = "forbidden"


class ArchivedError(ObjectError):
    """The object sits in an archive tier (S3 GLACIER / DEEP_ARCHIVE not restored, Azure
    Archive): it cannot be read until it is restored.  Never retried: a retry cannot
    restore it (hours to days, and a cost the owner decides).  Skippable."""

    kind = "archived"


class SymlinkLoopError(NotFoundError):
    """A local symlink that resolves to itself or to a folder above it: not followed,
    skipped and recorded (reason ``symlink-loop``)."""

    kind = "symlink-loop"
    skipped_always = True


class DestinationFolderError(NotFoundError):
    """An entry of a local source that leads to the copy's local destination folder or
    inside it (a symlink there, a mount): not walked into nor read — each run would copy
    the last copy again, one level deeper — always skipped and recorded (reason
    ``destination-folder``)."""

    kind = "destination-folder"
    skipped_always = True


class DanglingLinkError(ObjectError):
    """A local symlink whose target does not exist: nothing to copy.  Its own kind
    (``dangling-link``), not ``missing``: the source was listed as it is, and no rerun will
    find it; the object's failure, or a skip with ``--skip-errors dangling-link``."""

    kind = "dangling-link"


class SpecialFileError(NotFoundError):
    """A local FIFO, socket or device file: no content to copy (reading a FIFO would wait
    forever for a writer), so it is skipped and recorded (reason ``not-a-file``)."""

    kind = "not-a-file"
    skipped_always = True


class InvalidNameError(ObjectError):
    """The name cannot exist at the destination."""

    kind = "invalid-name"


class IntegrityError(ObjectError):
    """Checksum or size mismatch: the object is re-copied and never marked done."""

    kind = "integrity"
    retryable = True


class ChangedError(ObjectError):
    """The source object changed while it was being copied (its ETag moved)."""

    kind = "changed"
    retryable = True


class ServerCopyUnavailable(ObjectError):
    """The destination service cannot read the source itself (a private endpoint, a
    source it cannot reach, an emulator without the request): ``--copy-mode auto`` streams
    instead, ``--copy-mode server`` fails the object with this."""

    kind = "server-copy"


class TransientError(ObjectError):
    """Timeouts, resets, 5xx: retried with backoff and jitter."""

    kind = "transient"
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConnectError(TransientError):
    """No connection could be opened to the endpoint (refused, timed out, a name not found,
    TLS refused): retried as any TransientError, but a store's first contact gives up on it
    sooner (``EndpointUnreachable``).  ``reason`` says which, in a few words."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[ConnectError], tuple[str, str], dict[str, object]]:
        # Pickled with its reason (a Dask task's error reaches the driver so).
        return type(self), (str(self), self.reason), self.__dict__


class ThrottledError(TransientError):
    """429 / 503 SlowDown / ServerBusy: retried, honouring Retry-After."""

    kind = "throttled"


class InternalError(LakeshiftError):
    """A bug in lakeshift."""

    exit_code = 4
    kind = "internal"
