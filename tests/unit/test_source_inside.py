"""A destination inside its source is refused before any request (exit 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakeshift.errors import UsageError
from lakeshift.plan.source import (
    SourceSpec,
    destination_config,
    refuse_destination_inside_source,
    source_config,
)
from lakeshift.stores.base import StoreOptions


def _refused(src: str, dst: str, src_opts: StoreOptions | None = None,
             dst_opts: StoreOptions | None = None, spec: SourceSpec | None = None) -> bool:
    try:
        refuse_destination_inside_source(source_config(src, src_opts),
                                         destination_config(dst, dst_opts), spec)
    except UsageError as e:
        assert e.exit_code == 2 and "is inside the source" in str(e)
        return True
    return False


@pytest.mark.parametrize("src,dst,refused", [
    ("s3://bkt/d", "s3://bkt/d/sub", True),
    ("s3://bkt/d/", "s3://bkt/d/", True),
    ("s3://bkt/", "s3://bkt/anything", True),
    ("s3://bkt/logs/2024-0", "s3://bkt/logs/2024-0/copy/", True),
    ("s3://bkt/logs/2024-0", "s3://bkt/logs/2024-05-copy/", False),  # known once resolved
    ("s3://bkt/d", "s3://bkt/e/d", False),
    ("s3://bkt/d/sub", "s3://bkt/d", False),
    ("s3://bkt/d", "s3://other-bkt/d/sub", False),
    ("az://cnt/d", "az://cnt/d/sub", True),
    ("az://cnt/", "az://cnt/x", True),
    ("az://cnt/d", "az://cnt2/d/sub", False),
    ("abfss://cnt@acct1.dfs.core.windows.net/d",
     "abfss://cnt@acct2.dfs.core.windows.net/d/", False),
    ("abfss://cnt@acct1.dfs.core.windows.net/d",
     "abfss://cnt@acct1.dfs.core.windows.net/d/", True),
    ("s3://bkt/d", "az://b0b/d/sub", False),
])
def test_object_stores(src: str, dst: str, refused: bool) -> None:
    assert _refused(src, dst) is refused


def test_same_bucket_name_on_another_endpoint_is_another_bucket() -> None:
    assert not _refused("s3://bkt/d", "s3://bkt/d/sub", StoreOptions(s3_endpoint="http://127.0.0.1:1"),
                        StoreOptions(s3_endpoint="http://127.0.0.1:2"))


def test_local_paths_resolved_with_symlinks(tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    assert _refused(str(src), str(src / "sub"))
    assert _refused(str(src), str(src))
    assert _refused(str(src), str(src / "not" / "yet" / "there"))
    assert not _refused(str(src), str(tmp_path / "d-copy"))
    (src / "sub").mkdir()
    assert not _refused(str(src / "sub"), str(src))
    # a link outside the source that points into it
    os.symlink(src, tmp_path / "alias")
    assert _refused(str(src), str(tmp_path / "alias" / "sub"))
    assert _refused(str(tmp_path / "alias"), str(src / "sub"))


def test_a_local_source_naming_a_file_or_name_prefix(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text("a")
    one = str(tmp_path / "d" / "a.csv")
    assert not _refused(one, str(tmp_path / "d" / "out"))     # takes only a.csv
    assert _refused(one, str(tmp_path / "d"))                  # onto itself
    assert _refused(one, str(tmp_path / "d" / "a.csv-copy"))   # a.csv… takes it
    (tmp_path / "d" / "log.txt").write_text("l")  # "lo" names it (a typo would be refused)
    assert _refused(str(tmp_path / "d" / "lo"), str(tmp_path / "d" / "logs-out"))


@pytest.fixture
def azure_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials of account ``acct`` (no server is asked)."""
    import base64

    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_BLOB_ENDPOINT",
                 "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_ID", "AZURE_STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "acct")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", base64.b64encode(b"k" * 64).decode())


GEN2 = "abfss://cnt@acct.dfs.core.windows.net"
BLOB = "https://acct.blob.core.windows.net/cnt"


@pytest.mark.parametrize("src,dst,refused", [
    # az:// takes its account from the credentials: acct's container cnt in every spelling
    ("az://cnt/raw", f"{GEN2}/raw/x", True),
    (f"{GEN2}/raw", "az://cnt/raw/x", True),
    (f"{GEN2}/raw/", "az://cnt/raw", True),
    (f"{BLOB}/raw", "az://cnt/raw/x/", True),
    ("az://cnt/raw", f"{BLOB}/raw", True),
    ("az://cnt/", f"{GEN2}/anything", True),
    (f"{BLOB}/raw", f"{GEN2}/raw/x", True),
    # another account, container, path or cloud is another place
    ("az://cnt/raw", "abfss://cnt@other.dfs.core.windows.net/raw/x", False),
    ("abfss://cnt@other.dfs.core.windows.net/raw", "az://cnt/raw/x", False),
    ("az://cnt/raw", "abfss://cnt2@acct.dfs.core.windows.net/raw/x", False),
    ("az://cnt/raw", f"{GEN2}/raw2", False),  # a folder raw does not take raw2/
    ("az://cnt/raw/", f"{GEN2}/raw2", False),
    ("az://cnt/raw/x", f"{GEN2}/raw", False),
    ("abfss://cnt@acct.dfs.core.chinacloudapi.cn/raw", "az://cnt/raw/x", False),
])
def test_azure_spellings_of_one_container(azure_account: None, src: str, dst: str,
                                          refused: bool) -> None:
    assert _refused(src, dst) is refused


