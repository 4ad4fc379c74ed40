"""stores/s3/listing.py against botocore (a differential test): the same ListObjectsV2 and
GetBucketEncryption response bodies go through botocore's S3 client (its parser and its
handlers, the URL-decoding of keys among them, answered by a stub instead of a server) and
through ours, and give the same fields; for the same call both send the same query."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit
from xml.sax.saxutils import escape

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse

from lakeshift.stores.s3 import listing
from lakeshift.stores.s3.listing import list_query, parse_encryption, parse_list

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
KEYS = ["plain/key.bin", "with space/and+plus.csv", "ünïcødé/日本語.parquet", "amp&lt<gt>'\"",
        "percent%41/%2F%zz", "dir/", "double//slash", "/leading", "dots/./../x", "a\tb",
        "ctl\x01\x1f/x", "tail ", "#hash?query=1", "~tilde!$*()"]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def _botocore(body: bytes, status: int = 200, **kw: Any) -> tuple[dict[str, Any], list[Any]]:
    """botocore's parsed ListObjectsV2 (or the error it raised) for ``body``, and the
    query it sent."""
    session = botocore.session.Session()
    client = session.create_client("s3", region_name="us-east-1",
                                   endpoint_url="http://127.0.0.1:9",
                                   aws_access_key_id="AKIDEXAMPLE",
                                   aws_secret_access_key="not-a-secret")
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.extend(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
        return AWSResponse(request.url, status, {"Content-Type": "application/xml"},
                           _Raw(body))

    client.meta.events.register("before-send.s3.*", answer)
    try:
        if kw.pop("_op", "") == "encryption":
            return client.get_bucket_encryption(Bucket="bkt"), sent
        return client.list_objects_v2(Bucket="bkt", **kw), sent
    finally:
        client.close()


def _body(keys: list[str], prefixes: list[str] = (), encoded: bool = True,  # type: ignore[assignment]
          truncated: bool = False, token: str | None = None, ns: str = NS,
          modified: str = "2026-12-01T14:05:33.000Z", extra: str = "",
          prefix: str = "") -> bytes:
    enc = (lambda s: escape(quote_plus(s, safe="/"))) if encoded else escape
    parts = [f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult {ns}>',
             f"<Name>bkt</Name><Prefix>{enc(prefix)}</Prefix>"
             f"<KeyCount>{len(keys) + len(prefixes)}</KeyCount><MaxKeys>1000</MaxKeys>"]
    if encoded:
        parts.append("<EncodingType>url</EncodingType>")
    parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    if token:
        parts.append(f"<ContinuationToken>prev</ContinuationToken>"
                     f"<NextContinuationToken>{escape(token)}</NextContinuationToken>")
    for i, k in enumerate(keys):
        parts.append(f"<Contents><Key>{enc(k)}</Key><LastModified>{modified}</LastModified>"
                     f"<ETag>&quot;{i:032x}&quot;</ETag><ChecksumAlgorithm>CRC32"
                     f"</ChecksumAlgorithm><Size>{i * 1000}</Size>"
                     f"<Owner><ID>abc</ID><DisplayName>me</DisplayName></Owner>"
                     + (f"<StorageClass>{'GLACIER' if i % 3 else 'STANDARD'}</StorageClass>"
                        if i % 4 else "") + "</Contents>")
    for p in prefixes:
        parts.append(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>")
    parts.append(extra + "</ListBucketResult>")
    return "".join(parts).encode()


def _same(body: bytes) -> None:
    theirs, _ = _botocore(body)
    ours = parse_list(body)
    assert [(o.key, o.size, o.last_modified, o.etag, o.storage_class) for o in ours.contents] \
        == [(o["Key"], o["Size"], o["LastModified"], o["ETag"], o.get("StorageClass"))
            for o in theirs.get("Contents", [])]
    for o in ours.contents:
        assert o.last_modified is not None and o.last_modified.utcoffset() is not None
    assert ours.common_prefixes == [p["Prefix"] for p in theirs.get("CommonPrefixes", [])]
    assert ours.is_truncated == theirs["IsTruncated"]
    assert ours.next_token == theirs.get("NextContinuationToken")
    assert ours.key_count == theirs.get("KeyCount")


@pytest.mark.parametrize("encoded", [True, False])
def test_awkward_keys_parse_as_botocore_parses_them(encoded: bool) -> None:
    keys = KEYS if encoded else [k for k in KEYS if "\x01" not in k and "\t" not in k]
    _same(_body(keys, ["with space/", "日本/", "a+b/", "&amp;/"], encoded=encoded,
                prefix="a b+c&"))


@pytest.mark.parametrize("ns", [NS, ""])
def test_pages_empty_truncated_and_without_a_namespace(ns: str) -> None:
    _same(_body([], ns=ns))
    _same(_body(["k1", "k2"], truncated=True, ns=ns,
                token="1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=&<x>"))
    _same(_body([], ["only/", "prefixes/"], truncated=True, token="t", ns=ns))


@pytest.mark.parametrize("modified", ["2026-12-01T14:05:33.000Z", "2026-12-01T14:05:33Z",
                                      "2024-02-29T23:59:59.999999Z", "2026-12-01T14:05:33+02:00",
                                      "2026-12-01T14:05:33.5Z", "1970-01-01T00:00:00.000Z"])
def test_last_modified_is_the_same_instant(modified: str) -> None:
    _same(_body(["k"], modified=modified))


@pytest.mark.parametrize("text", ["2026-12-01T14:05:33.1234567Z", "2026-12-01 14:05:33",
                                  "Tue, 01 Dec 2026 14:05:33 GMT", "2026-12-01T14:05:33z",
                                  "2026-12-01"])
def test_odd_timestamps_are_botocores(text: str) -> None:
    from botocore.utils import parse_timestamp as botocore_parse

    assert listing.parse_timestamp(text) == botocore_parse(text)


def test_unknown_elements_and_owner_do_not_disturb() -> None:
    _same(_body(["k"], extra="<StartAfter>a</StartAfter><Delimiter>/</Delimiter>"
                "<Future><Key>not-an-object</Key></Future>"))


def test_what_is_not_a_listing_is_an_error() -> None:
    whole = _body(["k1", "k2"])
    with pytest.raises(ValueError):
        parse_list(whole[:len(whole) // 2])  # cut short
    with pytest.raises(ValueError):
        parse_list(b"<?xml version='1.0'?><Error><Code>SlowDown</Code></Error>")
    with pytest.raises(ValueError):
        parse_list(b"")


CALLS: list[dict[str, Any]] = [
    {"Prefix": ""}, {"Prefix": "a b/+c&", "MaxKeys": 1},
    {"Prefix": "d/", "Delimiter": "/", "ContinuationToken": "tok/+=&x"},
    {"Prefix": "ü/", "StartAfter": "ü/a b"},
]


@pytest.mark.parametrize("call", CALLS)
def test_the_query_is_botocores(call: dict[str, Any]) -> None:
    _, sent = _botocore(_body([]), **call)
    ours = list_query(call["Prefix"], call.get("MaxKeys", 1000), call.get("ContinuationToken"),
                      call.get("StartAfter"), call.get("Delimiter"))
    if "MaxKeys" not in call:  # (botocore sends none unless asked; we always do)
        ours = [p for p in ours if p[0] != "max-keys"]
    assert sorted(ours) == sorted(sent)


ENCRYPTION = [
    b'<ServerSideEncryptionConfiguration ' + NS.encode() + b'><Rule>'
    b'<ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm>'
    b'<KMSMasterKeyID>arn:aws:kms:us-east-1:1:key/x</KMSMasterKeyID>'
    b'</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule>'
    b'</ServerSideEncryptionConfiguration>',
    b'<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>'
    b'<SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>'
    b'<Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms:dsse</SSEAlgorithm>'
    b'</ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>',
    b'<ServerSideEncryptionConfiguration ' + NS.encode() + b'/>',
]


@pytest.mark.parametrize("body", ENCRYPTION)
def test_bucket_encryption_is_botocores(body: bytes) -> None:
    theirs, sent = _botocore(body, _op="encryption")
    rules = theirs.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    assert parse_encryption(body) == {
        r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules}
    assert sent == [("encryption", "")]


def test_a_long_page_parses_the_same() -> None:
    keys = [f"{d}/{''.join(c)}-{i}.parquet" for i, (d, c) in enumerate(
        itertools.product(["x", "y y", "ü"], itertools.permutations("ab+&c", 3)))] * 5
    _same(_body(keys, truncated=True, token="next"))
    assert isinstance(parse_list(_body(keys)).contents[0].last_modified, datetime)


def _boto_head(headers: dict[str, str]) -> dict[str, Any]:
    session = botocore.session.Session()
    client = session.create_client("s3", region_name="us-east-1",
                                   endpoint_url="http://127.0.0.1:9",
                                   aws_access_key_id="AKIDEXAMPLE",
                                   aws_secret_access_key="not-a-secret")

    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, headers, _Raw(b""))

    client.meta.events.register("before-send.s3.*", answer)
    try:
        return dict(client.head_object(Bucket="bkt", Key="k"))
    finally:
        client.close()


def _old_exists(key: str, resp: dict[str, Any]) -> Any:
    """What S3Store.exists made of botocore's head_object (before it went through wire)."""
    from lakeshift.model import ObjectInfo
    from lakeshift.stores.props import unquote_etag
    from lakeshift.stores.s3.reads import OPAQUE_ETAG_SSE, md5_from_etag

    etag = unquote_etag(resp.get("ETag"))
    opaque = (resp.get("ServerSideEncryption") in OPAQUE_ETAG_SSE
              or resp.get("SSECustomerAlgorithm"))
    return ObjectInfo(key, int(resp["ContentLength"]), resp.get("LastModified"), etag,
                      None if opaque else md5_from_etag(etag), key.endswith("/"),
                      resp.get("Metadata"))


