"""Entra ID tokens from the Azure CLI (``--azure-auth cli``): ``az account get-access-token``
run by lakeshift itself, within the first-contact bound.

A service principal's first token request and every store's first request are bounded
(stores/reach.py: 40 s by default); the Azure CLI is a process, not an endpoint, and
azure-identity's AzureCliCredential bounds it its own way: 10 s, then a kill of that one
process (``az`` is a shell script whose Python child goes on), and when its wait is
cancelled (Ctrl-C, an outer bound) no kill at all.  Here ``az`` runs in a session of its
own and is given ``http.FIRST_CONTACT_FACTOR * http.CONNECT_SECONDS`` seconds; when it runs
over, or its wait is cancelled, its process group -- whose id is ``az``'s PID -- is killed,
and the one line says what to run to see why (an AuthError, exit 3).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from datetime import datetime
from typing import Any, NamedTuple

from lakeshift.errors import AuthError
from lakeshift.redact import redact
from lakeshift.stores import http

_OPTION = "--azure-auth cli"


class AccessToken(NamedTuple):
    """What azure-core's AccessToken holds (BearerTokens and obstore's credential provider
    read these two)."""

    token: str
    expires_on: int


def cli_seconds() -> float:
    """How long ``az account get-access-token`` may take: the first-contact bound."""
    return http.FIRST_CONTACT_FACTOR * http.CONNECT_SECONDS


class AzureCliTokens:
    """An async credential as azure-identity's (``get_token(*scopes)``, ``close()``) that
    asks the Azure CLI each time (as AzureCliCredential does: the CLI keeps its own
    cache)."""

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        resource = scopes[0].removesuffix("/.default") if scopes else ""
        az = shutil.which("az")
        if az is None:
            raise AuthError(f"{_OPTION}: the Azure CLI (az) is not on PATH: install it and run "
                            "`az login`, or choose another --azure-auth")
        ask = f"az account get-access-token --resource {resource}"
        limit = cli_seconds()
        try:
            proc = await asyncio.create_subprocess_exec(
                az, "account", "get-access-token", "--output", "json", "--resource", resource,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True,
                env=dict(os.environ, AZURE_CORE_NO_COLOR="true"))
        except OSError as e:
            raise AuthError(f"{_OPTION}: cannot run {az}: {e.strerror or e}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            _kill(proc)
            await proc.wait()
            raise AuthError(f"{_OPTION}: `az account get-access-token` gave no token within "
                            f"{limit:g} s (stopped): run `{ask}` to see why (`az login` if it "
                            "asks), or choose another --azure-auth") from None
        except BaseException:
            _kill(proc)  # cancelled (Ctrl-C, an outer bound): az does not outlive the wait
            raise
        if proc.returncode != 0:
            said = err.decode(errors="replace").strip()
            if ("az login" in said or "az account set" in said) and "AADSTS" not in said:
                raise AuthError(f"{_OPTION}: the Azure CLI is not logged in: run `az login` "
                                "(and `az account set --subscription …`), or choose another "
                                "--azure-auth")
            first = _error_line(said) or f"exit status {proc.returncode}"
            raise AuthError(redact(f"{_OPTION}: `az account get-access-token` failed: {first}: "
                                   f"run `{ask}` to see why"))
        return _parse(out, ask)

    async def close(self) -> None:
        return None


def _error_line(said: str) -> str:
    """The line of ``az``'s stderr that says what failed: its first ``ERROR:`` line (one
    of its ``WARNING:`` lines -- a new version is available, a deprecation -- can come
    first), else its first line; at most 200 characters."""
    lines = [ln.strip() for ln in said.splitlines() if ln.strip()]
    return next((ln for ln in lines if ln.startswith("ERROR")), lines[0] if lines else "")[:200]


def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill ``az`` and what it started (its session's process group, whose id is its
    PID)."""
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _parse(out: bytes, ask: str) -> AccessToken:
    """``accessToken`` and its expiry: ``expires_on`` (POSIX seconds, Azure CLI 2.54 and
    later) or ``expiresOn`` (local time, older ones)."""
    try:
        answer = json.loads(out)
        token = answer["accessToken"]
        if "expires_on" in answer:
            expires = int(answer["expires_on"])
        else:
            expires = int(datetime.strptime(answer["expiresOn"], "%Y-%m-%d %H:%M:%S.%f")
                          .timestamp())
        if not isinstance(token, str) or not token:
            raise ValueError("no token")
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"{_OPTION}: `az account get-access-token` printed no token lakeshift "
                        f"can read: run `{ask}` to see what it prints") from None
    return AccessToken(token, expires)
