"""lakeshift.toml holds sizes as a user writes them (8MiB, not 8388608), read back the same
(issue 16): what init's dump and tune's write_run_settings write."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.plan.jobconfig import JobConfig, dump, load, size_text, write_run_settings
from lakeshift.sizes import parse_size
from lakeshift.stores.base import StoreOptions

MiB = 1024 * 1024


@pytest.mark.parametrize(("n", "text"), [
    (8 * MiB, "8MiB"), (512 * 1024, "512KiB"), (2 * 1024 * MiB, "2GiB"), (0, "0"),
    (1000, "1000"), (5 * MiB + 1, str(5 * MiB + 1)), (1536 * 1024, "1536KiB")])
def test_a_size_is_spelled_as_a_user_would_and_reads_back_the_same(n: int, text: str) -> None:
    assert size_text(n) == text
    assert parse_size(text, "x") == n


def test_init_and_tune_write_sizes_spelled(tmp_path: Path) -> None:
    cfg = JobConfig(name="j", db="sqlite:///j.db", sources=["s3://b/raw/"],
                    destination="az://c/raw/", store=StoreOptions(), block_size=16 * MiB,
                    single_put_max=0)
    path = tmp_path / "lakeshift.toml"
    path.write_text(dump(cfg, "once"))
    text = path.read_text()
    assert 'block_size = "16MiB"' in text and 'single_put_max = "0"' in text
    assert (load(path).block_size, load(path).single_put_max) == (16 * MiB, 0)
    write_run_settings(path, {"concurrency": 64, "block_size": 4 * MiB,
                              "single_put_max": 256 * MiB})
    text = path.read_text()
    assert 'block_size = "4MiB"' in text and 'single_put_max = "256MiB"' in text
    assert "4194304" not in text and "concurrency = 64" in text
    loaded = load(path)
    assert (loaded.concurrency, loaded.block_size, loaded.single_put_max) == (
        64, 4 * MiB, 256 * MiB)
    plain = JobConfig(name="j", db="sqlite:///j.db", sources=["s3://b/"], destination="az://c/",
                      store=StoreOptions())
    assert "block_size" not in dump(plain, "once")  # not set: the flags' defaults apply


def test_terabytes_are_sizes_and_too_large_a_block_says_its_range() -> None:
    """--block-size 5TiB said "is not a size"; it is one, beyond the block size's range."""
    import pytest

    from lakeshift.engine.copy_options import copy_options
    from lakeshift.errors import UsageError

    assert parse_size("5TiB", "x") == 5 * 1024**4
    assert parse_size("2TB", "x") == 2 * 1000**4 and parse_size("1t", "x") == 1024**4
    with pytest.raises(UsageError, match="--block-size must be between 256KiB and 4000MiB"):
        copy_options(block_size="5TiB")
