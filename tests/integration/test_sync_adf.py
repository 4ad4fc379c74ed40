"""`lakeshift sync --adf-delta-table`: a table made and seeded as Data Factory's delta template
makes it ("Copy delta data from Amazon S3 to Azure Data Lake Storage Gen2"), on SQLite and
PostgreSQL, driven through the CLI.

The template's table: ``s3_partition_delta_control_table(PartitionPrefix varchar(255),
JobRunTime datetime, SuccessOrFailure bit)``, seeded with each partition's prefix, the time
the historical migration started and 1.  Its pipeline reads ``select distinct
PartitionPrefix``, starts each partition's window at ``max(JobRunTime)`` of its rows with
SuccessOrFailure = 1, and inserts a row with 1 or 0 after each partition's copy.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.cli import lakeshift as cli
from tests.helpers import next_second

TABLE = "s3_partition_delta_control_table"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/control.db"
    return str(request.getfixturevalue("pg_url"))


def _engine(db_url: str) -> Any:
    return create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))


def _create_template_table(db_url: str, seed: list[tuple[str, datetime, int]]) -> None:
    """CREATE TABLE and INSERT as a user of the template writes them for this database
    (PostgreSQL folds unquoted names to lower case, so the template's names are quoted)."""
    q = '"' if db_url.startswith("postgresql") else ""
    eng = _engine(db_url)
    with eng.begin() as c:
        c.execute(text(f"CREATE TABLE {TABLE} ({q}PartitionPrefix{q} varchar(255), "
                       f"{q}JobRunTime{q} {'timestamp' if q else 'datetime'}, "
                       f"{q}SuccessOrFailure{q} bit)"))
        for prefix, at, ok in seed:
            c.execute(text(f"INSERT INTO {TABLE} VALUES ('{prefix}', "
                           f"'{at:%Y-%m-%d %H:%M:%S}', '{ok}')"))
    eng.dispose()


def _rows(db_url: str) -> list[tuple[str, datetime, int]]:
    """The table's rows in the order they were inserted."""
    q = '"' if db_url.startswith("postgresql") else ""
    order = "ctid" if q else "rowid"
    eng = _engine(db_url)
    with eng.connect() as c:
        rows = c.execute(text(f"SELECT {q}PartitionPrefix{q}, {q}JobRunTime{q}, "
                              f"CAST({q}SuccessOrFailure{q} AS integer) FROM {TABLE} "
                              f"ORDER BY {order}")).all()
    eng.dispose()
    out = []
    for p, at, ok in rows:
        at = datetime.fromisoformat(at) if isinstance(at, str) else at
        out.append((p, at.replace(tzinfo=None), int(ok)))
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _sync(cli_env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    p = cli("sync", *args, "--json", "--progress", "none", env=cli_env)
    out = json.loads(p.stdout) if p.stdout.startswith("{") else {}
    return p.returncode, out, p.stderr


def test_windows_start_at_the_template_tables_seed_and_each_pass_inserts_its_rows(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path, db_url: str) -> None:
    for key in ("a/before", "b/before"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"copied by the historical migration")
    next_second()
    seed = datetime.now(UTC).replace(microsecond=0, tzinfo=None)  # historical run started
    next_second()  # LastModified has whole seconds: what follows is after the seed
    s3.put_object(Bucket=bucket, Key="a/after", Body=b"a-after")
    s3.put_object(Bucket=bucket, Key="b/after", Body=b"b-after")
    s3.put_object(Bucket=bucket, Key="c/x", Body=b"not a partition of the table")
    seeded = [("a/", seed - timedelta(days=1), 1), ("a/", seed, 1),
              # A later failed row: a window never starts at a failed run's time.
              ("a/", seed + timedelta(days=1), 0), ("b/", seed, 1)]
    _create_template_table(db_url, seeded)
    dst = tmp_path / "dst"
    # The partition b/ fails this pass: its destination folder's name is taken by a file.
    dst.mkdir()
    (dst / "b").write_bytes(b"in the way")
    next_second()
    code, out, err = _sync(cli_env, f"s3://{bucket}/", str(dst), "--job", "adf", "--db",
                           db_url, "--adf-delta-table", TABLE, "--lag", "0")
    assert code == 1, err
    windows = {w["partition"]: w for w in out["windows"]}
    assert set(windows) == {"a/", "b/"}
    # Both windows start at the seeded max(JobRunTime) of the successful rows.
    assert {datetime.fromisoformat(w["start"]).replace(tzinfo=None)
            for w in windows.values()} == {seed}
    assert (windows["a/"]["state"], windows["b/"]["state"]) == ("succeeded", "failed")
    assert windows["a/"]["copied"] == 1 and windows["b/"]["failed_objects"] == 1
    assert _tree(dst) == {"a/after": b"a-after", "b": b"in the way"}  # nothing before seed
    first_end = datetime.fromisoformat(windows["a/"]["end"]).replace(tzinfo=None)
    rows = _rows(db_url)
    assert rows[:4] == seeded
    assert sorted(rows[4:]) == [("a/", first_end, 1), ("b/", first_end, 0)]

    # The next pass: a/ starts where its last window ended; b/'s failed window did not
    # advance, so it starts at the seed again and copies b/after now that it can.
    (dst / "b").unlink()
    next_second()
    s3.put_object(Bucket=bucket, Key="a/later", Body=b"a-later")
    next_second()
    code, out, err = _sync(cli_env, "--job", "adf", "--db", db_url, "--lag", "0")
    assert code == 0, err
    windows = {w["partition"]: w for w in out["windows"]}
    assert datetime.fromisoformat(windows["a/"]["start"]).replace(tzinfo=None) == first_end
    assert datetime.fromisoformat(windows["b/"]["start"]).replace(tzinfo=None) == seed
    assert (windows["a/"]["copied"], windows["b/"]["copied"]) == (1, 1)
    assert _tree(dst) == {"a/after": b"a-after", "a/later": b"a-later", "b/after": b"b-after"}
    second_end = datetime.fromisoformat(windows["a/"]["end"]).replace(tzinfo=None)
    rows = _rows(db_url)
    assert len(rows) == 8
    assert sorted(rows[6:]) == [("a/", second_end, 1), ("b/", second_end, 1)]


def test_job_run_time_is_utc_in_a_timestamptz_column_whatever_the_session_time_zone(
        pg_url: str, tmp_path: Path) -> None:
    import os

    import lakeshift

    eng = _engine(pg_url)
    name = pg_url.rsplit("/", 1)[1]
    with eng.begin() as c:
        c.execute(text(f"ALTER DATABASE {name} SET timezone = 'America/New_York'"))
        c.execute(text(f'CREATE TABLE {TABLE} ("PartitionPrefix" varchar(255), '
                       '"JobRunTime" timestamptz, "SuccessOrFailure" bit)'))
    eng.dispose()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a")
    old = time.time() - 3600
    os.utime(src / "a", (old, old))
    r = lakeshift.sync(str(src), str(tmp_path / "dst"), job="tz", db=pg_url, lag="0")
    assert r.exit_code == 0
    eng = _engine(pg_url)
    with eng.connect() as c:
        (at,) = c.execute(text(f'SELECT "JobRunTime" FROM {TABLE}')).one()
    eng.dispose()
    assert at.astimezone(UTC) == r.windows[0].end


def test_plan_replan_keeps_the_jobs_delta_table_unless_told_otherwise(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    """A job sync made from a delta table lost it when `plan --replan` changed its copy
    options (as sync's own refusal advises): the job became one partition of the whole
    bucket whose next pass copied everything, from nothing, outside the table's prefixes
    too.  Now the replan keeps the table (its partitions and windows); other partitions are
    refused, and `--adf-delta-table ''` drops the table on purpose."""
    db_url = f"sqlite:///{tmp_path}/control.db"
    s3.put_object(Bucket=bucket, Key="a/before", Body=b"copied by the historical migration")
    next_second()
    seed = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    next_second()
    s3.put_object(Bucket=bucket, Key="a/x.csv", Body=b"x")
    s3.put_object(Bucket=bucket, Key="b/y.csv", Body=b"y")
    s3.put_object(Bucket=bucket, Key="c/z.csv", Body=b"not a partition of the table")
    _create_template_table(db_url, [("a/", seed, 1), ("b/", seed, 1)])
    dst = tmp_path / "dst"
    src = f"s3://{bucket}/"
    job = ("--job", "adf", "--db", db_url)
    next_second()
    code, out, err = _sync(cli_env, src, str(dst), *job, "--adf-delta-table", TABLE,
                           "--lag", "0")
    assert code == 0, err
    first_end = max(datetime.fromisoformat(w["end"]) for w in out["windows"])
    # sync refuses other copy options and names plan --replan, saying what it keeps.
    p = cli("sync", *job, "--include", "*.csv", "--lag", "0", env=cli_env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"--replan --include …` (it keeps the ADF delta table {TABLE}, so its next sync " \
        "pass starts at the table's last successful JobRunTime" in p.stderr, p.stderr
    # Other partitions for it are refused (they replaced the table without a word).
    p = cli("plan", src, str(dst), *job, "--replan", "--prefix", "a/", env=cli_env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.strip() == (
        f"lakeshift: job 'adf' takes its partitions from the ADF delta table {TABLE} (sync "
        "--adf-delta-table), which --replan keeps: leave out --prefix/--partitions-file, or "
        "add --adf-delta-table '' to plan it without the table (its sync windows then start "
        "from nothing: a full copy)"), p.stderr
    p = cli("plan", src, str(dst), *job, "--replan", "--include", "*.csv", env=cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"job 'adf': 2 partitions from ADF delta table {TABLE} (the job's, kept: " \
        "--adf-delta-table '' drops it) planned in" in p.stdout, p.stdout
    s3.put_object(Bucket=bucket, Key="a/new.csv", Body=b"new")
    s3.put_object(Bucket=bucket, Key="a/new.txt", Body=b"not included")
    next_second()
    code, out, err = _sync(cli_env, *job, "--lag", "0")
    assert code == 0, err
    windows = {w["partition"]: w for w in out["windows"]}
    assert set(windows) == {"a/", "b/"}, windows
    # Windows go on from the table's rows: the first pass's end, not from nothing.
    assert {datetime.fromisoformat(w["start"]) for w in windows.values()} == {first_end}
    assert (windows["a/"]["copied"], windows["b/"]["copied"]) == (1, 0), windows
    assert _tree(dst) == {"a/x.csv": b"x", "b/y.csv": b"y", "a/new.csv": b"new"}
    # Dropped on purpose: one partition of the whole source, its window from nothing.
    p = cli("plan", src, str(dst), *job, "--replan", "--adf-delta-table", "", env=cli_env)
    assert p.returncode == 0 and "delta table" not in p.stdout, p.stdout + p.stderr
    code, out, err = _sync(cli_env, *job, "--lag", "0")
    assert code == 0, err
    assert [(w["partition"], w["start"]) for w in out["windows"]] == [("", None)], out
    assert "c/z.csv" in _tree(dst)


def test_plan_and_status_show_the_jobs_delta_table(tmp_path: Path) -> None:
    """`plan --json` and `status --job` said nothing of the ADF delta table a job takes its
    partitions and windows from (nor that a replan kept it): now its name is in --json
    (``adf_delta_table``, null for a job made otherwise) and the text says it in one line."""
    from tests import servers

    local_env = dict(servers.clean_env(), HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path))
    db_url = f"sqlite:///{tmp_path}/control.db"
    src = tmp_path / "src"
    for name in ("a/x.csv", "b/y.csv"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(b"x")
    _create_template_table(db_url, [("a/", datetime(2026, 1, 1), 1),
                                    ("b/", datetime(2026, 1, 1), 1)])
    job = ("--job", "adf", "--db", db_url)
    dst = str(tmp_path / "dst")
    line = (f"  ADF delta table {TABLE}: partitions from its PartitionPrefix values, sync "
            "windows from its last success")
    p = cli("plan", str(src), dst, *job, "--adf-delta-table", TABLE, "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["adf_delta_table"] == TABLE, p.stdout
    p = cli("plan", str(src), dst, *job, "--replan", "--show", env=local_env)
    assert p.returncode == 0 and line in p.stdout.splitlines(), p.stdout + p.stderr
    p = cli("status", *job, "--json", env=local_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["jobs"][0]["adf_delta_table"] == TABLE, p.stdout
    for args in (job, ("--db", db_url)):
        p = cli("status", *args, env=local_env)
        assert p.returncode == 0 and line in p.stdout.splitlines(), p.stdout + p.stderr
    # Dropped on purpose: none said.
    p = cli("plan", str(src), dst, *job, "--replan", "--adf-delta-table", "", "--json",
            env=local_env)
    assert p.returncode == 0 and json.loads(p.stdout)["adf_delta_table"] is None, p.stdout
    p = cli("status", *job, env=local_env)
    assert p.returncode == 0 and "ADF delta table" not in p.stdout, p.stdout
