"""`lakeshift sync` as a new user meets it from the README (issue 11 tryout): start-up
checks, refusals, and what the output says; moto → Azurite and local disk, through the CLI."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.e2e.cli import BIN, one_clear_line
from tests.e2e.cli import lakeshift as cli
from tests.helpers import next_second

WRONG_KEY = base64.b64encode(b"not the account key at all, 64 bytes long....").decode()


def _db_runs(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db)
    try:
        return int(con.execute("select count(*) from lakeshift_runs").fetchone()[0])
    finally:
        con.close()


@pytest.mark.parametrize(("azure", "code", "message"), [
    (None, 3, "no Azure credentials"),
    ("wrong-key", 3, ""),
    ("not-base64", 2, "is not an account key (not base64)"),
])
def test_sync_checks_credentials_before_making_the_job_as_copy_does(
        cli_env: dict[str, str], s3: Any, bucket: str, azurite: servers.Server,
        tmp_path: Path, azure: str | None, code: int, message: str) -> None:
    s3.put_object(Bucket=bucket, Key="raw/a", Body=b"a")
    env = dict(cli_env)
    if azure is None:
        del env["AZURE_STORAGE_CONNECTION_STRING"]
    else:
        env["AZURE_STORAGE_CONNECTION_STRING"] = servers.azurite_connection_string(
            azurite.port, WRONG_KEY if azure == "wrong-key" else "not*base64")
    args = (f"s3://{bucket}/raw/", "az://cred-check/raw/")
    copied = cli("copy", *args, env=env)
    p = cli("sync", *args, "--job", "j", "--db", f"sqlite:///{tmp_path}/c.db", "--lag", "0",
            env=env)
    assert (copied.returncode, p.returncode) == (code, code)
    assert message in one_clear_line(p) and one_clear_line(p) == one_clear_line(copied)
    assert not (tmp_path / "c.db").exists()  # no job, no run made only to fail


def test_run_and_sync_of_an_existing_job_check_credentials_before_a_run(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="raw/a", Body=b"a")
    db = tmp_path / "c.db"
    p = cli("plan", f"s3://{bucket}/raw/", "az://cred-run/raw/", "--job", "j", "--db",
            f"sqlite:///{db}", env=cli_env)
    assert p.returncode == 0, p.stderr
    env = dict(cli_env)
    del env["AZURE_STORAGE_CONNECTION_STRING"]
    for cmd in (("run", "--job", "j"), ("sync", "--job", "j", "--lag", "0")):
        p = cli(*cmd, "--db", f"sqlite:///{db}", env=env)
        assert p.returncode == 3 and "no Azure credentials" in one_clear_line(p)
    assert _db_runs(db) == 0


def test_a_partition_that_fails_before_its_window_is_listed_in_text_and_json(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    src, db = tmp_path / "src", f"sqlite:///{tmp_path}/c.db"
    _write(src, "a", b"a")
    assert cli("sync", str(src), str(tmp_path / "dst"), "--job", "f", "--db", db, "--lag",
               "0", env=cli_env).returncode == 0
    (src / "a").unlink()
    src.rmdir()  # the source of an existing job is gone: its partition fails, as in `run`
    p = cli("sync", "--job", "f", "--db", db, "--lag", "0", "--json", env=cli_env)
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["partitions_failed"] == 1
    assert [(w["state"], w["error"]) for w in out["windows"]] == [
        ("failed", f"local directory {src} does not exist")]
    p = cli("sync", "--job", "f", "--db", db, "--lag", "0", env=cli_env)
    assert f"failed before its window opened: local directory {src} does not exist" in p.stdout


@pytest.fixture
def local_job(cli_env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path, str]:
    src = tmp_path / "src"
    (src / "p").mkdir(parents=True)
    (src / "p" / "x").write_bytes(b"x")
    db = f"sqlite:///{tmp_path}/c.db"
    p = cli("sync", str(src), str(tmp_path / "dst"), "--job", "raw", "--db", db, "--lag", "0",
            env=cli_env)
    assert p.returncode == 0, p.stderr
    return cli_env, tmp_path, db


@pytest.mark.parametrize("extra", [["OTHER_SRC", "DST"], ["SRC", "OTHER_DST"],
                                   ["--prefix", "p/"], ["SRC", "DST", "--prefix", "p/"]])
def test_other_urls_or_prefixes_for_an_existing_job_are_refused(
        local_job: tuple[dict[str, str], Path, str], extra: list[str]) -> None:
    env, tmp, db = local_job
    (tmp / "other").mkdir()
    names = {"SRC": str(tmp / "src"), "DST": str(tmp / "dst"), "OTHER_SRC": str(tmp / "other"),
             "OTHER_DST": str(tmp / "elsewhere")}
    p = cli("sync", *[names.get(a, a) for a in extra], "--job", "raw", "--db", db, "--lag", "0",
            env=env)
    assert p.returncode == 2
    line = one_clear_line(p)
    if "--prefix" in extra:
        assert "leave out --prefix" in line
    else:
        assert f"{tmp / 'src'} → {tmp / 'dst'}" in line and "leave the URLs out" in line
    assert not (tmp / "elsewhere").exists()


def test_the_same_urls_for_an_existing_job_sync_it(
        local_job: tuple[dict[str, str], Path, str]) -> None:
    env, tmp, db = local_job
    p = cli("sync", f"{tmp / 'src'}/", str(tmp / "dst"), "--job", "raw", "--db", db,
            "--lag", "0", env=env)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("cmd", ["copy", "sync"])
def test_a_lookalike_azure_host_is_refused_with_an_emulator_connection_string(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, cmd: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a")
    dst = f"https://{servers.AZURITE_ACCOUNT}.blob.core.windows.net.evil.example/lookalike/"
    extra = ["--job", "j", "--db", f"sqlite:///{tmp_path}/c.db"] if cmd == "sync" else []
    p = cli(cmd, str(src), dst, *extra, env=cli_env)
    assert p.returncode == 2
    assert "core.windows.net.evil.example" in one_clear_line(p)
    assert "is neither Azure's" in one_clear_line(p)
    assert "lookalike" not in [c.name for c in blob_service.list_containers()]
    assert not (tmp_path / "c.db").exists()


def _write(root: Path, rel: str, data: bytes, age_s: float = 0) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    if age_s:
        t = time.time() - age_s
        os.utime(p, (t, t))


def test_sync_numbers_runs_per_job_and_status_totals_count_every_pass(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/c.db"
    _write(tmp_path / "other", "o", b"o", 86400)
    assert cli("sync", str(tmp_path / "other"), str(tmp_path / "od"), "--job", "other", "--db",
               db, "--lag", "0", env=cli_env).returncode == 0  # DB-wide run id 1
    src = tmp_path / "src"
    for i in range(5):
        _write(src, f"d/{i}", b"x" * 10, 86400)
    assert cli("plan", str(src), str(tmp_path / "dst"), "--job", "b", "--db", db,
               env=cli_env).returncode == 0
    assert cli("run", "--job", "b", "--db", db, env=cli_env).returncode == 0  # b's run 1
    next_second()
    _write(src, "d/new1", b"n" * 100)
    _write(src, "d/new2", b"n" * 100)
    next_second()
    p = cli("sync", "--job", "b", "--db", db, "--lag", "0", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Sync pass (run 2) of job 'b'")  # DB-wide id 3
    p = cli("sync", "--job", "b", "--db", db, "--lag", "0", "--json", env=cli_env)
    assert json.loads(p.stdout)["run_number"] == 3
    text = cli("status", "--job", "b", "--db", db, env=cli_env).stdout
    # 5 by the run, 2 by the first pass, none by the second: 7 copies, 250 bytes.
    assert "7 objects, 250 B copied" in text
    assert "last sync pass: run 3 succeeded" in text and ": 0 objects, 0 B copied" in text
    job = json.loads(cli("status", "--db", db, "--json", env=cli_env).stdout)["jobs"][1]
    assert (job["job"], job["copied"], job["bytes"]) == ("b", 7, 250)
    assert (job["last_sync_pass"]["number"], job["last_sync_pass"]["copied"]) == (3, 0)


def test_a_pass_says_where_its_windows_end_and_when_nothing_was_new(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    src, db = tmp_path / "src", f"sqlite:///{tmp_path}/c.db"
    _write(src, "fresh", b"fresh")
    p = cli("sync", str(src), str(tmp_path / "dst"), "--job", "lag", "--db", db, env=cli_env)
    assert p.returncode == 0, p.stderr
    # The first pass with the default lag copies nothing: the summary says why.
    assert "0 objects copied" in p.stdout
    assert "windows end at now − 5m = " in p.stdout
    assert "UTC: objects modified after that wait for a later pass" in p.stdout
    p = cli("sync", "--job", "lag", "--db", db, "--json", env=cli_env)
    out = json.loads(p.stdout)
    assert out["lag"] == "5m" and out["window_end"] == out["windows"][0]["end"]
    assert (out["run_number"], out["next_sync_at"]) == (2, None) and "next_run_at" not in out
    # A window in which nothing was modified says so, and what it found when it did.
    p = cli("sync", "--job", "lag", "--db", db, "--lag", "0", env=cli_env)
    line = [x for x in p.stdout.splitlines() if x.startswith("  (root):")]
    assert len(line) == 1 and line[0].endswith(" UTC: 1 copied, 0 skipped, succeeded"), line
    next_second()  # the next window is not empty: it ends a second later
    p = cli("sync", "--job", "lag", "--db", db, "--lag", "0", env=cli_env)
    line = [x for x in p.stdout.splitlines() if x.startswith("  (root):")]
    assert len(line) == 1 and line[0].endswith(" UTC: no object modified in it, succeeded")
    # A longer lag than the last pass's: the window is empty, and the text says so; it
    # looked at no time, so it does not claim there was "nothing new".
    p = cli("sync", "--job", "lag", "--db", db, "--lag", "1h", env=cli_env)
    assert p.returncode == 0, p.stderr
    line = [x for x in p.stdout.splitlines() if x.startswith("  (root):")]
    assert len(line) == 1 and line[0].startswith(
        "  (root): no window to look at: earlier passes already reached now − 1h = "), p.stdout
    assert "nothing new" not in p.stdout
    # The object written after the window's end is counted as held back.
    assert line[0].endswith("UTC, succeeded, 1 newer object held back for the next pass")
    assert "[" not in line[0]


def test_a_files_from_pass_shows_its_keys_not_a_window(cli_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write(src, "a/1", b"1")
    keys = tmp_path / "keys.txt"
    keys.write_text("a/1\na/2\n")
    p = cli("sync", str(src), str(tmp_path / "dst"), "--job", "f", "--db",
            f"sqlite:///{tmp_path}/c.db", "--lag", "0", "--files-from", str(keys),
            env=cli_env)
    assert p.returncode == 1
    assert "  (root): the listed keys: 1 copied, 0 skipped, failed: 1 object failed " \
           "(lakeshift failures --job f)" in p.stdout.splitlines()
    assert "windows end at" not in p.stdout


@pytest.mark.parametrize("option", ["--every", "--lag"])
def test_a_duration_without_a_unit_is_refused(cli_env: dict[str, str], tmp_path: Path,
                                              option: str) -> None:
    (tmp_path / "src").mkdir()
    p = cli("sync", str(tmp_path / "src"), str(tmp_path / "dst"), "--job", "x", "--db",
            f"sqlite:///{tmp_path}/c.db", option, "15", env=cli_env)
    assert p.returncode == 2
    assert f"{option} '15' has no unit: write 15s, 15m or 15h" in one_clear_line(p)
    assert not (tmp_path / "c.db").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_a_schedule_with_the_same_line(
        cli_env: dict[str, str], tmp_path: Path, sig: signal.Signals) -> None:
    src = tmp_path / "src"
    _write(src, "a", b"a", 3600)  # before the window's end (now, on a whole second)
    proc = subprocess.Popen([str(BIN), "sync", str(src), str(tmp_path / "dst"), "--job", "s",
                             "--db", f"sqlite:///{tmp_path}/c.db", "--lag", "0", "--json",
                             "--progress", "none", "--every", "2h"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["copied"] == 1
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig]
    line = one_clear_line(subprocess.CompletedProcess([], proc.returncode, out, err))
    assert line == (f"lakeshift: {sig.name}: the schedule of job 's' stopped after 1 pass; run "
                    "the same command to start it again (an interrupted pass's windows are "
                    "looked at again, from their start)")


def test_each_scheduled_pass_shows_its_own_progress(tmp_path: Path) -> None:
    """`sync --every`: the progress line counts the pass under way, not every pass so far
    (it read 3/18, then 3/33 objects while each pass listed 3)."""
    import re

    src = tmp_path / "src"
    for name in ("a", "b", "c"):
        _write(src, name, b"x", 3600)
    env = servers.clean_env()
    proc = subprocess.Popen([str(BIN), "sync", str(src), str(tmp_path / "dst"), "--job", "s",
                             "--db", f"sqlite:///{tmp_path}/c.db", "--lag", "0",
                             "--progress", "plain", "--every", "1s"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import threading

    got: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        got.extend(iter(proc.stderr.readline, ""))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # A plain progress line every 5 s (at an event: during a pass); a pass every second.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sum(
                ln.startswith("progress: ") for ln in list(got)) < 3:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.wait(timeout=60)
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(got)
    assert proc.returncode == 130, err
    assert out.count("Sync pass (run ") >= 4, out
    lines = [ln for ln in err.splitlines() if ln.startswith("progress: ")]
    assert len(lines) >= 2, err
    for ln in lines:
        m = re.match(r"progress: (\d+)/(\d+)\+? objects", ln)
        assert m is not None and int(m[1]) <= 3 and int(m[2]) <= 3, ln
