"""The test suite's own support: timing helpers (tests/helpers.py) and the environment
tests/conftest.py gives the processes a test starts."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tests import helpers, servers


@pytest.mark.parametrize("now", [1_700_000_000.0, 1_700_000_000.3, 1_700_000_000.97,
                                 1_700_000_000.999999])
def test_next_second_ends_just_past_the_next_whole_second(
        now: float, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(helpers.time, "time", lambda: now)
    monkeypatch.setattr(helpers.time, "sleep", slept.append)
    helpers.next_second()
    [waited] = slept
    after = now + waited
    # Whatever comes after has a later whole second than whatever came before (LastModified,
    # sync windows), with the margin for coarse file-system clocks, and no more than that.
    assert math.floor(after) == math.floor(now) + 1
    assert after - math.floor(after) == pytest.approx(0.05)
    assert waited <= 1.05 + 1e-9


def test_python_children_write_bytecode() -> None:
    """Each `lakeshift` a test runs must not compile lakeshift from source again (what
    PYTHONDONTWRITEBYTECODE made every child do): bytecode is written (beside the sources,
    in git-ignored __pycache__/ folders)."""
    probe = "import sys; print(sys.dont_write_bytecode)"
    out = subprocess.run([sys.executable, "-c", probe], env=servers.clean_env(),
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
