"""The Shared Key signer against azure-storage-blob's (the service's reference client):
random header sets with names that sort differently under the service's collation than
under Python's ordinal order, odd values and query strings must sign the same."""

from __future__ import annotations

import base64
import random
import string

import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest
from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy

from lakeshift.stores.azure.rest import canonical_resource, shared_key_signature

ACCOUNT = "devstoreaccount1"
KEY = base64.b64encode(bytes(range(64))).decode()


def sdk_signature(method: str, url: str, headers: dict[str, str]) -> str:
    request = HttpRequest(method, url, headers=dict(headers))
    pipeline_request = PipelineRequest(request, PipelineContext(None))
    SharedKeyCredentialPolicy(ACCOUNT, KEY).on_request(pipeline_request)
    return str(request.headers["Authorization"])


def ours(method: str, url: str, headers: dict[str, str]) -> str:
    return shared_key_signature(ACCOUNT, base64.b64decode(KEY), method, url, headers)


_NAME_CHARS = string.ascii_lowercase + string.digits + "_-"
_VALUE_CHARS = string.ascii_letters + string.digits + " \t_-=+/?&%:;,.'\"()[]{}<>@!~*"


def _name(rng: random.Random) -> str:
    first = rng.choice(string.ascii_letters + "_")
    return first + "".join(rng.choice(_NAME_CHARS) for _ in range(rng.randint(0, 8)))


def _value(rng: random.Random) -> str:
    inner = "".join(rng.choice(_VALUE_CHARS) for _ in range(rng.randint(0, 20)))
    # HTTP drops whitespace at either end of a header value: lakeshift never sends such a one.
    return rng.choice(string.ascii_letters) + inner + rng.choice(string.digits)


def _query(rng: random.Random) -> str:
    # One value per name: the SDK keeps its query in a dict (repeats are tested below).
    pool = ["restype=container", rng.choice(["comp=list", "comp=block"]), "include=metadata",
            "maxresults=5000", "prefix=a%2Fb%20c", "marker=2%21abc%2B%3D", "blockid=YQ%3D%3D",
            "timeout=30", "delimiter=%2F"]
    return "&".join(rng.sample(pool, rng.randint(0, 4)))


@pytest.mark.parametrize("seed", range(300))
def test_random_requests_sign_like_the_sdk(seed: int) -> None:
    rng = random.Random(seed)
    headers = {"x-ms-version": "2023-11-03", "x-ms-date": "Mon, 30 Nov 2026 12:00:00 GMT",
               "Content-Length": str(rng.choice([0, 1, 4096])),
               "Content-Type": "application/octet-stream"}
    if rng.random() < 0.5:
        headers["Content-MD5"] = "1B2M2Y8AsgTpgAmY7PhCfg=="
    for _ in range(rng.randint(0, 8)):
        headers[f"x-ms-meta-{_name(rng)}"] = _value(rng)
    if rng.random() < 0.3:
        headers["x-ms-blob-type"] = "BlockBlob"
    path = rng.choice(["/c/a.txt", "/c/d%20e/%C3%BC.bin", "/c", "/"])
    query = _query(rng)
    url = f"http://127.0.0.1:10000/{ACCOUNT}{path}" + (f"?{query}" if query else "")
    method = rng.choice(["GET", "PUT", "HEAD", "DELETE"])
    assert ours(method, url, headers) == sdk_signature(method, url, headers)


@pytest.mark.parametrize("meta", [
    {"my_x2D_key": "v", "my1": "v"},          # S3 "my-key" as lakeshift encodes it
    {"a_1": "x", "a1": "y"},
    {"k": "two  spaces"},
    {"k": "a\ttab"},
    {"x-y": "1", "xy": "2", "x_y": "3", "x0": "4"},
])
def test_issue_cases_sign_like_the_sdk(meta: dict[str, str]) -> None:
    headers = {"x-ms-version": "2023-11-03", "x-ms-date": "Mon, 30 Nov 2026 12:00:00 GMT",
               "Content-Length": "3"}
    headers.update({f"x-ms-meta-{k}": v for k, v in meta.items()})
    url = f"http://127.0.0.1:10000/{ACCOUNT}/c/k"
    assert ours("PUT", url, headers) == sdk_signature("PUT", url, headers)


def test_canonical_resource_sorts_lowercases_and_decodes_query() -> None:
    url = "https://a.blob.core.windows.net/c/x%20y?comp=list&Prefix=a%2Bb&restype=container"
    assert canonical_resource("a", url) == \
        "/a/c/x%20y\ncomp:list\nprefix:a+b\nrestype:container"
    assert canonical_resource("a", "http://h/a/c?b=2&B=1") == "/a/a/c\nb:1,2"
