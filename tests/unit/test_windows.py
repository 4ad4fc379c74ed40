"""Delta windows and time-partitioned folder templates (plan/windows.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lakeshift.errors import UsageError
from lakeshift.plan.windows import PathTemplate, Window, delta_window, parse_duration


def t(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0), ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
    ("1w", 604800), ("0.0", 0), ("1.5h", 5400), (" 5M ", 300),
])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text, "--lag") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "m", "15x", "-5m", "1h 30", "h1", "5m3"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--lag"):
        parse_duration(text, "--lag")


@pytest.mark.parametrize("text", ["15", "90", "1.5"])
def test_a_bare_number_other_than_zero_needs_a_unit(text: str) -> None:
    with pytest.raises(UsageError, match=f"--every '{text}' has no unit: write {text}s, "
                                         f"{text}m or {text}h"):
        parse_duration(text, "--every")


def test_first_window_is_everything_before_now_minus_lag() -> None:
    w = delta_window(None, t(2026, 11, 30, 12), timedelta(minutes=5))
    assert w == Window(None, t(2026, 11, 30, 11, 55))
    assert w.contains(t(1999, 1, 1)) and not w.contains(t(2026, 11, 30, 11, 55))


def test_next_window_starts_at_last_end_minus_overlap() -> None:
    w = delta_window(t(2026, 11, 30, 10), t(2026, 11, 30, 12), timedelta(minutes=5),
                     overlap=timedelta(minutes=10))
    assert w == Window(t(2026, 11, 30, 9, 50), t(2026, 11, 30, 11, 55))
    assert w.contains(t(2026, 11, 30, 9, 50))          # start is inclusive
    assert not w.contains(t(2026, 11, 30, 9, 49, 59))
    assert not w.contains(t(2026, 11, 30, 11, 55))     # end is exclusive


def test_naive_times_are_utc() -> None:
    w = delta_window(datetime(2026, 1, 1), t(2026, 1, 2), timedelta(0))
    assert w.start == t(2026, 1, 1)
    assert w.contains(datetime(2026, 1, 1, 12))


def test_window_never_inverted_when_lag_exceeds_elapsed_time() -> None:
    w = delta_window(t(2026, 1, 1, 12), t(2026, 1, 1, 12, 1), timedelta(minutes=5))
    assert w.empty and w.start == w.end


def test_template_hours() -> None:
    tpl = PathTemplate.parse("logs/{yyyy}/{MM}/{dd}/{HH}/")
    assert tpl.static_prefix == "logs/"
    got = list(tpl.prefixes(Window(t(2026, 11, 30, 22, 40), t(2026, 12, 1, 1, 0))))
    assert got == ["logs/2026/11/30/22/", "logs/2026/11/30/23/", "logs/2026/12/01/00/"]


def test_template_days_with_literal_text_and_month_rollover() -> None:
    tpl = PathTemplate.parse("raw/dt={yyyy}-{MM}-{dd}/")
    got = list(tpl.prefixes(Window(t(2024, 2, 28, 5), t(2024, 3, 1, 0, 0, 1))))
    assert got == ["raw/dt=2024-02-28/", "raw/dt=2024-02-29/", "raw/dt=2024-03-01/"]


def test_template_months_cross_a_year() -> None:
    tpl = PathTemplate.parse("{yyyy}/{MM}/")
    got = list(tpl.prefixes(Window(t(2025, 11, 15), t(2026, 2, 1))))
    assert got == ["2025/11/", "2025/12/", "2026/01/"]


def test_template_empty_window_has_no_folders() -> None:
    tpl = PathTemplate.parse("{yyyy}/{MM}/{dd}/")
    assert list(tpl.prefixes(Window(t(2026, 1, 1), t(2026, 1, 1)))) == []


def test_template_refuses_a_window_that_is_too_long() -> None:
    tpl = PathTemplate.parse("{yyyy}/{MM}/{dd}/{HH}/{mm}/")
    with pytest.raises(UsageError, match="more than 10 folders"):
        list(tpl.prefixes(Window(t(2026, 1, 1), t(2026, 1, 2)), limit=10))


@pytest.mark.parametrize(("text", "why"), [
    ("logs/", "no time token"),
    ("logs/{yyyy}/{dd}/", "coarsest first"),
    ("logs/{MM}/{yyyy}/", "coarsest first"),
    ("logs/{yyyy}/{MM}/{MM}/", "coarsest first"),
    ("logs/{YYYY}/", "unknown token"),
    ("logs/{yyyy/", "unbalanced"),
    ("/logs/{yyyy}/", "relative"),
])
def test_template_rejects(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        PathTemplate.parse(text)


def test_a_template_on_a_key_range_partition_lists_only_the_range_outside_its_folders(
        ) -> None:
    from datetime import UTC, datetime

    from lakeshift.engine.sync import _specs
    from lakeshift.plan.source import SourceSpec
    from lakeshift.plan.windows import PathTemplate, Window

    template = PathTemplate.parse("logs/{yyyy}/{MM}/")
    window = Window(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    specs = _specs(SourceSpec("", "", range_start="a", range_end="m"), template, window)
    assert [(s.list_prefix, s.range_start, s.range_end, s.start_after, folder)
            for s, folder in specs] == [
        ("", "a", "logs/", None, False),
        ("logs/2026/11/", "a", "m", None, True),
        ("", "logs0", "m", "logs/\U0010ffff", False)]
    # A partition inside the template's prefix, or one ending before it: no extra range.
    inside = _specs(SourceSpec("logs/", ""), template, window)
    assert [folder for _, folder in inside] == [True]
    before = _specs(SourceSpec("", "", range_end="c"), template, window)
    assert [(s.range_end, folder) for s, folder in before] == [("c", False)]
