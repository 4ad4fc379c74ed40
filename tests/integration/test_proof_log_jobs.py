"""``run --proof-log`` and ``sync --proof-log``: the copy's per-object proof rows for a
planned job's partitions and for delta passes, against real servers."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import lakeshift
from lakeshift.engine.proof_log import FIELDS
from tests.e2e.cli import lakeshift as cli
from tests.e2e.cli import one_clear_line, planned_local_job, run_in_background
from tests.helpers import blobs


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _sizes(blob_service: Any, container: str, prefix: str) -> dict[str, int]:
    return {name: b.size for name, b in blobs(blob_service, container, prefix).items()}


def test_run_logs_each_copied_object_of_every_partition(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    for p in ("2023/", "2024/"):
        for i in range(3):
            s3.put_object(Bucket=bucket, Key=f"raw/{p}f{i}.txt", Body=f"{p}{i}".encode())
    s3.put_object(Bucket=bucket, Key="raw/2024/bad\\name.txt", Body=b"renamed")
    db = f"sqlite:///{tmp_path}/c.db"
    assert cli("plan", f"s3://{bucket}/raw/", f"az://{container}/lake/", "--job", "j",
               "--db", db, "--prefix", "2023/", "--prefix", "2024/", "--invalid-names",
               "encode", env=cli_env).returncode == 0
    log = tmp_path / "proofs.csv"
    r = cli("run", "--job", "j", "--db", db, "--proof-log", str(log), "--json", env=cli_env)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json.loads(r.stdout)
    assert summary["proof_log"] == str(log) and summary["copied"] == 7
    rows = _rows(log)
    # The full key each object was written under (destination root, renames applied).
    assert {x["source_key"]: x["destination_key"] for x in rows} == {
        **{f"raw/{p}f{i}.txt": f"lake/{p}f{i}.txt" for p in ("2023/", "2024/")
           for i in range(3)},
        "raw/2024/bad\\name.txt": "lake/2024/bad%5Cname.txt"}
    written = _sizes(blob_service, container, "lake/")
    assert {x["destination_key"]: int(x["size"]) for x in rows} == written
    assert {x["proof"] for x in rows} == {"source-md5"}
    # A rerun copies nothing and adds nothing; the text summary names the file.
    again = cli("run", "--job", "j", "--db", db, "--proof-log", str(log), env=cli_env)
    assert again.returncode == 0, again.stderr
    # (every partition succeeded: "nothing to do", and no row)
    assert len(_rows(log)) == 7
    # A copy appends to the same log, in the same format (one header).
    s3.put_object(Bucket=bucket, Key="raw/late.txt", Body=b"late")
    c = lakeshift.copy(f"s3://{bucket}/raw/late.txt", f"az://{container}/lake/",
                       proof_log=log)
    assert c.exit_code == 0
    assert _rows(log)[-1]["destination_key"] == "lake/late.txt"
    assert log.read_text().count("finished_at") == 1


def test_run_text_summary_names_the_proof_log(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, container: str) -> None:
    _, db = planned_local_job(cli_env, tmp_path, container, "t")
    log = tmp_path / "p.csv"
    r = cli("run", "--job", "t", "--db", db, "--proof-log", str(log), env=cli_env)
    assert r.returncode == 0, r.stderr
    assert f"one row per copied object appended to {log}" in r.stdout
    [row] = _rows(log)
    assert (row["source_key"], row["destination_key"]) == ("a.bin", "t/a.bin")


def test_sync_logs_each_pass_copies_and_keyed_passes(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str,
        tmp_path: Path) -> None:
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"s/f{i}.txt", Body=f"v1 {i}".encode())
    time.sleep(1.1)  # windows end on a whole second: an object of this second waits
    db = f"sqlite:///{tmp_path}/c.db"
    log = tmp_path / "proofs.csv"
    first = cli("sync", f"s3://{bucket}/s/", f"az://{container}/d/", "--job", "s", "--db", db,
                "--lag", "0", "--proof-log", str(log), "--json", env=cli_env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["proof_log"] == str(log)
    assert sorted((x["source_key"], x["destination_key"]) for x in _rows(log)) == [
        (f"s/f{i}.txt", f"d/f{i}.txt") for i in range(3)]
    s3.put_object(Bucket=bucket, Key="s/f1.txt", Body=b"v2, longer")
    time.sleep(1.1)
    second = cli("sync", "--job", "s", "--db", db, "--lag", "0", "--proof-log", str(log),
                 env=cli_env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"one row per copied object appended to {log}" in second.stdout
    rows = _rows(log)
    assert len(rows) == 4 and (rows[-1]["destination_key"], rows[-1]["size"]) == (
        "d/f1.txt", str(len(b"v2, longer")))
    # A keyed pass (--files-from) copies through the same engine: its rows too.
    s3.put_object(Bucket=bucket, Key="s/f2.txt", Body=b"v2 2")
    keys = tmp_path / "keys.txt"
    keys.write_text("f2.txt\n")
    keyed = lakeshift.sync(job="s", db=db, lag="0", files_from=keys, proof_log=log)
    assert keyed.run.exit_code == 0
    rows = _rows(log)
    assert len(rows) == 5 and rows[-1]["destination_key"] == "d/f2.txt"
    assert log.read_text().count("finished_at") == 1
    for x in rows:
        assert blob_service.get_blob_client(container, x["destination_key"]).exists()


def test_run_and_sync_refuse_a_proof_log_they_cannot_keep(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, container: str) -> None:
    """As copy's refusals, before anything is copied (exit 2, one line); with --dask, a
    clear refusal instead of an empty log."""
    _, db = planned_local_job(cli_env, tmp_path, container, "r")
    other = tmp_path / "notes.csv"
    other.write_text("name\n")
    cases = [(tmp_path, "is a folder"), (other, "not a lakeshift proof log"),
             (tmp_path / "no" / "log.csv", f"create the folder {tmp_path / 'no'} first"),
             ("", "--proof-log needs a file name")]
    for bad, said in cases:
        for cmd in (["run", "--job", "r"], ["sync", "--job", "r", "--lag", "0"]):
            p = cli(*cmd, "--db", db, "--proof-log", str(bad), env=cli_env)
            assert p.returncode == 2, p.stdout + p.stderr
            assert said in one_clear_line(p), cmd
    for cmd in (["run", "--job", "r"], ["sync", "--job", "r", "--lag", "0"]):
        p = cli(*cmd, "--db", "postgresql://u@127.0.0.1:1/x", "--dask", "local:2",
                "--proof-log", str(tmp_path / "d.csv"), env=cli_env)
        assert p.returncode == 2, p.stdout + p.stderr
        line = one_clear_line(p)
        assert "--proof-log cannot go with --dask" in line and "leave out --dask" in line
    assert blobs(blob_service, container, "r/") == {}
    assert other.read_text() == "name\n" and not (tmp_path / "d.csv").exists()


def test_sync_makes_no_job_when_its_proof_log_cannot_be_written(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, container: str) -> None:
    """``sync SRC DST --job NEW --proof-log /dev/full`` said so (exit 2) but left the DB
    with the new job: the path's check passed (/dev/full opens), its header's write failed
    only after the job was made.  The log is opened first now, as a FIFO nobody reads is
    refused (at once: the open waited for a reader for ever)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"a")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for bad, said in (("/dev/full", "cannot write the --proof-log /dev/full: No space"),
                      (str(fifo), f"cannot write the --proof-log {fifo}: no process reads")):
        db = tmp_path / "x.db"
        for cmd in (["sync", str(src), f"az://{container}/sync2/", "--job", "sj2", "--db",
                     f"sqlite:///{db}"], ["copy", str(src), f"az://{container}/c/"],
                    ["copy", str(src), f"az://{container}/c/", "--dry-run"]):
            if "--dry-run" in cmd and bad == "/dev/full":
                continue  # (a dry run writes no log: /dev/full takes it)
            p = cli(*cmd, "--progress", "none", "--proof-log", bad, env=cli_env, timeout=60)
            assert p.returncode == 2, p.stdout + p.stderr
            assert said in one_clear_line(p), cmd
            assert not db.exists(), cmd
    assert blobs(blob_service, container, "") == {}


