"""What the engine spends per request and per object outside the store calls, counted in
Python function calls (deterministic, unlike a timing): the no-failure path of retry with
an endpoint limiter must stay a few calls, not a context manager, a Condition and its
lock per request."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any
from unittest import mock

import pytest

from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.engine.retry import RetryPolicy, retry
from tests.pycalls import python_calls, python_calls_awaited


def test_retry_with_a_free_limiter_slot_costs_a_few_calls() -> None:
    async def main() -> tuple[int, int, int]:
        lim = EndpointLimiter("e", 4)
        lim.limit = 3.5  # below the maximum: success() has work to do too

        async def request() -> int:
            return 7

        bare = await python_calls_awaited(lambda: retry(request, RetryPolicy()))
        paced = await python_calls_awaited(lambda: retry(request, RetryPolicy(), lim))
        assert lim.inflight == 0 and lim.limit > 3.5
        full = EndpointLimiter("f", 4)  # at its maximum: success has nothing to do
        at_max = await python_calls_awaited(lambda: retry(request, RetryPolicy(), full))
        assert full.inflight == 0
        return bare, paced, at_max

    bare, paced, at_max = asyncio.run(main())
    # success only (a free slot taken and given back inline, no coroutine, no call): not
    # an asynccontextmanager, a Condition, its Lock and a predicate per request (then
    # try_take, release and success, 3, until session 15); at the maximum limit, none.
    assert paced - bare <= 1, (bare, paced)
    assert at_max - bare <= 0, (bare, at_max)


def test_retry_takes_and_gives_back_limiter_slots_as_acquire_and_release_do() -> None:
    """retry takes a free slot and gives it back inline: requests beyond the limit wait
    and go in the order they came, a failed request gives its slot back, a request-rate
    cap still goes through acquire (its token bucket)."""
    from lakeshift.errors import TransientError

    async def main() -> None:
        lim = EndpointLimiter("e", 2, adaptive=False)
        order: list[int] = []
        gate = asyncio.Event()

        async def request(i: int) -> int:
            order.append(i)
            if i < 2:
                await gate.wait()
            return i

        tasks = [asyncio.create_task(retry(lambda i=i: request(i), RetryPolicy(), lim))
                 for i in range(5)]
        await asyncio.sleep(0.01)
        assert order == [0, 1] and lim.inflight == 2 and len(lim.waiters) == 3
        gate.set()
        assert await asyncio.gather(*tasks) == [0, 1, 2, 3, 4]
        assert order == [0, 1, 2, 3, 4] and lim.inflight == 0 and not lim.waiters

        async def failing() -> int:
            raise TransientError("x")

        with pytest.raises(TransientError):
            await retry(failing, RetryPolicy(attempts=2, base=0.001), lim)
        assert lim.inflight == 0
        capped = EndpointLimiter("c", 4, max_rps=1000.0)
        taken = capped._rps.taken if capped._rps else -1
        assert await retry(lambda: request(9), RetryPolicy(), capped) == 9
        assert capped._rps is not None and capped._rps.taken == taken + 1
        assert capped.inflight == 0

    asyncio.run(main())


def test_limiter_hands_slots_over_in_order_and_survives_cancellation() -> None:
    async def main() -> list[str]:
        lim = EndpointLimiter("e", 2)
        order: list[str] = []
        await lim.acquire()
        await lim.acquire()
        assert lim.inflight == 2

        async def waiter(name: str) -> None:
            await lim.acquire()
            order.append(name)
            lim.release()

        a = asyncio.create_task(waiter("a"))
        b = asyncio.create_task(waiter("b"))
        c = asyncio.create_task(waiter("c"))
        await asyncio.sleep(0)
        b.cancel()  # waiting: leaves the queue, takes nothing
        await asyncio.sleep(0)
        lim.release()
        c.cancel()  # not granted yet (a was first): gives nothing back, takes nothing
        await asyncio.gather(a, b, c, return_exceptions=True)
        assert lim.inflight == 1
        # Granted just as it is cancelled: the slot is given back.
        await lim.acquire()  # full again (2 of 2)
        d = asyncio.create_task(waiter("d"))
        await asyncio.sleep(0)
        lim.release()  # grants d its slot (2 of 2 again) before d runs
        d.cancel()
        await asyncio.gather(d, return_exceptions=True)
        assert lim.inflight == 1
        lim.release()
        lim.limit = 1.0
        await lim.acquire()
        e = asyncio.create_task(waiter("e"))
        await asyncio.sleep(0)
        lim.limit = 2.0
        lim.success()  # not adaptive-capped: the limit is at its maximum, nothing to wake
        lim.release()
        await e
        assert lim.inflight == 0
        return order

    assert asyncio.run(main()) == ["a", "e"]


def test_format_time_writes_what_strftime_writes() -> None:
    """Differential: the f-string of format_time against the strftime it replaced."""
    import random
    from datetime import UTC, datetime, timedelta, timezone

    from lakeshift.stores.props import format_time, parse_time

    rng = random.Random(16)
    zones = [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    cases = [datetime(1, 1, 1, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, 999999),
             datetime(1000, 1, 1), datetime(9999, 12, 31, 12, tzinfo=UTC),
             datetime(2024, 2, 29, 0, 0, 0, 0, tzinfo=zones[2])]
    for _ in range(2000):
        cases.append(datetime(rng.randint(1001, 9998), rng.randint(1, 12), rng.randint(1, 28),
                              rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                              rng.choice([0, rng.randint(0, 999_999)]),
                              tzinfo=rng.choice(zones)))
    for when in cases:
        aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        want = aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert format_time(when) == want, when
        if when.year >= 1000:
            assert parse_time(want) == aware


def test_destination_props_keep_every_field_and_add_the_source_time() -> None:
    from datetime import UTC, datetime

    from lakeshift.engine.transfer import _dest_props
    from lakeshift.model import ObjectInfo, ObjectProps
    from lakeshift.stores.props import SRC_ETAG_KEY, SRC_MTIME_KEY

    props = ObjectProps("text/csv", "gzip", "no-cache", "attachment", "de", {"a": "1"})
    src = ObjectInfo("k", 3, datetime(2021, 5, 6, 7, 8, 9, 10, tzinfo=UTC), "e1")
    out = _dest_props(props, src)
    assert out == ObjectProps("text/csv", "gzip", "no-cache", "attachment", "de",
                              {"a": "1", SRC_ETAG_KEY: "e1",
                               SRC_MTIME_KEY: "2021-05-06T07:08:09.000010Z"})
    assert props.metadata == {"a": "1"}  # the source's props are not changed


def test_destination_props_of_a_source_without_metadata_as_the_general_path_makes_them(
        ) -> None:
    """A source read without metadata (every S3 object listed and read: no metadata in the
    listing, none in the GET) takes a short path (the two keys in one dict display, no
    copy of an empty dict, no look-ups: callgrind 20.1K -> 10.1K instructions a call); it
    makes what the general path makes, over every mix of ETag, time and metadata."""
    import itertools
    from datetime import UTC, datetime, timedelta, timezone

    from lakeshift.engine import transfer_base
    from lakeshift.model import ObjectInfo, ObjectProps
    from lakeshift.stores.props import SRC_ETAG_KEY, SRC_MTIME_KEY

    def general(props: ObjectProps, src: ObjectInfo) -> ObjectProps:
        # (the general path: a source with metadata of its own takes it)
        return transfer_base._dest_props(
            props if props.metadata else ObjectProps(
                props.content_type, props.content_encoding, props.cache_control,
                props.content_disposition, props.content_language, {"x": "1"}), src)

    times = [None, datetime(2021, 5, 6, 7, 8, 9, 10, tzinfo=UTC),
             datetime(2021, 5, 6, 7, 8, 9), datetime(999, 1, 2, tzinfo=UTC),
             datetime(2021, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))]
    metas: list[dict[str, str] | None] = [None, {}, {SRC_MTIME_KEY: "2001-01-01T00:00:00Z"},
                                          {"a": "1"}]
    props_metas: list[dict[str, str]] = [{}, {SRC_MTIME_KEY: "kept"}, {"b": "2"}]
    for etag, when, meta, pmeta, ctype in itertools.product(
            [None, "", "e1"], times, metas, props_metas, [None, "text/csv"]):
        props = ObjectProps(ctype, None, "no-cache", None, "de", pmeta)
        src = ObjectInfo("k", 3, when, etag, None, False, meta)
        got = transfer_base._dest_props(props, src)
        want = general(props, src)
        want_meta = {k: v for k, v in want.metadata.items()
                     if k != "x" or props.metadata.get("x")}
        assert got.metadata == want_meta, (etag, when, meta, pmeta)
        assert (got.content_type, got.cache_control, got.content_language) == (
            ctype, "no-cache", "de")
    with mock.patch.object(transfer_base, "dict", create=True,
                           side_effect=AssertionError("copied")):
        # (the short path: no copy of the empty metadata)
        assert transfer_base._dest_props(ObjectProps(), ObjectInfo("k", 3, times[1], "e1")
                                         ).metadata[SRC_ETAG_KEY] == "e1"


def _memory_copy(monkeypatch: Any, n: int) -> Callable[[], Any]:
    """``copy_async`` of ``n`` objects of 4 KiB over two in-memory stores (an S3-like
    source listing MD5s, an Azure-like destination that checks them): a coroutine function
    that runs it and checks that every object was written."""
    import hashlib
    from datetime import UTC, datetime

    import lakeshift.engine.pipeline as pipeline
    from lakeshift.model import ObjectInfo, ObjectProps, ReadResult
    from lakeshift.stores.base import Capabilities, Page, StoreConfig
    from lakeshift.urls import parse_url

    data = b"x" * 4096
    md5 = hashlib.md5(data).digest()
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    class Mem:
        def __init__(self, url: str, objs: dict[str, ObjectInfo], caps: Capabilities) -> None:
            self.url = parse_url(url)
            self.objs = objs
            self.capabilities = caps
            self.written: dict[str, bytes] = {}

        async def check_source(self) -> None:
            pass

        async def prepare_destination(self) -> None:
            pass

        async def list_page(self, prefix: str, token: str | None = None,
                            start_after: str | None = None,
                            delimiter: str | None = None) -> Page:
            keys = sorted(k for k in self.objs
                          if k.startswith(prefix) and (token is None or k > token))[:100]
            return Page([self.objs[k] for k in keys], (),
                        keys[-1] if len(keys) == 100 else None)

        async def read(self, key: str, start: int | None = None, end: int | None = None,
                       if_match: str | None = None) -> ReadResult:
            return ReadResult(data, ObjectProps(content_type="text/plain"), len(data), "e")

        async def put(self, key: str, body: bytes, props: ObjectProps, sum_: bytes) -> None:
            assert sum_ == md5 and props.metadata
            self.written[key] = body

        async def close(self) -> None:
            pass

    common: dict[str, Any] = dict(list_start_after=True, content_md5=True, hierarchical=False,
                                  acls=False, copy_from_url=False, block_upload=True,
                                  max_block_size=1 << 30)
    src = Mem("s3://bkt/data/",
              {f"data/{i:05}": ObjectInfo(f"data/{i:05}", len(data), when, f'"{md5.hex()}"', md5)
               for i in range(n)},
              Capabilities(**common, etag_is_md5=True, metadata_in_listing=False))
    dst = Mem("az://cnt/data/", {},
              Capabilities(**common, etag_is_md5=False, metadata_in_listing=True,
                           stream_put=True, put_checks_md5=True))
    monkeypatch.setattr(pipeline, "open_store",
                        lambda cfg: src if cfg.url.scheme == "s3" else dst)

    async def copy() -> Any:
        result = await pipeline.copy_async(StoreConfig(parse_url("s3://bkt/data/")),
                                           StoreConfig(parse_url("az://cnt/data/")))
        assert result.stats.copied == n and len(dst.written) == n
        return result

    return copy


def test_the_engine_makes_few_calls_per_object_outside_the_stores(
        monkeypatch: Any) -> None:
    """copy_async over two in-memory stores (``_memory_copy``): what the engine itself
    spends per object, in Python calls.  (Was 124 per object with a context manager,
    Condition and Lock per request, dataclasses.replace and strftime per object; 78 now.)"""
    n = 500
    copy = _memory_copy(monkeypatch, n)
    # Once per process, not per object: the listing's heap trimmer is looked up (ctypes
    # imported) on the first page after the first.
    from lakeshift.engine.listing import release_free_heap

    release_free_heap()

    async def main() -> int:
        return await python_calls_awaited(copy)

    calls = asyncio.run(main())
    # (70 a copy at the start of session 15; 47 with the source's keys named in one
    # comprehension and the pool's hand-off a deque, not an asyncio.Queue; 43 with a free
    # buffer slot taken without a coroutine, the bandwidth cap and a streaming route not
    # asked without one, the watermark's finish inline; 39 with retry taking and giving
    # back a limiter's slot inline.)
    assert calls / n <= 41, calls / n


# -- per request: the wire client and the signers ---------------------------------------


def _c_calls(fn: Callable[[], Any]) -> int:
    """C-level and Python-level calls made by ``fn()`` (deterministic)."""
    calls = 0

    def prof(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def _old_request_head(pool: Any, method: str, target: str, headers: Any, has_body: bool,
                      length: int) -> bytes:
    """The wire client's request head as it was built before (one Python step per
    header): the reference for ``Pool.request_head``."""
    from collections.abc import Mapping

    lines = [f"{method} {target} HTTP/1.1\r\n"]
    given_host = given_length = False
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        lines.append(f"{name}: {value}\r\n")
        low = name.lower()
        if low == "host":
            given_host = True
        elif low == "content-length":
            given_length = True
    if not given_host:
        lines.append(pool._host_line + "\r\n")
    if not given_length and (has_body or method in ("PUT", "POST")):
        lines.append(f"Content-Length: {length}\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError("a header name or value holds a line break")
    return text.encode("utf-8")


def test_the_request_head_is_built_as_before_without_a_step_per_header() -> None:
    """Differential against the per-header loop it replaced (names of any case, Host and
    Content-Length given or not, odd values, line breaks refused), then the cost: a head
    of 40 headers makes no more calls than one of 2."""
    import random

    from lakeshift.stores import wire

    rng = random.Random(16)
    pools = [wire.Pool("http://127.0.0.1:8080"), wire.Pool("https://example.com"),
             wire.Pool("http://[::1]:80")]
    names = ["Host", "host", "HOST", "Content-Length", "content-length", "X-A", "x-ms-date",
             "Authorization", "Hostx", "x-host", "Content-Lengths", "range", "Host ",
             "content-length "]
    values = ["", "v", "a b", " lead", "trail ", "1234", "host: x", "ü", "x\r\ny: 1", "x\ny",
              "\r", "a:b"]
    for _ in range(3000):
        pool = rng.choice(pools)
        items = [(rng.choice(names), rng.choice(values)) for _ in range(rng.randint(0, 6))]
        headers: Any = dict(items) if rng.random() < 0.3 else items
        method = rng.choice(["GET", "PUT", "POST", "HEAD", "DELETE"])
        has_body, length = rng.random() < 0.5, rng.randint(0, 10**9)
        try:
            want: Any = _old_request_head(pool, method, "/k?x=1", headers, has_body, length)
        except ValueError as e:
            want = e
        try:
            got: Any = pool.request_head(method, "/k?x=1", headers, has_body, length)
        except ValueError as e:
            got = e
        if isinstance(want, ValueError):
            assert isinstance(got, ValueError), (items, got)
        else:
            assert got == want, items

    pool = pools[0]
    few = [("x-amz-date", "20240102T030405Z"), ("authorization", "AWS4-HMAC-SHA256 ...")]
    many = few + [(f"x-ms-meta-k{i}", f"value {i}") for i in range(38)]
    cost_few = _c_calls(lambda: pool.request_head("PUT", "/k", few, True, 5))
    cost_many = _c_calls(lambda: pool.request_head("PUT", "/k", many, True, 5))
    assert cost_many - cost_few <= 2, (cost_few, cost_many)
    # A list of headers (what the S3 signer gives) runs no Python-level code but the method
    # itself (an isinstance against the Mapping ABC ran abc's __instancecheck__).
    # (2: the lambda and the method.)  A dict (the Azure client's) neither.
    assert python_calls(lambda: pool.request_head("PUT", "/k", few, True, 5)) == 2
    assert python_calls(lambda: pool.request_head("PUT", "/k", dict(few), True, 5)) == 2


def test_the_pipeline_producer_is_woken_once_per_batch_not_per_item() -> None:
    """drive(): with the queue full, the producer waits until the workers have taken it
    down to half, then refills it in one step; it was woken at every item taken (a task
    step and a loop turn per object).  Every item is still acted on, once, in order of
    arrival."""
    from lakeshift.engine.pipeline_pool import drive

    n, concurrency = 2000, 8
    done: list[int] = []

    async def work() -> Any:
        for i in range(n):
            yield i

    async def action(i: int) -> None:
        await asyncio.sleep(0)
        done.append(i)

    resumes = 0

    def prof(frame: FrameType, event: str, arg: object) -> None:
        nonlocal resumes
        if event == "call" and frame.f_code.co_name == "produce":
            resumes += 1  # (a coroutine's every resumption is a "call")

    async def main() -> None:
        sys.setprofile(prof)
        try:
            await drive(work(), action, concurrency)
        finally:
            sys.setprofile(None)

    asyncio.run(main())
    assert sorted(done) == list(range(n))
    assert done[:concurrency] == list(range(concurrency))
    assert resumes <= n / (concurrency * 2) + 10, resumes


def test_the_pipeline_pool_holds_few_items_and_ends_as_it_should() -> None:
    """drive() hands items over in a deque (not an asyncio.Queue): every item (None
    among them) acted on once, in order of arrival; at most 4 x concurrency taken from the
    producer and not yet started; an item coming while workers wait goes to one at once;
    an error from an action or from the producer is raised as itself, and ends the
    others."""
    from lakeshift.engine.pipeline_pool import drive

    async def run(n: int, concurrency: int, slow: bool, fail_at: int | None = None,
                  fail_in_work: bool = False) -> tuple[list[Any], int]:
        produced = started = most = 0
        done: list[Any] = []

        async def work() -> Any:
            nonlocal produced
            for i in range(n):
                if fail_in_work and i == fail_at:
                    raise LookupError("listing")
                if i % 97 == 0:
                    await asyncio.sleep(0)  # (a page awaited: the workers run dry)
                produced += 1
                yield None if i == 5 else i

        async def action(i: Any) -> None:
            nonlocal started, most
            most = max(most, produced - started)
            started += 1
            if fail_at is not None and i == fail_at and not fail_in_work:
                raise KeyError(i)
            if slow:
                await asyncio.sleep(0)
            done.append(i)

        await drive(work(), action, concurrency)
        return done, most

    for concurrency, slow in ((1, True), (8, True), (8, False), (32, True)):
        done, most = asyncio.run(run(3000, concurrency, slow))
        assert sorted(x for x in done if x is not None) == [i for i in range(3000) if i != 5]
        assert done.count(None) == 1
        assert most <= concurrency * 4 + 2, (concurrency, most)  # (+ the one in hand, + the next)
    with pytest.raises(KeyError):
        asyncio.run(run(500, 8, True, fail_at=300))
    with pytest.raises(LookupError):
        asyncio.run(run(500, 8, True, fail_at=300, fail_in_work=True))

    async def never_ends() -> None:
        async def work() -> Any:
            yield 1
            await asyncio.Event().wait()
            yield 2  # pragma: no cover

        task = asyncio.create_task(drive(work(), lambda i: asyncio.sleep(0), 4))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(asyncio.all_tasks()) == 1  # (no worker left behind)

    asyncio.run(never_ends())


def test_a_free_buffer_slot_is_taken_at_once_and_waiters_keep_their_turn() -> None:
    """SlotPool.try_take takes a free slot without a coroutine, as acquire(1) would, but
    never ahead of a waiter; release wakes only when someone waits."""
    from lakeshift.engine.slots import SlotPool

    async def main() -> None:
        slots = SlotPool(2)
        assert slots.try_take() and slots.try_take() and slots.free == 0
        assert not slots.try_take()
        big = asyncio.create_task(slots.acquire(2))
        await asyncio.sleep(0)
        slots.release(1)
        assert slots.free == 1 and not slots.try_take()  # (the waiter's turn first)
        slots.release(1)
        assert await big == 2 and slots.free == 0
        slots.release(2)
        with mock.patch.object(slots, "_wake", side_effect=AssertionError("woken")):
            assert slots.try_take()
            slots.release(1)
        assert slots.free == 2 and not SlotPool(0).try_take()

    asyncio.run(main())


def test_a_context_looks_its_endpoint_limiters_up_once() -> None:
    """``src_limit``/``dst_limit`` are read for every request: after the first, reading
    them makes no Python call (the endpoint name is not built again per request), and they
    are the pacing's limiters for the two stores' endpoints."""
    from types import SimpleNamespace

    from lakeshift.engine.events import EventBus
    from lakeshift.engine.limiter import Pacing
    from lakeshift.engine.slots import SlotPool
    from lakeshift.engine.transfer_base import TransferContext
    from lakeshift.urls import parse_url

    src = SimpleNamespace(url=parse_url("s3://bkt/data/"))
    dst = SimpleNamespace(url=parse_url("az://acct/cnt/data/"))  # (scheme azure, no account)
    pacing = Pacing(8, adaptive=False)
    ctx = TransferContext(src, dst, 1 << 20, SlotPool(4), RetryPolicy(),  # type: ignore[arg-type]
                          EventBus(), pacing)
    assert ctx.src_limit is pacing.endpoint("s3:///bkt")
    assert ctx.dst_limit is pacing.endpoint("azure:///acct")
    assert ctx.src_limit is not ctx.dst_limit

    async def read() -> Any:
        return (ctx.src_limit, ctx.dst_limit)

    async def main() -> int:
        return await python_calls_awaited(read)

    assert asyncio.run(main()) <= 1  # the coroutine itself
