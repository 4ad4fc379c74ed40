"""Which S3 endpoint a job's run uses, as a user sees it: `plan --s3-endpoint` is kept with
the job and wins over AWS_ENDPOINT_URL; `run --s3-endpoint` (and `sync --job J
--s3-endpoint`) wins over the job's for that run; the summary says which was used.

Two loopback endpoints reach the same moto: a counting proxy (the job's) and moto itself
(the environment's, and the one given for a run), so the proxy's request count shows which
endpoint a command really used."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lakeshift as lakeshift_api
from tests.e2e.cli import lakeshift
from tests.faultproxy import FaultProxy


def _json(p: Any) -> dict[str, Any]:
    assert p.returncode == 0, p.stdout + p.stderr
    out: dict[str, Any] = json.loads(p.stdout)
    return out


@contextmanager
def _job_planned_through_proxy(cli_env: dict[str, str], s3: Any, bucket: str,
                               tmp_path: Path, keys: tuple[str, ...]
                               ) -> Iterator[tuple[str, FaultProxy, str, Path, tuple[str, ...]]]:
    """``keys`` in ``bucket``, and job ``j`` planned with the counting proxy as its
    ``--s3-endpoint``: (moto's URL, the proxy, the DB URL, the destination, the job flags)."""
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    moto = cli_env["AWS_ENDPOINT_URL"]
    proxy = FaultProxy(moto)
    try:
        db, dst = f"sqlite:///{tmp_path}/jobs.db", tmp_path / "out"
        job = ("--job", "j", "--db", db)
        p = lakeshift("plan", f"s3://{bucket}/", str(dst), *job, "--s3-endpoint", proxy.url,
                      env=cli_env)
        assert p.returncode == 0, p.stdout + p.stderr
        yield moto, proxy, db, dst, job
    finally:
        proxy.stop()


def test_the_run_flag_beats_the_jobs_endpoint_which_beats_the_environments(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    with _job_planned_through_proxy(cli_env, s3, bucket, tmp_path, ("a.txt", "b.txt")
                                    ) as (moto, proxy, db, dst, job):
        # Given for the run: the job's endpoint is not asked anything.
        before = proxy.requests
        s = _json(lakeshift("run", *job, "--s3-endpoint", moto, "--json", env=cli_env))
        assert (s["copied"], s["s3_endpoint"], s["s3_endpoint_from"]) == \
            (2, moto, "--s3-endpoint"), s
        assert proxy.requests == before
        assert sorted(f.name for f in dst.iterdir()) == ["a.txt", "b.txt"]
        # The run's settings (the monitor's page) say it too.
        detail = lakeshift_api.run_detail(s["run_id"], db=db)
        assert detail is not None
        run_settings = detail.run.settings
        assert (run_settings["s3_endpoint"], run_settings["s3_endpoint_from"]) == \
            (moto, "--s3-endpoint"), run_settings
        # Not given: the job's, over AWS_ENDPOINT_URL (moto's, in the environment).
        assert lakeshift("plan", *job, "--replan", env=cli_env).returncode == 0
        p = lakeshift("run", *job, env=cli_env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"S3 endpoint: {proxy.url} (the job's, from plan --s3-endpoint)" in p.stdout, \
            p.stdout
        assert proxy.requests > before
        # sync --job J: the flag given applies to the pass too (it was ignored), and its
        # summary says so.
        before = proxy.requests
        p = lakeshift("sync", *job, "--s3-endpoint", moto, "--lag", "0s", env=cli_env)
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"S3 endpoint: {moto} (--s3-endpoint, for this run)" in p.stdout, p.stdout
        assert proxy.requests == before
        s = _json(lakeshift("sync", *job, "--lag", "0s", "--json", env=cli_env))
        assert (s["s3_endpoint"], s["s3_endpoint_from"]) == (proxy.url, "job"), s
        assert proxy.requests > before
        # A sync pass's run settings (the monitor's run page) say it as a run's do.
        detail = lakeshift_api.run_detail(s["run_id"], db=db)
        assert detail is not None
        run_settings = detail.run.settings
        assert (run_settings["mode"], run_settings["s3_endpoint"],
                run_settings["s3_endpoint_from"]) == ("sync", proxy.url, "job"), run_settings
        # A run with nothing to do says it too.
        s = _json(lakeshift("run", *job, "--json", env=cli_env))
        assert s["nothing_to_do"] and s["s3_endpoint_from"] == "job", s


def test_an_empty_run_flag_drops_the_jobs_endpoint_for_the_environments(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    with _job_planned_through_proxy(cli_env, s3, bucket, tmp_path, ("a.txt",)
                                    ) as (moto, proxy, _, _, job):
        before = proxy.requests
        s = _json(lakeshift("run", *job, "--s3-endpoint", "", "--json", env=cli_env))
        assert (s["copied"], s["s3_endpoint"], s["s3_endpoint_from"]) == \
            (1, moto, "AWS_ENDPOINT_URL"), s
        assert proxy.requests == before


def test_a_sync_that_makes_its_job_with_an_endpoint_says_it_is_the_jobs(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    """`sync SRC DST --job s --s3-endpoint URL` keeps URL with the job it makes; its
    summary said "--s3-endpoint, for this run", as if later passes would not use it.  The
    same flag repeated on later passes (a cron line) is the job's too; another is the
    pass's own."""
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    moto = cli_env["AWS_ENDPOINT_URL"]
    proxy = FaultProxy(moto)
    try:
        sync = ("sync", f"s3://{bucket}/", str(tmp_path / "out"), "--job", "s", "--db",
                f"sqlite:///{tmp_path}/jobs.db", "--lag", "0s", "--json")
        for _ in range(2):
            s = _json(lakeshift(*sync, "--s3-endpoint", proxy.url, env=cli_env))
            assert (s["s3_endpoint"], s["s3_endpoint_from"]) == (proxy.url, "job"), s
        s = _json(lakeshift(*sync, "--s3-endpoint", moto, env=cli_env))
        assert (s["s3_endpoint"], s["s3_endpoint_from"]) == (moto, "--s3-endpoint"), s
    finally:
        proxy.stop()


def test_run_s3_endpoint_on_a_job_with_no_s3_store_is_refused(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """The flag changed nothing there and was silently ignored (no summary line either):
    now one line, exit 2, nothing copied."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    job = ("--job", "l", "--db", f"sqlite:///{tmp_path}/jobs.db")
    assert lakeshift("plan", str(src), str(tmp_path / "out"), *job,
                     env=local_env).returncode == 0
    for endpoint in ("http://127.0.0.1:9", ""):
        p = lakeshift("run", *job, "--s3-endpoint", endpoint, env=local_env)
        assert p.returncode == 2, p.stdout + p.stderr
        assert p.stderr.strip() == ("lakeshift: --s3-endpoint: job 'l' has no S3 source or "
                                    "destination, so the flag would change nothing: leave "
                                    "it out"), p.stderr
    assert not (tmp_path / "out" / "a.txt").exists()
