"""Where a WebHDFS source lives and how requests to it are authorised.

Two dialects of the same REST API:

* **gen1** (``adl://ACCOUNT.azuredatalakestore.net/path``): HTTPS, an Entra ID bearer token
  for ``https://datalake.azure.net/.default`` from azure-identity — a service principal
  (``AZURE_CLIENT_ID`` + ``AZURE_TENANT_ID`` + ``AZURE_CLIENT_SECRET`` or
  ``AZURE_CLIENT_CERTIFICATE_PATH``), or managed identity / the Azure CLI login only when
  asked for with ``--azure-auth managed-identity`` / ``cli``, or with
  ``LAKESHIFT_ADL_AUTH`` (same values), which applies to adl:// sources only: ``--azure-auth``
  is shared with an Azure destination that may use an account key.
* **hadoop** (``webhdfs://`` plain HTTP, ``swebhdfs://`` TLS): Hadoop's simple
  authentication (``user.name``: ``HADOOP_USER_NAME``, else the local user name) or a
  delegation token (``HADOOP_DELEGATION_TOKEN``, sent as ``delegation=``; a secret).
  Kerberos (SPNEGO) is not supported.

``LAKESHIFT_WEBHDFS_ENDPOINT`` replaces ``scheme://host:port`` (a gateway, a private
endpoint, or a test double on loopback).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Literal

from lakeshift.errors import AuthError, UsageError
from lakeshift.redact import register_secret
from lakeshift.stores.base import StoreOptions
from lakeshift.urls import StoreURL

Dialect = Literal["gen1", "hadoop"]
#: Hadoop 3's NameNode HTTP and HTTPS ports, for URLs that give none.
_DEFAULT_PORTS = {"webhdfs": 9870, "swebhdfs": 9871}
_MISSING_GEN1 = ("no credentials for ADLS Gen1: set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
                 "AZURE_CLIENT_SECRET (a service principal), or pass --azure-auth "
                 "managed-identity|cli (or set LAKESHIFT_ADL_AUTH to one of them)")


@dataclass(frozen=True)
class WebHdfsSettings:
    dialect: Dialect
    #: ``scheme://host:port`` of the NameNode (or Gen1's account host), no trailing slash.
    endpoint: str
    #: gen1: which azure-identity credential to build (service-principal,
    #: managed-identity, cli).
    token_source: str | None = None
    user: str | None = None
    delegation: str | None = None

    def auth_params(self) -> dict[str, str]:
        """Query parameters that authorise a Hadoop request (none for Gen1)."""
        if self.dialect != "hadoop":
            return {}
        if self.delegation:
            return {"delegation": self.delegation}
        return {"user.name": self.user} if self.user else {}


def resolve(url: StoreURL, options: StoreOptions) -> WebHdfsSettings:
    env = os.environ
    override = env.get("LAKESHIFT_WEBHDFS_ENDPOINT", "").rstrip("/")
    if url.scheme == "adl":
        endpoint = override or f"https://{url.bucket}"
        return WebHdfsSettings("gen1", endpoint, token_source=_gen1_token_source(options))
    host = url.bucket if ":" in url.bucket else f"{url.bucket}:{_DEFAULT_PORTS[url.scheme]}"
    proto = "https" if url.scheme == "swebhdfs" else "http"
    endpoint = override or f"{proto}://{host}"
    delegation = env.get("HADOOP_DELEGATION_TOKEN") or None
    register_secret(delegation)
    user = env.get("HADOOP_USER_NAME") or _local_user()
    return WebHdfsSettings("hadoop", endpoint, user=user, delegation=delegation)


def _gen1_token_source(options: StoreOptions) -> str:
    env = os.environ
    mode = env.get("LAKESHIFT_ADL_AUTH") or options.azure_auth
    if mode in ("managed-identity", "cli"):
        return mode
    if mode not in ("auto", "service-principal"):
        raise UsageError(f"--azure-auth / LAKESHIFT_ADL_AUTH {mode} does not apply to ADLS "
                         "Gen1 (it takes Entra ID tokens only): use auto, service-principal, "
                         "managed-identity or cli")
    sp = env.get("AZURE_CLIENT_ID") and env.get("AZURE_TENANT_ID") and (
        env.get("AZURE_CLIENT_SECRET") or env.get("AZURE_CLIENT_CERTIFICATE_PATH"))
    if not sp:
        raise AuthError(_MISSING_GEN1)
    register_secret(env.get("AZURE_CLIENT_SECRET"))
    return "service-principal"


def _local_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