def test_a_run_appends_whole_rows_after_a_half_written_one(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, container: str) -> None:
    """A run stopped by a full disk left its last row half-written; the next run's rows
    were appended onto it.  Now the partial row is cut off: every row is whole."""
    _, db = planned_local_job(cli_env, tmp_path, container, "h", 6, 10)
    log = tmp_path / "proofs.csv"
    log.write_text(",".join(FIELDS) + "\r\n2026-12-02T23:19:26.862Z,f1.bin,x/f1.bin,1,"
                   "source-md5,1\r\n2026-12-02T23:", newline="")
    r = cli("run", "--job", "h", "--db", db, "--progress", "none", "--proof-log", str(log),
            env=cli_env)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(log, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == FIELDS and len(rows) == 1 + 1 + 6
    assert all(len(x) == len(FIELDS) and x[0].endswith("Z") and len(x[0]) == 24
               for x in rows[1:]), rows


def test_a_killed_run_keeps_the_rows_of_the_objects_it_finished(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, container: str) -> None:
    _, db = planned_local_job(cli_env, tmp_path, container, "k", 600)
    log = tmp_path / "proofs.csv"
    proc = run_in_background(cli_env, "k", db, "--concurrency", "2", "--lease-seconds", "4",
                             "--proof-log", str(log))
    # Rows reach the disk while the run goes on (flushed as each object finishes: 30 rows
    # are far less than a file buffer).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or len(_rows(log)) < 30):
        assert proc.poll() is None, "the run ended before it was killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _rows(log)
    done = _sizes(blob_service, container, "k/")
    assert len(before) >= 30 and len(done) < 600
    # Every row is whole and names an object that is there, with its size; only the
    # objects in flight (2) and the rows the writer had not reached at the kill (a few at
    # most, on a loaded machine) have none.
    assert all(list(x) == list(FIELDS) and None not in x.values() for x in before)
    assert all(done[x["destination_key"]] == int(x["size"]) == 1500 for x in before)
    assert len(done) - len(before) <= 2 + 10
    # The rerun appends under the same header.
    r = cli("run", "--job", "k", "--db", db, "--proof-log", str(log), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    after = _rows(log)
    assert after[:len(before)] == before
    assert len(after) == len(before) + json.loads(r.stdout)["copied"]
    assert log.read_text().count("finished_at") == 1
    assert len({x["source_key"] for x in after}) == len(after)


def test_a_run_whose_rows_cannot_be_written_stops_at_once(
        cli_env: dict[str, str], tmp_path: Path, pg_url: str, blob_service: Any,
        container: str) -> None:
    """A full disk mid-run (here a file-size limit the log passes after some 30 rows) stops
    the whole run: the partition that met it fails with the log's error, the others go
    back to pending at their cursors (as after Ctrl-C), and the run says so in one line; it
    does not go on copying one object per partition, failing each."""
    src = tmp_path / "src"
    for p in range(20):
        (src / f"p{p:02d}").mkdir(parents=True)
        for i in range(10):
            (src / f"p{p:02d}" / f"f{i}.bin").write_bytes(b"x" * 10)
    prefixes = [a for p in range(20) for a in ("--prefix", f"p{p:02d}/")]
    assert cli("plan", str(src), f"az://{container}/full/", "--job", "full", "--db", pg_url,
               *prefixes, env=cli_env).returncode == 0
    log = tmp_path / "proofs.csv"
    # Under the limit Python must write no bytecode: a module compiled there (a source
    # newer than its .pyc) was cut to 2500 bytes in src/**/__pycache__ (importlib does not
    # check its write), and every later command failed "marshal data too short".
    pycache = tmp_path / "pycache"
    limited = {**cli_env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(pycache)}
    r = cli("run", "--job", "full", "--db", pg_url, "--batch-count", "1", "--concurrency",
            "2", "--progress", "none", "--proof-log", str(log), env=limited,
            prefix=("prlimit", "--fsize=2500"))
    assert r.returncode == 2, r.stdout + r.stderr
    line = one_clear_line(r)
    assert f"cannot write the --proof-log {log}: File too large; stopped after" in line
    rows = _rows(log)
    assert 20 <= len(rows) <= 40
    st = json.loads(cli("status", "--db", pg_url, "--job", "full", "--json",
                        env=cli_env).stdout)["jobs"][0]
    assert st["failed"] <= 1 and st["pending"] >= 15, st
    failed = [x for x in st["partition_table"] if x["state"] == "failed"]
    assert all("cannot write the --proof-log" in x["last_error"] for x in failed)
    # What was copied is what the log says, plus the rows queued for the writer when it
    # failed (the line counts them), give or take the objects in flight.
    more = re.search(r"\((\d+) more copied without a row\)", line)
    unlogged = int(more.group(1)) if more else 0
    assert len(blobs(blob_service, container, "full/")) <= len(rows) + unlogged + 2 * 2
    # A sync pass and a copy stop the same way.
    for i, cmd in enumerate((["sync", "--job", "full", "--db", pg_url, "--lag", "0"],
                             ["copy", str(src), f"az://{container}/copied/"])):
        other = tmp_path / f"proofs{i}.csv"
        p = cli(*cmd, "--concurrency", "2", "--progress", "none", "--proof-log", str(other),
                env=limited, prefix=("prlimit", "--fsize=2500"))
        assert p.returncode == 2, p.stdout + p.stderr
        assert f"cannot write the --proof-log {other}: File too large" in one_clear_line(p)
    assert not pycache.exists()  # no bytecode written under the limit
