"""The engine keeps its event loop free (issue 10): per-object look-ups run in the pool's
workers, and files, the verify report and the control DB are reached from threads."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.engine.verify import Report, VerifyOptions, verify_async
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import StoreConfig
from lakeshift.stores.s3.store import S3Store
from lakeshift.urls import parse_url
from tests.helpers import next_second


def test_check_times_heads_run_in_the_workers_not_the_planner(
        s3: Any, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(8):
        (src / f"f{i}.txt").write_bytes(f"object {i}".encode())
    assert lakeshift.copy(str(src), f"s3://{bucket}/t/").exit_code == 0
    in_flight, peak = [0], [0]
    real = S3Store.exists

    async def slow_head(self: S3Store, key: str) -> ObjectInfo | None:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        try:
            await asyncio.sleep(0.1)
            return await real(self, key)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(S3Store, "exists", slow_head)
    v = lakeshift.verify(str(src), f"s3://{bucket}/t/", check_times=True, concurrency=4,
                         report=tmp_path / "r")
    assert (v.exit_code, v.checked, v.verified, v.times) == (0, 8, 8, 0)
    # The HEAD that shows an S3 object's kept time is a worker's: several at once (the
    # planner, which merges the listings, would make them one after another).
    assert peak[0] > 1


class _ThreadRecorder(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def write(self, s: str) -> int:
        self.threads.add(threading.current_thread().name)
        return super().write(s)


def test_the_verify_report_is_written_by_a_writer_thread(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for i in range(5):
        (src / f"f{i}").write_bytes(b"x" * i)
    (dst / "extra").write_bytes(b"y")
    fh = _ThreadRecorder()
    pair = (StoreConfig(parse_url(str(src))), StoreConfig(parse_url(str(dst))), None, None)
    result = asyncio.run(verify_async([pair], VerifyOptions(), Report(fh)))
    assert result.counts["missing"] == 5 and result.counts["extra"] == 1
    assert len(fh.getvalue().splitlines()) == 7  # the header and six rows, all written
    assert fh.threads and threading.main_thread().name not in fh.threads


class _SlowDisk(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()

    def write(self, s: str) -> int:
        self.go.wait(10)
        return super().write(s)


def test_a_slow_report_holds_verify_back_through_a_bounded_queue_not_the_loop() -> None:
    fh = _SlowDisk()

    async def main() -> tuple[bool, int]:
        report = Report(fh, depth=2)
        rows = asyncio.create_task(_rows(report, 10))
        ticks = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.3:  # the loop stays free meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        held = not rows.done()  # the queue is full: row() waits for room
        fh.go.set()
        await rows
        await report.close()
        return held, ticks

    held, ticks = asyncio.run(main())
    assert held and ticks > 10
    assert len(fh.getvalue().splitlines()) == 11


async def _rows(report: Report, n: int) -> None:
    for i in range(n):
        await report.row(f"k{i}", "missing", None, None, None, None, "")


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Each file read with Path.read_text or read_bytes, by name: whether it ran on the
    event loop."""
    seen: dict[str, bool] = {}
    real_text, real_bytes = Path.read_text, Path.read_bytes

    def read_text(self: Path, *a: Any, **kw: Any) -> str:
        seen[self.name] = seen.get(self.name, False) or _on_loop()
        return real_text(self, *a, **kw)

    def read_bytes(self: Path) -> bytes:
        seen[self.name] = seen.get(self.name, False) or _on_loop()
        return real_bytes(self)

    monkeypatch.setattr(Path, "read_text", read_text)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return seen


