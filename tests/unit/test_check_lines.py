"""``engine/check.check_pair`` says each line as the user reads it (the API passes them on
untouched): a local side needs no credentials, and the object read and the probe written
are named by their whole place, not by a bare key.  (The API used to rewrite the engine's
text, matching its words.)"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from lakeshift.engine.check import _place, check_pair
from lakeshift.plan.source import destination_config, source_config
from lakeshift.urls import parse_url


def test_local_lines_are_final_in_the_engine(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_bytes(b"hello")
    dst.mkdir()
    lines = asyncio.run(check_pair(source_config(str(src)), destination_config(str(dst))))
    said = {(ln.side, ln.step): ln.detail for ln in lines}
    assert all(ln.ok for ln in lines), lines
    for side, root in (("source", src), ("destination", dst)):
        assert said[(side, "credentials")] == (
            f"none needed for a local folder ({root}); what this user may read and write is "
            "tried next")
    assert said[("source", "read")] == f"read 5 bytes of {src / 'sub' / 'a.txt'}"
    assert re.fullmatch(rf"wrote and deleted {re.escape(str(dst))}/\.lakeshift-check-\w+",
                        said[("destination", "write and delete")])


def test_a_cloud_place_is_its_url() -> None:
    assert _place(parse_url("az://lake/dst/"), "dst/.lakeshift-check-1") == \
        "az://lake/dst/.lakeshift-check-1"
    assert _place(parse_url("s3://lake/raw/"), "raw/a.txt") == "s3://lake/raw/a.txt"


def _read_line(src: Path, dst: Path) -> tuple[bool, str]:
    lines = asyncio.run(check_pair(source_config(str(src)), destination_config(str(dst))))
    line = next(ln for ln in lines if (ln.side, ln.step) == ("source", "read"))
    return line.ok, line.detail


def test_the_source_read_passes_over_entries_that_are_not_files(tmp_path: Path) -> None:
    """A dangling link listed first was "read 0 bytes of …/a-dangling", ok, while the copy
    failed it: the read now passes over links to nothing and FIFOs to a file it reads, and
    says so; with no file at all it fails as the copy would (or is ok when the copy always
    skips what is there)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "a-dangling").symlink_to("/nonexistent/x")
    os.mkfifo(src / "b-fifo")
    ok, said = _read_line(src, dst)
    assert not ok
    assert said.startswith(f"no file to read (2 entries tried): {src / 'a-dangling'}: ")
    assert said.endswith("(the copy fails it; --skip-errors dangling-link skips it)")
    (src / "c.txt").write_bytes(b"hey")
    assert _read_line(src, dst) == (True, f"read 3 bytes of {src / 'c.txt'} (passed over 2 "
                                    "entries that are not files: dangling-link, not-a-file)")
    (src / "a-dangling").unlink()
    (src / "c.txt").unlink()
    assert _read_line(src, dst) == (True, "nothing to read: the copy skips all 1 entry "
                                    "listed (1 entry that is not a file: not-a-file)")
