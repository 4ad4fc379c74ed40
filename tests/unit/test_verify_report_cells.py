"""verify's CSVs (the differences' report, --list-verified's) hold keys a spreadsheet would
evaluate as text, as the failures CSV does (csv_cells.csv_cell)."""

from __future__ import annotations

import asyncio
import csv
import io

from lakeshift.engine.verify import Report, VerifiedReport
from lakeshift.model import ObjectInfo


def test_both_reports_write_formula_keys_as_text() -> None:
    diff_fh, ok_fh = io.StringIO(), io.StringIO()

    async def write() -> None:
        diff, ok = Report(diff_fh), VerifiedReport(ok_fh)
        s, d = ObjectInfo("=SUM(1+1).csv", 3), ObjectInfo("@x", 3)
        await diff.row("=SUM(1+1).csv", "missing", s, None, None, None, "-gone")
        await ok.verified("+1", s, d, "source-md5", "ab", "ab")
        await diff.close()
        await ok.close()

    asyncio.run(write())
    diff_rows = list(csv.DictReader(io.StringIO(diff_fh.getvalue())))
    ok_rows = list(csv.DictReader(io.StringIO(ok_fh.getvalue())))
    assert (diff_rows[0]["name"], diff_rows[0]["source_key"], diff_rows[0]["detail"]) == (
        "'=SUM(1+1).csv", "'=SUM(1+1).csv", "'-gone")
    assert (ok_rows[0]["name"], ok_rows[0]["source_key"], ok_rows[0]["destination_key"],
            ok_rows[0]["size"]) == ("'+1", "'=SUM(1+1).csv", "'@x", "3")
