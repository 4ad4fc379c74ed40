"""What several HTTP backends share: the loopback rule for plain HTTP, the connect and
request timeouts, the stall limit."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import AsyncIterator
from typing import TypeVar
from urllib.parse import urlsplit

from lakeshift.errors import TransientError, UsageError

T = TypeVar("T")

def _connect_seconds() -> float:
    """``LAKESHIFT_CONNECT_SECONDS``, for tests (an unreachable endpoint found in a few
    seconds, not ~30); 10 when unset."""
    text = os.environ.get("LAKESHIFT_CONNECT_SECONDS", "")
    try:
        value = float(text) if text else 10.0
    except ValueError:
        return 10.0
    return value if value > 0 else 10.0


#: Seconds to open a connection (TCP, then TLS) before the attempt is given up (a
#: TransientError: retried).  Every HTTP backend uses it.
CONNECT_SECONDS = _connect_seconds()

#: A command's first contact with an endpoint (a store's start-up check,
#: ``stores/reach.py``) makes at most this many tries, each connect within
#: ``CONNECT_SECONDS``, all of them within ``FIRST_CONTACT_FACTOR * CONNECT_SECONDS``
#: (40 s by default), before it says the endpoint cannot be reached (a UsageError, exit 2).
FIRST_CONTACT_TRIES = 3
FIRST_CONTACT_FACTOR = 4.0

#: Seconds a control request (a listing page, a HEAD, a delete, a commit) may take from
#: start to end.  Data transfers have no such limit: they have the stall limit below.
REQUEST_SECONDS = 300.0

#: A data transfer whose connection moves no bytes for this many seconds is given up (a
#: TransientError: retried).  There is deliberately no limit on a whole request: a large
#: block under --max-bandwidth or over a slow link takes as long as it takes.  Read when
#: each transfer starts, so it can be changed at run time (tests make it short).
STALL_SECONDS = 120.0


async def next_or_stall(chunks: AsyncIterator[T], seconds: float, what: str) -> T:
    """The next item of ``chunks``; TransientError if none arrives within ``seconds``
    (StopAsyncIteration at the end, as ``__anext__``)."""
    try:
        return await asyncio.wait_for(anext(chunks), seconds)
    except TimeoutError:
        raise TransientError(f"{what}: no data for {seconds:g} s (stalled)") from None


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_http(endpoint: str, allow_http: bool) -> bool:
    """Whether plain HTTP is in use; refuse it to a non-loopback host unless allowed."""
    if not endpoint.lower().startswith("http://"):
        return False
    if not (allow_http or is_loopback(endpoint)):
        raise UsageError(f"endpoint {endpoint} is plain HTTP to a host that is not loopback: "
                         "use https, or pass --allow-http if you really mean it")
    return True
