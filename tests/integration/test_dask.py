"""lakeshift run/sync --dask: worker processes of a Dask LocalCluster claim the partitions
of one job from a real PostgreSQL control DB, copying from moto (issue 14).

One LocalCluster of two worker processes (on loopback) serves the module; its
workers get the emulators' endpoints and credentials in their environment, as workers of a
real cluster would.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lakeshift
from lakeshift.engine.events import Event, ObjectDone
from lakeshift.errors import UsageError
from lakeshift.stores.base import StoreOptions
from tests import servers
from tests.faultproxy import ArrivalsProxy, FaultProxy
from tests.helpers import next_second, old_lake

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster(moto: servers.Server, azurite: servers.Server) -> Iterator[Any]:
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto.port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1,localhost",
           "AZURE_STORAGE_CONNECTION_STRING": servers.azurite_connection_string(azurite.port)}
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 host="127.0.0.1", dashboard_address="127.0.0.1:0", env=env)
    yield c
    c.close()


def _seed(s3: Any, bucket: str, prefixes: list[str], per: int, size: int) -> dict[str, bytes]:
    data = {}
    for p in prefixes:
        for i in range(per):
            key = f"{p}f{i:03d}.bin"
            body = hashlib.sha256(key.encode()).digest() * (size // 32)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            data[key] = body
    return data


def _partitions(pg_url: str, job: str) -> list[Any]:
    from lakeshift.control.repository import ControlDB

    db = ControlDB(pg_url)
    try:
        return db.partitions(db.job(job).id)
    finally:
        db.close()


def _run_row(pg_url: str, run_id: int) -> Any:
    from lakeshift.control.repository import ControlDB

    db = ControlDB(pg_url)
    try:
        return db.run(run_id)
    finally:
        db.close()


def _local_files(root: Path) -> dict[str, bytes]:
    """The objects at a local destination.  A file being written is a hidden
    ``.lakeshift-partial-*`` renamed into place when done (the local store's listing skips
    them): a worker killed mid-write leaves one behind, which is no object."""
    out = {}
    for p in root.rglob("*"):
        if p.name.startswith(".lakeshift-partial-"):
            continue
        try:
            out[str(p.relative_to(root))] = p.read_bytes()
        except IsADirectoryError:
            continue
        except FileNotFoundError:  # renamed meanwhile: seen at its final name next time
            continue
    return out


def test_a_job_runs_exactly_on_two_workers(cluster: Any, s3: Any, bucket: str,
                                           blob_service: Any, container: str,
                                           pg_url: str) -> None:
    prefixes = ["a/", "b/", "c/", "d/"]
    data = _seed(s3, bucket, prefixes, 15, 4096)
    lakeshift.plan(f"s3://{bucket}/", f"az://{container}/", job="j",
                   db=pg_url, prefix=prefixes)
    seen: list[Event] = []
    result = lakeshift.run(job="j", db=pg_url, batch_count=1, concurrency=4,
                           dask=cluster.scheduler_address, subscribers=[seen.append])
    assert (result.succeeded, result.failed, result.exit_code) == (4, 0, 0)
    assert (result.stats.copied, result.stats.skipped) == (60, 0)
    assert result.stats.bytes_transferred == 60 * 4096
    cc = blob_service.get_container_client(container)
    got = {b.name: cc.download_blob(b.name).readall() for b in cc.list_blobs()}
    assert got == data
    rows = _partitions(pg_url, "j")
    assert [r["state"] for r in rows] == ["succeeded"] * 4
    assert sum(r["copied"] for r in rows) == 60
    assert [r["attempts"] for r in rows] == [1] * 4  # no partition taken twice
    # One progress display, fed from the DB's counters: every object once.
    assert sum(1 for e in seen if isinstance(e, ObjectDone)) == 60
    status = lakeshift.status(db=pg_url, job="j")
    run = status.jobs[0].runs[0]
    assert (run.state, run.copied) == ("succeeded", 60)
    # A second run finds nothing to do.
    again = lakeshift.run(job="j", db=pg_url, dask=cluster.scheduler_address)
    assert again.nothing_to_do


def test_a_worker_killed_mid_partition_is_taken_over_exactly(
        cluster: Any, s3: Any, bucket: str, pg_url: str, tmp_path: Path) -> None:
    prefixes = ["p0/", "p1/", "p2/", "p3/"]
    data = _seed(s3, bucket, prefixes, 40, 2048)
    dest = tmp_path / "dest"
    lakeshift.plan(f"s3://{bucket}/", str(dest), job="k", db=pg_url, prefix=prefixes)
    out: dict[str, Any] = {}
    seen: list[Event] = []

    def run() -> None:
        try:
            # Paced so that the run lasts long enough to kill a worker inside a partition.
            out["result"] = lakeshift.run(job="k", db=pg_url, batch_count=1, concurrency=2,
                                          lease_seconds=8, max_requests_per_second=40,
                                          dask=cluster.scheduler_address,
                                          subscribers=[seen.append])
        except BaseException as e:  # pragma: no cover - reported below
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline:
        time.sleep(0.2)
        for r in _partitions(pg_url, "k"):
            if r["state"] == "running" and r["cursor"] and r["lease_owner"]:
                killed = int(r["lease_owner"].split(":")[1])  # host:pid:tag
                os.kill(killed, signal.SIGKILL)
                break
    assert killed is not None, "no worker was seen inside a partition"
    t.join(120)
    assert not t.is_alive()
    assert "error" not in out, out.get("error")
    result = out["result"]
    assert result.exit_code == 0
    assert _local_files(dest) == data
    rows = _partitions(pg_url, "k")
    assert [r["state"] for r in rows] == ["succeeded"] * 4
    # Each object counted once: what the dead worker copied after its last saved cursor
    # was found identical by the worker that took the partition over.
    assert sum(r["copied"] + r["skipped"] for r in rows) == 160
    assert sum(r["listed"] for r in rows) == 160
    # The dead worker's partition was claimed again (at once: its process is gone from
    # this host); a lease lost to a slow heartbeat on a loaded machine may add another.
    assert max(r["attempts"] for r in rows) >= 2
    assert lakeshift.failures(job="k", db=pg_url).count == 0
    # The run's summary, its row and its progress count each object once too, and each
    # byte copied once: the taken-over partition's objects were neither lost with the dead
    # worker's report nor counted again by the worker that found them identical.
    done = [e for e in seen if isinstance(e, ObjectDone)]
    run_row = _run_row(pg_url, result.run_id)
    copied = sum(r["copied"] for r in rows)
    assert (result.stats.copied, result.stats.skipped) == (copied, 160 - copied)
    assert result.stats.copied_bytes == sum(r["bytes"] for r in rows) == copied * 2048
    assert (run_row["copied"], run_row["bytes"]) == (copied, copied * 2048)
    assert len(done) == 160 and sum(e.outcome == "copied" for e in done) == copied


@pytest.mark.slow
def test_sync_passes_run_on_the_workers(cluster: Any, s3: Any, bucket: str, pg_url: str,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    prefixes = ["x/", "y/", "z/"]
    data = _seed(s3, bucket, prefixes, 8, 512)
    next_second()  # LastModified has whole seconds: the objects before the window's end
    dest = tmp_path / "dest"
    first = lakeshift.sync(f"s3://{bucket}/", str(dest), job="s", db=pg_url, prefix=prefixes,
                           lag="0s", dask=cluster.scheduler_address)
    assert first.run.exit_code == 0
    assert sorted((w.partition, w.state, w.copied) for w in first.windows) == [
        ("x/", "succeeded", 8), ("y/", "succeeded", 8), ("z/", "succeeded", 8)]
    assert _local_files(dest) == data
    # New and changed source objects: the next pass moves just those.
    next_second()  # LastModified has whole seconds: the changes come after the window
    s3.put_object(Bucket=bucket, Key="x/new.bin", Body=b"new")
    s3.put_object(Bucket=bucket, Key="y/f000.bin", Body=b"changed")
    next_second()  # a window ends on a whole second before now - lag
    second = lakeshift.sync(job="s", db=pg_url, lag="0s", dask=cluster.scheduler_address)
    assert second.run.exit_code == 0
    assert sum(w.copied for w in second.windows) == 2
    data.update({"x/new.bin": b"new", "y/f000.bin": b"changed"})
    assert _local_files(dest) == data
    # --delete: the workers list and record what is gone; the deletions follow, once
    # every partition is listed, under the pass-wide cap.
    for key in ("x/f001.bin", "z/f002.bin", "z/f003.bin"):
        s3.delete_object(Bucket=bucket, Key=key)
        del data[key]
    next_second()
    capped = lakeshift.sync(job="s", db=pg_url, lag="0s", delete=True, max_delete="2",
                            dask=cluster.scheduler_address)
    assert capped.run.exit_code == 1 and capped.deleted == 0
    assert "more than --max-delete 2" in " ".join(w.error or "" for w in capped.windows)
    assert len(_local_files(dest)) == len(data) + 3
    # The run's row counts what the deletion phase decided (the two partitions the cap
    # failed), as a pass without Dask records it.
    row = _run_row(pg_url, capped.run.run_id)
    assert (row["state"], row["partitions_done"], row["partitions_failed"]) == (
        "failed", 1, 2)
    # The deletion phase runs while the run is live: a driver that dies in it leaves a
    # run that did not finish (closed as interrupted once its lease runs out).
    from lakeshift.engine.sync import SyncMode

    seen: list[Any] = []
    real = SyncMode.delete_found

    async def watched(self: SyncMode, run: Any, *args: Any) -> None:
        seen.append(_run_row(pg_url, run.run_id)["state"])
        await real(self, run, *args)

    monkeypatch.setattr(SyncMode, "delete_found", watched)
    third = lakeshift.sync(job="s", db=pg_url, lag="0s", delete=True,
                           dask=cluster.scheduler_address)
    assert seen == ["running"]
    assert third.run.exit_code == 0, third.windows
    row = _run_row(pg_url, third.run.run_id)
    assert (row["state"], row["partitions_done"], row["partitions_failed"]) == (
        "succeeded", 3, 0)
    assert (third.deleted, sorted(third.deleted_keys)) == (
        3, ["x/f001.bin", "z/f002.bin", "z/f003.bin"])
    assert sorted((w.partition, w.state, w.deleted) for w in third.windows) == [
        ("x/", "succeeded", 1), ("y/", "succeeded", 0), ("z/", "succeeded", 2)]
    assert _local_files(dest) == data


@pytest.mark.slow
def test_a_rename_on_dask_is_copied_before_the_old_name_goes(
        cluster: Any, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The new name lies in another worker's partition and, renamed on a file system, keeps
    # its old time (outside the window): the worker that lists it copies it all the same
    # (it has no destination copy), so the driver's deletion of the old name loses nothing.
    src, dest = tmp_path / "src", tmp_path / "dest"
    for key in ("p0/a", "p0/keep", "p1/other"):
        old_lake(src, [key], b"v1-" + key.encode())  # before the first window's end
    first = lakeshift.sync(str(src), str(dest), job="renames", db=pg_url, lag="0s",
                           prefix=["p0/", "p1/"], dask=cluster.scheduler_address)
    assert first.run.exit_code == 0
    next_second()
    os.rename(src / "p0/a", src / "p1/a-renamed")
    r = lakeshift.sync(job="renames", db=pg_url, lag="0s", delete=True, max_delete="100%",
                       dask=cluster.scheduler_address)
    assert r.run.exit_code == 0, r.windows
    assert r.deleted_keys == ("p0/a",), r.windows
    assert _local_files(dest) == {"p0/keep": b"v1-p0/keep", "p1/other": b"v1-p1/other",
                                  "p1/a-renamed": b"v1-p0/a"}
    # The pairing is not made on Dask: the summary says renames are not reported.
    assert (r.renames, r.renames_paired) == ((), False)
    from lakeshift.cli.sync_cmd import _print

    _print(r, False, "0s", False)
    assert "renames are not reported on Dask" in capsys.readouterr().out


@pytest.mark.slow
def test_a_cancel_during_the_deletion_phase_on_dask_stops_it(
        cluster: Any, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The driver deletes once every worker task ended: its run heartbeat reads the
    # monitor's cancel there too, stops the deletions and ends the run as cancelled.
    import asyncio

    from lakeshift.engine.sync import SyncMode
    from lakeshift.stores.local.store import LocalStore

    src, dest = tmp_path / "src", tmp_path / "dest"
    old_lake(src, [f"p0/k{i}" for i in range(4)], b"v")
    first = lakeshift.sync(str(src), str(dest), job="cancel-del", db=pg_url, lag="0s",
                           prefix=["p0/"], dask=cluster.scheduler_address)
    assert first.run.exit_code == 0
    for i in range(3):
        (src / f"p0/k{i}").unlink()
    next_second()
    real = LocalStore.delete

    async def delete(self: LocalStore, key: str) -> None:
        assert lakeshift.cancel_run(run_id[0], db=pg_url)
        await asyncio.sleep(3)  # the run's heartbeat (1 s here) comes meanwhile
        await real(self, key)

    run_id: list[int] = []
    real_found = SyncMode.delete_found

    async def watched(self: SyncMode, run: Any, *args: Any) -> None:
        run_id.append(run.run_id)
        await real_found(self, run, *args)

    monkeypatch.setattr(SyncMode, "delete_found", watched)
    monkeypatch.setattr(LocalStore, "delete", delete)
    r = lakeshift.sync(job="cancel-del", db=pg_url, lag="0s", delete=True,
                       max_delete="100%", lease_seconds=4, dask=cluster.scheduler_address)
    assert r.run.cancelled and r.deleted == 0
    assert len(_local_files(dest)) == 4
    assert _run_row(pg_url, r.run.run_id)["state"] == "cancelled"


def test_sync_inventory_is_refused_on_dask(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--inventory cannot run on Dask: the inventory "
                                         "report is read into this machine's"):
        lakeshift.sync(job="s", db=pg_url, inventory=str(tmp_path / "manifest.json"),
                       dask="local:1")


def test_a_rerun_on_dask_shows_what_it_does_not_the_jobs_totals(
        cluster: Any, pg_url: str, tmp_path: Path) -> None:
    """The progress is the run's own, from its partition-run records: a rerun of a failed
    partition (whose counters its claim sets back to its cursor's) showed 0 copied and no
    total, the job's earlier counts being higher."""
    from lakeshift.engine.events import Listed, ListingDone

    src, dest = tmp_path / "src", tmp_path / "dest"
    for p in ("a", "b"):
        (src / p).mkdir(parents=True)
        for i in range(30):
            (src / p / f"{i:03d}.bin").write_bytes(f"{p}{i}".encode() * 50)
    (dest / "b" / "000.bin").mkdir(parents=True)  # in the way of b's first object
    lakeshift.plan(str(src), str(dest), job="r", db=pg_url, prefix=["a/", "b/"])
    first = lakeshift.run(job="r", db=pg_url, dask=cluster.scheduler_address)
    assert (first.succeeded, first.failed) == (1, 1)
    (dest / "b" / "000.bin").rmdir()
    seen: list[Event] = []
    again = lakeshift.run(job="r", db=pg_url, dask=cluster.scheduler_address,
                          subscribers=[seen.append])
    assert (again.succeeded, again.failed) == (1, 0)
    assert (again.stats.copied, again.stats.skipped) == (1, 29)
    done = [e.outcome for e in seen if isinstance(e, ObjectDone)]
    assert (done.count("copied"), done.count("skipped"), len(done)) == (1, 29, 30)
    assert sum(e.count for e in seen if isinstance(e, Listed)) == 30
    assert any(isinstance(e, ListingDone) for e in seen)
    row = _run_row(pg_url, again.run_id)
    assert (row["state"], row["copied"]) == ("succeeded", 1)


def test_the_request_cap_holds_for_all_workers_together(
        cluster: Any, s3: Any, bucket: str, moto: servers.Server, pg_url: str,
        tmp_path: Path) -> None:
    prefixes = ["a/", "b/", "c/", "d/"]
    data = _seed(s3, bucket, prefixes, 25, 1024)
    proxy = ArrivalsProxy(f"http://127.0.0.1:{moto.port}")
    try:
        dest = tmp_path / "dest"
        lakeshift.plan(f"s3://{bucket}/", str(dest), job="cap", db=pg_url, prefix=prefixes,
                       store_options=StoreOptions(s3_endpoint=proxy.url))
        proxy.arrivals.clear()  # the planner's listing is not the run's
        rate = 16.0
        result = lakeshift.run(job="cap", db=pg_url, batch_count=2, concurrency=8,
                               max_requests_per_second=rate, dask=cluster.scheduler_address)
    finally:
        proxy.stop()
    assert result.exit_code == 0
    assert _local_files(dest) == data
    times = sorted(t for t, kind in proxy.arrivals if kind == "data")
    assert len(times) >= 100
    # In any 3 s, all workers together send at most 3 s of the rate plus one burst (each
    # worker's bucket holds its share of one second): 2 workers each at the full rate
    # would send about twice as many.
    window = 3.0
    most = max(sum(1 for u in times[i:] if u - t < window) for i, t in enumerate(times))
    assert most <= rate * window + rate, most


def test_dask_needs_postgresql_and_a_reachable_scheduler(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeshift.scale import cluster as fleet

    # Nothing listens on the port: the refusal, not the 5 s wait, is what is checked here.
    monkeypatch.setattr(fleet.open_fleet, "__defaults__", (0.5,))
    with pytest.raises(UsageError, match="PostgreSQL control DB"):
        lakeshift.run(job="x", db=f"sqlite:///{tmp_path}/c.db", dask="local:2")
    with pytest.raises(UsageError, match="give a scheduler address"):
        lakeshift.run(job="x", db=pg_url, dask="somewhere:8786")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    lakeshift.plan(str(src), str(tmp_path / "dst"), job="x", db=pg_url)
    port = servers.free_port()
    with pytest.raises(UsageError, match=f"cannot reach the Dask scheduler at "
                                         f"tcp://127.0.0.1:{port}"):
        lakeshift.run(job="x", db=pg_url, dask=f"tcp://127.0.0.1:{port}")
    assert [r["state"] for r in _partitions(pg_url, "x")] == ["pending"]


@pytest.mark.slow
def test_ctrl_c_on_the_driver_stops_the_workers_at_a_checkpoint(
        cluster: Any, s3: Any, bucket: str, pg_url: str, cli_env: dict[str, str],
        tmp_path: Path) -> None:
    import subprocess

    from tests.e2e.cli import BIN
    from tests.e2e.cli import lakeshift as cli

    prefixes = ["a/", "b/", "c/", "d/"]
    data = _seed(s3, bucket, prefixes, 40, 1024)
    dest = tmp_path / "dest"
    lakeshift.plan(f"s3://{bucket}/", str(dest), job="int", db=pg_url, prefix=prefixes)
    proc = subprocess.Popen([str(BIN), "run", "--job", "int", "--db", pg_url, "--dask",
                             cluster.scheduler_address, "--batch-count", "1",
                             "--lease-seconds", "4", "--max-requests-per-second", "20",
                             "--progress", "none"], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_local_files(dest) if dest.exists() else {}) < 20:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err
    rows = _partitions(pg_url, "int")
    # Every worker stopped: nothing is held, what was left is pending with its cursor.
    assert not [r for r in rows if r["state"] == "running" or r["lease_owner"]]
    assert [r for r in rows if r["state"] == "pending" and r["cursor"]]
    done = len(_local_files(dest))
    time.sleep(2)
    assert len(_local_files(dest)) == done < 160  # no worker goes on copying
    runs = lakeshift.status(db=pg_url, job="int").jobs[0].runs
    assert runs[0].state == "interrupted"
    p = cli("run", "--job", "int", "--db", pg_url, "--dask", cluster.scheduler_address,
            "--json", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert _local_files(dest) == data
    rows = _partitions(pg_url, "int")
    assert sum(r["copied"] + r["skipped"] for r in rows) == 160


class CuttableTCP:
    """A loopback TCP forwarder to PostgreSQL whose connections can be cut: ``cut(s)``
    drops every open connection and refuses new ones for ``s`` seconds (a DB restart or a
    network outage, as the workers see it).  ``cut_at(marker, nth, s)``: the cut comes
    when the ``nth`` message to the server holding ``marker`` arrives (that message is
    not sent): at a point of the run's own traffic, however slow the machine is."""

    def __init__(self, port: int) -> None:
        import socket

        self.upstream = port
        self.down_until = 0.0
        self.conns: list[Any] = []
        self.marker = b""
        self.nth = 0
        self.seen = 0
        self.cut_s = 0.0
        self.cuts = 0
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if time.monotonic() < self.down_until:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b, watch in ((c, u, True), (u, c, False)):
                threading.Thread(target=self._pipe, args=(a, b, watch), daemon=True).start()

    def cut_at(self, marker: bytes, nth: int, seconds: float) -> None:
        self.marker, self.nth, self.cut_s = marker, nth, seconds

    def _pipe(self, a: Any, b: Any, watch: bool) -> None:
        try:
            while data := a.recv(65536):
                if watch and self.marker and self.marker in data:
                    with self.lock:
                        self.seen += 1
                        due = self.seen == self.nth
                    if due:
                        self.cut(self.cut_s)
                        return
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self, seconds: float) -> None:
        self.cuts += 1
        self._drop(seconds)

    def _drop(self, seconds: float) -> None:
        import socket

        self.down_until = time.monotonic() + seconds
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()
        self._drop(0)


@pytest.mark.slow
@pytest.mark.alone  # beside a second test worker it once hung past the 300 s timeout
def test_a_lost_db_connection_costs_a_pause_not_the_run(
        cluster: Any, s3: Any, bucket: str, pg_url: str, tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    prefixes = [f"p{i:02d}/" for i in range(12)]
    data = _seed(s3, bucket, prefixes, 6, 1024)
    dest = tmp_path / "dest"
    lakeshift.plan(f"s3://{bucket}/", str(dest), job="db", db=pg_url, prefix=prefixes)
    u = make_url(pg_url)
    link = CuttableTCP(int(u.port or 5432))
    via = u.set(port=link.port).render_as_string(hide_password=False)
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = lakeshift.run(job="db", db=via, batch_count=1, concurrency=2,
                                          lease_seconds=10, max_requests_per_second=30,
                                          dask=cluster.scheduler_address)
        except BaseException as e:  # reported below
            out["error"] = e

    # Every worker's and the driver's connections are cut for 4 s as the run's sixth
    # claim query reaches the DB (two workers, one partition at a time: two or three of the
    # twelve partitions are done, the others wait for the DB).  The cut used to come when
    # an observer saw 12 files, or after 60 s whatever it saw: on a loaded machine it could
    # land before the run had begun or after it had ended, outside what this proves.
    link.cut_at(b"SKIP LOCKED", 6, 4)
    t = threading.Thread(target=run)
    t.start()
    try:
        t.join(600)  # returns when the run ends; a bound only for a hung run
        assert not t.is_alive(), "the run did not end"
    finally:
        link.close()
    assert link.cuts == 1, "the cut never came: the run made fewer claims than planned"
    assert "error" not in out, out.get("error")
    assert out["result"].exit_code == 0
    assert _local_files(dest) == data
    rows = _partitions(pg_url, "db")
    assert [r["state"] for r in rows] == ["succeeded"] * 12
    assert sum(r["copied"] + r["skipped"] for r in rows) == 72


@pytest.mark.alone  # beside a second test worker it once lost every worker task
def test_the_driver_waits_out_a_lost_db_connection_at_the_run_s_start_and_end(
        cluster: Any, s3: Any, bucket: str, pg_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver's own reads and writes as the run starts to follow the workers and as it
    ends it (the run's row, the partitions left) wait for the DB as the workers' do: a cut
    there failed a run whose every object was copied."""
    from lakeshift.control.db import ControlDBUnavailable
    from lakeshift.control.repository import ControlDB

    data = _seed(s3, bucket, ["e0/", "e1/"], 3, 256)
    dest = tmp_path / "dest"
    lakeshift.plan(f"s3://{bucket}/", str(dest), job="ends", db=pg_url, prefix=["e0/", "e1/"])
    failed: list[str] = []

    def once(name: str) -> None:
        real = getattr(ControlDB, name)

        def flaky(self: Any, *args: Any) -> Any:
            if name not in failed:
                failed.append(name)
                raise ControlDBUnavailable("cannot use control DB: server closed the "
                                           "connection unexpectedly")
            return real(self, *args)

        monkeypatch.setattr(ControlDB, name, flaky)

    for name in ("run_progress", "finish_run", "partition_totals"):
        once(name)
    result = lakeshift.run(job="ends", db=pg_url, dask=cluster.scheduler_address)
    assert failed == ["run_progress", "finish_run", "partition_totals"]
    assert (result.exit_code, result.stats.copied, result.remaining_pending) == (0, 6, 0)
    assert _local_files(dest) == data
    assert lakeshift.status(db=pg_url, job="ends").jobs[0].runs[0].state == "succeeded"


# -- planning on the workers (scale/planner.py) --------------------------------------------


def _spec_rows(pg_url: str, job: str) -> list[tuple[Any, ...]]:
    return [(r["prefix"], r["range_start"], r["range_end"], r["cursor"])
            for r in _partitions(pg_url, job)]


def test_an_auto_plan_lists_on_the_workers_and_cuts_the_same_partitions(
        cluster: Any, s3: Any, bucket: str, pg_url: str, tmp_path: Path) -> None:
    import asyncio

    from lakeshift.plan.jobplan import plan_sources
    from lakeshift.plan.partitioner import auto_partitions
    from lakeshift.scale.cluster import ClusterSpec, Fleet
    from lakeshift.scale.planner import auto_partitions_on_dask

    # A flat folder whose keys share a long prefix, two subfolders, a root object.
    keys = ([f"flat/2024-06-01T00:0{i * 7919 % 100_003:06d}" for i in range(240)]
            + [f"{d}/{i:02d}" for d in ("a", "b") for i in range(30)] + ["top"])
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    src, dest = f"s3://{bucket}/", str(tmp_path / "dest")
    # Through the API: the same partitions as a plan listed in this process.
    lakeshift.plan(src, dest, job="pd", db=pg_url, partition_by="auto", target_objects=40,
                   dask=cluster.scheduler_address)
    lakeshift.plan(src, dest, job="pl", db=pg_url, partition_by="auto", target_objects=40)
    assert _spec_rows(pg_url, "pd") == _spec_rows(pg_url, "pl")
    result = lakeshift.run(job="pd", db=pg_url, dask=cluster.scheduler_address)
    assert (result.exit_code, result.stats.copied) == (0, len(keys))
    assert sorted(_local_files(Path(dest))) == sorted(keys)

    # With a small split size the big folder comes back from a worker split by its keys'
    # next characters, and its parts are listed by the workers as further tasks.
    client = distributed.Client(cluster.scheduler_address)
    fleet = Fleet(client, None, ClusterSpec(address=cluster.scheduler_address))
    try:
        async def on_dask(store: Any, cfg: Any, planned: Any, target: int,
                          events: Any) -> Any:
            return await auto_partitions_on_dask(fleet, cfg, planned, target, events,
                                                 split_at=50, store=store)

        async def here(store: Any, cfg: Any, planned: Any, target: int, events: Any) -> Any:
            return await auto_partitions(store, planned, target, events=events, split_at=50)

        with distributed.get_task_stream(client) as ts:
            specs = asyncio.run(plan_sources([src], dest, StoreOptions(), (), "auto", 40,
                                             auto=on_dask))
        local = asyncio.run(plan_sources([src], dest, StoreOptions(), (), "auto", 40,
                                         auto=here))
    finally:
        fleet.close()
    assert specs == local
    tasks = [t for t in ts.data if str(t["key"]).startswith("list_regions_task")]
    # a/, b/, flat/ (too big: split), then, as further tasks, flat/'s parts.
    assert len(tasks) >= 4, len(tasks)
    members = [k for s in specs for k in keys if k.startswith(s.prefix)
               and (s.range_start is None or k >= s.range_start)
               and (s.range_end is None or k < s.range_end)
               and (s.cursor is None or k > s.cursor)]
    assert sorted(members) == sorted(keys)  # every key in exactly one partition
    assert all(sum(1 for k in keys if k.startswith(s.prefix)
                   and (s.range_start is None or k >= s.range_start)
                   and (s.range_end is None or k < s.range_end)
                   and (s.cursor is None or k > s.cursor)) <= 40 for s in specs)


def test_plan_dask_needs_an_automatic_plan(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--dask splits the listing of an automatic plan"):
        lakeshift.plan(str(tmp_path), str(tmp_path / "d"), job="x", db=pg_url,
                       dask="local:1")


def test_a_throttled_worker_makes_every_worker_back_off(
        cluster: Any, s3: Any, bucket: str, moto: servers.Server, pg_url: str,
        tmp_path: Path) -> None:
    import asyncio

    from lakeshift.control.repository import ControlDB
    from lakeshift.engine.pipeline import CopyOptions
    from lakeshift.scale.cluster import ClusterSpec
    from lakeshift.scale.driver import run_on_dask

    prefixes = ["a/", "b/"]
    data = _seed(s3, bucket, prefixes, 60, 1024)
    proxy = FaultProxy(f"http://127.0.0.1:{moto.port}")
    dest = tmp_path / "dest"
    so = StoreOptions(s3_endpoint=proxy.url)
    lakeshift.plan(f"s3://{bucket}/", str(dest), job="thr", db=pg_url, prefix=prefixes,
                   store_options=so)
    db = ControlDB(pg_url)
    try:
        # Only the worker copying a/ meets the 503s (SlowDown, as S3 answers a hot
        # prefix); both copy at once (one partition each, paced to last a while).
        proxy.fault("data", 503, times=12, path=r"/a/f0[0-4]")
        out = asyncio.run(run_on_dask(db, db.job("thr"), ClusterSpec(
            address=cluster.scheduler_address), 1, CopyOptions(
                concurrency=8, max_requests_per_second=40), so, heartbeat_s=1.0))
    finally:
        db.close()
        proxy.stop()
    assert (out.run.succeeded, out.run.failed) == (2, 0)
    assert _local_files(dest) == data
    assert len(out.reports) == 2
    hit = [r for r in out.reports if r.throttles]
    spared = [r for r in out.reports if not r.throttles]
    assert len(hit) == 1 and len(spared) == 1, [(r.throttles, r.throttles_heard)
                                               for r in out.reports]
    assert hit[0].stats.throttled == hit[0].throttles  # counted in the run's stats
    # The worker that met no throttling backed off too: it heard of the other's and
    # halved its own in-flight limit for the account.
    assert spared[0].throttles_heard >= 1
    assert spared[0].lowest_limit <= 4


def test_plan_dask_from_the_cli(cli_env: dict[str, str], tmp_path: Path) -> None:
    from tests.e2e.cli import lakeshift as cli
    from tests.e2e.cli import one_clear_line

    src = tmp_path / "src"
    for d in ("a", "b", "c"):
        (src / d).mkdir(parents=True)
        for i in range(5):
            (src / d / f"{i}.txt").write_bytes(b"x")
    db = f"sqlite:///{tmp_path}/c.db"  # planning writes from the driver only
    p = cli("plan", str(src), str(tmp_path / "dst"), "--job", "p", "--db", db,
            "--partition-by", "auto", "--target-objects", "5", "--dask", "local:1", "--json",
            env=cli_env, timeout=180)
    assert p.returncode == 0, p.stderr
    parts = json.loads(p.stdout)["partition_table"]
    # Three folder partitions, and the ranges beside them (keys written there later).
    assert sorted(r["prefix"] for r in parts if not r["range_start"] and not r["range_end"]
                  ) == ["a/", "b/", "c/"] and len(parts) == 7
    p = cli("plan", str(src), str(tmp_path / "dst"), "--job", "q", "--db", db, "--dask",
            "local:1", env=cli_env)
    assert p.returncode == 2
    assert "add --partition-by auto" in one_clear_line(p)
