"""Listing, metadata and data requests faulted one kind at a time (tests/faultproxy.py):
every listing page — copy's source and destination, planning, verify — is retried from its
continuation token like any other request; one that keeps failing fails only its partition;
the look-up after a changed source is retried and stays that object's outcome."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.engine.verify import Report, VerifyOptions, verify_async
from lakeshift.stores.base import StoreConfig
from lakeshift.urls import parse_url
from tests import servers
from tests.faultproxy import FaultProxy
from tests.helpers import blob_bytes, blobs

pytestmark = pytest.mark.slow

FAULTS: list[Any] = [503, 429, "reset", "truncate"]


@pytest.fixture
def proxies(s3_env: Any, azure_env: Any, moto: servers.Server, azurite: servers.Server,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    s3p = FaultProxy(f"http://127.0.0.1:{moto.port}")
    azp = FaultProxy(f"http://127.0.0.1:{azurite.port}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3p.url)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", (
        f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
        f"AccountKey={servers.AZURITE_KEY};"
        f"BlobEndpoint={azp.url}/{servers.AZURITE_ACCOUNT};"))
    yield s3p, azp
    s3p.stop()
    azp.stop()


def _seed_s3(s3: Any, bucket: str, prefixes: tuple[str, ...] = ("d/",),
             n: int = 6) -> dict[str, bytes]:
    objs = {f"{p}f{i}.bin": os.urandom(1000 + i) for p in prefixes for i in range(n)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    return objs


def _assert_copied(blob_service: Any, container: str, objs: dict[str, bytes],
                   dst: str = "out/", src: str = "d/") -> None:
    got = blobs(blob_service, container, dst)
    assert set(got) == {dst + k[len(src):] for k in objs}
    for k, v in objs.items():
        assert blob_bytes(blob_service, container, dst + k[len(src):]) == v


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("side", ["s3-source", "azure-destination"])
def test_a_faulted_listing_page_is_retried_and_the_copy_finishes(
        proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str, side: str, fault: Any) -> None:
    s3p, azp = proxies
    objs = _seed_s3(s3, bucket)
    blob_service.get_container_client(container).upload_blob("out/f0.bin", b"stale")
    if side == "s3-source":
        rule = s3p.fault("listing", fault, path=r"prefix=d")
    else:
        rule = azp.fault("listing", fault, path=r"prefix=out")
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                         copy_mode="stream", concurrency=4)
    assert rule.hits == 1
    assert res.exit_code == 0, res.failures
    _assert_copied(blob_service, container, objs)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulted_azure_source_listing_is_retried(
        proxies: tuple[FaultProxy, FaultProxy], blob_service: Any, container: str,
        tmp_path: Path, fault: Any) -> None:
    _, azp = proxies
    c = blob_service.get_container_client(container)
    objs = {f"src/f{i}.bin": os.urandom(500 + i) for i in range(5)}
    for k, v in objs.items():
        c.upload_blob(k, v)
    rule = azp.fault("listing", fault, path=r"prefix=src")
    res = lakeshift.copy(f"az://{container}/src/", str(tmp_path / "o"), concurrency=4)
    assert rule.hits == 1 and res.exit_code == 0, res.failures
    for k, v in objs.items():
        assert (tmp_path / "o" / k[4:]).read_bytes() == v


@pytest.mark.parametrize("fault", FAULTS)
def test_planning_auto_partitions_through_a_faulted_listing(
        proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str, tmp_path: Path, fault: Any) -> None:
    s3p, _ = proxies
    objs = _seed_s3(s3, bucket, ("t/a/", "t/b/"), 4)
    # The delimiter listing of the root, then each folder's listing, faulted once each.
    rules = [s3p.fault("listing", fault, path=r"delimiter="),
             s3p.fault("listing", fault, path=r"prefix=t%2Fa%2F(&|$)")]
    db = f"sqlite:///{tmp_path}/p.db"
    n = lakeshift.plan_job([f"s3://{bucket}/t/"], f"az://{container}/p/", job="p", db=db,
                           partition_by="auto", target_objects=4)
    # Two folder partitions, and the ranges beside them (before, between, after): keys
    # written there later belong to the job too.
    assert [r.hits for r in rules] == [1, 1] and n == 5
    result = lakeshift.run_job(job="p", db=db, batch_count=2)
    assert (result.failed, result.stats.copied, result.exit_code) == (0, len(objs), 0)
    _assert_copied(blob_service, container, objs, "p/", "t/")


@pytest.mark.parametrize("fault", FAULTS)
def test_verify_retries_faulted_listings_on_both_sides(
        proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str, fault: Any) -> None:
    s3p, azp = proxies
    _seed_s3(s3, bucket)
    assert lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                          copy_mode="stream").exit_code == 0
    rules = [s3p.fault("listing", fault, path=r"prefix=d"),
             azp.fault("listing", fault, path=r"prefix=out")]
    pair = (StoreConfig(parse_url(f"s3://{bucket}/d/")),
            StoreConfig(parse_url(f"az://{container}/out/")), None, None)
    result = asyncio.run(verify_async([pair], VerifyOptions(deep=True), Report(io.StringIO())))
    assert [r.hits for r in rules] == [1, 1]
    assert (result.checked, result.verified, result.exit_code) == (6, 6, 0)


def test_a_listing_that_keeps_failing_fails_only_its_partition(
        proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str, tmp_path: Path) -> None:
    s3p, _ = proxies
    objs = _seed_s3(s3, bucket, ("x/", "y/"), 3)
    db = f"sqlite:///{tmp_path}/k.db"
    assert lakeshift.plan_job([f"s3://{bucket}/"], f"az://{container}/k/", job="k", db=db,
                              prefixes=("x/", "y/")) == 2
    s3p.fault("listing", 503, times=1000, path=r"prefix=x%2F")
    result = lakeshift.run_job(job="k", db=db, batch_count=2)
    assert (result.succeeded, result.failed, result.exit_code) == (1, 1, 1)
    assert set(blobs(blob_service, container, "k/")) == {"k/" + k for k in objs if k[0] == "y"}
    s3p.clear()
    again = lakeshift.run_job(job="k", db=db, batch_count=2)
    assert (again.succeeded, again.failed, again.stats.copied) == (1, 0, 3)


@pytest.mark.parametrize("times", [1, 1000])
def test_the_lookup_after_a_changed_source_is_retried_and_stays_that_objects_outcome(
        proxies: tuple[FaultProxy, FaultProxy], s3: Any, bucket: str, blob_service: Any,
        container: str, times: int) -> None:
    s3p, _ = proxies
    objs = _seed_s3(s3, bucket)
    # The read of d/f2.bin says the object changed (412); the HEAD that follows is faulted.
    s3p.add("status", status=412, path=r"/d/f2\.bin$", request="data",
            body=b"<Error><Code>PreconditionFailed</Code></Error>")
    head = s3p.fault("metadata", 503, times=times, path=r"/d/f2\.bin$")
    res = lakeshift.copy(f"s3://{bucket}/d/", f"az://{container}/out/",
                         copy_mode="stream", concurrency=4)
    assert head.hits >= 1
    got = set(blobs(blob_service, container, "out/"))
    if times == 1:  # retried: copied
        assert res.exit_code == 0, res.failures
        _assert_copied(blob_service, container, objs)
    else:  # that object fails alone; every other one is copied
        assert res.exit_code == 1
        assert [f.object_key for f in res.failures] == ["d/f2.bin"]
        assert got == {"out/" + k[2:] for k in objs if k != "d/f2.bin"}