def test_plan_and_copy_read_their_files_off_the_loop(tmp_path: Path,
                                                      reads: dict[str, bool]) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x").write_bytes(b"x")
    (tmp_path / "ids.csv").write_text("user:alice,11111111-1111-1111-1111-111111111111\n")
    (tmp_path / "parts.txt").write_text("a/\n")
    db = f"sqlite:///{tmp_path}/c.db"
    r = lakeshift.plan(str(src), str(tmp_path / "dst"), job="j", db=db, preserve="acl",
                       map_identities=tmp_path / "ids.csv",
                       partitions_file=tmp_path / "parts.txt")
    assert r.job.partitions == 1
    with pytest.raises(lakeshift.UsageError):  # local disk keeps no ACLs; read first
        lakeshift.copy(str(src), str(tmp_path / "out"), preserve="acl",
                       map_identities=str(tmp_path / "ids.csv"))
    assert reads == {"ids.csv": False, "parts.txt": False}


def test_run_config_and_sync_files_from_are_read_off_the_loop(
        tmp_path: Path, reads: dict[str, bool]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "k").write_bytes(b"k")
    db = f"sqlite:///{tmp_path}/c.db"
    (tmp_path / "lakeshift.toml").write_text(
        f'[job]\nname = "j"\ndb = "{db}"\n[source]\nurls = ["{src}"]\n'
        f'[destination]\nurl = "{tmp_path / "dst"}"\n')
    assert lakeshift.run(config=tmp_path / "lakeshift.toml").exit_code == 0
    (tmp_path / "keys.txt").write_text("k\n")
    s = lakeshift.sync(str(src), str(tmp_path / "d2"), job="s", db=db,
                       files_from=tmp_path / "keys.txt")
    assert s.exit_code == 0
    assert reads == {"lakeshift.toml": False, "keys.txt": False}


def test_sync_delete_candidates_are_written_off_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.control.repository import ControlDB
    from lakeshift.engine import sync as engine_sync

    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    src.mkdir()
    old = time.time() - 7200  # before the first pass's window ends
    for i in range(20):
        (src / f"k{i:02d}").write_bytes(b"v")
        os.utime(src / f"k{i:02d}", (old, old))
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    for i in range(12):
        (src / f"k{i:02d}").unlink()
    monkeypatch.setattr(engine_sync, "CANDIDATE_BATCH", 4)
    writes: list[bool] = []
    real = ControlDB.add_delete_candidates

    def spy(self: ControlDB, *a: Any, **kw: Any) -> Any:
        writes.append(_on_loop())
        return real(self, *a, **kw)

    monkeypatch.setattr(ControlDB, "add_delete_candidates", spy)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.deleted == 12
    assert len(writes) >= 3 and not any(writes)  # full batches during the merge, and the rest


def test_scan_and_tune_read_their_files_off_the_loop(tmp_path: Path,
                                                      reads: dict[str, bool]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "k").write_bytes(b"k" * 100)
    (tmp_path / "prices.toml").write_text("")
    assert lakeshift.scan(str(src), prices=tmp_path / "prices.toml").objects == 1
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(f'[job]\nname = "j"\n[source]\nurls = ["{src}"]\n'
                   f'[destination]\nurl = "{tmp_path / "dst"}"\n')
    lakeshift.tune(str(src), str(tmp_path / "dst"), config=cfg, sample_objects=1)
    assert "concurrency" in cfg.read_text()
    assert {n: reads[n] for n in ("prices.toml", "lakeshift.toml")} == {
        "prices.toml": False, "lakeshift.toml": False}


