"""Azure as a user meets it first, through the CLI: how its objects are named, and what a
first contact that hangs says (stores/reach.py, stores/azure/).

* Objects are named in the URL's own terms: ``az://lake/…`` for ``az://lake/`` (not
  ``az://devstoreaccount1/lake/…``, a container-looking name the user never wrote), the
  account kept where the URL named it (``abfss://lake@ACCOUNT…``).

As in test_cli_unreachable.py, ``LAKESHIFT_CONNECT_SECONDS=1`` (``quick_env``): 1 s a
connect, 4 s a first contact.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests import servers
from tests.e2e.cli import lakeshift, one_clear_line

_WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="


def _local_source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    return src


# -- names: as the user wrote the place ------------------------------------------------

def test_an_azure_object_is_named_as_the_url_names_its_place(
        cli_env: dict[str, str], azurite: Any, container: str, tmp_path: Path) -> None:
    """``az://CONTAINER/…`` (the account from the credentials) names its objects
    ``az://CONTAINER/…`` in a line and in the failures list; a URL that names the account
    in its host keeps the account (``az://ACCOUNT/CONTAINER/…``), as before."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    src = _local_source(tmp_path)
    wrong = dict(cli_env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        azurite.port, key=_WRONG_KEY))
    p = lakeshift("copy", str(src), f"az://{container}/raw/", env=wrong)
    assert p.returncode == 3, p.stderr
    assert one_clear_line(p).startswith(f"lakeshift: az://{container}/: Azure credentials "
                                        "rejected ("), p.stderr
    assert servers.AZURITE_ACCOUNT not in p.stderr, p.stderr
    abfss = f"abfss://{container}@{servers.AZURITE_ACCOUNT}.dfs.core.windows.net/raw/"
    p = lakeshift("copy", str(src), abfss, env=wrong)
    assert one_clear_line(p).startswith(
        f"lakeshift: az://{servers.AZURITE_ACCOUNT}/{container}/: Azure credentials "), p.stderr

    # A SAS that may list and read but not write: each object fails on its own, and the
    # failures list names it as the URL does.
    sas = generate_container_sas(servers.AZURITE_ACCOUNT, container, servers.AZURITE_KEY,
                                 permission=ContainerSasPermissions(read=True, list=True),
                                 expiry=datetime.now(UTC) + timedelta(hours=1))
    read_only = dict(cli_env, AZURE_STORAGE_CONNECTION_STRING=(
        f"BlobEndpoint=http://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT};"
        f"SharedAccessSignature={sas}"))
    p = lakeshift("copy", str(src), f"az://{container}/ro/", "--json", env=read_only)
    assert p.returncode == 1, p.stdout + p.stderr
    summary = json.loads(p.stdout)
    assert summary["destination"] == f"az://{container}/ro/"
    [failure] = summary["failures"]
    assert failure["message"].startswith(f"az://{container}/ro/a.txt: "), failure
    assert servers.AZURITE_ACCOUNT not in p.stdout + p.stderr
