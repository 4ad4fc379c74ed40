"""docs/gen1-migration.md "Try it on the lab" runs as written: the lab is started as a user
starts it (``python -m tests.doubles.lab --env-file FILE``), and each ``sh`` block of the
section runs, in order, in bash with that file sourced; every one must succeed.  Then the
result is checked without lakeshift (the Azure SDKs)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import servers

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "gen1-migration.md"

pytestmark = pytest.mark.slow


def lab_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Try it on the lab", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_the_doc_has_the_lab_commands() -> None:
    blocks = lab_blocks()
    assert len(blocks) >= 3
    assert any("lakeshift copy" in b and "--preserve" in b for b in blocks)
    assert any("lakeshift verify" in b for b in blocks)


def test_the_lab_section_runs_as_written(tmp_path: Path) -> None:
    env_file = tmp_path / "lab.env"
    log = tmp_path / "lab.log"
    with open(log, "wb") as out:
        lab = subprocess.Popen([sys.executable, "-m", "tests.doubles.lab", "--env-file",
                                str(env_file)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                               env=servers.clean_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not env_file.exists():
            assert lab.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the lab did not start: " + log.read_text()
            time.sleep(0.2)
        env = servers.clean_env() | {"HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
        for block in lab_blocks():
            p = subprocess.run(["bash", "-euo", "pipefail", "-c",
                                f". {env_file}\n{block}"], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, (block, p.stdout, p.stderr)
        values = dict(re.findall(r"^export (\w+)=(.*)$", env_file.read_text(), flags=re.M))
        connection = values["AZURE_STORAGE_CONNECTION_STRING"].strip("'")
        from azure.storage.blob import BlobServiceClient
        from azure.storage.filedatalake import DataLakeServiceClient

        from tests.doubles import lab as lab_module

        names = {b.name for b in BlobServiceClient.from_connection_string(
            connection).get_container_client("gen2").list_blobs()}
        assert {"lake/big.bin", "lake/empty", "lake/curated/sales.parquet",
                "from-hdfs/big.bin"} <= names
        fs = DataLakeServiceClient.from_connection_string(connection).get_file_system_client(
            "gen2")
        got = fs.get_directory_client("lake/curated").get_access_control()
        assert (got["owner"], got["group"]) == (lab_module.DST_OWNER, lab_module.DST_TEAM)
        assert f"user:{lab_module.DST_ALICE}:r-x" in got["acl"]
        hdfs = fs.get_directory_client("from-hdfs/curated").get_access_control()
        assert (hdfs["owner"], hdfs["group"]) == (lab_module.DST_HDFS, lab_module.DST_TEAM)
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGTERM)
            try:
                lab.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(lab.pid, signal.SIGKILL)
                lab.wait(timeout=10)
    assert lab.returncode == 0, log.read_text()
    assert "lakeshift lab: stopping" in log.read_text()
