"""The throughput-over-time chart of a run, drawn on the server as SVG (no script, no
library, nothing fetched from the internet)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

from markupsafe import Markup, escape

from lakeshift.model import ThroughputSample
from lakeshift.web.format import rate, seconds

WIDTH, HEIGHT, PAD = 640, 200, 40


#: The shortest time a point of the chart is measured over (seconds).  Samples come at each
#: heartbeat, and also as a run starts and ends: a rate over the ~30 ms between two of them
#: is noise (bytes that were in flight land at once) and would set the axis for the rest.
MIN_INTERVAL_S = 1.0


def throughput_points(samples: Sequence[ThroughputSample],
                      started: datetime | None) -> list[tuple[float, float]]:
    """(seconds since the run started, bytes per second since the previous point), each
    point measured over at least MIN_INTERVAL_S: a sample sooner than that after the
    previous point is folded into the next (the last into the point before it; a run
    shorter than that is one point, from its start)."""
    if started is None:
        return []
    marks: list[tuple[float, int]] = [(0.0, 0)]  # (t, bytes): the run's start, then points
    last: tuple[float, int] | None = None
    for s in samples:
        if s.at is None:
            continue
        last = (max((s.at - started).total_seconds(), 0.0), s.bytes)
        if last[0] - marks[-1][0] >= MIN_INTERVAL_S:
            marks.append(last)
            last = None
    if last is not None and last[0] > marks[-1][0]:
        if len(marks) > 1:
            marks[-1] = last  # the last point measured over its interval and this one
        else:
            marks.append(last)
    return [(t, max(b - pb, 0) / (t - pt)) for (pt, pb), (t, b) in pairwise(marks)]


def throughput_svg(samples: Sequence[ThroughputSample], started: datetime | None) -> Markup:
    points = throughput_points(samples, started)
    title = "Throughput over time"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">'
            f"<title>{escape(title)}</title>")
    if not points:
        return Markup(head + f'<text x="{PAD}" y="{HEIGHT // 2}">no samples yet '
                      "(one per heartbeat)</text></svg>")
    t_max = max(t for t, _ in points) or 1.0
    r_max = max(r for _, r in points) or 1.0
    w, h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def xy(t: float, r: float) -> str:
        return f"{PAD + t / t_max * w:.1f},{PAD + h - r / r_max * h:.1f}"

    line = " ".join(xy(t, r) for t, r in [(0.0, points[0][1]), *points])
    parts = [
        head,
        f'<line class="axis" x1="{PAD}" y1="{PAD + h}" x2="{PAD + w}" y2="{PAD + h}"/>',
        f'<line class="axis" x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{PAD + h}"/>',
        f'<polyline class="series" fill="none" points="{line}"/>',
        f'<text x="{PAD}" y="{PAD - 8}">{escape(rate(r_max))}</text>',
        f'<text x="{PAD}" y="{HEIGHT - 8}">0</text>',
        f'<text x="{PAD + w}" y="{HEIGHT - 8}" text-anchor="end">'
        f"{escape(seconds(t_max))}</text>",
        "</svg>",
    ]
    return Markup("".join(parts))
