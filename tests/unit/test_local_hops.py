"""Local disk: reads and whole-file writes go to worker threads several per hop (never in
the event loop), and the shortcuts of the write path (a temporary name per process, the
folder of the file before) give the same outcomes as the full path."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import lakeshift
from lakeshift.errors import InvalidNameError
from lakeshift.model import ObjectProps
from lakeshift.stores.base import StoreConfig
from lakeshift.stores.local import writes as local_writes
from lakeshift.stores.local.hops import DISK, ThreadHops
from lakeshift.stores.local.store import LocalStore
from lakeshift.urls import parse_url


def test_hops_run_calls_off_the_loop_and_hand_back_results_and_errors() -> None:
    async def main() -> None:
        hops = ThreadHops(threads=2, batch=8)
        loop_thread = threading.get_ident()

        def work(i: int) -> tuple[int, int]:
            if i % 7 == 3:
                raise ValueError(f"bad {i}")
            return i * i, threading.get_ident()

        results = await asyncio.gather(*(hops.run(work, i) for i in range(100)),
                                       return_exceptions=True)
        for i, r in enumerate(results):
            if i % 7 == 3:
                assert isinstance(r, ValueError) and str(r) == f"bad {i}"
            else:
                assert isinstance(r, tuple) and r[0] == i * i and r[1] != loop_thread
        assert hops.hops < 100  # several calls per hop

        # A call whose caller gave up before it ran is not run at all.
        gate = threading.Event()
        ran: list[int] = []
        blockers = [asyncio.ensure_future(hops.run(gate.wait)) for _ in range(2)]
        await asyncio.sleep(0.05)  # both workers hold a blocked call
        late = asyncio.ensure_future(hops.run(ran.append, 1))
        await asyncio.sleep(0)
        late.cancel()
        gate.set()
        await asyncio.gather(*blockers)
        await asyncio.gather(late, return_exceptions=True)
        assert await hops.run(ran.append, 2) is None
        assert ran == [2]

    asyncio.run(main())


def test_a_copy_of_many_small_files_makes_fewer_hops_than_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(300):
        folder = src / f"{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}").write_bytes(os.urandom(i % 5))
    hops: list[ThreadHops] = []
    real_init = LocalStore.__init__

    def spy(self: LocalStore, config: StoreConfig) -> None:
        real_init(self, config)
        hops.append(self.hops)

    # The pool is the process's: count this copy's hops, not earlier tests'.
    before = DISK.hops
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LocalStore, "__init__", spy)
        result = lakeshift.copy(str(src), str(tmp_path / "dst"))
    assert result.stats.copied == 300 and result.stats.failed == 0
    for p in src.rglob("f*"):
        assert (tmp_path / "dst" / p.relative_to(src)).read_bytes() == p.read_bytes()
    # One read and one write per file; far fewer thread hops.
    assert hops and all(h is DISK for h in hops)
    assert 0 < DISK.hops - before < 600


def test_a_local_copy_runs_its_disk_calls_in_one_pool_of_two_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Source and destination share the workers: more threads only take the GIL from each
    # other around every small system call.
    src = tmp_path / "src"
    for i in range(400):
        folder = src / f"{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}").write_bytes(b"x" * (i % 7))
    pools: dict[int, ThreadHops] = {}
    peak = [0]
    real_init = LocalStore.__init__

    def spy(self: LocalStore, config: StoreConfig) -> None:
        real_init(self, config)
        pools[id(self.hops)] = self.hops

    real_run = ThreadHops.run

    async def run(self: ThreadHops, fn: Callable[..., object], *args: object) -> object:
        def counted(*a: object) -> object:
            # Worker threads alive in the stores' pools while this call runs.
            peak[0] = max(peak[0], sum(p._running for p in pools.values()))
            return fn(*a)
        return await real_run(self, counted, *args)

    monkeypatch.setattr(LocalStore, "__init__", spy)
    monkeypatch.setattr(ThreadHops, "run", run)
    result = lakeshift.copy(str(src), str(tmp_path / "dst"))
    assert result.stats.copied == 400 and result.stats.failed == 0
    assert 1 <= peak[0] <= 2 and len(pools) == 1


def _put(store: LocalStore, key: str, data: bytes) -> None:
    asyncio.run(store.put(key, data, ObjectProps(), hashlib.md5(data).digest()))


def test_the_folder_of_the_file_before_is_checked_again_when_it_changed(
        tmp_path: Path) -> None:
    store = LocalStore(StoreConfig(parse_url(str(tmp_path / "dst"))))
    _put(store, "d/a", b"1")
    # Removed since: created again.
    (tmp_path / "dst" / "d" / "a").unlink()
    (tmp_path / "dst" / "d").rmdir()
    _put(store, "d/b", b"2")
    assert (tmp_path / "dst" / "d" / "b").read_bytes() == b"2"
    # Replaced by a file since: the same clear error as the first time.
    for p in (tmp_path / "dst" / "d").iterdir():
        p.unlink()
    (tmp_path / "dst" / "d").rmdir()
    (tmp_path / "dst" / "d").write_bytes(b"file")
    with pytest.raises(InvalidNameError, match="a file has that name"):
        _put(store, "d/c", b"3")
    # A directory where the file goes: refused, nothing left behind.
    (tmp_path / "dst" / "e" / "x").mkdir(parents=True)
    with pytest.raises(InvalidNameError, match="a directory has that name"):
        _put(store, "e/x", b"4")
    assert sorted(p.name for p in (tmp_path / "dst" / "e").iterdir()) == ["x"]


def test_written_files_keep_the_source_time_and_the_recorded_md5(tmp_path: Path) -> None:
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    props = ObjectProps(metadata={"lakeshift_src_mtime": "2020-01-02T03:04:05.123456Z",
                                  "lakeshift_src_etag": '"abc"'})
    data = b"hello"
    asyncio.run(store.put("k", data, props, hashlib.md5(data).digest()))
    st = os.stat(tmp_path / "k")
    assert st.st_mtime_ns == 1577934245_123456000
    page = asyncio.run(store.list_page(""))
    (info,) = page.objects
    assert info.md5 == hashlib.md5(data).digest()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_names_its_temporary_files_apart() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(w, local_writes._TMP_PREFIX.encode())
        os._exit(0)
    os.close(w)
    child = os.read(r, 200).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert child.startswith(".lakeshift-partial-") and child != local_writes._TMP_PREFIX


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_hops_made_before_a_fork_work_in_the_child() -> None:
    hops = ThreadHops(threads=1, linger=30)  # its worker lingers in the parent
    assert asyncio.run(hops.run(int, "1")) == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            got = asyncio.run(asyncio.wait_for(hops.run(int, "42"), 10))
            os.write(w, str(got).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert out == "42"
