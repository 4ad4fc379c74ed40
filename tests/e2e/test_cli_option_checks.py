"""Option checks (issue 16): a limit that could change nothing, buffers larger than the
machine, a value from an environment variable, a number that is not one — each one line,
exit 2, with nothing copied."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lakeshift
from lakeshift.engine.copy_options import copy_options, memory_for_data
from lakeshift.engine.pipeline import CopyOptions
from lakeshift.errors import UsageError
from tests.e2e.cli import lakeshift as cli
from tests.e2e.cli import one_clear_line

MiB = 1024 * 1024


@pytest.fixture
def src(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a")
    return tmp_path / "src"


@pytest.mark.parametrize(("args", "env", "said"), [
    (["--block-size", "16MiB", "--single-put-max", "8MiB"], {},
     "--single-put-max 8MiB is below --block-size 16MiB, so it would change nothing"),
    (["--block-size", "4000MiB", "-c", "1024"], {},
     "--concurrency 1024 × --block-size 4000MiB needs 3.9 TiB of memory for data"),
    ([], {"LAKESHIFT_CONCURRENCY": "0"},
     "--concurrency must be between 1 and 1024 (LAKESHIFT_CONCURRENCY='0' in the "
     "environment set --concurrency)"),
    ([], {"LAKESHIFT_BLOCK_SIZE": "4MiB", "LAKESHIFT_SINGLE_PUT_MAX": "1MiB"},
     "(LAKESHIFT_BLOCK_SIZE='4MiB' in the environment set --block-size; "
     "LAKESHIFT_SINGLE_PUT_MAX='1MiB' in the environment set --single-put-max)"),
    (["-c", "abc"], {}, "--concurrency 'abc' is not a whole number: use e.g. --concurrency 32"),
    ([], {"LAKESHIFT_CONCURRENCY": "lots"},
     "LAKESHIFT_CONCURRENCY='lots' (--concurrency) is not a whole number"),
])
def test_copy_refuses_with_one_line_and_copies_nothing(
        cli_env: dict[str, str], src: Path, tmp_path: Path, args: list[str],
        env: dict[str, str], said: str) -> None:
    dst = tmp_path / "dst"
    p = cli("copy", str(src), str(dst), *args, env={**cli_env, **env})
    assert p.returncode == 2, p.stdout + p.stderr
    assert said in one_clear_line(p)
    assert not dst.exists()


def test_run_and_sync_read_the_same_checks(cli_env: dict[str, str], src: Path,
                                           tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/j.db"
    assert cli("plan", str(src), str(tmp_path / "dst"), "--job", "j", "--db", db,
               env=cli_env).returncode == 0
    for cmd in (["run", "--job", "j", "--db", db], ["sync", "--job", "j", "--db", db]):
        p = cli(*cmd, "-c", "x", env=cli_env)
        assert p.returncode == 2 and "--concurrency 'x' is not a whole number" in \
            one_clear_line(p)
        p = cli(*cmd, env={**cli_env, "LAKESHIFT_CONCURRENCY": "5000"})
        assert p.returncode == 2
        assert "LAKESHIFT_CONCURRENCY='5000' in the environment" in one_clear_line(p)
    assert not (tmp_path / "dst").exists()


def test_the_default_single_put_limit_follows_a_larger_block_size() -> None:
    # Not given: 64MiB, or the block size when larger (never a refusal of a default).
    assert copy_options(block_size="128MiB").single_put_max == 128 * MiB
    assert copy_options().single_put_max == 64 * MiB
    assert copy_options(block_size="16MiB", single_put_max=0).single_put_max == 0
    assert copy_options(block_size="16MiB", single_put_max="16MiB").single_put_max == 16 * MiB
    with pytest.raises(UsageError, match=r"give --single-put-max 0 .* or at least 16MiB"):
        copy_options(block_size="16MiB", single_put_max="15MiB")
    with pytest.raises(UsageError, match="below --block-size"):
        lakeshift.copy("/nonexistent-a", "/nonexistent-b", block_size="16MiB",
                       single_put_max=MiB)


def test_buffers_over_half_the_memory_are_refused_and_under_it_accepted() -> None:
    memory, whose = memory_for_data()  # this machine's, or its container's limit
    block = 4000 * MiB
    fits = max(1, memory // 2 // block)
    copy_options(concurrency=fits, block_size=block, single_put_max=0)
    with pytest.raises(UsageError, match=re.escape(f"more than half of {whose}")):
        copy_options(concurrency=fits + 1, block_size=block, single_put_max=0)
    # The engine's own check is of the values alone: where they run is the caller's.
    CopyOptions(concurrency=fits + 1, block_size=block, single_put_max=0).validate()


def test_dask_buffers_are_checked_where_the_workers_run() -> None:
    """A remote cluster's workers hold the buffers, not this client: not refused for this
    machine's memory.  ``local:N`` runs N workers here, each with the whole concurrency:
    N times the buffers.  (The DB below cannot be reached: the error after the checks.)"""
    memory, whose = memory_for_data()  # this machine's, or its container's limit
    block = 4000 * MiB
    fits = max(1, memory // 2 // block)
    db = "postgresql://nobody@127.0.0.1:9/none"
    with pytest.raises(Exception) as remote:  # any error but the refusal
        lakeshift.sync("/nonexistent-a", "/nonexistent-b", job="j", db=db,
                       dask="tcp://127.0.0.1:9",
                       concurrency=fits + 1, block_size=block, single_put_max=0)
    assert f"of {whose}" not in str(remote.value)
    with pytest.raises(UsageError, match=r"× 2 local Dask workers needs .* more than half"):
        lakeshift.sync("/nonexistent-a", "/nonexistent-b", job="j", db=db,
                       dask="local:2",
                       concurrency=fits // 2 + 1, block_size=block, single_put_max=0)


def test_verify_reads_its_concurrency_the_same_way(cli_env: dict[str, str], src: Path) -> None:
    p = cli("verify", str(src), str(src), "-c", "many", env=cli_env)
    assert p.returncode == 2
    assert "--concurrency 'many' is not a whole number" in one_clear_line(p)
