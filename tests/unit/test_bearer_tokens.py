"""Entra ID tokens for Azure Storage: fetched once, reused, renewed before they expire, and a
credential that fails is an AuthError with one clear line."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from lakeshift.errors import AuthError
from lakeshift.stores.azure.rest import BearerTokens


class Credential:
    def __init__(self, lifetime: float, fail: bool = False) -> None:
        self.lifetime = lifetime
        self.fail = fail
        self.calls = 0

    async def get_token(self, *scopes: str) -> Any:
        from azure.core.credentials import AccessToken

        self.calls += 1
        if self.fail:
            raise RuntimeError("AADSTS7000215: Invalid client secret provided.\ntrace...")
        return AccessToken(f"token-{self.calls}", int(time.time() + self.lifetime))


def test_a_token_is_reused_until_five_minutes_before_it_expires() -> None:
    async def main() -> None:
        long = Credential(3600)
        tokens = BearerTokens(long)
        got = await asyncio.gather(*(tokens.get() for _ in range(20)))
        assert set(got) == {"token-1"} and long.calls == 1
        short = Credential(200)  # inside the five-minute margin: renewed every time
        tokens = BearerTokens(short)
        assert [await tokens.get() for _ in range(3)] == ["token-1", "token-2", "token-3"]

    asyncio.run(main())


def test_a_failing_credential_is_one_clear_auth_error() -> None:
    async def main() -> None:
        with pytest.raises(AuthError) as e:
            await BearerTokens(Credential(3600, fail=True)).get()
        assert "AADSTS7000215" in str(e.value) and "\n" not in str(e.value)
        assert "--azure-auth" in str(e.value)

    asyncio.run(main())


def test_one_class_serves_every_scope_and_renews_after_expire() -> None:
    """ADLS Gen1 sources and Azure Storage share BearerTokens; each asks its own scope."""
    from lakeshift.stores.azure.rest import GEN1_SCOPE, STORAGE_SCOPE

    class Scoped(Credential):
        def __init__(self) -> None:
            super().__init__(3600)
            self.scopes: list[str] = []

        async def get_token(self, *scopes: str) -> Any:
            self.scopes.extend(scopes)
            return await super().get_token(*scopes)

    async def main() -> None:
        gen1, storage = Scoped(), Scoped()
        gen1_tokens = BearerTokens(gen1, GEN1_SCOPE)
        assert await gen1_tokens.get() == "token-1"
        gen1_tokens.expire()  # the service said 401: the next request gets a new token
        assert await gen1_tokens.get() == "token-2"
        await BearerTokens(storage).get()
        assert gen1.scopes == [GEN1_SCOPE, GEN1_SCOPE] and storage.scopes == [STORAGE_SCOPE]
        with pytest.raises(AuthError, match="ADLS Gen1"):
            await BearerTokens(Credential(3600, fail=True), GEN1_SCOPE).get()

    asyncio.run(main())


def test_requests_refused_together_renew_once_and_the_old_credential_is_closed() -> None:
    class Closable(Credential):
        closed = False

        async def close(self) -> None:
            self.closed = True

    made: list[Closable] = []

    def renew() -> Closable:
        made.append(Closable(3600))
        return made[-1]

    async def main() -> None:
        first = Closable(3600)
        tokens = BearerTokens(first, renew=renew)
        refused = await tokens.get()
        for _ in range(5):  # five requests in flight all got 401 with the same token
            tokens.expire(refused)
        assert len(made) == 1
        assert await tokens.get() == "token-1" and made[0].calls == 1  # the new credential's
        assert first.closed
        tokens.expire("an older token")  # refused before the renewal: nothing to do
        assert len(made) == 1

    asyncio.run(main())


def test_a_service_principal_s_first_token_is_a_bounded_first_contact(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With its authority given, the first token request is that endpoint's first contact
    (stores/reach.py): azure-identity's own connect retries (0.8 s, 1.6 s, 3.2 s apart) are
    off, so three tries fit the bound and the line names the authority and its setting;
    without that the bound would run out inside azure-identity ("no response within")."""
    from azure.identity.aio import ClientSecretCredential

    from lakeshift.errors import EndpointUnreachable
    from lakeshift.stores import http
    from lakeshift.stores.reach import Endpoint
    from tests.blackhole import refused_port

    monkeypatch.setattr(http, "CONNECT_SECONDS", 0.5)
    url = f"https://127.0.0.1:{refused_port()}"
    secret = "s3cret-client-value"

    async def main() -> str:
        credential = ClientSecretCredential("tenant-1", "client-1", secret, authority=url)
        tokens = BearerTokens(credential, authority=Endpoint(
            "Entra ID token", url, "AZURE_AUTHORITY_HOST"))
        try:
            with pytest.raises(EndpointUnreachable) as e:
                await tokens.get()
        finally:
            await tokens.close()
        return str(e.value)

    said = asyncio.run(main())
    # Three tries on an idle machine ("3 tries in 0 s"); on a loaded one a try can take
    # long enough that the bound holds two ("2 tries in 2 s"): either is connection refused,
    # said within the bound, never azure-identity's own retries running it out.
    assert re.fullmatch(
        re.escape(f"cannot reach the Entra ID token endpoint {url}: connection refused (")
        + r"[23] tries in \d s" + re.escape("): check AZURE_AUTHORITY_HOST, the network and "
                                           "any firewall"), said), said
    assert secret not in said


