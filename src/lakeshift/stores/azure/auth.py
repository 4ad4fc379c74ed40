"""Azure credentials from the standard places.

Precedence with ``--azure-auth auto`` (the default), first match wins:

1. ``AZURE_STORAGE_CONNECTION_STRING`` (account key or SAS inside, endpoints too; how the
   emulator Azurite is reached);
2. ``AZURE_STORAGE_ACCOUNT_KEY`` (with the account from the URL or ``AZURE_STORAGE_ACCOUNT``);
3. ``AZURE_STORAGE_SAS_TOKEN``;
4. a service principal: ``AZURE_CLIENT_ID`` + ``AZURE_TENANT_ID`` + ``AZURE_CLIENT_SECRET``
   (or ``AZURE_CLIENT_CERTIFICATE_PATH``), through azure-identity;
5. nothing else: managed identity and the Azure CLI login are used only when asked for with
   ``--azure-auth managed-identity`` or ``--azure-auth cli`` (so no run ever probes the
   instance-metadata endpoint by surprise).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from lakeshift.errors import AuthError, UsageError
from lakeshift.redact import register_secret
from lakeshift.stores.base import StoreOptions
from lakeshift.stores.reach import Endpoint
from lakeshift.urls import StoreURL

Kind = Literal["key", "sas", "token"]
AUTH_CHOICES = ("auto", "connection-string", "key", "sas", "service-principal", "cli",
                "managed-identity")
_MISSING = ("no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_KEY"
            " or AZURE_STORAGE_SAS_TOKEN, or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET,"
            " or pass --azure-auth cli|managed-identity")


#: The Blob service's public host suffixes: Azure, Azure China, Azure US Government.  A URL
#: naming another host (``core.windows.net.evil.example``) is refused unless the user set the
#: endpoint explicitly: a key signs, and a bearer token goes, only where the user meant.
_URL_ACCOUNT = "the storage account name in the URL"

AZURE_SUFFIXES = ("core.windows.net", "core.chinacloudapi.cn", "core.usgovcloudapi.net")


@dataclass(frozen=True)
class AzureSettings:
    account: str
    blob_endpoint: str  # https://ACCOUNT.blob.core.windows.net or the emulator's URL
    kind: Kind
    #: Secrets: never in a repr (which tracebacks and logs may show).
    key: str | None = field(default=None, repr=False)
    sas: str | None = field(default=None, repr=False)
    #: For kind == "token": which azure-identity credential to build.
    token_source: str | None = None
    #: Where blob_endpoint came from, for a message that says what to check.
    endpoint_setting: str = _URL_ACCOUNT

    @property
    def dfs_endpoint(self) -> str:
        """The account's DFS endpoint (directories, ACLs): ``AZURE_STORAGE_DFS_ENDPOINT``
        when set, else the blob endpoint with ``.blob.`` → ``.dfs.``; an emulator's or a
        private endpoint's address that has no ``.blob.`` serves both."""
        explicit = os.environ.get("AZURE_STORAGE_DFS_ENDPOINT")
        if explicit:
            return explicit.rstrip("/")
        return self.blob_endpoint.replace(".blob.", ".dfs.", 1)


