"""A broken pipe that is not stdout's (a socket no store translated) stays a bug: exit 4
and its log, not click's SystemExit(1) out of ``run`` (which never raises) nor 141."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest


def test_a_sockets_broken_pipe_is_an_internal_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from lakeshift.cli.app import run
    from lakeshift.engine import tune as engine_tune

    async def trials(*args: Any) -> Any:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(engine_tune, "tune_async", trials)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "src").mkdir()
    assert run(["tune", str(tmp_path / "src"), str(tmp_path / "dst")]) == 4
    err = capsys.readouterr().err
    assert "internal error (BrokenPipeError)" in err and len(err.strip().splitlines()) == 1
    assert len(list(tmp_path.glob("lakeshift-error-*.log"))) == 1
