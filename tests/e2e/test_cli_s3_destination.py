"""S3 as a destination, as a user sees it: a copy is labelled by what was proven (S3's
ETag of what it stored compared with the MD5 of the bytes sent, single-part and
multipart), a body changed on its way to S3 fails the object and leaves nothing behind, and
a rerun from local disk skips unchanged files by what the objects record (one HEAD each),
not by reading every file again.

A loopback proxy in front of moto flips one byte of chosen request bodies (moto, like S3,
stores what it receives and answers with the ETag of that)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tests.e2e.cli import lakeshift
from tests.faultproxy import FaultProxy


def _summary(p: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def _keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_a_put_changed_in_transit_fails_the_object_and_leaves_nothing(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.bin").write_bytes(os.urandom(3000))
    (src / "ok.bin").write_bytes(b"fine")
    proxy = FaultProxy(cli_env["AWS_ENDPOINT_URL"])
    try:
        # Every PutObject of small.bin reaches S3 with one byte flipped.
        proxy.add("flip_request", method="PUT", path=f"^/{bucket}/small\\.bin", uses=100)
        env = dict(cli_env, AWS_ENDPOINT_URL=proxy.url)
        p = lakeshift("copy", str(src), f"s3://{bucket}/", "--json", env=env)
        assert p.returncode == 1, p.stdout + p.stderr
        s = _summary(p)
        assert s["copied"] == 1 and s["failed"] == 1, s
        assert s["proofs"] == {"service-md5": 1}, s
        # The damaged object is not left behind (it would carry the source's version
        # record, which a rerun trusts).
        assert _keys(s3, bucket) == ["ok.bin"]
        (failure,) = s["failures"]
        assert (failure["key"], failure["kind"]) == ("small.bin", "integrity"), failure
        assert "changed in transit" in failure["message"], failure
        # Once the way is clean, the copy is whole.
        proxy.clear()
        p = lakeshift("copy", str(src), f"s3://{bucket}/", "--json", env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        body = s3.get_object(Bucket=bucket, Key="small.bin")["Body"].read()
        assert body == (src / "small.bin").read_bytes()
    finally:
        proxy.stop()


def test_a_part_changed_in_transit_fails_the_multipart_object(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(12 * 1024 * 1024 + 123)  # three parts of 5 MiB (the last shorter)
    (src / "big.bin").write_bytes(data)
    proxy = FaultProxy(cli_env["AWS_ENDPOINT_URL"])
    try:
        proxy.add("flip_request", method="PUT", path="partNumber=2", uses=100)
        env = dict(cli_env, AWS_ENDPOINT_URL=proxy.url)
        copy = ("copy", str(src), f"s3://{bucket}/", "--block-size", "5MiB", "--json")
        p = lakeshift(*copy, env=env)
        assert p.returncode == 1, p.stdout + p.stderr
        assert _summary(p)["failed"] == 1
        assert _keys(s3, bucket) == []
        proxy.clear()
        log = tmp_path / "proofs.csv"
        p = lakeshift(*copy, "--proof-log", str(log), env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        head = s3.head_object(Bucket=bucket, Key="big.bin")
        assert head["ETag"].strip('"').endswith("-3")  # a multipart object it is
        got = s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
        assert hashlib.md5(got).digest() == hashlib.md5(data).digest()
        with log.open() as fh:
            assert [r["proof"] for r in csv.DictReader(fh)] == ["service-md5"]
    finally:
        proxy.stop()


def test_a_local_rerun_skips_unchanged_files_with_one_head_each(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i:02}.txt").write_bytes(f"file {i}\n".encode())
    proxy = FaultProxy(cli_env["AWS_ENDPOINT_URL"])
    try:
        env = dict(cli_env, AWS_ENDPOINT_URL=proxy.url)
        p = lakeshift("copy", str(src), f"s3://{bucket}/", "--json", env=env)
        assert p.returncode == 0 and _summary(p)["copied"] == 20, p.stdout + p.stderr
        seen = len(proxy.seen)
        p = lakeshift("copy", str(src), f"s3://{bucket}/", "--json", env=env)
        s = _summary(p)
        assert (s["copied"], s["skipped"]) == (0, 20), s
        rerun = proxy.seen[seen:]
        assert [m for m, _, _ in rerun].count("HEAD") == 20, rerun
        assert [m for m, _, _ in rerun].count("PUT") == 0, rerun
        # A file changed since (same size, new mtime) is copied again, the others not; a
        # dry run says so first.
        (src / "f03.txt").write_bytes(b"FILE 3\n")
        p = lakeshift("copy", str(src), f"s3://{bucket}/", "--dry-run", "--json", env=env)
        s = _summary(p)
        assert (s["copied"], s["skipped"]) == (1, 19), s
        p = lakeshift("copy", str(src), f"s3://{bucket}/", "--json", env=env)
        s = _summary(p)
        assert (s["copied"], s["skipped"]) == (1, 19), s
        body = s3.get_object(Bucket=bucket, Key="f03.txt")["Body"].read()
        assert body == b"FILE 3\n"
    finally:
        proxy.stop()


def test_under_sse_kms_puts_carry_content_md5_and_an_unchecked_upload_says_so(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    """A bucket that encrypts with SSE-KMS by default: ETags are no MD5s, so a PutObject
    carries Content-MD5, which S3 checks (BadDigest; moto 5.2 checks none, so the test
    sees the header sent); obstore's multipart upload sends none per part, so nothing
    checks what S3 stored, and the proof says only what was proven: the size."""
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.bin").write_bytes(os.urandom(3000))
    (src / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    proxy = FaultProxy(cli_env["AWS_ENDPOINT_URL"])
    try:
        env = dict(cli_env, AWS_ENDPOINT_URL=proxy.url)
        log = tmp_path / "proofs.csv"
        p = lakeshift("copy", str(src), f"s3://{bucket}/", "--block-size", "5MiB", "--json",
                      "--proof-log", str(log), env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        with log.open() as fh:
            proofs = {r["source_key"]: r["proof"] for r in csv.DictReader(fh)}
        assert proofs == {"small.bin": "service-md5", "big.bin": "size-only"}, proofs
        puts = [h for m, path, h in proxy.seen
                if m == "PUT" and path.startswith(f"/{bucket}/small.bin")]
        assert len(puts) == 1 and "content-md5" in puts[0], proxy.seen
        body = s3.get_object(Bucket=bucket, Key="small.bin")["Body"].read()
        assert body == (src / "small.bin").read_bytes()
        # A source with an MD5 of its own (an S3 single-part object): the read is proven,
        # the multipart write is not, and the proof says both.
        other = f"{bucket}-src"
        s3.create_bucket(Bucket=other)
        s3.put_object(Bucket=other, Key="big.bin", Body=(src / "big.bin").read_bytes())
        p = lakeshift("copy", f"s3://{other}/", f"s3://{bucket}/from-s3/", "--block-size",
                      "5MiB", "--json", env=env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert _summary(p)["proofs"] == {"source-md5-write-unchecked": 1}, p.stdout
    finally:
        proxy.stop()


def test_uploads_of_exactly_one_part_and_of_several_are_proven_by_their_etags(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    """obstore's writer sends exactly one part's bytes as a multipart upload of one part
    (ETag ``…-1``), fewer as one PutObject: both ETags are rebuilt from the bytes sent."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "five.bin").write_bytes(os.urandom(5 * 1024 * 1024))
    (src / "ten.bin").write_bytes(os.urandom(10 * 1024 * 1024 + 1))
    p = lakeshift("copy", str(src), f"s3://{bucket}/", "--block-size", "1MiB", "--json",
                  env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _summary(p)["proofs"] == {"service-md5": 2}
    etags = {k: s3.head_object(Bucket=bucket, Key=k)["ETag"].strip('"')[-2:]
             for k in ("five.bin", "ten.bin")}
    assert etags == {"five.bin": "-1", "ten.bin": "-3"}, etags


def test_a_keyed_sync_skips_unchanged_files_with_one_head_each(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    """`sync --files-from` into S3 copies the named files with no listing; a second pass
    finds each unchanged file's copy by one HEAD (its record of the source version,
    ``lakeshift_src_etag``) and puts nothing.  A file changed since (same size, new
    content and mtime) is copied again."""
    src = tmp_path / "src"
    src.mkdir()
    names = [f"f{i:02}.txt" for i in range(12)]
    for n in names:
        (src / n).write_bytes(f"file {n}\n".encode())
    keys = tmp_path / "keys.txt"
    keys.write_text("".join(n + "\n" for n in names))
    proxy = FaultProxy(cli_env["AWS_ENDPOINT_URL"])
    try:
        env = dict(cli_env, AWS_ENDPOINT_URL=proxy.url)
        sync = ("sync", str(src), f"s3://{bucket}/", "--job", "k", "--db",
                f"sqlite:///{tmp_path}/jobs.db", "--files-from", str(keys), "--lag", "0s",
                "--json")
        p = lakeshift(*sync, env=env)
        assert p.returncode == 0 and _summary(p)["copied"] == 12, p.stdout + p.stderr
        seen = len(proxy.seen)
        p = lakeshift(*sync, env=env)
        s = _summary(p)
        assert p.returncode == 0 and (s["copied"], s["skipped"]) == (0, 12), s
        again = [m for m, _, _ in proxy.seen[seen:]]
        assert again.count("PUT") == 0 and again.count("HEAD") == 12, proxy.seen[seen:]
        changed = src / "f03.txt"
        before = changed.stat().st_mtime_ns
        changed.write_bytes(b"FILE f03.txt\n")
        os.utime(changed, ns=(before + 2_000_000_000, before + 2_000_000_000))
        p = lakeshift(*sync, env=env)
        s = _summary(p)
        assert p.returncode == 0 and (s["copied"], s["skipped"]) == (1, 11), s
        body = s3.get_object(Bucket=bucket, Key="f03.txt")["Body"].read()
        assert body == b"FILE f03.txt\n"
    finally:
        proxy.stop()
