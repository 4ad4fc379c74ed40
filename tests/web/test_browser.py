"""Playwright drives Debian's Chromium through the monitor as a person would: over a
control DB filled by real runs on the emulators, with a run going on in the background.
Screenshots land in tests/artifacts/web/ (git-ignored)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lakeshift.control.repository import ControlDB
from lakeshift.model import PartitionSpec
from tests.e2e.cli import lakeshift
from tests.helpers import blob_bytes, blobs
from tests.web.conftest import (
    HARMLESS_HTML_KEY,
    SCRIPT_KEY,
    TOKEN,
    FilledDB,
    Lake,
    Monitor,
    copy_db,
    screenshot,
    slow_run,
    wait_for,
)


def wait_for_first_swap(page: Any) -> None:
    """The page's first poll swaps the page in too. A test waits for it before it changes
    the DB: a first poll still under way could be answered before the change and swapped in
    after the test's marker is set, and so look like the change shown."""
    page.wait_for_function("Number(document.body.dataset.swaps || 0) >= 1", timeout=15_000)


def mark_before_change(page: Any) -> None:
    """Mark the live part of the page; the next swap (of the change the test makes next)
    removes the mark."""
    wait_for_first_swap(page)
    page.evaluate("document.getElementById('live').dataset.before = 'refresh'")


