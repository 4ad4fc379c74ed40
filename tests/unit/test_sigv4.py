"""stores/s3/sigv4.py against botocore's S3SigV4Auth (a differential test): the same frozen
time, credentials, region, method, URL and headers give the same Authorization header and
the same x-amz-* headers, over a table of awkward keys, queries and headers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials, RefreshableCredentials

from lakeshift.redact import redact
from lakeshift.stores.s3 import sigv4

NOW = datetime(2026, 12, 1, 14, 5, 33)
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEJr//////////wEaDOq+token/with=odd+chars"

KEYS = ["plain/key.bin", "with space/and+plus.csv", "ünïcødé/日本語.parquet",
        "percent%41/tilde~/eq=amp&", "double//slash", "/leading/slash", "trailing.",
        "dots/./and/../x", "sym!$'()*,;:@[]{}|^`\"<>\\", "end/", "a\tb", "#hash?query"]
ENDPOINTS = [("http://127.0.0.1:5000", True), ("https://s3.eu-west-1.amazonaws.com", False),
             ("https://minio.example:443", True), ("http://LOCALHOST:80", True)]
QUERIES: list[list[tuple[str, str]]] = [
    [], [("uploads", "")], [("partNumber", "1")],
    [("versionId", "3/L4kqtJl+40=xyz"), ("response-content-type", "text/plain; charset=ü")],
    [("b", "2"), ("a", "1"), ("a", "0"), ("list-type", "2"), ("prefix", "x y/")],
]
HEADERS: list[dict[str, str]] = [
    {}, {"Range": "bytes=0-1048575"}, {"If-Match": '"9b2cf535f27731c974343645a3985328"'},
    {"Range": "bytes=5-9", "If-Match": '"abc-2"', "x-amz-request-payer": "requester"},
    {"x-amz-checksum-mode": "ENABLED", "X-Amz-Meta-Note": "  two   spaces  ",
     "User-Agent": "lakeshift"},
]


def _botocore(method: str, url: str, params: list[tuple[str, str]], headers: dict[str, str],
              region: str, token: str | None, unsigned_payload: bool) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers=dict(headers))
    if params:
        request.params = params
    if unsigned_payload:
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    creds = Credentials("AKIDEXAMPLE", SECRET, token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        S3SigV4Auth(creds, "s3", region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()
            if k.lower().startswith("x-amz-") or k.lower() == "authorization"}


def _ours(method: str, endpoint: str, path: str, params: list[tuple[str, str]],
          headers: dict[str, str], region: str, token: str | None,
          unsigned_payload: bool) -> tuple[str, dict[str, str]]:
    signer = sigv4.Signer(Credentials("AKIDEXAMPLE", SECRET, token), region)
    query = sigv4.canonical_query(params)
    payload = sigv4.UNSIGNED_PAYLOAD if unsigned_payload else sigv4.EMPTY_SHA256
    out = signer.sign(method, sigv4.host_header(endpoint), path, query, headers, payload,
                      now=_epoch(NOW))
    sent = {k.lower(): v for k, v in out
            if k.lower().startswith("x-amz-") or k.lower() == "authorization"}
    return query, sent


def _epoch(naive_utc: datetime) -> float:
    import calendar

    return float(calendar.timegm(naive_utc.timetuple()))


def _cases() -> list[tuple[Any, ...]]:
    out = []
    combos = itertools.product(KEYS, ENDPOINTS, range(len(QUERIES)), range(len(HEADERS)))
    for i, (key, (endpoint, path_style), q, h) in enumerate(combos):
        if i % 3:  # a third of the product: every key still meets every endpoint
            continue
        token = TOKEN if i % 2 else None
        method = ("GET", "HEAD", "PUT", "DELETE")[i % 4]
        region = ("us-east-1", "eu-west-1")[i % 2]
        out.append((method, key, endpoint, path_style, QUERIES[q], HEADERS[h], region, token,
                    i % 5 == 0))
    return out


@pytest.mark.parametrize(("method", "key", "endpoint", "path_style", "params", "headers",
                          "region", "token", "unsigned"), _cases())
def test_signature_equals_botocores(method: str, key: str, endpoint: str, path_style: bool,
                                    params: list[tuple[str, str]], headers: dict[str, str],
                                    region: str, token: str | None, unsigned: bool) -> None:
    bucket = "my-bucket"
    if path_style:
        path = sigv4.quote_path(f"/{bucket}/{key}")
        url = f"{endpoint}{path}"
    else:
        scheme, host = endpoint.split("://")
        path = "/" + sigv4.quote_path(key)
        endpoint = f"{scheme}://{bucket}.{host}"
        url = f"{endpoint}{path}"
    theirs = _botocore(method, url, params, headers, region, token, unsigned)
    _, ours = _ours(method, endpoint, path, params, headers, region, token, unsigned)
    assert ours == theirs


def test_the_query_botocore_builds_from_params_is_the_one_sent() -> None:
    """botocore signs request.params encoded and sorted; the same string is what wire
    sends, so a query given in the URL must canonicalise to itself."""
    for params in QUERIES:
        query = sigv4.canonical_query(params)
        url = "http://127.0.0.1:5000/b/k" + (f"?{query}" if query else "")
        from_params = _botocore("GET", "http://127.0.0.1:5000/b/k", params, {}, "us-east-1",
                                None, False)
        from_url = _botocore("GET", url, [], {}, "us-east-1", None, False)
        assert from_params == from_url


def test_key_path_is_encoded_as_botocore_serialises_it() -> None:
    """botocore's own client (not only its signer) puts the key in the URL this way."""
    import botocore.session

    session = botocore.session.Session()
    client = session.create_client("s3", region_name="us-east-1",
                                   endpoint_url="http://127.0.0.1:1",
                                   aws_access_key_id="A", aws_secret_access_key="S" * 20)
    seen: list[str] = []

    def grab(request: Any, **_: Any) -> None:
        seen.append(request.url)
        raise RuntimeError("stop")

    client.meta.events.register("before-send.s3", grab)
    for key in KEYS:
        with pytest.raises(RuntimeError):
            client.get_object(Bucket="b", Key=key)
        assert seen[-1] == "http://127.0.0.1:1" + sigv4.quote_path(f"/b/{key}")
    client.close()


