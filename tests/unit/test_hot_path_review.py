"""Adversarial checks of session 15's hot-path cuts (review R1): the pool's hand-off
(drive), the buffer slots and the limiter taken inline, the metadata values' fast test and
the signer's one-header path, each against what it replaced or against botocore."""

from __future__ import annotations

import pytest

from lakeshift.stores import props


def _old_safe(v: str) -> bool:
    """The test encode_metadata_value means (a header value sent as it is): printable
    ASCII and tabs only -- to the very end, a final newline included --, no space or tab
    at either end, not looking encoded."""
    return all(" " <= c <= "~" or c == "\t" for c in v) and v == v.strip(" \t") and \
        not v.lower().startswith("=?utf-8?b?")


def test_a_metadata_value_ending_in_a_newline_is_encoded_not_sent_as_it_is() -> None:
    """``$`` matches before a final newline: "v\\n" passed the header-safe test and was sent
    raw, and the request head refuses a line break in a value (ValueError: the object's
    copy failed).  Every value with a line break anywhere is encoded and decodes back."""
    for v in ("abc\n", "\n", "etag\n", "a b\n", "x\r", "\r\n", "a\nb", "\n\n"):
        for size in (0, 5):
            got = props.encode_metadata({"k": v}, size)["k"]
            assert "\n" not in got and "\r" not in got, (v, got)
            assert props.decode_metadata_value(got) == v
        assert props.encode_metadata_value(v) != v
    # (What the Azure client then sends: a head the pool builds, not a ValueError.)
    from lakeshift.stores import wire

    meta = props.encode_metadata({"lakeshift_src_etag": "e\n"}, 5)
    head = wire.Pool("http://127.0.0.1:10000").request_head(
        "PUT", "/c/k", [(f"x-ms-meta-{k}", v) for k, v in meta.items()], True, 5)
    assert b"x-ms-meta-lakeshift_src_etag: =?utf-8?b?ZQo=?=\r\n" in head


def test_metadata_values_are_sent_as_they_are_exactly_when_header_safe() -> None:
    """encode_metadata's fast test and encode_metadata_value's regular expression against
    the rule itself, over every code point below U+3100 and the awkward ones above, alone
    and with printable text, spaces, tabs, newlines and "=?" around them."""
    singles = [chr(c) for c in range(0x3100)] + ["\u3000", "\ufeff", "\U0001f600",
                                                  "\udc80", "\u2028", "\u0085"]
    values = singles + [f"a{c}" for c in singles[:0x180]] + [f"{c}a" for c in singles[:0x180]]
    values += ["", " ", "\t", "a ", " a", "a\t", "\ta", "a  b", "a\tb", "=?", "=?x",
               "=?utf-8?b?", "=?UTF-8?B?eA==?=", "x=?utf-8?b?", "=", "?=", "a\n", "a\r\n"]
    for v in values:
        want = v if _old_safe(v) else \
            "=?utf-8?b?" + __import__("base64").b64encode(v.encode("utf-8", "surrogatepass"))\
            .decode() + "?="
        if v == "\udc80":  # (a lone surrogate cannot be UTF-8: both refuse it alike)
            with pytest.raises(UnicodeEncodeError):
                props.encode_metadata({"k": v}, 1)
            continue
        assert props.encode_metadata_value(v) == want, repr(v)
        assert props.encode_metadata({"k": v}, 1) == {"k": want}, repr(v)