def test_local_files_are_read_in_a_thread_however_small(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every read of a local file (LocalStore._read, and the one-call local → local copy,
    # reads._copy_file) goes through _read_file, looked up in each of those two modules.
    from lakeshift.stores.local import reads as local_reads
    from lakeshift.stores.local import store as local_store

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(b"tiny" * i)
    on_loop: list[bool] = []
    real = local_store._read_file

    def spy(*a: Any) -> Any:
        on_loop.append(_on_loop())
        return real(*a)

    monkeypatch.setattr(local_store, "_read_file", spy)
    monkeypatch.setattr(local_reads, "_read_file", spy)
    assert lakeshift.copy(str(src), str(tmp_path / "dst")).stats.copied == 3
    assert len(on_loop) == 3 and not any(on_loop)


class _BrokenDisk(io.StringIO):
    """A report file whose writes fail with something other than an OSError."""

    def write(self, s: str) -> int:
        if "bad" in s:
            raise UnicodeEncodeError("utf-8", "bad\udcff", 3, 4, "surrogates not allowed")
        return super().write(s)


def test_a_report_write_that_fails_neither_hangs_verify_nor_goes_unsaid() -> None:
    from lakeshift.errors import UsageError

    async def main() -> None:
        report = Report(_BrokenDisk(), depth=2)
        await report.row("bad", "missing", None, None, None, None, "")
        await asyncio.wait_for(_rows(report, 10), 10)  # more rows than the queue holds
        await report.close()

    with pytest.raises(UsageError, match="cannot write the verify report"):
        asyncio.run(main())


def test_sync_delete_new_names_are_written_off_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # NewNames.add is the pipeline's (sync) on_unmatched callback, on the event loop: a
    # full batch of new names used to be inserted into its SQLite file right there.
    from lakeshift.engine import renames

    src, dst, db = tmp_path / "src", tmp_path / "dst", f"sqlite:///{tmp_path}/c.db"
    src.mkdir()
    (src / "gone").write_bytes(b"old")
    old = time.time() - 7200  # before the first pass's window ends
    os.utime(src / "gone", (old, old))
    lakeshift.sync(str(src), str(dst), job="j", db=db, lag="0")
    (src / "gone").unlink()
    for i in range(23):
        (src / f"n{i:02d}").write_bytes(b"new %d" % i)
    next_second()  # the new objects inside the next window
    monkeypatch.setattr(renames, "BATCH", 4)
    writes: list[bool] = []
    names: list[Any] = []
    real_init = renames.NewNames.__init__

    class Spy:
        def __init__(self, con: Any) -> None:
            self.con = con

        def executemany(self, sql: str, rows: Any) -> Any:
            writes.append(_on_loop())
            return self.con.executemany(sql, rows)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

    def init(self: Any) -> None:
        real_init(self)
        self._db = Spy(self._db)
        names.append(self)

    monkeypatch.setattr(renames.NewNames, "__init__", init)
    real_of_size = renames.NewNames.of_size
    seen: list[int] = []

    def of_size(self: Any, size: int, limit: int = 50) -> Any:
        out = real_of_size(self, size, limit)
        seen.append(self._db.execute("SELECT count(*) FROM new").fetchone()[0])
        return out

    monkeypatch.setattr(renames.NewNames, "of_size", of_size)
    r = lakeshift.sync(job="j", db=db, lag="0", delete=True, max_delete="100%")
    assert r.exit_code == 0 and r.deleted == 1, r
    assert len(writes) >= 5 and not any(writes)  # five full batches and the rest
    assert names[0].count == 23 and seen == [23]  # every name written before the pairing


def test_local_look_ups_stat_off_the_loop(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A HEAD (exists), an empty directory's check (is_folder) and a listing of a store
    # whose URL names one file: every stat of them in a thread, never in the event loop.
    from lakeshift.stores.local.store import LocalStore

    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_bytes(b"data")
    on_loop: list[str] = []
    real_stat = os.stat

    def stat(path: Any, *a: Any, **k: Any) -> os.stat_result:
        if _on_loop() and str(path).startswith(str(tmp_path)):
            on_loop.append(str(path))
        return real_stat(path, *a, **k)

    monkeypatch.setattr(os, "stat", stat)
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    one = LocalStore(StoreConfig(parse_url(str(tmp_path / "f"))))

    async def look() -> tuple[Any, ...]:
        return (await store.exists("f"), await store.exists("d"), await store.exists("x"),
                await store.is_folder("d/"), await store.is_folder("f"),
                await one.list_page(""))

    f, d, x, d_is, f_is, page = asyncio.run(look())
    assert f is not None and f.size == 4 and (d, x) == (None, None)
    assert (d_is, f_is) == (True, False)
    assert [(o.key, o.size) for o in page.objects] == [("", 4)]
    assert on_loop == []
