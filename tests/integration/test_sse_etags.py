"""S3 objects encrypted with SSE-KMS or SSE-C have ETags that are not MD5s (S3's ETag
documentation).  moto keeps them MD5s, so the fault proxy makes them opaque for the keys it
is told, in listings, GET and HEAD, as S3 does.  lakeshift must copy such objects, prove them
with an MD5 of its own, and verify them, without reporting a difference."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

import lakeshift
from tests import servers
from tests.e2e.cli import lakeshift as lakeshift_cli
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes, blobs

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


@pytest.fixture
def s3_proxy(moto: servers.Server, s3_env: Any, azure_env: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    p = FaultProxy(f"http://127.0.0.1:{moto.port}")
    p.opaque_etags(r"kms-")
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
    yield p
    p.stop()


def _objects_done(events: list[Any]) -> dict[str, int]:
    return {e.key: e.attempts for e in events if isinstance(e, lakeshift.ObjectDone)}


def _assert_copied(blob_service: Any, container: str, objs: dict[str, bytes]) -> None:
    got = blobs(blob_service, container, "out/")
    assert set(got) == {"out/" + k[2:] for k in objs}
    for k, v in objs.items():
        assert blob_bytes(blob_service, container, "out/" + k[2:]) == v
        kept = got["out/" + k[2:]].content_settings.content_md5
        if k == "d/kms-big.bin":
            # No MD5 of its own, but a CRC32 (the SDK's default): over plain HTTP in blocks,
            # each checked by its CRC64, no MD5 computed, so the blob keeps none.
            assert not kept
        else:
            assert bytes(kept) == hashlib.md5(v).digest()


def test_a_bucket_encrypting_with_sse_kms_by_default_offers_no_etag_as_md5(
        s3_proxy: FaultProxy, s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    objs = {"d/kms-big.bin": os.urandom(3 * MiB + 7), "d/kms-small.bin": os.urandom(3000)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    events: list[Any] = []
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                         copy_mode="stream", block_size=MiB,
                         subscribers=[events.append])
    assert res.exit_code == 0 and res.failures == []
    assert _objects_done(events) == {k: 1 for k in objs}  # nothing failed on the way
    _assert_copied(blob_service, container, objs)


def test_single_objects_under_sse_kms_are_found_by_their_head(
        s3_proxy: FaultProxy, s3: Any, bucket: str, blob_service: Any, container: str,
        cli_env: dict[str, str], tmp_path: Any) -> None:
    objs = {"d/kms-big.bin": os.urandom(3 * MiB + 7), "d/kms-small.bin": os.urandom(3000),
            "d/plain.bin": os.urandom(2 * MiB + 1)}
    for k, v in objs.items():
        extra = {"ServerSideEncryption": "aws:kms"} if "kms-" in k else {}
        s3.put_object(Bucket=bucket, Key=k, Body=v, **extra)
    events: list[Any] = []
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                         copy_mode="stream", block_size=MiB,
                         subscribers=[events.append])
    assert res.exit_code == 0 and res.failures == []
    # The listing offered the opaque ETag as an MD5; the GET's answer says SSE-KMS, so the
    # bytes are hashed here from the start: no put refused by the MD5, no second attempt
    # (the small one read whole, the big one streamed into one Put Blob).
    assert _objects_done(events) == {k: 1 for k in objs}
    _assert_copied(blob_service, container, objs)
    again = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                           copy_mode="stream", block_size=MiB)
    assert (again.stats.copied, again.stats.skipped) == (0, 3)  # matched by source ETag

    env = dict(cli_env, AWS_ENDPOINT_URL=s3_proxy.url)
    p = lakeshift_cli("verify", f"s3://{bucket}/d/", f"az://{container}/out/", "--report",
                      str(tmp_path / "report"), "--json", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert '"verified": 3' in p.stdout


def test_an_sse_kms_source_into_s3_is_hashed_here_before_its_first_put(
        moto: servers.Server, s3_env: Any, s3: Any, bucket: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An SSE-KMS object listed with an ETag that looks like an MD5 but is not the
    content's: its first put carried that ETag as the MD5, S3 stored the real bytes, and
    the copy failed "changed in transit" (deleted, HEAD, copied again).  The GET's answer
    (``x-amz-server-side-encryption: aws:kms``) already says the ETag is no MD5: the bytes
    are hashed here and each object is put once, in one attempt, nothing deleted -- read
    whole (small) and in blocks (S3 takes no streamed put)."""
    objs = {"d/kms-big.bin": os.urandom(3 * MiB + 7), "d/kms-small.bin": os.urandom(3000)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v, ServerSideEncryption="aws:kms")
    head = s3.head_object(Bucket=bucket, Key="d/kms-small.bin")
    assert head["ServerSideEncryption"] == "aws:kms"  # moto says so, as S3 does
    dest = bucket + "-out"
    s3.create_bucket(Bucket=dest)
    proxy = FaultProxy(f"http://127.0.0.1:{moto.port}")
    proxy.opaque_etags(r"(^|/)d/kms-")  # the source's keys only, not the copies
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    try:
        events: list[Any] = []
        res = lakeshift.copy(f"s3://{bucket}/d/", f"s3://{dest}/out/", block_size=MiB,
                             subscribers=[events.append])
        assert res.exit_code == 0 and res.failures == [], res.failures
        assert _objects_done(events) == {k: 1 for k in objs}
        assert not [e for e in events if isinstance(e, lakeshift.ObjectDone) and e.message]
        written = [(m, p) for m, p, _ in proxy.seen if p.startswith(f"/{dest}/")]
        assert [p for m, p in written if m == "DELETE"] == [], written
        small = f"/{dest}/out/kms-small.bin"
        assert [p for m, p in written if m == "PUT" and p.startswith(small)] == [small], \
            written
        for k, v in objs.items():
            got = s3.get_object(Bucket=dest, Key="out/" + k[2:])["Body"].read()
            assert got == v
    finally:
        proxy.stop()