def test_signing_key_is_kept_per_day_and_refreshed_credentials_are_used() -> None:
    calls = []

    def refresh() -> dict[str, str]:
        calls.append(1)
        return {"access_key": f"AK{len(calls)}", "secret_key": f"secret-number-{len(calls)}",
                "token": f"token-number-{len(calls)}",
                # inside botocore's mandatory refresh window: refreshed on every read
                "expiry_time": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()}

    creds = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    signer = sigv4.Signer(creds, "us-east-1")
    one = dict(signer.sign("GET", "h", "/b/k", "", {}, now=_epoch(NOW)))
    two = dict(signer.sign("GET", "h", "/b/k", "", {}, now=_epoch(NOW)))
    assert one["authorization"] != two["authorization"]
    assert two["x-amz-security-token"] != one["x-amz-security-token"]
    assert two["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={creds.get_frozen_credentials().access_key[:2]}")
    # The secrets read are registered: no message can carry them.
    assert "secret-number-2" not in redact("oops secret-number-2 token-number-2")
    # The HMAC chain runs once a day (4 HMACs), and so does setting the signing key up for
    # the signatures (keyed_mac.KeyedMAC): a request then takes no hmac.digest at all (it
    # took one, the signature's, before its key's states were kept).
    import hmac

    calls: list[int] = []
    real = hmac.digest

    def counting(*a: Any) -> bytes:
        calls.append(1)
        return real(*a)

    fixed = sigv4.Signer(Credentials("A", "same-secret", None), "us-east-1")
    with mock.patch("hmac.digest", counting):
        fixed.sign("GET", "h", "/b/k", "", {}, now=_epoch(NOW))
        assert len(calls) == 4
        fixed.sign("GET", "h", "/b/x", "", {}, now=_epoch(NOW) + 3600)
        assert len(calls) == 4
        fixed.sign("GET", "h", "/b/x", "", {}, now=_epoch(NOW) + 86400)  # the next day
        assert len(calls) == 8


