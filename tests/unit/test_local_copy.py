"""Local disk → local disk: each file is copied in ONE disk worker call (read, MD5, check,
temporary file, time, record, rename) and ends exactly as the read-then-put path left it
(differential: the same files, times, records, failures and proofs)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import lakeshift
from lakeshift.errors import ChangedError, InvalidNameError, NotFoundError
from lakeshift.model import ObjectProps
from lakeshift.stores.base import StoreConfig
from lakeshift.stores.local import store as local_store
from lakeshift.stores.local import writes as local_writes
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
    assert local_writes._PARTIAL not in "".join(os.listdir(tmp_path / "dst"))


needs_tmpfile = pytest.mark.skipif(not getattr(os, "O_TMPFILE", 0) or
                                   not os.path.isdir("/proc/self/fd"), reason="O_TMPFILE")


def _write(store: LocalStore, key: str, data: bytes) -> None:
    asyncio.run(store.put(key, data, ObjectProps(metadata={
        "lakeshift_src_mtime": "2020-01-02T03:04:05.123456Z", "lakeshift_src_etag": "e"}),
        hashlib.md5(data).digest()))


@needs_tmpfile
def test_new_files_are_linked_into_place_unnamed_and_replaced_ones_renamed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_writes, "_TMPFILE", os.O_TMPFILE)
    monkeypatch.setattr(local_writes, "_replacing_in", None)
    renames: list[str] = []
    real_replace = os.replace

    def replace(a: str, b: str) -> None:
        renames.append(os.path.basename(b))
        real_replace(a, b)

    monkeypatch.setattr(local_writes.os, "replace", replace)
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
    monkeypatch.setattr(local_writes, "_TMPFILE", os.O_TMPFILE)
    one = _copy(tmp_path / "src", tmp_path / "one")
    monkeypatch.setattr(local_writes, "_TMPFILE", 0)
    two = _copy(tmp_path / "src", tmp_path / "two")
    assert one == two
    assert _state(tmp_path / "one") == _state(tmp_path / "two")
    # A rerun: nothing to copy again (but the file whose record is wrong fails again).
    monkeypatch.setattr(local_writes, "_TMPFILE", os.O_TMPFILE)
    again = lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "one"))
    assert (again.stats.copied, again.stats.skipped, again.stats.failed) == (0, 61, 1)


@needs_tmpfile
def test_a_file_system_without_o_tmpfile_gets_named_temporary_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    monkeypatch.setattr(local_writes, "_TMPFILE", os.O_TMPFILE)
    monkeypatch.setattr(local_writes, "_last_parent", None)
    real_open = os.open
    refused: list[int] = []

    def refuse(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            refused.append(flags)
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, mode)

    monkeypatch.setattr(local_writes.os, "open", refuse)
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    for i in range(3):
        _write(store, f"f{i}", b"abc")
    assert len(refused) == 1 and local_writes._TMPFILE == 0  # asked once, then named
    assert sorted(os.listdir(tmp_path)) == ["f0", "f1", "f2"]
    assert os.stat(tmp_path / "f2").st_mtime_ns == 1577934245_123456000


@needs_tmpfile
def test_an_upload_abandoned_mid_write_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_writes, "_TMPFILE", os.O_TMPFILE)
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
    monkeypatch.setattr(local_writes, "_TMPFILE", os.O_TMPFILE)
    store = LocalStore(StoreConfig(parse_url(str(tmp_path))))
    _write(store, "parent", b"p")
    assert local_writes._proc_fds is not None
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        ok = local_writes._proc_fds is None
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
        # Ready before the first copy (the store uses its threads until the child says it
        # has started): wait for its first answer here.
        import select

        if select.select([self._out], [], [], 30)[0]:
            self._readable()

    monkeypatch.setattr(local_store, "HELPER_AFTER", 0)
    monkeypatch.setattr(Helper, "__init__", init)
    return started


def test_the_helper_process_leaves_what_worker_threads_leave(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper_first: list[Helper]) -> None:
    _tree(tmp_path / "src")
    one = _copy(tmp_path / "src", tmp_path / "one")
    assert len(helper_first) == 1 and helper_first[0]._next > 0  # it did copy
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
    assert all(h._next == 1 for h in helper_first)  # each did its one copy


def test_helper_failures_are_rebuilt_as_the_worker_raised_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What the child sends for a file's error (through a pickle, as on the pipe) is
    rebuilt as the same exception, both file names of an OSError included; an error class
    that cannot be made from its message alone is an InternalError, not a hang."""
    import errno
    import pickle

    from lakeshift import errors
    from lakeshift.stores.local.helper import _failure, _rebuilt

    class TwoArgError(errors.LakeshiftError):
        def __init__(self, message: str, extra: int) -> None:
            super().__init__(message)

    monkeypatch.setattr(errors, "TwoArgError", TwoArgError, raising=False)
    same: list[Exception] = [
        OSError(errno.EEXIST, "File exists", "/d/a", None, "/d/b"),
        FileExistsError(errno.EEXIST, "File exists", "/d/a", None, "/d/b"),
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/d/x"),
        OSError("a message only"), NotFoundError("/d/x: not found")]
    for e in same:
        back = _rebuilt(pickle.loads(pickle.dumps(_failure(e))))
        assert type(back) is type(e) and str(back) == str(e), e
    for e in (TwoArgError("two", 2), ValueError("v")):
        back = _rebuilt(pickle.loads(pickle.dumps(_failure(e))))
        assert isinstance(back, errors.InternalError) and "local copy helper" in str(back)


