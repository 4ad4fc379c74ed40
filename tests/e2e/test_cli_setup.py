"""`lakeshift check`, `lakeshift init` and `run --config`, as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests import servers
from tests.e2e.cli import BIN, lakeshift, one_clear_line
from tests.helpers import blobs


def test_check_reports_each_step_ok(cli_env: dict[str, str], s3: Any, bucket: str,
                                    container: str, blob_service: Any) -> None:
    s3.put_object(Bucket=bucket, Key="raw/a.txt", Body=b"hello")
    p = lakeshift("check", f"s3://{bucket}/raw/", f"az://{container}/dst/", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    steps = [ln.split()[2] for ln in lines]
    assert all(ln.startswith("ok") for ln in lines)
    assert steps == ["credentials", "reach", "read", "clock", "credentials", "reach", "write",
                     "clock"]
    assert f"read 5 bytes of s3://{bucket}/raw/a.txt" in p.stdout  # the place, not a bare key
    # The source has objects under raw/; the destination's dst/ has none yet: on a flat
    # namespace it is not said to exist.
    assert f"s3://{bucket}/raw/ exists and can be listed" in p.stdout
    assert f"az://{container}/dst/ can be listed; nothing under it yet" in p.stdout
    assert "dst/ exists" not in p.stdout
    assert blobs(blob_service, container) == {}  # the probe object was deleted


def test_check_names_the_fix_for_a_wrong_key(cli_env: dict[str, str], azurite: Any,
                                             tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    env = dict(cli_env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        azurite.port, key="V3JvbmdLZXlXcm9uZ0tleQ=="))
    p = lakeshift("check", str(tmp_path / "src"), "az://some-container/", "--json", env=env)
    assert p.returncode == 3
    lines = json.loads(p.stdout)
    assert lines[-1]["ok"] is False and "credentials rejected" in lines[-1]["detail"]
    assert "V3JvbmdLZXlXcm9uZ0tleQ==" not in p.stdout


def test_check_takes_a_missing_destination_the_copy_creates_and_creates_none(
        cli_env: dict[str, str], s3: Any, bucket: str, blob_service: Any,
        tmp_path: Path) -> None:
    from lakeshift import MissingContainerError, UsageError

    assert issubclass(MissingContainerError, UsageError)
    (tmp_path / "src").mkdir()
    # (A local folder is another matter: tests/e2e/test_cli_local_disk.py.)
    # The emulators' credentials (an account key, AWS keys) may create them, as the copy
    # does: check says so and passes (tests/e2e/test_cli_check_missing.py: when they may
    # not, the one failed line).
    missing = {"az://not-made-yet/dst/": "Create Container",
               "s3://not-made-yet/dst/": "CreateBucket"}
    for dst, how in missing.items():
        p = lakeshift("check", str(tmp_path / "src"), dst, "--json", env=cli_env)
        assert p.returncode == 0, p.stdout + p.stderr
        reach, write = json.loads(p.stdout)[-2:]
        assert (reach["side"], reach["ok"], write["ok"]) == ("destination", True, True)
        assert "does not exist yet; the copy creates it" in reach["detail"] and \
            how in reach["detail"], reach
        assert "not tried" in write["detail"], write
    # Nothing was created on any side.
    assert "not-made-yet" not in [c.name for c in blob_service.list_containers()]
    assert "not-made-yet" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_init_wizard_writes_a_config_that_run_runs(cli_env: dict[str, str], s3: Any,
                                                   bucket: str, container: str,
                                                   blob_service: Any, tmp_path: Path) -> None:
    for i in range(6):
        s3.put_object(Bucket=bucket, Key=f"in/{'a' if i < 3 else 'b'}/{i}.txt", Body=b"x")
    answers = "\n".join([
        f"s3://{bucket}/in/", f"az://{container}/out/",
        "env", "",  # AWS credentials from the environment; endpoint from AWS_ENDPOINT_URL
        "auto",  # Azure credentials
        "y",  # connection test
        "prefixes", "a/, b/",
        "wiz", f"sqlite:///{tmp_path}/w.db", "2", "8", "once"]) + "\n"
    cfg = tmp_path / "lakeshift.toml"
    p = subprocess.run([str(BIN), "init", "-o", str(cfg)], input=answers, env=cli_env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok   source" in p.stdout and "lakeshift run --config" in p.stdout
    text = cfg.read_text()
    assert 'mode = "prefixes"' in text and "testing-secret" not in text
    r = lakeshift("run", "--config", str(cfg), "--json", env=cli_env)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["partitions_succeeded"], s["copied"]) == (2, 6)
    assert len(blobs(blob_service, container, "out/")) == 6


def test_init_without_answers_is_a_clear_error(cli_env: dict[str, str], tmp_path: Path) -> None:
    p = subprocess.run([str(BIN), "init", "-o", str(tmp_path / "x.toml")], input="",
                       env=cli_env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "init is interactive" in one_clear_line(p)
    assert not (tmp_path / "x.toml").exists()


def test_bad_config_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[job]\nname = 'x'\n[source]\nurls = []\n")
    p = lakeshift("run", "--config", str(bad), env=cli_env)
    assert p.returncode == 2 and "source.urls is missing" in one_clear_line(p)