HEADS: list[dict[str, str]] = [
    {"Content-Length": "4096", "ETag": '"5d41402abc4b2a76b9719d911017c592"',
     "Last-Modified": "Tue, 01 Dec 2026 14:05:33 GMT", "Content-Type": "text/plain",
     "x-amz-meta-Owner": "me", "x-amz-meta-two-words": "a  b", "X-Amz-Meta-Upper": "U"},
    {"Content-Length": "0", "ETag": '"d41d8cd98f00b204e9800998ecf8427e"',
     "Last-Modified": "Sat, 29 Feb 2024 23:59:59 GMT"},
    {"Content-Length": "12582912", "ETag": '"745a0ee26a47605380d3ea370bc281db-3"',
     "Last-Modified": "Thu, 01 Jan 1970 00:00:00 GMT"},
    {"Content-Length": "7", "ETag": '"5d41402abc4b2a76b9719d911017c592"',
     "Last-Modified": "Tue, 01 Dec 2026 14:05:33 GMT",
     "x-amz-server-side-encryption": "aws:kms"},
    {"Content-Length": "7", "ETag": '"5d41402abc4b2a76b9719d911017c592"',
     "Last-Modified": "Tue, 01 Dec 2026 14:05:33 GMT",
     "x-amz-server-side-encryption": "AES256"},
    {"Content-Length": "7", "ETag": '"5d41402abc4b2a76b9719d911017c592"',
     "Last-Modified": "Tue, 01 Dec 2026 14:05:33 GMT",
     "x-amz-server-side-encryption-customer-algorithm": "AES256"},
    {"Content-Length": "7", "ETag": 'W/"not-hex-at-all-not-hex-at-all!"',
     "Last-Modified": "Tue, 01 Dec 2026 14:05:33 GMT"},
]


