"""--delete-source-after-verify (move), and no partial object under its final name."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest as _pytest

import lakeshift
from tests.e2e.cli import BIN
from tests.e2e.cli import lakeshift as cli
from tests.helpers import blob_bytes, blobs, put_multipart, s3_objects

pytestmark = _pytest.mark.slow

MiB = 1024 * 1024


def test_move_deletes_only_verified_sources_and_records_them(
        s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    objs = {f"mv/{i}.bin": os.urandom(1000 + i) for i in range(5)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    res = lakeshift.copy(f"s3://{bucket}/mv/", f"az://{container}/mv/",
                         delete_source_after_verify=True)
    assert res.exit_code == 0 and res.stats.sources_deleted == 5
    assert s3_objects(s3, bucket, "mv/") == {}
    for k, v in objs.items():
        assert blob_bytes(blob_service, container, k) == v
    assert sorted(d.key for d in res.deletions if d.kept is None) == sorted(objs)


def test_move_proves_md5_less_sources_by_reading_them_again_and_keeps_the_unprovable(
        s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    # Already copied by an earlier run (identical by MD5): moved now without copying.
    s3.put_object(Bucket=bucket, Key="k/done.txt", Body=b"done")
    lakeshift.copy(f"s3://{bucket}/k/", f"az://{container}/k/")
    # A multipart source has no MD5 of its own: it is read again to prove the copy.
    put_multipart(s3, bucket, "k/multi.bin", os.urandom(6 * MiB), 6 * MiB)
    # At the destination already, same size and recorded source ETag, but no Content-MD5:
    # skipped as identical, and kept, since nothing proves it.
    s3.put_object(Bucket=bucket, Key="k/nomd5.txt", Body=b"12345")
    etag = s3.head_object(Bucket=bucket, Key="k/nomd5.txt")["ETag"].strip('"')
    blob = blob_service.get_blob_client(container, "k/nomd5.txt")
    blob.stage_block("YmxvY2sx", b"12345")
    blob.commit_block_list(["YmxvY2sx"], metadata={"lakeshift_src_etag": "multi-" + etag})
    s3.copy_object(Bucket=bucket, Key="k/nomd5.txt", CopySource={"Bucket": bucket,
                   "Key": "k/nomd5.txt"}, MetadataDirective="REPLACE")
    res = lakeshift.copy(f"s3://{bucket}/k/", f"az://{container}/k/",
                         delete_source_after_verify=True, overwrite="never")
    assert res.exit_code == 0
    kept = {d.key: d.kept for d in res.deletions}
    assert kept["k/done.txt"] is None and kept["k/multi.bin"] is None
    assert "no Content-MD5" in (kept["k/nomd5.txt"] or "")
    assert set(s3_objects(s3, bucket, "k/")) == {"k/nomd5.txt"}


def test_move_in_a_job_records_deletions(cli_env: dict[str, str], s3: Any, bucket: str,
                                         container: str, tmp_path: Path) -> None:
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"j/{i}", Body=os.urandom(10))
    db = tmp_path / "m.db"
    assert cli("plan", f"s3://{bucket}/j/", f"az://{container}/j/", "--job", "mv", "--db",
               f"sqlite:///{db}", "--delete-source-after-verify", env=cli_env).returncode == 0
    assert cli("run", "--job", "mv", "--db", f"sqlite:///{db}", env=cli_env).returncode == 0
    rows = sqlite3.connect(db).execute(
        "select source_key, destination_key, md5 from lakeshift_deletions").fetchall()
    assert sorted(r[0] for r in rows) == ["j/0", "j/1", "j/2"] and all(len(r[2]) == 32
                                                                     for r in rows)
    assert s3_objects(s3, bucket, "j/") == {}


def test_an_interrupted_large_upload_is_never_visible_and_a_rerun_finishes_it(
        cli_env: dict[str, str], blob_service: Any, container: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    big = os.urandom(24 * MiB)
    (src / "big.bin").write_bytes(big)
    # Slow enough (capped bandwidth) to be killed mid-upload.
    proc = subprocess.Popen([str(BIN), "copy", str(src), f"az://{container}/p/",
                             "--block-size", "1MiB", "--max-bandwidth", "4MiB",
                             "--progress", "none"], env=cli_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    blob = blob_service.get_blob_client(container, "p/big.bin")
    deadline = time.monotonic() + 30
    staged = 0
    while time.monotonic() < deadline and staged < 4:
        time.sleep(0.2)
        try:
            staged = len(blob.get_block_list("uncommitted")[1])
        except Exception:
            staged = 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert staged >= 4, "no blocks were staged before the kill"
    assert blobs(blob_service, container, "p/") == {}  # nothing under the final name
    p = cli("copy", str(src), f"az://{container}/p/", "--json", env=cli_env)
    assert p.returncode == 0 and json.loads(p.stdout)["copied"] == 1
    assert blob_bytes(blob_service, container, "p/big.bin") == big
    # The rerun (8 MiB blocks) committed its own blocks; the killed run's uncommitted ones
    # were discarded by the commit.
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == 3 and uncommitted == []