def parse_connection_string(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part.strip():
            continue
        name, eq, value = part.partition("=")
        if not eq:
            raise UsageError("AZURE_STORAGE_CONNECTION_STRING is malformed: expected "
                             "Name=value pairs separated by ';'")
        out[name.strip().lower()] = value.strip()
    return out


def resolve(url: StoreURL, options: StoreOptions) -> AzureSettings:
    env = os.environ
    mode = options.azure_auth
    if mode not in AUTH_CHOICES:
        raise UsageError(f"--azure-auth {mode!r} is not one of {', '.join(AUTH_CHOICES)}")
    cs = env.get("AZURE_STORAGE_CONNECTION_STRING")
    if mode in ("auto", "connection-string") and cs:
        return _from_connection_string(url, cs)
    if mode == "connection-string":
        raise AuthError("--azure-auth connection-string: set AZURE_STORAGE_CONNECTION_STRING")
    key = env.get("AZURE_STORAGE_ACCOUNT_KEY") or env.get("AZURE_STORAGE_KEY")
    sas = env.get("AZURE_STORAGE_SAS_TOKEN")
    sp = env.get("AZURE_CLIENT_ID") and env.get("AZURE_TENANT_ID") and (
        env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH"))
    if mode == "auto" and not (key or sas or sp):
        raise AuthError(_MISSING)
    account = url.account or env.get("AZURE_STORAGE_ACCOUNT") or env.get(
        "AZURE_STORAGE_ACCOUNT_NAME")
    if not account:
        raise UsageError(f"{url.display()}: no storage account: use "
                         "abfss://FS@ACCOUNT.dfs.core.windows.net/... or set AZURE_STORAGE_ACCOUNT")
    # A private endpoint's or an emulator's address; the public one otherwise.
    endpoint = env.get("AZURE_STORAGE_BLOB_ENDPOINT") or ""
    if endpoint:
        check_url_host(url, endpoint, "AZURE_STORAGE_BLOB_ENDPOINT")
        where = "AZURE_STORAGE_BLOB_ENDPOINT"
    else:
        endpoint = _public_endpoint(url, "https", account, url.endpoint_suffix)
        where = _URL_ACCOUNT
    endpoint = endpoint.rstrip("/")
    if mode in ("auto", "key") and key:
        register_secret(key)
        _check_key(key, "AZURE_STORAGE_ACCOUNT_KEY")
        return AzureSettings(account, endpoint, "key", key=key, endpoint_setting=where)
    if mode in ("auto", "sas") and sas:
        register_secret(sas)
        return AzureSettings(account, endpoint, "sas", sas=sas.lstrip("?"),
                             endpoint_setting=where)
    if mode in ("auto", "service-principal") and sp:
        register_secret(env.get("AZURE_CLIENT_SECRET"))
        return AzureSettings(account, endpoint, "token", token_source="service-principal",
                             endpoint_setting=where)
    if mode in ("cli", "managed-identity"):
        return AzureSettings(account, endpoint, "token", token_source=mode,
                             endpoint_setting=where)
    if mode != "auto":
        raise AuthError(f"--azure-auth {mode}: its variables are not set. {_MISSING}")
    raise AuthError(_MISSING)


def _from_connection_string(url: StoreURL, cs: str) -> AzureSettings:
    parts = parse_connection_string(cs)
    if parts.get("usedevelopmentstorage", "").lower() == "true":
        from lakeshift.stores.azure.dev import DEV_ACCOUNT, DEV_ENDPOINT, DEV_KEY

        parts = {"accountname": DEV_ACCOUNT, "accountkey": DEV_KEY, "blobendpoint": DEV_ENDPOINT}
    account = parts.get("accountname")
    key = parts.get("accountkey")
    sas = parts.get("sharedaccesssignature")
    endpoint = parts.get("blobendpoint")
    if not account and endpoint:
        account = endpoint.rstrip("/").rsplit("/", 1)[-1] if "127.0.0.1" in endpoint \
            else endpoint.split("//", 1)[-1].split(".", 1)[0]
    if not account:
        raise UsageError("AZURE_STORAGE_CONNECTION_STRING has no AccountName (or BlobEndpoint)")
    if url.account and url.account != account:
        raise UsageError(f"{url.display()} names account {url.account!r} but "
                         f"AZURE_STORAGE_CONNECTION_STRING is for {account!r}: use one account")
    if endpoint:
        where = "the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING"
        check_url_host(url, endpoint, where)
    else:
        proto = parts.get("defaultendpointsprotocol", "https")
        # An EndpointSuffix in the connection string is the user's explicit choice.
        if parts.get("endpointsuffix"):
            endpoint = f"{proto}://{account}.blob.{parts['endpointsuffix']}"
            where = "the EndpointSuffix of AZURE_STORAGE_CONNECTION_STRING"
            check_url_host(url, endpoint, where)
        else:
            endpoint = _public_endpoint(url, proto, account, url.endpoint_suffix)
            where = "the AccountName of AZURE_STORAGE_CONNECTION_STRING"
    if key:
        register_secret(key)
        _check_key(key, "the AccountKey in AZURE_STORAGE_CONNECTION_STRING")
        return AzureSettings(account, endpoint.rstrip("/"), "key", key=key,
                             endpoint_setting=where)
    if sas:
        register_secret(sas)
        return AzureSettings(account, endpoint.rstrip("/"), "sas", sas=sas.lstrip("?"),
                             endpoint_setting=where)
    raise AuthError("AZURE_STORAGE_CONNECTION_STRING has neither AccountKey nor "
                    "SharedAccessSignature")


def _public_endpoint(url: StoreURL, proto: str, account: str, suffix: str | None) -> str:
    """The Blob endpoint a URL names; refuse a host that only looks like Azure's, and a
    path-style URL's host (an emulator's): no endpoint was set for it to name."""
    if url.host:
        raise UsageError(f"{url.written()}: host {url.host!r} is not Azure's and no endpoint "
                         "is set: a URL with the account in its path names the endpoint set "
                         "in AZURE_STORAGE_BLOB_ENDPOINT or the BlobEndpoint of "
                         "AZURE_STORAGE_CONNECTION_STRING (Azurite's, say): set it, or use "
                         "https://ACCOUNT.blob.core.windows.net/CONTAINER/path")
    suffix = suffix or "core.windows.net"
    if suffix not in AZURE_SUFFIXES:
        raise UsageError(f"{url.display()}: host suffix {suffix!r} is not Azure's "
                         f"({', '.join(AZURE_SUFFIXES)}): fix the URL, or set "
                         "AZURE_STORAGE_BLOB_ENDPOINT for a private endpoint")
    return f"{proto}://{account}.blob.{suffix}"


def check_url_host(url: StoreURL, endpoint: str, setting: str) -> None:
    """A URL that names a host must name Azure's or the endpoint's the user set.

    The set endpoint is where requests go; without this check a look-alike host
    (``ACCOUNT.blob.core.windows.net.evil.example``) would be accepted, written to the
    configured endpoint and labelled as the account (docs/credentials.md "Azure").
    """
    if url.host:
        _check_path_style(url, endpoint, setting)
        return
    suffix = url.endpoint_suffix
    if suffix is None or suffix in AZURE_SUFFIXES:
        return
    named = f"{url.account}.{'dfs' if url.gen2 else 'blob'}.{suffix}"
    endpoint_host = (urlsplit(endpoint).hostname or "").lower()
    if endpoint_host in (f"{url.account}.blob.{suffix}", f"{url.account}.dfs.{suffix}"):
        return
    raise UsageError(f"host {named!r} is neither Azure's ({', '.join(AZURE_SUFFIXES)}) nor "
                     f"the host of {setting} ({endpoint_host or endpoint!r}): fix the URL, or "
                     "use az://CONTAINER/path with that endpoint")


def _host_port(scheme: str, netloc: str) -> tuple[str, int | None]:
    parts = urlsplit(f"{scheme}://{netloc}")
    return (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def _check_path_style(url: StoreURL, endpoint: str, setting: str) -> None:
    """A path-style URL (``https://127.0.0.1:10000/ACCOUNT/CONTAINER/path``) names the set
    endpoint when it names its host and port and the account in its path (Azurite's
    ``http://127.0.0.1:10000/devstoreaccount1``): then it is the same place as
    ``az://CONTAINER/path`` there.  Its scheme aside: requests go to the endpoint as set."""
    ends = urlsplit(endpoint)
    if _host_port(url.form or "https", url.host or "") != _host_port(ends.scheme.lower(),
                                                                    ends.netloc):
        raise UsageError(f"host {url.host!r} of {url.written()} is neither Azure's "
                         f"({', '.join(AZURE_SUFFIXES)}) nor the host of {setting} "
                         f"({ends.netloc or endpoint!r}): fix the URL, or use "
                         "az://CONTAINER/path with that endpoint")
    named = ends.path.strip("/").split("/", 1)[0]
    if named != url.account:
        names = f"is for account {named!r}" if named else "names no account in its path"
        raise UsageError(f"{url.written()} names account {url.account!r} but {setting} "
                         f"({endpoint.rstrip('/')}) {names}: use az://CONTAINER/path with "
                         "that endpoint")


def _check_key(key: str, source: str) -> None:
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{source} is not an account key (not base64): copy key1 or key2 "
                         "again from the storage account's Access keys page") from None


#: Entra ID's authority for Azure's public cloud (azure-identity's default).
PUBLIC_AUTHORITY = "https://login.microsoftonline.com"


def token_authority(token_source: str | None) -> Endpoint | None:
    """Where a token source's tokens come from, for the first token request's bound
    (``BearerTokens``, stores/reach.py).  A service principal: ``AZURE_AUTHORITY_HOST`` (as
    azure-identity reads it: HTTPS when it names no scheme), else Azure's public authority.
    A managed identity: its platform's endpoint (``managed_identity_endpoint``).  None for
    the Azure CLI: a process, bounded by the same time on its own (azure/cli_token.py)."""
    if token_source == "cli":
        return None
    if token_source == "managed-identity":
        return managed_identity_endpoint()
    raw = os.environ.get("AZURE_AUTHORITY_HOST", "").strip()
    if raw:
        scheme, sep, rest = raw.partition("://")
        # azure-identity reads a scheme with urlparse, so a bare ``host:port`` whose host
        # could be a scheme's name (``localhost:8443``) has one, "localhost", which is not
        # HTTPS: its ValueError would be an internal error (exit 4).
        if (sep and scheme.lower() != "https") or (not sep and urlsplit(raw).scheme):
            raise UsageError(f"AZURE_AUTHORITY_HOST {raw} is not HTTPS: Entra ID tokens are "
                             f"asked for over HTTPS only: use https://{rest if sep else raw}")
        url = (raw if sep else f"https://{raw}").rstrip("/")
        if not urlsplit(url).hostname:  # "https://", "https:///x": no host to ask
            raise UsageError(f"AZURE_AUTHORITY_HOST {raw} names no host: set it to the Entra "
                             "ID authority's host (login.microsoftonline.us, say), or leave it "
                             "unset for Azure's public cloud")
        return Endpoint("Entra ID token", url, "AZURE_AUTHORITY_HOST")
    return Endpoint("Entra ID token", PUBLIC_AUTHORITY,
                    "AZURE_AUTHORITY_HOST (not set: Azure's public cloud)")


#: Where azure-identity asks for a managed identity's token when no platform says otherwise.
IMDS_ENDPOINT = "http://169.254.169.254"


def managed_identity_endpoint() -> Endpoint:
    """The endpoint a managed identity's token comes from, found as azure-identity's
    ManagedIdentityCredential finds it: ``IDENTITY_ENDPOINT`` (App Service, Service
    Fabric, Azure Arc), ``MSI_ENDPOINT`` (Cloud Shell, Azure ML), a workload identity's
    authority (``AZURE_FEDERATED_TOKEN_FILE`` with ``AZURE_TENANT_ID`` and
    ``AZURE_AUTHORITY_HOST``), else the instance metadata endpoint
    (``AZURE_POD_IDENTITY_AUTHORITY_HOST`` when set)."""
    env = os.environ
    service = "managed identity"
    for name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        if env.get(name):
            return Endpoint(service, env[name], name)
    if all(env.get(v) for v in ("AZURE_AUTHORITY_HOST", "AZURE_TENANT_ID",
                                "AZURE_FEDERATED_TOKEN_FILE")):
        authority = token_authority("service-principal")
        assert authority is not None
        return authority
    pod = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "").strip()
    if pod:
        return Endpoint(service, pod.rstrip("/"), "AZURE_POD_IDENTITY_AUTHORITY_HOST")
    return Endpoint(service, IMDS_ENDPOINT, "that this machine has a managed identity (the "
                    "instance metadata endpoint: IDENTITY_ENDPOINT and MSI_ENDPOINT are not "
                    "set)")


#: azure-identity's connect limit for the instance metadata endpoint, when its own
#: settings cannot be read (``PIPELINE_SETTINGS["connection_timeout"]`` of
#: azure/identity/_credentials/imds.py).
_IMDS_CONNECT_SECONDS = 2.0


def token_connect_seconds(token_source: str | None) -> float | None:
    """The seconds a token source's first token request really has to connect, where that
    is not lakeshift's per-request limit (``http.CONNECT_SECONDS``, which azure-identity's
    credentials take as an option of ``get_token``); None where it is.  A managed identity
    on the instance metadata endpoint (``managed_identity_endpoint``: none of the platform
    variables set) is azure-identity's ImdsCredential, which drops the per-request options
    and connects within its own pipeline's limit (2 s; its connect retries are off for the
    first contact only by how ``token_credential`` builds it, ``_MetadataIdentity``): a
    connect that timed out there is said with that limit, not ours."""
    if token_source != "managed-identity" or \
            managed_identity_endpoint().setting in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT",
                                                    "AZURE_AUTHORITY_HOST"):
        return None
    try:
        from azure.identity._credentials.imds import PIPELINE_SETTINGS

        value = PIPELINE_SETTINGS["connection_timeout"]
    except (ImportError, KeyError):  # (a private name: it may go)
        return _IMDS_CONNECT_SECONDS
    return float(value) if isinstance(value, int | float) else _IMDS_CONNECT_SECONDS


