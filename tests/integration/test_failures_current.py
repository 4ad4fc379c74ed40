"""Which failures are current (``lakeshift failures --job``: ``ControlDB.latest_failures``)
on SQLite and PostgreSQL: a failure is cleared by a later pass of its partition that went
past its key without failing it — a resumed run, only past the cursor it resumed from; a
sync pass's window; a --files-from pass, only the keys it named."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.control.records import KeySpan
from lakeshift.control.repository import ControlDB, PartitionStats, Records
from lakeshift.model import Failure, PartitionSpec

OWNER = "h:1:a"


@pytest.fixture(params=["sqlite", "postgresql"])
def control(request: pytest.FixtureRequest, tmp_path: Path) -> ControlDB:
    url = (f"sqlite:///{tmp_path}/c.db" if request.param == "sqlite"
           else str(request.getfixturevalue("pg_url")))
    db = ControlDB(url, create=True)
    yield db  # type: ignore[misc]
    db.close()


def _job(control: ControlDB) -> tuple[int, int]:
    job = control.create_job("j", "az://c/", {}, [PartitionSpec("s3://b/", "p/", "", "az://c/")])
    [p] = control.partitions(job)
    return job, int(p["id"])


def _failed(job: int, run: int, *keys: str, skipped: bool = False,
            kind: str = "forbidden") -> Records:
    return Records(job, run, failures=[Failure(k, kind, f"{k} in run {run}", 1, skipped)
                                       for k in keys])


def _current(control: ControlDB, job: int) -> list[tuple[str, str]]:
    return sorted((r["object_key"], r["message"]) for r in control.latest_failures(job))


def _run(control: ControlDB, job: int, settings: dict[str, object] | None = None,
         from_start: bool = False) -> tuple[int, int]:
    for r in control.runs(job):
        if r["state"] == "running":  # the last run is over
            control.finish_run(r["id"], "failed", 0, 0, 0, 0)
    if from_start:
        assert control.prepare_sync_pass(job)  # as a sync pass does
    run = control.start_run(job, OWNER, 1, settings or {})
    control.reset_failed(job)
    [row] = control.claim(job, OWNER, 1, lease_s=60, run_id=run, from_start=from_start)
    return run, int(row["id"])


def test_a_resumed_run_clears_what_it_went_past_and_keeps_what_fails_again(
        control: ControlDB) -> None:
    job, p = _job(control)
    run1, _ = _run(control, job)
    # Run 1 fails p/b and p/d (the cursor stops before p/b); p/s is skipped on purpose.
    assert control.finish(p, OWNER, "failed", "p/a", PartitionStats(), "2 failed", 1.0,
                          records=_failed(job, run1, "p/b", "p/d"))
    control.add_records(p, _failed(job, run1, "p/s", skipped=True))
    assert [k for k, _ in _current(control, job)] == ["p/b", "p/d", "p/s"]

    # Run 2 resumes after p/a: p/b is copied now, p/d fails again.  Its heartbeat past p/b
    # clears p/b at once (saved with the cursor), not p/d.
    run2, _ = _run(control, job)
    assert control.heartbeat(p, OWNER, 60, "p/c", PartitionStats())
    assert _current(control, job) == [("p/d", f"p/d in run {run1}"),
                                      ("p/s", f"p/s in run {run1}")]
    assert control.finish(p, OWNER, "failed", "p/c", PartitionStats(), "1 failed", 1.0,
                          records=_failed(job, run2, "p/d"))
    # p/d is listed with its newest reason; the skip on purpose, after the cursor, stays.
    assert _current(control, job) == [("p/d", f"p/d in run {run2}"),
                                      ("p/s", f"p/s in run {run1}")]
    # The log keeps every run's rows.
    assert sorted(r["object_key"] for r in control.failures(job)) == [
        "p/b", "p/d", "p/d", "p/s"]

    # Run 3 finishes the partition: every failure after its start is cleared, the skip
    # too (it listed p/s and did not skip it again).
    _run(control, job)
    assert control.finish(p, OWNER, "succeeded", "p/x", PartitionStats(), None, 1.0)
    assert _current(control, job) == []


def test_a_resumed_run_clears_a_skip_it_copied_and_keeps_one_it_skipped_again(
        control: ControlDB) -> None:
    """Run 1 skipped p/s and p/t on purpose (--skip-errors forbidden, say); run 2, with
    other options, copies p/s and skips p/t again: p/s is no longer listed, p/t is, with
    run 2's row."""
    job, p = _job(control)
    run1, _ = _run(control, job)
    assert control.finish(p, OWNER, "failed", "p/a", PartitionStats(), "1 failed", 1.0,
                          records=_failed(job, run1, "p/b"))
    control.add_records(p, _failed(job, run1, "p/s", "p/t", skipped=True))
    run2, _ = _run(control, job)
    assert control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0,
                          records=_failed(job, run2, "p/t", skipped=True))
    assert _current(control, job) == [("p/t", f"p/t in run {run2}")]


