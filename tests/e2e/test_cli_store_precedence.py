"""Which store settings a saved job's `sync --job J` and `run --job J` use, as a user sees it:
a store flag typed for the pass > the job's saved value > LAKESHIFT_AZURE_AUTH /
LAKESHIFT_S3_REQUEST_PAYER in the environment > the default (the rule `run --s3-endpoint`
follows).  A flag typed at its default value (`--azure-auth auto`) counts, for that pass
only; the summary and --json say which value was used and where it came from.

Azure auth is seen by its effect on Azurite: `--azure-auth key` works only while
AZURE_STORAGE_KEY (with the account and endpoint) is set, `auto` and `connection-string`
with AZURE_STORAGE_CONNECTION_STRING (cli_env's).  The request payer is seen on the wire: the
job reaches moto through a loopback proxy that records each request's headers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests import servers
from tests.e2e.cli import lakeshift
from tests.faultproxy import FaultProxy
from tests.helpers import next_second


def _json(p: Any, code: int = 0) -> dict[str, Any]:
    assert p.returncode == code, p.stdout + p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


def _account_env(cli_env: dict[str, str]) -> dict[str, str]:
    """cli_env with the account and its endpoint set too: all --azure-auth key lacks is the
    key (auto and connection-string use cli_env's connection string)."""
    endpoint = re.search(r"BlobEndpoint=([^;]+)", cli_env["AZURE_STORAGE_CONNECTION_STRING"])
    assert endpoint is not None
    return dict(cli_env, AZURE_STORAGE_ACCOUNT=servers.AZURITE_ACCOUNT,
                AZURE_STORAGE_BLOB_ENDPOINT=endpoint.group(1))


def _key_env(cli_env: dict[str, str]) -> dict[str, str]:
    """What --azure-auth key needs: the account, its endpoint and its key."""
    return dict(_account_env(cli_env), AZURE_STORAGE_KEY=servers.AZURITE_KEY)


def _source(tmp_path: Path, *names: str) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for name in names:
        (src / name).write_bytes(name.encode())
    next_second()  # a pass's window ends on a whole second: these are before it
    return src


def test_the_jobs_azure_auth_beats_the_environments_on_sync_and_run(
        cli_env: dict[str, str], container: str, tmp_path: Path) -> None:
    """LAKESHIFT_AZURE_AUTH=key set in the shell replaced a job's saved
    `--azure-auth connection-string` on `sync --job` (typer reads the variable as if the
    flag were typed): with no account key set, the pass failed (exit 3)."""
    src = _source(tmp_path, "a.txt")
    db = f"sqlite:///{tmp_path}/jobs.db"
    s = _json(lakeshift("sync", str(src), f"az://{container}/s/", "--job", "s", "--db", db,
                        "--azure-auth", "connection-string", "--lag", "0", "--json",
                        env=cli_env))
    assert (s["copied"], s["azure_auth"], s["azure_auth_from"]) == \
        (1, "connection-string", "job"), s
    assert lakeshift("plan", str(src), f"az://{container}/r/", "--job", "r", "--db", db,
                     "--azure-auth", "connection-string", env=cli_env).returncode == 0
    shell = dict(_account_env(cli_env), LAKESHIFT_AZURE_AUTH="key")
    _source(tmp_path, "b.txt")
    s = _json(lakeshift("sync", "--job", "s", "--db", db, "--lag", "0", "--json", env=shell))
    assert (s["copied"], s["azure_auth"], s["azure_auth_from"]) == \
        (1, "connection-string", "job"), s
    p = lakeshift("sync", "--job", "s", "--db", db, "--lag", "0", env=shell)
    assert p.returncode == 0, p.stdout + p.stderr
    assert ("  Azure auth: connection-string (the job's; LAKESHIFT_AZURE_AUTH='key' in the "
            "environment is not used: a job's own wins over it, --azure-auth changes it for "
            "one pass)") in p.stdout.splitlines(), p.stdout
    s = _json(lakeshift("run", "--job", "r", "--db", db, "--json", env=shell))
    assert (s["copied"], s["azure_auth"], s["azure_auth_from"]) == \
        (2, "connection-string", "job"), s


def test_the_environments_azure_auth_applies_where_the_job_has_the_default(
        cli_env: dict[str, str], container: str, tmp_path: Path) -> None:
    """A job saved with the default (auto) takes LAKESHIFT_AZURE_AUTH, on sync as on run
    (run read no such variable); a refusal names the variable, which the user typed as no
    flag."""
    src = _source(tmp_path, "a.txt")
    db = f"sqlite:///{tmp_path}/jobs.db"
    for job in ("s", "r"):
        assert lakeshift("plan", str(src), f"az://{container}/{job}/", "--job", job, "--db",
                         db, env=cli_env).returncode == 0
    shell = dict(_account_env(cli_env), LAKESHIFT_AZURE_AUTH="key")  # no key: key fails
    for command in (("sync", "--job", "s", "--lag", "0"), ("run", "--job", "r")):
        p = lakeshift(*command, "--db", db, env=shell)
        assert p.returncode == 3, p.stdout + p.stderr
        assert "--azure-auth key" in p.stderr, p.stderr
        assert "(LAKESHIFT_AZURE_AUTH='key' in the environment set --azure-auth)" in \
            p.stderr, p.stderr
    keyed = dict(_key_env(cli_env), LAKESHIFT_AZURE_AUTH="key")
    s = _json(lakeshift("run", "--job", "r", "--db", db, "--json", env=keyed))
    assert (s["copied"], s["azure_auth"], s["azure_auth_from"]) == \
        (1, "key", "LAKESHIFT_AZURE_AUTH"), s
    p = lakeshift("sync", "--job", "s", "--db", db, "--lag", "0", env=keyed)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "  Azure auth: key (LAKESHIFT_AZURE_AUTH; the job's is the default, auto)" in \
        p.stdout.splitlines(), p.stdout


def test_a_store_flag_typed_at_its_default_replaces_the_jobs_for_that_pass_only(
        cli_env: dict[str, str], container: str, tmp_path: Path) -> None:
    """`sync --job J --azure-auth auto` over a job saved with `--azure-auth key`: auto is the
    default, so the flag could not be told from none and the job's key was used.  A flag
    typed counts: auto for this pass; the job keeps key (the next pass without it uses
    key again)."""
    src = _source(tmp_path, "a.txt")
    db = f"sqlite:///{tmp_path}/jobs.db"
    job = ("--job", "k", "--db", db, "--lag", "0")
    s = _json(lakeshift("sync", str(src), f"az://{container}/k/", *job, "--azure-auth", "key",
                        "--json", env=_key_env(cli_env)))
    assert (s["copied"], s["azure_auth"], s["azure_auth_from"]) == (1, "key", "job"), s
    _source(tmp_path, "b.txt")
    # No key from here on (the connection string only): the job's key mode cannot work.
    bare = _account_env(cli_env)
    p = lakeshift("sync", *job, env=bare)
    assert p.returncode == 3 and "--azure-auth key" in p.stderr, p.stdout + p.stderr
    s = _json(lakeshift("sync", *job, "--azure-auth", "auto", "--json", env=bare))
    assert (s["copied"], s["azure_auth"], s["azure_auth_from"]) == \
        (1, "auto", "--azure-auth"), s
    p = lakeshift("sync", *job, "--azure-auth", "auto", env=bare)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "  Azure auth: auto (--azure-auth, for this pass; the job's: key)" in \
        p.stdout.splitlines(), p.stdout
    # Typed, it beats the environment too.
    s = _json(lakeshift("sync", *job, "--azure-auth", "auto", "--json",
                        env=dict(bare, LAKESHIFT_AZURE_AUTH="key")))
    assert (s["azure_auth"], s["azure_auth_from"]) == ("auto", "--azure-auth"), s
    p = lakeshift("sync", *job, env=bare)
    assert p.returncode == 3 and "--azure-auth key" in p.stderr, p.stdout + p.stderr


def test_the_request_payer_of_the_environment_is_sent_where_the_job_has_none(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    """`run` read no LAKESHIFT_S3_REQUEST_PAYER: a job planned without the flag sent no
    x-amz-request-payer header whatever the shell said.  Now the environment's applies where
    the job has none (as on sync); a job's own beats a value the environment has wrong."""
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    proxy = FaultProxy(cli_env["AWS_ENDPOINT_URL"])
    try:
        db = f"sqlite:///{tmp_path}/jobs.db"
        at = ("--s3-endpoint", proxy.url)
        for job, payer in (("plain", ()), ("payer", ("--s3-request-payer", "requester"))):
            p = lakeshift("plan", f"s3://{bucket}/", str(tmp_path / job), "--job", job,
                          "--db", db, *at, *payer, env=cli_env)
            assert p.returncode == 0, p.stdout + p.stderr
        proxy.seen.clear()
        s = _json(lakeshift("run", "--job", "plain", "--db", db, "--json",
                            env=dict(cli_env, LAKESHIFT_S3_REQUEST_PAYER="requester")))
        assert (s["copied"], s["s3_request_payer"], s["s3_request_payer_from"]) == \
            (1, "requester", "LAKESHIFT_S3_REQUEST_PAYER"), s
        assert proxy.seen and all("x-amz-request-payer" in headers
                                  for _, _, headers in proxy.seen), proxy.seen
        # The job's own ("requester") beats the environment's ("owner", which S3 does not
        # take: it was used and refused, exit 2).
        proxy.seen.clear()
        wrong = dict(cli_env, LAKESHIFT_S3_REQUEST_PAYER="owner")
        p = lakeshift("sync", "--job", "payer", "--db", db, "--lag", "0", env=wrong)
        assert p.returncode == 0, p.stdout + p.stderr
        assert ("  S3 request payer: requester (the job's; LAKESHIFT_S3_REQUEST_PAYER='owner' "
                "in the environment is not used: a job's own wins over it, "
                "--s3-request-payer changes it for one pass)") in p.stdout.splitlines(), \
            p.stdout
        assert proxy.seen and all("x-amz-request-payer" in headers
                                  for _, _, headers in proxy.seen), proxy.seen
    finally:
        proxy.stop()
