"""What a new user tripped on at the command line: a rate written `1MB/s`, usage lines that
said `[URLS]...`, `check` finding "credentials" for a local folder and naming its probe by a
bare key, `scan` calling a local or Azure source's versioning "unknown", and `verify`
naming no object that differs (only its CSV did).  (The monitor's token:
tests/web/test_http.py; init's destination prompt: tests/e2e/test_cli_init_config.py.)"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import lakeshift
from lakeshift.cli.scan_cmd import scan_lines
from tests.e2e.cli import lakeshift as cli
from tests.e2e.cli import one_clear_line


def _folder(path: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def test_a_rate_may_say_per_second(local_env: dict[str, str], tmp_path: Path) -> None:
    """`--max-bandwidth 64KiB/s` was refused ("is not a size"); it is the cap 64KiB, as
    the run records it, in every command that takes the flag."""
    src = _folder(tmp_path / "src", {"a.bin": b"a" * 1000})
    db = f"sqlite:///{tmp_path}/j.db"
    assert cli("plan", str(src), str(tmp_path / "dst"), "--job", "j", "--db", db,
               env=local_env).returncode == 0
    p = cli("run", "--job", "j", "--db", db, "--max-bandwidth", "64KiB/s", "--progress",
            "none", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    detail = lakeshift.run_detail(1, db=db)
    assert detail is not None and detail.run.settings["max_bandwidth"] == 64 * 1024
    for args in (["copy", str(src), str(tmp_path / "c"), "--max-bandwidth", "1MB/s"],
                 ["verify", str(src), str(tmp_path / "dst"), "--max-bandwidth", "1 MiB / s",
                  "--report", str(tmp_path / "v")]):
        p = cli(*args, env=local_env)
        assert p.returncode == 0, (args, p.stdout + p.stderr)
    p = cli("copy", str(src), str(tmp_path / "x"), "--max-bandwidth", "1MB/x", env=local_env)
    assert p.returncode == 2
    assert "--max-bandwidth '1MB/x' is not a size per second: use e.g. 200MiB/s" in \
        one_clear_line(p)
    assert not (tmp_path / "x").exists()
    help_text = " ".join(cli("copy", "--help", env={**local_env, "COLUMNS": "200"}
                             ).stdout.replace("│", " ").split())
    assert "--max-bandwidth RATE" in help_text and "e.g. 200MiB/s or 200MiB" in help_text


def test_usage_lines_name_what_each_command_takes(local_env: dict[str, str]) -> None:
    """`Usage: lakeshift verify [OPTIONS] [URLS]...` told nothing; each names what it takes,
    as copy's `SRC DST`; --dask names both its forms."""
    env = {**local_env, "COLUMNS": "200"}
    said = {"copy": "SRC DST", "verify": "[SRC DST]", "sync": "[SRC DST]",
            "plan": "[SRC... DST]"}
    for command, takes in said.items():
        p = cli(command, "--help", env=env)
        assert p.returncode == 0, p.stderr
        usage = next(ln for ln in p.stdout.splitlines() if "Usage:" in ln).split()
        assert " ".join(usage[usage.index("Usage:") + 1:]) == \
            f"lakeshift {command} [OPTIONS] {takes}", p.stdout
    for command in ("plan", "run", "sync"):
        p = cli(command, "--help", env=env)
        assert re.search(r"--dask URL\|local:N\b", p.stdout), (command, p.stdout)


