from __future__ import annotations

import pytest

from lakeshift.plan.names import CollisionTracker, collision_name, encode, problem


@pytest.mark.parametrize("name,rule", [
    ("ok/name.txt", None), (".hidden/x", None), ("a.b/c", None), ("a" * 1024, None),
    ("a" * 1025, "too-long"), ("/".join("a" * 255), "too-many-segments"),
    ("a\\b", "backslash"), ("a\x7fb", "control-character"), ("x//y", "empty-segment"),
    ("/x", "empty-segment"), ("x/", "empty-segment"), ("x/./y", "dot-segment"),
    ("..", "dot-segment"), ("dir./f", "trailing-dot"), ("f.", "trailing-dot"),
    (b"caf\xe9.csv".decode("utf-8", "surrogateescape"), "not-utf8"), ("a\uffff", "noncharacter"),
])
def test_rules(name: str, rule: str | None) -> None:
    p = problem(name)
    assert (p.rule if p else None) == rule


def test_encoding_makes_valid_distinct_names() -> None:
    names = ["a\\b", "x//y", "d./f", "c\x01", "p%q\\r", "./z"]
    encoded = [encode(n) for n in names]
    assert encoded == ["a%5Cb", "x%2Fy", "d%2E/f", "c%01", "p%25q%5Cr", "%2E/z"]
    assert all(e is not None and problem(e) is None for e in encoded)
    assert encode("a" * 1100) is None
    latin1 = b"caf\xe9.csv".decode("utf-8", "surrogateescape")  # a Latin-1 local file name
    assert encode(latin1) == "caf%E9.csv"


def test_collisions_in_sorted_order() -> None:
    t = CollisionTracker()
    hits = {k: t.check(k) for k in ["a", "a-x", "a.b", "a/b", "a/b/c", "ab", "b", "b/c"]}
    assert hits == {"a": None, "a-x": None, "a.b": None, "a/b": "a", "a/b/c": "a", "ab": None,
                    "b": None, "b/c": "b"}
    assert collision_name("a/b/c", "a") == "a%2Fb/c"
