"""Pytest fixtures for the WebHDFS double (tests/doubles/webhdfs.py), both dialects."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.dfs import DfsDouble
from tests.doubles.dfs import serve as serve_dfs
from tests.doubles.webhdfs import WebHdfsDouble, serve

#: What Gen1 URLs look like in tests; LAKESHIFT_WEBHDFS_ENDPOINT sends them to the double.
GEN1_HOST = "migrate1.azuredatalakestore.net"


def fake_az(bin_dir: Path, token: str) -> Path:
    """An ``az`` on PATH that answers ``az account get-access-token`` as the Azure CLI does
    (azure-identity's AzureCliCredential runs it): a stand-in for an Entra ID login."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "az"
    answer = json.dumps({"accessToken": token, "expires_on": int(time.time()) + 3600,
                         "tokenType": "Bearer"})
    script.write_text(f"#!{sys.executable}\nimport sys\n"
                      f"assert '--resource' in sys.argv and "
                      f"'https://datalake.azure.net' in sys.argv[sys.argv.index('--resource') + 1]"
                      f"\nprint({answer!r})\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


@pytest.fixture
def gen1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebHdfsDouble]:
    """A Gen1-dialect double; this process reaches it with ``LAKESHIFT_ADL_AUTH=cli`` through
    a fake ``az`` on PATH (``gen1.env`` holds the variables for a CLI subprocess)."""
    root = tmp_path / "gen1-root"
    root.mkdir()
    with serve(root, "gen1") as double:
        bin_dir = fake_az(tmp_path / "az-bin", double.token)
        env = {"LAKESHIFT_WEBHDFS_ENDPOINT": double.endpoint, "LAKESHIFT_ADL_AUTH": "cli",
               "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        double.env = env
        yield double


@pytest.fixture
def hadoop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebHdfsDouble]:
    """A Hadoop-dialect double (NameNode + DataNode), reached with user.name."""
    root = tmp_path / "hadoop-root"
    root.mkdir()
    with serve(root, "hadoop") as double:
        env = {"LAKESHIFT_WEBHDFS_ENDPOINT": double.endpoint, "HADOOP_USER_NAME": "migrator"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        double.env = env
        yield double


@pytest.fixture
def gen2(azurite: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[DfsDouble]:
    """An ADLS Gen2 account: the DFS double in front of the session's Azurite, reached
    with its connection string (``gen2.env()`` for a CLI subprocess)."""
    with serve_dfs(azurite.port) as double:
        for k, v in double.env().items():
            monkeypatch.setenv(k, v)
        yield double
