"""Local disk → local disk: each file is copied in ONE disk worker call (read, MD5, check,
temporary file, time, record, rename) and ends exactly as the read-then-put path left it
(differential: the same files, times, records, failures and proofs)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import lakeshift
from lakeshift.errors import ChangedError, InvalidNameError, NotFoundError
from lakeshift.model import ObjectProps
from lakeshift.stores.base import StoreConfig
from lakeshift.stores.local import store as local_store
from lakeshift.stores.local.helper import Helper
from lakeshift.stores.local.hops import ThreadHops
from lakeshift.stores.local.store import LocalStore
from lakeshift.urls import parse_url

_XATTR = hasattr(os, "setxattr")


def _tree(root: Path) -> None:
    for i in range(60):
        folder = root / f"d{i // 20}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.csv").write_bytes(os.urandom(i % 9))
    os.utime(root / "d0" / "f1.csv", ns=(1577934245_123456789, 1577934245_123456789))
    (root / "empty.bin").write_bytes(b"")
    # A file whose record (from an earlier copy) says another MD5: an integrity failure.
    bad = root / "d1" / "recorded-wrong.bin"
    bad.write_bytes(b"12345")
    if _XATTR:
        st = os.stat(bad)
        os.setxattr(bad, "user.lakeshift",
                    f"1 {st.st_mtime_ns} {st.st_size} {'00' * 16} -".encode())


def _state(root: Path) -> dict[str, tuple[bytes, int, bytes | None]]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            record = None
            if _XATTR:
                try:
                    record = os.getxattr(p, "user.lakeshift")
                except OSError:
                    pass
            out[str(p.relative_to(root))] = (p.read_bytes(), p.stat().st_mtime_ns, record)
    return out


def _copy(src: Path, dst: Path) -> tuple[object, list[tuple[str, str, str, int]]]:
    result = lakeshift.copy(str(src), str(dst))
    failures = sorted((f.object_key, f.error_kind, f.message, f.attempts)
                      for f in result.failures)
    return (result.stats.copied, dict(result.proofs)), failures


def test_one_call_copy_leaves_what_read_then_put_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path / "src")
    # A source that is itself a copy lakeshift made (records with the first source's ETag).
    assert _copy(tmp_path / "src", tmp_path / "mid")[1] != []
    one = _copy(tmp_path / "mid", tmp_path / "one")
    with monkeypatch.context() as mp:
        mp.delattr(LocalStore, "copy_from")  # the read-then-put path
        two = _copy(tmp_path / "mid", tmp_path / "two")
    assert one == two
    assert _state(tmp_path / "one") == _state(tmp_path / "two")
    assert len(_state(tmp_path / "one")) == 61
    if _XATTR:
        assert all(r is not None for _, _, r in _state(tmp_path / "one").values())


def test_a_local_copy_is_one_disk_call_per_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    for i in range(200):
        folder = src / f"{i // 50}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}").write_bytes(b"x" * (i % 7))
    calls: list[Callable[..., object]] = []
    real_run = ThreadHops.run

    async def run(self: ThreadHops, fn: Callable[..., object], *args: object) -> object:
        calls.append(fn)
        return await real_run(self, fn, *args)

    monkeypatch.setattr(ThreadHops, "run", run)
    result = lakeshift.copy(str(src), str(tmp_path / "dst"))
    assert result.stats.copied == 200 and result.stats.failed == 0
    # Was two (a read, then a write) per file.
    assert len(calls) == 200, len(calls)


def test_one_call_copy_errors_are_the_read_s(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"abc")
    source = LocalStore(StoreConfig(parse_url(str(tmp_path / "src"))))
    dest = LocalStore(StoreConfig(parse_url(str(tmp_path / "dst"))))

    async def both(key: str, etag: str | None) -> tuple[BaseException, BaseException]:
        errors = []
        for call in (source.read(key, if_match=etag),
                     dest.copy_from(source, key, etag, "b", 3, None, None, None)):
            with pytest.raises(Exception) as info:
                await call
            errors.append(info.value)
        return errors[0], errors[1]

    changed = asyncio.run(both("a", "0-0"))
    assert all(isinstance(e, ChangedError) for e in changed)
    assert str(changed[0]) == str(changed[1])
    gone = asyncio.run(both("nothing", None))
    assert all(isinstance(e, NotFoundError) for e in gone)
    assert str(gone[0]) == str(gone[1])
    assert not (tmp_path / "dst").exists() or not any((tmp_path / "dst").iterdir())
    md5 = asyncio.run(dest.copy_from(source, "a", None, "b", 3, None, None, None))
    assert md5 == hashlib.md5(b"abc").digest()
    assert (tmp_path / "dst" / "b").read_bytes() == b"abc"
    assert local_store._PARTIAL not in "".join(os.listdir(tmp_path / "dst"))


needs_tmpfile = pytest.mark.skipif(not getattr(os, "O_TMPFILE", 0) or
                                   not os.path.isdir("/proc/self/fd"), reason="O_TMPFILE")


def _write(store: LocalStore, key: str, data: bytes) -> None:
    asyncio.run(store.put(key, data, ObjectProps(metadata={
        "lakeshift_src_mtime": "2020-01-02T03:04:05.123456Z", "lakeshift_src_etag": "e"}),
        hashlib.md5(data).digest()))


@needs_tmpfile
def test_new_files_are_linked_into_place_unnamed_and_replaced_ones_renamed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_store, "_TMPFILE", os.O_TMPFILE)
    monkeypatch.setattr(local_store, "_replacing_in", None)
    renames: list[str] = []
    real_replace = os.replace

    def replace(a: str, b: str) -> None:
        renames.append(os.path.basename(b))
        real_replace(a, b)

    monkeypatch.setattr(local_store.os, "replace", replace)
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    for i in range(5):
        _write(store, f"d/f{i}", b"x" * i)
    # No temporary name at all for a new file (was a named file, then a rename).
    assert renames == []
    _write(store, "d/f1", b"new")  # replaced: linked as a temporary name, renamed over
    assert renames == ["f1"]
    assert (tmp_path / "d" / "f1").read_bytes() == b"new"
    # Replacing in this folder: named temporary files here, renamed (one step, not three).
    _write(store, "d/f2", b"new2")
    _write(store, "d/f9", b"9")
    assert renames == ["f1", "f2", "f9"]
    _write(store, "d2/f", b"x")  # another folder: unnamed again
    assert renames == ["f1", "f2", "f9"]
    assert sorted(os.listdir(tmp_path / "d")) == [f"f{i}" for i in (0, 1, 2, 3, 4, 9)]
    (tmp_path / "e" / "x").mkdir(parents=True)
    with pytest.raises(InvalidNameError, match="a directory has that name"):
        _write(store, "e/x", b"4")
    assert os.listdir(tmp_path / "e") == ["x"]
    st = os.stat(tmp_path / "d" / "f3")
    assert st.st_mtime_ns == 1577934245_123456000 and st.st_nlink == 1
    assert (st.st_mode & 0o777) == (0o644 & ~_umask())
    (info,) = [o for o in asyncio.run(store.list_page("d/f3")).objects]
    assert info.md5 == hashlib.md5(b"xxx").digest() and info.metadata == {
        "lakeshift_src_etag": "e"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@needs_tmpfile
def test_unnamed_and_named_temporary_files_leave_the_same_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path / "src")
    monkeypatch.setattr(local_store, "_TMPFILE", os.O_TMPFILE)
    one = _copy(tmp_path / "src", tmp_path / "one")
    monkeypatch.setattr(local_store, "_TMPFILE", 0)
    two = _copy(tmp_path / "src", tmp_path / "two")
    assert one == two
    assert _state(tmp_path / "one") == _state(tmp_path / "two")
    # A rerun: nothing to copy again (but the file whose record is wrong fails again).
    monkeypatch.setattr(local_store, "_TMPFILE", os.O_TMPFILE)
    again = lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "one"))
    assert (again.stats.copied, again.stats.skipped, again.stats.failed) == (0, 61, 1)


@needs_tmpfile
def test_a_file_system_without_o_tmpfile_gets_named_temporary_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    monkeypatch.setattr(local_store, "_TMPFILE", os.O_TMPFILE)
    monkeypatch.setattr(local_store, "_last_parent", None)
    real_open = os.open
    refused: list[int] = []

    def refuse(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            refused.append(flags)
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, mode)

    monkeypatch.setattr(local_store.os, "open", refuse)
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    for i in range(3):
        _write(store, f"f{i}", b"abc")
    assert len(refused) == 1 and local_store._TMPFILE == 0  # asked once, then named
    assert sorted(os.listdir(tmp_path)) == ["f0", "f1", "f2"]
    assert os.stat(tmp_path / "f2").st_mtime_ns == 1577934245_123456000


@needs_tmpfile
def test_an_upload_abandoned_mid_write_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_store, "_TMPFILE", os.O_TMPFILE)
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))

    async def main() -> None:
        up = await store.start_blocks("big", 10, 5, ObjectProps())
        await up.stage(0, 0, b"12345", None)
        await up.abort()

    asyncio.run(main())
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@needs_tmpfile
def test_a_forked_child_links_through_its_own_proc_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_store, "_TMPFILE", os.O_TMPFILE)
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    _write(store, "parent", b"p")
    assert local_store._proc_fds is not None
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ok = local_store._proc_fds is None
        try:
            _write(store, "child", b"c")
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "child").read_bytes() == b"c"


@pytest.fixture
def helper_first(monkeypatch: pytest.MonkeyPatch) -> list[Helper]:
    """Every local → local copy goes to a helper process from its first file; the helpers
    started, for the test to look at."""
    started: list[Helper] = []
    real_init = Helper.__init__

    def init(self: Helper) -> None:
        real_init(self)
        started.append(self)

    monkeypatch.setattr(local_store, "HELPER_AFTER", 0)
    monkeypatch.setattr(Helper, "__init__", init)
    return started


def test_the_helper_process_leaves_what_worker_threads_leave(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper_first: list[Helper]) -> None:
    _tree(tmp_path / "src")
    one = _copy(tmp_path / "src", tmp_path / "one")
    assert len(helper_first) == 1
    proc = helper_first[0]._proc
    assert proc.poll() is not None  # ended (and reaped) with the copy
    monkeypatch.setattr(local_store, "HELPER_AFTER", -1)
    two = _copy(tmp_path / "src", tmp_path / "two")
    assert len(helper_first) == 1
    assert one == two
    assert _state(tmp_path / "one") == _state(tmp_path / "two")


def test_helper_errors_are_the_worker_s(tmp_path: Path, helper_first: list[Helper]) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"abc")
    os.symlink(tmp_path / "nowhere", tmp_path / "src" / "dangling")
    source = LocalStore(StoreConfig(parse_url(str(tmp_path / "src"))))

    async def both(key: str, etag: str | None, size: int = 3,
                   md5: bytes | None = None) -> list[BaseException]:
        errors: list[BaseException] = []
        for after in (-1, 0):
            local_store.HELPER_AFTER = after
            dest = LocalStore(StoreConfig(parse_url(str(tmp_path / f"dst{after}"))))
            try:
                with pytest.raises(Exception) as info:
                    await dest.copy_from(source, key, etag, "b", size, md5, None, None)
                errors.append(info.value)
            finally:
                await dest.close()
        return errors

    cases = [("a", "0-0", 3, None), ("nothing", None, 3, None), ("dangling", None, 3, None),
             ("a", None, 4, None), ("a", None, 3, b"\0" * 16)]
    for key, etag, size, md5 in cases:
        thread, helper = asyncio.run(both(key, etag, size, md5))
        assert type(thread) is type(helper) and str(thread) == str(helper), key
    assert len(helper_first) == len(cases)


def test_a_helper_that_dies_leaves_its_files_to_the_worker_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper_first: list[Helper]) -> None:
    import signal

    _tree(tmp_path / "src")
    real_flush = Helper._flush
    flushes = [0]

    def flush(self: Helper) -> None:
        flushes[0] += 1
        if flushes[0] == 2:  # killed with a batch on its way
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()
        real_flush(self)

    monkeypatch.setattr(Helper, "_flush", flush)
    (count, _), failures = _copy(tmp_path / "src", tmp_path / "dst")
    assert helper_first and helper_first[0].broken
    assert count == 61 and [f[0] for f in failures] == ["d1/recorded-wrong.bin"]
    assert len(_state(tmp_path / "dst")) == 61


def test_a_stalled_helper_does_not_stall_the_loop(
        tmp_path: Path, helper_first: list[Helper]) -> None:
    import signal

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_bytes(b"abc")
    source = LocalStore(StoreConfig(parse_url(str(tmp_path / "src"))))
    dest = LocalStore(StoreConfig(parse_url(str(tmp_path / "dst"))))

    async def main() -> None:
        await dest.copy_from(source, "a", None, "a", 3, None, None, None)
        proc = helper_first[0]._proc
        proc.send_signal(signal.SIGSTOP)  # a disk that hangs, as the loop sees it
        try:
            copy = asyncio.ensure_future(
                dest.copy_from(source, "a", None, "b", 3, None, None, None))
            ticks = 0
            for _ in range(20):
                await asyncio.sleep(0.005)
                ticks += 1
            assert ticks == 20 and not copy.done()
        finally:
            proc.send_signal(signal.SIGCONT)
        assert await asyncio.wait_for(copy, 10) == hashlib.md5(b"abc").digest()
        await dest.close()

    asyncio.run(main())
    assert (tmp_path / "dst" / "b").read_bytes() == b"abc"


@pytest.mark.parametrize("program", ["/nonexistent/python", "/bin/true"])
def test_a_helper_that_cannot_start_or_ends_at_once_leaves_the_copy_to_the_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper_first: list[Helper],
        program: str) -> None:
    # Not there (the spawn fails: threads from the start), or a program that is no helper
    # (it ends at once: what was sent to it is retried, in the threads).
    from lakeshift.stores.local import helper as helper_module

    monkeypatch.setattr(helper_module.sys, "executable", program)
    _tree(tmp_path / "src")
    (count, _), failures = _copy(tmp_path / "src", tmp_path / "dst")
    assert count == 61 and [f[0] for f in failures] == ["d1/recorded-wrong.bin"]
    assert all(h.broken for h in helper_first)
