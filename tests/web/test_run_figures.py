"""A run page's figures: settings that are sizes read as the CLI takes them, and the
throughput chart's points are measured over a second at least (no first-sample spike)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lakeshift.control.repository import ControlDB
from lakeshift.model import ThroughputSample
from lakeshift.web.app import create_app
from lakeshift.web.chart import throughput_points


def test_settings_that_are_sizes_read_as_the_cli_takes_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    control = ControlDB(url, create=True)
    try:
        job = control.create_job("j", "az://c/", {}, [])
        run = control.start_run(job, "far-host:1:a", 1, {
            "block_size": 8388608, "single_put_max": 67108864, "max_bandwidth": 61440.0,
            "concurrency": 16, "lease_s": 10.0}, lease_s=600)
        page = TestClient(create_app(url)).get(f"/runs/{run}").text
        rows = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>",
                               page.split('class="settings"', 1)[1]))
        assert rows["block_size"] == "8MiB"
        assert rows["single_put_max"] == "64MiB"
        assert rows["max_bandwidth"] == "60KiB"
        assert rows["concurrency"] == "16" and rows["lease_s"] == "10.0"
    finally:
        control.close()


def test_chart_points_are_measured_over_a_second_at_least() -> None:
    """Stored samples of a run capped at 60 KiB/s: one 30 ms after the start holds 64 KiB
    that were in flight (2.1 MiB/s over 30 ms); then one a heartbeat."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    kib = 1024

    def at(s: float, nbytes: int) -> ThroughputSample:
        return ThroughputSample(t0 + timedelta(seconds=s), 0, nbytes, 1)

    samples = [at(0.03, 64 * kib), at(2.0, 120 * kib), at(4.0, 240 * kib),
               at(6.0, 360 * kib), at(6.02, 362 * kib)]
    points = throughput_points(samples, t0)
    # The 30 ms sample is folded into the first point (from the start), the last 20 ms
    # into the point before it; no point is above the cap's order.
    assert [round(t, 2) for t, _ in points] == [2.0, 4.0, 6.02]
    assert max(r for _, r in points) <= 61 * kib
    assert points[0][1] == pytest.approx(120 * kib / 2.0)
    assert points[-1][1] == pytest.approx(122 * kib / 2.02)
    # A run shorter than a second: one point, over the whole run.
    assert throughput_points([at(0.4, 10 * kib)], t0) == [(0.4, 10 * kib / 0.4)]
    assert throughput_points([], t0) == []