def test_the_token_authority_is_named_as_azure_identity_reads_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.stores.azure.auth import token_authority

    monkeypatch.delenv("AZURE_AUTHORITY_HOST", raising=False)
    public = token_authority("service-principal")
    assert public is not None
    assert (public.url, public.setting) == (
        "https://login.microsoftonline.com", "AZURE_AUTHORITY_HOST (not set: Azure's public cloud)")
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "login.chinacloudapi.cn/")  # no scheme: HTTPS
    china = token_authority("service-principal")
    assert china is not None
    assert (china.url, china.setting) == ("https://login.chinacloudapi.cn", "AZURE_AUTHORITY_HOST")
    # The Azure CLI has no endpoint (its credential bounds itself: azure/cli_token.py); a
    # managed identity's is its platform's.
    assert token_authority("cli") is None
    for name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                 "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    imds = token_authority("managed-identity")
    assert imds is not None and imds.url == "http://169.254.169.254", imds
    monkeypatch.setenv("MSI_ENDPOINT", "http://127.0.0.1:9/msi")
    cloud_shell = token_authority("managed-identity")
    assert cloud_shell is not None
    assert (cloud_shell.url, cloud_shell.setting) == ("http://127.0.0.1:9/msi", "MSI_ENDPOINT")
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/app")  # before MSI_ENDPOINT
    app = token_authority("managed-identity")
    assert app is not None and (app.url, app.setting) == ("http://127.0.0.1:9/app",
                                                          "IDENTITY_ENDPOINT")


