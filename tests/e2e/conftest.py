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
