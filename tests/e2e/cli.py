"""Run the installed ``lakeshift`` console script as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "lakeshift"


def lakeshift(*args: str, env: dict[str, str], timeout: float = 120,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, str(BIN), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def obeying_file_modes() -> tuple[str, ...]:
    """A command prefix under which mode bits bind even as root (which reads any file):
    the capabilities that bypass them are dropped."""
    if os.geteuid() != 0:
        return ()
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def one_clear_line(p: subprocess.CompletedProcess[str]) -> str:
    """The error output must be one line, with no traceback."""
    err = p.stderr.strip()
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr
    assert len(err.splitlines()) == 1, err
    return err
