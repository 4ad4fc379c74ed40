"""Folders on flat destinations and from flat sources, from the CLI as a user runs it.

An S3 destination gets a folder as S3's console and the AWS CLI make one: a zero-byte
object ``d/`` (Content-Type ``application/x-directory``), which its listing shows as the
folder marker a rerun finds there and ``verify --empty-dirs`` proves.  Azure folder blobs
(an ``hdi_isfolder`` blob on a flat account, a Gen2 directory) are listed as ``d/`` too,
so Blob → S3 copies them as ``d/`` once, and a Gen2 source asks the destination nothing per
directory.  A move leaves no emptied source folder behind."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from tests.doubles.dfs import DfsDouble
from tests.doubles.webhdfs import WebHdfsDouble
from tests.e2e.cli import lakeshift
from tests.helpers import blobs, s3_objects


def _json(*args: str, env: dict[str, str], code: int = 0) -> Any:
    p = lakeshift(*args, "--json", env=env)
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def _folder_objects(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """The zero-byte ``d/`` objects under ``prefix`` and their Content-Type."""
    return {k: s3.head_object(Bucket=bucket, Key=k)["ContentType"]
            for k, v in s3_objects(s3, bucket, prefix).items() if k.endswith("/") and not v}


def test_local_and_hdfs_folders_to_s3_are_folder_objects_a_rerun_and_verify_find(
        cli_env: dict[str, str], s3: Any, bucket: str, hadoop: WebHdfsDouble,
        tmp_path: Path) -> None:
    src = tmp_path / "data"
    for d in ("a/e/f", "empty", "full"):
        (src / d).mkdir(parents=True)
    (src / "full" / "x.txt").write_bytes(b"x")
    (src / "a-b.txt").write_bytes(b"ab")  # sorts between folder "a" and "a/"
    log = tmp_path / "proofs.csv"
    url = f"s3://{bucket}/p/"
    done = _json("copy", str(src), url, "--empty-dirs", "--proof-log", str(log), env=cli_env)
    assert (done["copied"], done["proofs"]["folder"]) == (4, 2), done
    assert _folder_objects(s3, bucket, "p/") == {
        "p/a/e/f/": "application/x-directory", "p/empty/": "application/x-directory"}
    assert "p/empty" not in s3_objects(s3, bucket, "p/")
    rows = {r["source_key"]: r["destination_key"] for r in csv.DictReader(log.open())}
    assert rows["empty/"] == "p/empty/"  # the key a HEAD needs
    again = _json("copy", str(src), url, "--empty-dirs", env=cli_env)
    # The folders are there, and the files too: a local file has no MD5 until it is read
    # and an S3 listing carries no metadata, so one HEAD each reads the record of the
    # source's version (its mtime and size) the copy left.
    assert again["skipped_by_reason"] == {"identical": 4}, again
    assert "folder" not in again["proofs"], again

    v = _json("verify", str(src), url, "--empty-dirs", "--report", str(tmp_path / "v"),
              env=cli_env)
    assert (v["verified"], v["differences"], v["proofs"]["folder"]) == (4, 0, 2), v
    s3.delete_object(Bucket=bucket, Key="p/empty/")
    gone = _json("verify", str(src), url, "--empty-dirs", "--report", str(tmp_path / "v2"),
                 env=cli_env, code=1)
    assert gone["missing"] == 1 and "empty/,missing" in (tmp_path / "v2.csv").read_text()

    # An HDFS empty directory is the same folder object.
    hadoop.write("h/a.txt", b"a")
    (hadoop.root / "h/e/x").mkdir(parents=True)
    env = {**cli_env, **hadoop.env}
    for folders in (1, 0):
        h = _json("copy", "webhdfs://nn:9870/h/", f"s3://{bucket}/h/", "--empty-dirs", env=env)
        assert h["proofs"].get("folder", 0) == folders, h
    assert _folder_objects(s3, bucket, "h/") == {"h/e/x/": "application/x-directory"}


def test_s3_and_blob_folder_markers_to_s3_stay_folders(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any,
        container: str, tmp_path: Path) -> None:
    # S3 → S3: a console folder "s/d/" is copied as "t/d/", once.
    s3.put_object(Bucket=bucket, Key="s/d/", Body=b"")
    s3.put_object(Bucket=bucket, Key="s/k.txt", Body=b"k")
    for copied in (2, 0):
        r = _json("copy", f"s3://{bucket}/s/", f"s3://{bucket}/t/", "--folder-markers", "keep",
                  env=cli_env)
        assert r["copied"] == copied, r
    assert _folder_objects(s3, bucket, "t/") == {"t/d/": "application/x-directory"}

    # Blob → S3: hdi_isfolder blobs (as Gen2 or lakeshift make them) are folders there.
    cc = blob_service.get_container_client(container)
    for name in ("f/a", "f/e"):
        cc.upload_blob(name, b"", metadata={"hdi_isfolder": "true"})
    for name, data in (("f/a-b.txt", b"ab"), ("f/a/y.txt", b"y")):
        cc.upload_blob(name, data)
    url = f"s3://{bucket}/g/"
    for copied in (4, 0):
        r = _json("copy", f"az://{container}/f/", url, "--folder-markers", "keep", env=cli_env)
        assert r["copied"] == copied, r
    assert _folder_objects(s3, bucket, "g/") == {"g/a/": "application/x-directory",
                                                 "g/e/": "application/x-directory"}
    assert set(s3_objects(s3, bucket, "g/")) == {"g/a-b.txt", "g/a/", "g/a/y.txt", "g/e/"}
    v = _json("verify", f"az://{container}/f/", url, "--empty-dirs", "--report",
              str(tmp_path / "v"), env=cli_env)
    assert (v["verified"], v["differences"], v["proofs"]["folder"]) == (4, 0, 2), v

    # S3 "d/" → a flat account: an hdi_isfolder blob "d", found there by the rerun.
    for copied in (2, 0):
        r = _json("copy", f"s3://{bucket}/s/", f"az://{container}/m/", "--folder-markers",
                  "keep", env=cli_env)
        assert r["copied"] == copied, r
    assert blobs(blob_service, container, "m/")["m/d"].metadata == {"hdi_isfolder": "true"}


def test_a_gen2_source_asks_the_destination_nothing_per_directory(
        cli_env: dict[str, str], gen2: DfsDouble, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    src = tmp_path / "tree"
    for d in ("a", "e", "n/m"):
        (src / d).mkdir(parents=True)
    (src / "a" / "x.txt").write_bytes(b"x")
    (src / "a-b.txt").write_bytes(b"ab")
    env = {**cli_env, **gen2.env()}
    made = _json("copy", str(src), f"az://{container}/t/", env=env)  # Gen2 directories
    assert made["copied"] == 4, made  # (e/, n/m/ and the two files)
    out = f"c-{container[2:]}-out"
    blob_service.create_container(out)

    def per_directory() -> list[str]:
        """List Blobs of one name under a prefix at the destination: is_folder's question.
        (Not the one a listing of u/ asks of u, its own folder: once per listing.)"""
        return [q for method, fs, q in gen2.blob_requests if method == "GET" and fs == out
                and "maxresults=1&" in q + "&" and "prefix=" in q
                and "prefix=u&" not in q + "&"]

    gen2.blob_requests.clear()
    first = _json("copy", f"az://{container}/t/", f"az://{out}/u/", "--empty-dirs", env=env)
    # Directories t (the folder named: made as u), a, e, n, n/m and the two files, each
    # directory made once, none asked about (the destination's listing shows every folder
    # it has).
    assert (first["copied"], first["proofs"]["folder"]) == (7, 5), first
    assert per_directory() == []
    gen2.blob_requests.clear()
    again = _json("copy", f"az://{container}/t/", f"az://{out}/u/", "--empty-dirs", env=env)
    assert (again["copied"], again["skipped"]) == (0, 7), again
    assert per_directory() == []
    v = _json("verify", f"az://{container}/t/", f"az://{out}/u/", "--empty-dirs", "--report",
              str(tmp_path / "v"), env=env)
    assert (v["verified"], v["differences"], v["proofs"]["folder"]) == (7, 0, 5), v
    assert per_directory() == []


def test_a_move_leaves_no_emptied_source_folder(cli_env: dict[str, str], s3: Any, bucket: str,
                                                tmp_path: Path) -> None:
    src = tmp_path / "data"
    for d in ("a/b", "a/c", "e", "x/y"):
        (src / d).mkdir(parents=True)
    (src / "a/b/1.txt").write_bytes(b"1")
    (src / "a/b/2.txt").write_bytes(b"2")
    (src / "a/c/keep.log").write_bytes(b"kept")  # left out by the filter: its folder stays
    (src / "top.txt").write_bytes(b"t")
    url = f"s3://{bucket}/mv/"
    moved = _json("copy", str(src), url, "--empty-dirs", "--delete-source-after-verify",
                  "--exclude", "*.log", env=cli_env)
    assert (moved["failed"], moved["copied"]) == (0, 5), moved
    left = sorted(str(p.relative_to(src)) for p in src.rglob("*"))
    assert left == ["a", "a/c", "a/c/keep.log"], left
    assert set(s3_objects(s3, bucket, "mv/")) == {"mv/a/b/1.txt", "mv/a/b/2.txt", "mv/e/",
                                                  "mv/top.txt", "mv/x/y/"}

    # Everything moved: the folder the user named stays, empty.
    (src / "a/c/keep.log").unlink()
    (src / "a/c/k.txt").write_bytes(b"k")
    again = _json("copy", str(src), url, "--empty-dirs", "--delete-source-after-verify",
                  env=cli_env)
    assert (again["failed"], again["copied"]) == (0, 1), again
    assert src.is_dir() and list(src.iterdir()) == []
    # The folders it removed are counted apart from the objects, and listed as folders.
    assert (again["sources_deleted"], again["folders_removed"]) == (1, 2), again
    assert sorted(x["key"] for x in again["deletions"] if x["folder"]) == ["a/", "a/c/"], again
    assert (moved["sources_deleted"], moved["folders_removed"]) == (3, 4), moved
    assert s3_objects(s3, bucket, "mv/a/c/") == {"mv/a/c/k.txt": b"k"}


def test_a_move_from_s3_takes_the_folder_objects_it_copied_as_folders(
        cli_env: dict[str, str], s3: Any, bucket: str) -> None:
    for key, data in (("v/d/", b""), ("v/d/x.txt", b"x"), ("v/e/", b""), ("w/f/", b"")):
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    moved = _json("copy", f"s3://{bucket}/v/", f"s3://{bucket}/moved/", "--folder-markers",
                  "keep", "--delete-source-after-verify", env=cli_env)
    assert (moved["copied"], moved["failed"]) == (3, 0), moved
    assert s3_objects(s3, bucket, "v/") == {}
    assert set(s3_objects(s3, bucket, "moved/")) == {"moved/d/", "moved/d/x.txt", "moved/e/"}
    # Without --folder-markers keep a folder object is not copied, so it is not moved.
    kept = _json("copy", f"s3://{bucket}/w/", f"s3://{bucket}/w2/",
                 "--delete-source-after-verify", env=cli_env)
    assert kept["skipped_by_reason"] == {"folder-marker": 1}, kept
    assert set(s3_objects(s3, bucket, "w/")) == {"w/f/"}
