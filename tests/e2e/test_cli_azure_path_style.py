"""The emulator's own URL form: ``https://127.0.0.1:PORT/ACCOUNT/CONTAINER/path``.

With a connection string whose ``BlobEndpoint`` is Azurite's, docs/faults-and-names.md says a
URL that names a host must name that endpoint's host: such a URL (the account first in the
path, as Azurite and Azure Stack address one) was refused as "invalid Azure host".  It is
the same place as ``az://CONTAINER/path`` there; another host, or another account in the
path, is refused in one line.  And ``sync --job`` given a destination that does not parse
said the job "syncs X, not Y" (another place) instead of what is wrong with the URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.e2e.cli import lakeshift, one_clear_line


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"alpha")
    (src / "d").mkdir()
    (src / "d" / "b.txt").write_bytes(b"beta")
    return src


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_a_url_naming_the_emulator_endpoint_is_the_az_place(
        cli_env: dict[str, str], azurite: Any, container: str, blob_service: Any,
        tmp_path: Path, scheme: str) -> None:
    src = _source(tmp_path)
    url = f"{scheme}://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT}/{container}/job/"

    p = lakeshift("copy", str(src), url, "--json", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["destination"] == url  # shown as given: pasted back, the same
    names = sorted(b.name for b in blob_service.get_container_client(container).list_blobs())
    assert names == ["job/a.txt", "job/d/b.txt"], names

    for dst in (url, f"az://{container}/job/"):
        p = lakeshift("verify", str(src), dst, "--report", str(tmp_path / "v.json"),
                      env=cli_env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "2 verified" in p.stdout, p.stdout
    # As a source too: read back from the endpoint, byte for byte.
    p = lakeshift("copy", url, str(tmp_path / "back"), env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (tmp_path / "back" / "d" / "b.txt").read_bytes() == b"beta"
    assert (tmp_path / "back" / "a.txt").read_bytes() == b"alpha"


def test_sync_job_takes_the_emulator_url_of_its_az_destination(
        cli_env: dict[str, str], azurite: Any, container: str, tmp_path: Path) -> None:
    src = _source(tmp_path)
    db = f"sqlite:///{tmp_path}/c.db"
    p = lakeshift("sync", f"{src}/", f"az://{container}/job/", "--job", "lake", "--db", db,
                  "--lag", "0", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    url = f"https://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT}/{container}/job/"
    p = lakeshift("sync", f"{src}/", url, "--job", "lake", "--db", db, "--lag", "0",
                  env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    # Another container at that endpoint is another place, and said so.
    other = f"https://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT}/other/job/"
    p = lakeshift("sync", f"{src}/", other, "--job", "lake", "--db", db, "--lag", "0",
                  env=cli_env)
    assert p.returncode == 2 and "syncs" in one_clear_line(p), p.stderr


@pytest.mark.parametrize("bad,needle", [
    ("https://127.0.0.1:{port}/c/job/", "invalid Azure host '127.0.0.1:{port}'"),
    ("az://Bad_Name/job/", "invalid container/filesystem name 'Bad_Name'"),
])
def test_sync_job_with_a_destination_that_does_not_parse_says_why(
        cli_env: dict[str, str], azurite: Any, container: str, tmp_path: Path, bad: str,
        needle: str) -> None:
    src = _source(tmp_path)
    db = f"sqlite:///{tmp_path}/c.db"
    p = lakeshift("sync", f"{src}/", f"az://{container}/job/", "--job", "lake", "--db", db,
                  "--lag", "0", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    p = lakeshift("sync", f"{src}/", bad.format(port=azurite.port), "--job", "lake", "--db",
                  db, "--lag", "0", env=cli_env)
    line = one_clear_line(p)
    assert p.returncode == 2, p.stderr
    assert needle.format(port=azurite.port) in line and "syncs" not in line, line


@pytest.mark.parametrize("cmd", ["copy", "verify", "sync"])
@pytest.mark.parametrize("wrong", ["account", "port"])
def test_another_account_or_host_in_an_emulator_url_is_refused(
        cli_env: dict[str, str], azurite: Any, blob_service: Any, tmp_path: Path, cmd: str,
        wrong: str) -> None:
    src = _source(tmp_path)
    port = servers.free_port() if wrong == "port" else azurite.port
    account = "otheraccount" if wrong == "account" else servers.AZURITE_ACCOUNT
    url = f"https://127.0.0.1:{port}/{account}/pathstyle/job/"
    extra = (["--job", "j", "--db", f"sqlite:///{tmp_path}/c.db"] if cmd == "sync" else
             ["--report", str(tmp_path / "v.json")] if cmd == "verify" else [])
    p = lakeshift(cmd, str(src), url, *extra, env=cli_env)
    line = one_clear_line(p)
    assert p.returncode == 2, p.stdout + p.stderr
    if wrong == "account":
        assert "names account 'otheraccount'" in line and "devstoreaccount1" in line, line
    else:
        assert f"host '127.0.0.1:{port}'" in line and "is neither Azure's" in line, line
    assert "pathstyle" not in [c.name for c in blob_service.list_containers()]
    assert "Eby8vdM02x" not in p.stdout + p.stderr  # (the key never shown)
