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


def test_object_started_is_built_only_when_a_subscriber_listens(monkeypatch: Any) -> None:
    """ObjectStarted (one per object) is for the job runner's objects in flight and the
    public API's subscribers: a copy whose subscribers all ignore it (StatsCounter, the
    CLI's progress, ``--progress none``: none) builds none; a subscriber that does not say
    (a function) still hears each object start before it is done."""
    import io

    import lakeshift.engine.pipeline as pipeline
    from lakeshift.cli.progress import PlainProgress
    from lakeshift.stores.base import StoreConfig
    from lakeshift.urls import parse_url
    from tests.unit.test_hot_path_cost import _memory_copy

    n = 40

    def run(subscribers: list[Any]) -> int:
        _memory_copy(monkeypatch, n)  # (its in-memory stores, through open_store)
        built = 0

        def prof(frame: FrameType, event: str, arg: object) -> None:
            nonlocal built
            built += event == "call" and \
                frame.f_code.co_filename == "<quick_init ObjectStarted>"

        async def main() -> Any:
            sys.setprofile(prof)
            try:
                return await pipeline.copy_async(StoreConfig(parse_url("s3://bkt/data/")),
                                                 StoreConfig(parse_url("az://cnt/data/")),
                                                 subscribers=subscribers)
            finally:
                sys.setprofile(None)

        assert asyncio.run(main()).stats.copied == n
        return built

    assert run([]) == 0
    assert run([PlainProgress(io.StringIO())]) == 0
    heard: list[Any] = []
    assert run([heard.append]) == n
    order = [(type(e).__name__, e.key) for e in heard
             if isinstance(e, events.ObjectStarted | events.ObjectDone)]
    for i in range(n):
        key = f"data/{i:05}"
        assert order.index(("ObjectStarted", key)) < order.index(("ObjectDone", key))


def test_the_bus_knows_what_every_subscriber_ignores() -> None:
    from lakeshift.engine.pipeline_stats import StatsCounter
    from lakeshift.model import TransferStats

    counter = StatsCounter(TransferStats(), [])
    started = events.ObjectStarted
    assert events.EventBus().ignored == events.EVENT_TYPES
    assert started in events.EventBus([counter]).ignored
    assert events.EventBus([counter]).ignored == StatsCounter.ignores
    for listener in (print, [].append, lambda e: None, mock.Mock(), mock.MagicMock(),
                     events.EventBus([counter]).emit):
        assert events.EventBus([counter, listener]).ignored == frozenset()
    bus = events.EventBus([counter])
    bus.subscribe(lambda e: None)
    assert bus.ignored == frozenset()


class _OldStatsCounter:
    """StatsCounter.__call__ as it was: one isinstance chain for every event."""

    def __init__(self, stats: Any, failures: list[Any], keep: int) -> None:
        from collections import Counter

        self.stats, self.failures, self.keep = stats, failures, keep
        self.renames: list[Any] = []
        self.deletions: list[Any] = []
        self.proofs: Counter[str] = Counter()
        self.server_copy_off: list[str] = []

    def __call__(self, event: object) -> None:
        from lakeshift.engine.events import (
            BytesMoved,
            Listed,
            ObjectDone,
            Renamed,
            ServerCopyOff,
            SourceDeleted,
            Throttled,
        )
        from lakeshift.engine.preserve import UnmappableError, unmapped_principal
        from lakeshift.model import Failure, Rename

        s = self.stats
        if isinstance(event, Listed):
            s.listed += event.count
            s.listed_bytes += event.nbytes
        elif isinstance(event, ObjectDone):
            if event.outcome == "copied":
                s.copied += 1
                s.copied_bytes += event.size
                if event.proof is not None:
                    self.proofs[event.proof] += 1
            elif event.outcome == "skipped":
                s.skipped += 1
                s.skipped_bytes += event.size
                why = event.error_kind or event.reason or "other"
                s.skipped_by_reason[why] = s.skipped_by_reason.get(why, 0) + 1
                if event.error_kind is not None:
                    s.skipped_errors += 1
                    if len(self.failures) < self.keep:
                        self.failures.append(Failure(event.key, event.error_kind,
                                                     event.message or "", event.attempts,
                                                     skipped=True))
            else:
                s.failed += 1
                s.failed_bytes += event.size
                kind = event.error_kind or "error"
                s.failed_by_kind[kind] = s.failed_by_kind.get(kind, 0) + 1
                if kind == UnmappableError.kind:
                    who = unmapped_principal(event.message or "") or "(unnamed)"
                    s.unmapped_principals[who] = s.unmapped_principals.get(who, 0) + 1
                if len(self.failures) < self.keep:
                    self.failures.append(Failure(event.key, event.error_kind or "error",
                                                 event.message or "", event.attempts))
        elif isinstance(event, BytesMoved):
            s.bytes_transferred += event.nbytes
        elif isinstance(event, Renamed):
            s.renamed += 1
            if len(self.renames) < self.keep:
                self.renames.append(Rename(event.key, event.destination_key, event.rule))
        elif isinstance(event, Throttled):
            s.throttled += 1
        elif isinstance(event, ServerCopyOff):
            self.server_copy_off.append(event.reason)
        elif isinstance(event, SourceDeleted):
            if event.kept is None:
                s.sources_deleted += 1
            else:
                s.sources_kept += 1
            if len(self.deletions) < self.keep:
                self.deletions.append(event)


