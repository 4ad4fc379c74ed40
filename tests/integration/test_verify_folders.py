"""verify counts the folders a copy made as the copy does: a source's empty directory
(Gen1/HDFS folder marker) is proven there as a folder (proof ``folder``), so verify's
proofs add up to what the copy copied; a folder gone from the destination is missing, as
a file would be.  Gen1 double → Gen2 double (directories listed by the account) and HDFS
double → local disk (which lists an empty directory as a marker, and one that holds files
not at all: asked per folder)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import lakeshift
from tests.doubles.dfs import DfsDouble
from tests.doubles.fixtures import GEN1_HOST
from tests.doubles.webhdfs import WebHdfsDouble

FILES = {"lake/a/b/c.csv": b"id\n1\n", "lake/a/d.csv": b"id\n2\n", "lake/top.txt": b"top"}
EMPTY = ("lake/empty", "lake/a/e/f")  # a top-level and a nested empty directory


def _tree(double: WebHdfsDouble) -> None:
    for k, v in FILES.items():
        double.write(k, v)
    for d in EMPTY:
        (double.root / d).mkdir(parents=True)


def _rows(prefix: Path) -> list[dict[str, str]]:
    with open(f"{prefix}.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_gen1_folders_are_verified_at_gen2_and_a_missing_one_is_a_difference(
        container: str, gen1: WebHdfsDouble, gen2: DfsDouble, blob_service: Any,
        tmp_path: Path) -> None:
    # (container first: its fixture points the environment at Azurite itself, gen2's after)
    _tree(gen1)
    src, dst = f"adl://{GEN1_HOST}/lake/", f"az://{container}/g2/"
    copied = lakeshift.copy(src, dst)
    assert copied.exit_code == 0 and copied.stats.copied == len(FILES) + len(EMPTY)
    assert copied.proofs["folder"] == len(EMPTY)

    v = lakeshift.verify(src, dst, report=tmp_path / "v1")
    assert v.exit_code == 0 and v.differences == 0, _rows(tmp_path / "v1")
    # As many proven as copied, the folders by the copy's word for them.
    assert v.proofs == {"read-md5": len(FILES), "folder": len(EMPTY)}
    assert v.verified == v.checked == copied.stats.copied
    assert json.loads((tmp_path / "v1.json").read_text())["proofs"]["folder"] == len(EMPTY)

    # The nested empty directory removed from the account: verify says it is missing.
    blob_service.get_blob_client(container, "g2/a/e/f").delete_blob()
    gone = lakeshift.verify(src, dst, report=tmp_path / "v2")
    assert gone.exit_code == 1 and gone.missing == 1 and gone.proofs["folder"] == 1
    [row] = _rows(tmp_path / "v2")
    assert (row["name"], row["kind"], row["source_key"]) == ("a/e/f/", "missing", "lake/a/e/f/")
    assert row["detail"] == "folder not at the destination"

    # A copy run with --no-empty-dirs made no folders: verified as it was run.
    as_run = lakeshift.verify(src, dst, report=tmp_path / "v3", empty_dirs=False)
    assert as_run.exit_code == 0 and "folder" not in as_run.proofs
    assert as_run.checked == len(FILES)


def test_hdfs_folders_are_verified_on_local_disk(hadoop: WebHdfsDouble,
                                                 tmp_path: Path) -> None:
    _tree(hadoop)
    out = tmp_path / "out"
    src = "webhdfs://nn:9870/lake/"
    copied = lakeshift.copy(src, str(out))
    assert copied.exit_code == 0 and copied.proofs["folder"] == len(EMPTY)
    assert (out / "empty").is_dir() and (out / "a/e/f").is_dir()

    v = lakeshift.verify(src, str(out), report=tmp_path / "v1", list_verified=True)
    assert v.exit_code == 0 and v.proofs["folder"] == len(EMPTY), _rows(tmp_path / "v1")
    assert v.verified == copied.stats.copied
    with open(tmp_path / "v1-verified.csv", newline="", encoding="utf-8") as fh:
        folders = {r["name"]: r["destination_key"] for r in csv.DictReader(fh)
                   if r["proof"] == "folder"}
    assert folders == {"empty/": "empty", "a/e/f/": "a/e/f"}

    shutil.rmtree(out / "empty")
    gone = lakeshift.verify(src, str(out), report=tmp_path / "v2")
    assert gone.exit_code == 1 and gone.missing == 1 and gone.proofs["folder"] == 1
    [row] = _rows(tmp_path / "v2")
    assert (row["name"], row["kind"]) == ("empty/", "missing")
    # A file where the folder was is not the folder either.
    (out / "empty").write_bytes(b"")
    file_there = lakeshift.verify(src, str(out), report=tmp_path / "v3")
    assert file_there.exit_code == 1 and file_there.missing == 1
    # A folder that holds a file since (its listing names no marker for it) is asked: it is
    # there, proven; the copy finds it there too.
    (out / "empty").unlink()
    (out / "empty").mkdir()
    (out / "empty" / "later.txt").write_bytes(b"later")
    held = lakeshift.verify(src, str(out), report=tmp_path / "v4")
    assert (held.missing, held.extra, held.proofs["folder"]) == (0, 1, len(EMPTY))
    again = lakeshift.copy(src, str(out))
    assert (again.exit_code, again.stats.copied) == (0, 0)


def test_verify_of_a_job_follows_its_empty_dirs_setting(hadoop: WebHdfsDouble,
                                                        tmp_path: Path) -> None:
    """A job planned with --no-empty-dirs made no folders: verify --job checks none (it
    would call each one missing), as --invalid-names follows the job's."""
    _tree(hadoop)
    out, db = tmp_path / "out", f"sqlite:///{tmp_path}/jobs.db"
    lakeshift.plan("webhdfs://nn:9870/lake/", str(out), job="j", db=db, empty_dirs=False)
    ran = lakeshift.run(job="j", db=db)
    assert ran.exit_code == 0 and not (out / "empty").exists()
    v = lakeshift.verify(job="j", db=db, report=tmp_path / "v")
    assert v.exit_code == 0 and "folder" not in v.proofs, _rows(tmp_path / "v")
    assert v.verified == len(FILES)


