"""The engine against real emulators: moto server (S3) → Azurite (Blob)."""

from __future__ import annotations

import os
from typing import Any

import pytest

import lakeshift
from tests.helpers import blob_bytes, blobs, md5, put_multipart, s3_objects

MiB = 1024 * 1024


def _seed(s3: Any, bucket: str) -> dict[str, bytes]:
    objs = {
        "raw/2024/01/a.csv": b"id,v\n1,2\n",
        "raw/2024/01/b c.json": b'{"k": 1}',
        "raw/2024/02/ünï code.txt": "grüße".encode(),
        "raw/empty.bin": b"",
        "raw/deep/x/y/z.parquet": os.urandom(3000),
        # Single part (ETag = MD5) and above the block size used below: streamed into one
        # Put Blob that Azure checks against the source's MD5.
        "raw/big/single.bin": os.urandom(3 * MiB + 5),
        "other/skip.txt": b"not under raw/",
    }
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v, ContentType="text/csv" if k.endswith(".csv")
                      else "application/octet-stream", Metadata={"source-team": "ingest"},
                      CacheControl="max-age=300")
    # A multipart object (ETag md5-of-md5s-2), larger than the block size used below.
    big = os.urandom(6 * MiB + 123)
    put_multipart(s3, bucket, "raw/big/multi.bin", big, 5 * MiB, ContentType="application/x-big")
    objs["raw/big/multi.bin"] = big
    return objs


