from __future__ import annotations

import pytest

from lakeshift import UsageError, parse_url


def test_s3_url() -> None:
    u = parse_url("s3://my-bucket/raw/2024/")
    assert (u.scheme, u.bucket, u.path) == ("s3", "my-bucket", "raw/2024/")


def test_abfss_url_names_account_and_filesystem() -> None:
    u = parse_url("abfss://lake@myacct.dfs.core.windows.net/raw/x")
    assert (u.scheme, u.bucket, u.path, u.account, u.gen2) == ("azure", "lake", "raw/x",
                                                               "myacct", True)
    assert u.endpoint_suffix == "core.windows.net"


def test_https_blob_url() -> None:
    u = parse_url("https://myacct.blob.core.windows.net/landing/a%20b/c")
    assert (u.bucket, u.path, u.account, u.gen2) == ("landing", "a b/c", "myacct", False)


def test_az_url_and_local_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert parse_url("az://cont/p").account is None
    assert parse_url(str(tmp_path)).bucket == str(tmp_path)
    assert parse_url(f"file://{tmp_path}").bucket == str(tmp_path)


@pytest.mark.parametrize("bad,needle", [
    ("gs://bucket/x", "unknown URL scheme"),
    ("s3://B/x", "invalid S3 bucket"),
    ("az://x/y", "invalid container"),
    ("abfss://myacct.dfs.core.windows.net/x", "expected abfss://"),
    ("https://example.com/c/x", "invalid Azure host"),
    ("https://acct.blob.core.windows.net/c/x?sv=1&sig=SECRET", "query string"),
    ("", "empty URL"),
])
def test_bad_urls_say_what_is_wrong(bad: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle) as e:
        parse_url(bad)
    assert "SECRET" not in str(e.value)


@pytest.mark.parametrize("text", ["https://127.0.0.1:10000/devstoreaccount1/cont/a/b.csv",
                                  "http://localhost:10000/devstoreaccount1/cont/a/",
                                  "https://azurite/acct1/cont/"])
def test_a_path_style_azure_url_names_its_account_in_the_path(text: str) -> None:
    """An emulator's (or Azure Stack's) form: the host the endpoint set names, the account
    first in the path; shown as written, so that pasted back it is the same place."""
    u = parse_url(text)
    host, account, container, path = text.split("://", 1)[1].split("/", 3)
    assert (u.scheme, u.host, u.account, u.bucket, u.path) == ("azure", host, account,
                                                               container, path)
    assert u.display() == text and parse_url(u.display()) == u


@pytest.mark.parametrize("bad,needle", [
    ("https://127.0.0.1:10000/c/x", "invalid Azure host '127.0.0.1:10000'"),
    ("https://user:pw@127.0.0.1:10000/acct1/c/x", "names a user or password"),
    ("https://127.0.0.1:10000/acct1/C/x", "invalid container"),
    ("http://acct.blob.core.windows.net/c/x", "HTTPS only: use https://acct.blob"),
])
def test_bad_path_style_urls_say_what_is_wrong(bad: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle) as e:
        parse_url(bad)
    assert "pw" not in str(e.value)