def test_azure_account_of_the_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
                       + base64.b64encode(b"k" * 64).decode())
    assert _refused("az://cnt/raw", f"{GEN2}/raw/x")
    assert not _refused("abfss://cnt@other.dfs.core.windows.net/raw", "az://cnt/raw/x")


def test_s3_endpoint_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    """One bucket at one endpoint, whether the endpoint is a flag (any case, a trailing
    slash) or the environment's; another endpoint is another bucket."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    minio = StoreOptions(s3_endpoint="http://127.0.0.1:9000")
    assert _refused("s3://bkt/d", "s3://bkt/d/x", StoreOptions(
        s3_endpoint="HTTP://127.0.0.1:9000/"), minio)
    assert not _refused("s3://bkt/d", "s3://bkt/d/x", None, minio)  # AWS's bkt, MinIO's
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert _refused("s3://bkt/d", "s3://bkt/d/x", None, minio)
    assert not _refused("s3://bkt/d", "s3://bkt/d/x", None,
                        StoreOptions(s3_endpoint="http://127.0.0.1:9001"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9001")  # wins over the other
    assert not _refused("s3://bkt/d", "s3://bkt/d/x", None, minio)


def test_local_relative_absolute_file_url_and_symlink_spellings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "real" / "in").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    real = str(tmp_path / "real")
    for src, dst in (("real", "real/in"), ("./real", f"file://{real}/in"),
                     (f"file://{real}", "real/in/x"), (f"file://{real}/", "link/in"),
                     ("link", f"{real}/in"), (real, "link"), ("link/", f"file://{real}"),
                     ("real/../real", "./link/new")):
        assert _refused(src, dst), (src, dst)
    for src, dst in (("real/in", "real"), ("real", "realm"), ("link/in", f"file://{real}")):
        assert not _refused(src, dst), (src, dst)


@pytest.mark.parametrize("src,dst", [
    ("s3://bkt/raw", "s3://bkt/raw2/"), ("s3://bkt/logs/2024-0", "s3://bkt/logs/2024-05-copy"),
    ("az://cnt/raw", "az://cnt/raw-copy")])
def test_a_string_prefix_of_the_destination_is_judged_by_what_the_source_lists(
        src: str, dst: str) -> None:
    """``raw`` lists ``raw2/`` only when it is not a folder (resolve_source): before the
    source is asked it is not refused; once resolved, a folder is not, a prefix is."""
    path = source_config(src).url.path
    parent = path[:path.rfind("/") + 1]
    assert not _refused(src, dst)
    assert not _refused(src, dst, spec=SourceSpec(path + "/", path + "/"))  # a folder
    assert not _refused(src, dst, spec=SourceSpec(path, parent, single=True))  # one object
    assert _refused(src, dst, spec=SourceSpec(path, parent))  # a string prefix


def test_a_folder_of_the_source_is_refused_whatever_the_source_resolves_to() -> None:
    for spec in (None, SourceSpec("raw/", "raw/"), SourceSpec("raw", "")):
        assert _refused("s3://bkt/raw", "s3://bkt/raw/copy/", spec=spec)
        assert _refused("s3://bkt/raw", "s3://bkt/raw", spec=spec)
    for spec in (None, SourceSpec("", "")):
        assert _refused("s3://bkt/", "s3://bkt/raw2", spec=spec)


def test_the_refusal_names_both_urls_as_the_user_wrote_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One container as ``az://`` (its account from the credentials) and as ``abfss://``
    (naming the account): the line named ``az://devstoreaccount1/cont/raw/x`` for the
    ``abfss://`` one, a spelling the user never wrote.  Both are named as written, either
    way round; the credentials' key never appears.  A relative local path stays relative."""
    import base64

    key = base64.b64encode(b"secret-key-bytes" * 4).decode()
    for name in ("AZURE_STORAGE_BLOB_ENDPOINT", "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_ID",
                 "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                       f"AccountKey={key};BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    az, abfss = "az://cont/raw", "abfss://cont@devstoreaccount1.dfs.core.windows.net/raw"
    for src, dst in ((az, abfss + "/x"), (abfss, az + "/x"), (az, az + "/x/")):
        for spec in (None, SourceSpec("raw/", "raw/")):
            with pytest.raises(UsageError) as e:
                refuse_destination_inside_source(source_config(src), destination_config(dst),
                                                 spec)
            said = str(e.value)
            assert said.startswith(f"destination {dst} is inside the source {src}: "), said
            assert key not in said and "devstoreaccount1/cont" not in said, said
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(UsageError,
                       match=r"^destination \./data/sub is inside the source \./data: "):
        refuse_destination_inside_source(source_config("./data"),
                                         destination_config("./data/sub"))
