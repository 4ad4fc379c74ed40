"""Fixtures shared by the end-to-end tests (the CLI run as a subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no cloud credentials and HOME/TMPDIR inside the test's folder:
    for CLI runs that touch only local disk."""
    from tests import servers

    env = servers.clean_env()
    env["HOME"] = str(tmp_path / "home")
    env["TMPDIR"] = str(tmp_path)
    return env


@pytest.fixture
def quick_env(cli_env: dict[str, str]) -> dict[str, str]:
    """``cli_env`` with ``LAKESHIFT_CONNECT_SECONDS=1``: each connect is given up after 1 s
    and a first contact after 4 s in all (10 s and 40 s by default), for the tests of an
    endpoint that does not answer or is not the service."""
    return dict(cli_env, LAKESHIFT_CONNECT_SECONDS="1")
