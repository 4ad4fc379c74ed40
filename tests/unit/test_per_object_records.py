"""What every small object costs in the records and signatures built for it (issue 16
item 4): the frozen records built per object get ``model.quick_init``'s ``__init__``
(each field set through its slot, not ``object.__setattr__``), the same records a
dataclass builds; the signers' HMACs start from the key's states set up once
(``keyed_mac``); a GET's properties without metadata are one shared record."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import sys
from types import FrameType
from typing import Any
from unittest import mock

import pytest

from lakeshift.engine import events
from lakeshift.engine.transfer_base import Copied
from lakeshift.model import ObjectInfo, ObjectProps, ReadResult, quick_init
from lakeshift.stores.keyed_mac import KeyedMAC, mac_of

#: The records built per object on the copy path.
PER_OBJECT = [ObjectInfo, ObjectProps, ReadResult, Copied, events.Listed, events.BytesMoved,
              events.ObjectStarted, events.ObjectDone]


def _reference(cls: type) -> Any:
    """The same fields as a plain frozen dataclass (its own generated __init__)."""
    spec = [(f.name, f.type,
             dataclasses.field(default=f.default, default_factory=f.default_factory))
            for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(f"Ref{cls.__name__}", spec, frozen=True, slots=True)


def _values(cls: type) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    names = [f.name for f in dataclasses.fields(cls)]
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    full = tuple(f"v{i}" for i in range(len(names)))
    return [(full, {}), (tuple(f"r{i}" for i in range(len(required))), {}),
            ((), {n: f"k{i}" for i, n in enumerate(names)}),
            ((), {n: f"k{i}" for i, n in enumerate(required)})]


@pytest.mark.parametrize("cls", PER_OBJECT, ids=lambda c: c.__name__)
def test_quick_records_are_the_dataclass_records(cls: type) -> None:
    ref = _reference(cls)
    for args, kwargs in _values(cls):
        got, want = cls(*args, **kwargs), ref(*args, **kwargs)
        assert _fields(got) == _fields(want)
        assert repr(got).removeprefix(cls.__name__) == repr(want).removeprefix(ref.__name__)
        assert got == cls(*args, **kwargs) and _hash(got) == _hash(cls(*args, **kwargs))
        assert (_hash(got) is None) == (_hash(want) is None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(got, dataclasses.fields(cls)[0].name, "x")
        assert dataclasses.replace(got) == got
    with pytest.raises(TypeError):
        cls(*range(len(dataclasses.fields(cls)) + 1))
    with pytest.raises(TypeError):
        cls(no_such_field=1)
    assert [p for p in _params(cls)] == [p for p in _params(ref)]


def _hash(record: Any) -> int | None:
    try:
        return hash(record)
    except TypeError:  # (a field holds a mapping)
        return None


def _fields(record: Any) -> tuple[Any, ...]:
    return tuple(getattr(record, f.name) for f in dataclasses.fields(record))


def _params(cls: type) -> list[tuple[str, Any]]:
    import inspect

    return [(p.name, repr(p.default)) for p in inspect.signature(cls).parameters.values()]


def test_a_default_factory_is_called_for_each_record() -> None:
    @quick_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class R:
        a: int
        b: list[int] = dataclasses.field(default_factory=list)

    one, two = R(1), R(2)
    assert one.b == [] and one.b is not two.b and R(3, [4]).b == [4]
    assert ObjectProps().metadata == {} and ObjectProps(metadata={"a": "b"}).metadata == {"a": "b"}


def test_no_dataclass_generated_init_runs_per_object(monkeypatch: Any) -> None:
    """The engine's in-memory copy (test_hot_path_cost) of 100 and of 300 objects: a
    generated dataclass __init__ (``object.__setattr__`` per field, ~0.7k instructions
    each) runs per listing page (its Page, one per 100 objects here), not per object
    (there were 8 per object)."""
    from tests.unit.test_hot_path_cost import _memory_copy

    def generated_inits(n: int) -> int:
        count = 0

        def prof(frame: FrameType, event: str, arg: object) -> None:
            nonlocal count
            code = frame.f_code
            if event == "call" and code.co_name == "__init__" and \
                    code.co_filename == "<string>":
                count += 1

        copy = _memory_copy(monkeypatch, n)

        async def main() -> None:
            sys.setprofile(prof)
            try:
                await copy()
            finally:
                sys.setprofile(None)

        asyncio.run(main())
        return count

    assert generated_inits(300) - generated_inits(100) <= 2  # two more pages


def test_keyed_mac_is_hmac_sha256() -> None:
    for key in (b"", b"k", b"k" * 32, bytes(range(64)), bytes(range(65)), b"\xff" * 200):
        mac = KeyedMAC(key)
        for message in (b"", b"m", b"x" * 55, b"x" * 64, b"y" * 1000):
            assert mac.digest(message) == hmac.digest(key, message, "sha256")
            assert mac.digest(message) == hmac.new(key, message, hashlib.sha256).digest()
    assert mac_of(b"k") is mac_of(b"k")


def test_signatures_take_no_one_shot_hmac_per_request() -> None:
    """A Shared Key signature (and a SigV4 one, test_sigv4) is made from the key's states
    set up once: no ``hmac.digest`` per request (it set the key up again each time)."""
    import base64

    from lakeshift.stores.azure import rest

    key = base64.b64decode(base64.b64encode(b"k" * 64))
    url = "http://127.0.0.1:10000/acct/c/data/obj.bin"
    headers = {"x-ms-version": rest.API_VERSION, "x-ms-date": "Tue, 01 Dec 2026 00:00:00 GMT",
               "Content-Length": "4096", "Content-Type": "application/octet-stream"}
    calls: list[int] = []
    real = hmac.digest

    def counting(*a: Any) -> bytes:
        calls.append(1)
        return real(*a)

    with mock.patch("hmac.digest", counting):
        got = [rest.shared_key_signature("acct", key, "PUT", url, dict(headers))
               for _ in range(3)]
    assert calls == []
    # (Its value is checked against azure-storage-blob's in test_azure_signer.)
    from lakeshift.stores import keyed_mac

    keyed_mac._MACS.clear()
    assert got == [rest.shared_key_signature("acct", key, "PUT", url, dict(headers))] * 3


def test_a_get_without_metadata_shares_its_properties_record() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from lakeshift.stores.s3.reads import props_from_headers

    def props(*pairs: tuple[str, str]) -> ObjectProps:
        return props_from_headers(CIMultiDictProxy(CIMultiDict(pairs)))

    plain = [("Content-Length", "4096"), ("Content-Type", "binary/octet-stream")]
    one, two = props(*plain), props(*plain)
    assert one is two and one == ObjectProps(content_type="binary/octet-stream")
    other = props(("Content-Type", "text/csv"), ("Cache-Control", "no-cache"))
    assert other == ObjectProps(content_type="text/csv", cache_control="no-cache")
    meta = props(*plain, ("x-amz-meta-a", "1"))
    assert meta == ObjectProps(content_type="binary/octet-stream", metadata={"a": "1"})
    assert meta is not props(*plain, ("x-amz-meta-a", "1"))


def test_a_request_head_refuses_a_line_break_anywhere() -> None:
    """In the method, the target, a name or a value (test_hot_path_cost's differential test
    puts them in values only)."""
    from lakeshift.stores import wire

    pool = wire.Pool("http://127.0.0.1:8080")
    ok = [("x-amz-date", "20240102T030405Z"), ("authorization", "AWS4-HMAC-SHA256 ...")]
    assert pool.request_head("GET", "/k", ok, False, 0) == (
        b"GET /k HTTP/1.1\r\nx-amz-date: 20240102T030405Z\r\n"
        b"authorization: AWS4-HMAC-SHA256 ...\r\nHost: 127.0.0.1:8080\r\n\r\n")
    for bad in ("\r", "\n", "\r\n"):
        for method, target, headers in (
                (f"GET{bad}", "/k", ok), ("GET", f"/k{bad}x", ok),
                ("GET", "/k", [*ok, (f"x{bad}y", "v")]), ("GET", "/k", [*ok, ("x", f"v{bad}")]),
                ("GET", "/k", {f"x{bad}": "v"})):
            with pytest.raises(ValueError, match="line break"):
                pool.request_head(method, target, headers, False, 0)


def test_the_source_time_is_written_without_a_c_level_formatting_call() -> None:
    """format_time, once per object copied: its fields from a table of two-digit texts in
    one f-string (~9k instructions; datetime.isoformat's generic formatting took ~15k).
    Its text is checked against strftime in test_hot_path_cost."""
    from datetime import UTC, datetime

    from lakeshift.stores.props import format_time
    from tests.unit.test_hot_path_cost import _c_calls

    when = datetime(2026, 12, 2, 11, 53, 1, 7, tzinfo=UTC)
    assert format_time(when) == "2026-12-02T11:53:01.000007Z"
    # (The lambda, format_time and the setprofile that ends the count; 4 with isoformat.)
    assert _c_calls(lambda: format_time(when)) == 3


def test_the_name_screen_passes_what_its_regex_passed(monkeypatch: Any) -> None:
    """plan/names.problem's screen (once per object listed): substring tests and one scan
    of a character set, where one regex alternation cost ~16k instructions a name.
    Differential against the regex (``names._SUSPECT``): a name it passed is None, any
    other gets the detailed checks' answer."""
    import random
    import re

    from lakeshift.plan import names

    rng = random.Random(13)
    alphabet = ["a", "b", ".", "..", "/", "//", "\\", "\x00", "\x1f", "\x7f", " ", "é", "日",
                "\ud800", "\udfff", "\ufffe", "\uffff", "~", "-", "\x80"]
    cases = ["", "a", "/", ".", "..", "a/", "/a", "a/.", "a/..", "./a", "../a", "a/./b",
             "a/../b", "a//b", "a.b/c", "a./b", ".a/b", "a/.b", "a" * 1100, "/".join("a" * 300)]
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
              for _ in range(20000)]

    def detailed(name: str) -> Any:
        with monkeypatch.context() as m:
            m.setattr(names, "_SUSPECT_CHAR", re.compile(""))  # (always "suspect")
            return names.problem(name)

    for name in cases:
        passed = bool(name) and len(name) <= names.MAX_LENGTH and \
            not names._SUSPECT.search(name) and name.count("/") < names.MAX_SEGMENTS
        assert names.problem(name) == (None if passed else detailed(name)), repr(name)


