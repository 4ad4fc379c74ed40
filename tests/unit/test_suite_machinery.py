"""The suite's own machinery: its in-process servers stop at once (each http.server loop
looks for ``shutdown()`` every SERVE_POLL_S, not every 0.5 s, which every test starting a
WebHDFS double, with its two servers, waited out once more at its end), and ``-n auto``
means two worker processes for the suite, none for named files."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import conftest
from tests.doubles.webhdfs import serve


def test_a_webhdfs_double_stops_at_once(tmp_path: Path) -> None:
    took = []
    for _ in range(3):
        with serve(tmp_path, "hadoop"):
            time.sleep(0.05)  # both loops inside their wait, as after a test's requests
            start = time.monotonic()
        took.append(time.monotonic() - start)
    # With the default poll interval each stop took 0.5-1.0 s (1.5 s or more for three).
    assert sum(took) < 0.75, took


@pytest.mark.parametrize(("args", "workers"), [
    (["tests"], 2), (["tests/unit"], 2), (["tests/unit", "tests/unit/test_windows.py"], 2),
    (["tests/unit/test_windows.py"], 0),
    (["tests/unit/test_windows.py::test_x", "tests/e2e/test_cli_copy.py"], 0),
])
def test_auto_workers_are_two_for_folders_and_none_for_named_files(
        args: list[str], workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(conftest.__file__).parent.parent)
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    config = SimpleNamespace(args=args)
    assert conftest.pytest_xdist_auto_num_workers(config) == workers  # type: ignore[arg-type]
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "3")
    assert conftest.pytest_xdist_auto_num_workers(config) == 3  # type: ignore[arg-type]