def _sync_window(control: ControlDB, job: int, p: int, state: str, cursor: str | None,
                 delete: bool = False, listed: list[KeySpan] | None = None,
                 records: Records | None = None) -> int:
    """A sync pass of the job's one partition whose window ends ``state``, its cursor at
    ``cursor``; ``records``: what it recorded (``run_id`` filled in)."""
    run, _ = _run(control, job, {"mode": "sync", "delete": delete}, from_start=True)
    if records is not None:
        records = Records(job, run, records.failures)
    control.finish(p, OWNER, "succeeded" if state in ("succeeded", "keyed") else "failed",
                   cursor, PartitionStats(), None, 1.0, records=records)
    when = control.partitions(job)[0]["finished_at"]
    [w] = control.start_windows(job, run, [(p, None, when)]).values()
    control.finish_window(w, state, PartitionStats(), 0, None, listed)
    return run


def test_a_deletion_failure_stays_until_a_pass_that_deletes_there(control: ControlDB) -> None:
    """sync --delete could not delete c/gone (a destination key): a copy run, a pass
    without --delete and a --delete pass that listed only a path template's folders do
    not clear it; a --delete pass whose window of the partition succeeded does."""
    job, p = _job(control)
    run1 = _sync_window(control, job, p, "failed", None, delete=True)
    control.add_failures(job, p, run1, [Failure("c/gone", "forbidden", "could not delete "
                                                "from the destination: denied", 1)], True)
    control.add_records(p, _failed(job, run1, "p/k"))
    assert [k for k, _ in _current(control, job)] == ["c/gone", "p/k"]

    _run(control, job)  # a copy run from the start, going past every key
    assert control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0)
    assert [k for k, _ in _current(control, job)] == ["c/gone"]
    _sync_window(control, job, p, "succeeded", "p/z")
    _sync_window(control, job, p, "succeeded", "p/z", delete=True,
                 listed=[KeySpan("p/2026/")])
    assert [k for k, _ in _current(control, job)] == ["c/gone"]
    # --files-from naming it (as a source key) does not delete either.
    run = _sync_window(control, job, p, "keyed", "p/z")
    control.clear_named_failures(job, run, ["c/gone"], True)
    assert [k for k, _ in _current(control, job)] == ["c/gone"]
    _sync_window(control, job, p, "succeeded", "p/z", delete=True)
    assert _current(control, job) == []


def test_a_path_template_pass_clears_only_in_what_it_listed(control: ControlDB) -> None:
    """A pass under --path-template lists the template's folders inside its window and
    the keys before and after the template's static prefix: a failure in an older folder
    stays current."""
    job, p = _job(control)
    run1, _ = _run(control, job)
    keys = ("p/a", "p/logs/2020/01/x", "p/logs/2026/12/x", "p/logs/2026/120/x",
            "p/logs/2026/13/x", "p/zz")
    control.finish(p, OWNER, "failed", None, PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, *keys))
    # As engine/sync.py's _specs lists it: before "p/logs/", the window's folders, after.
    listed = [KeySpan("p/", range_end="p/logs/"), KeySpan("p/logs/2026/12/"),
              KeySpan("p/logs/2026/13/"),
              KeySpan("p/", start_after="p/logs/\U0010ffff", range_start="p/logt")]
    _sync_window(control, job, p, "failed", "p/logs/2026/12/x", listed=listed)
    assert [k for k, _ in _current(control, job)] == [
        "p/logs/2020/01/x", "p/logs/2026/120/x", "p/logs/2026/13/x", "p/zz"]
    _sync_window(control, job, p, "succeeded", "p/zz", listed=listed)
    assert [k for k, _ in _current(control, job)] == ["p/logs/2020/01/x", "p/logs/2026/120/x"]
    # A pass that lists the whole partition (no template, or a window with no start).
    _sync_window(control, job, p, "succeeded", "p/zz")
    assert _current(control, job) == []


