"""A run page's figures: the throughput chart's points are measured over a second at least
(no first-sample spike)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lakeshift.model import ThroughputSample
from lakeshift.web.chart import throughput_points


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