def test_an_answer_that_cannot_be_rebuilt_fails_its_copy_instead_of_hanging(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper_first: list[Helper]) -> None:
    from lakeshift.errors import TransientError
    from lakeshift.stores.local import helper as helper_module

    def rebuilt(value: object) -> BaseException:
        raise RuntimeError("cannot")

    monkeypatch.setattr(helper_module, "_rebuilt", rebuilt)
    (tmp_path / "src").mkdir()
    source = LocalStore(StoreConfig(parse_url(str(tmp_path / "src"))))

    async def main() -> None:
        dest = LocalStore(StoreConfig(parse_url(str(tmp_path / "dst"))))
        try:
            with pytest.raises(TransientError, match="helper process ended"):
                await asyncio.wait_for(
                    dest.copy_from(source, "missing", None, "b", 3, None, None, None), 30)
        finally:
            await dest.close()

    asyncio.run(main())
    assert helper_first and helper_first[0].broken


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


_S3_MULTIPART = "9b2cf535f27731c974343645a3985328-10000"  # (S3's most parts)
_ETAGS: list[str | None] = [
    None, "d41d8cd98f00b204e9800998ecf8427e", _S3_MULTIPART, "17c5f9a2b3c4d5e6-40",
    # A local file's ETag with an mtime before mid-2006 (15 hex digits) and a size of TiBs.
    "10b0761ab1c1234-10000000000",
    "0x8DC1234567890AB", "", "ABCDEF", "abc", "e", '"quoted"', "é-1", "ab" * 300 + "-x",
    "-", "1 2 3", "00",
]


def test_the_record_fits_in_an_ext4_inode_and_reads_back() -> None:
    # ext4 (256-byte inodes) keeps an xattr value of up to 56 bytes with this name in the
    # inode: the text record (77 bytes with a local source's ETag) cost a block per file.
    md5 = hashlib.md5(b"x").digest()
    st = os.stat_result((0o100644, 0, 0, 1, 0, 0, 64, 0, 0, 0),
                        {"st_mtime_ns": 1764641234_123456789})
    for etag in _ETAGS:
        value = local_writes._record_value(st.st_mtime_ns, 64, md5, etag)
        assert local_writes._read_record(value, st) == (md5, etag), etag
        if etag is None or len(etag) <= len(_S3_MULTIPART) or etag.startswith("10b07"):
            assert len(value) <= 56, (etag, len(value))
        # Stale (mtime or size since changed), truncated or foreign: no record.
        for other in (os.stat_result((*st[:6], 65, *st[7:]),
                                     {"st_mtime_ns": st.st_mtime_ns}),
                      os.stat_result(st, {"st_mtime_ns": st.st_mtime_ns + 1})):
            assert local_writes._read_record(value, other) is None
        assert local_writes._read_record(value[:32], st) is None
    assert local_writes._read_record(b"\2" + bytes(40) + b"\x10ab", st) is None
    assert local_writes._read_record(b"", st) is None
    assert local_writes._read_record(b"\xff\xfe", st) is None
    # A negative mtime (before 1970) too.
    old = os.stat_result(st, {"st_mtime_ns": -1_500_000_001})
    assert local_writes._read_record(
        local_writes._record_value(-1_500_000_001, 64, md5, None), old) == (md5, None)