def test_host_header_drops_default_ports_only() -> None:
    assert sigv4.host_header("https://s3.amazonaws.com:443") == "s3.amazonaws.com"
    assert sigv4.host_header("http://LocalHost:80") == "localhost"
    assert sigv4.host_header("http://127.0.0.1:5000") == "127.0.0.1:5000"
    assert sigv4.host_header("https://[::1]:9000") == "[::1]:9000"


def test_names_repeated_in_another_case_are_signed_as_botocore_joins_them() -> None:
    """Headers whose names differ only in case are one canonical header, values joined by
    commas in the order given (the cached plan does not apply; the general path does)."""
    headers = [("X-Amz-Meta-Dup", "a  b"), ("If-Match", '"e"'), ("x-amz-meta-dup", " c ")]
    request = AWSRequest(method="GET", url="http://127.0.0.1:5000/b/k",
                         headers={"X-Amz-Meta-Dup": "a  b", "If-Match": '"e"'})
    request.headers["x-amz-meta-dup"] = " c "  # (HTTPHeaders adds a second value)
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        S3SigV4Auth(Credentials("AKIDEXAMPLE", SECRET), "s3", "us-east-1").add_auth(request)
    signer = sigv4.Signer(Credentials("AKIDEXAMPLE", SECRET), "us-east-1")
    out = dict(signer.sign("GET", "127.0.0.1:5000", "/b/k", "", headers, now=_epoch(NOW)))
    assert out["authorization"] == request.headers["Authorization"]
    assert "x-amz-meta-dup" in out["authorization"]


def test_signing_costs_no_python_step_per_header() -> None:
    """The canonical headers come from a plan cached per list of header names and C-level
    maps: 12 more headers cost at most one call each (the lowering of the given names),
    not the ~7 of a loop that lowers, folds, groups and formats each one."""
    import sys

    signer = sigv4.Signer(Credentials("AKIDEXAMPLE", SECRET), "us-east-1")
    few = [("Range", "bytes=0-9")]
    many = few + [(f"x-amz-meta-k{i}", f"v  {i}") for i in range(12)]

    def cost(headers: list[tuple[str, str]]) -> int:
        signer.sign("GET", "h", "/b/k", "", headers)  # (the plan: built once)
        calls = 0

        def prof(frame: Any, event: str, arg: object) -> None:
            nonlocal calls
            calls += event in ("call", "c_call")

        sys.setprofile(prof)
        try:
            signer.sign("GET", "h", "/b/k", "", headers)
        finally:
            sys.setprofile(None)
        return calls

    assert cost(many) - cost(few) <= 12 * 1.5, (cost(few), cost(many))


