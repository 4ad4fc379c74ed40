"""The public API end to end on the emulators: each function a command has, with its
options, returning typed results (issue 10)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from tests.e2e.cli import lakeshift as cli
from tests.e2e.cli import one_clear_line
from tests.helpers import blob_bytes, blobs


def _seed(s3: Any, bucket: str) -> dict[str, bytes]:
    data = {f"api/{d}/f{i}.txt": f"{d} {i} ".encode() * (i + 1) for d in ("a", "b")
            for i in range(3)}
    for key, body in data.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return data


def test_check_copy_verify_with_pacing(s3: Any, bucket: str, azure_env: Any,
                                       blob_service: Any, container: str,
                                       tmp_path: Path) -> None:
    data = _seed(s3, bucket)
    src, dst = f"s3://{bucket}/api/", f"az://{container}/out/"

    checked = lakeshift.check(src, dst)
    assert isinstance(checked, lakeshift.CheckResult)
    assert checked.ok and checked.exit_code == 0
    assert {ln.side for ln in checked.lines} == {"source", "destination"}

    copied = lakeshift.copy(src, dst, max_bandwidth="1MiB", max_requests_per_second=200,
                            adaptive=False, skip_errors="missing", block_size="1MiB")
    assert (copied.stats.copied, copied.exit_code) == (6, 0)
    for key, body in data.items():
        got = blob_bytes(blob_service, container, "out/" + key.removeprefix("api/"))
        assert hashlib.md5(got).digest() == hashlib.md5(body).digest()

    report = tmp_path / "rep"
    v = lakeshift.verify(src, dst, deep=True, report=report, max_bandwidth="64KiB",
                         max_requests_per_second=100, adaptive=False)
    assert isinstance(v, lakeshift.VerifyResult)
    assert (v.checked, v.verified, v.differences, v.exit_code) == (6, 6, 0, 0)
    assert v.report_json == f"{report}.json"
    assert json.loads(Path(v.report_json).read_text())["checked"] == 6
    assert v.bytes_read >= 2 * sum(len(b) for b in data.values())  # deep: both sides


def test_api_user_mistakes_raise_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    with pytest.raises(lakeshift.UsageError, match="--max-bandwidth"):
        lakeshift.copy(str(tmp_path / "s"), str(tmp_path / "d"), max_bandwidth="12")
    with pytest.raises(lakeshift.UsageError, match="--max-bandwidth"):
        lakeshift.verify(str(tmp_path / "s"), str(tmp_path / "d"), max_bandwidth="lots",
                         report=tmp_path / "r")
    with pytest.raises(lakeshift.UsageError, match="--max-requests-per-second"):
        lakeshift.verify(str(tmp_path / "s"), str(tmp_path / "d"),
                         max_requests_per_second=0, report=tmp_path / "r")
    with pytest.raises(lakeshift.UsageError, match="--skip-errors"):
        lakeshift.copy(str(tmp_path / "s"), str(tmp_path / "d"), skip_errors="everything")
    with pytest.raises(lakeshift.UsageError, match="no control DB"):
        lakeshift.status(db=f"sqlite:///{tmp_path}/x.db", job="nope")


def test_plan_run_status_failures(s3: Any, bucket: str, azure_env: Any, blob_service: Any,
                                  container: str, tmp_path: Path) -> None:
    _seed(s3, bucket)
    db = f"sqlite:///{tmp_path}/api.db"
    parts = tmp_path / "parts.txt"
    parts.write_text("a/  # first\nb/\n")
    planned = lakeshift.plan(f"s3://{bucket}/api/", f"az://{container}/j/", job="j", db=db,
                             partitions_file=parts, include=["*.txt"])
    assert isinstance(planned, lakeshift.PlanResult) and planned.created
    assert [p.prefix for p in planned.job.partition_table] == ["api/a/", "api/b/"]
    assert lakeshift.plan(job="j", db=db, show=True).job.partitions == 2

    ran = lakeshift.run(job="j", db=db, batch_count=2, max_bandwidth="1MiB",
                        max_requests_per_second=200, adaptive=False, lease_seconds=10)
    assert (ran.job, ran.succeeded, ran.stats.copied, ran.exit_code) == ("j", 2, 6, 0)
    assert len(blobs(blob_service, container, "j/")) == 6

    st = lakeshift.status(db=db, job="j")
    assert isinstance(st, lakeshift.StatusResult)
    (job,) = st.jobs
    assert (job.succeeded, job.copied, job.detail) == (2, 6, True)
    assert [p.state for p in job.partition_table] == ["succeeded", "succeeded"]
    assert job.runs[0].partitions_succeeded == 2 and job.runs[0].started_at is not None
    assert lakeshift.status(db=db).jobs[0].partition_table == ()  # totals only

    f = lakeshift.failures(job="j", db=db)
    assert (f.count, f.failures) == (0, ())
    out = tmp_path / "f.csv"
    assert lakeshift.failures(job="j", db=db, csv_file=out).csv_file == str(out)
    with open(out, newline="") as fh:
        assert next(csv.reader(fh))[0] == "object_key"


def test_cli_verify_takes_the_pacing_flags(cli_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "x.bin").write_bytes(b"x" * 5000)
    assert cli("copy", str(src), str(dst), env=cli_env).returncode == 0
    p = cli("verify", str(src), str(dst), "--deep", "--max-bandwidth", "64KiB",
            "--max-requests-per-second", "50", "--no-adaptive", "--report",
            str(tmp_path / "r"), "--json", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["verified"] == 1
    bad = cli("verify", str(src), str(dst), "--max-bandwidth", "fast", "--report",
              str(tmp_path / "r2"), env=cli_env)
    assert bad.returncode == 2 and "--max-bandwidth 'fast' is not a size" in one_clear_line(bad)


def test_plan_and_verify_send_events_and_the_async_twins_run_in_a_loop(tmp_path: Path) -> None:
    import asyncio

    src, dst = tmp_path / "src", tmp_path / "dst"
    for d in ("a", "b", "c"):
        (src / d).mkdir(parents=True)
        for i in range(3):
            (src / d / f"{i}.bin").write_bytes(bytes([i]) * (100 + i))
    db = f"sqlite:///{tmp_path}/j.db"
    heard: list[lakeshift.Event] = []

    async def main() -> tuple[Any, Any, Any, Any]:
        p = await lakeshift.plan_async(str(src), str(dst), job="j", db=db, partition_by="auto",
                                       target_objects=3, subscribers=[heard.append])
        r = await lakeshift.run_async(job="j", db=db)
        v = await lakeshift.verify_async(str(src), str(dst), deep=True,
                                         report=tmp_path / "r", subscribers=[heard.append])
        st = await lakeshift.status_async(db=db, job="j")
        return p, r, v, st

    p, r, v, st = asyncio.run(main())
    # Three folder partitions and the four ranges around them (keys written there later).
    assert p.job.partitions == 7 and r.stats.copied == 9 and r.exit_code == 0
    assert (v.verified, v.differences) == (9, 0)
    assert st.jobs[0].copied == 9
    listed = [e for e in heard if isinstance(e, lakeshift.Listed)]
    # plan listed every object once, verify listed the source once more.
    assert sum(e.count for e in listed) == 18
    assert sum(e.nbytes for e in listed) == 2 * sum(100 + i for i in range(3)) * 3
    assert sum(isinstance(e, lakeshift.ListingDone) for e in heard) == 2
    # verify --deep hashed both sides: every byte once per side.
    assert sum(e.nbytes for e in heard if isinstance(e, lakeshift.BytesMoved)) == v.bytes_read
    assert v.bytes_read == 2 * 3 * sum(100 + i for i in range(3))


def test_a_copied_objects_event_names_where_it_was_written(tmp_path: Path, s3: Any,
                                                           bucket: str) -> None:
    """ObjectDone of a copied object carries its full destination key (the copy's naming
    applied): what a per-object record of a run or a copy needs."""
    from lakeshift.engine.events import ObjectDone

    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.bin").write_bytes(b"a")
    (src / "top.bin").write_bytes(b"t")
    heard: list[lakeshift.Event] = []
    lakeshift.copy(str(src), f"s3://{bucket}/into/", subscribers=[heard.append])
    done = {e.key: e.dest_key for e in heard if isinstance(e, ObjectDone)}
    assert {k.rsplit("/", 1)[-1]: v for k, v in done.items()} == {
        "a.bin": "into/d/a.bin", "top.bin": "into/top.bin"}