def _text_record(path: Path) -> None:
    """The record of ``path`` rewritten as an earlier version wrote it (text, version 1)."""
    st = os.stat(path)
    md5, etag = local_writes._read_record(os.getxattr(path, "user.lakeshift"), st) or \
        (None, None)
    assert md5 is not None
    os.setxattr(path, "user.lakeshift",
                f"1 {st.st_mtime_ns} {st.st_size} {md5.hex()} {etag or '-'}".encode())


@pytest.mark.skipif(not _XATTR, reason="xattrs")
def test_a_destination_with_text_records_of_an_earlier_version_is_still_read(
        tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    assert _copy(tmp_path / "src", tmp_path / "mid")[1] != []
    new = _state(tmp_path / "mid")

    def verified() -> tuple[object, ...]:
        v = lakeshift.verify(str(tmp_path / "src"), str(tmp_path / "mid"),
                             report=tmp_path / "r")
        return v.exit_code, v.verified, v.missing, v.checksum, v.unverifiable, v.summary

    before = verified()
    for p in (tmp_path / "mid").rglob("*"):
        if p.is_file():
            _text_record(p)
    assert all(r is not None and r[:2] == b"1 " for _, _, r in
               _state(tmp_path / "mid").values())
    # Listed with the same MD5 and source ETag: a rerun skips every file...
    again = lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "mid"))
    assert (again.stats.copied, again.stats.skipped, again.stats.failed) == (0, 61, 1)
    # ...verify finds what it found with new records...
    after = verified()
    assert after[:5] == before[:5] and after[1] == 61
    assert after[5]["proofs"] == before[5]["proofs"]  # type: ignore[index]
    # ...and as a source, they give the copy the same MD5s and ETags as new records do.
    _copy(tmp_path / "mid", tmp_path / "from-text")
    for p in (tmp_path / "mid").rglob("*"):
        if p.is_file():
            st = os.stat(p)
            md5, etag = local_writes._read_record(os.getxattr(p, "user.lakeshift"), st) or \
                (None, None)
            os.setxattr(p, "user.lakeshift",
                        local_writes._record_value(st.st_mtime_ns, st.st_size, md5, etag))
    assert _state(tmp_path / "mid") == new
    _copy(tmp_path / "mid", tmp_path / "from-binary")
    assert _state(tmp_path / "from-text") == _state(tmp_path / "from-binary")


@pytest.mark.skipif(not _XATTR, reason="xattrs")
def test_a_written_file_takes_no_block_for_its_record(tmp_path: Path) -> None:
    # Where the file system gives a long xattr value a block of its own (ext4), the record
    # takes none (checked against a file without one; skipped where none does).
    for name, value in (("bare", None), ("long", b"1 " + b"9" * 75)):
        (tmp_path / name).write_bytes(b"x" * 64)
        if value is not None:
            os.setxattr(tmp_path / name, "user.lakeshift", value)
    bare = os.stat(tmp_path / "bare").st_blocks
    if os.stat(tmp_path / "long").st_blocks == bare:
        pytest.skip("this file system keeps long xattrs without a block of their own")
    store = LocalStore(StoreConfig(parse_url(str(tmp_path / "dst"))))
    data = b"x" * 64
    asyncio.run(store.put("f", data, ObjectProps(metadata={
        "lakeshift_src_mtime": "2020-01-02T03:04:05.123456Z",
        "lakeshift_src_etag": _S3_MULTIPART}), hashlib.md5(data).digest()))
    assert os.getxattr(tmp_path / "dst" / "f", "user.lakeshift")[:1] == b"\2"
    assert os.stat(tmp_path / "dst" / "f").st_blocks == bare


