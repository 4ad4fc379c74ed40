"""The wire client's errors: each a ``WireError`` (an OSError: retryable)."""

from __future__ import annotations

import os
import socket
import ssl


class WireError(OSError):
    """The request failed on the wire (retryable)."""


class ConnectFailed(WireError):
    """No connection could be opened: refused, timed out, a name not found, TLS refused.
    ``reason`` says which, in a few words (no peer, no target)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def __reduce__(self) -> tuple[type[ConnectFailed], tuple[str, str], dict[str, object]]:
        # Pickled with its reason, as lakeshift.errors.ConnectError.
        return type(self), (str(self), self.reason), self.__dict__


class Stalled(WireError):
    """No bytes moved for stall_timeout seconds."""


class Disconnected(WireError):
    """The peer closed or reset the connection before the response ended."""


class _DeadIdle(Disconnected):
    """A reused connection closed before any response byte (the peer dropped it idle)."""


#: How ``connect_reason`` begins for a certificate the client does not trust: the endpoint
#: answered, and trying again will not help (stores/reach.py).
UNTRUSTED = "certificate not trusted"


def tls_stalled(seconds: float) -> str:
    """The reason for a connection that opened but whose TLS handshake did not complete
    within ``seconds``: something accepted it and never answered the handshake (a proxy or
    a firewall that holds connections, or not the server meant) -- not a connect that
    timed out, which sends the user looking for a dropped SYN."""
    return (f"connected, but the TLS handshake did not complete within {seconds:g} s — a "
            "proxy or firewall in the way?")


def connect_reason(e: OSError) -> str:
    """Why a connection could not be opened, in a few words (``connection refused``,
    ``name or service not known``, ``certificate not trusted (…)``): asyncio's own text
    ("Connect call failed (...)") says less than the error number does."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"{UNTRUSTED} ({e.verify_message})"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, socket.gaierror):
        text = e.strerror or type(e).__name__
    elif e.errno is not None and e.errno > 0:
        text = os.strerror(e.errno)
    else:
        text = e.strerror or type(e).__name__
    return text[:1].lower() + text[1:]
