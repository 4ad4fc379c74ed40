"""A command's first contact with a store's endpoint (its start-up check): an endpoint
that does not answer is said so in one line within a bounded time, not after minutes.

A wrong ``--s3-endpoint``, a firewall that drops packets, a name that does not resolve:
the start-up check would otherwise wait out every layer's limits (the connect limit per
try; when a connection opens but nothing answers, the 120 s stall limit per try: measured,
``copy`` said nothing for 365 s), then the retries.  Here the check makes at most
``http.FIRST_CONTACT_TRIES`` tries, all within ``http.FIRST_CONTACT_FACTOR *
http.CONNECT_SECONDS`` seconds (40 s by default), says on the ``lakeshift`` logger (stderr,
through the CLI) after the first failed try that it is trying again, and then raises
``EndpointUnreachable`` (a UsageError: exit 2) naming the endpoint and the setting it came
from.  An endpoint that answers anything — an error status included — has been reached:
that answer goes on as before, unless it is not the service's own (``not_the_service``:
a web server's 404, Azure Storage's 400 to an S3 request), which is EndpointMismatch, exit 2
naming the endpoint and the setting.  A TLS handshake failure is not tried again (it would
fail the same way); when an ``https://`` endpoint speaks plain HTTP the line says to use
``http://``, and when an ``http://`` one closes the connection before any response (what a
TLS-only server does) it asks whether to use ``https://``.  Only the start-up checks go
through here, and the first token request of a service principal (its Entra ID authority)
or a managed identity (its platform's endpoint: ``azure/tokens.py`` ``BearerTokens``, made
before the storage endpoint's check); a later outage of an endpoint that answered stays a
TransientError, retried as any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from lakeshift.errors import (
    ConnectError,
    EndpointMismatch,
    EndpointUnreachable,
    TransientError,
    UsageError,
)
from lakeshift.redact import redact
from lakeshift.stores import http
from lakeshift.stores.wire.errors import UNTRUSTED

T = TypeVar("T")

#: Where the notice that a first contact is being tried again goes: the CLI prints it on
#: stderr as ``lakeshift: …``; with no handler configured, Python's last-resort handler
#: prints the bare message on stderr.
log = logging.getLogger("lakeshift")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a user must know of an endpoint to fix it: the service (``S3``), its URL (as
    given, no secret in it) and the setting it came from (``--s3-endpoint``)."""

    service: str
    url: str
    setting: str


def not_the_service(endpoint: Endpoint, status: int, looks_like: str = "") -> EndpointMismatch:
    """The line for an endpoint whose first answer was an error status without the
    service's own error in it; ``looks_like`` names what answered when that is known."""
    what = f"(it looks like {looks_like})" if looks_like else \
        f"(not an {endpoint.service} service?)"
    return EndpointMismatch(
        f"the {endpoint.service} endpoint {redact(endpoint.url)} answered {status} without "
        f"an {endpoint.service} error {what}: check {endpoint.setting}")


def _tls_hint(url: str, reason: str) -> str:
    """What to do about a TLS handshake that failed, when the reason says it."""
    if url.startswith("https://") and "WRONG_VERSION_NUMBER" in reason:
        return (" (the server speaks plain HTTP, not TLS): use "
                f"http://{url.removeprefix('https://')} or check")
    return ": check"


def _tries(n: int) -> str:
    return f"{n} try" if n == 1 else f"{n} tries"


async def first_contact(fn: Callable[[], Awaitable[T]], endpoint: Endpoint) -> T:
    """``fn()`` (a start-up check's request or requests), tried again while no connection
    to ``endpoint`` opens or nothing answers; EndpointUnreachable when it never does within
    the bounds above.  Any other error of ``fn`` is raised as it is."""
    loop = asyncio.get_running_loop()
    connect = http.CONNECT_SECONDS
    budget = http.FIRST_CONTACT_FACTOR * connect
    url = redact(endpoint.url)
    started = loop.time()
    told = False

    def still_waiting() -> None:
        # Past the connect limit with the try still going: connected, and no answer yet.
        nonlocal told
        if not told:
            told = True
            log.warning("no answer from %s yet (connected, no response after %g s); still "
                        "waiting…", url, 1.5 * connect)

    tries = 0
    while True:
        tries += 1
        tls = False
        timer = loop.call_later(1.5 * connect, still_waiting)
        deadline = asyncio.timeout(max(0.0, started + budget - loop.time()))
        try:
            async with deadline:
                return await fn()
        except TimeoutError:
            if not deadline.expired():
                raise
            reason = f"no response within {budget:g} s"
        except ConnectError as e:
            if e.reason.startswith(UNTRUSTED):
                # It answered, with a certificate not trusted here: no try will change that.
                detail = e.reason[len(UNTRUSTED):].strip(" ()") or "untrusted"
                raise UsageError(
                    f"the {endpoint.service} endpoint {url} presented a certificate this "
                    f"machine does not trust ({detail}): check {endpoint.setting}, or trust "
                    "its CA: add it to the system's trust store or set SSL_CERT_FILE to a "
                    "PEM file that holds it") from None
            reason = e.reason
            tls = reason.startswith("TLS: ")
        except TransientError as e:
            if url.startswith("http://") and "before any response byte" in str(e):
                # What a TLS-only server does with a plain HTTP request (the wire client
                # has already tried it again): it closes the connection without a word.
                raise EndpointUnreachable(
                    f"cannot reach the {endpoint.service} endpoint {url}: the connection was "
                    "closed before any response (a TLS-only server?): use "
                    f"https://{url.removeprefix('http://')} or check {endpoint.setting}"
                ) from None
            raise
        finally:
            timer.cancel()
        elapsed = loop.time() - started
        # 0.5 s, then 1 s by default: three connects that time out fit the budget.
        pause = 0.05 * connect * 2 ** (tries - 1)
        if tls:
            # A handshake that failed fails the same way again: said at once.
            raise EndpointUnreachable(
                f"cannot reach the {endpoint.service} endpoint {url}: {reason}"
                f"{_tls_hint(url, reason)} {endpoint.setting}")
        if tries >= http.FIRST_CONTACT_TRIES or elapsed + pause >= budget:
            raise EndpointUnreachable(
                f"cannot reach the {endpoint.service} endpoint {url}: {reason} "
                f"({_tries(tries)} in {elapsed:.0f} s): check {endpoint.setting}, the network "
                "and any firewall")
        if not told:
            told = True
            log.warning("no answer from %s yet (%s); trying again…", url, reason)
        await asyncio.sleep(pause)