def test_a_plain_http_authority_is_one_line_naming_the_fix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-identity refuses it with a ValueError (an internal error, exit 4, before)."""
    from lakeshift.errors import UsageError
    from lakeshift.stores.azure.auth import token_credential

    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "http://login.example.internal")
    for source in ("service-principal", None):
        with pytest.raises(UsageError) as e:
            token_credential(source)
        assert str(e.value) == (
            "AZURE_AUTHORITY_HOST http://login.example.internal is not HTTPS: Entra ID tokens "
            "are asked for over HTTPS only: use https://login.example.internal")


@pytest.mark.parametrize(("value", "said"), [
    # A bare host:port whose host reads as a URL scheme to urlparse (azure-identity's
    # reading): azure-identity's ValueError was an internal error (exit 4).
    ("localhost:8443", "AZURE_AUTHORITY_HOST localhost:8443 is not HTTPS: Entra ID tokens are "
                       "asked for over HTTPS only: use https://localhost:8443"),
    # No host: the line named the endpoint "https://https:" and its first contact was tried
    # three times, each try's reason a URL.
    ("https://", "AZURE_AUTHORITY_HOST https:// names no host: set it to the Entra ID "
                 "authority's host (login.microsoftonline.us, say), or leave it unset for "
                 "Azure's public cloud"),
    ("https:///tenant/", "AZURE_AUTHORITY_HOST https:///tenant/ names no host: set it to the "
                         "Entra ID authority's host (login.microsoftonline.us, say), or leave "
                         "it unset for Azure's public cloud"),
])
def test_an_authority_azure_identity_cannot_use_is_one_line_naming_the_fix(
        monkeypatch: pytest.MonkeyPatch, value: str, said: str) -> None:
    from lakeshift.errors import UsageError
    from lakeshift.stores.azure.auth import token_credential

    monkeypatch.setenv("AZURE_AUTHORITY_HOST", value)
    with pytest.raises(UsageError) as e:
        token_credential("service-principal")
    assert str(e.value) == said


def test_an_authority_with_a_path_or_a_trailing_slash_keeps_its_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.stores.azure.auth import token_authority

    for value, url in (("HTTPS://login.example.net/adfs/", "HTTPS://login.example.net/adfs"),
                       (" login.example.net/ ", "https://login.example.net")):
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", value)
        found = token_authority("service-principal")
        assert found is not None and found.url == url


@pytest.mark.slow
def test_the_metadata_endpoint_s_connect_timeout_is_said_with_its_own_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A managed identity on the instance metadata endpoint is azure-identity's
    ImdsCredential, which drops the per-request options and connects within its own 2 s:
    a connect that timed out there is said with that limit (the line said "connect timed
    out after 10 s", lakeshift's limit, which that credential never used).  And a try is
    one connect: the credential lakeshift builds takes ``retry_connect=0`` when built (the
    only way it takes it), so the first contact's three tries fit its 40 s bound in ~8 s;
    it connected four times a try, with 4.8 s of backoff (~13 s a try: one try, in 20 s,
    was all this test could wait for)."""
    from lakeshift.errors import EndpointUnreachable
    from lakeshift.stores import http
    from lakeshift.stores.azure import auth
    from tests.blackhole import Blackhole

    for name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(http, "CONNECT_SECONDS", 10.0)
    monkeypatch.setattr(http, "FIRST_CONTACT_TRIES", 3)
    with Blackhole() as hole:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", hole.url)
        endpoint = auth.managed_identity_endpoint()
        assert (endpoint.url, endpoint.setting) == (hole.url, "AZURE_POD_IDENTITY_AUTHORITY_HOST")

        async def main() -> str:
            tokens = BearerTokens(auth.token_credential("managed-identity"),
                                  authority=endpoint,
                                  connect_seconds=auth.token_connect_seconds("managed-identity"))
            try:
                with pytest.raises(EndpointUnreachable) as e:
                    await tokens.get()
            finally:
                await tokens.close()
            return str(e.value)

        started = time.monotonic()
        said = asyncio.run(main())
        took = time.monotonic() - started
    assert said.startswith(f"cannot reach the managed identity endpoint {hole.url}: connect "
                           "timed out after 2 s (3 tries in "), said
    # Three connects of 2 s, two pauses (0.5 s, 1 s) and a TCP look of 0.2 s after each.
    assert 6 <= took < 15, (took, said)


@pytest.mark.slow
def test_metadata_endpoint_renewals_keep_azure_identity_s_connect_retries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first contact's credential tries no connect again; every other token request of
    a managed identity on the instance metadata endpoint (a renewal mid-run, obstore's
    reads: no per-request options) still goes to one that does (connects 0, 1.6 and 3.2 s
    apart, then it gives up): a connection refused once is not the end of a long run."""
    from lakeshift.stores.azure import auth
    from lakeshift.stores.azure.tokens import STORAGE_SCOPE
    from tests.blackhole import refused_port

    for name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST",
                       f"http://127.0.0.1:{refused_port()}")

    async def timed(**options: Any) -> float:
        credential = auth.token_credential("managed-identity")
        started = time.monotonic()
        try:
            with pytest.raises(Exception):  # noqa: B017 (azure-identity's, any class)
                await credential.get_token(STORAGE_SCOPE, **options)
        finally:
            await credential.close()
        return time.monotonic() - started

    first = asyncio.run(timed(connection_timeout=10.0, retry_connect=0))
    renewal = asyncio.run(timed())
    assert first < 1.0, first
    assert renewal >= 4.5, renewal


def test_only_the_metadata_endpoint_has_a_connect_limit_of_its_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other token source takes lakeshift's per-request limit (None here)."""
    from lakeshift.stores.azure.auth import token_connect_seconds

    for name in ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_POD_IDENTITY_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
    assert token_connect_seconds("managed-identity") == 2.0  # the instance metadata endpoint
    for source in ("service-principal", "cli", None):
        assert token_connect_seconds(source) is None, source
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:9/app")  # App Service's
    assert token_connect_seconds("managed-identity") is None
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    monkeypatch.setenv("MSI_ENDPOINT", "http://127.0.0.1:9/msi")  # Cloud Shell's
    assert token_connect_seconds("managed-identity") is None
