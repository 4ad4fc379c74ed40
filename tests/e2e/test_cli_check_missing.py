"""`check` failed a destination bucket or container that does not exist although `copy`
creates it (prepare_destination).  Now it says so when the credentials may create it, and
fails one line naming what is missing when they cannot; it creates nothing either way."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.e2e.cli import lakeshift


def _lines(p: Any) -> list[str]:
    return [ln for ln in p.stdout.splitlines() if ln.strip()]


def test_check_takes_a_missing_bucket_or_container_the_copy_creates(
        cli_env: dict[str, str], s3: Any, blob_service: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    name = f"new-{uuid.uuid4().hex[:10]}"
    for url, how in ((f"s3://{name}/x/", "CreateBucket"),
                     (f"az://{name}/x/", "Create Container, with the account key")):
        p = lakeshift("check", str(src), url, env=cli_env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert all(ln.startswith("ok") for ln in _lines(p)), p.stdout
        assert "does not exist yet; the copy creates it" in p.stdout and how in p.stdout, \
            p.stdout
    # Nothing was created.
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert not blob_service.get_container_client(name).exists()
    # And the copy does create them.
    for url in (f"s3://{name}/x/", f"az://{name}/x/"):
        p = lakeshift("copy", str(src), url, "--json", env=cli_env)
        assert p.returncode == 0, p.stdout + p.stderr


def test_check_fails_a_missing_bucket_that_anonymous_requests_cannot_create(
        cli_env: dict[str, str], s3: Any, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    name = f"new-{uuid.uuid4().hex[:10]}"
    p = lakeshift("check", str(src), f"s3://{name}/", "--s3-anonymous", env=cli_env)
    assert p.returncode == 2, p.stdout + p.stderr
    fails = [ln for ln in _lines(p) if not ln.startswith("ok")]
    assert len(fails) == 1 and fails[0].startswith("FAIL destination reach"), p.stdout
    assert f"the bucket does not exist: create it (aws s3 mb s3://{name})" in fails[0]
    assert "anonymous requests (--s3-anonymous) cannot create a bucket" in fails[0]
    assert "Traceback" not in p.stdout + p.stderr
