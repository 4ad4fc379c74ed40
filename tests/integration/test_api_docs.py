"""Every code example in docs/api.md runs as written (issue 10): the ```python blocks are
executed in order, in one namespace and one folder, against moto and Azurite — the
emulators the page's set-up names — with the bucket, container and config it describes."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.plan.jobconfig import JobConfig, dump
from lakeshift.stores.base import StoreOptions

pytestmark = pytest.mark.slow  # ~15 s: every example of the page, one after the other

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
OBJECTS = {"lake/2023/a.csv": b"a,1\n", "lake/2023/b.csv": b"b,2\n", "lake/2024/c.csv": b"c\n",
           "lake/2024/d.json": b"{}", "lake/top.csv": b"top\n"}


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture
def demo(s3: Any, blob_service: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the page assumes: bucket ``demo`` with CSV files under ``lake/``, containers
    ``lake``, ``raw`` and ``cfg`` (made empty), and lakeshift.toml in the current folder."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        s3.create_bucket(Bucket="demo")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    for key, body in OBJECTS.items():
        s3.put_object(Bucket="demo", Key=key, Body=body)
    for name in ("lake", "raw", "cfg"):
        try:
            blob_service.delete_container(name)
        except ResourceNotFoundError:
            pass
        blob_service.create_container(name)
    monkeypatch.chdir(tmp_path)
    cfg = JobConfig(name="from-config", db="sqlite:///config.db", sources=["s3://demo/lake/"],
                    destination="az://cfg/", store=StoreOptions())
    (tmp_path / "lakeshift.toml").write_text(dump(cfg, ""), encoding="utf-8")
    return tmp_path


def test_every_example_in_the_api_page_runs(demo: Path, blob_service: Any,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _blocks()
    assert len(blocks) >= 11
    namespace: dict[str, Any] = {"__name__": "api_md"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{DOC}:block{i + 1}", "exec"), namespace)
        except Exception as e:  # pragma: no cover - the message names the block
            pytest.fail(f"docs/api.md block {i + 1} failed: {type(e).__name__}: {e}\n{code}")
    out = capsys.readouterr().out
    # What the examples did, seen from outside.
    lake = {b.name for b in blob_service.get_container_client("lake").list_blobs()}
    assert {"2023/a.csv", "2023/b.csv", "2024/c.csv", "top.csv", "2024/d.json"} <= lake
    assert not any(n.startswith("auto/") for n in lake)  # planned, never run
    assert "top.csv" in {b.name for b in blob_service.get_container_client("cfg").list_blobs()}
    raw = {b.name for b in blob_service.get_container_client("raw").list_blobs()}
    assert raw == {"2023/a.csv", "2023/b.csv", "2024/c.csv", "2024/d.json"}
    summary = json.loads((demo / "audit" / "lake.json").read_text())
    assert summary["checked"] == 5 and summary["differences"] == 0  # copy, then the run
    with open(demo / "failed.csv", newline="") as fh:
        assert next(csv.reader(fh))[:2] == ["object_key", "error_kind"]
    assert "use `await lakeshift.status_async(...)` there" in out
    assert "--block-size 'huge'" in out
    jobs = [j.job for j in lakeshift.status(db=f"sqlite:///{demo}/lakeshift.db").jobs]
    assert sorted(jobs) == ["auto", "lake"]
    assert lakeshift.status(db=f"sqlite:///{demo}/c.db").jobs == ()   # deleted