@pytest.mark.parametrize("headers", HEADS)
@pytest.mark.parametrize("key", ["k", "dir/"])
def test_a_head_gives_what_botocores_head_gave(headers: dict[str, str], key: str) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from lakeshift.stores.s3.reads import info_from_head

    ours = info_from_head(key, CIMultiDictProxy(CIMultiDict(headers)))
    theirs = _old_exists(key, _boto_head(headers))
    assert ours == theirs


def _old_info(o: Any, etag_md5: bool) -> Any:
    """The ObjectInfo S3Store.list_page made of each ``Listed`` (its ``_info``) before the
    parse made the ObjectInfos itself."""
    from lakeshift.model import ObjectInfo
    from lakeshift.stores.props import unquote_etag
    from lakeshift.stores.s3.reads import md5_from_etag

    etag = unquote_etag(o.etag)
    return ObjectInfo(o.key, o.size, o.last_modified, etag,
                      md5_from_etag(etag) if etag_md5 else None,
                      o.key.endswith("/") and o.size == 0,
                      storage_class=o.storage_class or "STANDARD")


#: Contents elements whose ETag, size, time or storage class is unusual.
ODD_CONTENTS = [
    "<Key>multi</Key><ETag>&quot;745a0ee26a47605380d3ea370bc281db-3&quot;</ETag><Size>9</Size>",
    "<Key>weak</Key><ETag>W/&quot;5d41402abc4b2a76b9719d911017c592&quot;</ETag>",
    "<Key>spaced</Key><ETag> &quot;5d41402abc4b2a76b9719d911017c592&quot; </ETag>",
    "<Key>bare</Key><ETag>5d41402abc4b2a76b9719d911017c592</ETag><StorageClass/>",
    "<Key>nothex</Key><ETag>&quot;zz41402abc4b2a76b9719d911017c592&quot;</ETag>",
    "<Key>empty-etag</Key><ETag/><Size/><LastModified/>",
    "<Key>quotes-only</Key><ETag>&quot;&quot;</ETag>",
    "<Key>no-etag</Key><Size>0</Size>",
    "<Key>dir/</Key><Size>0</Size><StorageClass>GLACIER</StorageClass>",
    "<Key>full-dir/</Key><Size>3</Size>",
    "<Key/><Size>1</Size>",
    "<Size>2</Size>",
    "<Key>twice</Key><Key>second</Key><Size>1</Size><Size>2</Size>",
    "<Key>odd-time</Key><LastModified>Tue, 01 Dec 2026 14:05:33 GMT</LastModified>",
    "<Key>naive-time</Key><LastModified>2026-12-01T14:05:33</LastModified>",
]


@pytest.mark.parametrize("etag_md5", [True, False])
@pytest.mark.parametrize("ns", [NS, ""])
def test_the_listing_infos_are_the_records_made_of_each_entry(etag_md5: bool, ns: str) -> None:
    """parse_list(body, etag_md5) makes list_page's ObjectInfos in the parse (one record per
    key): the same as the Listed records made into ObjectInfos one by one."""
    odd = _body([], ns=ns).replace(b"</ListBucketResult>", "".join(
        f"<Contents>{c}</Contents>" for c in ODD_CONTENTS).encode() + b"</ListBucketResult>")
    plain = [k for k in KEYS if "\x01" not in k and "\t" not in k]
    for body in (_body(KEYS, ["p/"], ns=ns), _body(plain, encoded=False, ns=ns), odd):
        listed = parse_list(body)
        infos = parse_list(body, etag_md5)
        assert infos.rows == [_old_info(o, etag_md5) for o in listed.contents]
        assert (infos.common_prefixes, infos.is_truncated, infos.next_token,
                infos.key_count) == (listed.common_prefixes, listed.is_truncated,
                                     listed.next_token, listed.key_count)
    assert len(parse_list(odd).rows) == len(ODD_CONTENTS)