def test_the_helper_child_imports_the_file_reads_not_the_public_api() -> None:
    import subprocess
    import sys

    from lakeshift.stores.local import helper as helper_module

    program = helper_module._CHILD.format(path=list(lakeshift.__path__)) + (
        "print(sorted(m for m in sys.modules if m.startswith('lakeshift')))\n")
    # (What the child prints goes to its stderr: its stdout is for answers.)
    out = subprocess.run([sys.executable, "-c", program], input=b"", capture_output=True,
                         check=True, timeout=60).stderr.decode()
    assert "'lakeshift.stores.local.reads'" in out
    # (Nor the store itself, since it was split: only what _copy_file needs.)
    assert "'lakeshift.stores.local.store'" not in out, out
    assert "lakeshift.api" not in out and "lakeshift.engine" not in out, out


_INTERRUPTED = """\
import os, sys
from lakeshift.stores.local import helper, store
store.HELPER_AFTER = 0
real_init = helper.Helper.__init__
def init(self):
    real_init(self)
    os.write(1, f"{self._proc.pid}\\n".encode())
helper.Helper.__init__ = init
from lakeshift.cli.app import main
sys.argv[0] = "lakeshift"
sys.exit(main())
"""


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="/proc")
def test_ctrl_c_ends_the_copy_and_its_helper_process(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "src"
    for i in range(3000):
        folder = src / f"{i // 500}"
        if i % 500 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i}").write_bytes(b"x")
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED, "copy", str(src), str(tmp_path / "dst"),
         "--progress", "none"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        # Ctrl-C in a terminal: SIGINT to the whole process group (the child ignores it).
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert b"Traceback" not in err, err
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break  # ended (its new parent has not reaped it yet)
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the helper process outlived the interrupted copy")


_NOISY_CHILD = """\
import sys
from lakeshift.stores.local import helper, reads
real = reads._copy_file
def noisy(*args):
    print("a stray print")
    sys.stdout.flush()
    return real(*args)
reads._copy_file = noisy
helper.main()
"""


def test_a_stray_print_in_the_helper_child_does_not_garble_its_answers(
        tmp_path: Path) -> None:
    import pickle
    import subprocess
    import sys

    (tmp_path / "a").write_bytes(b"abc")
    request = pickle.dumps([(7, (str(tmp_path / "a"), None, str(tmp_path / "b"), "a", 3,
                                 None, None, None))])
    out = subprocess.run([sys.executable, "-c", _NOISY_CHILD],
                         input=len(request).to_bytes(4, "big") + request,
                         capture_output=True, check=True, timeout=60).stdout
    answers = []
    while out:
        n = int.from_bytes(out[:4], "big")
        answers.append(pickle.loads(out[4:4 + n]))
        out = out[4 + n:]
    # "Started", then the answer.
    assert answers == [[], [(7, True, hashlib.md5(b"abc").digest())]]
    assert (tmp_path / "b").read_bytes() == b"abc"


def test_a_garbled_answer_ends_the_helper_and_its_files_go_to_the_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper_first: list[Helper]) -> None:
    _tree(tmp_path / "src")
    real_readable = Helper._readable
    calls = [0]

    def readable(self: Helper) -> None:
        calls[0] += 1
        if calls[0] == 2:
            self._received += b"\0\0\0\3xyz"  # a frame that is no pickle
        real_readable(self)

    monkeypatch.setattr(Helper, "_readable", readable)

    async def copy() -> object:
        return await asyncio.wait_for(
            lakeshift.copy_async(str(tmp_path / "src"), str(tmp_path / "dst")), 30)

    result = asyncio.run(copy())
    assert calls[0] >= 2 and helper_first and helper_first[0].broken
    assert helper_first[0]._proc.poll() is not None
    assert result.stats.copied == 61  # type: ignore[attr-defined]
    assert [f.object_key for f in result.failures] == [  # type: ignore[attr-defined]
        "d1/recorded-wrong.bin"]
    monkeypatch.setattr(local_store, "HELPER_AFTER", -1)
    _copy(tmp_path / "src", tmp_path / "threads")
    assert _state(tmp_path / "dst") == _state(tmp_path / "threads")


