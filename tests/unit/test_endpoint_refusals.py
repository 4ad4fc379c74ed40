"""Endpoints and keys refused before any request (exit 2, one line): hosts that only look
like Azure's, an account key that is not base64, an S3 endpoint that is not a URL; and
settings whose repr shows no secret."""

from __future__ import annotations

import pytest

from lakeshift import StoreOptions, UsageError, parse_url
from lakeshift.stores.azure import auth as azure_auth
from lakeshift.stores.s3 import auth as aws_auth

KEY = "a2V5a2V5a2V5"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_BLOB_ENDPOINT",
                 "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_KEY", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", KEY)


@pytest.mark.parametrize("host", ["acct.blob.core.windows.net.evil.example",
                                  "acct.blob.core.windows.nett", "acct.dfs.evil.example"])
def test_a_host_that_only_looks_like_azure_is_refused(host: str) -> None:
    with pytest.raises(UsageError, match="is not Azure's") as e:
        azure_auth.resolve(parse_url(f"https://{host}/cont/x"), StoreOptions())
    assert e.value.exit_code == 2


def test_lookalike_refused_with_a_connection_string_without_endpoint(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", f"AccountName=acct;AccountKey={KEY}")
    with pytest.raises(UsageError, match="is not Azure's"):
        azure_auth.resolve(parse_url("abfss://c1x@acct.dfs.core.windows.net.evil.example/x"),
                           StoreOptions())


@pytest.mark.parametrize(("host", "endpoint"), [
    ("acct.blob.core.windows.net", "https://acct.blob.core.windows.net"),
    ("acct.dfs.core.chinacloudapi.cn", "https://acct.blob.core.chinacloudapi.cn"),
    ("acct.blob.core.usgovcloudapi.net", "https://acct.blob.core.usgovcloudapi.net"),
])
def test_azure_public_china_and_government_hosts_are_accepted(host: str, endpoint: str) -> None:
    s = azure_auth.resolve(parse_url(f"https://{host}/cont/x"), StoreOptions())
    assert s.blob_endpoint == endpoint


def test_an_explicit_endpoint_is_the_users_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", "https://private.example.internal/acct")
    s = azure_auth.resolve(parse_url("https://acct.blob.core.windows.net/cont/y"),
                           StoreOptions())
    assert s.blob_endpoint == "https://private.example.internal/acct"
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", "https://acct.blob.stack.example")
    s = azure_auth.resolve(parse_url("https://acct.dfs.stack.example/cont/y"), StoreOptions())
    assert s.blob_endpoint == "https://acct.blob.stack.example"
    monkeypatch.delenv("AZURE_STORAGE_BLOB_ENDPOINT")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"AccountName=acct;AccountKey={KEY};EndpointSuffix=azurestack.example")
    s = azure_auth.resolve(parse_url("az://cont/x"), StoreOptions())
    assert s.blob_endpoint == "https://acct.blob.azurestack.example"