def _plain_record_variants() -> list[tuple[str, Any]]:
    """Dataclasses whose generated ``__init__`` does more than set each field in order."""
    dc = dataclasses

    @dc.dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    @dc.dataclass(frozen=True, slots=True)
    class NotInit:
        a: int
        b: int = dc.field(init=False, default=7)

    @dc.dataclass(frozen=True, slots=True, kw_only=True)
    class KwOnly:
        a: int

    @dc.dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        scale: dataclasses.InitVar[int] = 1

    @dc.dataclass(frozen=True)
    class NoSlots:
        a: int = 0

    @dc.dataclass(slots=True)
    class NotFrozen:
        a: int

    return [(c.__name__, c) for c in (PostInit, NotInit, KwOnly, WithInitVar, NoSlots,
                                      NotFrozen)]


@pytest.mark.parametrize(("name", "cls"), _plain_record_variants(),
                         ids=[n for n, _ in _plain_record_variants()])
def test_quick_init_refuses_a_record_whose_init_does_more(name: str, cls: type) -> None:
    """Its __init__ only sets the fields: a __post_init__ (a check), an InitVar, an
    init=False or keyword-only field would be silently lost (``PostInit(-1)`` built, ``NotInit``
    taking ``b`` as an argument, ``KwOnly(1)`` accepted), so such a class is refused."""
    with pytest.raises(TypeError, match="quick_init"):
        quick_init(cls)
