"""Entra ID tokens for Azure Storage: fetched once, reused, renewed before they expire, and a
credential that fails is an AuthError with one clear line."""

from __future__ import annotations

import asyncio
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