@pytest.mark.parametrize("key", ["not base64!", "abc", "a2V5a2V5a2V5=x"])
def test_an_account_key_that_is_not_base64_is_refused(key: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", key)
    with pytest.raises(UsageError, match="not an account key") as e:
        azure_auth.resolve(parse_url("https://acct.blob.core.windows.net/cont/x"),
                           StoreOptions())
    assert key not in str(e.value)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", f"AccountName=acct;AccountKey={key}")
    with pytest.raises(UsageError, match="AccountKey in AZURE_STORAGE_CONNECTION_STRING"):
        azure_auth.resolve(parse_url("az://cont/x"), StoreOptions())


@pytest.mark.parametrize("endpoint", ["not-a-url", "ftp://host", "http://", "https://h:port"])
def test_an_s3_endpoint_that_is_not_a_url_is_refused(endpoint: str) -> None:
    with pytest.raises(UsageError, match="is not a URL") as e:
        aws_auth.resolve(StoreOptions(s3_endpoint=endpoint, s3_anonymous=True))
    assert e.value.exit_code == 2 and "--s3-endpoint" in str(e.value)


def test_settings_reprs_hold_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    s = azure_auth.resolve(parse_url("https://acct.blob.core.windows.net/cont/x"),
                           StoreOptions())
    assert KEY not in repr(s)
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_KEY")
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2024&sig=SIGSECRET")
    s = azure_auth.resolve(parse_url("https://acct.blob.core.windows.net/cont/x"),
                           StoreOptions())
    assert "SIGSECRET" not in repr(s)


@pytest.mark.parametrize("setting", [
    ("AZURE_STORAGE_BLOB_ENDPOINT", "http://127.0.0.1:10000/acct"),
    ("AZURE_STORAGE_CONNECTION_STRING",
     f"AccountName=acct;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000/acct"),
    ("AZURE_STORAGE_CONNECTION_STRING",
     f"AccountName=acct;AccountKey={KEY};EndpointSuffix=stack.example"),
])
def test_a_lookalike_host_is_refused_whatever_endpoint_is_set(
        monkeypatch: pytest.MonkeyPatch, setting: tuple[str, str]) -> None:
    # The set endpoint used to win and the URL's host was dropped: the look-alike was
    # accepted, written to the endpoint and labelled az://acct/cont/.
    monkeypatch.setenv(*setting)
    with pytest.raises(UsageError, match=r"acct\.blob\.core\.windows\.net\.evil\.example") as e:
        azure_auth.resolve(parse_url("https://acct.blob.core.windows.net.evil.example/cont/"),
                           StoreOptions())
    assert e.value.exit_code == 2 and "is neither Azure's" in str(e.value)


def test_a_plain_http_dfs_endpoint_to_another_host_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The DFS endpoint gets the same transport rule as the blob endpoint: a bearer token or
    a signed request never goes over plain HTTP to a host that is not loopback unasked."""
    import asyncio

    from lakeshift.stores.base import PathAccess, StoreConfig
    from lakeshift.stores.registry import open_store

    monkeypatch.setenv("AZURE_STORAGE_DFS_ENDPOINT", "http://dfs.example.internal")
    store = open_store(StoreConfig(parse_url("https://acct.blob.core.windows.net/cont/")))
    with pytest.raises(UsageError, match="plain HTTP") as e:
        asyncio.run(store.set_access("x", PathAccess(owner="$superuser")))
    assert e.value.exit_code == 2


def test_a_path_style_url_names_the_blob_endpoint_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """``https://HOST:PORT/ACCOUNT/C/`` with AZURE_STORAGE_BLOB_ENDPOINT at that host and
    account: that endpoint; another port or account, or no endpoint set: one line, exit 2."""
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", "http://127.0.0.1:10000/acct/")
    s = azure_auth.resolve(parse_url("https://127.0.0.1:10000/acct/cont/x"), StoreOptions())
    assert (s.account, s.blob_endpoint) == ("acct", "http://127.0.0.1:10000/acct")
    with pytest.raises(UsageError, match=r"host '127\.0\.0\.1:10001' of "
                       r"https://127\.0\.0\.1:10001/acct/cont/x is neither Azure's \(.*\) nor "
                       "the host of AZURE_STORAGE_BLOB_ENDPOINT") as e:
        azure_auth.resolve(parse_url("https://127.0.0.1:10001/acct/cont/x"), StoreOptions())
    assert e.value.exit_code == 2
    with pytest.raises(UsageError, match="names account 'other' but "
                       r"AZURE_STORAGE_BLOB_ENDPOINT \(http://127.0.0.1:10000/acct\) is for "
                       "account 'acct'"):
        azure_auth.resolve(parse_url("https://127.0.0.1:10000/other/cont/x"), StoreOptions())
    monkeypatch.setenv("AZURE_STORAGE_BLOB_ENDPOINT", "https://private.example")
    with pytest.raises(UsageError, match="names no account in its path"):
        azure_auth.resolve(parse_url("https://private.example/acct/cont/x"), StoreOptions())
    monkeypatch.delenv("AZURE_STORAGE_BLOB_ENDPOINT")
    with pytest.raises(UsageError, match="is not Azure's and no endpoint is set"):
        azure_auth.resolve(parse_url("https://127.0.0.1:10000/acct/cont/x"), StoreOptions())
