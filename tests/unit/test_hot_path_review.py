"""Adversarial checks of session 15's hot-path cuts (review R1): the pool's hand-off
(drive), the buffer slots and the limiter taken inline, the metadata values' fast test and
the signer's one-header path, each against what it replaced or against botocore."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.engine.pipeline_pool import drive
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.slots import SlotPool
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


def test_the_pool_hands_every_item_over_once_under_any_timing() -> None:
    """drive() over random timings: producers faster and slower than the workers (pages
    awaited at random), actions suspending 0-3 times, concurrency 1 to 7, no items or a
    few thousand: every item acted on once, started in order of arrival, never more than
    4 x concurrency taken and not started, and the pool ends (no lost wake-up: a hang
    would time out)."""
    rng = random.Random(15)

    async def one(n: int, concurrency: int, producer_pauses: float, action_pauses: int
                  ) -> None:
        produced = 0
        started: list[int] = []
        done: list[int] = []

        async def work() -> Any:
            nonlocal produced
            for i in range(n):
                if rng.random() < producer_pauses:
                    for _ in range(rng.randint(1, 4)):
                        await asyncio.sleep(0)
                produced += 1
                yield i

        async def action(i: int) -> None:
            assert produced - len(started) <= concurrency * 4 + 1, (produced, len(started))
            started.append(i)
            for _ in range(rng.randint(0, action_pauses)):
                await asyncio.sleep(0)
            done.append(i)

        await asyncio.wait_for(drive(work(), action, concurrency), 30)
        assert started == list(range(n))
        assert sorted(done) == list(range(n))

    async def main() -> None:
        for _ in range(60):
            await one(rng.choice([0, 1, 2, 5, 40, 700]), rng.randint(1, 7),
                      rng.choice([0.0, 0.05, 0.5, 1.0]), rng.choice([0, 1, 3]))
        assert len(asyncio.all_tasks()) == 1

    asyncio.run(main())


def test_an_error_while_the_producer_waits_for_room_ends_the_pool() -> None:
    """An action failing while the hand-off is full (the producer waiting for room) or
    while workers wait for items (the producer slow) is raised as itself; no task is left
    and the producer is not resumed to list further."""

    async def run(fast_producer: bool) -> int:
        produced = 0

        async def work() -> Any:
            nonlocal produced
            for i in range(10_000):
                if not fast_producer:
                    await asyncio.sleep(0.001)
                produced += 1
                yield i

        async def action(i: int) -> None:
            await asyncio.sleep(0.002)
            if i == 20:
                raise KeyError(i)

        with pytest.raises(KeyError):
            await drive(work(), action, 3)
        await asyncio.sleep(0.01)
        assert len(asyncio.all_tasks()) == 1
        return produced

    assert asyncio.run(run(True)) <= 20 + 3 * 4 + 3 + 3
    assert asyncio.run(run(False)) <= 20 + 3 + 2


def test_cancelling_the_pool_while_the_hand_off_is_full_leaves_nothing_running() -> None:
    """A Ctrl-C (the run's task cancelled) while the producer waits for room and every
    worker is inside its action: each action sees the cancellation, none is started after
    it, and no task is left."""

    async def main() -> None:
        started: list[int] = []
        cancelled: list[int] = []
        gate = asyncio.Event()

        async def work() -> Any:
            for i in range(1000):
                yield i

        async def action(i: int) -> None:
            started.append(i)
            try:
                await gate.wait()
            except asyncio.CancelledError:
                cancelled.append(i)
                raise

        task = asyncio.create_task(drive(work(), action, 4))
        await asyncio.sleep(0.01)
        assert started == [0, 1, 2, 3]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(cancelled) == [0, 1, 2, 3] and started == [0, 1, 2, 3]
        assert len(asyncio.all_tasks()) == 1

    asyncio.run(main())


def test_buffer_slots_are_never_lost_nor_taken_out_of_turn() -> None:
    """SlotPool under random acquires (try_take first, as a small object does, or a span
    of n), releases and cancellations of waiters: the slots in use never exceed the pool,
    waiters are granted in the order they came, try_take never takes a slot while anyone
    waits (a span of 5 would starve), and at the end every slot is free again."""
    rng = random.Random(7)

    async def main() -> None:
        total = 5
        pool = SlotPool(total)
        in_use = 0
        granted: list[int] = []
        queued: list[int] = []
        waiting: set[int] = set()
        wrong: list[str] = []

        async def user(k: int) -> None:
            nonlocal in_use
            n = rng.choice([1, 1, 1, 2, 5])
            if n == 1 and pool.try_take():
                if waiting:  # (never ahead of one who waits)
                    wrong.append(f"{k} took a slot ahead of {sorted(waiting)}")
                got = 1
            else:
                queued.append(k)
                waiting.add(k)
                try:
                    got = await pool.acquire(n)
                finally:
                    waiting.discard(k)
                granted.append(k)
            in_use += got
            try:
                if in_use > total:
                    wrong.append(f"{in_use} slots in use")
                for _ in range(rng.randint(0, 3)):
                    await asyncio.sleep(0)
            finally:
                in_use -= got
                pool.release(got)

        tasks = []
        for k in range(400):
            tasks.append(asyncio.create_task(user(k)))
            if rng.random() < 0.3:
                await asyncio.sleep(0)
            if rng.random() < 0.05:
                rng.choice(tasks).cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        assert not wrong, wrong[:3]
        assert pool.free == total and not pool._waiters
        assert granted == [k for k in queued if k in granted]

    asyncio.run(main())


def test_retry_inline_slots_match_the_limiter_under_cuts_and_cancellation() -> None:
    """retry() takes and gives back the limiter's slots inline: under random request
    times, throttling (the limit cut), successes and cancelled requests, the in-flight
    count never passes the limit a slot was taken under, no request waits while a slot is
    free, and the count comes back to 0, with no waiter left."""
    from lakeshift.errors import ThrottledError

    rng = random.Random(3)

    async def main() -> None:
        limiter = EndpointLimiter("ep", 6, cooldown=0.0)
        policy = RetryPolicy(attempts=3, base=0.0, cap=0.0)
        most = 0

        async def request() -> int:
            nonlocal most
            most = max(most, limiter.inflight)
            assert limiter.inflight <= limiter.maximum
            # What lets retry take a slot inline by ``inflight < quick`` alone: whenever a
            # request waits, every slot is taken (never ahead of a waiter).
            assert limiter.inflight >= limiter.slots or all(
                f.done() for f in limiter.waiters), (limiter.inflight, limiter.slots)
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)
            if rng.random() < 0.05:
                raise ThrottledError("slow down", retry_after=0.0)
            return 1

        tasks = [asyncio.create_task(retry(request, policy, limiter)) for _ in range(300)]
        for _ in range(50):
            await asyncio.sleep(0)
            rng.choice(tasks).cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert limiter.inflight == 0 and not limiter.waiters
        assert 1 <= most <= 6

    asyncio.run(main())


def test_a_signer_signs_one_header_of_any_name_and_value_as_botocore() -> None:
    """The signer's one-header path against botocore: random header names around its
    bounds (host, the x-amz- names, upper case, unsigned ones) and values with runs of
    spaces, tabs and line breaks, one signer across seconds, tokens and payloads."""
    import hashlib

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from lakeshift.stores.s3 import sigv4

    rng = random.Random(11)
    # (Not the names the signer sets itself -- host, x-amz-date, ...: any given are
    # replaced by design, where botocore signs the given Host.)
    names = ["hos", "hosta", "host-", "host0", "i", "if-match", "If-Match", "range",
             "x-amz-acl", "x-amz-content", "x-amz-content-sha255", "x-amz-content-sha256a",
             "x-amz-checksum-crc32", "x-amz-copy-source", "x-amz-meta-a", "x-amz-",
             "user-agent", "te", "upgrade", "trailer", "transfer-encoding", "a", "zz",
             "Host-X", "x_amz", "x-amz-security-token-x"]
    pieces = ["a", " ", "  ", "\t", "é", '"', "*", "=", ",", "\n", "b c"]
    t0 = datetime(2026, 12, 2, 20, 0, 0)
    signers = {tok: sigv4.Signer(Credentials("AKID", "sek/ret+", tok), "eu-west-1")
               for tok in (None, "tok/en=")}
    for i in range(400):
        token = rng.choice([None, "tok/en="])
        at = t0 + timedelta(seconds=i // 50)
        name = rng.choice(names)
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 5)))
        body = rng.choice([b"", b"x"])
        headers = [(name, value)]
        request = AWSRequest(method="GET", url="http://127.0.0.1:9000/b/k",
                             headers=dict(headers), data=body)
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            S3SigV4Auth(Credentials("AKID", "sek/ret+", token), "s3",
                        "eu-west-1").add_auth(request)
        import calendar

        out = dict(signers[token].sign("GET", "127.0.0.1:9000", "/b/k", "", headers,
                                       hashlib.sha256(body).hexdigest(),
                                       now=float(calendar.timegm(at.timetuple()))))
        assert out["authorization"] == request.headers["Authorization"], (name, value)


def test_a_pool_without_workers_is_refused_not_left_hanging() -> None:
    """drive() with concurrency 0: the deque hand-off made the producer wait for room no
    worker would ever make (a hang; the asyncio.Queue before it was unbounded at 0 and did
    nothing, silently).  Callers validate --concurrency; the pool refuses it too."""

    async def work() -> Any:
        for i in range(10):
            yield i

    async def action(i: int) -> None:
        pass  # pragma: no cover

    with pytest.raises(ValueError, match="concurrency 0"):
        asyncio.run(asyncio.wait_for(drive(work(), action, 0), 5))