def test_the_heartbeat_walks_only_the_open_failures_of_the_keys_it_went_past(
        control: ControlDB) -> None:
    """The UPDATE a heartbeat clears with is an index walk over the partition's open
    failures in the keys it passed (version 10), not over all its open failures."""
    from sqlalchemy import event

    job, p = _job(control)
    run1, _ = _run(control, job)
    control.finish(p, OWNER, "failed", None, PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, *(f"p/k{i:03d}" for i in range(200))))
    _run(control, job)
    seen: list[tuple[str, object]] = []

    def note(conn: object, cursor: object, statement: str, parameters: object,
             context: object, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE LAKESHIFT_FAILURES"):
            seen.append((statement, parameters))

    event.listen(control.engine, "before_cursor_execute", note)
    try:
        assert control.heartbeat(p, OWNER, 60, "p/k010", PartitionStats())
    finally:
        event.remove(control.engine, "before_cursor_execute", note)
    [(statement, parameters)] = seen
    assert [k for k, _ in _current(control, job)][:2] == ["p/k011", "p/k012"]
    with control.engine.begin() as conn:
        # As the DB's statistics have it once analysed (PostgreSQL's autovacuum does).
        conn.exec_driver_sql("ANALYZE")
    with control.engine.begin() as conn:
        if control.engine.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, parameters))  # type: ignore[arg-type]
            assert "ix_lakeshift_failures_open_key" in plan and "object_key<" in plan, plan
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(str(r[0]) for r in conn.exec_driver_sql(
                "EXPLAIN " + statement, parameters))  # type: ignore[arg-type]
            cond = plan.split("Index Cond:", 1)[-1].split("Filter:", 1)[0]
            assert "ix_lakeshift_failures_open_key_c" in plan, plan
            assert 'left"(object_key, 500))::text <=' in cond, plan


def test_a_run_clears_only_keys_after_the_cursor_it_resumed_from(control: ControlDB) -> None:
    """A --files-from pass moves the cursor over keys it never looked at: a run resuming
    from there did not go past them either."""
    job, p = _job(control)
    run1, _ = _run(control, job)
    control.finish(p, OWNER, "failed", None, PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, "p/k", "p/q"))
    # A keyed pass (from its start, as every sync pass) ends with its cursor at p/m.
    _run(control, job, {"mode": "sync"}, from_start=True)
    control.finish(p, OWNER, "failed", "p/m", PartitionStats(), "failed", 1.0)
    assert [k for k, _ in _current(control, job)] == ["p/k", "p/q"]
    _run(control, job)  # resumes after p/m
    control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0)
    assert [k for k, _ in _current(control, job)] == ["p/k"]


def test_a_dry_run_clears_nothing(control: ControlDB) -> None:
    job, p = _job(control)
    run1, _ = _run(control, job)
    control.finish(p, OWNER, "failed", None, PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, "p/k"))
    _run(control, job, {"dry_run": True})
    control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0)
    assert [k for k, _ in _current(control, job)] == ["p/k"]


