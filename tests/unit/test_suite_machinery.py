"""The suite's own machinery: its in-process servers stop at once (each http.server loop
looks for ``shutdown()`` every SERVE_POLL_S, not every 0.5 s, which every test starting a
WebHDFS double, with its two servers, waited out once more at its end)."""

from __future__ import annotations

import time
from pathlib import Path

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