def test_a_copy_of_a_few_hundred_files_has_its_helper_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper is started after HELPER_AFTER files (as it is, not patched): early
    enough that a copy of 20,000 small files is mostly its work, while a copy of a few
    dozen never starts one."""
    started: list[Helper] = []
    real_init = Helper.__init__

    def init(self: Helper) -> None:
        real_init(self)
        started.append(self)

    monkeypatch.setattr(Helper, "__init__", init)
    src = tmp_path / "src"
    src.mkdir()
    for i in range(300):
        (src / f"f{i:03d}").write_bytes(b"x")
    assert _copy(src, tmp_path / "few")[0][0] == 300  # type: ignore[index]
    assert len(started) == 1
    (tmp_path / "small").mkdir()
    for i in range(40):
        (tmp_path / "small" / f"f{i}").write_bytes(b"x")
    _copy(tmp_path / "small", tmp_path / "small-copy")
    assert len(started) == 1  # none for 40 files


def test_copies_go_to_the_threads_until_the_helper_has_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.stores.local import helper as helper_module

    started: list[Helper] = []
    real_init = Helper.__init__

    def init(self: Helper) -> None:
        real_init(self)
        started.append(self)

    monkeypatch.setattr(Helper, "__init__", init)
    monkeypatch.setattr(local_store, "HELPER_AFTER", 0)
    # A child that takes a while to start (as one does, importing, on a busy machine).
    monkeypatch.setattr(helper_module, "_CHILD", "import time; time.sleep(2)\n" +
                        helper_module._CHILD)
    _tree(tmp_path / "src")
    (count, _), failures = _copy(tmp_path / "src", tmp_path / "dst")
    assert count == 61 and [f[0] for f in failures] == ["d1/recorded-wrong.bin"]
    assert len(started) == 1 and not started[0].ready
    assert started[0]._next == 0  # nothing was sent to it (nothing waited for it)
    # Nor did the copy's end wait for its start-up: killed, as it had nothing to do.
    assert started[0]._proc.returncode == -signal.SIGKILL


def test_the_helper_child_copies_in_two_threads() -> None:
    """The child's copies overlap (its files' system calls release the interpreter lock):
    the first file's copy waits until the second's has run, which one thread never lets
    happen (it timed out, and the child was the critical path of a local copy)."""
    import pickle
    import threading

    from lakeshift.stores.local import helper

    second_done = threading.Event()
    overlapped: list[bool] = []

    def copy(name: str) -> bytes:
        if name == "first":
            overlapped.append(second_done.wait(5))
        else:
            second_done.set()
        return name.encode()

    to_child, child_in = os.pipe()
    child_out, from_child = os.pipe()
    serving = threading.Thread(target=helper._serve,
                               args=(to_child, from_child, copy, helper.THREADS))
    serving.start()
    batch = pickle.dumps([(0, ("first",)), (1, ("second",))])
    os.write(child_in, len(batch).to_bytes(helper._HEAD, "big") + batch)
    os.close(child_in)
    serving.join(30)
    assert not serving.is_alive()
    os.close(from_child)
    with os.fdopen(child_out, "rb") as f:
        raw = f.read()
    answers = []
    while raw:
        n = int.from_bytes(raw[:helper._HEAD], "big")
        answers += pickle.loads(raw[helper._HEAD:helper._HEAD + n])
        raw = raw[helper._HEAD + n:]
    os.close(to_child)
    assert sorted(answers) == [(0, True, b"first"), (1, True, b"second")]
    assert overlapped == [True]
    assert helper.THREADS == 2