def test_keys_compare_as_listings_order_them(control: ControlDB) -> None:
    """Byte order (Python's), not a locale's: 'B' < 'a' < 'é' — even in a PostgreSQL
    column whose collation puts 'a' before 'B'."""
    if control.engine.dialect.name == "postgresql":
        with control.engine.begin() as conn:
            name = conn.exec_driver_sql(
                "SELECT collname FROM pg_collation WHERE collname IN "
                "('und-x-icu', 'en-x-icu', 'en_US.utf8') ORDER BY collname DESC").scalar()
            if name is None:
                pytest.skip("this PostgreSQL has no locale collation to compare with")
            conn.exec_driver_sql("ALTER TABLE lakeshift_failures ALTER COLUMN object_key "
                                 f'TYPE text COLLATE "{name}"')
    job, p = _job(control)
    run1, _ = _run(control, job)
    control.finish(p, OWNER, "failed", None, PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, "p/B", "p/a", "p/é"))
    _run(control, job)
    control.finish(p, OWNER, "failed", "p/a", PartitionStats(), "failed", 1.0)
    assert [k for k, _ in _current(control, job)] == ["p/é"]


def test_a_sync_window_clears_by_its_outcome_and_a_keyed_pass_by_the_keys_it_named(
        control: ControlDB) -> None:
    job, p = _job(control)
    run1, _ = _run(control, job)
    control.finish(p, OWNER, "failed", None, PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, "p/a", "p/k", "p/q"))
    control.add_records(p, _failed(job, run1, "p/s", skipped=True))
    control.add_records(p, _failed(job, run1, "elsewhere", kind="outside-partitions"))
    when = control.partitions(job)[0]["finished_at"]

    def window(state: str, cursor: str | None) -> int:
        run, _ = _run(control, job, {"mode": "sync"}, from_start=True)
        control.finish(p, OWNER, "succeeded" if state in ("succeeded", "keyed") else "failed",
                       cursor, PartitionStats(), None, 1.0)
        [w] = control.start_windows(job, run, [(p, None, when)]).values()
        control.finish_window(w, state, PartitionStats(), 0, None)
        return run

    window("keyed", "p/z")  # named keys only: its cursor says nothing of the others
    assert [k for k, _ in _current(control, job)] == ["elsewhere", "p/a", "p/k", "p/q", "p/s"]
    window("failed", "p/k")  # listed in full up to p/k
    assert [k for k, _ in _current(control, job)] == ["elsewhere", "p/q", "p/s"]

    # --files-from p/s (relative to the partition's rel_base ""), looked at again and
    # copied: its skip clears; p/q, not named, stays.
    run = window("keyed", "p/s")
    control.clear_named_failures(job, run, ["p/s", "p/zz"], False)
    assert [k for k, _ in _current(control, job)] == ["elsewhere", "p/q"]
    # A keyed pass that failed clears only the named keys up to its cursor.
    run = window("keyed-failed", "p/p")
    control.clear_named_failures(job, run, ["p/q", "elsewhere"], True)
    assert [k for k, _ in _current(control, job)] == ["elsewhere", "p/q"]

    window("succeeded", "p/z")  # the whole window, no failure: every failure but the stray
    assert [k for k, _ in _current(control, job)] == ["elsewhere"]


def test_a_pass_never_clears_a_failure_it_recorded_itself(control: ControlDB) -> None:
    """A failure that is not a listed key's leaves the cursor free to pass its key: under
    --preserve a parent folder's ACL that cannot be set is recorded under the folder's key
    (p/c/) while its file (p/c/x) is copied and passes the cursor.  That failure is current:
    the pass that recorded it did not go past it."""
    job, p = _job(control)
    run1, _ = _run(control, job)
    control.finish(p, OWNER, "failed", "p/a", PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, "p/b"))
    run2, _ = _run(control, job)
    assert control.heartbeat(p, OWNER, 60, "p/c/x", PartitionStats(),
                             records=_failed(job, run2, "p/c/"))
    assert _current(control, job) == [("p/c/", f"p/c/ in run {run2}")]  # p/b: copied
    assert control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0,
                          records=_failed(job, run2, "p/y/"))
    assert _current(control, job) == [("p/c/", f"p/c/ in run {run2}"),
                                      ("p/y/", f"p/y/ in run {run2}")]

    # A sync pass: its window, ended past such a key, keeps its own failure too.
    when = control.partitions(job)[0]["finished_at"]
    run3, _ = _run(control, job, {"mode": "sync"}, from_start=True)
    control.finish(p, OWNER, "failed", "p/m", PartitionStats(), None, 1.0,
                   records=_failed(job, run3, "p/d/"))
    [w] = control.start_windows(job, run3, [(p, None, when)]).values()
    control.finish_window(w, "failed", PartitionStats(), 0, None)
    assert _current(control, job) == [("p/d/", f"p/d/ in run {run3}"),
                                      ("p/y/", f"p/y/ in run {run2}")]


