"""The failure log as CSV: cells a spreadsheet would evaluate are neutralised, and
`failures --csv-file` writes it (`--csv` remains) (issue 10)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

import lakeshift
from lakeshift.api import write_failures_csv
from lakeshift.cli.app import app


def _failure(key: str, message: str) -> lakeshift.Failure:
    return lakeshift.Failure(object_key=key, error_kind="forbidden", message=message,
                             attempts=-1, skipped=False, at=datetime(2026, 1, 2, tzinfo=UTC),
                             partition_id=1, run_id=2)


def test_cells_that_would_start_a_formula_get_an_apostrophe() -> None:
    fh = io.StringIO()
    keys = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tcmd", "\rcmd", "a=b",
            "plain.csv"]
    n = write_failures_csv([_failure(k, k) for k in keys], fh)
    assert n == len(keys)
    rows = list(csv.DictReader(io.StringIO(fh.getvalue())))
    got = [(r["object_key"], r["message"]) for r in rows]
    want = ["'" + k if k[0] in "=+-@\t\r" else k for k in keys]
    assert got == list(zip(want, want, strict=True))
    assert rows[0]["attempts"] == "-1"  # numbers are not text: left as they are
    assert rows[0]["at"] == "2026-01-02T00:00:00+00:00"


def test_failures_writes_its_csv_with_csv_file_and_with_the_older_csv(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    db = f"sqlite:///{tmp_path}/c.db"
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="j", db=db)
    for flag in ("--csv-file", "--csv"):
        out = tmp_path / "new" / f"{flag.strip('-')}.csv"  # its folder is made, as verify's
        r = CliRunner().invoke(app, ["failures", "--job", "j", "--db", db, flag, str(out)])
        assert r.exit_code == 0, r.output
        assert out.read_text().splitlines() == [
            "object_key,error_kind,message,attempts,skipped,at,partition_id,run_id"]


def test_the_csv_read_back_by_files_from_gives_every_key_exactly(tmp_path: Path) -> None:
    from lakeshift.plan.changes import FilesFrom, read_files_from

    keys = ["=HYPERLINK(\"x\")", "'=x", "''", "'plain", "-2", " lead and trail ", "a/b.txt",
            "/rooted", "\tcmd", "cr\rmid", "crlf\r\nmid", "\rcr", "line\nbreak", "a,b",
            'q"uote']
    out = tmp_path / "failed.txt"  # recognised by its header, whatever its name
    with open(out, "w", newline="", encoding="utf-8") as fh:
        write_failures_csv([_failure(k, "m") for k in [*keys, "a/b.txt"]], fh)
    got = read_files_from(out)
    assert got.source_keys and got.keys == tuple(sorted(keys))
    # Any other file keeps its meaning: keys relative to the source root.
    (tmp_path / "keys.txt").write_text("/a/b\nc\n")
    assert read_files_from(tmp_path / "keys.txt") == FilesFrom(("a/b", "c"), False)
    (tmp_path / "crlf.txt").write_bytes(b"a/b\r\nc\r\n")  # line ends of any kind
    assert read_files_from(tmp_path / "crlf.txt") == FilesFrom(("a/b", "c"), False)
