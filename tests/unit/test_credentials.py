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


AWS_CASES: list[dict[str, str]] = [
    {"AWS_ACCESS_KEY_ID": "AKID1", "AWS_SECRET_ACCESS_KEY": "s1"},
    {"AWS_ACCESS_KEY_ID": "AKID2", "AWS_SECRET_ACCESS_KEY": "s2", "AWS_SESSION_TOKEN": "t2"},
    {"AWS_ACCESS_KEY_ID": "AKID3", "AWS_SECRET_ACCESS_KEY": "s3", "AWS_SECURITY_TOKEN": "old",
     "AWS_SESSION_TOKEN": "new"},
    {"AWS_ACCESS_KEY_ID": "AKID4", "AWS_SECRET_ACCESS_KEY": "s4", "AWS_SECURITY_TOKEN": "",
     "AWS_SESSION_TOKEN": "t4"},
    {"AWS_ACCESS_KEY_ID": "AKID5", "AWS_SECRET_ACCESS_KEY": "s5",
     "AWS_CREDENTIAL_EXPIRATION": "2099-01-01T00:00:00Z"},
]


@pytest.mark.parametrize("env", AWS_CASES)
@pytest.mark.parametrize("region", ["eu-west-1", ""])
def test_environment_credentials_are_botocores(env: dict[str, str], region: str,
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """Read without botocore where they can be, the same credentials and region as
    botocore's chain gives (with a config file that names other keys and a region)."""
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-south-1\naws_access_key_id = FROMFILE\n"
                      "aws_secret_access_key = file-secret\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION",
              "AWS_DEFAULT_REGION", "AWS_CREDENTIAL_EXPIRATION"):
        monkeypatch.delenv(k, raising=False)
    for k, v in (env | ({"AWS_REGION": region} if region else {})).items():
        monkeypatch.setenv(k, v)
    ours = aws_auth.resolve(StoreOptions())
    theirs = aws_auth._resolve_with_botocore(StoreOptions())
    mine, boto = ours.credentials.get_frozen_credentials(), \
        theirs.credentials.get_frozen_credentials()
    assert (mine.access_key, mine.secret_key, mine.token, ours.region) == \
        (boto.access_key, boto.secret_key, boto.token, theirs.region)
    fast = region != "" and "AWS_CREDENTIAL_EXPIRATION" not in env
    assert (ours.session is None) == fast


def test_a_profile_is_never_read_past(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--aws-profile or AWS_PROFILE: botocore decides (an explicit profile takes the
    environment's keys out of its chain; a missing one is a UsageError)."""
    config = tmp_path / "config"
    config.write_text("[profile p]\naws_access_key_id = PROFILEKEY\n"
                      "aws_secret_access_key = profile-secret\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    s = aws_auth.resolve(StoreOptions(aws_profile="p"))
    assert s.credentials.get_frozen_credentials().access_key == "PROFILEKEY"
    monkeypatch.setenv("AWS_PROFILE", "missing")
    with pytest.raises(UsageError, match="not found"):
        aws_auth.resolve(StoreOptions())


def test_environment_credentials_do_not_import_botocore() -> None:
    import os
    import subprocess
    import sys

    code = ("import sys; from lakeshift.stores.base import StoreOptions; "
            "from lakeshift.stores.s3.auth import resolve; "
            "s = resolve(StoreOptions()); "
            "print(s.credentials.get_frozen_credentials().access_key, "
            "any(m.startswith('botocore') for m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": "AKIDX", "AWS_SECRET_ACCESS_KEY": "sx",
            "AWS_REGION": "us-east-1", "LAKESHIFT_NETGUARD": "off"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["AKIDX", "False"]