def test_check_says_what_is_true_of_a_local_folder_and_names_places_whole(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src = _folder(tmp_path / "src", {"sub/a.txt": b"hello"})
    dst = tmp_path / "dst"
    dst.mkdir()
    p = cli("check", str(src), str(dst), env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "found for" not in p.stdout
    lines = {tuple(ln.split()[1:3]): ln for ln in p.stdout.splitlines()}
    for side, root in (("source", src), ("destination", dst)):
        assert lines[(side, "credentials")].endswith(
            f"none needed for a local folder ({root}); what this user may read and write "
            "is tried next"), p.stdout
    assert lines[("source", "read")].endswith(f"read 5 bytes of {src / 'sub' / 'a.txt'}")
    assert re.search(rf"wrote and deleted {re.escape(str(dst))}/\.lakeshift-check-\w+$",
                     lines[("destination", "write")]), p.stdout
    assert list(dst.iterdir()) == []


def test_check_names_a_cloud_probe_by_its_url(cli_env: dict[str, str], s3: Any, bucket: str,
                                              container: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="raw/a.txt", Body=b"hello")
    for dst in (f"az://{container}/dst/", f"s3://{bucket}/out/"):
        p = cli("check", f"s3://{bucket}/raw/", dst, env=cli_env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"read 5 bytes of s3://{bucket}/raw/a.txt" in p.stdout
        assert re.search(rf"wrote and deleted {re.escape(dst)}\.lakeshift-check-\w+$",
                         p.stdout, re.MULTILINE), p.stdout
        assert f"found for s3://{bucket}/raw/" in p.stdout  # a cloud side's credentials


def test_scan_prints_bucket_settings_only_for_s3(cli_env: dict[str, str], s3: Any,
                                                 bucket: str, tmp_path: Path) -> None:
    """A local or Azure source has no versioning nor requester-pays setting: "unknown"
    read as a risk.  The line is an S3 source's only; "unknown" there says why."""
    src = _folder(tmp_path / "src", {"a.txt": b"a"})
    p = cli("scan", str(src), env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "versioned" not in p.stdout and "requester-pays" not in p.stdout
    assert "unknown" not in p.stdout
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    p = cli("scan", f"s3://{bucket}/", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "  versioned: no; requester-pays: no" in p.stdout.splitlines()
    r = lakeshift.scan(str(src), calibrate=False)
    unread = dataclasses.replace(r, source=f"s3://{bucket}/", versioned=None,
                                 requester_pays=True)
    assert "  versioned: unknown (the bucket's setting could not be read); " \
           "requester-pays: yes" in scan_lines(unread)


def test_verify_names_the_first_differences_and_how_many_more(
        local_env: dict[str, str], tmp_path: Path) -> None:
    files = {f"f{i:02}.txt": b"x" * 10 for i in range(14)}
    src = _folder(tmp_path / "src", files)
    dst = tmp_path / "dst"
    assert cli("copy", str(src), str(dst), "--progress", "none", env=local_env
               ).returncode == 0
    for i in range(12):  # 12 missing, 1 of another size, 1 extra: 14 differences
        (dst / f"f{i:02}.txt").unlink()
    (dst / "f13.txt").write_bytes(b"y" * 11)
    (dst / "zz-extra.txt").write_bytes(b"z")
    report = tmp_path / "r"
    p = cli("verify", str(src), str(dst), "--report", str(report), env=local_env)
    assert p.returncode == 1, p.stdout + p.stderr
    named = [ln for ln in p.stdout.splitlines()
             if ln.startswith(("  MISSING ", "  EXTRA ", "  DIFFERS "))]
    assert len(named) == 10, p.stdout
    missing = {f"  MISSING f{i:02}.txt: not at the destination" for i in range(12)}
    assert set(named) <= missing | {"  DIFFERS f13.txt: [size] 10 != 11 bytes",
                                    "  EXTRA zz-extra.txt: only at the destination"}, named
    assert f"  … and 4 more: see {report}.csv" in p.stdout.splitlines(), p.stdout
    # Fewer than ten: each named, no "more" line.
    (dst / "f13.txt").write_bytes(b"x" * 10)
    for i in range(11):
        (dst / f"f{i:02}.txt").write_bytes(b"x" * 10)
    p = cli("verify", str(src), str(dst), "--report", str(report), env=local_env)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "  MISSING f11.txt: not at the destination" in p.stdout.splitlines()
    assert "  EXTRA zz-extra.txt: only at the destination" in p.stdout.splitlines()
    assert "more: see" not in p.stdout
