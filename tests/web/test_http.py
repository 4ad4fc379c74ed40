"""The monitor's JSON API, Prometheus /metrics, errors and CLI refusals, over HTTP and the
command line (no browser)."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import servers
from tests.e2e.cli import lakeshift, one_clear_line
from tests.web.conftest import SCRIPT_KEY, TOKEN, FilledDB, Lake, Monitor, copy_db


def _metrics(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{url}/metrics")
    assert r.status_code == 200
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_api_shows_the_run_its_partitions_and_samples(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    jobs = httpx.get(f"{m.url}/api/jobs").json()["jobs"]
    assert [(j["job"], j["copied"], j["failed"]) for j in jobs] == [
        ("filled", filled_db.copied, 1)]
    job = httpx.get(f"{m.url}/api/jobs/filled").json()
    run_id = job["runs"][0]["id"]
    run = httpx.get(f"{m.url}/api/runs/{run_id}").json()
    assert run["run"]["state"] == "failed" and run["run"]["copied"] == filled_db.copied
    parts = {p["prefix"]: p for p in run["partition_runs"]}
    assert set(parts) == {"2023/", "2024/", "xss/"}
    assert parts["2023/"]["copied"] == 10
    assert parts["2023/"]["bytes_written"] == sum(1000 + i for i in range(10))
    assert parts["2024/"]["retries"].get("throttled", 0) >= 1  # the proxy's 503s
    assert parts["2024/"]["throttled"] >= 1
    assert parts["xss/"]["state"] == "failed" and parts["xss/"]["failed_objects"] == 1
    assert all(p["peak_in_flight"] >= 1 and p["in_flight"] == 0
               for p in parts.values())
    assert all(p["state"] in ("succeeded", "failed") and p["finished_at"]
               for p in parts.values())
    assert run["samples"] and run["samples"][-1]["bytes"] == run["run"]["bytes"]
    detail = httpx.get(f"{m.url}/api/partition-runs/{parts['xss/']['id']}").json()
    assert detail["settings"]["run"]["batch_count"] == 2
    assert detail["settings"]["job"]["invalid_names"] == "fail"
    failures = httpx.get(f"{m.url}/api/runs/{run_id}/failures").json()["failures"]
    assert [f["object_key"] for f in failures] == [SCRIPT_KEY]


def test_failure_log_downloads_as_csv(filled_db: FilledDB,
                                      monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    run = httpx.get(f"{m.url}/api/jobs/filled").json()["runs"][0]["id"]
    parts = httpx.get(f"{m.url}/api/runs/{run}").json()["partition_runs"]
    xss = next(p["id"] for p in parts if p["prefix"] == "xss/")
    ok = next(p["id"] for p in parts if p["prefix"] == "2023/")
    r = httpx.get(f"{m.url}/runs/{run}/failures.csv", params={"partition_run": xss})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["object_key"], x["error_kind"]) for x in rows] == [(SCRIPT_KEY, "invalid-name")]
    empty = httpx.get(f"{m.url}/runs/{run}/failures.csv", params={"partition_run": ok})
    assert list(csv.DictReader(io.StringIO(empty.text))) == []
    assert httpx.get(f"{m.url}/runs/{run}/failures.csv",
                     params={"partition_run": 999999}).status_code == 404


def test_metrics_are_computed_from_the_control_db(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    got = _metrics(m.url)
    job = (("job", "filled"),)
    assert got[("lakeshift_control_db_up", ())] == 1
    assert got[("lakeshift_objects_copied_total", job)] == filled_db.copied
    assert got[("lakeshift_bytes_copied_total", job)] == filled_db.copied_bytes
    assert got[("lakeshift_objects_in_flight", job)] == 0
    assert got[("lakeshift_partitions", (("job", "filled"), ("state", "failed")))] == 1
    assert got[("lakeshift_partitions", (("job", "filled"), ("state", "succeeded")))] == 2
    assert got[("lakeshift_errors_total", (("error_class", "invalid-name"),
                                           ("job", "filled")))] == 1
    assert got[("lakeshift_retries_total", (("error_class", "throttled"),
                                            ("job", "filled")))] >= 1
    assert got[("lakeshift_throttled_total", job)] >= 1


def test_unknown_ids_are_404_and_nothing_holds_a_secret(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    for path in ("/runs/999999", "/partition-runs/999999", "/jobs/nope", "/no/such/page",
                 "/runs/999999/chart.svg"):
        r = httpx.get(m.url + path)
        assert r.status_code == 404, path
        assert "Traceback" not in r.text
    assert httpx.get(f"{m.url}/api/runs/999999").json() == {
        "error": {"status": 404, "code": "not-found",
                  "message": "no run 999999 in this control DB"}}
    run = httpx.get(f"{m.url}/api/jobs/filled").json()["runs"][0]["id"]
    pages = [httpx.get(m.url + p).text for p in (
        "/", "/jobs/filled", f"/runs/{run}", f"/api/runs/{run}", "/api/jobs/filled",
        "/metrics")]
    pages += [httpx.get(f"{m.url}/partition-runs/{p['id']}").text for p in
              httpx.get(f"{m.url}/api/runs/{run}").json()["partition_runs"]]
    for text in pages:
        assert servers.AZURITE_KEY not in text and "testing-secret" not in text


def test_actions_are_refused_read_only_and_without_the_token(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    db = copy_db(filled_db, tmp_path)
    read_only = monitor_of(db)
    r = httpx.post(f"{read_only.url}/jobs/filled/rerun-failed", data={"token": TOKEN})
    assert r.status_code == 403 and "read-only" in r.text
    # the fix it names is one that works: --token T is refused since session 20
    assert "LAKESHIFT_MONITOR_TOKEN" in r.text and "--token-file" in r.text, r.text
    assert "--token T" not in r.text, r.text
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")  # as `echo` writes it: the line end is not the token's
    armed = monitor_of(db, "--allow-actions", "--token-file", str(token_file))
    for data in ({}, {"token": "wrong-token-000000"}):
        r = httpx.post(f"{armed.url}/jobs/filled/rerun-failed", data=data)
        assert r.status_code == 403 and "token" in r.text
    before = httpx.get(f"{armed.url}/api/jobs/filled").json()
    assert before["failed"] == 1  # nothing changed
    r = httpx.post(f"{armed.url}/jobs/filled/rerun-failed",
                   headers={"X-Lakeshift-Token": TOKEN, "Accept": "application/json"})
    assert r.status_code == 200 and r.json()["result"] == 1
    after = httpx.get(f"{armed.url}/api/jobs/filled").json()
    assert (after["failed"], after["pending"]) == (0, 1)
    assert httpx.post(f"{armed.url}/runs/999999/cancel",
                      headers={"X-Lakeshift-Token": TOKEN}).status_code == 404
    assert TOKEN not in httpx.get(f"{armed.url}/jobs/filled").text


def test_a_control_db_that_goes_bad_is_one_clear_page(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    db = copy_db(filled_db, tmp_path)
    m = monitor_of(db)
    assert httpx.get(m.url + "/").status_code == 200
    (tmp_path / "control.db").write_bytes(b"this is not a database " * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"control.db{suffix}").unlink(missing_ok=True)
    r = httpx.get(m.url + "/")
    assert r.status_code == 503
    assert "not a lakeshift control DB" in r.text and "Traceback" not in r.text
    assert httpx.get(f"{m.url}/api/jobs").json()["error"]["status"] == 503
    assert "lakeshift_control_db_up 0.0" in httpx.get(f"{m.url}/metrics").text
    assert m.proc.poll() is None  # still serving


@pytest.mark.parametrize(("args", "says"), [
    (["--db", "sqlite:///{tmp}/missing.db"], "no control DB at"),
    (["--db", "{db}", "--allow-actions"], "--allow-actions needs a token"),
    (["--db", "{db}", "--port", "70000"], "--port"),
    (["--db", "postgresql://u:pw@127.0.0.1:{free}/x"], "cannot use control DB"),
])
def test_bad_monitor_input_is_one_line_and_exit_2(
        args: list[str], says: str, filled_db: FilledDB, lake: Lake, tmp_path: Path) -> None:
    argv = [a.format(tmp=tmp_path, db=filled_db.url, free=servers.free_port()) for a in args]
    p = lakeshift("monitor", *argv, env=lake.env, timeout=60)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert says in one_clear_line(p)
    assert "pw@" not in p.stderr


def test_the_token_is_never_taken_from_the_command_line(
        filled_db: FilledDB, lake: Lake, tmp_path: Path) -> None:
    """On the command line a secret shows in ``ps`` and the shell's history: --token VALUE
    is refused in one line naming the two ways (the variable, --token-file), the value
    never echoed."""
    p = lakeshift("monitor", "--db", filled_db.url, "--allow-actions", "--token", TOKEN,
                  env=lake.env, timeout=60)
    line = one_clear_line(p)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "--token takes no secret on the command line" in line, line
    assert "LAKESHIFT_MONITOR_TOKEN" in line and "--token-file FILE" in line, line
    assert TOKEN not in p.stdout + p.stderr
    short, empty, two = tmp_path / "short", tmp_path / "empty", tmp_path / "two"
    short.write_text("short\n")
    empty.write_text("\n")
    # a token and a second line (a comment, another secret): no form or header sends it
    two.write_text(TOKEN + "\r\n# the monitor's token\r\n")
    for args, env, says in (
            (["--token-file", str(short)], lake.env, f"the token (--token-file {short}) must "
                                                     "be at least 12 characters"),
            ([], {**lake.env, "LAKESHIFT_MONITOR_TOKEN": "short"},
             "the token (LAKESHIFT_MONITOR_TOKEN) must be at least 12 characters"),
            (["--token-file", str(empty)], lake.env, f"--token-file {empty} is empty"),
            (["--token-file", str(two)], lake.env,
             f"--token-file {two} holds more than one line: put only the token in it"),
            (["--token-file", str(tmp_path / "none")], lake.env,
             f"cannot read --token-file {tmp_path / 'none'}: No such file or directory")):
        p = lakeshift("monitor", "--db", filled_db.url, "--allow-actions", *args, env=env,
                      timeout=60)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert says in one_clear_line(p), (args, p.stderr)


def test_the_token_from_the_environment_arms_the_actions(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    armed = monitor_of(copy_db(filled_db, tmp_path), "--allow-actions", token=TOKEN)
    url = f"{armed.url}/jobs/filled/rerun-failed"
    assert httpx.post(url, headers={"X-Lakeshift-Token": "wrong-token-000000"}
                      ).status_code == 403
    r = httpx.post(url, headers={"X-Lakeshift-Token": TOKEN, "Accept": "application/json"})
    assert r.status_code == 200 and r.json()["result"] == 1


def test_a_port_in_use_and_a_foreign_host_are_said_clearly(
        filled_db: FilledDB, lake: Lake, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    port = m.url.rsplit(":", 1)[1]
    p = lakeshift("monitor", "--db", filled_db.url, "--port", port, env=lake.env)
    assert p.returncode == 2 and "choose another --port" in one_clear_line(p)
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: binding fails, nothing is sent.
    p = lakeshift("monitor", "--db", filled_db.url, "--host", "192.0.2.1", "--port", "0",
                  env=lake.env)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "warning: listening on 192.0.2.1: other machines can reach" in lines[0]
    assert "cannot listen on 192.0.2.1" in lines[1] and len(lines) == 2


def test_all_interfaces_prints_an_address_to_open_not_the_wildcard(
        filled_db: FilledDB, lake: Lake, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url, "--host", "0.0.0.0")
    host, port = m.url.removeprefix("http://").rsplit(":", 1)
    assert host == socket.gethostname() and host != "0.0.0.0"
    # Listening on every interface, so loopback answers too (the name needs no DNS here).
    assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200


def test_the_chart_is_an_svg_drawn_from_the_samples(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    run = httpx.get(f"{m.url}/api/jobs/filled").json()["runs"][0]["id"]
    r = httpx.get(f"{m.url}/runs/{run}/chart.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert "<polyline" in r.text and "http" not in r.text.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


def test_monitor_help_names_every_option(lake: Lake) -> None:
    p = lakeshift("monitor", "--help", env={**lake.env, "COLUMNS": "200"})
    assert p.returncode == 0
    for flag in ("--db", "--host", "--port", "--allow-actions", "--token-file",
                 "LAKESHIFT_MONITOR_TOKEN"):
        assert flag in p.stdout


def test_the_settings_shown_hide_secrets() -> None:
    from lakeshift.api import _shown_settings

    shown = _shown_settings({"store": {"sas_token": "sv=2024&sig=abc", "account_key": "k",
                                       "endpoint": "https://h/c?sv=1&sig=SECRETSIG"},
                             "db": "postgresql://u:hunter2@h/db", "concurrency": 8})
    text = json.dumps(shown)
    for secret in ("abc", "SECRETSIG", "hunter2", '"k"'):
        assert secret not in text
    assert shown["concurrency"] == 8


def test_pages_forbid_foreign_scripts_and_foreign_host_names(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    r = httpx.get(m.url + "/jobs/filled")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    # A page of another site reaching the monitor through DNS rebinding names its own host.
    r = httpx.get(m.url + "/api/jobs", headers={"Host": "attacker.example"})
    assert r.status_code == 400 and "filled" not in r.text
    port = m.url.rsplit(":", 1)[1]
    assert httpx.get(m.url + "/api/jobs",
                     headers={"Host": f"localhost:{port}"}).status_code == 200


def test_sync_schedules_are_shown_when_the_db_has_them() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from lakeshift.web.app import Monitor as App

    job = SimpleNamespace(job="j", destination="az://c/", partitions=1, pending=0, running=0,
                          interrupted=0,
                          succeeded=1, failed=0, copied=1, bytes=1, failed_objects=0,
                          sync_schedule="every 15m",
                          next_sync_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    html = App("sqlite:///unused.db").env.get_template("jobs.html").render(
        status=SimpleNamespace(jobs=[job]), api=None)
    assert "every 15m" in html and "2026-01-02 03:04:05Z" in html


def test_a_token_file_without_allow_actions_is_said_read_only(
        filled_db: FilledDB, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    """--token-file given without --allow-actions arms nothing: the monitor says so (a
    warning on stderr) instead of serving read-only in silence."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    m = monitor_of(copy_db(filled_db, tmp_path), "--token-file", str(token_file))
    r = httpx.post(f"{m.url}/jobs/filled/rerun-failed", headers={"X-Lakeshift-Token": TOKEN})
    assert r.status_code == 403 and "read-only" in r.text
    m.stop()
    assert m.proc.stderr is not None
    err = m.proc.stderr.read()
    assert f"warning: --token-file {token_file} is used only with --allow-actions: this " \
           "monitor is read-only" in err, err
    assert TOKEN not in err
