"""stores/s3/timestamps.py against botocore's parse_timestamp (a differential test): S3's
and moto's forms, and odd ones, give the same value, the same offset and the same tzinfo
class -- or the same exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.utils import parse_timestamp as botocore_parse

from lakeshift.stores.s3.timestamps import parse_timestamp


def _spread() -> list[str]:
    """ISO 8601 with 0, 3 and 6 fractional digits and RFC 1123, over leap days, month and
    year ends, the epoch's neighbourhood and far dates."""
    out = []
    base = datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    for i in range(0, 60_000, 997):
        when = base + timedelta(days=i * 1.37, microseconds=i * 7919)
        out.append(when.strftime("%Y-%m-%dT%H:%M:%SZ"))
        out.append(when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")  # moto, S3
        out.append(when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        out.append(when.strftime("%a, %d %b %Y %H:%M:%S GMT"))  # headers
    return out


ODD = [
    "2026-12-01T14:05:33.5Z", "2026-12-01T14:05:33.1234567Z", "2026-12-01T14:05:33.Z",
    "2026-12-01T14:05:33+00:00", "2026-12-01T14:05:33.000+02:00", "2026-12-01 14:05:33",
    "2026-12-01T14:05:33z", "2024-02-29T00:00:00Z", "2026-02-29T00:00:00.000Z",
    "2026-13-01T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T23:59:60Z",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", " 2026-12-01T14:05:33Z",
    "2026-12-01T14:05:33Z ", "Mon, 01 Dec 2026 14:05:33 GMT", "Tue, 1 Dec 2026 14:05:33 GMT",
    "Tue, 01 Dec 2026 14:05:33 UTC", "Tue, 01 Dec 2026 14:05:33 +0000",
    "Tuesday, 01-Dec-26 14:05:33 GMT", "Tue Dec  1 14:05:33 2026", "Thu, 29 Feb 2026 00:00:00 GMT",
    "Tue, 01 Sept 2026 14:05:33 GMT", "1764597933", "1764597933.25", "0", "", "not a date",
    "2026-12-01T14:05:33.000Z\n",
]


def _outcome(parse: Any, value: Any) -> Any:
    try:
        got = parse(value)
    except Exception as e:
        return ("raised", type(e))
    return (got, got.utcoffset(), type(got.tzinfo))


@pytest.mark.parametrize("value", _spread() + ODD + [1764597933, 1764597933.5])
def test_same_as_botocore(value: Any) -> None:
    assert _outcome(parse_timestamp, value) == _outcome(botocore_parse, value)


def test_the_fast_forms_do_not_reach_dateutil(monkeypatch: pytest.MonkeyPatch) -> None:
    import dateutil.parser

    monkeypatch.setattr(dateutil.parser, "parse", lambda *a, **k: 1 / 0)
    assert parse_timestamp("2026-12-01T14:05:33.250Z").microsecond == 250000
    assert parse_timestamp("Tue, 01 Dec 2026 14:05:33 GMT").day == 1
    with pytest.raises(ZeroDivisionError):  # anything else still goes to botocore's parser
        parse_timestamp("2026-12-01T14:05:33+00:00")
