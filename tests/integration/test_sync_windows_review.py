"""Delta sync windows: the second review of issue 11 (each test failed before its fix):
what a window holds back, path templates on wider partitions, an inventory's date."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lakeshift
from lakeshift.engine.events import WindowCount
from tests.e2e.cli import lakeshift as cli
from tests.helpers import next_second
from tests.integration.test_sync_inventory import PARQUET_SCHEMA, _parquet


def _lake(root: Path, names: list[str], age: timedelta = timedelta(hours=2)) -> None:
    old = (datetime.now(UTC) - age).timestamp()
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(n.encode())
        os.utime(p, (old, old))


def _names(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_each_window_reports_what_it_held_back(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["p/old1", "p/old2", "q/old"])
    _lake(src, ["p/new"], age=timedelta(0))
    events: list[Any] = []
    r = lakeshift.sync(str(src), str(dst), job="j", db=db, lag="1h", prefix=["p/", "q/"],
                       subscribers=[events.append])
    assert r.exit_code == 0 and _names(dst) == ["p/old1", "p/old2", "q/old"]
    assert {(w.partition, w.held_back) for w in r.windows} == {("p/", 1), ("q/", 0)}
    counts = {(e.partition, e.selected, e.held_back) for e in events
              if isinstance(e, WindowCount)}
    assert counts == {("p/", 2, 1), ("q/", 1, 0)}


def test_the_summary_shows_what_was_held_back(tmp_path: Path,
                                              cli_env: dict[str, str]) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["old"])
    _lake(src, ["new"], age=timedelta(0))
    p = cli("sync", str(src), str(dst), "--job", "j", "--db", db, "--lag", "1h",
            "--progress", "none", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert "1 newer object held back for the next pass" in p.stdout
    p = cli("sync", "--job", "j", "--db", db, "--lag", "1h", "--json", "--progress", "none",
            env=cli_env)
    assert json.loads(p.stdout)["windows"][0]["held_back"] == 1


def test_a_template_on_a_wider_partition_also_lists_outside_its_folders(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["a/x", "logs/2020/01/old", "z/y"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    assert len(_names(dst)) == 3
    next_second()
    now = datetime.now(UTC)
    _lake(src, ["a/new", f"logs/{now:%Y}/{now:%m}/new", "logs/2020/01/stale", "z/new"],
          age=timedelta(0))
    next_second()
    r = lakeshift.sync(job="j", db=db, lag="0", path_template="logs/{yyyy}/{MM}/")
    assert r.exit_code == 0
    # Outside the template's prefix: listed (in the window); inside it, only the window's
    # folders (logs/2020/01/stale is not looked at: the template says where changes are).
    assert _names(dst) == sorted(["a/new", "a/x", f"logs/{now:%Y}/{now:%m}/new",
                                  "logs/2020/01/old", "z/new", "z/y"])


def _manifest(s3: Any, inv: str, source: str, created: datetime, body: bytes) -> str:
    key = f"reports/{source}/daily/data/0.parquet"
    s3.put_object(Bucket=inv, Key=key, Body=body)
    manifest = f"reports/{source}/daily/m/manifest.json"
    s3.put_object(Bucket=inv, Key=manifest, Body=json.dumps({
        "sourceBucket": source, "destinationBucket": f"arn:aws:s3:::{inv}",
        "version": "2016-11-30", "creationTimestamp": str(int(created.timestamp() * 1000)),
        "fileFormat": "Parquet", "fileSchema": PARQUET_SCHEMA,
        "files": [{"key": key, "size": len(body), "MD5checksum": "0" * 32}]}))
    return f"s3://{inv}/{manifest}"


def test_an_inventory_window_ends_the_lag_before_the_report(
        s3_env: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    for key in ("data/a", "data/b"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    inv = bucket + "-inv"
    s3.create_bucket(Bucket=inv)
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    # As the report saw them: b well before it, a a minute before it — an upload that
    # may still have been under way (the lag is 5 minutes).
    rows = [{"bucket": bucket, "key": k, "size": 6, "last_modified_date": t, "e_tag": None}
            for k, t in (("data/a", created - timedelta(minutes=1)),
                         ("data/b", created - timedelta(hours=1)))]
    report = _manifest(s3, inv, bucket, created, _parquet(rows))
    db, dst = f"sqlite:///{tmp_path}/c.db", tmp_path / "dst"
    r = lakeshift.sync(f"s3://{bucket}/data/", str(dst), job="inv", db=db, lag="5m",
                       inventory=report)
    assert r.exit_code == 0 and _names(dst) == ["b"]
    (w,) = r.windows
    assert w.end == created - timedelta(minutes=5) and w.held_back == 1
