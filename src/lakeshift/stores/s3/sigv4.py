"""AWS Signature Version 4 for S3 requests sent through ``stores/wire/`` (header auth).

What botocore's ``S3SigV4Auth`` does for one request, without building an ``AWSRequest``
and firing its event hooks: the canonical request (the path exactly as sent -- S3 does not
normalise or re-encode it; the query sorted by encoded name then value; every header given
lower-cased, trimmed and sorted, plus ``host``, ``x-amz-date``, ``x-amz-content-sha256`` and
``x-amz-security-token`` when the credentials carry a session token), the string to sign and
the signature.  The signing key is an HMAC chain over (secret, day, region, service): it is
computed once per day and region, not per request.

``tests/unit/test_sigv4.py`` checks it against botocore's ``S3SigV4Auth``: the same time,
credentials, method, URL and headers give the same ``Authorization`` and ``x-amz-*``
headers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from functools import lru_cache
from operator import itemgetter
from typing import Any
from urllib.parse import quote, urlsplit

from lakeshift.redact import register_secret
from lakeshift.stores.keyed_mac import KeyedMAC

ALGORITHM = "AWS4-HMAC-SHA256"
#: x-amz-content-sha256 of a request without a body (GET, HEAD, DELETE).
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#: x-amz-content-sha256 of a streamed body that is not hashed first.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

#: Headers botocore leaves out of the signature (hop-by-hop, tracing): the same here.
_UNSIGNED = frozenset({"baggage", "connection", "expect", "keep-alive", "proxy-authenticate",
                       "proxy-authorization", "te", "traceparent", "tracestate", "trailer",
                       "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id"})
#: Headers the signer sets itself (any given are replaced, as botocore does on a retry).
_OWN = frozenset({"authorization", "x-amz-date", "x-amz-content-sha256",
                  "x-amz-security-token", "host"})


#: Text that ``quote_path`` leaves as it is (checked in one C call before quoting).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~/-]*")


def quote_path(text: str) -> str:
    """A key (or bucket/key) as S3 wants it in the path: every byte except the unreserved
    ``A-Z a-z 0-9 - _ . ~`` and ``/`` percent-encoded (UTF-8), as botocore serialises
    it.  Nothing is collapsed: ``//``, a leading ``/``, ``.`` and ``..`` segments stay."""
    if _UNRESERVED.fullmatch(text):
        return text  # (most keys: urllib's quote costs ~2 µs even when nothing changes)
    return quote(text, safe="/~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """The query string, encoded and sorted (by encoded name, then value) -- both the
    canonical form and what is sent, so the two cannot differ.  A name without a value
    (``?uploads``) is given as ``("uploads", "")`` and sent as ``uploads=``."""
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


def host_header(endpoint: str) -> str:
    """The Host header for ``endpoint`` (scheme://host[:port]) as botocore signs it: the
    host lower-cased, the port only when it is not the scheme's default."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return host


class Signer:
    """Signs S3 requests for one region with ``credentials`` (botocore ``Credentials``,
    refreshable or not: their frozen value is read for every request)."""

    def __init__(self, credentials: Any, region: str, service: str = "s3") -> None:
        self._credentials = credentials
        self.region = region
        self.service = service
        self._macs: dict[tuple[str, str], KeyedMAC] = {}
        #: Canonical headers and signed names of requests without headers of their own, by
        #: host, x-amz-date, payload hash and security token (at most 64 kept).
        self._canonical: dict[tuple[str, str, str, str | None], tuple[str, str]] = {}
        self._registered: str | None = None

    def signing_key(self, secret: str, day: str) -> bytes:
        """HMAC(HMAC(HMAC(HMAC("AWS4"+secret, day), region), service), "aws4_request")
        -- the region and service are this signer's (kept, set up, by ``_mac``)."""
        key = hmac.digest(f"AWS4{secret}".encode(), day.encode(), "sha256")
        for part in (self.region, self.service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        return key

    def _mac(self, secret: str, day: str) -> KeyedMAC:
        """The signing key of (secret, day), set up for HMACs (kept as ``signing_key``)."""
        if len(self._macs) >= 4:  # old days or rotated secrets
            self._macs.clear()
        self._macs[(secret, day)] = mac = KeyedMAC(self.signing_key(secret, day))
        return mac

    def sign(self, method: str, host: str, path: str, query: str,
             headers: Mapping[str, str] | Iterable[tuple[str, str]],
             payload: str = EMPTY_SHA256, now: float | None = None) -> list[tuple[str, str]]:
        """The headers to send: ``headers`` plus host, x-amz-date, x-amz-content-sha256,
        x-amz-security-token (temporary credentials) and authorization.

        ``path`` and ``query`` are exactly as sent (``quote_path``, ``canonical_query``);
        ``payload`` is the body's SHA-256 in hex, ``EMPTY_SHA256`` or
        ``UNSIGNED_PAYLOAD``; ``now`` (epoch seconds) is for tests."""
        frozen = self._credentials.get_frozen_credentials()
        secret, token = frozen.secret_key, frozen.token
        if secret != self._registered:
            register_secret(secret)
            register_secret(token)
            self._registered = secret
        second = int(time.time() if now is None else now)
        # (_amz_date's and signing_key's caches looked up here: no Python call per request
        # within the second and the day.)
        amz_date = _date_cache[1] if _date_cache[0] == second else _amz_date(second)
        day = amz_date[:8]
        # (A list, as the reads give, without an isinstance against the Mapping ABC: a
        # Python-level check per request.)
        items = headers if type(headers) is list else \
            headers.items() if isinstance(headers, Mapping) else headers
        out = [(k, v) for k, v in items if k.lower() not in _OWN]
        own = len(out)
        out.append(("host", host))
        out.append(("x-amz-date", amz_date))
        out.append(("x-amz-content-sha256", payload))
        if token:
            out.append(("x-amz-security-token", token))
        # A request without headers of its own (a listing page, a HEAD), or with one whose
        # name sorts between "host" and the x-amz- ones the signer adds (a copy's GET:
        # If-Match, its object's ETag; a Range): the canonical headers of host, date,
        # payload hash and token are those of the last such request within the second (all
        # four the key), made once; the one header of its own is folded and put in after
        # the host's line (~3K instructions, where the plan of all the names and folding
        # every value cost ~22K a signature).  The request's own header is never kept: a
        # copy's GET seldom meets its like.
        if own == 0 or (own == 1 and "host" < (name := out[0][0]) < "x-amz-content-sha256"
                        and name.islower() and name not in _UNSIGNED):
            given = (host, amz_date, payload, token)
            canonical = self._canonical.get(given)
            if canonical is None:
                canonical = _canonical(out[own:])
                if len(self._canonical) >= 64:
                    self._canonical.clear()
                self._canonical[given] = canonical
            lines, signed = canonical
            if own:
                cut = lines.index("\n") + 1  # (host's line: always the first)
                lines = f"{lines[:cut]}{name}:{_join_words(out[0][1].split())}\n{lines[cut:]}"
                signed = f"host;{name}{signed[4:]}"
        else:  # (_canonical, inline: no Python call per request)
            plan = _canonical_plan(tuple(map(_first, out)))
            if plan is not None:
                order, prefixes, signed = plan
                values = map(_join_words, map(str.split, map(_second, map(out.__getitem__,
                                                                             order))))
                lines = "\n".join(map(str.__add__, prefixes, values)) + "\n" if order else ""
            else:
                lines, signed = _canonical_headers(out)
        request = f"{method.upper()}\n{path}\n{query}\n{lines}\n{signed}\n{payload}"
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = (f"{ALGORITHM}\n{amz_date}\n{scope}\n"
                   f"{hashlib.sha256(request.encode()).hexdigest()}")
        # HMAC-SHA256 from the signing key's states, set up once a day (keyed_mac, inline).
        mac = self._macs.get((secret, day)) or self._mac(secret, day)
        inner = mac.inner.copy()
        inner.update(to_sign.encode())
        outer = mac.outer.copy()
        outer.update(inner.digest())
        signature = outer.digest().hex()
        out.append(("authorization", f"{ALGORITHM} Credential={frozen.access_key}/{scope}, "
                                     f"SignedHeaders={signed}, Signature={signature}"))
        return out


_first, _second = itemgetter(0), itemgetter(1)
_join_words = " ".join


def _canonical(headers: list[tuple[str, str]]) -> tuple[str, str]:
    """The canonical headers ("name:value\n" lines) and the signed header names of
    ``headers``: through the plan cached per list of header names (each value's
    whitespace folded, then the lines, in C-level maps), or ``_canonical_headers``."""
    plan = _canonical_plan(tuple(map(_first, headers)))
    if plan is None:
        return _canonical_headers(headers)
    order, prefixes, signed = plan
    values = map(_join_words, map(str.split, map(_second, map(headers.__getitem__, order))))
    return ("\n".join(map(str.__add__, prefixes, values)) + "\n" if order else ""), signed


def _canonical_headers(headers: list[tuple[str, str]]) -> tuple[str, str]:
    """The canonical headers ("name:value\n" lines, sorted by lowercased name, values of
    one name joined by commas, inner whitespace folded) and the signed header names."""
    canon: dict[str, list[str]] = {}
    for k, v in headers:
        name = k.lower()
        if name not in _UNSIGNED:
            canon.setdefault(name, []).append(" ".join(v.split()))
    names = sorted(canon)
    return "".join(f"{n}:{','.join(canon[n])}\n" for n in names), ";".join(names)


@lru_cache(maxsize=256)
def _canonical_plan(names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...],
                                                     str] | None:
    """For a request's header names (in the order given): the positions of the signed
    ones in canonical order, each one's "name:" prefix and the signed-headers string;
    None when two names differ only in case (``_canonical_headers`` joins their values).
    The same few name lists recur on every request: built once each."""
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        return None
    order = tuple(sorted((i for i, n in enumerate(lowered) if n not in _UNSIGNED),
                         key=lowered.__getitem__))
    signed = [lowered[i] for i in order]
    return order, tuple(f"{n}:" for n in signed), ";".join(signed)


_date_cache: tuple[int, str] = (-1, "")


def _amz_date(now: int) -> str:
    """``now`` (epoch seconds) as x-amz-date, formatted once a second."""
    global _date_cache
    if now != _date_cache[0]:
        _date_cache = (now, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)))
    return _date_cache[1]