def test_local_folders_are_made_and_verified_at_gen2(container: str, gen2: DfsDouble,
                                                     blob_service: Any,
                                                     tmp_path: Path) -> None:
    """A local source's empty folders go to an ADLS Gen2 account as directories by default
    (both sides have real ones), as Gen1's do; a rerun finds them; verify proves them."""
    src = tmp_path / "lake"
    for k, v in FILES.items():
        (tmp_path / k).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / k).write_bytes(v)
    for d in EMPTY:
        (tmp_path / d).mkdir(parents=True)
    dst = f"az://{container}/g2/"
    copied = lakeshift.copy(str(src), dst)
    assert copied.exit_code == 0 and copied.proofs["folder"] == len(EMPTY)
    listed = {b.name: b.metadata for b in blob_service.get_container_client(
        container).list_blobs(name_starts_with="g2/", include=["metadata"])}
    assert listed["g2/empty"] == listed["g2/a/e/f"] == {"hdi_isfolder": "true"}
    again = lakeshift.copy(str(src), dst)
    assert (again.exit_code, again.stats.copied) == (0, 0)
    v = lakeshift.verify(str(src), dst, report=tmp_path / "v")
    assert v.exit_code == 0 and v.proofs == {"read-md5": len(FILES), "folder": len(EMPTY)}, \
        _rows(tmp_path / "v")


def test_folders_a_copy_made_on_a_flat_container_with_empty_dirs_are_verified(
        container: str, gen1: WebHdfsDouble, blob_service: Any, tmp_path: Path) -> None:
    """copy --empty-dirs to a container without a hierarchical namespace writes a marker
    blob per empty directory (proof 'folder'); verify --empty-dirs, as the copy was run,
    proves them and finds one deleted."""
    _tree(gen1)
    src, dst = f"adl://{GEN1_HOST}/lake/", f"az://{container}/flat/"
    copied = lakeshift.copy(src, dst, empty_dirs=True)
    assert copied.exit_code == 0 and copied.proofs["folder"] == len(EMPTY)

    v = lakeshift.verify(src, dst, report=tmp_path / "v1", empty_dirs=True)
    assert v.exit_code == 0 and v.differences == 0, _rows(tmp_path / "v1")
    assert v.proofs == {"read-md5": len(FILES), "folder": len(EMPTY)}
    assert v.verified == copied.stats.copied

    markers = [b.name for b in blob_service.get_container_client(container)
               .list_blobs(name_starts_with="flat/empty")]
    assert len(markers) == 1
    blob_service.get_blob_client(container, markers[0]).delete_blob()
    gone = lakeshift.verify(src, dst, report=tmp_path / "v2", empty_dirs=True)
    assert gone.exit_code == 1 and gone.missing == 1 and gone.proofs["folder"] == 1
    [row] = _rows(tmp_path / "v2")
    assert (row["name"], row["kind"]) == ("empty/", "missing")
    # Left to its default (no real directories there), verify checks files only.
    assert lakeshift.verify(src, dst, report=tmp_path / "v3").proofs == {
        "read-md5": len(FILES)}


def test_verify_job_proves_the_markers_a_job_with_folder_markers_keep_copied(
        s3: Any, bucket: str, container: str, blob_service: Any, tmp_path: Path) -> None:
    """A job planned with --folder-markers keep copies each S3 folder marker as a folder
    blob (proof 'folder'); verify --job follows the job: it proves them, and a deleted one
    is missing."""
    s3.put_object(Bucket=bucket, Key="m/dir/", Body=b"")
    s3.put_object(Bucket=bucket, Key="m/dir/f.txt", Body=b"f")
    s3.put_object(Bucket=bucket, Key="m/top.txt", Body=b"t")
    db = f"sqlite:///{tmp_path}/c.db"
    lakeshift.plan(f"s3://{bucket}/m/", f"az://{container}/q/", job="j", db=db,
                   folder_markers="keep")
    done = lakeshift.run(job="j", db=db)
    assert done.exit_code == 0 and done.stats.copied == 3

    v = lakeshift.verify(job="j", db=db, report=tmp_path / "v1")
    assert v.exit_code == 0 and v.differences == 0, _rows(tmp_path / "v1")
    assert v.proofs["folder"] == 1 and v.verified == done.stats.copied
    # Without the job: --empty-dirs, as the README says.
    urls = (f"s3://{bucket}/m/", f"az://{container}/q/")
    assert lakeshift.verify(*urls, report=tmp_path / "v0", empty_dirs=True).proofs[
        "folder"] == 1

    blob_service.get_blob_client(container, "q/dir").delete_blob()
    gone = lakeshift.verify(job="j", db=db, report=tmp_path / "v2")
    assert gone.exit_code == 1 and gone.missing == 1
    [row] = _rows(tmp_path / "v2")
    assert (row["name"], row["kind"]) == ("dir/", "missing")
