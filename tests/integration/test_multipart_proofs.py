"""S3 multipart sources (no MD5 of their own) copied to Azure (plain HTTP here).

- With an additional checksum: in blocks, each carrying its CRC64 (x-ms-content-crc64,
  which the service checks: the transit), the source side proven by the checksum; no MD5
  is computed, so the blob keeps no Content-MD5 (tests/integration/test_crc64_transit.py
  has more).  Into a destination that checks only MD5s (``md5_only_destination``): one
  streamed Put Blob without Content-MD5, the transit proven by the MD5 Azure computed of
  what it stored against the MD5 of the bytes sent.
- Without one, by parts when they fit the memory allowed: each part one block, hashed
  once: its MD5 is the Put Block's Content-MD5 (the service checks the transit) and one of
  the MD5s the ETag is rebuilt from (the source).  The blob keeps no Content-MD5 (Put Block
  List computes none) but records the source's ETag: a rerun skips it, `verify` and a move
  rebuild the ETag from its bytes.  Otherwise streamed, as above, the source side proven
  by the multipart ETag rebuilt from the parts.

Azurite does not check x-ms-content-crc64: where a byte is changed on its way to Azure, the
requests go through ``tests.crc64proxy.Crc64Service``, which checks it as the service does.

A byte changed on either side is caught, the object copied again, never reported copied
while wrong."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

import lakeshift
from tests import servers
from tests.crc64proxy import Crc64Service, md5_only_destination
from tests.e2e.cli import lakeshift as cli
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes, blobs, upload_parts
from tests.piecewatch import BlockBodies

MiB = 1024 * 1024
PARTS = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                       use_threads=False)


def _upload(s3: Any, bucket: str, key: str, data: bytes) -> None:
    s3.upload_fileobj(io.BytesIO(data), bucket, key, Config=PARTS)


@pytest.fixture
def s3_plain(s3_env: dict[str, str]) -> Any:
    """A client that adds no additional checksum (as SDKs before 2025 did)."""
    return boto3.client("s3", config=Config(request_checksum_calculation="when_required"))


@pytest.fixture
def proxies(s3_env: Any, azure_env: Any, moto: servers.Server, azurite: servers.Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    s3p = FaultProxy(f"http://127.0.0.1:{moto.port}")
    service = Crc64Service(f"http://127.0.0.1:{azurite.port}")  # (checks the CRC64s)
    azp = FaultProxy(service.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3p.url)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
        f"AccountKey={servers.AZURITE_KEY};"
        f"BlobEndpoint={azp.url}/{servers.AZURITE_ACCOUNT};"))
    yield s3p, azp
    s3p.stop()
    azp.stop()
    service.stop()


#: Block sizes: 1 MiB with 4 slots cannot hold a 5 MiB part (one streamed Put Blob);
#: 5 MiB blocks are the parts (a part holds 2 of the 4 slots).
STREAMED, BY_PARTS = MiB, 5 * MiB


def _copy(bucket: str, container: str, block_size: int = STREAMED,
          **kw: Any) -> lakeshift.CopyResult:
    return lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                          copy_mode="stream", block_size=block_size,
                          concurrency=4, **kw)


def _assert_copied(blob_service: Any, container: str, name: str, data: bytes,
                   md5_kept: bool = True) -> None:
    got = blobs(blob_service, container, "out/")
    assert blob_bytes(blob_service, container, name) == data
    kept = got[name].content_settings.content_md5
    if md5_kept:
        assert bytes(kept) == hashlib.md5(data).digest()
    else:
        assert not kept  # no whole-object MD5 was computed


def test_multipart_with_crc32_is_proven_by_it(s3: Any, bucket: str, blob_service: Any,
                                              container: str) -> None:
    data = os.urandom(12 * MiB + 77)  # 3 parts of 5 MiB
    _upload(s3, bucket, "d/mp.bin", data)
    assert s3.head_object(Bucket=bucket, Key="d/mp.bin", ChecksumMode="ENABLED")["ChecksumCRC32"]
    res = _copy(bucket, container)
    assert res.exit_code == 0 and res.failures == []
    assert dict(res.proofs) == {"source-crc32": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=False)


@pytest.mark.parametrize("algorithm", ["CRC64NVME"])
def test_a_crc64nvme_source_is_proven_by_it_and_a_flipped_read_copied_again(
        algorithm: str, proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str,
        blob_service: Any, container: str, tmp_path: Path) -> None:
    # awscrt's CRC64NVME (~0.2 s/GiB) proves such a source by its own checksum, not by its
    # multipart ETag rebuilt from part MD5s (~2 s/GiB); a byte changed in one of the
    # source's GETs fails that proof and the object is copied again.  (moto gives a
    # multipart CRC32C upload the composite CRC32, not CRC32C: that one is checked against
    # botocore's CRC32C in tests/unit/test_source_proof.py.)
    s3p, _ = proxies
    data = os.urandom(12 * MiB + 77)  # 3 parts of 5 MiB
    s3.upload_fileobj(io.BytesIO(data), bucket, "d/mp.bin", Config=PARTS,
                      ExtraArgs={"ChecksumAlgorithm": algorithm})
    assert s3.head_object(Bucket=bucket, Key="d/mp.bin",
                          ChecksumMode="ENABLED")[f"Checksum{algorithm}"]
    s3p.add("flip", method="GET", path=r"/d/mp\.bin", uses=1)
    res = _copy(bucket, container)
    assert res.failures == [] and res.exit_code == 0 and s3p.injected == 1
    assert dict(res.proofs) == {f"source-{algorithm.lower()}": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=False)
    checked = lakeshift.verify(f"s3://{bucket}/d/", f"az://{container}/out/",
                               report=tmp_path / "report")
    assert dict(checked.proofs) == {f"source-{algorithm.lower()}": 1}


def test_over_tls_a_crc32_source_in_blocks_is_sent_in_pieces_without_a_block_check(
        entra_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Over TLS (Azurite with a throw-away CA) a block carries neither CRC64 nor MD5 (TLS
    # protects it); it is still sent as the pieces it was read in, over the TLS transport.
    from lakeshift.api import StoreOptions
    from lakeshift.stores.wire import connection

    data = os.urandom(12 * MiB + 77)
    _upload(s3, bucket, "d/mp.bin", data)
    heads: list[bytes] = []
    bodies: list[Any] = []
    real_send = connection._Connection.send

    async def send(self: Any, method: str, head: bytes, body: Any, length: int,
                   stall: float) -> None:
        if b"comp=block&" in head:
            heads.append(head.lower())
            bodies.append(body)
        await real_send(self, method, head, body, length, stall)

    monkeypatch.setattr(connection._Connection, "send", send)
    opts = StoreOptions(azure_auth="cli")
    c = f"tls-{os.urandom(4).hex()}"
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{c}/out/", copy_mode="stream",
                         block_size=MiB, concurrency=4, single_put_max=0,
                         store_options=opts)
    assert res.failures == [] and res.exit_code == 0
    assert dict(res.proofs) == {"source-crc32": 1}
    assert len(bodies) == 13 and all(isinstance(b, tuple) for b in bodies)
    assert not any(b"x-ms-content-crc64" in h or b"content-md5" in h for h in heads)
    back = lakeshift.copy(f"az://{c}/out/", str(tmp_path / "back"), store_options=opts)
    assert back.exit_code == 0, back.failures
    assert (tmp_path / "back" / "mp.bin").read_bytes() == data


@pytest.mark.parametrize("single_put_max", [0, None])
def test_over_http_into_an_md5_only_destination_a_crc32_source_in_blocks_goes_by_parts(
        single_put_max: int | None, s3: Any, bucket: str, blob_service: Any,
        container: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # In blocks, the part MD5s the transit needs prove the source too: no CRC32 pass
    # besides.  Up to single_put_max it is streamed (one cheap CRC32 pass more, one slot,
    # the service's MD5 kept).
    md5_only_destination(monkeypatch)
    data = os.urandom(12 * MiB + 77)
    _upload(s3, bucket, "d/mp.bin", data)
    assert s3.head_object(Bucket=bucket, Key="d/mp.bin", ChecksumMode="ENABLED")["ChecksumCRC32"]
    kw = {} if single_put_max is None else {"single_put_max": single_put_max}
    res = _copy(bucket, container, BY_PARTS, **kw)
    assert res.exit_code == 0 and res.failures == []
    by_parts = single_put_max == 0
    assert dict(res.proofs) == {"multipart-etag" if by_parts else "source-crc32": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=not by_parts)


@pytest.mark.parametrize("block_size", [STREAMED, BY_PARTS])
def test_multipart_without_checksum_is_proven_by_its_etag(
        block_size: int, s3_plain: Any, bucket: str, blob_service: Any,
        container: str) -> None:
    data = os.urandom(11 * MiB + 5)
    _upload(s3_plain, bucket, "d/mp.bin", data)
    head = s3_plain.head_object(Bucket=bucket, Key="d/mp.bin", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in head and head["ETag"].endswith('-3"')
    s3_plain.put_object(Bucket=bucket, Key="d/small.bin", Body=b"x" * 100)
    res = _copy(bucket, container, block_size)
    assert res.exit_code == 0 and res.failures == []
    assert dict(res.proofs) == {"multipart-etag": 1, "source-md5": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data,
                   md5_kept=block_size == STREAMED)
    # The recorded source ETag is the proof a rerun trusts: nothing is copied again.
    again = _copy(bucket, container, block_size)
    assert again.exit_code == 0 and again.stats.copied == 0 and again.stats.skipped == 2


def test_a_copy_by_parts_hashes_and_sends_each_part_in_the_pieces_the_socket_delivered(
        s3_plain: Any, bucket: str, blob_service: Any, container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # No part is joined: its MD5 (Content-MD5 and the ETag's) is folded over the very
    # buffers the GET's connection received, and Put Block sends those buffers.
    data = os.urandom(11 * MiB + 5)
    _upload(s3_plain, bucket, "d/mp.bin", data)
    watch = BlockBodies(monkeypatch)
    res = _copy(bucket, container, BY_PARTS)
    assert res.failures == [] and res.exit_code == 0
    assert dict(res.proofs) == {"multipart-etag": 1}
    watch.assert_never_joined(3)
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=False)


def test_a_copy_by_parts_is_verified_and_moved_by_its_rebuilt_etag(
        s3_plain: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    data = os.urandom(11 * MiB + 5)
    _upload(s3_plain, bucket, "d/mp.bin", data)
    _upload(s3_plain, bucket, "d/bad.bin", data)
    assert _copy(bucket, container, BY_PARTS).exit_code == 0
    checked = lakeshift.verify(f"s3://{bucket}/d/", f"az://{container}/out/",
                               report=tmp_path / "report")
    assert dict(checked.proofs) == {"multipart-etag": 2}
    # bad.bin's blob replaced by other bytes of the same size, the record kept: a move
    # skips it (the record says identical) but must not delete its source.
    blob = blob_service.get_blob_client(container, "out/bad.bin")
    meta = blob.get_blob_properties().metadata
    other = bytearray(data)
    other[7 * MiB] ^= 1
    blob.stage_block("YmxvY2sx", bytes(other))  # (Put Block List: no Content-MD5)
    blob.commit_block_list(["YmxvY2sx"], metadata=meta)
    assert not blob.get_blob_properties().content_settings.content_md5
    res = _copy(bucket, container, BY_PARTS, delete_source_after_verify=True)
    kept = {d.key: d.kept for d in res.deletions}
    assert kept["d/mp.bin"] is None
    assert "do not rebuild the source's ETag" in (kept["d/bad.bin"] or "")
    assert [o["Key"] for o in s3_plain.list_objects_v2(Bucket=bucket)["Contents"]] == [
        "d/bad.bin"]


@pytest.mark.parametrize("checksum", ["crc32", "none", "none-by-parts"])
@pytest.mark.parametrize("side", ["source", "destination"])
def test_a_byte_changed_in_transit_is_caught_and_copied_again(
        checksum: str, side: str, proxies: tuple[FaultProxy, FaultProxy], s3: Any,
        s3_plain: Any, bucket: str, blob_service: Any, container: str) -> None:
    s3p, azp = proxies
    data = os.urandom(10 * MiB + 3)
    _upload(s3 if checksum == "crc32" else s3_plain, bucket, "d/mp.bin", data)
    if side == "source":
        s3p.add("flip", method="GET", path=r"/d/mp\.bin", uses=1)
    else:
        # (A Put Block, whose CRC64 or, by parts, Content-MD5 the service checks.)
        azp.add("flip_request", method="PUT", path=r"/out/mp\.bin", uses=1)
    by_parts = checksum == "none-by-parts"
    res = _copy(bucket, container, BY_PARTS if by_parts else STREAMED)
    assert res.exit_code == 0 and res.failures == []
    assert (s3p if side == "source" else azp).injected == 1
    assert dict(res.proofs) == {"source-crc32" if checksum == "crc32" else "multipart-etag": 1}
    # (A CRC32 source goes in blocks checked by their CRC64: no MD5 computed.)
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=checksum == "none")


@pytest.mark.parametrize("side", ["destination", "source-by-parts", "destination-by-parts"])
def test_a_copy_that_stays_corrupt_fails_and_leaves_nothing(
        side: str, proxies: tuple[FaultProxy, FaultProxy], s3: Any, s3_plain: Any,
        bucket: str, blob_service: Any, container: str) -> None:
    s3p, azp = proxies
    by_parts = side.endswith("by-parts")
    _upload(s3_plain if by_parts else s3, bucket, "d/mp.bin", os.urandom(10 * MiB + 3))
    if side.startswith("source"):
        s3p.add("flip", method="GET", path=r"/d/mp\.bin", uses=1000)
    else:
        azp.add("flip_request", method="PUT", path=r"/out/mp\.bin", uses=1000)
    res = _copy(bucket, container, BY_PARTS if by_parts else STREAMED)
    assert res.exit_code == 1 and res.stats.copied == 0
    assert [f.error_kind for f in res.failures] == ["integrity"]
    assert ("do not have the source's" if side.startswith("source") else
            "changed in transit") in res.failures[0].message, res.failures[0].message
    assert blobs(blob_service, container, "out/") == {}


@pytest.mark.parametrize("flip", ["none", "source", "destination"])
def test_a_crc32_source_in_blocks_is_proven_by_its_crc32_without_a_whole_md5(
        flip: str, proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str,
        blob_service: Any, container: str) -> None:
    # Parts too large for the slots, above single_put_max: blocks not aligned to the parts;
    # the CRC32 proves the source, each block's CRC64 the transit; no MD5 at all.
    s3p, azp = proxies
    data = os.urandom(10 * MiB + 3)
    _upload(s3, bucket, "d/mp.bin", data)
    if flip == "source":
        s3p.add("flip", method="GET", path=r"/d/mp\.bin", uses=1)
    elif flip == "destination":
        azp.add("flip_request", method="PUT", path=r"/out/mp\.bin", uses=1)
    res = _copy(bucket, container, STREAMED, single_put_max=0)
    assert res.exit_code == 0 and res.failures == []
    assert (s3p.injected + azp.injected) == (flip != "none")
    assert dict(res.proofs) == {"source-crc32": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=False)


def test_a_move_after_blocks_without_a_whole_md5_rebuilds_the_etag_from_the_destination(
        s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    data = os.urandom(10 * MiB + 3)
    _upload(s3, bucket, "d/mp.bin", data)  # a CRC32 too: proven by it, no whole MD5
    res = _copy(bucket, container, STREAMED, single_put_max=0,
                delete_source_after_verify=True)
    assert res.exit_code == 0 and dict(res.proofs) == {"source-crc32": 1}
    assert [(d.key, d.kept) for d in res.deletions] == [("d/mp.bin", None)]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=False)



#: Part 1 larger than the others: 4 parts, not ceil(size / part 1) = 3, so neither the
#: multipart ETag nor a COMPOSITE checksum can be rebuilt from part 1's size.
UNEQUAL = [6 * MiB, 5 * MiB, 5 * MiB, 123]


@pytest.mark.parametrize("single_put_max", [0, None])
def test_a_full_object_crc32_source_with_unequal_parts_is_copied_and_moved_by_it(
        single_put_max: int | None, s3: Any, bucket: str, blob_service: Any,
        container: str) -> None:
    data = upload_parts(s3, bucket, "d/mp.bin", UNEQUAL, "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="d/mp.bin", ChecksumMode="ENABLED")
    assert head["ChecksumType"] == "FULL_OBJECT"
    kw = {} if single_put_max is None else {"single_put_max": single_put_max}
    res = _copy(bucket, container, BY_PARTS, delete_source_after_verify=True, **kw)
    assert res.exit_code == 0 and res.failures == []
    assert dict(res.proofs) == {"source-crc32": 1}
    assert [(d.key, d.kept) for d in res.deletions] == [("d/mp.bin", None)]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=False)


@pytest.mark.parametrize("crc32", ["COMPOSITE", "FULL_OBJECT"])
def test_an_sse_kms_crc32_source_is_proven_by_its_crc32_not_its_etag(
        crc32: str, s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    # Under SSE-KMS the multipart ETag is no digest of the bytes (moto keeps it one, but
    # its HEAD says aws:kms): over plain HTTP the copy is proven by the CRC32, and so is
    # the move (the blob keeps no whole-object MD5).
    data = upload_parts(s3, bucket, "d/mp.bin", [5 * MiB, 5 * MiB, 77], crc32,
                         ServerSideEncryption="aws:kms")
    assert s3.head_object(Bucket=bucket, Key="d/mp.bin")["ServerSideEncryption"] == "aws:kms"
    res = _copy(bucket, container, BY_PARTS, single_put_max=0,
                delete_source_after_verify=True)
    assert res.exit_code == 0 and res.failures == []
    assert dict(res.proofs) == {"source-crc32": 1}
    assert [(d.key, d.kept) for d in res.deletions] == [("d/mp.bin", None)]
    _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=False)


@pytest.mark.parametrize("crc32", ["", "COMPOSITE"])
def test_a_source_with_unequal_parts_proven_by_parts_fails_in_one_line_before_reading(
        crc32: str, s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    upload_parts(s3, bucket, "d/mp.bin", UNEQUAL, crc32)
    res = _copy(bucket, container, BY_PARTS)
    assert res.exit_code == 1 and res.stats.copied == 0
    [failed] = res.failures
    assert failed.attempts == 1, failed
    assert "its 4 parts are not all 6291456 bytes" in failed.message, failed.message
    assert "\n" not in failed.message
    assert blobs(blob_service, container, "out/") == {}


def test_a_streamed_copy_hashes_its_large_chunks_off_the_loop_in_order(
        s3: Any, bucket: str, blob_service: Any, container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof's and the transit's hashing of each MiB runs in a worker thread while the
    chunk is sent (hashed on the loop it held every other transfer), one chunk after the
    other, all of it before the proof is checked (streamed: into a destination that checks
    only MD5s)."""
    import threading

    from lakeshift.engine.checksums import SourceProof

    md5_only_destination(monkeypatch)
    data = os.urandom(12 * MiB + 77)
    _upload(s3, bucket, "d/mp.bin", data)
    seen: list[tuple[bool, int]] = []
    real = SourceProof.update

    def spy(self: SourceProof, chunk: Any) -> None:
        seen.append((threading.current_thread() is threading.main_thread(), len(chunk)))
        real(self, chunk)

    monkeypatch.setattr(SourceProof, "update", spy)
    res = _copy(bucket, container)
    assert res.exit_code == 0 and dict(res.proofs) == {"source-crc32": 1}
    _assert_copied(blob_service, container, "out/mp.bin", data)
    assert sum(n for _, n in seen) == len(data)
    assert all(not on_loop for on_loop, n in seen if n >= 128 * 1024), seen


