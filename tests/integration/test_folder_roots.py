"""The folder a source names, and the folder a partition is, as folders to the end.

An ADLS Gen2 source URL naming a directory is a folder whether or not it holds anything: an
empty one copies nothing ("0 objects") and, with --empty-dirs, becomes the destination
folder, as a directory with content does (its files go into the destination folder and the
directory itself is made there).  A folder partition of a job (plan --partition-by auto)
lists its own folder, as S3 lists ``d/`` under ``d/``: run copies it and verify --job
proves it.  Against the Gen2 DFS double (tests/doubles/dfs.py) and moto."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Any

import lakeshift
from tests.doubles.dfs import DfsDouble
from tests.helpers import blobs, s3_objects


def _gen2_container(gen2: DfsDouble, container: str) -> Any:
    """The container through the double's blob endpoint: a blob written there gets its
    parent directories, as on ADLS Gen2."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(gen2.connection_string()) \
        .get_container_client(container)


def _rows(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_an_empty_gen2_directory_named_as_the_source_is_a_folder(
        container: str, gen2: DfsDouble, blob_service: Any, tmp_path: Path) -> None:
    # (container first: its fixture points the environment at Azurite itself, gen2's after)
    c = _gen2_container(gen2, container)
    c.upload_blob("t/full/x.txt", b"x")  # directories t and t/full
    # An empty directory, as Gen2 shows it on the blob endpoint (and the double keeps it).
    c.upload_blob("t/e", b"", metadata={"hdi_isfolder": "true"})
    out = f"c-{container[2:]}-out"
    blob_service.create_container(out)

    plain = lakeshift.copy(f"az://{container}/t/e", f"az://{out}/u/")
    assert (plain.exit_code, plain.stats.listed, plain.stats.copied) == (0, 0, 0)
    assert blobs(blob_service, out) == {}

    made = lakeshift.copy(f"az://{container}/t/e", f"az://{out}/u/", empty_dirs=True)
    assert (made.exit_code, made.stats.copied, dict(made.proofs)) == (0, 1, {"folder": 1})
    assert blobs(blob_service, out)["u"].metadata == {"hdi_isfolder": "true"}
    again = lakeshift.copy(f"az://{container}/t/e", f"az://{out}/u/", empty_dirs=True)
    assert (again.stats.copied, again.stats.skipped_by_reason) == (0, {"identical": 1})
    v = lakeshift.verify(f"az://{container}/t/e", f"az://{out}/u/", empty_dirs=True,
                         report=tmp_path / "v1")
    assert (v.exit_code, v.verified, v.proofs) == (0, 1, {"folder": 1}), _rows(tmp_path / "v1")

    # A directory with content, named the same way (no slash): its files go into the
    # destination folder, and the directory itself is that folder.
    full = lakeshift.copy(f"az://{container}/t/full", f"az://{out}/w/", empty_dirs=True)
    assert (full.exit_code, full.stats.copied, full.proofs["folder"]) == (0, 2, 1)
    assert set(blobs(blob_service, out, "w")) == {"w", "w/x.txt"}

    blob_service.get_blob_client(out, "u").delete_blob()
    gone = lakeshift.verify(f"az://{container}/t/e", f"az://{out}/u/", empty_dirs=True,
                            report=tmp_path / "v2")
    assert (gone.exit_code, gone.missing) == (1, 1)
    [row] = _rows(tmp_path / "v2")
    assert (row["kind"], row["source_key"]) == ("missing", "t/e/")


def test_run_copies_each_folder_partitions_own_folder_and_verify_job_proves_it(
        container: str, gen2: DfsDouble, s3: Any, bucket: str, tmp_path: Path) -> None:
    c = _gen2_container(gen2, container)
    files = ("t/d1/a.txt", "t/d1/b.txt", "t/d2/c.txt", "t/d2/d.txt", "t/top.txt")
    for k in files:
        c.upload_blob(k, k.encode())
    db = f"sqlite:///{tmp_path}/j.db"
    lakeshift.plan(f"az://{container}/t/", f"s3://{bucket}/q/", job="j", db=db,
                   partition_by="auto", target_objects=4, empty_dirs=True)
    prefixes = {p for (p,) in sqlite3.connect(tmp_path / "j.db").execute(
        "select prefix from lakeshift_partitions where range_start is null "
        "and range_end is null")}
    assert prefixes == {"t/d1/", "t/d2/"}  # each folder a partition of its own

    ran = lakeshift.run(job="j", db=db)
    # The files, and as S3 folder objects the folder named (the destination root) and the
    # folder of each partition, which only that partition lists.
    assert (ran.exit_code, ran.stats.copied) == (0, len(files) + 3)
    assert {k for k, v in s3_objects(s3, bucket, "q/").items() if k.endswith("/")} == {
        "q/", "q/d1/", "q/d2/"}
    v = lakeshift.verify(job="j", db=db, report=tmp_path / "v1")
    assert (v.exit_code, v.differences) == (0, 0), _rows(tmp_path / "v1")
    assert (v.verified, v.proofs["folder"]) == (ran.stats.copied, 3)

    s3.delete_object(Bucket=bucket, Key="q/d1/")
    gone = lakeshift.verify(job="j", db=db, report=tmp_path / "v2")
    assert (gone.exit_code, gone.missing) == (1, 1)
    [row] = _rows(tmp_path / "v2")
    assert (row["name"], row["kind"]) == ("d1/", "missing")
