"""verify holds no buffer that grows with the number of objects: renamed objects (encoded
names) go to the workers as they are listed, and a destination-only encoded name is settled
by a look-up, not kept until the end (issue 10)."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest

from lakeshift.engine.verify import Report, VerifiedReport, VerifyOptions, verify_async
from lakeshift.plan.source import destination_config, source_config

pytestmark = pytest.mark.slow


def _renamed_tree(root: Path, n: int) -> tuple[Path, Path]:
    """``n`` source files whose names hold a backslash, and their copies under the encoded
    names, 100 to a folder (the local walk holds one folder at a time)."""
    src, dst = root / "src", root / "dst"
    for i in range(n):
        folder = f"d{i // 100:04d}"
        for side, name in ((src, f"f\\{i:05d}"), (dst, f"f%5C{i:05d}")):
            (side / folder).mkdir(parents=True, exist_ok=True)
            (side / folder / name).write_bytes(b"x")
    return src, dst


def _verify_peak(tmp_path: Path, n: int) -> tuple[int, dict[str, object]]:
    src, dst = _renamed_tree(tmp_path / str(n), n)
    pairs = [(source_config(str(src)), destination_config(str(dst)), None, None)]
    with open(tmp_path / f"report{n}.csv", "w", newline="") as fh:
        tracemalloc.start()
        try:
            result = asyncio.run(verify_async(pairs, VerifyOptions(invalid_names="encode",
                                                                   concurrency=8),
                                              Report(fh)))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return peak, result.summary()


def test_memory_stays_flat_in_the_number_of_renamed_objects(tmp_path: Path) -> None:
    small, s_small = _verify_peak(tmp_path, 1_000)
    big, s_big = _verify_peak(tmp_path, 20_000)
    for n, s in ((1_000, s_small), (20_000, s_big)):
        assert (s["checked"], s["verified"], s["renamed"], s["extra"], s["missing"]) == (
            n, n, n, 0, 0)
    # 20 times the objects: a buffer per object would cost ~20 times the memory (≥ 10 MB
    # here); a flat engine stays within what the bigger report counters take.
    assert big < small * 2 + 1_000_000, (small, big)


def _listed_peak(tmp_path: Path, n: int) -> tuple[int, int, int]:
    """Peak traced memory of a verify of ``n`` identical files with --list-verified, its
    verified count and the rows of PREFIX-verified.csv."""
    src, dst = tmp_path / f"s{n}", tmp_path / f"d{n}"
    for i in range(n):
        for side in (src, dst):
            (side / f"d{i // 100:04d}").mkdir(parents=True, exist_ok=True)
            (side / f"d{i // 100:04d}" / f"f{i:05d}").write_bytes(b"x")
    pairs = [(source_config(str(src)), destination_config(str(dst)), None, None)]
    listed_csv = tmp_path / f"listed{n}.csv"
    with open(tmp_path / f"report{n}.csv", "w", newline="") as fh, \
            open(listed_csv, "w", newline="") as listed:
        tracemalloc.start()
        try:
            result = asyncio.run(verify_async(pairs, VerifyOptions(concurrency=8), Report(fh),
                                              verified_report=VerifiedReport(listed)))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    rows = len(listed_csv.read_text().splitlines()) - 1  # less the header
    return peak, result.verified, rows


def test_the_list_of_verified_objects_is_streamed_not_held(tmp_path: Path) -> None:
    small, v_small, rows_small = _listed_peak(tmp_path, 1_000)
    big, v_big, rows_big = _listed_peak(tmp_path, 10_000)
    assert (v_small, rows_small, v_big, rows_big) == (1_000, 1_000, 10_000, 10_000)
    # Ten times the rows: held rows would cost ≥ 1.5 MB more (~150 bytes a row); the
    # bounded writer queue keeps the peak where it was.
    assert big < small * 2 + 1_000_000, (small, big)
