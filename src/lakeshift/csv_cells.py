"""CSV cells safe to open in a spreadsheet (OWASP "CSV injection"), for every CSV lakeshift
writes that holds object keys or messages: ``failures``, verify's reports, the proof log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: What a spreadsheet reads as the start of a formula, and the apostrophe itself, so that
#: taking one leading apostrophe off gives the text back (``--files-from`` reads a failures
#: CSV so: plan/changes.py).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: text that would start a formula (an object key
    or an error message beginning with = + - @, a tab or a carriage return) gets a leading
    apostrophe, so it is shown as text and never evaluated (text beginning with an
    apostrophe gets one more: one taken off is the text as it was); times are ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
