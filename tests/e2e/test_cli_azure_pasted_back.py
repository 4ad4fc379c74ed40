"""An Azure place named in a summary or header is the same place when pasted back.

A URL that names the account in its host (``abfss://lake@ACCOUNT.dfs…``,
``https://ACCOUNT.blob…/lake/``) was shown as ``az://ACCOUNT/lake/…``: pasted back, that
is container ``ACCOUNT``, another place.  copy, check, scan and verify name it in the URL
form the user wrote, and a name taken from one of them, given back, finds the copy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.e2e.cli import lakeshift


@pytest.mark.parametrize("form", ["abfss", "https"])
def test_an_azure_place_shown_is_the_same_place_pasted_back(
        cli_env: dict[str, str], azurite: Any, container: str, tmp_path: Path,
        form: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    account = servers.AZURITE_ACCOUNT
    url = (f"abfss://{container}@{account}.dfs.core.windows.net/r/" if form == "abfss"
           else f"https://{account}.blob.core.windows.net/{container}/r/")

    p = lakeshift("copy", str(src), url, "--json", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    shown = json.loads(p.stdout)["destination"]
    assert shown == url, shown
    p = lakeshift("copy", str(src), url, env=cli_env)
    assert p.stdout.splitlines()[0] == f"Copy: {src} → {url}", p.stdout

    p = lakeshift("check", str(src), url, env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"found for {url}" in p.stdout and f"{url} exists and can be listed" in p.stdout
    p = lakeshift("scan", url, env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[0] == f"Scan: {url}", p.stdout
    p = lakeshift("verify", str(src), url, "--report", str(tmp_path / "v.json"), env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith(f"Verify {src} → {url}: 1 object checked, 1 verified"), p.stdout

    # The name shown, pasted back: the same objects, not a container named the account.
    p = lakeshift("verify", str(src), shown, "--report", str(tmp_path / "w.json"),
                  env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 verified" in p.stdout, p.stdout
    assert f"az://{account}/" not in p.stdout + p.stderr