def test_a_finish_that_did_not_commit_clears_when_it_is_tried_again(
        control: ControlDB) -> None:
    """The engine tries a finish again when the DB was lost (``patiently``): what the
    first try would have cleared is cleared by the second."""
    from sqlalchemy import event

    job, p = _job(control)
    run1, _ = _run(control, job)
    control.finish(p, OWNER, "failed", "p/a", PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, "p/b"))
    _run(control, job)
    lost = [True]

    def commit(conn: object) -> None:
        if lost and lost.pop():
            raise ConnectionError("the control DB went away before the commit")

    event.listen(control.engine, "commit", commit)
    with pytest.raises(ConnectionError):
        control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0)
    assert [k for k, _ in _current(control, job)] == ["p/b"]  # nothing was written
    assert control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0)
    assert _current(control, job) == []


def test_a_db_upgraded_to_version_9_lists_no_failure_its_passes_already_went_past(
        control: ControlDB) -> None:
    """Failures recorded before version 9 that a later pass went past (no row says so yet)
    are cleared by the upgrade where the DB proves it: a run's partition that succeeded
    since; a succeeded sync window of a later run.  A partition still failed keeps its."""
    from lakeshift.control import migrations

    job, p = _job(control)
    run1, _ = _run(control, job)
    control.finish(p, OWNER, "failed", "p/a", PartitionStats(), "failed", 1.0,
                   records=_failed(job, run1, "p/b"))
    control.add_records(p, _failed(job, run1, "p/s", skipped=True))
    _run(control, job)
    control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0)

    other = control.create_job("k", "az://c/", {}, [PartitionSpec("s3://b/", "q/", "",
                                                                  "az://c/")])
    [q] = [int(r["id"]) for r in control.partitions(other)]
    run = control.start_run(other, OWNER, 1, {})
    control.claim(other, OWNER, 1, lease_s=60, run_id=run)
    control.finish(q, OWNER, "failed", None, PartitionStats(), "failed", 1.0,
                   records=_failed(other, run, "q/a"))
    control.finish_run(run, "failed", 0, 1, 0, 0)

    sync = control.create_job("s", "az://c/", {}, [PartitionSpec("s3://b/", "r/", "",
                                                                 "az://c/")])
    [r] = [int(x["id"]) for x in control.partitions(sync)]
    when = control.partitions(job)[0]["finished_at"]
    for state in ("failed", "succeeded", "keyed"):
        assert control.prepare_sync_pass(sync)
        run = control.start_run(sync, OWNER, 1, {"mode": "sync"})
        control.claim(sync, OWNER, 1, lease_s=60, run_id=run, from_start=True)
        control.finish(r, OWNER, "failed" if state == "failed" else "succeeded", "r/z",
                       PartitionStats(), None, 1.0,
                       records=_failed(sync, run, f"r/{state}") if state != "succeeded"
                       else None)
        [w] = control.start_windows(sync, run, [(r, None, when)]).values()
        control.finish_window(w, state, PartitionStats(), 0, None)
        control.finish_run(run, "failed", 0, 1, 0, 0)

    # As version 8 had it: no row cleared, no column (nor version 10's).
    with control.engine.begin() as conn:
        for index in ("ix_lakeshift_failures_open_key", "ix_lakeshift_failures_open_key_c"):
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
        conn.exec_driver_sql("ALTER TABLE lakeshift_failures DROP COLUMN deletion")
        conn.exec_driver_sql("ALTER TABLE lakeshift_failures DROP COLUMN cleared_run_id")
        conn.exec_driver_sql("UPDATE lakeshift_schema SET version = 8")
    control.close()
    upgraded = ControlDB(control.url)
    try:
        with upgraded.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version FROM lakeshift_schema").scalar() == \
                migrations.LATEST
        assert [k for k, _ in _current(upgraded, job)] == ["p/s"]
        assert [k for k, _ in _current(upgraded, other)] == ["q/a"]
        # r/failed, before the succeeded window's run, is cleared; the keyed pass's stays.
        assert [k for k, _ in _current(upgraded, sync)] == ["r/keyed"]
    finally:
        upgraded.close()


