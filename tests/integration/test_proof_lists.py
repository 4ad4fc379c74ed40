"""Issue 16: the per-object proofs, not only their counts — ``verify --list-verified``
(PREFIX-verified.csv) and ``copy --proof-log FILE`` — against real servers."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import lakeshift
from tests.e2e.cli import lakeshift as cli
from tests.helpers import put_multipart

MiB = 1024 * 1024


def _rows(path: Path | str) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_verify_lists_each_verified_object_with_its_proof_and_checksums(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    bodies = {f"v/f{i}.txt": f"content {i}".encode() for i in range(5)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    put_multipart(s3, bucket, "v/multi.bin", os.urandom(11 * MiB), 5 * MiB)
    etag = s3.head_object(Bucket=bucket, Key="v/multi.bin")["ETag"].strip('"')
    assert lakeshift.copy(f"s3://{bucket}/v/", f"az://{container}/w/",
                          block_size=4 * MiB).exit_code == 0
    blob_service.get_container_client(container).upload_blob(
        "w/f4.txt", b"CONTENT 4", overwrite=True)  # differs: not listed as verified
    prefix = tmp_path / "out" / "r"
    p = cli("verify", f"s3://{bucket}/v/", f"az://{container}/w/", "--report", str(prefix),
            "--list-verified", env=cli_env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"verified objects, one a line: {prefix}-verified.csv" in p.stdout
    rows = _rows(f"{prefix}-verified.csv")
    assert list(rows[0]) == ["name", "source_key", "destination_key", "size", "proof",
                             "source_checksum", "destination_checksum"]
    by_name = {r["name"]: r for r in rows}
    assert sorted(by_name) == ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "multi.bin"]
    for i in range(4):
        md5 = hashlib.md5(bodies[f"v/f{i}.txt"]).hexdigest()
        assert by_name[f"f{i}.txt"] == {
            "name": f"f{i}.txt", "source_key": f"v/f{i}.txt", "destination_key": f"w/f{i}.txt",
            "size": str(len(bodies[f"v/f{i}.txt"])), "proof": "source-md5",
            "source_checksum": md5, "destination_checksum": md5}
    multi = by_name["multi.bin"]
    assert (multi["proof"], multi["source_checksum"], multi["destination_checksum"],
            multi["size"]) == ("multipart-etag", etag, etag, str(11 * MiB))
    # The differences' report is unchanged by it; the summary names the new file.
    assert [r["name"] for r in _rows(f"{prefix}.csv")] == ["f4.txt"]
    summary = json.loads(Path(f"{prefix}.json").read_text())
    assert summary["verified_csv"] == f"{prefix}-verified.csv"
    assert summary["verified"] == len(rows) == sum(summary["proofs"].values())


def test_verify_lists_a_sources_own_checksum_and_nothing_without_the_flag(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    import boto3

    body = os.urandom(11 * MiB)
    # boto3 keeps a CRC32 of a multipart upload it makes (DESIGN.md §8).
    boto3.client("s3", endpoint_url=cli_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing-secret"
                 ).upload_fileobj(__import__("io").BytesIO(body), bucket, "c/big.bin")
    assert lakeshift.copy(f"s3://{bucket}/c/", f"az://{container}/c/",
                          block_size=4 * MiB).exit_code == 0
    v = lakeshift.verify(f"s3://{bucket}/c/", f"az://{container}/c/",
                         report=tmp_path / "r", list_verified=True)
    assert v.exit_code == 0 and v.verified_csv == f"{tmp_path / 'r'}-verified.csv"
    [row] = _rows(v.verified_csv)
    # The CRC32 the source keeps, recomputed from the destination's bytes (cheaper than the
    # MD5 of its parts).
    assert v.proofs == {"source-crc32": 1} and row["proof"] == "source-crc32"
    kept = s3.head_object(Bucket=bucket, Key="c/big.bin", ChecksumMode="ENABLED")
    crc = kept["ChecksumCRC32"].split("-")[0]
    assert row["source_checksum"] == row["destination_checksum"] == f"crc32:{crc}"
    plain = lakeshift.verify(f"s3://{bucket}/c/", f"az://{container}/c/",
                             report=tmp_path / "plain")
    assert plain.verified_csv is None and "verified_csv" not in plain.summary
    assert not Path(f"{tmp_path / 'plain'}-verified.csv").exists()
