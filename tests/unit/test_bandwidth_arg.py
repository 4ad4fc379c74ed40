"""``max_bandwidth`` in the Python API takes what ``--max-bandwidth`` takes: a rate with
``/s`` (``"1MB/s"``) was refused as "not a size" while the CLI accepted it."""

from __future__ import annotations

from pathlib import Path

import pytest

import lakeshift
from lakeshift.engine.copy_options import bandwidth_arg, copy_options


@pytest.mark.parametrize(("given", "want"), [
    ("1MB/s", 1_000_000), ("200MiB/s", 200 * 1024 * 1024), ("8 MiB / s", 8 * 1024 * 1024),
    ("100MB", 100_000_000), ("65536", 65536), (65536, 65536), (1.5e6, 1.5e6), (None, None),
])
def test_the_rates_the_flag_takes(given: int | str | float | None,
                                  want: float | None) -> None:
    assert bandwidth_arg(given) == want
    assert copy_options(max_bandwidth=given).max_bandwidth == want


def test_not_a_rate_is_one_line_naming_the_forms() -> None:
    with pytest.raises(lakeshift.UsageError, match=r"--max-bandwidth 'fast' is not a size "
                       r"per second: use e\.g\. 200MiB/s"):
        bandwidth_arg("fast")


def test_the_api_copies_under_a_rate_given_as_the_flag_spells_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a" * 100)
    res = lakeshift.copy(str(src), str(tmp_path / "dst"), max_bandwidth="1MB/s")
    assert (res.exit_code, res.stats.copied) == (0, 1)
    assert (tmp_path / "dst" / "a.txt").read_bytes() == b"a" * 100