def token_credential(token_source: str | None) -> Any:
    """The async credential for a token source (``service-principal``, ``managed-identity``:
    azure-identity's; ``cli``: lakeshift's own, azure/cli_token.py): the one builder for Azure
    Storage and ADLS Gen1.  Instance metadata is asked only for ``managed-identity``; a
    service principal's authority is ``AZURE_AUTHORITY_HOST`` when set (a sovereign cloud or
    Azure Stack), else Azure's public one."""
    from azure.identity import aio

    token_authority(token_source)  # an authority that is not HTTPS: one line, exit 2
    # azure-identity logs each failed attempt as a WARNING (on stderr, through logging's
    # last-resort handler); BearerTokens reports the failure as one AuthError line instead.
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    if token_source == "cli":
        from lakeshift.stores.azure.cli_token import AzureCliTokens

        return AzureCliTokens()  # bounded, and killed when over (not AzureCliCredential)
    if token_source == "managed-identity":
        client_id = os.environ.get("AZURE_CLIENT_ID") or None
        if token_connect_seconds(token_source) is not None:
            return _MetadataIdentity(
                aio.ManagedIdentityCredential(client_id=client_id),
                aio.ManagedIdentityCredential(client_id=client_id, retry_connect=0))
        return aio.ManagedIdentityCredential(client_id=client_id)
    return aio.EnvironmentCredential()


class _MetadataIdentity:
    """A managed identity on the instance metadata endpoint: azure-identity's
    ImdsCredential takes azure-core's retry settings only when it is built (each request's
    options are dropped), so the first contact's "no connect tried again"
    (``BearerTokens._first_token``: ``retry_connect=0``) goes to a credential built with it
    (one connect of 2 s a try, not four with 4.8 s of backoff: ~13 s), and every other
    token request (renewals, obstore's reads) to one with azure-identity's own retries.
    (Each keeps its own token cache: one token request more a process.)"""

    def __init__(self, later: Any, first: Any) -> None:
        self._later = later
        self._first = first

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        if kwargs.get("retry_connect") == 0:
            return await self._first.get_token(*scopes, **kwargs)
        return await self._later.get_token(*scopes, **kwargs)

    async def close(self) -> None:
        await asyncio.gather(self._first.close(), self._later.close())
