"""Watermark(on_pass=…): told each key the cursor moves past, in listing order, and never a
key at or after one that failed."""

from __future__ import annotations

from lakeshift.engine.watermark import Watermark


def test_on_pass_hears_each_passed_key_once_in_order() -> None:
    passed: list[str] = []
    w = Watermark(on_pass=passed.append)
    t = [w.add(k) for k in ("a", "b", "c", "d", "e")]
    w.done(t[1])
    assert passed == [] and w.cursor is None
    w.done(t[0])
    assert passed == ["a", "b"] and w.cursor == "b"
    w.done(t[3])
    w.done(t[2], ok=False)  # c failed: the cursor stays before it for good
    w.done(t[4])
    assert passed == ["a", "b"] and w.cursor == "b" and w.frozen
