from __future__ import annotations

import pytest

from lakeshift.model import ObjectInfo
from lakeshift.plan.compare import identical, needs_copy
from lakeshift.plan.filters import NameFilter
from lakeshift.stores.props import decode_metadata_name, encode_metadata_name


@pytest.mark.parametrize("name", ["my-key", "a.b", "ok_name", "1st", "_1a", "a_x2D_b", "päť",
                                  "x", "with space"])
def test_metadata_names_encode_to_identifiers_and_back(name: str) -> None:
    enc = encode_metadata_name(name)
    assert enc.replace("_", "a").isalnum() and not enc[0].isdigit()
    assert decode_metadata_name(enc) == name


def test_valid_identifiers_are_kept() -> None:
    assert encode_metadata_name("owner_team") == "owner_team"


@pytest.mark.parametrize("inc,exc,rel,taken", [
    ((), (), "a/b.csv", True),
    (("*.csv",), (), "deep/dir/b.csv", True),
    (("*.csv",), (), "deep/dir/b.json", False),
    (("logs/*.csv",), (), "logs/x/b.csv", False),
    (("logs/**/*.csv",), (), "logs/x/y/b.csv", True),
    (("logs/**",), (), "logs/x/y/b.csv", True),
    ((), ("_tmp/**",), "_tmp/x", False),
    ((), ("*.tmp",), "a/b.tmp", False),
    (("*.csv",), ("bad*",), "x/bad.csv", False),
])
def test_name_filter(inc: tuple[str, ...], exc: tuple[str, ...], rel: str, taken: bool) -> None:
    assert NameFilter(inc, exc)(rel) is taken


def test_identical_uses_md5_then_recorded_etag() -> None:
    a = ObjectInfo("k", 3, md5=b"1" * 16, etag="e1")
    assert identical(a, ObjectInfo("k", 3, md5=b"1" * 16))
    assert not identical(a, ObjectInfo("k", 3, md5=b"2" * 16))
    assert not identical(a, ObjectInfo("k", 4, md5=b"1" * 16))
    multipart = ObjectInfo("k", 3, etag="abc-2")
    assert identical(multipart, ObjectInfo("k", 3, metadata={"lakeshift_src_etag": "abc-2"}))
    assert not identical(multipart, ObjectInfo("k", 3, metadata={"lakeshift_src_etag": "x-2"}))
    assert not identical(multipart, ObjectInfo("k", 3))
    assert needs_copy(a, None, "never")
    assert not needs_copy(a, ObjectInfo("k", 9), "never")
    assert needs_copy(a, ObjectInfo("k", 3, md5=b"1" * 16), "always")


def test_a_range_lists_only_its_common_prefix() -> None:
    from lakeshift.plan.source import SourceSpec

    spec = SourceSpec("raw/", "raw/", range_start="raw/d0012/a", range_end="raw/d0019/z")
    assert spec.listing_prefix() == "raw/d001"
    assert SourceSpec("raw/", "raw/", range_start="raw/a").listing_prefix() == "raw/"
    assert SourceSpec("raw/", "raw/", range_start="a", range_end="b").listing_prefix() == "raw/"
