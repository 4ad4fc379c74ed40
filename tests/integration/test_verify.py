"""`lakeshift verify` finds each planted difference, and nothing else."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import lakeshift
from tests.e2e.cli import lakeshift as cli
from tests.helpers import blobs, put_multipart

MiB = 1024 * 1024


def _report(path: Path) -> dict[str, str]:
    with open(f"{path}.csv", newline="") as fh:
        return {r["name"]: r["kind"] for r in csv.DictReader(fh)}


def test_verify_finds_each_planted_difference_and_nothing_else(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    for i in range(10):
        s3.put_object(Bucket=bucket, Key=f"v/f{i}.txt", Body=f"content {i}".encode())
    put_multipart(s3, bucket, "v/multi.bin", os.urandom(12 * MiB + 7), 5 * MiB)
    res = lakeshift.copy(f"s3://{bucket}/v/", f"az://{container}/v/", block_size=4 * MiB)
    assert res.exit_code == 0
    clean = tmp_path / "clean"
    p = cli("verify", f"s3://{bucket}/v/", f"az://{container}/v/", "--report", str(clean),
            "--json", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout)
    assert (s["checked"], s["verified"], s["differences"], s["unverifiable"]) == (11, 11, 0, 0)
    assert s["proofs"] == {"source-md5": 10, "multipart-etag": 1}
    assert _report(clean) == {}

    c = blob_service.get_container_client(container)
    c.delete_blob("v/f1.txt")                                        # deleted
    c.upload_blob("v/f2.txt", b"content", overwrite=True)            # truncated
    c.upload_blob("v/f3.txt", b"CONTENT 3", overwrite=True)          # altered, same size
    c.upload_blob("v/zz-extra.txt", b"not in the source")            # extra
    planted = tmp_path / "planted"
    p = cli("verify", f"s3://{bucket}/v/", f"az://{container}/v/", "--report", str(planted),
            "--json", env=cli_env)
    assert p.returncode == 1
    s = json.loads(p.stdout)
    assert (s["missing"], s["size"], s["checksum"], s["extra"], s["verified"]) == (1, 1, 1, 1, 8)
    assert _report(planted) == {"f1.txt": "missing", "f2.txt": "size", "f3.txt": "checksum",
                                "zz-extra.txt": "extra"}
    summary = json.loads(Path(f"{planted}.json").read_text())
    assert summary["differences"] == 4 and summary["exit_code"] == 1


def test_multipart_etag_is_recomputed_from_the_destination(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    data = os.urandom(11 * MiB)
    put_multipart(s3, bucket, "m/big.bin", data, 8 * MiB)
    lakeshift.copy(f"s3://{bucket}/m/", f"az://{container}/m/", block_size=4 * MiB)
    # Replace the blob by one of the same size, with a Content-MD5 that matches *its* bytes:
    # only recomputing the source's md5-of-md5s-2 from the destination can tell.
    other = bytearray(data)
    other[9 * MiB] ^= 0xFF
    import hashlib

    from azure.storage.blob import ContentSettings

    blob_service.get_blob_client(container, "m/big.bin").upload_blob(
        bytes(other), overwrite=True,
        content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(other).digest())))
    p = cli("verify", f"s3://{bucket}/m/", f"az://{container}/m/", "--report",
            str(tmp_path / "r"), "--json", env=cli_env)
    s = json.loads(p.stdout)
    assert p.returncode == 1 and s["checksum"] == 1, s
    assert s["bytes_read"] == 11 * MiB


def test_local_source_and_deep_mode(cli_env: dict[str, str], blob_service: Any, container: str,
                                    tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(4):
        (src / "d" / f"{i}.bin").write_bytes(os.urandom(3000))
    lakeshift.copy(str(src), f"az://{container}/l/")
    for extra in ([], ["--deep"]):
        p = cli("verify", str(src), f"az://{container}/l/", "--report", str(tmp_path / "r"),
                "--json", *extra, env=cli_env)
        s = json.loads(p.stdout)
        assert p.returncode == 0 and s["verified"] == 4 and s["bytes_read"] >= 12000, s
    (src / "d" / "2.bin").write_bytes(os.urandom(3000))  # changed since the copy
    p = cli("verify", str(src), f"az://{container}/l/", "--report", str(tmp_path / "r2"),
            env=cli_env)
    assert p.returncode == 1 and "1 checksum mismatch," in p.stdout


def test_verify_a_job(cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any,
                      container: str, tmp_path: Path) -> None:
    for p_ in ("a/", "b/"):
        for i in range(3):
            s3.put_object(Bucket=bucket, Key=f"{p_}{i}", Body=os.urandom(100))
    db = f"sqlite:///{tmp_path}/v.db"
    assert cli("plan", f"s3://{bucket}/", f"az://{container}/j/", "--job", "vj", "--db", db,
               "--prefix", "a/", "--prefix", "b/", env=cli_env).returncode == 0
    assert cli("run", "--job", "vj", "--db", db, env=cli_env).returncode == 0
    blob_service.get_container_client(container).delete_blob("j/b/1")
    p = cli("verify", "--job", "vj", "--db", db, "--report", str(tmp_path / "j"), "--json",
            env=cli_env)
    s = json.loads(p.stdout)
    assert p.returncode == 1 and (s["checked"], s["missing"], s["verified"]) == (6, 1, 5)
    assert len(blobs(blob_service, container, "j/")) == 5
