"""Credential precedence and the one-line errors for missing credentials (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift import AuthError, StoreOptions, UsageError, parse_url
from lakeshift.redact import redact
from lakeshift.stores.azure import auth as azure_auth
from lakeshift.stores.s3 import auth as aws_auth

CS = ("DefaultEndpointsProtocol=http;AccountName=acct1;AccountKey=a2V5a2V5a2V5;"
      "BlobEndpoint=http://127.0.0.1:1/acct1;")


def test_connection_string_wins_and_gives_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", CS)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "b3RoZXJrZXk=")
    s = azure_auth.resolve(parse_url("az://cont/x"), StoreOptions())
    assert (s.account, s.kind, s.key, s.blob_endpoint) == ("acct1", "key", "a2V5a2V5a2V5",
                                                           "http://127.0.0.1:1/acct1")
    assert "a2V5a2V5a2V5" not in redact(f"oops {s.key}")


def test_account_in_url_must_match_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", CS)
    with pytest.raises(UsageError, match="names account 'other'"):
        azure_auth.resolve(parse_url("abfss://lake@other.dfs.core.windows.net/x"), StoreOptions())


def test_key_then_sas_then_service_principal(monkeypatch: pytest.MonkeyPatch) -> None:
    url = parse_url("abfss://lake@acct2.dfs.core.windows.net/x")
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "?sv=2024&sig=abc")
    monkeypatch.setenv("AZURE_CLIENT_ID", "id")
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cret-value")
    s = azure_auth.resolve(url, StoreOptions())
    assert (s.kind, s.sas, s.blob_endpoint) == ("sas", "sv=2024&sig=abc",
                                                "https://acct2.blob.core.windows.net")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "a2V5")
    assert azure_auth.resolve(url, StoreOptions()).kind == "key"
    assert azure_auth.resolve(url, StoreOptions(azure_auth="service-principal")).kind == "token"
    assert azure_auth.resolve(url, StoreOptions(azure_auth="cli")).token_source == "cli"


def test_no_azure_credentials_names_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthError, match="AZURE_STORAGE_CONNECTION_STRING"):
        azure_auth.resolve(parse_url("abfss://lake@acct.dfs.core.windows.net/"), StoreOptions())
    with pytest.raises(UsageError, match="--azure-auth"):
        azure_auth.resolve(parse_url("az://cont/"), StoreOptions(azure_auth="magic"))


def test_malformed_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "garbage-without-pairs")
    with pytest.raises(UsageError, match="malformed"):
        azure_auth.resolve(parse_url("az://cont/"), StoreOptions())


def test_aws_env_keys_and_no_instance_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthError, match="AWS_ACCESS_KEY_ID"):
        aws_auth.resolve(StoreOptions())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-secret")
    s = aws_auth.resolve(StoreOptions(s3_endpoint="http://127.0.0.1:9"))
    assert s.credentials.get_frozen_credentials().access_key == "AKIDEXAMPLE"
    assert s.endpoint == "http://127.0.0.1:9" and s.region == "us-east-1"
    assert "wJalrXUtnFEMI-secret" not in redact("secret is wJalrXUtnFEMI-secret")


def test_aws_profile_from_shared_credentials_file(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[migr]\naws_access_key_id = AKIDPROFILE\n"
                     "aws_secret_access_key = profile-secret\n")
    config = tmp_path / "config"
    config.write_text("[profile migr]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    s = aws_auth.resolve(StoreOptions(aws_profile="migr"))
    assert s.credentials.get_frozen_credentials().access_key == "AKIDPROFILE"
    assert s.region == "eu-west-1"
    with pytest.raises(UsageError, match="profile 'nope' not found"):
        aws_auth.resolve(StoreOptions(aws_profile="nope"))
