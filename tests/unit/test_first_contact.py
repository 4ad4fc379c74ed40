"""A store's first contact with its endpoint (stores/reach.py): tried again while no
connection opens, given up within its bounds, and the defaults are what docs/exit-codes.md says."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from pathlib import Path

import pytest

from lakeshift.errors import ConnectError, EndpointUnreachable, TransientError
from lakeshift.stores import http
from lakeshift.stores.reach import Endpoint, first_contact

ENDPOINT = Endpoint("S3", "http://127.0.0.1:9", "--s3-endpoint")


class Flaky:
    """Fails with each error of ``errors`` in turn, then answers "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def refused() -> ConnectError:
    return ConnectError("s3://b/: cannot connect to 127.0.0.1:9", "connection refused")


@pytest.fixture(autouse=True)
def _short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "CONNECT_SECONDS", 0.05)


def test_tried_again_until_it_answers_with_one_notice(caplog: pytest.LogCaptureFixture) -> None:
    fn = Flaky(refused(), refused())
    with caplog.at_level(logging.WARNING, logger="lakeshift"):
        assert asyncio.run(first_contact(fn, ENDPOINT)) == "ok"
    assert fn.calls == 3
    assert [r.getMessage() for r in caplog.records] == [
        "no answer from http://127.0.0.1:9 yet (connection refused); trying again…"]


def test_given_up_after_its_tries_with_one_line_naming_the_fix() -> None:
    fn = Flaky(*[refused() for _ in range(10)])
    with pytest.raises(EndpointUnreachable) as e:
        asyncio.run(first_contact(fn, ENDPOINT))
    assert fn.calls == http.FIRST_CONTACT_TRIES == 3
    assert re.fullmatch(r"cannot reach the S3 endpoint http://127\.0\.0\.1:9: connection "
                        r"refused \(3 tries in 0 s\): check --s3-endpoint, the network and "
                        r"any firewall", str(e.value)), str(e.value)
    assert e.value.exit_code == 2


def test_an_endpoint_that_answered_with_an_error_is_not_tried_here_again() -> None:
    fn = Flaky(TransientError("s3://b/: server error 500"))
    with pytest.raises(TransientError) as e:
        asyncio.run(first_contact(fn, ENDPOINT))
    assert fn.calls == 1 and not isinstance(e.value, EndpointUnreachable)


def test_an_untrusted_certificate_is_not_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    """The endpoint answered, with a certificate not trusted here (the reason any backend
    gives: wire.connect_reason): one line naming what to trust, at once, no notice."""
    from lakeshift.errors import UsageError
    from lakeshift.stores.wire import connect_reason

    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    fn = Flaky(ConnectError("s3://b/: cannot connect", connect_reason(cause)))
    with caplog.at_level(logging.WARNING, logger="lakeshift"), \
            pytest.raises(UsageError) as e:
        asyncio.run(first_contact(fn, ENDPOINT))
    assert fn.calls == 1 and not caplog.records
    assert not isinstance(e.value, EndpointUnreachable)
    assert str(e.value) == (
        "the S3 endpoint http://127.0.0.1:9 presented a certificate this machine does not "
        "trust (self-signed certificate): check --s3-endpoint, or trust its CA: add it to the "
        "system's trust store or set SSL_CERT_FILE to a PEM file that holds it")


def test_no_answer_is_given_up_at_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def silent() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(60)

    with caplog.at_level(logging.WARNING, logger="lakeshift"), \
            pytest.raises(EndpointUnreachable) as e:
        asyncio.run(first_contact(silent, ENDPOINT))
    assert calls == 1
    assert "no response within 0.2 s (1 try in 0 s)" in str(e.value)
    assert [r.getMessage() for r in caplog.records] == [
        "no answer from http://127.0.0.1:9 yet (connected, no response after 0.075 s); still "
        "waiting…"]


def test_the_defaults_are_what_the_exit_codes_page_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKESHIFT_CONNECT_SECONDS", raising=False)
    connect = http._connect_seconds()
    assert connect == 10
    budget = http.FIRST_CONTACT_FACTOR * connect
    page = Path(__file__).parents[2].joinpath("docs", "exit-codes.md").read_text()
    said = (f"at most {http.FIRST_CONTACT_TRIES} tries (each connect given "
            f"{connect:g} s) within {budget:g} s")
    assert said in " ".join(page.split()), said
    for value, seconds in (("1", 1.0), ("0.5", 0.5), ("x", 10.0), ("-1", 10.0), ("", 10.0)):
        monkeypatch.setenv("LAKESHIFT_CONNECT_SECONDS", value)
        assert http._connect_seconds() == seconds


def test_a_connect_error_crosses_a_process_boundary_intact() -> None:
    """A Dask task's error reaches the driver pickled (``plan --dask``: "a worker's error is
    the plan's"): ConnectError and wire's ConnectFailed take a ``reason`` that the default
    pickling (the message alone) left out, so unpickling raised TypeError in its place."""
    import pickle

    from lakeshift.stores.wire import ConnectFailed

    for e in (ConnectError("list s3://b/: cannot connect", "connection refused"),
              ConnectFailed("cannot connect to 127.0.0.1:9", "connection refused")):
        e.__dict__["noted"] = 1  # state set after construction (a retry's) comes along
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e)
        assert (str(back), back.reason, back.__dict__) == (str(e), e.reason, e.__dict__)
    assert isinstance(pickle.loads(pickle.dumps(ConnectError("m", "r"))), TransientError)
