"""The record of a file written whole is made without an fstat once the folder has shown
it keeps the times given exactly; the same bytes as the fstat's record, and where a file
system keeps coarser times, made from the fstat every time."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from lakeshift.stores.local import reads as local_reads
from lakeshift.stores.local import walk as local_walk
from lakeshift.stores.local import writes as local_writes

pytestmark = pytest.mark.skipif(not hasattr(os, "setxattr"), reason="extended attributes")


def _xattrs_work(path: Path) -> bool:
    probe = path / ".probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.lakeshift-probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def _copies(src: Path, dst: Path, n: int, monkeypatch: pytest.MonkeyPatch,
            utime: Any = None) -> int:
    """``n`` files copied from ``src`` to ``dst`` by ``_copy_file``; fstat calls made."""
    calls = [0]
    real = os.fstat

    def fstat(fd: int) -> os.stat_result:
        calls[0] += 1
        return real(fd)

    monkeypatch.setattr(os, "fstat", fstat)
    if utime is not None:
        monkeypatch.setattr(os, "utime", utime)
    for i in range(n):
        path = src / f"f{i}"
        st = os.stat(path)
        etag = local_walk.local_etag(st)
        local_reads._copy_file(str(path), etag, str(dst / "d" / f"f{i}"), f"f{i}",
                               st.st_size, None, etag, 1_700_000_000_123_456_789 + i)
    monkeypatch.undo()
    return calls[0]


def _source(tmp_path: Path, n: int) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(n):
        (src / f"f{i}").write_bytes(b"x" * i)
    return src


def test_records_need_one_fstat_per_folder_and_are_the_fstat_s(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _xattrs_work(tmp_path):
        pytest.skip("no user extended attributes here")
    monkeypatch.setattr(local_writes, "_exact_in", "\0")
    src = _source(tmp_path, 40)
    fstats = _copies(src, tmp_path / "dst", 40, monkeypatch)
    # One per file read (its size and time checked) and one for the first write only.
    assert fstats == 40 + 1
    for i in range(40):
        path = tmp_path / "dst" / "d" / f"f{i}"
        st = os.stat(path)
        etag = local_walk.local_etag(os.stat(src / f"f{i}"))
        # The same bytes as a record made from the fstat.
        assert os.getxattr(path, "user.lakeshift") == local_writes._record_value(
            st.st_mtime_ns, st.st_size, hashlib.md5(b"x" * i).digest(), etag)
        assert st.st_mtime_ns == 1_700_000_000_123_456_789 + i


def test_a_file_system_with_coarse_times_gets_records_from_the_fstat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not _xattrs_work(tmp_path):
        pytest.skip("no user extended attributes here")
    monkeypatch.setattr(local_writes, "_exact_in", "\0")
    src = _source(tmp_path, 20)
    real_utime = os.utime

    def seconds_only(fd: int, ns: tuple[int, int]) -> None:  # as FAT or a 128-byte inode
        real_utime(fd, ns=tuple(t // 10**9 * 10**9 for t in ns))

    fstats = _copies(src, tmp_path / "dst", 20, monkeypatch, seconds_only)
    assert fstats == 20 + 20
    for i in range(20):
        path = tmp_path / "dst" / "d" / f"f{i}"
        record = local_writes._read_record(os.getxattr(path, "user.lakeshift"),
                                           os.stat(path))
        assert record is not None and record[0] == hashlib.md5(b"x" * i).digest()


def _old_info(key: str, st: os.stat_result, path: str) -> Any:
    """``_info`` as it was: getxattr asked for every file."""
    md5, meta = None, {}
    try:
        record = local_writes._read_record(os.getxattr(path, "user.lakeshift"), st)
    except OSError:
        record = None
    if record is not None:
        md5 = record[0]
        if record[1] is not None:
            meta["lakeshift_src_etag"] = record[1]
    return local_walk.ObjectInfo(key, st.st_size, local_walk._mtime(st),
                                 local_walk.local_etag(st), md5, False, meta)


def test_the_listing_asks_listxattr_after_a_file_without_record_and_says_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    if not _xattrs_work(tmp_path):
        pytest.skip("no user extended attributes here")
    rng = random.Random(5)
    paths = []
    for i in range(200):
        path = tmp_path / f"f{i:03d}"
        path.write_bytes(b"y" * (i % 7))
        kind = rng.choice(["none", "none", "record", "stale", "foreign", "both"])
        st = os.stat(path)
        if kind in ("record", "both"):
            os.setxattr(path, "user.lakeshift", local_writes._record_value(
                st.st_mtime_ns, st.st_size, bytes(16), "abc" if i % 2 else None))
        if kind == "stale":
            os.setxattr(path, "user.lakeshift", local_writes._record_value(
                st.st_mtime_ns + 1, st.st_size, bytes(16), None))
        if kind in ("foreign", "both"):
            os.setxattr(path, "user.other", b"1")
        paths.append(path)
    for start in (True, False):
        monkeypatch.setattr(local_walk, "_record_seen", start)
        for path in paths:
            st = os.stat(path)
            assert local_walk._info(path.name, st, str(path)) == \
                _old_info(path.name, st, str(path)), path

    # A source with no records: no getxattr raised for it (one at most, the first).
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for i in range(100):
        (fresh / f"g{i}").write_bytes(b"z")
    asked = [0]
    real = os.getxattr

    def getxattr(*args: Any, **kwargs: Any) -> bytes:
        asked[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(os, "getxattr", getxattr)
    infos = list(local_walk._walk(str(fresh), "", "", None))
    monkeypatch.undo()
    assert len(infos) == 100 and all(i.md5 is None for i in infos)
    assert asked[0] <= 1


def test_a_small_copy_in_the_helper_is_a_few_python_calls(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``_copy_file`` of a 64 B file (what the helper process does per file) makes a
    handful of Python calls: no os.path.dirname for a file in the folder of the one before,
    no helper for the write or the record (counted, not timed)."""
    from tests.pycalls import python_calls

    monkeypatch.setattr(local_writes, "_exact_in", "\0")
    (tmp_path / "s").mkdir()
    for i in range(3):
        (tmp_path / "s" / f"f{i}").write_bytes(bytes(64))

    def args(i: int) -> tuple[Any, ...]:
        path = tmp_path / "s" / f"f{i}"
        etag = local_walk.local_etag(os.stat(path))
        return (str(path), etag, str(tmp_path / "t" / f"f{i}"), f"f{i}", 64, None, etag,
                1_700_000_000_123_456_000)

    local_reads._copy_file(*args(0))  # makes the folder; its record made from an fstat
    one = args(1)
    calls = python_calls(lambda: local_reads._copy_file(*one))
    assert (tmp_path / "t" / "f1").read_bytes() == bytes(64)
    # The lambda, _copy_file, _read_file, local_etag, _read_span, _write_file, _create,
    # _open_tmp, _finish, _record_value, _link_in (16 before: os.path.dirname and its
    # _get_sep, _proc_folder, _write_all, _set_record).
    assert calls <= 11, calls


