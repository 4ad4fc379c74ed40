"""`lakeshift sync --inventory` with S3 Inventory reports on moto, as S3 writes them.

S3 Inventory (AWS S3 user guide, "Locating your inventory list"): the report is a
``manifest.json`` naming its ``sourceBucket``, its ``destinationBucket`` (an ARN), its
``fileFormat`` (``CSV``, ``ORC`` or ``Parquet``), its ``fileSchema`` and its data ``files``.
For CSV the schema is a list of column names (``Bucket, Key, Size, …``) and the data files are
gzipped, headerless, every field quoted, keys URL-encoded.  For Parquet the schema is the
Parquet message (``message s3.inventory { required binary bucket (UTF8); required binary key
(UTF8); … optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8);
… }``), columns in snake case, keys not encoded.
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from tests.e2e.cli import lakeshift as cli
from tests.helpers import next_second

PARQUET_SCHEMA = (
    "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); "
    "optional binary version_id (UTF8); optional boolean is_latest; optional boolean "
    "is_delete_marker; optional int64 size; optional int64 last_modified_date "
    "(TIMESTAMP_MILLIS); optional binary e_tag (UTF8); optional binary storage_class (UTF8); "
    "optional boolean is_multipart_uploaded;}")


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        pa.field("bucket", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("version_id", pa.string()),
        pa.field("is_latest", pa.bool_()),
        pa.field("is_delete_marker", pa.bool_()),
        pa.field("size", pa.int64()),
        pa.field("last_modified_date", pa.timestamp("ms", tz="UTC")),
        pa.field("e_tag", pa.string()),
        pa.field("storage_class", pa.string()),
        pa.field("is_multipart_uploaded", pa.bool_()),
    ])
    full = [{"version_id": None, "is_latest": True, "is_delete_marker": False,
             "storage_class": "STANDARD", "is_multipart_uploaded": False, **r} for r in rows]
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(full, schema=schema), out)
    return out.getvalue()


def _row(s3: Any, bucket: str, key: str, **extra: Any) -> dict[str, Any]:
    head = s3.head_object(Bucket=bucket, Key=key)
    return {"bucket": bucket, "key": key, "size": head["ContentLength"],
            "last_modified_date": head["LastModified"].astimezone(UTC),
            "e_tag": head["ETag"].strip('"'), **extra}


def _publish(s3: Any, inv: str, source: str, stamp: str, data: list[bytes]) -> str:
    """Write a Parquet report as S3 does: data files under data/, the manifest under a
    timestamped folder; returns the manifest's URL.  Taken a second after the objects
    written before it (a report is a snapshot: a pass's window ends at its
    creationTimestamp, and LastModified has whole seconds)."""
    next_second()
    base = f"reports/{source}/daily"
    files = []
    for i, body in enumerate(data):
        key = f"{base}/data/{stamp}-{i}.parquet"
        s3.put_object(Bucket=inv, Key=key, Body=body)
        files.append({"key": key, "size": len(body), "MD5checksum": "0" * 32})
    manifest = f"{base}/{stamp}/manifest.json"
    s3.put_object(Bucket=inv, Key=manifest, Body=json.dumps({
        "sourceBucket": source, "destinationBucket": f"arn:aws:s3:::{inv}",
        "version": "2016-11-30", "creationTimestamp": str(int(time.time() * 1000)),
        "fileFormat": "Parquet", "fileSchema": PARQUET_SCHEMA, "files": files}))
    return f"s3://{inv}/{manifest}"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_parquet_inventory_is_read_instead_of_listing(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    for key, body in (("data/a", b"a-v1"), ("data/b c é", b"bbb"), ("data/old", b"old"),
                      ("data/sub/d", b"dddd"), ("other/x", b"outside the job")):
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    inv = bucket + "-inv"
    s3.create_bucket(Bucket=inv)
    rows = [_row(s3, bucket, k) for k in ("data/a", "data/b c é", "data/old")]
    # A deleted key (its delete marker is the latest version) and an older version: not
    # objects to copy.  A key outside the job's prefix: not this job's.
    gone = {"bucket": bucket, "key": "data/deleted", "size": 0, "is_delete_marker": True,
            "last_modified_date": rows[0]["last_modified_date"], "e_tag": None}
    older = {**rows[0], "is_latest": False, "size": 99, "version_id": "v0"}
    first = _publish(s3, inv, bucket, "2026-01-01T00-00Z", [
        _parquet([*rows, gone, older]),
        _parquet([_row(s3, bucket, "data/sub/d"), _row(s3, bucket, "other/x")])])
    db, dst = f"sqlite:///{tmp_path}/c.db", tmp_path / "dst"
    p = cli("sync", f"s3://{bucket}/data/", str(dst), "--job", "inv", "--db", db, "--lag", "0",
            "--inventory", first, "--json", "--progress", "none", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["copied"] == 4
    assert _tree(dst) == {"a": b"a-v1", "b c é": b"bbb", "old": b"old", "sub/d": b"dddd"}

    # The next report: one object changed since the last pass; the others are outside its
    # window and are not looked at.
    next_second()  # LastModified has whole seconds: the change lands in the next window
    s3.put_object(Bucket=bucket, Key="data/a", Body=b"a-v2, changed")
    next_second()
    second = _publish(s3, inv, bucket, "2026-01-02T00-00Z", [_parquet([
        _row(s3, bucket, k) for k in ("data/a", "data/b c é", "data/old", "data/sub/d")])])
    p = cli("sync", "--job", "inv", "--db", db, "--lag", "0", "--inventory", second, "--json",
            "--progress", "none", env=cli_env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (out["copied"], out["skipped"], out["failed"]) == (1, 0, 0)
    assert _tree(dst)["a"] == b"a-v2, changed"


def test_a_csv_inventory_as_s3_writes_it(cli_env: dict[str, str], s3: Any, bucket: str,
                                        tmp_path: Path) -> None:
    import gzip

    s3.put_object(Bucket=bucket, Key="data/x y+z", Body=b"xyz")
    s3.put_object(Bucket=bucket, Key="data/plain", Body=b"plain")
    inv = bucket + "-inv"
    s3.create_bucket(Bucket=inv)
    lines = []
    for key, encoded in (("data/x y+z", "data/x%20y%2Bz"), ("data/plain", "data/plain")):
        h = s3.head_object(Bucket=bucket, Key=key)
        lm = h["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(f'"{bucket}","{encoded}","{h["ContentLength"]}","{lm}",'
                     f'"{h["ETag"].strip(chr(34))}","STANDARD"\n')
    lines.append(f'"{bucket}","data/deleted","","","","","true"\n')
    s3.put_object(Bucket=inv, Key="r/data/1.csv.gz", Body=gzip.compress("".join(lines).encode()))
    next_second()  # the report is taken after the objects (see _publish)
    s3.put_object(Bucket=inv, Key="r/2026-01-01T00-00Z/manifest.json", Body=json.dumps({
        "sourceBucket": bucket, "destinationBucket": f"arn:aws:s3:::{inv}",
        "version": "2016-11-30", "creationTimestamp": str(int(time.time() * 1000)),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass, "
                      "IsDeleteMarker",
        "files": [{"key": "r/data/1.csv.gz", "size": 1, "MD5checksum": "0" * 32}]}))
    db, dst = f"sqlite:///{tmp_path}/c.db", tmp_path / "dst"
    next_second()  # a window ends on a whole second: the objects must be before it
    p = cli("sync", f"s3://{bucket}/data/", str(dst), "--job", "csv", "--db", db, "--lag", "0",
            "--inventory", f"s3://{inv}/r/2026-01-01T00-00Z/manifest.json", "--json",
            "--progress", "none", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["copied"] == 2
    assert _tree(dst) == {"x y+z": b"xyz", "plain": b"plain"}


def test_what_changed_after_the_report_was_taken_is_copied_by_the_next_pass(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="data/a", Body=b"a")
    inv = bucket + "-inv"
    s3.create_bucket(Bucket=inv)
    report = _publish(s3, inv, bucket, "2026-01-01T00-00Z", [_parquet([_row(s3, bucket,
                                                                             "data/a")])])
    next_second()
    s3.put_object(Bucket=bucket, Key="data/b", Body=b"written after the report")
    next_second()
    db, dst = f"sqlite:///{tmp_path}/c.db", tmp_path / "dst"
    p = cli("sync", f"s3://{bucket}/data/", str(dst), "--job", "inv", "--db", db, "--lag", "0",
            "--inventory", report, "--json", "--progress", "none", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert _tree(dst) == {"a": b"a"}
    # The window of that pass ended when the report was taken: a listing pass sees b.
    p = cli("sync", "--job", "inv", "--db", db, "--lag", "0", "--json", "--progress", "none",
            env=cli_env)
    assert p.returncode == 0, p.stderr
    assert _tree(dst) == {"a": b"a", "b": b"written after the report"}
