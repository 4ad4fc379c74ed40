"""Presigned S3 GETs (stores/s3/presign.py) against botocore's presigner: the same inputs
give the same URL, signature included (a differential test)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lakeshift.stores.s3.presign import presigned_get

KEYS = ["plain/key.bin", "with space/and+plus.csv", "ünïcødé/日本語.parquet",
        "sym!$&'()*,;=:@/x", "tilde~/percent%41/end/"]


def _botocore(endpoint: str, region: str, token: str | None, path_style: bool,
              key: str) -> str:
    import botocore.session
    from botocore.config import Config

    session = botocore.session.Session()
    client = session.create_client(
        "s3", region_name=region, endpoint_url=endpoint, aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        config=Config(signature_version="s3v4",
                      s3={"addressing_style": "path" if path_style else "virtual"}))
    url: str = client.generate_presigned_url("get_object", {"Bucket": "my-bucket", "Key": key},
                                             ExpiresIn=900)
    return url


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(("endpoint", "region", "token", "path_style"), [
    ("https://s3.eu-west-1.amazonaws.com", "eu-west-1", None, False),
    ("https://s3.us-east-1.amazonaws.com", "us-east-1", "FQoGZXIvYXdz//token+/=", False),
    ("http://127.0.0.1:9000", "us-east-1", None, True),
])
def test_presigned_get_equals_botocores(key: str, endpoint: str, region: str,
                                        token: str | None, path_style: bool) -> None:
    theirs = _botocore(endpoint, region, token, path_style, key)
    q = parse_qs(urlsplit(theirs).query)
    when = datetime.strptime(q["X-Amz-Date"][0] + "+0000", "%Y%m%dT%H%M%SZ%z")
    ours = presigned_get(endpoint, "my-bucket", key, region, "AKIDEXAMPLE",
                         "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token, 900, now=when,
                         path_style=path_style)
    a, b = urlsplit(ours), urlsplit(theirs)
    assert (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)
    assert parse_qs(a.query) == parse_qs(b.query)  # the signature included


def test_a_different_secret_gives_a_different_signature() -> None:
    when = datetime.fromisoformat("2026-01-02T03:04:05+00:00")
    one = presigned_get("http://127.0.0.1:9000", "b", "k", "us-east-1", "A", "s1", None, 60,
                        now=when)
    two = presigned_get("http://127.0.0.1:9000", "b", "k", "us-east-1", "A", "s2", None, 60,
                        now=when)
    sig: Any = lambda u: parse_qs(urlsplit(u).query)["X-Amz-Signature"][0]  # noqa: E731
    assert sig(one) != sig(two)
    assert "X-Amz-Expires=60" in one


def test_lifetime_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        presigned_get("https://s3.amazonaws.com", "b", "k", "us-east-1", "A", "s", None, 0)
