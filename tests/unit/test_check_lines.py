"""``engine/check.check_pair`` says each line as the user reads it (the API passes them on
untouched): a local side needs no credentials, and the object read and the probe written
are named by their whole place, not by a bare key.  (The API used to rewrite the engine's
text, matching its words.)"""

from __future__ import annotations

import asyncio
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
