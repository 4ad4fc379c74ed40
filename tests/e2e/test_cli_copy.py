"""The CLI end to end: exit codes, one clear line per user mistake, no secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.e2e.cli import BIN, lakeshift, obeying_file_modes, one_clear_line
from tests.helpers import blob_bytes, blobs


def test_version_and_help_with_example(cli_env: dict[str, str]) -> None:
    p = lakeshift("--version", env=cli_env)
    assert p.returncode == 0 and p.stdout.startswith("lakeshift ")
    h = lakeshift("copy", "--help", env=cli_env)
    assert h.returncode == 0 and "Examples" in h.stdout and "lakeshift copy s3://" in h.stdout


def test_copy_json_summary_and_exit_code_every_time(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any, container: str) -> None:
    for i in range(20):
        s3.put_object(Bucket=bucket, Key=f"in/f{i:02d}.txt", Body=f"file {i}".encode())
    p = lakeshift("copy", f"s3://{bucket}/in/", f"az://{container}/out/", "--json", env=cli_env)
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["copied"] == 20 and summary["failed"] == 0 and summary["exit_code"] == 0
    assert blob_bytes(blob_service, container, "out/f07.txt") == b"file 7"
    # obstore's runtime may abort at interpreter shutdown (DESIGN.md §8): the CLI must exit
    # with the code it computed, every time.
    for _ in range(8):
        again = lakeshift("copy", f"s3://{bucket}/in/", f"az://{container}/out/", "--json",
                          env=cli_env)
        assert again.returncode == 0, (again.returncode, again.stderr)
        assert json.loads(again.stdout)["skipped"] == 20


def test_plain_progress_lines_and_text_summary(cli_env: dict[str, str], tmp_path: Path,
                                               container: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.bin").write_bytes(os.urandom(1000))
    p = lakeshift("copy", str(src), f"az://{container}/p", "--progress", "plain", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert "copied" in p.stdout and "5 objects" in p.stdout


@pytest.mark.parametrize("args,code,needle", [
    (["copy", "s3:/bad", "/tmp/x"], 2, "malformed URL"),
    (["copy", "gs://bucket/x", "/tmp/x"], 2, "unknown URL scheme"),
    (["copy", "s3://Bad_Bucket/x", "/tmp/x"], 2, "invalid S3 bucket name"),
    (["copy", "s3://no-such-bucket-e2e/", "/tmp/x"], 2, "bucket does not exist"),
    (["copy", "az://no-such-container-e2e/", "/tmp/x"], 2, "container/filesystem does not exist"),
    (["copy", "/tmp", "/tmp/x", "--concurrency", "0"], 2, "--concurrency"),
    (["copy", "/tmp", "/tmp/x", "--block-size", "huge"], 2, "--block-size"),
    (["copy", "/tmp", "/tmp/x", "--single-put-max", "6000MiB"], 2, "--single-put-max"),
    (["copy", "/tmp", "/tmp/x", "--overwrite", "sometimes"], 2, "--overwrite"),
    (["copy", "/tmp"], 2, "Missing argument"),
    (["copy", "/nonexistent/src/dir/", "/tmp/x"], 2, "does not exist"),
    # verify reads the destination with the same check: it is not called the "source".
    (["verify", "/tmp", "/nonexistent/verify/dst/"], 2,
     "local directory /nonexistent/verify/dst does not exist"),
])
def test_user_mistakes_get_one_line_and_exit_2(cli_env: dict[str, str], args: list[str],
                                              code: int, needle: str) -> None:
    p = lakeshift(*args, env=cli_env)
    assert p.returncode == code, (p.returncode, p.stderr)
    assert needle in one_clear_line(p)


def test_destination_that_is_an_existing_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a")
    (tmp_path / "dest-file").write_text("I am a file")
    p = lakeshift("copy", str(tmp_path / "src"), str(tmp_path / "dest-file"), env=cli_env)
    assert p.returncode == 2
    assert "is an existing file" in one_clear_line(p)
    assert (tmp_path / "dest-file").read_text() == "I am a file"


def test_wrong_azure_key_is_exit_3_and_never_printed(cli_env: dict[str, str], azurite: Any,
                                                     tmp_path: Path) -> None:
    wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
    env = dict(cli_env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        azurite.port, key=wrong))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a").write_text("a")
    p = lakeshift("copy", str(tmp_path / "src"), "az://lake-wrong-key/", env=env)
    assert p.returncode == 3, p.stderr
    line = one_clear_line(p)
    assert "credentials rejected" in line and "AZURE_STORAGE" in line
    assert wrong not in p.stderr + p.stdout


@pytest.mark.parametrize("missing,needle", [
    ("aws", "no AWS credentials"),
    ("azure", "no Azure credentials"),
])
def test_missing_credentials_are_exit_3(cli_env: dict[str, str], missing: str,
                                        needle: str, tmp_path: Path) -> None:
    env = {k: v for k, v in cli_env.items()
           if not k.startswith("AWS_ACCESS" if missing == "aws" else "AZURE_")}
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    src = "s3://whatever-bucket/" if missing == "aws" else "az://whatever/"
    p = lakeshift("copy", src, str(tmp_path / "o"), env=env)
    assert p.returncode == 3, p.stderr
    assert needle in one_clear_line(p)


def test_unreadable_local_file_fails_that_object_only(cli_env: dict[str, str], tmp_path: Path,
                                                      container: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("fine")
    (src / "secret.txt").write_text("no")
    os.chmod(src / "secret.txt", 0o000)
    p = lakeshift("copy", str(src), f"az://{container}/perm/", "--json", env=cli_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 1, p.stderr
    s = json.loads(p.stdout)
    assert s["copied"] == 1 and s["failed"] == 1
    assert s["failures"][0]["key"] == "secret.txt"
    assert s["failures"][0]["kind"] == "forbidden"
    assert "permission denied" in s["failures"][0]["message"]


def test_interrupt_exits_130_and_a_rerun_finishes(cli_env: dict[str, str], tmp_path: Path,
                                                   blob_service: Any, container: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(1500):
        (src / f"{i:04d}.bin").write_bytes(os.urandom(2000))
    proc = subprocess.Popen([str(BIN), "copy", str(src), f"az://{container}/int/",
                             "--concurrency", "1", "--progress", "none"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(blobs(blob_service, container, "int/")) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted" in err and "Traceback" not in err
    done = len(blobs(blob_service, container, "int/"))
    assert 20 <= done < 1500
    p = lakeshift("copy", str(src), f"az://{container}/int/", "--json", env=cli_env)
    assert p.returncode == 0
    s = json.loads(p.stdout)
    assert s["copied"] + s["skipped"] == 1500 and s["skipped"] >= done - 1
    assert len(blobs(blob_service, container, "int/")) == 1500


def test_wrong_aws_key_is_exit_3_when_the_service_checks_keys(cli_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    checking = servers.start_moto(auth=True)
    try:
        env = dict(cli_env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{checking.port}",
                   AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG1",
                   AWS_SECRET_ACCESS_KEY="wrong-secret-never-printed")
        p = lakeshift("copy", "s3://some-bucket/x/", str(tmp_path / "o"), env=env)
        assert p.returncode == 3, p.stderr
        line = one_clear_line(p)
        assert "AWS credentials rejected" in line and "AWS_ACCESS_KEY_ID" in line
        assert "wrong-secret-never-printed" not in p.stderr + p.stdout
    finally:
        checking.stop()


def test_internal_error_is_exit_4_with_the_traceback_in_a_log(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lakeshift.api import copying
    from lakeshift.cli import app

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(copying, "_copy_pair", broken)  # the engine under lakeshift.copy
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / "src").mkdir()
    code = app.run(["copy", str(tmp_path / "src"), str(tmp_path / "dst")])
    err = capsys.readouterr().err
    assert code == 4 and "internal error" in err and "Traceback" not in err
    log = next(tmp_path.glob("lakeshift-error-*.log"))
    assert "simulated bug" in log.read_text() and "Traceback" in log.read_text()


def test_abfss_url_on_the_emulator_and_an_account_mismatch(
        cli_env: dict[str, str], tmp_path: Path, blob_service: Any, container: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_text("gen2")
    url = f"abfss://{container}@devstoreaccount1.dfs.core.windows.net/g2/"
    p = lakeshift("copy", str(tmp_path / "src"), url, "--json", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert blob_bytes(blob_service, container, "g2/f.txt") == b"gen2"
    other = f"abfss://{container}@otheraccount.dfs.core.windows.net/g2/"
    p = lakeshift("copy", str(tmp_path / "src"), other, env=cli_env)
    assert p.returncode == 2 and "names account 'otheraccount'" in one_clear_line(p)


_KEY_ENV = {"AZURE_STORAGE_CONNECTION_STRING": "", "AZURE_STORAGE_ACCOUNT_KEY": "a2V5a2V5"}


@pytest.mark.parametrize(("args", "extra_env", "expected"), [
    (("https://acct.blob.core.windows.net.evil.example/cont/x",), _KEY_ENV, "is not Azure's"),
    (("https://acct.blob.core.windows.nett/cont/x",), _KEY_ENV, "is not Azure's"),
    (("az://cont/x",), {"AZURE_STORAGE_CONNECTION_STRING": "",
                        "AZURE_STORAGE_ACCOUNT": "acct",
                        "AZURE_STORAGE_ACCOUNT_KEY": "not base64!"}, "not an account key"),
    (("az://cont/x", "--s3-endpoint", "not-a-url"), {}, "is not a URL"),
])
def test_refused_before_any_request(args: tuple[str, ...], extra_env: dict[str, str],
                                    expected: str, cli_env: dict[str, str],
                                    bucket: str) -> None:
    env = {**cli_env, **extra_env}
    p = lakeshift("copy", f"s3://{bucket}/in/", *args, env=env)
    assert p.returncode == 2, p.stderr
    line = one_clear_line(p)
    assert expected in line and "not base64!" not in line
