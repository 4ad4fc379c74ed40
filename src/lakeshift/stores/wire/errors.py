"""The wire client's errors: each a ``WireError`` (an OSError: retryable)."""

from __future__ import annotations


class WireError(OSError):
    """The request failed on the wire (retryable)."""


class Stalled(WireError):
    """No bytes moved for stall_timeout seconds."""


class Disconnected(WireError):
    """The peer closed or reset the connection before the response ended."""


class _DeadIdle(Disconnected):
    """A reused connection closed before any response byte (the peer dropped it idle)."""

