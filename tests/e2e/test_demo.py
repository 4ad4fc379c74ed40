"""`make demo` must not rot: its small run is part of the suite."""

from __future__ import annotations

import subprocess
import sys

import pytest as _pytest

from tests import servers
from tests.servers import REPO

pytestmark = _pytest.mark.slow


def test_demo_small_run_migrates_and_verifies() -> None:
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--small"],
                       env=servers.clean_env() | {"PATH": servers.clean_env()["PATH"]},
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "OK: destination equals source" in p.stdout
    assert "Emulators stopped." in p.stdout
    # verify names its report, which the demo then removes: the demo says so.
    assert "The demo removes that report with its scratch folder" in p.stdout
    assert "Traceback" not in p.stderr
