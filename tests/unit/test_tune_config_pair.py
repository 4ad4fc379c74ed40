"""``tune --config``: SRC and DST must be the config's job's source and destination (or
folders of them), compared as the places they name, not as written: ``az://fs/raw`` and
``abfss://fs@acct.dfs.core.windows.net/raw`` of that account, a trailing slash, a relative
path and its file:// URL are each one place; another account is another place."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from lakeshift.errors import UsageError
from lakeshift.plan.places import url_within
from lakeshift.stores.base import StoreOptions

OPTS = StoreOptions()


def within(a: str, b: str) -> bool:
    return url_within(a, OPTS, b, OPTS)


@pytest.fixture
def acct_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials of account ``acct`` (the key itself is never used: no server is asked)."""
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_BLOB_ENDPOINT",
                 "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_ID", "AZURE_STORAGE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "acct")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", base64.b64encode(b"k" * 64).decode())


def test_azure_spellings_of_one_account_are_one_place(acct_key: None) -> None:
    gen2 = "abfss://lake@acct.dfs.core.windows.net/raw"
    for a, b in (("az://lake/raw", gen2), (gen2 + "/", "az://lake/raw/"),
                 ("az://lake/raw/2024", gen2), ("https://acct.blob.core.windows.net/lake/raw/x",
                                                "az://lake/raw"),
                 ("https://acct.dfs.core.windows.net/lake/raw", gen2), ("az://lake/raw", "az://lake/")):
        assert within(a, b), (a, b)
    for a, b in (("az://lake/raw", "abfss://lake@other.dfs.core.windows.net/raw"),
                 ("abfss://lake@other.dfs.core.windows.net/raw", "az://lake/raw"),
                 ("az://lake/raw", "abfss://sea@acct.dfs.core.windows.net/raw"),
                 ("az://lake/raw2", gen2), ("az://lake/", gen2),
                 ("abfss://lake@acct.dfs.core.chinacloudapi.cn/raw", gen2)):
        assert not within(a, b), (a, b)


def test_another_account_than_the_connection_strings_is_another_place(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
                       + base64.b64encode(b"k" * 64).decode())
    assert within("az://lake/raw", "abfss://lake@acct.dfs.core.windows.net/raw/")
    # The connection string refuses "other" for the store; here it is simply not the same.
    assert not within("az://lake/raw", "abfss://lake@other.dfs.core.windows.net/raw")
    assert not within("abfss://lake@other.dfs.core.windows.net/raw", "az://lake/raw")


def test_s3_and_local_spellings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert within("s3://lake/p", "s3://lake/p/") and within("s3://lake/p/", "s3://lake/p")
    assert within("s3://lake/p/q", "s3://lake/p/") and within("s3://lake/p", "s3://lake")
    assert not within("s3://lake/p2", "s3://lake/p") and not within("s3://sea/p", "s3://lake/p")
    (tmp_path / "real" / "in").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    for a, b in (("real/in", f"file://{tmp_path}/real"), (f"{tmp_path}/real/", "real"),
                 ("link/in", str(tmp_path / "real")), ("./real", "file://" + str(tmp_path))):
        assert within(a, b), (a, b)
    assert not within("real", "real/in") and not within("s3://lake/real", "real")
    assert not within(f"{tmp_path}/realm", "real")


def test_a_url_that_does_not_parse_is_not_within(acct_key: Any) -> None:
    assert not within("s3://Lake/p", "s3://lake/p") and not within("az://lake/raw", "nope://x")


