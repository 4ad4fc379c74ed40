"""Delta sync: what the review of issue 11 found (local disk + SQLite; each test failed
before its fix).  Sleeps of 1.1 s: modification times have whole seconds, so a change must
land in the next window."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift import UsageError
from tests.helpers import file_names as _names
from tests.helpers import next_second
from tests.helpers import old_lake as _lake


def test_delete_on_key_range_partitions_deletes_only_what_the_source_lost(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, [f"f{i:02d}" for i in range(10)])
    first = lakeshift.sync(str(src), str(dst), job="j", db=db, partition_by="auto",
                           target_objects=4, lag="0")
    assert first.run.stats.copied == 10 and len(first.windows) >= 2
    (src / "f05").unlink()
    next_second()
    second = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert (second.deleted, second.deleted_keys) == (1, ("f05",))
    assert _names(dst) == [f"f{i:02d}" for i in range(10) if i != 5]


def test_delete_keeps_renamed_objects_whose_source_is_outside_the_window(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["ok", "bad."])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", invalid_names="encode")
    assert _names(dst) == ["bad%2E", "ok"]
    next_second()
    second = lakeshift.sync(job="j", db=db, lag="0", delete=True)
    assert second.deleted == 0 and _names(dst) == ["bad%2E", "ok"]
    (src / "bad.").unlink()
    next_second()
    third = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert third.deleted_keys == ("bad%2E",) and _names(dst) == ["ok"]


def test_a_files_from_pass_does_not_move_the_window_past_unlisted_changes(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["a", "b"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    next_second()
    (src / "a").write_bytes(b"v2")
    (src / "b").write_bytes(b"v2")
    next_second()
    (tmp_path / "list.txt").write_text("a\n")
    keyed = lakeshift.sync(job="j", db=db, lag="0", files_from=str(tmp_path / "list.txt"))
    assert keyed.run.stats.copied == 1 and (dst / "a").read_bytes() == b"v2"
    assert [w.state for w in keyed.windows] == ["keyed"]
    next_second()
    normal = lakeshift.sync(job="j", db=db, lag="0")
    assert normal.run.stats.copied == 1 and (dst / "b").read_bytes() == b"v2"


def test_a_files_from_key_in_no_partition_is_a_failure(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["logs/a", "other/x"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["logs/"])
    (tmp_path / "list.txt").write_text("logs/a\nother/x\n")
    keyed = lakeshift.sync(job="j", db=db, lag="0", files_from=str(tmp_path / "list.txt"))
    assert keyed.exit_code == 1
    failed = lakeshift.failures(job="j", db=db).failures
    assert [(f.object_key, f.error_kind) for f in failed] == [("other/x", "outside-partitions")]
    assert "`lakeshift status --job j`" in failed[0].message  # a command that works pasted
    assert (dst / "logs/a").read_bytes() == b"v1" and not (dst / "other").exists()
    # The job exists: planning it again names the command that runs it.
    with pytest.raises(UsageError, match=r"`lakeshift run --job j` it"):
        lakeshift.plan(str(src), str(dst), job="j", db=db)


def test_a_partition_outside_the_path_template_is_listed_whole(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["logs/2020/01/01/00/a", "other/x"])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["logs/", "other/"])
    next_second()
    (src / "other/x").write_bytes(b"v2")
    next_second()
    tpl = lakeshift.sync(job="j", db=db, lag="0", path_template="logs/{yyyy}/{MM}/{dd}/{HH}/")
    assert tpl.run.stats.copied == 1 and (dst / "other/x").read_bytes() == b"v2"


def test_a_pass_after_a_killed_one_lists_its_partition_from_the_start(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, [f"f{i:02d}" for i in range(6)])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    # A pass killed -9 on this host after it saved cursor f04: its partition still running.
    c = sqlite3.connect(f"{tmp_path}/c.db")
    later = (datetime.now(UTC) + timedelta(seconds=50)).strftime("%Y-%m-%d %H:%M:%S.%f")
    c.execute("update lakeshift_partitions set state='running', cursor='f04', lease_owner=?, "
              "lease_expires=?", (f"{socket.gethostname()}:999999:dead", later))
    c.execute("insert into lakeshift_sync_windows (job_id, partition_id, run_id, window_end, "
              "state, listed, copied, skipped, failed_objects, deleted, bytes, started_at) "
              "select job_id, partition_id, run_id, window_end, 'pending', 0, 0, 0, 0, 0, 0, "
              "started_at from lakeshift_sync_windows")
    c.commit()
    c.close()
    next_second()
    (src / "f01").write_bytes(b"v2-changed")
    next_second()
    after = lakeshift.sync(job="j", db=db, lag="0")
    assert after.run.stats.copied == 1 and (dst / "f01").read_bytes() == b"v2-changed"
    c = sqlite3.connect(f"{tmp_path}/c.db")
    assert c.execute("select state from lakeshift_sync_windows order by id").fetchall() == [
        ("succeeded",), ("interrupted",), ("succeeded",)]  # the dead pass's window ended
    c.close()


def test_the_first_window_after_a_historical_run_starts_a_lag_before_it(
        tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["d/old"])
    lakeshift.plan(str(src), str(dst), job="h", db=db)
    lakeshift.run(job="h", db=db)
    c = sqlite3.connect(f"{tmp_path}/c.db")
    started = datetime.fromisoformat(c.execute(
        "select min(started_at) from lakeshift_runs").fetchone()[0]).replace(tzinfo=UTC)
    c.close()
    # An upload that started 1.5 s before the historical run, and that its listing missed.
    late = src / "d/late"
    late.write_bytes(b"late")
    t = started.timestamp() - 1.5
    os.utime(late, (t, t))
    # The window ends at now − 2 s, on a whole second: past the upload's time only once
    # now is 2 s past the run's start.
    while datetime.now(UTC) < started + timedelta(seconds=2.1):
        time.sleep(0.1)
    r = lakeshift.sync(job="h", db=db, lag="2s")
    assert r.run.stats.copied == 1 and (dst / "d/late").read_bytes() == b"late"


def _race(dbs: list[Any], job_id: int, attempt: int) -> tuple[list[str | None],
                                                              list[BaseException]]:
    """Every ControlDB asks for the job's schedule lease at the same instant."""
    barrier = threading.Barrier(len(dbs))
    got: list[str | None] = [None] * len(dbs)
    errors: list[BaseException] = []

    def take(i: int) -> None:
        barrier.wait()
        try:
            got[i] = dbs[i].acquire_schedule(job_id, f"elsewhere:{i}:{attempt}", "every 1h",
                                             60.0, "elsewhere")
        except BaseException as e:  # a race error is what this looks for
            errors.append(e)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(dbs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got, errors


def test_schedulers_racing_for_a_job_leave_exactly_one_holder(pg_url: str,
                                                               tmp_path: Path) -> None:
    from lakeshift.control.repository import ControlDB

    src = tmp_path / "src"
    _lake(src, ["a"])
    lakeshift.sync(str(src), str(tmp_path / "dst"), job="j", db=pg_url, lag="0")
    dbs = [ControlDB(pg_url) for _ in range(8)]
    job_id = dbs[0].job("j").id
    for attempt in range(3):  # no row yet; then a released lease; then an expired one
        if attempt == 2:
            dbs[0].acquire_schedule(job_id, "gone:1:x", "every 1h", -5.0, "elsewhere")
        got, errors = _race(dbs, job_id, attempt)
        assert errors == []
        winners = [i for i, held in enumerate(got) if held is None]
        assert len(winners) == 1, (attempt, got)
        owner = f"elsewhere:{winners[0]}:{attempt}"
        assert all(held == owner for held in got if held is not None)
        assert dbs[0].schedule(job_id)["owner"] == owner  # type: ignore[index]
        dbs[0].release_schedule(job_id, owner)
    for d in dbs:
        d.close()


def test_a_scheduler_whose_lease_another_took_stops(tmp_path: Path) -> None:
    from lakeshift.errors import UsageError

    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, ["a"])
    outcome: list[BaseException | object] = []

    def follow() -> None:
        try:
            outcome.append(lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0",
                                          every="1h", lease_seconds=3))
        except BaseException as e:  # what the scheduler ended with is the point
            outcome.append(e)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (dst / "a").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    c = sqlite3.connect(f"{tmp_path}/c.db")
    c.execute("update lakeshift_schedules set owner='elsewhere:1:other'")
    c.commit()
    c.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], UsageError)
    assert "another scheduler took this one's lease" in str(outcome[0])


