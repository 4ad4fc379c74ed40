"""Delta sync (issue 11) on real stores: moto → Azurite, local disk, SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.engine import jobrunner
from lakeshift.errors import UsageError
from tests.e2e.cli import BIN, one_clear_line
from tests.e2e.cli import lakeshift as cli
from tests.helpers import blob_bytes, blobs, next_second


class CountingStore:
    """Wraps a store and counts its listing requests (one per list_page call)."""

    def __init__(self, inner: Any, counts: dict[str, int]) -> None:
        self._inner = inner
        self._counts = counts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def list_page(self, *a: Any, **kw: Any) -> Any:
        self._counts[self._inner.url.scheme] = self._counts.get(self._inner.url.scheme, 0) + 1
        return await self._inner.list_page(*a, **kw)


@pytest.fixture
def list_counts(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    real = jobrunner.open_store
    monkeypatch.setattr(jobrunner, "open_store", lambda cfg: CountingStore(real(cfg), counts))
    return counts


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/control.db"
    return str(request.getfixturevalue("pg_url"))


def _write(root: Path, rel: str, data: bytes, mtime: datetime | None = None) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    if mtime is not None:
        os.utime(p, (mtime.timestamp(), mtime.timestamp()))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_added_changed_and_deleted_objects_are_propagated_exactly(
        s3_env: Any, azure_env: Any, s3: Any, bucket: str, blob_service: Any, container: str,
        db_url: str) -> None:
    for i in range(6):
        s3.put_object(Bucket=bucket, Key=f"raw/p{i % 2}/f{i}", Body=f"v1-{i}".encode())
    src, dst = f"s3://{bucket}/raw/", f"az://{container}/lake/"
    next_second()
    first = lakeshift.sync(src, dst, job="s", db=db_url, prefix=["p0/", "p1/"], lag="0")
    assert (first.run.stats.copied, first.exit_code) == (6, 0)
    assert all(w.start is None and w.state == "succeeded" for w in first.windows)
    next_second()  # LastModified has whole seconds: the changes land in the next window
    s3.put_object(Bucket=bucket, Key="raw/p0/f0", Body=b"v2-changed")
    s3.put_object(Bucket=bucket, Key="raw/p1/new", Body=b"new")
    s3.delete_object(Bucket=bucket, Key="raw/p1/f3")
    next_second()  # a window ends on a whole second before now - lag
    second = lakeshift.sync(job="s", db=db_url, lag="0", delete=True)
    assert second.exit_code == 0
    assert (second.run.stats.copied, second.deleted) == (2, 1)
    assert second.deleted_keys == ("lake/p1/f3",)
    # Each window counts its own pass only, not the passes before it.
    assert sorted((w.partition, w.copied, w.deleted) for w in second.windows) == [
        ("raw/p0/", 1, 0), ("raw/p1/", 1, 1)]
    got = blobs(blob_service, container, "lake/")
    want = {"lake/" + k[len("raw/"):]: v for k, v in
            ((o["Key"], s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
             for o in s3.list_objects_v2(Bucket=bucket)["Contents"])}
    assert set(got) == set(want)
    assert all(blob_bytes(blob_service, container, k) == v for k, v in want.items())
    # Each window starts where the partition's last one ended (JobRunTime), in both tables.
    assert {w.start for w in second.windows} == {w.end for w in first.windows}
    from sqlalchemy import create_engine, text

    eng = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with eng.connect() as c:
        rows = c.execute(text('select "PartitionPrefix", "SuccessOrFailure" from '
                              "s3_partition_delta_control_table")).all()
        dels = c.execute(text("select source_key, destination_key from "
                              "lakeshift_sync_deletions")).all()
    eng.dispose()
    assert sorted((p, bool(ok)) for p, ok in rows) == sorted(
        [("raw/p0/", True), ("raw/p1/", True)] * 2)
    assert dels == [("raw/p1/f3", "lake/p1/f3")]


def test_an_object_written_inside_the_lag_is_copied_by_the_next_pass(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _write(src, "old", b"old", datetime.now(UTC) - timedelta(hours=2))
    _write(src, "fresh", b"fresh")
    r1 = lakeshift.sync(str(src), str(dst), job="lag", db=db, lag="1h")
    assert r1.run.stats.copied == 1 and _tree(dst) == {"old": b"old"}
    next_second()  # a window ends on a whole second before now - lag
    r2 = lakeshift.sync(job="lag", db=db, lag="0")
    assert r2.run.stats.copied == 1 and _tree(dst) == {"old": b"old", "fresh": b"fresh"}


def test_a_pass_progress_total_counts_only_the_objects_in_its_window(tmp_path: Path) -> None:
    """The total of a pass's progress (bar and plain line) counts the objects in its window,
    not every object listed: it ended at 2/5 when 3 of the 5 were older than the window
    (and stayed below its total for ever)."""
    import io

    from lakeshift.cli.progress import PlainProgress, RichProgress
    from lakeshift.engine.events import Listed, ObjectDone

    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    old = datetime.now(UTC) - timedelta(hours=2)
    for name in ("a", "b", "c"):
        _write(src, name, b"old" * 100, old)
    first = lakeshift.sync(str(src), str(dst), job="w", db=db, lag="0")
    assert first.run.stats.copied == 3
    # In the next pass's window ([end - overlap, now)); a, b, c lie before it.  The newest,
    # dated after the pass's end, is held back for the pass after: also not in its total.
    end = first.windows[0].end
    _write(src, "d", b"new" * 10, end - timedelta(seconds=1))
    _write(src, "e", b"new" * 20, end - timedelta(seconds=1))
    _write(src, "f", b"future", datetime.now(UTC) + timedelta(hours=1))
    events: list[Any] = []
    plain = PlainProgress(io.StringIO(), interval=0)
    bar = RichProgress()
    try:
        second = lakeshift.sync(job="w", db=db, lag="0", overlap="2s",
                                subscribers=[events.append, plain, bar])
    finally:
        bar.close()
    assert second.run.stats.copied == 2 and second.windows[0].held_back == 1
    listed = sum(e.count for e in events if isinstance(e, Listed))
    listed_bytes = sum(e.nbytes for e in events if isinstance(e, Listed))
    done = [e for e in events if isinstance(e, ObjectDone)]
    assert (listed, listed_bytes) == (len(done), sum(e.size for e in done)) == (2, 90)
    plain.line(time.monotonic())
    assert plain.stream.getvalue().splitlines()[-1].startswith("progress: 2/2 objects, ")
    files, data = (bar.progress.tasks[t] for t in (bar.files, bar.data))
    assert (files.completed, files.total) == (2, 2) and (data.completed, data.total) == (90, 90)


def test_a_failed_partition_keeps_its_window_and_the_next_pass_retries_it(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    old = datetime.now(UTC) - timedelta(hours=1)
    _write(src, "a/1", b"1", old)
    _write(src, "a/bad.", b"a name the destination cannot hold", old)
    r1 = lakeshift.sync(str(src), str(dst), job="f", db=db, lag="0")
    assert r1.exit_code == 1 and [w.state for w in r1.windows] == ["failed"]
    fails = lakeshift.failures(job="f", db=db).failures
    assert [(f.object_key, f.error_kind) for f in fails] == [("a/bad.", "invalid-name")]
    (src / "a/bad.").unlink()
    _write(src, "a/2", b"2", old)  # inside the failed window: the retry must look again
    r2 = lakeshift.sync(job="f", db=db, lag="0")
    assert r2.exit_code == 0 and r2.run.stats.copied == 1
    # The failed window did not advance: the retry starts where the failed one started.
    assert r2.windows[0].start == r1.windows[0].start
    assert _tree(dst) == {"a/1": b"1", "a/2": b"2"}
    con = sqlite3.connect(f"{tmp_path}/c.db")
    assert con.execute('select "SuccessOrFailure" from s3_partition_delta_control_table '
                       "order by rowid").fetchall() == [(0,), (1,)]


def test_status_after_a_pass_shows_that_passs_objects_bytes_and_rate(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _write(src, "a", b"a" * 1000, datetime.now(UTC) - timedelta(hours=1))
    lakeshift.sync(str(src), str(dst), job="st", db=db, lag="0")
    con = sqlite3.connect(f"{tmp_path}/c.db")
    with con:  # as if the first pass had taken an hour
        con.execute("update lakeshift_partitions set duration_s = 3600")
    con.close()
    next_second()
    _write(src, "b", b"b" * 2000)
    next_second()
    assert lakeshift.sync(job="st", db=db, lag="0").run.stats.copied == 1
    p = lakeshift.status(db=db, job="st").jobs[0].partition_table[0]
    # This pass's counters and duration, not the sum over passes (which gave a rate of
    # 3000 bytes over an hour and more).
    assert (p.copied, p.bytes) == (1, 2000)
    assert p.duration_s < 3600 and p.throughput_bytes_per_s > 3000 / 3600


def test_a_historical_job_then_sync_copies_only_what_changed_since_the_run_started(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    for i in range(5):
        _write(src, f"d/{i}", b"x" * i, datetime.now(UTC) - timedelta(days=1))
    lakeshift.plan(str(src), str(dst), job="h", db=db)
    assert lakeshift.run(job="h", db=db).stats.copied == 5
    # Someone changes the historical copy by hand: sync must not re-copy the lake.
    (dst / "d" / "1").write_bytes(b"tampered")
    next_second()
    _write(src, "d/4", b"changed")
    _write(src, "d/new", b"new")
    next_second()
    r = lakeshift.sync(job="h", db=db, lag="0")
    assert r.run.stats.copied == 2 and r.windows[0].start is not None
    assert (dst / "d" / "1").read_bytes() == b"tampered"  # outside the window: left alone
    assert _tree(dst)["d/new"] == b"new" and _tree(dst)["d/4"] == b"changed"


def test_path_template_and_files_from_list_far_less_than_a_full_listing(
        tmp_path: Path, list_counts: dict[str, int]) -> None:
    src, db = tmp_path / "src", f"sqlite:///{tmp_path}/c.db"
    now = datetime.now(UTC)
    old = now - timedelta(days=3)
    from lakeshift.stores.local import store as local_store

    for h in range(144):  # six days of hourly folders, 3 files each, all old
        t = old - timedelta(hours=h)
        for i in range(3):
            _write(src, f"logs/{t:%Y/%m/%d/%H}/f{i}", b"old", old)
    hour = now - timedelta(minutes=30)
    _write(src, f"logs/{hour:%Y/%m/%d/%H}/new", b"new", hour)
    orig_page = local_store.PAGE
    try:
        local_store.PAGE = 10  # small pages: a full listing takes many requests
        lakeshift.sync(str(src), str(tmp_path / "full"), job="full", db=db, lag="0",
                       overwrite="always")
        base_full = sum(list_counts.values())
        lakeshift.sync(str(src), str(tmp_path / "tpl"), job="tpl", db=db, lag="0")
        list_counts.clear()
        # Historical start an hour ago for both: seed with one pass, then count the next.
        full = lakeshift.sync(job="full", db=db, lag="0")
        full_lists = sum(list_counts.values())
        list_counts.clear()
        tpl = lakeshift.sync(job="tpl", db=db, lag="0",
                             path_template="logs/{yyyy}/{MM}/{dd}/{HH}/")
        tpl_lists = sum(list_counts.values())
        keys = tmp_path / "keys.csv"
        keys.write_text(f"key,size\nlogs/{hour:%Y/%m/%d/%H}/new,3\n")
        list_counts.clear()
        listed = lakeshift.sync(job="tpl", db=db, lag="0", files_from=keys)
        files_lists = sum(list_counts.values())
    finally:
        local_store.PAGE = orig_page
    # 433 objects in pages of 10: a full pass takes 44 pages or more; the template pass
    # lists the hour folders in the window and, the partition being the whole source, the
    # (empty) key ranges before and after logs/ (one request each), on each side; the file
    # list lists nothing.
    assert base_full >= 44 and full_lists >= 44
    assert tpl_lists <= 8 and full_lists >= 7 * tpl_lists and files_lists == 0
    assert full.exit_code == tpl.exit_code == listed.exit_code == 0
    assert (tmp_path / "tpl" / f"logs/{hour:%Y/%m/%d/%H}/new").read_bytes() == b"new"


def test_delete_above_the_cap_deletes_nothing(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    for i in range(10):
        _write(src, f"k{i}", b"v", datetime.now(UTC) - timedelta(hours=1))
    lakeshift.sync(str(src), str(dst), job="d", db=db, lag="0")
    for i in range(4):
        (src / f"k{i}").unlink()
    r = lakeshift.sync(job="d", db=db, lag="0", delete=True, max_delete="30%")
    assert r.exit_code == 1 and r.deleted == 0 and len(_tree(dst)) == 10
    # The limit a percentage gives is said, and what it is a percentage of.
    assert r.windows[0].error == (
        "4 destination objects have no source any more, more than --max-delete 30% (30% of "
        "the 10 destination objects the pass listed: 3): nothing deleted in this pass")
    r2 = lakeshift.sync(job="d", db=db, lag="0", delete=True, max_delete="4")
    assert r2.exit_code == 0 and r2.deleted == 4 and len(_tree(dst)) == 6
    (src / "k4").unlink()
    r3 = lakeshift.sync(job="d", db=db, lag="0", delete=True, max_delete="0")
    assert r3.exit_code == 1 and len(_tree(dst)) == 6
    assert "1 destination object has no source any more, more than --max-delete 0" in (
        r3.windows[0].error or "")


@pytest.mark.parametrize(("args", "message"), [
    (["--lag", "5x"], "--lag '5x' is not a duration"),
    (["--lag=-5m"], "--lag '-5m' is not a duration"),
    (["--overlap", "an hour"], "--overlap 'an hour' is not a duration"),
    (["--path-template", "logs/{yyyy}/{dd}/"], "coarsest first"),
    (["--path-template", "logs/{yy}/"], "unknown token {yy}"),
    (["--path-template", "logs/"], "has no time token"),
    (["--path-template", "logs/{yyyy/"], "unbalanced braces"),
    (["--cron", "*/15 * *"], "--cron '*/15 * *' is not a cron expression"),
    (["--cron", "61 * * * *"], "--cron '61 * * * *' is not a cron expression"),
    (["--every", "1m", "--cron", "* * * * *"], "use --every or --cron, not both"),
    (["--every", "soon"], "--every 'soon' is not a duration"),
    (["--max-delete", "5"], "--max-delete caps --delete"),
    (["--delete", "--max-delete", "lots"], "--max-delete 'lots': use a number of objects "
     "(e.g. 500) or a percentage of the destination objects the pass lists (e.g. 2%)"),
])
def test_bad_input_is_one_clear_line(cli_env: dict[str, str], tmp_path: Path,
                                     args: list[str], message: str) -> None:
    (tmp_path / "src").mkdir()
    p = cli("sync", str(tmp_path / "src"), str(tmp_path / "dst"), "--job", "x", "--db",
            f"sqlite:///{tmp_path}/c.db", *args, env=cli_env)
    assert p.returncode == 2
    assert message in one_clear_line(p)
    assert not (tmp_path / "c.db").exists()  # nothing written before the input is checked


@pytest.mark.parametrize(("args", "message"), [
    (["--adf-delta-table", "s3_partition_delta_control_table"],
     "table 's3_partition_delta_control_table' not found"),
    (["--adf-delta-table", "no such; table"], "is not a plain table name"),
    (["--partitions-file", "missing.txt"], "missing.txt"),
])
def test_a_job_that_cannot_be_made_leaves_no_db_file(cli_env: dict[str, str], tmp_path: Path,
                                                     args: list[str], message: str) -> None:
    (tmp_path / "src").mkdir()
    p = cli("sync", str(tmp_path / "src"), str(tmp_path / "dst"), "--job", "x", "--db",
            f"sqlite:///{tmp_path}/c.db", *args, env=cli_env)
    assert p.returncode == 2
    assert message in one_clear_line(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["src"]


def test_inventory_of_another_bucket_is_refused_and_its_own_is_read(
        s3_env: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="data/a", Body=b"aaa")
    s3.put_object(Bucket=bucket, Key="data/b c", Body=b"bbb")
    inv = bucket + "-inv"
    s3.create_bucket(Bucket=inv)
    lm = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    rows = "".join(f'"{bucket}","{k}","3","{lm}"\n' for k in ("data/a", "data/b%20c"))
    s3.put_object(Bucket=inv, Key="inv/data/1.csv.gz", Body=gzip.compress(rows.encode()))

    def manifest(source: str) -> str:
        key = f"inv/{source}/manifest.json"
        s3.put_object(Bucket=inv, Key=key, Body=json.dumps({
            "sourceBucket": source, "destinationBucket": f"arn:aws:s3:::{inv}",
            "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size, LastModifiedDate",
            "files": [{"key": "inv/data/1.csv.gz", "size": 1, "MD5checksum": "x"}]}))
        return f"s3://{inv}/{key}"

    db, dst = f"sqlite:///{tmp_path}/c.db", tmp_path / "dst"
    with pytest.raises(UsageError, match="lists bucket 'other', not the job's source"):
        lakeshift.sync(f"s3://{bucket}/data/", str(dst), job="i", db=db, lag="0",
                       inventory=manifest("other"))
    r = lakeshift.sync(job="i", db=db, lag="0", inventory=manifest(bucket))
    assert r.exit_code == 0 and _tree(dst) == {"a": b"aaa", "b c": b"bbb"}


def test_schedule_runs_passes_refuses_a_second_scheduler_and_stops_on_sigint(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _write(src, "a", b"a")
    proc = subprocess.Popen([str(BIN), "sync", str(src), str(dst), "--job", "sch", "--db", db,
                             "--lag", "0", "--every", "1s", "--json", "--progress", "none"],
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while not (dst / "a").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        _write(src, "b", b"b")
        while not (dst / "b").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (dst / "b").read_bytes() == b"b"
        second = cli("sync", "--job", "sch", "--db", db, "--every", "1m", env=cli_env)
        assert second.returncode == 2 and "already has a scheduler" in one_clear_line(second)
        st = lakeshift.status(db=db, job="sch").jobs[0]
        assert st.sync_schedule == "every 1s" and st.next_sync_at is not None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in one_clear_line(subprocess.CompletedProcess([], 130, out, err))
    passes = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert len(passes) >= 2 and all(p["exit_code"] == 0 for p in passes)
    assert lakeshift.status(db=db, job="sch").jobs[0].next_sync_at is None  # released