def test_one_bucket_name_at_two_s3_endpoints_is_two_places(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket's name is only unique at its endpoint: the config's MinIO bucket ``lake``
    is not the ``lake`` of another S3 service tune was pointed at."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    minio = StoreOptions(s3_endpoint="http://127.0.0.1:9000")
    other = StoreOptions(s3_endpoint="http://127.0.0.1:9001")
    assert not url_within("s3://lake/p", other, "s3://lake/p", minio)
    assert not url_within("s3://lake/p", OPTS, "s3://lake/p", minio)
    assert url_within("s3://lake/p/q", StoreOptions(s3_endpoint="http://127.0.0.1:9000/"),
                       "s3://lake/p", minio)
    # The environment's endpoint is the one a URL without --s3-endpoint goes to.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert url_within("s3://lake/p", OPTS, "s3://lake/p", minio)
    assert not url_within("s3://lake/p", OPTS, "s3://lake/p", other)


def test_the_trials_reach_the_stores_as_the_config_says_unless_a_flag_is_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``tune --config``: the trials' store options are the config's [source] and
    [destination] settings (they used to be the command line's alone: another endpoint,
    other credentials); each one the caller gives wins, as for ``run``."""
    import lakeshift
    from lakeshift.engine import tune as engine_tune
    from lakeshift.stores.base import StoreConfig

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text('[job]\nname = "raw"\n\n[source]\nurls = ["s3://lake/raw/"]\n'
                   's3_endpoint = "http://127.0.0.1:9000"\naws_profile = "lake"\n'
                   's3_region = "eu-west-1"\n\n[destination]\nurl = "' + str(tmp_path / "dst")
                   + '"\nazure_auth = "key"\nallow_http = true\n')
    tried: list[tuple[StoreConfig, StoreConfig]] = []

    class Stop(Exception):
        pass

    async def trials(source: StoreConfig, destination: StoreConfig, *args: Any) -> Any:
        tried.append((source, destination))
        raise Stop

    monkeypatch.setattr(engine_tune, "tune_async", trials)
    from_file = StoreOptions(s3_endpoint="http://127.0.0.1:9000", aws_profile="lake",
                             s3_region="eu-west-1", azure_auth="key", allow_http=True)
    for given, want in (
            (None, from_file), (StoreOptions(), from_file),
            (StoreOptions(aws_profile="mine", s3_endpoint="http://127.0.0.1:9000/"),
             StoreOptions(s3_endpoint="http://127.0.0.1:9000/", aws_profile="mine",
                          s3_region="eu-west-1", azure_auth="key", allow_http=True))):
        with pytest.raises(Stop):
            lakeshift.tune("s3://lake/raw/x", str(tmp_path / "dst"), config=cfg,
                           store_options=given)
        assert (tried[-1][0].options, tried[-1][1].options) == (want, want), given
    # A flag naming another endpoint than the config's names another bucket: refused.
    with pytest.raises(UsageError, match="leave out --config"):
        lakeshift.tune("s3://lake/raw/", str(tmp_path / "dst"), config=cfg,
                       store_options=StoreOptions(s3_endpoint="http://127.0.0.1:9001"))
    assert len(tried) == 3


def test_a_store_flag_given_at_its_default_against_the_config_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``tune --config`` lets a store flag given win over the file's value, but the API
    cannot tell ``--azure-auth auto`` (the default) from no flag: the trials used the
    file's azure_auth = "cli" instead, silently.  Refused with one line (the flag, or the
    environment variable that set it); the same file without the flag is tuned."""
    from lakeshift.cli.app import run
    from lakeshift.engine import tune as engine_tune

    cfg = tmp_path / "lakeshift.toml"
    cfg.write_text(f'[job]\nname = "raw"\n\n[source]\nurls = ["{tmp_path / "src"}"]\n\n'
                   f'[destination]\nurl = "{tmp_path / "dst"}"\nazure_auth = "cli"\n')
    (tmp_path / "src").mkdir()
    monkeypatch.delenv("LAKESHIFT_AZURE_AUTH", raising=False)
    tried: list[Any] = []

    async def trials(source: Any, destination: Any, *args: Any) -> Any:
        tried.append(destination.options.azure_auth)
        raise UsageError("stopped here")

    monkeypatch.setattr(engine_tune, "tune_async", trials)
    args = ["tune", str(tmp_path / "src"), str(tmp_path / "dst"), "--config", str(cfg)]
    assert run([*args, "--azure-auth", "auto"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--azure-auth 'auto' is the default" in err and "azure_auth = 'cli'" in err, err
    assert len(err.splitlines()) == 1 and tried == []
    monkeypatch.setenv("LAKESHIFT_AZURE_AUTH", "auto")
    assert run(args) == 2
    assert "LAKESHIFT_AZURE_AUTH='auto' in the environment" in capsys.readouterr().err
    monkeypatch.delenv("LAKESHIFT_AZURE_AUTH")
    assert run(args) == 2 and tried == ["cli"]  # (the trials, as the file says)
    assert run([*args, "--azure-auth", "cli"]) == 2 and tried == ["cli", "cli"]
    assert run([*args, "--azure-auth", "key"]) == 2 and tried == ["cli", "cli", "key"]


def test_a_refusal_for_another_server_names_the_two_servers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, acct_key: None) -> None:
    """The config's URLs given, but ``--s3-endpoint`` (or the credentials' account) names
    another server: the line said "job.toml copies X → Y, not X → Y"; it names the two
    endpoints (accounts) instead.  Another path is still named by its URLs."""
    import lakeshift
    from lakeshift.plan.places import store_difference

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "job.toml"
    cfg.write_text('[job]\nname = "raw"\n\n[source]\nurls = ["s3://bkt/raw/"]\n'
                   's3_endpoint = "http://127.0.0.1:9000"\n\n[destination]\n'
                   'url = "az://lake/out"\n')
    with pytest.raises(UsageError) as e:
        lakeshift.tune("s3://bkt/raw/", "az://lake/out", config=cfg,
                       store_options=StoreOptions(s3_endpoint="http://127.0.0.1:1"))
    msg = str(e.value)
    assert ", not s3://" not in msg, msg
    assert "source at the S3 endpoint http://127.0.0.1:9000" in msg, msg
    assert "would be at the S3 endpoint http://127.0.0.1:1" in msg, msg
    assert "destination" not in msg.split(":")[0], msg  # the destination is the file's
    with pytest.raises(UsageError, match=r"az://lake/out, not s3://bkt/raw/ → az://lake/x"):
        lakeshift.tune("s3://bkt/raw/", "az://lake/x", config=cfg,
                       store_options=StoreOptions(s3_endpoint="http://127.0.0.1:1"))
    # A URL that cannot name a place is refused as itself, not as "copies X, not X".
    with pytest.raises(UsageError, match="invalid container/filesystem name 'c'"):
        lakeshift.tune("s3://bkt/raw/", "az://c/out", config=cfg)
    # Azure: one container name at two accounts.
    here, there = store_difference("abfss://lake@other.dfs.core.windows.net/out", OPTS,
                                   "az://lake/out", OPTS) or ("", "")
    assert "account other" in here and "account acct" in there, (here, there)
    assert store_difference("az://lake/out", OPTS, "az://lake/out", OPTS) is None
    assert store_difference("az://lake/out", OPTS, "az://sea/out", OPTS) is None
    assert store_difference("s3://bkt/raw", OPTS, "s3://bkt/other", OPTS) is None


def test_a_server_difference_names_both_servers_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """An account the credentials do not resolve (the connection string is another's) was
    named "at core.windows.net" — a host suffix — beside the other side's endpoint URL; it
    is named by the endpoint its URL names, spelled as a resolved one is."""
    from lakeshift.plan.places import store_difference

    for name in ("AZURE_STORAGE_BLOB_ENDPOINT", "AZURE_STORAGE_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    here, there = store_difference("abfss://lake@other.dfs.core.windows.net/out", OPTS,
                                   "az://lake/out", OPTS) or ("", "")
    assert here == "the Azure account other at https://other.blob.core.windows.net", here
    assert there == ("the Azure account devstoreaccount1 at "
                     "http://127.0.0.1:10000/devstoreaccount1"), there