def test_version_10_tells_deletion_failures_apart_and_indexes_open_failures_by_key(
        control: ControlDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upgrade from version 9 marks the rows sync --delete's deletion phase recorded
    (a --delete pass's, worded as it words them) and lists again those a pass that deleted
    nothing cleared; the partition's open failures get their index by key.  A lakeshift
    that knows version 9 refuses the upgraded DB in one line."""
    from sqlalchemy import inspect

    from lakeshift.control import db as control_db
    from lakeshift.errors import UsageError

    job, p = _job(control)
    run1 = _sync_window(control, job, p, "failed", None, delete=True)
    control.add_failures(job, p, run1, [
        Failure("c/gone", "forbidden", "could not delete from the destination: denied", 1)],
        True)
    run2 = _sync_window(control, job, p, "failed", None)
    control.add_records(p, Records(job, run2, [Failure(
        "p/y", "forbidden", "could not delete from the destination: no --delete", 1)]))
    with control.engine.begin() as conn:  # as version 9 left them
        for index in ("ix_lakeshift_failures_open_key", "ix_lakeshift_failures_open_key_c"):
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")
        conn.exec_driver_sql("CREATE INDEX ix_lakeshift_failures_partition_open ON "
                             "lakeshift_failures (partition_id, cleared_run_id)")
        conn.exec_driver_sql(f"UPDATE lakeshift_failures SET cleared_run_id = {run2} "
                             "WHERE object_key = 'c/gone'")  # version 9's window did so
        conn.exec_driver_sql("ALTER TABLE lakeshift_failures DROP COLUMN deletion")
        conn.exec_driver_sql("UPDATE lakeshift_schema SET version = 9")
    control.close()
    upgraded = ControlDB(control.url)
    try:
        assert [k for k, _ in _current(upgraded, job)] == ["c/gone", "p/y"]
        marked = {r["object_key"]: r["deletion"] for r in upgraded.failures(job)}
        assert marked == {"c/gone": 1, "p/y": 0}
        names = {i["name"] for i in inspect(upgraded.engine).get_indexes("lakeshift_failures")}
        assert "ix_lakeshift_failures_partition_open" not in names
        assert ("ix_lakeshift_failures_open_key_c"
                if control.engine.dialect.name == "postgresql"
                else "ix_lakeshift_failures_open_key") in names
    finally:
        upgraded.close()
    monkeypatch.setattr(control_db, "SCHEMA_VERSION", 9)
    with pytest.raises(UsageError, match=r"has schema version 10, newer than this "
                                         r"lakeshift understands \(9\): upgrade lakeshift"):
        ControlDB(control.url)


def test_a_copy_failure_and_a_deletion_failure_under_one_key_are_both_current(
        control: ControlDB) -> None:
    """A copy failure names a source object, a deletion failure (sync --delete) a
    destination object; where the destination is named like its source the two keys are
    one string, and the later row hid the other: both objects are listed."""
    job, p = _job(control)
    run1 = _sync_window(control, job, p, "failed", None, delete=True)
    control.add_records(p, _failed(job, run1, "p/k"))
    control.add_failures(job, p, run1, [Failure("p/k", "forbidden", "could not delete p/k "
                                                "from the destination: denied", 1)], True)
    assert _current(control, job) == [
        ("p/k", "could not delete p/k from the destination: denied"), ("p/k", "p/k in run 1")]
    # Each is cleared by what clears its kind: a copy run going past p/k, the copy's only.
    _run(control, job)
    assert control.finish(p, OWNER, "succeeded", "p/z", PartitionStats(), None, 1.0)
    assert _current(control, job) == [
        ("p/k", "could not delete p/k from the destination: denied")]
