"""Entra ID access tokens for Azure Storage and ADLS Gen1 (``BearerTokens``): fetched from
an azure-identity credential (or lakeshift's Azure CLI one, azure/cli_token.py) when first
needed, renewed before they expire or when the service refuses one, and the first request
bounded as a first contact with its authority (stores/reach.py).  The credential is built
in azure/auth.py; the Blob client (azure/rest.py), the DFS client (azure/dfs.py) and the
Gen1 WebHDFS store send the tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from lakeshift.errors import AuthError, ConnectError, LakeshiftError
from lakeshift.redact import redact
from lakeshift.stores import http, wire
from lakeshift.stores.reach import Endpoint, first_contact

#: The Entra ID scope of Azure Storage (Blob and DFS endpoints).
STORAGE_SCOPE = "https://storage.azure.com/.default"
#: The Entra ID scope of Azure Data Lake Store Gen1.
GEN1_SCOPE = "https://datalake.azure.net/.default"
_SERVICE_NAMES = {STORAGE_SCOPE: "Azure Storage", GEN1_SCOPE: "ADLS Gen1"}


def _no_connection(e: BaseException, limit: float) -> str | None:
    """Why azure-identity's token request opened no connection (``connection refused``,
    ``connect timed out after 10 s`` -- ``limit``: the seconds its connect had --,
    ``certificate not trusted (…)``, as wire says it), or None when it failed otherwise
    (an answer, a read that timed out).  Found also beneath the error a credential raised
    in its place (a managed identity's CredentialUnavailableError "no response from the
    IMDS endpoint", from the connect's)."""
    from azure.core.exceptions import ServiceRequestError

    seen: BaseException | None = e
    for _ in range(8):  # the chain of causes, not followed round a loop
        if seen is None or isinstance(seen, ServiceRequestError):
            break
        seen = seen.__cause__ or seen.__context__
    if not isinstance(seen, ServiceRequestError):
        return None
    e = seen
    cause = e.inner_exception or e.__cause__
    certificate = getattr(cause, "certificate_error", None)  # aiohttp's connector errors
    if isinstance(certificate, OSError):
        return wire.connect_reason(certificate)
    if isinstance(cause, TimeoutError):
        return f"connect timed out after {limit:g} s"
    os_error = getattr(cause, "os_error", None)
    if isinstance(os_error, OSError):
        return wire.connect_reason(os_error)
    if isinstance(cause, OSError):
        return wire.connect_reason(cause)
    return redact(str(cause or e).splitlines()[0][:200]) if str(cause or e) else \
        type(cause or e).__name__


async def _timed_out_how(url: str, limit: float) -> str:
    """Why a token request's connect to ``url`` timed out (after ``limit`` seconds):
    azure-core's one connect limit covers TCP and TLS together, so a TCP connection alone,
    opened now within a tenth of that limit, tells a TLS handshake that never completed
    (something accepts connections and never answers TLS: a proxy, a firewall) from a
    connect that never did.  Not asked when azure-identity goes through a proxy (its
    connect went there, not to ``url``)."""
    import urllib.request  # (here: its import is not free, and only a failure needs it)

    timed_out = f"connect timed out after {limit:g} s"
    split = urlsplit(url)
    host = split.hostname
    if split.scheme != "https" or not host or (
            urllib.request.getproxies_environment().get("https")
            and not urllib.request.proxy_bypass(host)):
        return timed_out
    try:
        async with asyncio.timeout(limit / 10):
            opened, _ = await asyncio.get_running_loop().create_connection(
                asyncio.Protocol, host, split.port or 443)
    except (OSError, TimeoutError):
        return timed_out
    opened.close()
    return wire.tls_stalled(limit)


class BearerTokens:
    """Entra ID access tokens for one ``scope`` (Azure Storage by default, ADLS Gen1 for
    adl:// sources) from an azure-identity async credential, fetched when first needed and
    renewed five minutes before they expire, or at once after ``expire()``.

    azure-identity's credentials cache their tokens until they near expiry, so asking the
    same credential again after the service refused a token would hand back the refused
    one: ``renew`` (when given) builds a fresh credential for that.  ``close()`` closes
    every credential used.

    ``authority`` (a service principal's token endpoint or a managed identity's,
    ``auth.token_authority``): the first token request is that endpoint's first contact
    (stores/reach.py): each try connects within ``http.CONNECT_SECONDS`` and no connect is
    tried again inside azure-identity (whose own limits are 300 s a connect, four times), so
    an endpoint that never answers is one line naming it and its setting within the
    first-contact bound, not minutes of silence (a connect that timed out is told from a TLS
    handshake that did not complete: ``_timed_out_how``).  Later requests (renewals mid-run)
    keep azure-identity's own retries.  The Azure CLI has no endpoint: its credential
    (azure/cli_token.py) bounds itself and raises its own one line.

    ``connect_seconds``: the connect limit the credential really has, when it does not take
    the per-request one (``auth.token_connect_seconds``: the instance metadata endpoint's
    credential connects within azure-identity's own 2 s; it takes ``retry_connect=0`` only
    when built, so ``auth.token_credential`` builds it so for the first contact), so that
    a connect that timed out is said with the limit it had; None: ``http.CONNECT_SECONDS``."""

    def __init__(self, credential: Any, scope: str = STORAGE_SCOPE,
                 renew: Callable[[], Any] | None = None,
                 authority: Endpoint | None = None,
                 connect_seconds: float | None = None) -> None:
        self.credential = credential
        self.scope = scope
        self.authority = authority
        self.connect_seconds = connect_seconds
        self._renew = renew
        self._retired: list[Any] = []
        self._token: str | None = None
        self._expires = 0.0
        self._reached = False
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token is None or time.time() > self._expires - 300:
            async with self._lock:
                while self._retired:  # replaced by renew: nothing asks them any more
                    await self._retired.pop().close()
                if self._token is None or time.time() > self._expires - 300:
                    if self.authority is not None and not self._reached:
                        t = await first_contact(self._first_token, self.authority)
                    else:
                        t = await self._ask()
                    self._reached = True
                    self._token, self._expires = t.token, float(t.expires_on)
        assert self._token is not None
        return self._token

    async def _ask(self, **bounds: Any) -> Any:
        try:
            return await self.credential.get_token(self.scope, **bounds)
        except LakeshiftError:
            raise  # lakeshift's own credential (the Azure CLI's) says it in its own words
        except Exception as e:  # azure-identity raises several classes
            limit = self.connect_seconds or http.CONNECT_SECONDS
            reason = _no_connection(e, limit) if bounds else None
            if reason is not None:
                if reason.startswith("connect timed out") and self.authority is not None:
                    reason = await _timed_out_how(self.authority.url, limit)
                raise ConnectError(f"Entra ID token request: {reason}", reason) from None
            first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            service = _SERVICE_NAMES.get(self.scope, self.scope)
            raise AuthError(redact(f"no Entra ID token for {service}: {first} — check "
                                   "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET or the "
                                   "--azure-auth credential")) from None

    async def _first_token(self) -> Any:
        # azure-core's per-request options, passed on by azure-identity's get_token: the
        # connect limit, and no connect tried again there (first_contact does that).  A
        # response cut short is still tried again there, as later.
        return await self._ask(connection_timeout=http.CONNECT_SECONDS, retry_connect=0)

    def expire(self, refused: str | None = None) -> None:
        """Forget the token (the service said it expired): the next request gets a new one,
        from a fresh credential when ``renew`` was given.  With ``refused`` (the token the
        service refused), only when that is still the current one: requests refused
        together renew once, not once each.  The replaced credential is closed at the next
        ``get``."""
        if refused is not None and refused != self._token:
            return
        self._token = None
        if self._renew is not None:
            self._retired.append(self.credential)
            self.credential = self._renew()

    async def close(self) -> None:
        for credential in (*self._retired, self.credential):
            await credential.close()
        self._retired.clear()
