"""``run(config=…)`` and ``lakeshift run --config``: the file's values replace the
defaults, and a value given explicitly wins over the file's (issue 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import lakeshift
from lakeshift.cli.app import app
from lakeshift.engine import jobrunner

MiB = 1024 * 1024


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each run was started with."""
    seen: list[dict[str, Any]] = []
    real = jobrunner.run_job

    async def spy(control: Any, job: Any, batch_count: int, opts: Any, *a: Any,
                  **kw: Any) -> Any:
        seen.append({"job": job.name, "db": control.shown, "batch_count": batch_count,
                     "concurrency": opts.concurrency, "block_size": opts.block_size,
                     "single_put_max": opts.single_put_max})
        return await real(control, job, batch_count, opts, *a, **kw)

    monkeypatch.setattr(jobrunner, "run_job", spy)
    return seen


def _config(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "k").write_bytes(b"k")
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(f'[job]\nname = "cfgjob"\ndb = "sqlite:///{tmp_path}/cfg.db"\n'
                   f'[source]\nurls = ["{src}"]\n[destination]\nurl = "{tmp_path / "dst"}"\n'
                   '[run]\nbatch_count = 3\nconcurrency = 7\nblock_size = "4MiB"\n'
                   'single_put_max = "16MiB"\n')
    return cfg


def test_the_config_replaces_the_defaults(tmp_path: Path, runs: list[dict[str, Any]]) -> None:
    assert lakeshift.run(config=_config(tmp_path)).exit_code == 0
    assert runs == [{"job": "cfgjob", "db": f"sqlite:///{tmp_path}/cfg.db", "batch_count": 3,
                     "concurrency": 7, "block_size": 4 * MiB, "single_put_max": 16 * MiB}]


def test_arguments_given_win_over_the_config(tmp_path: Path,
                                             runs: list[dict[str, Any]]) -> None:
    other = f"sqlite:///{tmp_path}/other.db"
    r = lakeshift.run(config=_config(tmp_path), job="mine", db=other, batch_count=1,
                      concurrency=2, block_size="2MiB", single_put_max=0)
    assert r.exit_code == 0 and r.job == "mine"
    assert runs == [{"job": "mine", "db": other, "batch_count": 1, "concurrency": 2,
                     "block_size": 2 * MiB, "single_put_max": 0}]
    assert (tmp_path / "other.db").exists() and not (tmp_path / "cfg.db").exists()


def test_the_cli_passes_only_the_flags_given(tmp_path: Path, runs: list[dict[str, Any]],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LAKESHIFT_CONCURRENCY", "LAKESHIFT_BLOCK_SIZE", "LAKESHIFT_SINGLE_PUT_MAX",
                "LAKESHIFT_DB", "LAKESHIFT_JOB"):
        monkeypatch.delenv(var, raising=False)
    out = CliRunner().invoke(app, ["run", "--config", str(_config(tmp_path)),
                                   "--concurrency", "5", "--progress", "none"])
    assert out.exit_code == 0, out.output
    assert runs == [{"job": "cfgjob", "db": f"sqlite:///{tmp_path}/cfg.db", "batch_count": 3,
                     "concurrency": 5, "block_size": 4 * MiB, "single_put_max": 16 * MiB}]


def test_a_refused_value_from_the_config_names_the_file(tmp_path: Path) -> None:
    """Its single-put limit (16MiB) below a block size given now: the user typed no
    --single-put-max, the message says where it came from."""
    cfg = _config(tmp_path)
    with pytest.raises(lakeshift.UsageError) as e:
        lakeshift.run(config=cfg, block_size="32MiB")
    assert str(e.value).endswith(f'(set in {cfg} [run]: single_put_max = "16MiB")'), e.value