def test_navigation_jobs_runs_partitions_detail(
        page: Any, filled_db: FilledDB, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    page.goto(m.url + "/")
    assert page.locator("#jobs tbody tr").count() == 1
    screenshot(page, "jobs")
    page.get_by_role("link", name="filled").click()
    page.wait_for_url("**/jobs/filled")
    assert page.locator("#partitions tbody tr").count() == 3
    assert page.locator("#runs tbody tr").count() == 1
    screenshot(page, "job")
    page.locator("#runs tbody tr a").first.click()
    page.wait_for_url("**/runs/*")
    assert page.locator("#run-copied").inner_text() == str(filled_db.copied)
    assert page.locator("#partition-runs tbody tr").count() == 3
    assert page.locator("svg.chart polyline").count() == 1
    screenshot(page, "run")
    row = page.locator("#partition-runs tbody tr", has_text="2023/")
    row.get_by_role("link").click()
    page.wait_for_url("**/partition-runs/*")
    assert page.locator("#pr-copied").inner_text() == "10"
    assert page.locator("#pr-written").inner_text() == "9.8 KiB"  # 10,045 bytes
    assert int(page.locator("#pr-peak").inner_text()) >= 1
    stages = page.locator("#stages tbody td:first-child").all_inner_texts()
    assert stages == ["queued", "listing", "transferring", "finishing"]
    assert "run.concurrency" in page.locator("#settings").inner_text()
    screenshot(page, "partition-run")


def test_a_key_holding_html_is_shown_as_text(
        page: Any, filled_db: FilledDB, monitor_of: Callable[..., Monitor]) -> None:
    m = monitor_of(filled_db.url)
    run = httpx.get(f"{m.url}/api/jobs/filled").json()["runs"][0]["id"]
    parts = httpx.get(f"{m.url}/api/runs/{run}").json()["partition_runs"]
    xss = next(p["id"] for p in parts if p["prefix"] == "xss/")
    page.goto(f"{m.url}/partition-runs/{xss}")
    assert page.locator("#failures td.key").all_inner_texts() == [SCRIPT_KEY]
    assert page.evaluate("window.__xss") is None and page.dialogs == []
    assert page.locator("#failures script, #failures b").count() == 0
    page.goto(f"{m.url}/jobs/filled")  # the cursor of xss/ is the harmless <b> key
    assert HARMLESS_HTML_KEY in page.locator("#partitions").inner_text()  # shown as text
    assert page.locator("#partitions b").count() == 0
    assert HARMLESS_HTML_KEY not in page.content()  # escaped in the HTML…
    assert page.evaluate("window.__xss") is None
    screenshot(page, "html-in-keys")


@pytest.mark.alone  # the cancel must come before the paced run ends
def test_a_live_run_moves_on_the_page_and_a_cancel_stops_it_at_a_checkpoint(
        page: Any, lake: Lake, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    db = f"sqlite:///{path}"
    # ~20 s of bandwidth: still running when the cancel comes on a loaded machine (at 32KiB
    # it once finished first, exit 0, with two test workers busy); cancelled, it costs no more.
    proc, objs = slow_run(lake, db, "live", "live/", n=80, bandwidth="16KiB")
    try:
        m = monitor_of(db, "--allow-actions", token=TOKEN)
        run_id = wait_for(lambda: next(iter(httpx.get(f"{m.url}/api/jobs/live").json()["runs"]),
                                       {}).get("id"), what="the run's row")
        page.goto(f"{m.url}/runs/{run_id}")
        first = int(page.locator("#run-copied").inner_text())
        # No reload: the page's script polls /api and swaps in the new counters.
        page.wait_for_function(
            f"Number(document.getElementById('run-copied').innerText) > {first}",
            timeout=30_000)
        assert page.locator("#live-state").is_visible()
        assert page.locator("#run-state").inner_text() == "running"
        assert 'lakeshift_runs_running{job="live"} 1.0' in httpx.get(f"{m.url}/metrics").text
        # The partition run's record moves with the partition's heartbeat.
        wait_for(lambda: [(p["state"], p["copied"] > 0, p["peak_in_flight"] > 0) for p in
                          httpx.get(f"{m.url}/api/runs/{run_id}").json()["partition_runs"]]
                 == [("running", True, True)], what="the partition run's progress")
        screenshot(page, "live-run")

        page.fill("input[name=token]", TOKEN)
        page.click("#cancel-run")
        page.wait_for_url("**/runs/*?done=*")
        assert "cancel requested" in page.locator(".message").inner_text()
        # The run stops by itself at its next heartbeat, and says so (exit 130: not done).
        assert proc.wait(30) == 130
        assert "the run was cancelled" in (proc.stdout.read() if proc.stdout else "")
        assert "interrupted" not in (proc.stderr.read() if proc.stderr else "")  # said once
        page.wait_for_function("document.getElementById('run-state').innerText == "
                               "'cancelled'", timeout=30_000)
        assert page.locator("#live-state").is_hidden()  # the run is over: no "live"
        assert 'lakeshift_runs_running{job="live"} 0.0' in httpx.get(f"{m.url}/metrics").text
        screenshot(page, "cancelled-run")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    with sqlite3.connect(path) as conn:
        state, copied = conn.execute("SELECT state, copied FROM lakeshift_runs").fetchone()
        parts = conn.execute("SELECT state, cursor FROM lakeshift_partitions").fetchall()
    assert state == "cancelled" and 0 < copied < len(objs)
    assert parts[0][0] == "pending" and parts[0][1] is not None  # resumes at its cursor
    again = lakeshift("run", "--job", "live", "--db", db, "--json", env=lake.env)
    assert again.returncode == 0, again.stderr
    got = blobs(lake.blobs, lake.container, "live/")
    assert set(got) == set(objs)
    for key in ("live/o000.bin", "live/o079.bin"):
        assert blob_bytes(lake.blobs, lake.container, key) == objs[key]
    with sqlite3.connect(path) as conn:  # each object counted once across both runs
        # (one the cancelled run copied after its cursor is found identical: skipped)
        assert conn.execute("SELECT copied + skipped, failed_objects FROM "
                            "lakeshift_partitions").fetchone() == (len(objs), 0)


def test_actions_in_the_page_need_the_token(
        page: Any, filled_db: FilledDB, monitor_of: Callable[..., Monitor],
        tmp_path: Path) -> None:
    db = copy_db(filled_db, tmp_path)
    read_only = monitor_of(db)
    page.goto(f"{read_only.url}/jobs/filled")
    assert page.locator("#rerun-failed").count() == 0
    assert page.locator(".mode").inner_text() == "read-only"
    armed = monitor_of(db, "--allow-actions", token=TOKEN)
    page.goto(f"{armed.url}/jobs/filled")
    page.fill("input[name=token]", "not-the-token-123")
    page.click("#rerun-failed")
    assert "wrong or missing token" in page.locator("#error-detail").inner_text()
    screenshot(page, "action-refused")
    page.goto(f"{armed.url}/jobs/filled")
    page.fill("input[name=token]", TOKEN)
    page.click("#rerun-failed")
    page.wait_for_url("**/jobs/filled?done=*")
    assert "1 failed partition pending again" in page.locator(".message").inner_text()
    assert page.locator("#partitions tr.state-pending").count() == 1
    screenshot(page, "action-done")


def test_404_and_an_unreachable_db_are_pages_not_stack_traces(
        page: Any, filled_db: FilledDB, monitor_of: Callable[..., Monitor],
        tmp_path: Path) -> None:
    db = copy_db(filled_db, tmp_path)
    m = monitor_of(db)
    response = page.goto(f"{m.url}/runs/424242")
    assert response.status == 404
    assert page.locator("#error-detail").inner_text() == "no run 424242 in this control DB"
    screenshot(page, "not-found")
    (tmp_path / "control.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"control.db{suffix}").unlink(missing_ok=True)
    response = page.goto(f"{m.url}/")
    assert response.status == 503
    assert page.locator("h1").inner_text() == "Control DB unavailable"
    assert "no control DB at" in page.locator("#error-detail").inner_text()
    assert "Traceback" not in page.content()
    screenshot(page, "db-unreachable")


def test_a_typed_token_survives_a_live_refresh(
        page: Any, filled_db: FilledDB, monitor_of: Callable[..., Monitor],
        tmp_path: Path) -> None:
    db = copy_db(filled_db, tmp_path)
    armed = monitor_of(db, "--allow-actions", token=TOKEN)
    page.goto(f"{armed.url}/jobs/filled")
    page.fill("input[name=token]", TOKEN)
    mark_before_change(page)
    with sqlite3.connect(tmp_path / "control.db") as conn:  # a run's heartbeat, say
        conn.execute("UPDATE lakeshift_partitions SET listed = listed + 5")
    page.wait_for_selector("#live:not([data-before])", timeout=15_000)  # swapped
    assert page.input_value("input[name=token]") == TOKEN
    page.click("#rerun-failed")
    page.wait_for_url("**/jobs/filled?done=*")
    assert "1 failed partition pending again" in page.locator(".message").inner_text()


@pytest.mark.parametrize("fault", ["503", "hang"])
def test_a_page_fetch_that_fails_is_tried_again_at_the_next_poll(
        page: Any, filled_db: FilledDB, monitor_of: Callable[..., Monitor],
        tmp_path: Path, fault: str) -> None:
    """The live refresh swaps the page in when the API's answer changes; a page fetch that
    fails then (a busy or restarting monitor) or never answers must not count the change
    as shown nor stop the polling, or a run that ended meanwhile would stay 'running' on
    the page for good."""
    db = copy_db(filled_db, tmp_path)
    m = monitor_of(db)
    run = httpx.get(f"{m.url}/api/jobs/filled").json()["runs"][0]["id"]
    page.goto(f"{m.url}/runs/{run}")
    assert page.locator("#run-copied").inner_text() == str(filled_db.copied)
    wait_for_first_swap(page)
    failed: list[str] = []

    def fail_once(route: Any) -> None:
        if not failed and route.request.resource_type == "fetch":
            failed.append(route.request.url)
            if fault == "503":
                route.fulfill(status=503, body="busy")
            # "hang": never answered; the page's own time limit must give up on it
        else:
            route.continue_()

    page.route(f"{m.url}/runs/{run}", fail_once)
    with sqlite3.connect(tmp_path / "control.db") as conn:
        conn.execute("UPDATE lakeshift_runs SET copied = copied + 5 WHERE id = ?", (run,))
    page.wait_for_function(
        f"document.getElementById('run-copied').innerText == '{filled_db.copied + 5}'",
        timeout=40_000)
    assert failed  # the first swap after the change did fail


def test_a_change_between_the_page_and_its_first_poll_is_shown(
        page: Any, filled_db: FilledDB, monitor_of: Callable[..., Monitor],
        tmp_path: Path) -> None:
    """The page is rendered before its script first asks the API: a run that changed in
    between (CI: a run cancelled at its next heartbeat while the page loaded stayed
    'running' on the page) must be shown, not taken as what the page already shows."""
    db = copy_db(filled_db, tmp_path)
    m = monitor_of(db)
    run = httpx.get(f"{m.url}/api/jobs/filled").json()["runs"][0]["id"]
    changed: list[str] = []

    def change_first(route: Any) -> None:
        if not changed:  # the page is in; its first poll sees the run changed
            changed.append(route.request.url)
            with sqlite3.connect(tmp_path / "control.db") as conn:
                conn.execute("UPDATE lakeshift_runs SET copied = copied + 5 WHERE id = ?",
                             (run,))
        route.continue_()

    page.route(f"{m.url}/api/runs/{run}*", change_first)
    page.goto(f"{m.url}/runs/{run}")
    page.wait_for_function(
        f"document.getElementById('run-copied').innerText == '{filled_db.copied + 5}'",
        timeout=15_000)
    assert changed


def test_a_job_of_many_partitions_is_shown_a_page_at_a_time(
        page: Any, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    """The job page reads and sends one page of partitions (a job may have tens of
    thousands), with links to the others; the live refresh keeps the page shown."""
    from lakeshift.control.repository import ControlDB
    from lakeshift.model import PartitionSpec

    path = tmp_path / "control.db"
    control = ControlDB(f"sqlite:///{path}", create=True)
    try:
        job = control.create_job("many", "az://c/", {}, [])
        control.add_partitions(job, [PartitionSpec(
            source="s3://b/", prefix=f"p{i:04d}/", rel_base=f"p{i:04d}/",
            destination="az://c/") for i in range(250)])
    finally:
        control.close()
    m = monitor_of(f"sqlite:///{path}")
    page.goto(f"{m.url}/jobs/many")
    rows = page.locator("#partitions tbody tr")
    assert rows.count() == 100
    assert "p0000/" in rows.first.inner_text() and "p0099/" in rows.last.inner_text()
    pager = page.locator("#partitions-pages")
    assert "rows 1–100 of 250 · page 1 of 3" in pager.inner_text()
    assert "250 (0 succeeded, 0 failed" in page.locator("dl.facts").inner_text()
    pager.get_by_role("link", name="next").click()
    page.wait_for_url("**/jobs/many?page=2")
    assert rows.count() == 100 and "p0100/" in rows.first.inner_text()
    # A heartbeat on this page's partitions: the page refreshes, and stays page 2.
    mark_before_change(page)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE lakeshift_partitions SET copied = 7777 WHERE seq = 150")
    page.wait_for_selector("#live:not([data-before])", timeout=15_000)
    assert "7,777" in page.locator("#partitions tbody tr", has_text="p0149/").inner_text()
    assert rows.count() == 100 and "p0100/" in rows.first.inner_text()
    pager.get_by_role("link", name="last").click()
    page.wait_for_url("**/jobs/many?page=3")
    assert rows.count() == 50 and "p0249/" in rows.last.inner_text()
    assert "rows 201–250 of 250" in pager.inner_text()
    pager.get_by_role("link", name="previous").click()
    page.wait_for_url("**/jobs/many?page=2")
    pager.get_by_role("link", name="first").click()
    page.wait_for_url("**/jobs/many?page=1")
    assert "p0000/" in rows.first.inner_text()
    screenshot(page, "job-pages")


def _one_job_db(path: Path) -> tuple[str, ControlDB, int]:
    """A control DB with job "j" of one pending partition, and its writer (runs are started
    and ended through it, as `lakeshift run` does)."""
    url = f"sqlite:///{path}"
    control = ControlDB(url, create=True)
    job = control.create_job("j", "az://c/", {}, [])
    control.add_partitions(job, [PartitionSpec(source="s3://b/", prefix="p/", rel_base="p/",
                                               destination="az://c/")])
    return url, control, job


def test_live_shows_only_while_the_run_goes_on(
        page: Any, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    """The badge reads as "the run is live": an ended run's page never shows it (though
    the page polls), a running run's does, and loses it when the run ends meanwhile."""
    url, control, job = _one_job_db(tmp_path / "control.db")
    try:
        ended = control.start_run(job, "far-host:1:a", 1, {})
        control.finish_run(ended, "succeeded", 1, 0, 3, 30)
        running = control.start_run(job, "far-host:1:b", 1, {}, lease_s=600)
        m = monitor_of(url)
        page.goto(f"{m.url}/runs/{ended}")
        wait_for_first_swap(page)  # polled, answered, and that answer shown
        assert page.locator("#live-state").is_hidden()
        assert page.locator("#run-state").inner_text() == "succeeded"
        screenshot(page, "ended-run")

        page.goto(f"{m.url}/runs/{running}")
        wait_for_first_swap(page)
        assert page.locator("#live-state").is_visible()
        assert page.locator("#run-state").inner_text() == "running"
        control.finish_run(running, "succeeded", 1, 0, 5, 50)  # ends while the page is open
        page.wait_for_selector("#run-state.state-succeeded", timeout=15_000)
        assert page.locator("#live-state").is_hidden()
        assert page.locator("#run-copied").inner_text() == "5"
    finally:
        control.close()


def test_a_run_that_starts_later_shows_up_on_the_job_page(
        page: Any, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    """A job page with no run going on says nothing is live but keeps polling: a run that
    starts later shows up, live while it runs, and the cancel it offers goes away when it
    ends."""
    url, control, job = _one_job_db(tmp_path / "control.db")
    try:
        m = monitor_of(url, "--allow-actions", token=TOKEN)
        page.goto(f"{m.url}/jobs/j")
        wait_for_first_swap(page)
        assert page.locator("#live-state").is_hidden()
        assert "No runs yet" in page.locator("main").inner_text()
        run = control.start_run(job, "far-host:1:a", 1, {}, lease_s=600)
        page.wait_for_selector("#runs tr.state-running", timeout=15_000)
        assert page.locator("#live-state").is_visible()
        page.locator("#runs tr.state-running a").click()
        page.wait_for_url(f"**/runs/{run}")
        assert page.locator("#cancel-run").is_visible()
        control.finish_run(run, "failed", 0, 1, 0, 0)
        page.wait_for_selector("#run-state.state-failed", timeout=15_000)
        assert page.locator("#cancel-run").count() == 0 and page.locator("#live-state").is_hidden()
        page.get_by_role("link", name="j", exact=True).click()
        page.wait_for_url("**/jobs/j")
        wait_for_first_swap(page)
        assert page.locator("#runs tr.state-failed").count() == 1
        assert page.locator("#live-state").is_hidden()
    finally:
        control.close()


def test_a_killed_runs_partitions_read_interrupted_once_its_lease_lapses(
        page: Any, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    """A run killed (kill -9) leaves its partitions 'running' in the DB.  Once its lease
    lapses the open job page shows them as what they are, and that the next run takes
    them over; it said 'running' for good."""
    path = tmp_path / "control.db"
    url, control, job = _one_job_db(path)
    try:
        run = control.start_run(job, "far-host:1:a", 1, {}, lease_s=600)
        assert len(control.claim(job, "far-host:1:a", 1, 600, run_id=run)) == 1
        m = monitor_of(url)
        page.goto(f"{m.url}/jobs/j")
        cell = page.locator("#partitions tbody td.state")
        assert cell.inner_text() == "running"
        mark_before_change(page)
        with sqlite3.connect(path) as conn:  # killed: its leases lapse
            conn.execute("UPDATE lakeshift_runs SET lease_expires = started_at")
            conn.execute("UPDATE lakeshift_partitions SET lease_expires = started_at")
        page.wait_for_selector("#live:not([data-before])", timeout=15_000)
        assert cell.inner_text() == "interrupted (lease expired; the next run takes it over)"
        assert page.locator("#job-interrupted").inner_text() == (
            "1 interrupted (lease expired; the next run takes it over)")
        assert page.locator("#runs td.state").inner_text() == "interrupted"
        assert page.locator("#live-state").is_hidden()
        screenshot(page, "killed-run-job")
    finally:
        control.close()


def test_a_cancel_requested_page_says_cancelled_once_the_run_ended(
        page: Any, monitor_of: Callable[..., Monitor], tmp_path: Path) -> None:
    """The cancel's answer brings the run's page back with ?done=cancel-requested; the
    live refresh keeps that address.  Once the run ended it says the run was cancelled, and
    when, not that a cancel is requested."""
    url, control, job = _one_job_db(tmp_path / "control.db")
    try:
        run = control.start_run(job, "far-host:1:a", 1, {}, lease_s=600)
        assert control.request_cancel(run)
        m = monitor_of(url)
        page.goto(f"{m.url}/runs/{run}?done=cancel-requested")
        assert "cancel requested" in page.locator(".message").inner_text()
        assert page.locator("#run-cancel").inner_text().startswith("requested")
        mark_before_change(page)
        control.finish_run(run, "cancelled", 0, 0, 0, 0)  # at its next heartbeat
        page.wait_for_selector("#run-state.state-cancelled", timeout=15_000)
        ended = control.run(run)
        assert ended is not None
        when = ended["finished_at"].strftime("%Y-%m-%d %H:%M:%SZ")
        assert page.locator(".message").inner_text() == f"the run was cancelled at {when}"
        assert page.locator("#run-cancel").inner_text() == f"cancelled at {when}"
    finally:
        control.close()
