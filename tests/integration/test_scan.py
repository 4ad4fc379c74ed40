"""``lakeshift scan`` on moto: a versioned bucket holding every case a migration trips on, each
counted exactly; and copies that meet archived objects.

moto keeps storage classes (ListObjectsV2 ``StorageClass``; a GET of a GLACIER or
DEEP_ARCHIVE object answers 403 InvalidObjectState, as S3 does), versioning and request
payment.  It does not keep SSE-C: it stores such objects in the clear and HEADs them without
the key.  S3 refuses a HEAD (and a GET) of an SSE-C object without its key with a bare 400,
so the fault proxy answers for the keys named ``ssec-`` as S3 would: 400 with no body to a
HEAD, 400 ``InvalidRequest`` naming Server Side Encryption to a GET."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.engine.retry import RetryPolicy
from lakeshift.errors import ForbiddenError
from lakeshift.plan.prices import load_prices
from lakeshift.plan.scan import ScanOptions, _Tally, scan_async
from lakeshift.plan.scan_calibration import estimate_duration
from lakeshift.plan.source import source_config
from lakeshift.stores.registry import open_store
from tests import servers
from tests.doubles.dfs import DfsDouble
from tests.e2e.cli import lakeshift as lakeshift_cli
from tests.e2e.cli import one_clear_line
from tests.faultproxy import FaultProxy
from tests.helpers import blobs

pytestmark = pytest.mark.slow


# What S3 answers a GET of an SSE-C object made without the customer's key.
SSE_C_REFUSAL = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code>'
                 b"<Message>The object was stored using a form of Server Side Encryption. The "
                 b"correct parameters must be provided to retrieve the object.</Message>"
                 b"</Error>")


@pytest.fixture
def s3_proxy(moto: servers.Server, s3_env: Any,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    p = FaultProxy(f"http://127.0.0.1:{moto.port}")
    p.add("status", method="HEAD", path=r"/ssec-", status=400, uses=10_000)
    p.add("status", method="GET", path=r"/ssec-", status=400, uses=10_000, body=SSE_C_REFUSAL,
          headers={"Content-Type": "application/xml"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.url)
    yield p
    p.stop()


def _lake(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def put(key: str, body: bytes = b"data", **kw: Any) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)

    put("d/plain/", b"")                  # a folder marker with objects below it
    put("d/plain/a.csv", b"a" * 100)
    put("d/plain/b.csv", b"b" * 200)
    put("d/plain/b.csv", b"b" * 300)      # a second version: only the current one counts
    put("d/cold/g1", b"g" * 10, StorageClass="GLACIER")
    put("d/cold/g2", b"g" * 20, StorageClass="GLACIER")
    put("d/cold/deep", b"d" * 30, StorageClass="DEEP_ARCHIVE")
    put("d/cold/instant", b"i" * 40, StorageClass="GLACIER_IR")  # readable
    key = os.urandom(32)
    for name in ("ssec-1", "ssec-2"):
        put(f"d/enc/{name}", b"secret", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    put("d/names/bad./x")                 # a segment ending in a dot
    put("d/names/back\\slash")            # a backslash
    put("d/meta/m1", Metadata={"hdi_isfolder": "true"})       # would make a folder of it
    put("d/meta/m2", Metadata={"hdi_isfolder": "false", "ok": "1"})
    put("d/meta/m3", Metadata={"plain-key": "1", "lakeshift_src_mtime": "2001-01-01T00:00:00Z"})
    put("d/ff", b"file")                  # "ff" is a file and a folder (below)
    put("d/ff/inner", b"inner")
    put("d/empty/", b"")                  # a folder marker with nothing below: empty folder


def _counts(r: lakeshift.ScanResult) -> dict[str, int]:
    return {f.kind: f.objects for f in r.findings}


def test_scan_counts_every_case_exactly(s3_proxy: FaultProxy, s3: Any, bucket: str) -> None:
    _lake(s3, bucket)
    r = lakeshift.scan(f"s3://{bucket}/d/", head_all=True)
    assert r.objects == 17
    assert r.bytes == 100 + 300 + 10 + 20 + 30 + 40 + 2 * 6 + 2 * 4 + 3 * 4 + 4 + 5
    assert _counts(r) == {"archived": 3, "invalid-name": 2, "metadata-collision": 2,
                          "sse-c": 2, "file-folder-collision": 1, "folder-marker": 2,
                          "empty-folder": 1}
    archived = r.finding("archived")
    assert archived is not None and archived.bytes == 60
    assert set(archived.examples) == {"cold/g1 (GLACIER)", "cold/g2 (GLACIER)",
                                      "cold/deep (DEEP_ARCHIVE)"}
    names = r.finding("invalid-name")
    assert names is not None and set(names.examples) == {
        "'names/bad./x' (trailing-dot) → 'names/bad%2E/x'",
        "'names/back\\\\slash' (backslash) → 'names/back%5Cslash'"}
    # HEADs run 4 at a time: examples come in the order they finish.
    assert set(r.finding("sse-c").examples) == {"enc/ssec-1", "enc/ssec-2"}  # type: ignore[union-attr]
    assert r.finding("sse-c").checked_by == "HEAD of every object (15)"  # type: ignore[union-attr]
    assert r.finding("invalid-name").checked_by == "listing"  # type: ignore[union-attr]
    assert r.finding("empty-folder").examples == ("empty/",)  # type: ignore[union-attr]
    assert r.finding("file-folder-collision").examples == (  # type: ignore[union-attr]
        "ff (file) / ff/inner",)
    classes = {g.name: (g.objects, g.bytes) for g in r.by_storage_class}
    assert classes == {"STANDARD": (13, 100 + 300 + 12 + 8 + 12 + 4 + 5), "GLACIER": (2, 30),
                       "DEEP_ARCHIVE": (1, 30), "GLACIER_IR": (1, 40)}
    prefixes = {g.name: g.objects for g in r.by_prefix}
    assert prefixes == {"plain/": 3, "cold/": 4, "enc/": 2, "names/": 2, "meta/": 3,
                        "(root)": 1, "ff/": 1, "empty/": 1}
    assert r.versioned is True and r.requester_pays is False
    assert any("versioned" in n and "current versions" in n for n in r.notes)
    assert r.head_requests == 15  # not the two folder markers
    assert r.cost.currency == "USD" and r.cost.date and r.cost.sources
    assert r.duration.method == "default rate"


def test_a_sampled_scan_says_what_it_checked_by_head(s3_proxy: FaultProxy, s3: Any,
                                                     bucket: str) -> None:
    _lake(s3, bucket)
    r = lakeshift.scan(f"s3://{bucket}/d/", sample=3)
    assert r.head_requests == 3
    assert "sse-c" not in _counts(r)   # the SSE-C objects were not among the first three
    assert _counts(r)["archived"] == 3  # the listing tells these
    assert any("HEAD on 3 of 17 objects" in n for n in r.notes)


def test_an_unknown_storage_class_is_a_finding(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="x/ia", Body=b"1234", StorageClass="STANDARD_IA")
    s3.put_object(Bucket=bucket, Key="x/std", Body=b"1")
    table = load_prices()
    table = dataclasses.replace(table, classes={k: v for k, v in table.classes.items()
                                                if k != "STANDARD_IA"})
    r = asyncio.run(scan_async(source_config(f"s3://{bucket}/x/"), None, table,
                               ScanOptions(sample=0)))
    f = r.finding("unknown-storage-class")
    assert f is not None and (f.objects, f.bytes, f.examples) == (1, 4, ("ia (STANDARD_IA)",))


def test_scan_with_a_destination_calibrates_and_leaves_nothing_there(
        s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"p/{i}.bin", Body=os.urandom(1000 + i))
    s3.put_object(Bucket=bucket, Key="p/cold", Body=b"x", StorageClass="GLACIER")
    r = lakeshift.scan(f"s3://{bucket}/p/", f"az://{container}/out/")
    assert r.duration.method == "calibration"
    assert r.duration.sample_objects == 5           # the archived one is not read
    assert r.duration.sample_bytes == sum(1000 + i for i in range(5))
    assert r.duration.seconds > 0
    assert blobs(blob_service, container) == {}     # the calibration's objects are gone
    assert not any("could not remove" in n for n in r.notes)


class _OneRefused:
    """A source store whose read of ``bad`` is refused at once, every other read slow."""

    def __init__(self, store: Any, bad: str) -> None:
        self._store, self._bad = store, bad

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def _gate(self, key: str) -> None:
        if key == self._bad:
            raise ForbiddenError(f"{key}: permission denied (403)")
        await asyncio.sleep(0.3)

    async def read(self, key: str, *a: Any, **kw: Any) -> Any:
        await self._gate(key)
        return await self._store.read(key, *a, **kw)

    async def open_range(self, key: str, *a: Any, **kw: Any) -> Any:
        await self._gate(key)
        return await self._store.open_range(key, *a, **kw)


def test_a_failed_calibration_still_removes_what_it_wrote(tmp_path: Path) -> None:
    """One sample object is refused at once while the others are still on their way: the
    calibration waits for them, then removes everything it wrote (nothing lands later)."""
    src_dir, out = tmp_path / "src", tmp_path / "out"
    src_dir.mkdir()
    out.mkdir()
    for i in range(12):  # more than CALIBRATION_CONCURRENCY: some wait for a slot
        (src_dir / f"{i:02d}.bin").write_bytes(os.urandom(100 + i))

    async def main() -> tuple[Any, list[str]]:
        src = open_store(source_config(str(src_dir)))
        dst = open_store(source_config(str(out)))
        sample = [o async for o in _all(src)]
        notes: list[str] = []
        tally = _Tally()
        tally.objects, tally.bytes = len(sample), sum(o.size for o in sample)
        est = await estimate_duration(_OneRefused(src, sample[0].key), dst, sample, tally,
                                      ScanOptions(), RetryPolicy(), notes)
        await asyncio.sleep(1.0)  # anything still in flight would land now
        return est, notes

    est, notes = asyncio.run(main())
    assert est.method == "default rate"
    assert any("calibration copy failed" in n for n in notes), notes
    assert list(out.rglob("*")) == []
    assert not any("could not remove" in n for n in notes), notes


def test_a_stopped_calibration_sweeps_what_lands_after_it(tmp_path: Path,
                                                          monkeypatch: Any) -> None:
    """Ctrl-C during the calibration: a copy whose request the service already took lands
    after the client gave up; the calibration deletes what it wrote once that had time to
    land, so nothing stays (tryout: two objects were left in the user's container)."""
    # (lakeshift.plan is also the function of that name: the module is taken by its name)
    scan_mod = importlib.import_module("lakeshift.plan.scan_calibration")
    src_dir, out = tmp_path / "src", tmp_path / "out"
    src_dir.mkdir()
    out.mkdir()
    for i in range(6):
        (src_dir / f"{i:02d}.bin").write_bytes(os.urandom(100 + i))
    real = scan_mod.copy_object
    late: list[asyncio.Task[Any]] = []

    async def copy(ctx: Any, obj: Any, key: str) -> Any:
        if key.endswith("000000"):
            async def land() -> None:
                await asyncio.sleep(0.3)
                await real(ctx, obj, key)
            late.append(asyncio.get_running_loop().create_task(land()))
            await asyncio.sleep(30)  # the client waits for the answer… and is stopped
        return await real(ctx, obj, key)

    monkeypatch.setattr(scan_mod, "copy_object", copy)

    async def main() -> None:
        src = open_store(source_config(str(src_dir)))
        dst = open_store(source_config(str(out)))
        sample = [o async for o in _all(src)]
        tally = _Tally()
        tally.objects, tally.bytes = len(sample), sum(o.size for o in sample)
        task = asyncio.create_task(estimate_duration(src, dst, sample, tally, ScanOptions(),
                                                     RetryPolicy(), []))
        await asyncio.sleep(0.1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.gather(*late)
        await asyncio.sleep(0.5)

    asyncio.run(main())
    assert late and [p for p in out.rglob("*") if p.is_file()] == []


async def _all(store: Any) -> Any:
    token = None
    while True:
        page = await store.list_page("", token)
        for o in page.objects:
            yield o
        token = page.token
        if not token:
            return


def test_scan_calibration_leaves_no_directory_on_a_hierarchical_destination(
        s3: Any, bucket: str, blob_service: Any, container: str, gen2: DfsDouble) -> None:
    """Gen2 makes a directory for the calibration's objects; deleting them leaves it, so the
    scan deletes it too (the DFS double lists implicit directories as Gen2 does)."""
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"p/{i}.bin", Body=os.urandom(500 + i))
    r = lakeshift.scan(f"s3://{bucket}/p/", f"az://{container}/out/")  # through the double
    assert r.duration.method == "calibration" and r.duration.sample_objects == 3
    assert any(m == "DELETE" for m, *_ in gen2.requests)
    assert blobs(blob_service, container) == {}     # no .lakeshift-scan-<hex> folder left
    assert not any("could not remove" in n for n in r.notes), r.notes


def _archived_bucket(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a/one.txt", Body=b"one")
    s3.put_object(Bucket=bucket, Key="a/two.txt", Body=b"two")
    s3.put_object(Bucket=bucket, Key="a/cold.txt", Body=b"cold", StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="a/deep.txt", Body=b"deep", StorageClass="DEEP_ARCHIVE")


def test_archived_objects_fail_as_archived_once_and_are_skipped_on_request(
        s3: Any, bucket: str, tmp_path: Path) -> None:
    _archived_bucket(s3, bucket)
    res = lakeshift.copy(f"s3://{bucket}/a/", str(tmp_path / "fail"))
    assert res.exit_code == 1
    assert res.stats.failed_by_kind == {"archived": 2}
    assert {(f.object_key, f.error_kind, f.attempts) for f in res.failures} == {
        ("a/cold.txt", "archived", 1), ("a/deep.txt", "archived", 1)}  # never retried
    assert all("--skip-errors archived" in f.message for f in res.failures)

    out = tmp_path / "skip"
    res = lakeshift.copy(f"s3://{bucket}/a/", str(out), skip_errors="archived")
    assert res.exit_code == 0
    assert res.stats.skipped_by_reason == {"archived": 2} and res.stats.copied == 2
    assert {f.object_key for f in res.failures if f.skipped and f.error_kind == "archived"} == {
        "a/cold.txt", "a/deep.txt"}
    assert sorted(p.name for p in out.iterdir()) == ["one.txt", "two.txt"]


def test_cli_copy_skips_archived_with_exit_0_and_counts_them_apart(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    _archived_bucket(s3, bucket)
    p = lakeshift_cli("copy", f"s3://{bucket}/a/", str(tmp_path / "o"), "--skip-errors",
                      "archived", "--progress", "none", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert "2 archived, not restored (--skip-errors)" in p.stdout
    p = lakeshift_cli("copy", f"s3://{bucket}/a/", str(tmp_path / "o2"), "--json",
                      "--progress", "none", env=cli_env)
    assert p.returncode == 1
    assert json.loads(p.stdout)["failed_by_kind"] == {"archived": 2}


def test_cli_scan_json_and_bad_input(cli_env: dict[str, str], s3: Any, bucket: str,
                                     tmp_path: Path) -> None:
    _archived_bucket(s3, bucket)
    p = lakeshift_cli("scan", f"s3://{bucket}/a/", "--json", env=cli_env)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["objects"] == 4 and d["findings"][0]["kind"] == "archived"
    assert d["findings"][0]["objects"] == 2
    text = lakeshift_cli("scan", f"s3://{bucket}/a/", env=cli_env)
    assert "2 archived, not restored" in text.stdout and "cost estimate:" in text.stdout
    assert "AWS us-east-1 (internet egress) (source) → " in text.stdout  # the sections' regions

    bad = tmp_path / "prices.toml"
    bad.write_text("[source.s3\negress = ")
    p = lakeshift_cli("scan", f"s3://{bucket}/a/", "--prices", str(bad), env=cli_env)
    assert p.returncode == 2 and "not a TOML price table" in one_clear_line(p)

    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[storage_classes.GLACIER]\nthawed = true\n")
    p = lakeshift_cli("scan", f"s3://{bucket}/a/", "--prices", str(unknown), env=cli_env)
    assert p.returncode == 2
    assert "storage_classes.GLACIER.thawed: unknown key" in one_clear_line(p)
    unknown.write_text('currency = "EUR"\nregoin = "eu-west-1"\n')  # a typo is not ignored
    p = lakeshift_cli("scan", f"s3://{bucket}/a/", "--prices", str(unknown), env=cli_env)
    assert p.returncode == 2 and f"{unknown}: regoin: unknown key" in one_clear_line(p)

    p = lakeshift_cli("scan", f"s3://{bucket}/nothing-here/", env=cli_env)
    assert p.returncode == 2 and "nothing to scan" in one_clear_line(p)


def test_a_price_file_overrides_the_shipped_figures(s3: Any, bucket: str,
                                                    tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="c/x", Body=b"x" * 1000)
    mine = tmp_path / "mine.toml"
    mine.write_text('currency = "EUR"\ndate = "2030-01-01"\n'
                    "[source.s3]\nread_per_1000 = 1000.0\n")
    r = lakeshift.scan(f"s3://{bucket}/c/", prices=mine, sample=0)
    assert (r.cost.currency, r.cost.date, r.cost.price_file) == ("EUR", "2030-01-01", str(mine))
    gets = next(ln for ln in r.cost.lines if ln.what == "source GET requests")
    assert (gets.quantity, gets.amount) == (1, 1.0)


def test_a_job_records_archived_objects_apart(cli_env: dict[str, str], s3: Any, bucket: str,
                                              tmp_path: Path) -> None:
    _archived_bucket(s3, bucket)
    db = f"sqlite:///{tmp_path}/j.db"
    assert lakeshift_cli("plan", f"s3://{bucket}/a/", str(tmp_path / "o"), "--job", "j",
                         "--db", db, "--skip-errors", "archived", env=cli_env).returncode == 0
    r = lakeshift_cli("run", "--job", "j", "--db", db, env=cli_env)
    assert r.returncode == 0, r.stderr
    f = lakeshift.failures(job="j", db=db)
    assert f.by_kind == {"archived": 2} and all(x.skipped for x in f.failures)
    p = lakeshift_cli("failures", "--job", "j", "--db", db, env=cli_env)
    assert p.returncode == 0 and "by kind: 2 archived" in p.stderr
    assert sorted(ln.split(",")[1] for ln in p.stdout.splitlines()[1:]) == ["archived"] * 2


def test_azure_archive_tier_is_archived(blob_service: Any, container: str,
                                        tmp_path: Path) -> None:
    c = blob_service.get_container_client(container)
    c.upload_blob("z/hot.txt", b"hot")
    c.upload_blob("z/cold.txt", b"cold")
    c.get_blob_client("z/cold.txt").set_standard_blob_tier("Archive")
    r = lakeshift.scan(f"az://{container}/z/")
    assert {g.name: g.objects for g in r.by_storage_class} == {"Archive": 1, "Hot": 1}
    assert r.finding("archived").examples == ("cold.txt (Archive)",)  # type: ignore[union-attr]
    res = lakeshift.copy(f"az://{container}/z/", str(tmp_path / "o"), skip_errors="archived")
    assert res.exit_code == 0 and res.stats.skipped_by_reason == {"archived": 1}


def test_scan_calibration_on_local_disk_leaves_no_folder(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "p").mkdir(parents=True)
    out.mkdir()
    for i in range(3):
        (src / "p" / f"{i}.bin").write_bytes(os.urandom(300 + i))
    r = lakeshift.scan(str(src / "p"), str(out))
    assert r.duration.method == "calibration" and r.duration.sample_objects == 3
    assert list(out.iterdir()) == []
    assert not any("could not remove" in n for n in r.notes), r.notes


def test_intelligent_tiering_in_an_archive_tier_is_counted_archived(
        s3_proxy: FaultProxy, s3: Any, bucket: str) -> None:
    """ListObjectsV2 says INTELLIGENT_TIERING (readable); only a HEAD's ArchiveStatus tells
    the object sits in an archive access tier (moto keeps no tiers: the proxy answers that
    HEAD as S3 does)."""
    s3.put_object(Bucket=bucket, Key="it/warm", Body=b"w" * 5, StorageClass="INTELLIGENT_TIERING")
    s3.put_object(Bucket=bucket, Key="it/frozen", Body=b"f" * 7,
                  StorageClass="INTELLIGENT_TIERING")
    s3_proxy.add("status", method="HEAD", path=r"/it/frozen", status=200, uses=10_000,
                 headers={"x-amz-storage-class": "INTELLIGENT_TIERING",
                          "x-amz-archive-status": "DEEP_ARCHIVE_ACCESS",
                          "Content-Length": "7", "ETag": '"x"'})
    r = lakeshift.scan(f"s3://{bucket}/it/", head_all=True, calibrate=False)
    f = r.finding("archived")
    assert f is not None and (f.objects, f.bytes, f.examples) == (
        1, 7, ("frozen (DEEP_ARCHIVE_ACCESS)",))


def test_an_hdfs_empty_directory_is_one_empty_folder_kept_by_default(
        hadoop: Any, blob_service: Any, container: str) -> None:
    """HDFS lists an empty directory as a marker: it is an empty folder (not also a marker
    object), and the advice follows copy's --empty-dirs default for the pair."""
    hadoop.write("h/a.txt", b"a")
    (hadoop.root / "h/empty").mkdir()
    r = lakeshift.scan("webhdfs://nn:9870/h/", calibrate=False)  # ADLS Gen2 assumed
    assert _counts(r) == {"empty-folder": 1}
    f = r.finding("empty-folder")
    assert f is not None and f.examples == ("empty/",)
    assert f.advice.startswith("kept as directories by default")
    flat = lakeshift.scan("webhdfs://nn:9870/h/", f"az://{container}/x/", calibrate=False)
    f = flat.finding("empty-folder")  # Azurite: a flat namespace, markers only when asked
    assert f is not None and "--empty-dirs" in f.advice and "marker blobs" in f.advice


def test_a_forbidden_hdfs_subtree_is_a_finding_and_requests_are_counted_as_made(
        gen1: Any) -> None:
    """A directory the source refuses to list (403) is counted with its example, not as an
    object and not a crash; the listing requests are the LISTSTATUS requests really made
    (one per directory and page), not the walker's pages."""
    from tests.doubles.fixtures import GEN1_HOST
    for k in ("w/a.txt", "w/d1/b.txt", "w/d1/d2/c.txt", "w/d3/e.txt", "w/secret/s.txt",
              "w/secret/t.txt"):
        gen1.write(k, b"x" * 10)
    gen1.forbidden.add("w/secret")
    gen1.requests.clear()
    r = lakeshift.scan(f"adl://{GEN1_HOST}/w/", calibrate=False)
    assert (r.objects, r.bytes) == (4, 40)
    f = r.finding("forbidden")
    assert f is not None and f.objects == 1 and f.bytes == 0
    assert f.examples[0].startswith("secret/") and "AccessControlException" in f.examples[0]
    assert "--skip-errors forbidden" in f.advice
    made = sum(1 for op, *_ in gen1.requests if op == "LISTSTATUS")
    assert made >= 5 and r.listing_requests == made, (r.listing_requests, made)
    gets = next(ln for ln in r.cost.lines if ln.what == "source LIST requests")
    assert gets.quantity == made


def test_scan_asks_the_destination_namespace_without_creating_anything(
        s3: Any, bucket: str, blob_service: Any, gen2: DfsDouble) -> None:
    """Whether the destination is hierarchical is asked of the service (Get Account
    Information) even before its container exists — and the scan creates no container."""
    s3.put_object(Bucket=bucket, Key="n/a", Body=b"file")
    s3.put_object(Bucket=bucket, Key="n/a/b", Body=b"under a file")
    fresh = f"c{os.urandom(5).hex()}"
    r = lakeshift.scan(f"s3://{bucket}/n/", f"az://{fresh}/x/", calibrate=False)
    f = r.finding("file-folder-collision")
    assert f is not None and f.objects == 1, r.findings
    assert fresh not in {c.name for c in blob_service.list_containers()}


def test_a_400_that_is_not_sse_c_is_not_counted_as_sse_c(s3_proxy: FaultProxy, s3: Any,
                                                        bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="q/odd", Body=b"x")
    s3.put_object(Bucket=bucket, Key="q/ssec-1", Body=b"y")
    s3_proxy.add("status", method="HEAD|GET", path=r"/q/odd", status=400, uses=10_000,
                 body=b"<Error><Code>BadRequest</Code><Message>something else</Message>"
                      b"</Error>")
    r = lakeshift.scan(f"s3://{bucket}/q/", head_all=True, calibrate=False)
    f = r.finding("sse-c")
    assert f is not None and f.examples == ("ssec-1",)


def test_requests_and_write_operations_are_summed_per_object(s3: Any, bucket: str) -> None:
    """Three 1-byte objects and one of 9 MiB (8 MiB blocks, Gen2 bills a write per 4 MiB):
    GETs 1+1+1+2, writes 1+1+1+(3 units + the commit) — not four times the average's."""
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"w/{i}", Body=b"x")
    s3.put_object(Bucket=bucket, Key="w/big", Body=os.urandom(9 * 1024 * 1024))
    r = lakeshift.scan(f"s3://{bucket}/w/", calibrate=False, sample=0)
    got = {ln.what: ln.quantity for ln in r.cost.lines}
    assert got["source GET requests"] == 5
    assert got["destination write operations"] == 7


def test_azure_egress_tiers_and_a_source_kind_without_prices(gen1: Any) -> None:
    from lakeshift.plan.prices import egress
    table = load_prices(None)
    tiers = table.source["azure"]["egress_tiers_gb"]
    # 200 TB out of Azure: 100 GB free, 10 TB at .087, 40 TB at .083, 100 TB at .07, the
    # remaining 50 TB - 100 GB in the 350 TB tier at .05.
    want = 10240 * 0.087 + 40960 * 0.083 + 102400 * 0.07 + (204800 - 100 - 153600) * 0.05
    assert abs(egress(tiers, 204800) - want) < 0.01
    from tests.doubles.fixtures import GEN1_HOST
    gen1.write("g/a.txt", b"a")
    r = lakeshift.scan(f"adl://{GEN1_HOST}/g/", calibrate=False)
    assert any("no prices for adl sources" in n and "[source.adl]" in n for n in r.notes), \
        r.notes
