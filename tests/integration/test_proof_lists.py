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
from tests.e2e.cli import one_clear_line
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


def test_copy_appends_a_row_per_copied_object_to_the_proof_log(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"p/f{i}.txt", Body=f"body {i}".encode())
    put_multipart(s3, bucket, "p/sub/multi.bin", os.urandom(11 * MiB), 5 * MiB)
    s3.put_object(Bucket=bucket, Key="p/bad\\name.txt", Body=b"renamed")
    log = tmp_path / "proofs.csv"
    p = cli("copy", f"s3://{bucket}/p", f"az://{container}/q/", "--block-size", "4MiB",
            "--invalid-names", "encode", "--proof-log", str(log), "--json", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    summary = json.loads(p.stdout)
    assert summary["proof_log"] == str(log)
    rows = _rows(log)
    by_key = {r["source_key"]: r for r in rows}
    assert len(rows) == summary["copied"] == 5
    assert {k: (r["destination_key"], r["proof"]) for k, r in by_key.items()} == {
        "p/f0.txt": ("q/f0.txt", "source-md5"), "p/f1.txt": ("q/f1.txt", "source-md5"),
        "p/f2.txt": ("q/f2.txt", "source-md5"),
        "p/sub/multi.bin": ("q/sub/multi.bin", "multipart-etag"),
        "p/bad\\name.txt": ("q/bad%5Cname.txt", "source-md5")}
    # Every destination key it names is there, with the size it says.
    c = blob_service.get_container_client(container)
    for r in rows:
        assert c.get_blob_client(r["destination_key"]).get_blob_properties().size == int(
            r["size"])
    # The counts of the summary are the log's, proof by proof.
    assert summary["proofs"] == {"multipart-etag": 1, "source-md5": 4}
    # A rerun copies nothing and adds nothing; a changed object adds its own row.
    s3.put_object(Bucket=bucket, Key="p/f1.txt", Body=b"changed")
    p = cli("copy", f"s3://{bucket}/p", f"az://{container}/q/", "--invalid-names", "encode",
            "--proof-log", str(log), env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"one row per copied object appended to {log}" in p.stdout
    rows = _rows(log)
    assert len(rows) == 6 and rows[-1]["source_key"] == "p/f1.txt"
    assert log.read_text().count("finished_at") == 1


def test_copy_refuses_a_proof_log_it_cannot_write_before_copying(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="r/a.txt", Body=b"a")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    for bad, said in ((blocked / "log.csv", "cannot write the --proof-log"),
                      (tmp_path, "is a folder"), (blocked, "not a lakeshift proof log")):
        p = cli("copy", f"s3://{bucket}/r/", f"az://{container}/r/", "--proof-log", str(bad),
                env=cli_env)
        assert p.returncode == 2, p.stdout + p.stderr
        assert said in one_clear_line(p)
    assert list(blob_service.get_container_client(container).list_blobs()) == []
    assert blocked.read_text() == "not a folder"


def test_proof_log_names_the_folder_blob_a_kept_marker_became(
        s3: Any, bucket: str, blob_service: Any, container: str, tmp_path: Path) -> None:
    """A folder marker kept on a flat destination is the blob ``q/dir`` (no slash): the
    log's destination key is a key the destination holds."""
    s3.put_object(Bucket=bucket, Key="m/dir/", Body=b"")
    s3.put_object(Bucket=bucket, Key="m/dir/f.txt", Body=b"f")
    log = tmp_path / "proofs.csv"
    res = lakeshift.copy(f"s3://{bucket}/m/", f"az://{container}/q/", folder_markers="keep",
                         proof_log=log)
    assert res.exit_code == 0
    rows = {r["source_key"]: r for r in _rows(log)}
    assert (rows["m/dir/"]["destination_key"], rows["m/dir/"]["proof"]) == ("q/dir", "folder")
    # The summary's proofs say the same, and add up to what was copied.
    assert res.proofs["folder"] == 1 and sum(res.proofs.values()) == res.stats.copied == 2
    c = blob_service.get_container_client(container)
    for r in rows.values():
        assert c.get_blob_client(r["destination_key"]).exists(), r
