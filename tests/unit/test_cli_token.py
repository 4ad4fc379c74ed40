"""``--azure-auth cli``: lakeshift runs ``az account get-access-token`` itself
(stores/azure/cli_token.py).  A fake ``az`` on PATH answers as the Azure CLI does; the
token is read from either spelling of its expiry, and each failure is one AuthError line
naming what to run (a hung ``az`` killed within the bound: tests/e2e/
test_cli_azure_first_contact.py)."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from lakeshift.errors import AuthError
from lakeshift.stores.azure.cli_token import AzureCliTokens

SCOPE = "https://storage.azure.com/.default"


def _fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """An ``az`` on PATH running ``script`` (sh); it records its arguments in ``args``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args"\n{script}\n')
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return tmp_path / "args"


def _token() -> tuple[str, int]:
    got = asyncio.run(AzureCliTokens().get_token(SCOPE))
    return got.token, got.expires_on


def test_the_token_and_either_spelling_of_its_expiry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = _fake_az(tmp_path, monkeypatch, """cat <<'X'
{"accessToken": "tok-1", "expires_on": 1900000000, "expiresOn": "2030-03-17 17:46:40.000000"}
X""")
    assert _token() == ("tok-1", 1900000000)
    assert args.read_text().split() == ["account", "get-access-token", "--output", "json",
                                        "--resource", "https://storage.azure.com"]
    args.unlink()
    (tmp_path / "bin" / "az").write_text("""#!/bin/sh
echo '{"accessToken": "tok-2", "expiresOn": "2030-01-02 03:04:05.000000"}'
""")
    from datetime import datetime

    assert _token() == ("tok-2", int(datetime(2030, 1, 2, 3, 4, 5).timestamp()))


@pytest.mark.parametrize("script,line", [
    ("echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1",
     "--azure-auth cli: the Azure CLI is not logged in: run `az login` (and `az account set "
     "--subscription …`), or choose another --azure-auth"),
    # A warning first (a new version is out): the line said is az's ERROR line.
    ("echo 'WARNING: A new release of Azure CLI is available.' >&2; echo 'ERROR: AADSTS70043: "
     "The refresh token has expired. https://x.example/t?sig=c2VjcmV0c2lnbmF0dXJl' >&2; exit 1",
     "--azure-auth cli: `az account get-access-token` failed: ERROR: AADSTS70043: The "
     "refresh token has expired. https://x.example/t?sig=***"),
    ("exit 7", "--azure-auth cli: `az account get-access-token` failed: exit status 7: run "
     "`az account get-access-token --resource https://storage.azure.com` to see why"),
    ("echo 'not json'", "--azure-auth cli: `az account get-access-token` printed no token "
     "lakeshift can read: run `az account get-access-token --resource "
     "https://storage.azure.com` to see what it prints"),
])
def test_each_failure_is_one_line_naming_what_to_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, line: str) -> None:
    _fake_az(tmp_path, monkeypatch, script)
    with pytest.raises(AuthError) as got:
        _token()
    said = str(got.value)
    assert said == line or (said.startswith(line) and "sig=***" in line), said
    assert len(said.splitlines()) == 1
    assert "c2VjcmV0c2lnbmF0dXJl" not in str(got.value)
