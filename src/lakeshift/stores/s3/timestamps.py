"""A fast timestamp parser for botocore's S3 responses.

botocore parses every ``LastModified`` of a ListObjectsV2 page with dateutil's general
parser (``botocore.utils.parse_timestamp``): measured, half the listing's client CPU.  S3
sends two forms only -- ISO 8601 in XML bodies (``2026-12-01T14:05:33.000Z``) and RFC 1123
in headers (``Tue, 01 Dec 2026 14:05:33 GMT``); those are parsed here into the very value
botocore gives, anything else goes to botocore's parser.  "The very value" includes the
tzinfo: dateutil gives ``tzutc()`` for GMT (botocore maps it) and for ``Z`` too, except
where the local zone is itself named UTC (``time.tzname``: most servers), where it gives
``tzlocal()``.
``tests/unit/test_s3_timestamps.py`` compares the two on S3's, moto's and odd forms.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, tzinfo
from typing import Any

from botocore.compat import tzlocal  # dateutil's, as botocore imports them
from botocore.utils import parse_timestamp as botocore_parse
from botocore.utils import tzutc

_UTC: tzinfo = tzutc()
_LOCAL: dict[tuple[str, ...], tzinfo] = {}
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z\Z")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_HTTP = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (" + "|".join(_MONTHS) +
                   r") (\d{4}) (\d\d):(\d\d):(\d\d) GMT\Z")


def parse_timestamp(value: Any) -> datetime:
    """What ``botocore.utils.parse_timestamp(value)`` returns, without dateutil's parser
    for S3's two forms."""
    if isinstance(value, str):
        m = _ISO.match(value)
        try:
            if m:
                zone = _zulu()
                if zone is not None:
                    y, mo, d, h, mi, s, frac = m.groups()
                    return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                                    int(frac.ljust(6, "0")) if frac else 0, tzinfo=zone)
            m = _HTTP.match(value)
            if m:
                d, mon, y, h, mi, s = m.groups()
                return datetime(int(y), _MONTHS[mon], int(d), int(h), int(mi), int(s),
                                tzinfo=_UTC)
        except ValueError:
            pass  # out of range (month 13, second 60...): botocore's parser decides
    result: datetime = botocore_parse(value)
    return result


def _zulu() -> tzinfo | None:
    """The tzinfo dateutil gives a ``Z`` time: ``tzlocal()`` when both local zone names
    are UTC, ``tzutc()`` when neither is, None (ask dateutil) for a mixed pair."""
    names = tuple(time.tzname)
    if "UTC" not in names:
        return _UTC
    if names != ("UTC", "UTC"):
        return None
    zone: tzinfo | None = _LOCAL.get(names)
    if zone is None:
        _LOCAL.clear()
        _LOCAL[names] = zone = tzlocal()
    return zone


def install(session: Any) -> None:
    """Make ``session``'s clients created from now on parse timestamps with
    ``parse_timestamp`` (botocore reads the parser defaults when it creates a client)."""
    session.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_timestamp)
