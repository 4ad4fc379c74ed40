"""Review of the proof log's back-pressure (session 16): the hold asked on every path that
copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_proof_log import _slow_log, _tree


def test_a_keyed_sync_holds_new_objects_while_a_slow_log_is_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A keyed pass (--files-from) copies through its own driver, not run_pipeline's
    transfer: it asks the hold too, so the rows waiting stay within the depth and one per
    object in flight (they grew with every object while the disk was behind)."""
    import lakeshift

    _tree(tmp_path / "src", 80)
    keys = tmp_path / "keys.txt"
    keys.write_text("".join(f"d{i % 2}/f{i:03d}\n" for i in range(80)))
    opened = _slow_log(monkeypatch, 0.003, depth=4)
    s = lakeshift.sync(str(tmp_path / "src"), str(tmp_path / "dst"), job="s",
                       db=f"sqlite:///{tmp_path}/c.db", lag="0", files_from=keys,
                       concurrency=8, proof_log=tmp_path / "log.csv")
    assert s.exit_code == 0
    fh = opened[-1]
    assert len(fh.lines) == 80 and fh.most <= 4 + 8, fh.most
