"""One place, one name: ``sync --job J SRC DST`` compares DST with the job's destination by
the place each names, not by its text (api/syncing.py ``_same_url``), and a destination a
job saved before session 19 as ``az://ACCOUNT/CONTAINER/path`` reads back as the place it
was (``urls.saved_destination``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.api.syncing import _same_url
from lakeshift.urls import saved_destination
from tests import servers

ACCOUNT = servers.AZURITE_ACCOUNT


@pytest.fixture
def azurite_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials for Azurite's account (nothing is asked of a server here)."""
    for name in ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_KEY",
                 "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
                 "AZURE_STORAGE_BLOB_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       servers.azurite_connection_string(10000))


def test_every_spelling_of_an_azure_place_is_that_place(azurite_credentials: None) -> None:
    spellings = ["az://lake/raw", "az://lake/raw/",
                 f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/raw/",
                 f"abfs://lake@{ACCOUNT}.dfs.core.windows.net/raw",
                 f"https://{ACCOUNT}.blob.core.windows.net/lake/raw",
                 f"https://{ACCOUNT}.dfs.core.windows.net/lake/raw/"]
    for a in spellings:
        for b in spellings:
            assert _same_url(a, b), (a, b)


def test_another_container_path_or_account_is_another_place(azurite_credentials: None) -> None:
    for other in ("az://lake/raw2", "az://lake/raw/x", "az://lake", "az://other/raw",
                  "abfss://lake@otheracct.dfs.core.windows.net/raw",
                  f"az://{ACCOUNT}/lake/raw"):  # (container ACCOUNT, path lake/raw)
        assert not _same_url("az://lake/raw", other), other
        assert not _same_url(other, f"abfss://lake@{ACCOUNT}.dfs.core.windows.net/raw"), other


def test_s3_and_local_places(tmp_path: Path) -> None:
    assert _same_url("s3://bkt/raw", "s3://bkt/raw/")
    assert not _same_url("s3://bkt/raw", "s3://bkt2/raw")
    assert not _same_url("s3://bkt/raw", "s3://bkt/raw2")
    (tmp_path / "d").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "d")
    for same in (f"{tmp_path}/d/", f"file://{tmp_path}/d", str(tmp_path / "link")):
        assert _same_url(str(tmp_path / "d"), same), same
    assert not _same_url(str(tmp_path / "d"), str(tmp_path))
    assert not _same_url("s3://bkt/raw", "az:/nothing")  # not a URL: no place


@pytest.mark.parametrize(("typed", "place"), [
    ("abfss://lake@acct.dfs.core.windows.net/out/",
     "abfss://lake@acct.dfs.core.windows.net/out/"),
    ("https://acct.blob.core.windows.net/lake/out/",
     "https://acct.blob.core.windows.net/lake/out/"),
    # its host suffix, which the old form dropped, comes back from the partition's URL
    ("https://acct.blob.core.chinacloudapi.cn/lake/out/",
     "https://acct.blob.core.chinacloudapi.cn/lake/out/"),
    # sources in several buckets: the partitions' destinations are DST/BUCKET/
    ("abfss://lake@acct.dfs.core.windows.net/out/bkt/",
     "abfss://lake@acct.dfs.core.windows.net/out/"),
])
def test_an_old_saved_destination_reads_as_the_place_it_was(typed: str, place: str) -> None:
    assert saved_destination("az://acct/lake/out/", typed) == place
    assert saved_destination("az://acct/lake/out", typed) == place.removesuffix("/")
    assert saved_destination("az://acct/lake/", typed) == place.removesuffix("out/")


def test_anything_else_saved_reads_as_it_is() -> None:
    new = "abfss://lake@acct.dfs.core.windows.net/out/"
    cases = [
        ("az://lake/out/", "az://lake/out/"),  # an az:// job: its partitions say az:// too
        ("az://acct/lake/out/", "az://acct/lake/out/"),  # an ADF job: the saved one itself
        (new, new),  # saved as display() spells it now
        ("az://acct/lake/out/", "abfss://other@acct.dfs.core.windows.net/out/"),
        ("az://acct/lake/out/", "abfss://lake@acct2.dfs.core.windows.net/out/"),
        ("az://acct/lake/out/", None),  # a job with no partitions
        ("az://acct/lake/out/", "not a url:"),
        ("s3://bkt/out/", "s3://bkt/out/"),
    ]
    for saved, typed in cases:
        assert saved_destination(saved, typed) == saved, (saved, typed)