def _random_events(n: int) -> list[Any]:
    import random
    from datetime import UTC, datetime

    from lakeshift.engine.preserve import UnmappableError

    @dataclasses.dataclass(frozen=True, slots=True)
    class LaterDone(events.ObjectDone):  # (a subclass: counted as its base)
        pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class LaterBytes(events.BytesMoved):
        pass

    rng = random.Random(14)
    out: list[Any] = []
    for i in range(n):
        key = f"k{i}"
        pick = rng.randrange(14)
        kinds = [None, "missing", "forbidden", UnmappableError.kind, "transient"]
        if pick < 3:
            out.append(events.ObjectDone(key, rng.randrange(100), "copied",
                                         proof=rng.choice([None, "source-md5", "crc"]),
                                         attempts=rng.randint(1, 3)))
        elif pick == 3:
            out.append(events.ObjectDone(key, rng.randrange(100), "skipped",
                                         rng.choice(kinds), rng.choice([None, "why"]),
                                         reason=rng.choice([None, events.SKIP_IDENTICAL])))
        elif pick == 4:
            out.append(events.ObjectDone(key, rng.randrange(100), "failed", rng.choice(kinds),
                                         rng.choice([None, "principal 'user:bob' unmapped"])))
        elif pick == 5:
            out.append(LaterDone(key, 5, rng.choice(["copied", "skipped", "failed"]),
                                 proof="p"))
        elif pick == 6:
            out.append(rng.choice([events.BytesMoved, LaterBytes])(rng.randrange(1000)))
        elif pick == 7:
            out.append(events.Listed(rng.randint(-3, 9), rng.randrange(1000)))
        elif pick == 8:
            out.append(events.Renamed(key, key + "~", "rule"))
        elif pick == 9:
            out.append(events.Throttled("e", rng.randint(1, 9)))
        elif pick == 10:
            out.append(events.SourceDeleted(key, key, "00", rng.choice([None, "kept"])))
        elif pick == 11:
            out.append(events.ServerCopyOff("no"))
        elif pick == 12:
            out.append(events.ObjectStarted(key))
        else:
            out.append(rng.choice([events.ListingDone(), events.WindowCount(
                "p", None, datetime(2026, 1, 1, tzinfo=UTC), 1, 2)]))
    return out


def test_the_stats_counter_counts_what_its_isinstance_chain_counted() -> None:
    """Differential: StatsCounter against the chain it replaced, over a random run of every
    kind of event (subclasses too), with a cap on the lists kept."""
    from lakeshift.engine.pipeline_stats import StatsCounter
    from lakeshift.model import TransferStats

    for keep in (10_000, 7):
        new, old = StatsCounter(TransferStats(), [], keep=keep), \
            _OldStatsCounter(TransferStats(), [], keep)
        for event in _random_events(3000):
            new(event)
            old(event)
        for name in ("stats", "failures", "renames", "deletions", "proofs",
                     "server_copy_off"):
            assert getattr(new, name) == getattr(old, name), name


def test_an_object_copied_is_counted_without_an_isinstance_chain() -> None:
    """The events of every object copied (ObjectDone "copied", BytesMoved) are told by
    their exact type: no isinstance call (the chain made 2 and 3 of them)."""
    from lakeshift.engine.pipeline_stats import StatsCounter
    from lakeshift.model import TransferStats

    counter = StatsCounter(TransferStats(), [])
    checks = 0

    def prof(frame: FrameType, event: str, arg: object) -> None:
        nonlocal checks
        checks += event == "c_call" and arg is isinstance

    done, moved = events.ObjectDone("k", 5, "copied", proof="p"), events.BytesMoved(5)
    sys.setprofile(prof)
    try:
        counter(done)
        counter(moved)
    finally:
        sys.setprofile(None)
    assert checks == 0
    assert (counter.stats.copied, counter.stats.bytes_transferred) == (1, 5)
