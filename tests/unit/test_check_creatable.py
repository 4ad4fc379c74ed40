"""check's judgement of whether the copy may create a missing bucket or container, from the
credential's kind alone (check creates nothing to find out): engine/check.py _creatable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest

from lakeshift.engine.check import _creatable
from lakeshift.stores.base import Store
from lakeshift.urls import parse_url


@dataclass
class _Settings:
    kind: str = "key"
    sas: str | None = None
    credentials: Any = None


@dataclass
class _Store:
    url: Any
    settings: _Settings


def _store(url: str, **kw: Any) -> Store:
    return cast(Store, _Store(parse_url(url), _Settings(**kw)))


@pytest.mark.parametrize(("kw", "may"), [
    ({"kind": "key"}, True),
    ({"kind": "token"}, True),
    ({"kind": "sas", "sas": "?sv=2022-11-02&ss=b&srt=sco&sp=rwdlac&sig=x"}, True),
    ({"kind": "sas", "sas": "sv=2022-11-02&ss=b&srt=co&sp=rl&sig=x"}, False),
    ({"kind": "sas", "sas": "sv=2022-11-02&sr=c&sp=racwdl&sig=x"}, False),  # a service SAS
])
def test_azure_credentials(kw: dict[str, Any], may: bool) -> None:
    got, how = _creatable(_store("az://box/dst/", **kw))
    assert got is may, how
    assert "sig=" not in how  # (the SAS itself is never said)


def test_s3_keys_may_and_anonymous_requests_cannot() -> None:
    assert _creatable(_store("s3://box/", credentials=object()))[0] is True
    assert _creatable(_store("s3://box/", credentials=None)) == (
        False, "anonymous requests (--s3-anonymous) cannot create a bucket")
