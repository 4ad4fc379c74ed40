"""The --proof-log writer (engine/proof_log.py): rows as objects finish, appended, keys
mapped as the copy maps them, and clear refusals."""

from __future__ import annotations

import asyncio
import csv
import os
import re
from pathlib import Path

import pytest

from lakeshift.engine.events import ObjectDone, Renamed
from lakeshift.engine.proof_log import FIELDS, ProofLog, destination_keys
from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo
from lakeshift.plan.source import resolve_source
from lakeshift.urls import parse_url


class KeysStore:
    """What resolve_source asks of a store, over a set of keys (Store.is_folder's contract:
    some key starts with ``path + '/'``)."""

    def __init__(self, path: str, keys: list[str]) -> None:
        self.url = parse_url(f"s3://bkt/{path}")
        self.keys = keys

    async def is_folder(self, path: str) -> bool:
        return any(k.startswith(path.rstrip("/") + "/") for k in self.keys)

    async def exists(self, key: str) -> ObjectInfo | None:
        return ObjectInfo(key, 1) if key in self.keys else None


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_a_row_per_copied_object_flushed_as_it_finishes(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log = ProofLog.open(path, destination_keys("raw/", "landing/"))
    log(ObjectDone("raw/a.csv", 10, "copied", proof="source-md5"))
    # On disk before the log is closed (a killed run keeps it).
    assert [r[1:] for r in _rows(path)[1:]] == [
        ["raw/a.csv", "landing/a.csv", "10", "source-md5", "1"]]
    log(ObjectDone("raw/b.csv", 5, "skipped", reason="identical"))
    log(ObjectDone("raw/c.csv", 5, "failed", "missing", "gone"))
    log(Renamed("raw/d\\e", "landing/d%5Ce", "backslash"))
    log(ObjectDone("raw/d\\e", 7, "copied", attempts=2, proof="multipart-etag"))
    log(ObjectDone("raw/dir/", 0, "copied"))
    log.close()
    rows = _rows(path)
    assert tuple(rows[0]) == FIELDS
    assert [r[1:] for r in rows[1:]] == [
        ["raw/a.csv", "landing/a.csv", "10", "source-md5", "1"],
        ["raw/d\\e", "landing/d%5Ce", "7", "multipart-etag", "2"],
        ["raw/dir/", "landing/dir", "0", "folder", "1"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r[0]) for r in rows[1:])
    assert log._renamed == {}  # nothing held once the object is done


def test_rows_are_appended_under_one_header(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    for key in ("a", "b"):
        log = ProofLog.open(path, destination_keys("", "d/"))
        log(ObjectDone(key, 1, "copied", proof="read-md5"))
        log.close()
    rows = _rows(path)
    assert tuple(rows[0]) == FIELDS and [r[1:3] for r in rows[1:]] == [["a", "d/a"],
                                                                       ["b", "d/b"]]


def test_refusals_are_one_usage_error_and_touch_nothing(tmp_path: Path) -> None:
    other = tmp_path / "notes.csv"
    other.write_text("name,size\nx,1\n")
    with pytest.raises(UsageError, match="not a lakeshift proof log"):
        ProofLog.open(other, destination_keys("", ""))
    assert other.read_text() == "name,size\nx,1\n"
    with pytest.raises(UsageError, match="is a folder"):
        ProofLog.open(tmp_path, destination_keys("", ""))
    with pytest.raises(UsageError, match="cannot write the --proof-log"):
        ProofLog.open(tmp_path / "no" / "such" / "log.csv", destination_keys("", ""))
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(UsageError, match="Permission denied"):
            ProofLog.open(ro / "log.csv", destination_keys("", ""))


def test_a_failed_write_stops_the_copy_with_a_usage_error(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    log = ProofLog(open("/dev/full", "w", newline=""), Path("/dev/full"),  # noqa: SIM115
                   destination_keys("", ""), created=False)
    with pytest.raises(UsageError, match=r"No space left on device.*after 0 logged"):
        log(ObjectDone("a", 1, "copied", proof="source-md5"))
    log.close()


def test_a_log_created_for_a_copy_that_never_began_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    ProofLog.open(path, destination_keys("", "")).close(discard=True)
    assert not path.exists()
    log = ProofLog.open(path, destination_keys("", ""))
    log(ObjectDone("a", 1, "copied", proof="source-md5"))
    log.close(discard=True)  # it holds a row: kept
    assert len(_rows(path)) == 2


@pytest.mark.parametrize(("path", "keys"), [
    ("", ["a", "x/b"]),                                # the whole bucket
    ("raw/", ["raw/a", "raw/x/b"]),                    # a folder, spelled as one
    ("raw", ["raw/a", "raw/x/b"]),                     # a folder, not spelled as one
    ("raw/x/b", ["raw/x/b"]),                          # one object
    ("logs/2024-0", ["logs/2024-01/a", "logs/2024-02.csv"]),  # a string prefix
])
def test_destination_keys_follow_the_copys_own_rule(path: str, keys: list[str]) -> None:
    """As plan.source.resolve_source names them (destination root + key − source root)."""
    spec = asyncio.run(resolve_source(KeysStore(path, keys)))  # type: ignore[arg-type]
    mapped = destination_keys(path, "dst/")
    assert [mapped(k) for k in keys] == ["dst/" + spec.rel(k) for k in keys]


def test_an_empty_file_that_was_there_gets_the_header_and_is_never_removed(
        tmp_path: Path) -> None:
    """``touch log.csv`` first (or /dev/null, /dev/stdout: empty too): the header goes in,
    and a copy that stops before its first row leaves the file where it was."""
    path = tmp_path / "log.csv"
    path.touch()
    ProofLog.open(path, destination_keys("", "")).close(discard=True)
    assert path.exists() and tuple(_rows(path)[0]) == FIELDS
    log = ProofLog.open(path, destination_keys("", ""))  # now a log: appended, no 2nd header
    log(ObjectDone("a", 1, "copied", proof="source-md5"))
    log.close()
    assert len(_rows(path)) == 2


def test_keys_a_spreadsheet_would_evaluate_are_written_as_text(tmp_path: Path) -> None:
    """As in the failures CSV: a key starting = + - @ ' gets one leading apostrophe
    (one taken off gives the key back), so opening the log never runs a formula."""
    path = tmp_path / "log.csv"
    log = ProofLog.open(path, destination_keys("", ""))
    for key in ("=SUM(1+1).csv", "@x", "'quoted", "plain=1"):
        log(ObjectDone(key, 1, "copied", proof="source-md5"))
    log.close()
    assert [r[1:3] for r in _rows(path)[1:]] == [
        ["'=SUM(1+1).csv", "'=SUM(1+1).csv"], ["'@x", "'@x"], ["''quoted", "''quoted"],
        ["plain=1", "plain=1"]]


def test_check_refuses_what_open_refuses_and_changes_nothing(tmp_path: Path) -> None:
    """A dry run checks --proof-log as a run would, creating and changing nothing."""
    ProofLog.check(tmp_path / "new.csv")
    assert not (tmp_path / "new.csv").exists()
    with pytest.raises(UsageError, match="is a folder: name a file in it"):
        ProofLog.check(tmp_path)
    with pytest.raises(UsageError, match=re.escape(
            f"No such file or directory: create the folder {tmp_path / 'nodir'} first")):
        ProofLog.check(tmp_path / "nodir" / "x.csv")
    with pytest.raises(UsageError, match="needs a file name"):
        ProofLog.check("")
    other = tmp_path / "notes.txt"
    other.write_text("my notes\n")
    with pytest.raises(UsageError, match="is not a lakeshift proof log"):
        ProofLog.check(other)
    assert other.read_text() == "my notes\n"
    log = tmp_path / "log.csv"
    ProofLog.open(log, destination_keys("", "")).close()
    before = log.read_bytes()
    ProofLog.check(log)
    assert log.read_bytes() == before


def test_a_dry_run_checks_the_proof_log_path(tmp_path: Path) -> None:
    import lakeshift

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"x")
    with pytest.raises(UsageError, match="is a folder"):
        lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "dst"), dry_run=True,
                       proof_log=tmp_path)
    lakeshift.copy(str(tmp_path / "src"), str(tmp_path / "dst"), dry_run=True,
                   proof_log=tmp_path / "log.csv")
    assert not (tmp_path / "log.csv").exists()