def test_copy_is_exact_keeps_properties_and_reruns_copy_nothing(
        s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    objs = _seed(s3, bucket)
    res = lakeshift.copy(f"s3://{bucket}/raw/", f"az://{container}/landing",
                         block_size=1 * MiB, concurrency=8)
    assert res.exit_code == 0, res.failures
    want = {"landing/" + k[len("raw/"):]: v for k, v in objs.items() if k.startswith("raw/")}
    got = blobs(blob_service, container)
    assert set(got) == set(want)
    for name, data in want.items():
        assert blob_bytes(blob_service, container, name) == data, name
        # Every blob carries a Content-MD5 that matches its bytes (block uploads included).
        assert bytes(got[name].content_settings.content_md5) == md5(data), name
        assert got[name].metadata["lakeshift_src_etag"]
    assert got["landing/2024/01/a.csv"].content_settings.content_type == "text/csv"
    assert got["landing/2024/01/a.csv"].content_settings.cache_control == "max-age=300"
    assert got["landing/2024/01/a.csv"].metadata["source_x2D_team"] == "ingest"
    assert got["landing/big/multi.bin"].content_settings.content_type == "application/x-big"
    assert got["landing/big/single.bin"].metadata["source_x2D_team"] == "ingest"
    assert got["landing/big/single.bin"].content_settings.cache_control == "max-age=300"
    assert res.stats.copied == len(want) and res.stats.copied_bytes == sum(map(len, want.values()))

    again = lakeshift.copy(f"s3://{bucket}/raw/", f"az://{container}/landing", block_size=MiB)
    assert (again.stats.copied, again.stats.skipped) == (0, len(want))

    s3.put_object(Bucket=bucket, Key="raw/2024/01/a.csv", Body=b"id,v\n1,3\n")
    third = lakeshift.copy(f"s3://{bucket}/raw/", f"az://{container}/landing", block_size=MiB)
    assert (third.stats.copied, third.stats.skipped) == (1, len(want) - 1)
    assert blob_bytes(blob_service, container, "landing/2024/01/a.csv") == b"id,v\n1,3\n"


def test_string_prefix_folder_and_single_object(
        s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    for k in ("logs/2024-01/a", "logs/2024-02.csv", "logs/2023-12/b", "logs/x"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    lakeshift.copy(f"s3://{bucket}/logs/2024-", f"az://{container}/p/")
    assert set(blobs(blob_service, container, "p/")) == {"p/2024-01/a", "p/2024-02.csv"}
    lakeshift.copy(f"s3://{bucket}/logs", f"az://{container}/f")
    assert set(blobs(blob_service, container, "f/")) == {
        "f/2024-01/a", "f/2024-02.csv", "f/2023-12/b", "f/x"}
    lakeshift.copy(f"s3://{bucket}/logs/x", f"az://{container}/one")
    assert set(blobs(blob_service, container, "one/")) == {"one/x"}


def test_folder_markers_skip_or_keep(s3: Any, bucket: str, blob_service: Any,
                                     container: str) -> None:
    s3.put_object(Bucket=bucket, Key="d/", Body=b"")
    s3.put_object(Bucket=bucket, Key="d/e/", Body=b"")
    s3.put_object(Bucket=bucket, Key="d/e/f.txt", Body=b"f")
    res = lakeshift.copy(f"s3://{bucket}/", f"az://{container}/skip/")
    assert set(blobs(blob_service, container, "skip/")) == {"skip/d/e/f.txt"}
    assert res.stats.skipped == 2
    lakeshift.copy(f"s3://{bucket}/", f"az://{container}/keep/", folder_markers="keep")
    got = blobs(blob_service, container, "keep/")
    assert set(got) == {"keep/d", "keep/d/e", "keep/d/e/f.txt"}
    assert got["keep/d/e"].metadata.get("hdi_isfolder") == "true" and got["keep/d/e"].size == 0


def test_include_exclude_and_dry_run(s3: Any, bucket: str, blob_service: Any,
                                     container: str) -> None:
    for k in ("t/a.csv", "t/b.json", "t/_tmp/c.csv", "t/sub/d.csv"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    dry = lakeshift.copy(f"s3://{bucket}/t/", f"az://{container}/dry/", include=("*.csv",),
                         exclude=("_tmp/**",), dry_run=True)
    assert dry.stats.copied == 2 and blobs(blob_service, container, "dry/") == {}
    lakeshift.copy(f"s3://{bucket}/t/", f"az://{container}/real/", include=("*.csv",),
                   exclude=("_tmp/**",))
    assert set(blobs(blob_service, container, "real/")) == {"real/a.csv", "real/sub/d.csv"}


def test_destination_container_is_created_and_other_directions_work(
        s3: Any, bucket: str, blob_service: Any, tmp_path: Any) -> None:
    src = tmp_path / "src"
    (src / "n").mkdir(parents=True)
    (src / "n" / "f.txt").write_bytes(b"local data")
    (src / "big.bin").write_bytes(os.urandom(3 * MiB + 5))
    new = "created-by-lakeshift"
    res = lakeshift.copy(str(src), f"az://{new}/", block_size=MiB)
    assert res.exit_code == 0
    assert set(blobs(blob_service, new)) == {"n/f.txt", "big.bin"}
    assert blobs(blob_service, new)["n/f.txt"].content_settings.content_type == "text/plain"
    # Azure → S3 and S3 → local: the same engine in other directions.
    lakeshift.copy(f"az://{new}/", f"s3://{bucket}/back/", block_size=MiB)
    assert s3_objects(s3, bucket, "back/")["back/big.bin"] == (src / "big.bin").read_bytes()
    lakeshift.copy(f"s3://{bucket}/back/", str(tmp_path / "out"), block_size=MiB)
    assert (tmp_path / "out" / "n" / "f.txt").read_bytes() == b"local data"
    assert (tmp_path / "out" / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    # Azure → Azure and Azure → local: big.bin has a Content-MD5 (set on Put Block List), so
    # it streams into one put checked against it (by Azure; by lakeshift on local disk).
    # (into another container: a destination inside its source is refused)
    assert lakeshift.copy(f"az://{new}/", f"az://{new}-copy/", block_size=MiB,
                          include=("big.bin",)).exit_code == 0
    copied = blobs(blob_service, f"{new}-copy")["big.bin"]
    assert bytes(copied.content_settings.content_md5) == md5((src / "big.bin").read_bytes())
    assert blob_bytes(blob_service, f"{new}-copy", "big.bin") == (src / "big.bin").read_bytes()
    assert lakeshift.copy(f"az://{new}/", str(tmp_path / "fromaz"), block_size=MiB).exit_code == 0
    assert (tmp_path / "fromaz" / "big.bin").read_bytes() == (src / "big.bin").read_bytes()


@pytest.mark.parametrize("url,needle", [
    ("s3://no-such-bucket-xyz/", "bucket does not exist"),
    ("az://no-such-container/", "container/filesystem does not exist"),
])
def test_missing_source_bucket_or_container(url: str, needle: str, s3_env: Any,
                                            azure_env: Any, tmp_path: Any) -> None:
    with pytest.raises(lakeshift.UsageError, match=needle):
        lakeshift.copy(url, str(tmp_path / "out"))


def test_expiring_aws_credentials_are_refreshed_during_a_copy(
        s3: Any, bucket: str, blob_service: Any, container: str, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A credential_process profile hands out credentials that expire in a minute; botocore
    refreshes them before they expire and lakeshift picks up each new set."""
    import sys

    for i in range(8):  # each credential use runs the process (~0.15 s): a few objects
        s3.put_object(Bucket=bucket, Key=f"r/{i}", Body=b"x" * 100)
    calls = tmp_path / "calls"
    script = tmp_path / "creds.py"
    script.write_text(
        "import datetime, json, pathlib\n"
        f"p = pathlib.Path({str(calls)!r}); n = int(p.read_text()) if p.exists() else 0\n"
        "p.write_text(str(n + 1))\n"
        "exp = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': f'AKIAROT{n:04d}', "
        "'SecretAccessKey': f'rotating-secret-{n}', "
        "'Expiration': exp.isoformat()}))\n")
    config = tmp_path / "config"
    config.write_text(f"[profile rot]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    res = lakeshift.copy(f"s3://{bucket}/r/", f"az://{container}/r/", concurrency=4,
                         store_options=lakeshift.StoreOptions(aws_profile="rot"))
    assert res.exit_code == 0 and res.stats.copied == 8
    # Credentials closer than 15 minutes to expiry are refreshed before use.
    assert int(calls.read_text()) > 2


def test_hierarchical_namespace_is_asked_of_the_service(azure_env: Any, container: str) -> None:
    """Get Account Information decides, not the URL: abfss:// on Azurite is still flat."""
    import asyncio

    from lakeshift.stores.base import StoreConfig
    from lakeshift.stores.registry import open_store

    async def main() -> bool:
        store = open_store(StoreConfig(lakeshift.parse_url(
            f"abfss://{container}@devstoreaccount1.dfs.core.windows.net/x/")))
        try:
            await store.prepare_destination()
            return store.capabilities.hierarchical
        finally:
            await store.close()

    assert asyncio.run(main()) is False


def test_a_local_destination_reruns_copy_only_what_changed(
        s3: Any, bucket: str, tmp_path: Any) -> None:
    objs = _seed(s3, bucket)
    out = tmp_path / "out"
    first = lakeshift.copy(f"s3://{bucket}/raw/", str(out), block_size=MiB)
    assert first.exit_code == 0 and first.stats.copied == 7
    again = lakeshift.copy(f"s3://{bucket}/raw/", str(out), block_size=MiB)
    assert (again.stats.copied, again.stats.skipped) == (0, 7)
    # Changed at the destination (same size, new mtime): its record no longer holds.
    target = out / "deep" / "x" / "y" / "z.parquet"
    target.write_bytes(os.urandom(3000))
    third = lakeshift.copy(f"s3://{bucket}/raw/", str(out), block_size=MiB)
    assert (third.stats.copied, third.stats.skipped) == (1, 6)
    assert target.read_bytes() == objs["raw/deep/x/y/z.parquet"]


def test_a_non_empty_object_with_hdi_isfolder_stays_a_file(
        s3: Any, bucket: str, blob_service: Any, container: str, tmp_path: Any) -> None:
    """ADLS Gen2 takes a blob with ``hdi_isfolder=true`` for a folder: only a zero-length one
    is; a non-empty object's key is renamed lakeshift_hdi_isfolder, value kept."""
    big = os.urandom(3 * MiB + 1)
    s3.put_object(Bucket=bucket, Key="h/small.txt", Body=b"data",
                  Metadata={"hdi_isfolder": "true", "team": "x"})
    s3.put_object(Bucket=bucket, Key="h/big.bin", Body=big, Metadata={"HDI_ISFOLDER": "true"})
    res = lakeshift.copy(f"s3://{bucket}/h/", f"az://{container}/h/", block_size=MiB,
                         single_put_max=MiB)
    assert res.exit_code == 0 and res.stats.copied == 2
    got = blobs(blob_service, container, "h/")
    for key in ("h/small.txt", "h/big.bin"):
        meta = {k.lower(): v for k, v in got[key].metadata.items()}
        assert "hdi_isfolder" not in meta and meta["lakeshift_hdi_isfolder"] == "true"
    assert got["h/small.txt"].metadata["team"] == "x"
    assert blob_bytes(blob_service, container, "h/big.bin") == big
    assert lakeshift.verify(f"s3://{bucket}/h/", f"az://{container}/h/",
                            report=str(tmp_path / "v")).exit_code == 0
    again = lakeshift.copy(f"s3://{bucket}/h/", f"az://{container}/h/", block_size=MiB)
    assert again.stats.copied == 0


def test_a_non_empty_blob_another_tool_flagged_is_copied_as_a_file(
        blob_service: Any, container: str, tmp_path: Any) -> None:
    cc = blob_service.get_container_client(container)
    cc.upload_blob("f/flagged", b"abc", metadata={"hdi_isfolder": "true"})
    cc.upload_blob("f/dir", b"", metadata={"hdi_isfolder": "true"})
    res = lakeshift.copy(f"az://{container}/f/", str(tmp_path / "out"), empty_dirs=True)
    assert res.exit_code == 0
    assert (tmp_path / "out" / "flagged").read_bytes() == b"abc"
    assert (tmp_path / "out" / "dir").is_dir()
