"""What the monitor shows is recorded by the control DB's migration for it: an older DB is
upgraded in place, its runs kept, and then records partition runs and cancel requests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import lakeshift
from lakeshift.control.migrations import LATEST, MONITOR_VERSION
from lakeshift.control.repository import ControlDB


def as_before_the_monitor(path: Path) -> None:
    """Turn the SQLite control DB at ``path`` back into one from before the monitor's
    migration (and what later versions add)."""
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE lakeshift_runs DROP COLUMN cancel_requested")
    con.execute("DROP TABLE lakeshift_partition_runs")
    con.execute("DROP TABLE lakeshift_run_samples")
    con.execute("DROP INDEX IF EXISTS ix_lakeshift_partitions_claim")
    con.execute("DROP TABLE lakeshift_sync_delete_candidates")
    con.execute(f"UPDATE lakeshift_schema SET version = {MONITOR_VERSION - 1}")
    con.commit()
    con.close()


def test_a_db_from_before_the_monitor_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    control = ControlDB(url, create=True)
    job = control.create_job("old", "az://c/", {}, [])
    run = control.start_run(job, "far-host:1:a", 1, {"concurrency": 4})
    control.close()
    as_before_the_monitor(path)

    detail = lakeshift.run_detail(run, db=url)  # opening the DB upgrades it
    assert detail is not None and detail.job == "old" and not detail.cancel_requested
    assert detail.partition_runs == () and detail.run.settings == {"concurrency": 4}
    con = sqlite3.connect(path)
    assert con.execute("SELECT version FROM lakeshift_schema").fetchone()[0] == LATEST
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"lakeshift_partition_runs", "lakeshift_run_samples"} <= tables
    con.close()
    assert lakeshift.run_detail(run + 1, db=url) is None
    assert lakeshift.partition_run(1, db=url) is None
    assert lakeshift.run_failures(run + 1, db=url) is None


def test_cancel_is_recorded_only_for_a_running_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    control = ControlDB(url, create=True)
    job = control.create_job("j", "az://c/", {}, [])
    live = control.start_run(job, "far-host:1:a", 1, {}, lease_s=600)
    done = control.start_run(job, "far-host:1:b", 1, {}, lease_s=600)
    control.finish_run(done, "succeeded", 0, 0, 0, 0)
    assert control.heartbeat_run(live, 600, 0, 0, 0, 0) is False
    control.close()
    assert lakeshift.cancel_run(done, db=url) is False
    assert lakeshift.cancel_run(live, db=url) is True
    control = ControlDB(url)
    try:
        assert control.heartbeat_run(live, 600, 0, 0, 0, 0) is True  # the run learns it
        assert len(control.run_samples(live)) == 2
    finally:
        control.close()
    detail = lakeshift.run_detail(live, db=url)
    assert detail is not None and detail.cancel_requested


def test_every_copy_option_is_recorded_as_a_setting_of_the_run(tmp_path: Path) -> None:
    import dataclasses

    from lakeshift.engine.jobrunner import start_job_run
    from lakeshift.engine.pipeline import CopyOptions

    url = f"sqlite:///{tmp_path}/s.db"
    control = ControlDB(url, create=True)
    try:
        control.create_job("j", "az://c/", {}, [])
        opts = CopyOptions(concurrency=7, skip_errors=frozenset({"missing", "forbidden"}),
                           preserve=frozenset({"acl"}), identity_map=(("u1", "oid-1"),),
                           max_bandwidth=1e6, copy_mode="auto", delete_source=True)
        run = start_job_run(control, control.job("j"), "far-host:1:a", 3, opts, 30.0)
    finally:
        control.close()
    detail = lakeshift.run_detail(run, db=url)
    assert detail is not None
    shown = detail.run.settings
    for f in dataclasses.fields(CopyOptions):
        assert f.name in shown, f.name
    assert shown["skip_errors"] == ["forbidden", "missing"]
    assert shown["identity_map"] == [["u1", "oid-1"]]
    assert (shown["concurrency"], shown["copy_mode"], shown["delete_source"],
            shown["max_bandwidth"], shown["batch_count"]) == (7, "auto", True, 1e6, 3)