def test_files_land_in_their_folders_whatever_folder_came_before(tmp_path: Path) -> None:
    """The folder of the file before is taken without os.path.dirname only when the path
    is that folder, "/" and a name: a sibling folder sharing its prefix, a subfolder, or a
    path with "//" goes the long way (and lands where it should)."""
    base = str(tmp_path)
    finals = [f"{base}/d/a", f"{base}/d/b", f"{base}/d2/c", f"{base}/d/e", f"{base}/d/sub/f",
              f"{base}/d/g", f"{base}/dx", f"{base}/d//h", f"{base}/d/i", f"{base}/d/sub/j",
              f"{base}/d/sub//k", f"{base}/e/l/m", f"{base}/e/n"]
    for n, final in enumerate(finals):
        data = f"{n}".encode()
        local_writes._write_file(final, data, hashlib.md5(data).digest(), None, None)
    for n, final in enumerate(finals):
        assert Path(os.path.normpath(final)).read_bytes() == f"{n}".encode(), final
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "a", "b", "e", "g", "h", "i", "sub"]


def _copy_with_times(src: Path, dst: Path, times: list[int]) -> None:
    for i, mtime_ns in enumerate(times):
        path = src / f"f{i}"
        st = os.stat(path)
        etag = local_walk.local_etag(st)
        local_reads._copy_file(str(path), etag, str(dst / "d" / f"f{i}"), f"f{i}",
                               st.st_size, None, etag, mtime_ns)


def _records_valid(src: Path, dst: Path, n: int) -> list[int]:
    """The files whose record is stale as soon as written (a rerun copies them again)."""
    stale = []
    for i in range(n):
        path = dst / "d" / f"f{i}"
        record = local_writes._read_record(os.getxattr(path, "user.lakeshift"),
                                           os.stat(path))
        if record is None or record[0] != hashlib.md5(b"x" * i).digest():
            stale.append(i)
    return stale


def test_a_whole_second_time_first_does_not_make_a_coarse_folder_exact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system with 1 s times, a first file whose time is a whole second reads
    it back exactly; the folder is not exact for all that (a source with whole-second
    times beside finer ones: tar, S3 sources on FAT's even seconds)."""
    if not _xattrs_work(tmp_path):
        pytest.skip("no user extended attributes here")
    monkeypatch.setattr(local_writes, "_exact_in", "\0")
    src = _source(tmp_path, 10)
    real_utime = os.utime

    def seconds_only(fd: int, ns: tuple[int, int]) -> None:
        real_utime(fd, ns=tuple(t // 10**9 * 10**9 for t in ns))

    monkeypatch.setattr(os, "utime", seconds_only)
    times = [1_700_000_000_000_000_000] + [1_700_000_000_123_456_000 + i * 10**9
                                           for i in range(1, 10)]
    _copy_with_times(src, tmp_path / "dst", times)
    monkeypatch.undo()
    assert _records_valid(src, tmp_path / "dst", 10) == []


def test_a_time_beyond_2038_gets_its_record_from_the_fstat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system may clamp times out of its range (XFS without bigtime: 2038-01-19;
    ext4: 2446): the record is the time the file has, not the one given."""
    if not _xattrs_work(tmp_path):
        pytest.skip("no user extended attributes here")
    monkeypatch.setattr(local_writes, "_exact_in", "\0")
    src = _source(tmp_path, 3)
    real_utime = os.utime
    top = (2**31 - 1) * 10**9

    def clamped(fd: int, ns: tuple[int, int]) -> None:
        real_utime(fd, ns=tuple(min(t, top) for t in ns))

    monkeypatch.setattr(os, "utime", clamped)
    _copy_with_times(src, tmp_path / "dst", [1_700_000_000_123_456_000,
                                             1_700_000_001_123_456_000,
                                             2_500_000_000_123_456_000])
    monkeypatch.undo()
    assert _records_valid(src, tmp_path / "dst", 3) == []
