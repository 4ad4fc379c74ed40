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
