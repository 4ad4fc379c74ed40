"""adl:// with a service principal, as a user sets one up (AZURE_CLIENT_ID, AZURE_TENANT_ID,
AZURE_CLIENT_SECRET): azure-identity asks the token-endpoint double (tests/doubles/entra.py,
reached over HTTPS through AZURE_AUTHORITY_HOST) for a Gen1 token; nothing real is contacted
and no instance-metadata endpoint is asked (the environment holds no managed identity and
lakeshift uses one only with --azure-auth managed-identity)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.doubles import entra
from tests.doubles.fixtures import GEN1_HOST
from tests.doubles.webhdfs import WebHdfsDouble
from tests.e2e.cli import lakeshift

GEN1_SCOPE = "https://datalake.azure.net/.default"


@pytest.fixture
def tokens(gen1: WebHdfsDouble) -> Iterator[entra.TokenEndpoint]:
    with entra.serve([gen1.token]) as endpoint:
        yield endpoint


def _env(cli_env: dict[str, str], gen1: WebHdfsDouble, tokens: entra.TokenEndpoint,
         secret: str = entra.CLIENT_SECRET) -> dict[str, str]:
    env = {**cli_env, "LAKESHIFT_WEBHDFS_ENDPOINT": gen1.endpoint, **tokens.env(secret)}
    env.pop("LAKESHIFT_ADL_AUTH", None)  # the service principal, found on its own
    return env


def test_service_principal_token_reads_gen1(cli_env: dict[str, str], gen1: WebHdfsDouble,
                                            tokens: entra.TokenEndpoint, container: str,
                                            blob_service: Any) -> None:
    gen1.write("sp/a.txt", b"a")
    gen1.write("sp/b/c.txt", b"c")
    p = lakeshift("copy", f"adl://{GEN1_HOST}/sp/", f"az://{container}/sp/", "--json",
                  env=_env(cli_env, gen1, tokens))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["copied"] == 2
    assert [r["scope"] for r in tokens.requests] == [GEN1_SCOPE]  # one token, reused
    assert tokens.requests[0]["grant_type"] == "client_credentials"


def test_a_token_the_service_calls_expired_is_renewed_once(
        cli_env: dict[str, str], gen1: WebHdfsDouble, tokens: entra.TokenEndpoint,
        container: str) -> None:
    gen1.write("exp/a.txt", b"a")
    tokens.tokens[:] = ["expired-token", gen1.token]
    p = lakeshift("copy", f"adl://{GEN1_HOST}/exp/", f"az://{container}/exp/", "--json",
                  env=_env(cli_env, gen1, tokens))
    assert p.returncode == 0, p.stderr
    assert len(tokens.requests) == 2
    # A token that is refused again after renewal: credentials, exit 3, one line.
    tokens.tokens[:] = ["expired-token"]
    p = lakeshift("copy", f"adl://{GEN1_HOST}/exp/", f"az://{container}/exp2/",
                  env=_env(cli_env, gen1, tokens))
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "credentials rejected" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_a_wrong_secret_is_one_line_exit_3_and_never_shown(
        cli_env: dict[str, str], gen1: WebHdfsDouble, tokens: entra.TokenEndpoint,
        container: str) -> None:
    gen1.write("w/a.txt", b"a")
    wrong = "wrong-secret-0a9b8c7d"
    p = lakeshift("copy", f"adl://{GEN1_HOST}/w/", f"az://{container}/w/",
                  env=_env(cli_env, gen1, tokens, wrong))
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert "AADSTS7000215" in p.stderr and "ADLS Gen1" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert wrong not in p.stdout + p.stderr