@pytest.mark.parametrize(("head", "times"), [("checksums", 1), ("part", 1), ("part", 1000)])
def test_the_heads_that_prove_a_multipart_source_are_retried_then_fail_it_alone(
        head: str, times: int, proxies: tuple[FaultProxy, FaultProxy], s3: Any,
        bucket: str, blob_service: Any, container: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Its HEAD with the checksum mode, or its HEAD ?partNumber=1, faulted (metadata kind).
    from lakeshift.engine.retry import RetryPolicy

    monkeypatch.setattr(RetryPolicy, "delay", lambda *_: 0.01)  # (every retry, at once)
    s3p, _ = proxies
    data = os.urandom(5 * MiB + 7)  # 2 parts
    _upload(s3, bucket, "d/mp.bin", data)
    s3.put_object(Bucket=bucket, Key="d/small.bin", Body=b"x" * 100)
    path = r"/d/mp\.bin\?partNumber=1$" if head == "part" else r"/d/mp\.bin$"
    rule = s3p.fault("metadata", 503, times=times, path=path)
    res = _copy(bucket, container)
    assert rule.hits >= 1
    if times == 1:  # retried: copied, proven
        assert res.exit_code == 0 and res.failures == [], res.failures
        assert dict(res.proofs) == {"source-crc32": 1, "source-md5": 1}
        _assert_copied(blob_service, container, "out/mp.bin", data, md5_kept=False)
    else:  # that object fails alone, in one line
        assert res.exit_code == 1 and [f.object_key for f in res.failures] == ["d/mp.bin"]
        assert "throttled" in res.failures[0].message and "\n" not in res.failures[0].message
        assert set(blobs(blob_service, container, "out/")) == {"out/small.bin"}


def test_a_copy_with_credentials_from_the_environment_never_imports_botocore(
        s3: Any, s3_plain: Any, bucket: str, container: str, cli_env: dict[str, str],
        blob_service: Any) -> None:
    # Listing, the HEADs that prove a multipart source (with a CRC32 or by its ETag), GETs:
    # all through wire (importing and building a botocore client cost ~0.2 s of CPU).
    _upload(s3, bucket, "d/crc.bin", os.urandom(5 * MiB + 1))
    _upload(s3_plain, bucket, "d/plain.bin", os.urandom(5 * MiB + 2))
    s3.put_object(Bucket=bucket, Key="d/small.bin", Body=b"x" * 100)
    env = {**cli_env, "PYTHONPROFILEIMPORTTIME": "1"}
    p = cli("copy", f"s3://{bucket}/d/", f"az://{container}/out/", "--progress", "none",
            "--block-size", "1MiB", "--json", env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    imported = {line.rpartition("|")[2].strip() for line in p.stderr.splitlines()
                if line.startswith("import time:")}
    assert "lakeshift.stores.s3.store" in imported  # (the log is the copy's)
    assert not {m for m in imported if m.split(".")[0] in ("botocore", "boto3")}
    # Nor what only an error needs: html's entity table (an S3 error body), tempfile (the
    # log of a bug).
    assert not imported & {"html", "html.entities", "tempfile"}
    # Nor the control DB's SQLAlchemy (~0.07 s): a copy keeps no control table.
    assert not {m for m in imported if m.split(".")[0] == "sqlalchemy"}
    assert set(blobs(blob_service, container, "out/")) == {
        "out/crc.bin", "out/plain.bin", "out/small.bin"}