def test_one_signer_signs_a_run_of_requests_as_botocore_does() -> None:
    """The canonical headers kept per list of headers (names and values) never stand for
    other values: one signer, requests whose header names recur with other values (ranges,
    If-Match), the same headers again, more than the 64 kept, across seconds and days;
    each signature is botocore's for the same request."""
    signer = sigv4.Signer(Credentials("AKIDEXAMPLE", SECRET, TOKEN), "eu-west-1")
    requests: list[tuple[dict[str, str], datetime]] = []
    for i in range(80):
        at = NOW + timedelta(seconds=i // 7, days=i // 40)
        headers = [{}, {"Range": f"bytes={i}-{i + 9}"}, {"Range": "bytes=0-9"},
                   {"If-Match": f'"{i:032x}"', "Range": f"bytes=0-{i}"},
                   {"X-Amz-Meta-Note": f"  two   spaces {i % 3} "}][i % 5]
        requests.append((headers, at))
    requests += requests[:10]  # (the same again: from what is kept, when it still is)
    for headers, at in requests:
        request = AWSRequest(method="GET", url="http://127.0.0.1:5000/b/k",
                             headers=dict(headers))
        with mock.patch("botocore.auth.get_current_datetime", return_value=at):
            S3SigV4Auth(Credentials("AKIDEXAMPLE", SECRET, TOKEN), "s3",
                        "eu-west-1").add_auth(request)
        out = dict(signer.sign("GET", "127.0.0.1:5000", "/b/k", "", headers, now=_epoch(at)))
        assert out["authorization"] == request.headers["Authorization"], (headers, at)
        assert out["x-amz-date"] == request.headers["X-Amz-Date"]


def test_a_get_like_the_last_one_folds_no_header_again() -> None:
    """A GET with the same headers within the same second (every small object's GET: host,
    date, payload hash) reuses its canonical headers: neither their plan is looked up nor
    any value's whitespace folded again (~15k instructions a request); other values of
    the same names are made anew.  A copy's GET (If-Match: one header of its own between
    host and x-amz-) takes the same kept lines and folds only its own header (callgrind:
    a signature with If-Match 69.1K -> 57.6K instructions; 46.6K without)."""
    signer = sigv4.Signer(Credentials("AKIDEXAMPLE", SECRET, TOKEN), "us-east-1")
    planned: list[tuple[str, ...]] = []
    real = sigv4._canonical_plan

    def counting(names: tuple[str, ...]) -> Any:
        planned.append(names)
        return real(names)

    with mock.patch.object(sigv4, "_canonical_plan", counting):
        signer.sign("GET", "h", "/b/first", "", [], now=_epoch(NOW))
        assert len(planned) == 1
        signer.sign("GET", "h", "/b/second", "", [], now=_epoch(NOW))
        signer.sign("GET", "h", "/b/third", "", [], now=_epoch(NOW) + 0.5)
        assert len(planned) == 1
        signer.sign("GET", "h", "/b/fourth", "", [], now=_epoch(NOW) + 1)  # another date
        # (One header of its own between host and x-amz-: the kept lines, its own folded
        # in; no plan.  Two of them, or one sorting elsewhere: the plan of all the names.)
        signer.sign("GET", "h", "/b/k", "", [("range", "bytes=0-9")], now=_epoch(NOW) + 1)
        assert len(planned) == 2
        signer.sign("GET", "h", "/b/k", "", [("range", "bytes=0-9"), ("if-match", '"e"')],
                    now=_epoch(NOW) + 1)
        signer.sign("GET", "h", "/b/k", "", [("x-amz-request-payer", "requester")],
                    now=_epoch(NOW) + 1)
        assert len(planned) == 4


def test_one_signer_within_a_second_signs_each_host_token_and_payload_as_botocore() -> None:
    """The canonical headers kept per list of headers never stand for another host, security
    token or payload hash: one signer, the same given headers within one second, the host,
    the credentials' token (refreshed under it) and the body changing; each signature is
    botocore's for the same request."""
    import hashlib

    class Rotating:
        def __init__(self) -> None:
            self.token: str | None = TOKEN

        def get_frozen_credentials(self) -> Any:
            return Credentials("AKIDEXAMPLE", SECRET, self.token).get_frozen_credentials()

    creds = Rotating()
    signer = sigv4.Signer(creds, "eu-west-1")
    hosts = ["http://127.0.0.1:5000", "http://127.0.0.1:5001", "http://localhost:5000"]
    for token, endpoint, body in itertools.product([TOKEN, "another/token=", None], hosts,
                                                  [b"", b"one", b"two"]):
        creds.token = token
        headers = {"Range": "bytes=0-9"}
        request = AWSRequest(method="PUT", url=f"{endpoint}/b/k", headers=dict(headers),
                             data=body)
        with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
            S3SigV4Auth(Credentials("AKIDEXAMPLE", SECRET, token), "s3",
                        "eu-west-1").add_auth(request)
        out = dict(signer.sign("PUT", sigv4.host_header(endpoint), "/b/k", "", headers,
                               hashlib.sha256(body).hexdigest(), now=_epoch(NOW)))
        assert out["authorization"] == request.headers["Authorization"], (token, endpoint, body)


def test_requests_with_headers_of_their_own_are_not_kept() -> None:
    """A copy's GET carries If-Match (its object's ETag) and often a Range: a request like
    it seldom comes again, so its own headers are never kept -- only the canonical lines of
    host, date, payload hash and token, as a request without headers of its own (a listing
    page, a HEAD) keeps them, by those four."""
    signer = sigv4.Signer(Credentials("AKIDEXAMPLE", SECRET, TOKEN), "us-east-1")
    for i in range(10):
        signer.sign("GET", "h", f"/b/k{i}", "", [("if-match", f'"{i:032x}"')], now=_epoch(NOW))
        signer.sign("GET", "h", f"/b/k{i}", "", {"Range": f"bytes=0-{i}"}, now=_epoch(NOW))
    assert len(signer._canonical) == 1
    (lines, signed), = signer._canonical.values()
    assert "if-match" not in lines and "range" not in lines and signed == \
        "host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
    signer.sign("GET", "h", "/b", "list-type=2", [], now=_epoch(NOW))
    signer.sign("HEAD", "h", "/b/k", "", [], now=_epoch(NOW))
    assert len(signer._canonical) == 1


def test_one_header_of_its_own_is_signed_as_botocore_signs_it() -> None:
    """A request with one header of its own whose name sorts between host and the x-amz-
    headers (If-Match, Range: folded into the kept lines) and others beside it (names
    sorting before host or after x-amz-, upper case, unsigned names, two headers, odd
    whitespace), in any order within a second, with and without a token and a payload:
    each signature is botocore's for the same request."""
    import hashlib

    one = [("if-match", '"9b2cf535f27731c974343645a3985328"'), ("range", "bytes=0-4095"),
           ("if-match", '  "a   b"  '), ("if-none-match", "*"), ("host2", "x"),
           ("accept", "x"), ("content-md5", "AAAA"), ("x-amz-checksum-mode", "ENABLED"),
           ("x-amz-request-payer", "requester"), ("zzz", "z"), ("If-Match", '"up"'),
           ("user-agent", "lakeshift"), ("te", "trailers"), ("if-match", ""),
           ("x-amz-content-sha256-x", "v"), ("i", "\t tab\there ")]
    cases = [[h] for h in one] + [[one[0], one[1]], [one[1], one[0]], []]
    for token in (TOKEN, None):
        signer = sigv4.Signer(Credentials("AKIDEXAMPLE", SECRET, token), "eu-west-1")
        for n, headers in enumerate(cases * 2):
            body = b"" if n % 3 else b"body"
            at = NOW + timedelta(seconds=n // 9)
            request = AWSRequest(method="PUT" if body else "GET",
                                 url="http://127.0.0.1:5000/b/k", headers=dict(headers),
                                 data=body)
            with mock.patch("botocore.auth.get_current_datetime", return_value=at):
                S3SigV4Auth(Credentials("AKIDEXAMPLE", SECRET, token), "s3",
                            "eu-west-1").add_auth(request)
            out = dict(signer.sign("PUT" if body else "GET", "127.0.0.1:5000", "/b/k", "",
                                   list(headers), hashlib.sha256(body).hexdigest(),
                                   now=_epoch(at)))
            assert out["authorization"] == request.headers["Authorization"], (headers, token)