def test_the_delete_cap_counts_the_whole_pass_not_each_partition(tmp_path: Path) -> None:
    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, [f"p{p}/k{i}" for p in range(2) for i in range(5)])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0", prefix=["p0/", "p1/"])
    for p in range(2):
        for i in range(3):
            (src / f"p{p}/k{i}").unlink()
    next_second()
    over = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="5")
    assert over.exit_code == 1 and over.deleted == 0 and len(_names(dst)) == 10
    assert all("6 destination objects have no source any more, more than --max-delete 5"
               in (w.error or "") and w.state == "failed" for w in over.windows)
    ok = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="6")
    assert ok.exit_code == 0 and ok.deleted == 6 and _names(dst) == _names(src)
    c = sqlite3.connect(f"{tmp_path}/c.db")
    assert c.execute("select count(*) from lakeshift_sync_deletions").fetchone() == (6,)
    assert c.execute("select count(*) from lakeshift_sync_delete_candidates").fetchone() == (0,)
    c.close()


def test_delete_candidates_are_held_a_bounded_batch_at_a_time(
        tmp_path: Path, monkeypatch: Any) -> None:
    from lakeshift.engine import sync as engine_sync

    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    _lake(src, [f"k{i:02d}" for i in range(40)])
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    for i in range(30):
        (src / f"k{i:02d}").unlink()
    monkeypatch.setattr(engine_sync, "CANDIDATE_BATCH", 4)
    passes: list[Any] = []
    real = engine_sync.sync_pass

    async def spy(*a: Any, **kw: Any) -> Any:
        passes.append(await real(*a, **kw))
        return passes[-1]

    monkeypatch.setattr(engine_sync, "sync_pass", spy)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.deleted == 30 and _names(dst) == [f"k{i}" for i in range(30, 40)]
    assert 1 <= passes[0].peak_candidates <= 4
