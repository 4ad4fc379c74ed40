"""--invalid-names, --skip-errors and their records (summary, control DB)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import lakeshift
from lakeshift.control.migrations import LATEST
from tests.e2e.cli import lakeshift as cli
from tests.e2e.cli import obeying_file_modes

BAD = {
    "n/back\\slash.txt": "backslash",
    "n/trail.": "trailing-dot",
    "n/x//y": "empty-segment",
    "n/./z": "dot-segment",
    "n/ctl\x01.txt": "control-character",
}


def _seed(s3: Any, bucket: str) -> None:
    for k in [*BAD, "n/a", "n/a/b", "n/ok.txt"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b"data:" + k.encode())


def test_invalid_names_fail_by_default_with_the_rule(s3: Any, bucket: str,
                                                     tmp_path: Path) -> None:
    _seed(s3, bucket)
    res = lakeshift.copy(f"s3://{bucket}/n/", str(tmp_path / "out"))
    assert res.exit_code == 1
    kinds = {f.object_key: (f.error_kind, f.message.split(":")[0]) for f in res.failures}
    want = {k: ("invalid-name", rule) for k, rule in BAD.items()}
    # Local disk is hierarchical: "a" is a file, so "a/b" cannot be written.
    want["n/a/b"] = ("invalid-name", "file-directory-collision")
    assert kinds == want
    assert (tmp_path / "out" / "ok.txt").read_bytes() == b"data:n/ok.txt"
    assert (tmp_path / "out" / "a").read_bytes() == b"data:n/a"


def test_invalid_names_skip_is_recorded_and_exits_0(s3: Any, bucket: str,
                                                    tmp_path: Path) -> None:
    _seed(s3, bucket)
    res = lakeshift.copy(f"s3://{bucket}/n/", str(tmp_path / "out"), invalid_names="skip")
    assert res.exit_code == 0
    assert res.stats.skipped_errors == 6 and all(f.skipped for f in res.failures)


def test_invalid_names_encode_writes_and_records_every_rename(s3: Any, bucket: str,
                                                              tmp_path: Path) -> None:
    _seed(s3, bucket)
    out = tmp_path / "out"
    res = lakeshift.copy(f"s3://{bucket}/n/", str(out), invalid_names="encode")
    assert res.exit_code == 0, res.failures
    renames = {r.key: r.destination_key for r in res.renames}
    assert renames == {
        "n/back\\slash.txt": "back%5Cslash.txt", "n/trail.": "trail%2E",
        "n/x//y": "x%2Fy", "n/./z": "%2E/z", "n/ctl\x01.txt": "ctl%01.txt",
        "n/a/b": "a%2Fb"}
    for src, dst in renames.items():
        assert (out / dst).read_bytes() == b"data:" + src.encode(), dst
    # A rerun finds renamed objects under their new names: nothing is copied again.
    again = lakeshift.copy(f"s3://{bucket}/n/", str(out), invalid_names="encode")
    assert (again.stats.copied, again.stats.skipped, again.stats.renamed) == (0, 8, 6)


def test_skip_errors_missing_and_forbidden(cli_env: dict[str, str], tmp_path: Path,
                                           container: str) -> None:
    import os

    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    (src / "locked.txt").write_text("no")
    os.chmod(src / "locked.txt", 0)
    p = cli("copy", str(src), f"az://{container}/s/", "--skip-errors", "forbidden,missing",
            "--json", env=cli_env, prefix=obeying_file_modes())
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert (s["copied"], s["skipped_errors"], s["failed"]) == (1, 1, 0)
    assert s["failures"][0]["skipped"] is True and s["failures"][0]["kind"] == "forbidden"
    bad = cli("copy", str(src), f"az://{container}/s/", "--skip-errors", "everything",
              env=cli_env)
    assert bad.returncode == 2 and "--skip-errors everything" in bad.stderr


def test_job_records_renames_and_skips_in_the_control_db(
        cli_env: dict[str, str], s3: Any, bucket: str, tmp_path: Path) -> None:
    _seed(s3, bucket)
    db = tmp_path / "n.db"
    assert cli("plan", f"s3://{bucket}/n/", str(tmp_path / "out"), "--job", "n", "--db",
               f"sqlite:///{db}", "--invalid-names", "encode", env=cli_env).returncode == 0
    r = cli("run", "--job", "n", "--db", f"sqlite:///{db}", "--json", env=cli_env)
    assert r.returncode == 0, r.stdout + r.stderr
    con = sqlite3.connect(db)
    rows = con.execute("select source_key, destination_key from lakeshift_renames").fetchall()
    assert len(rows) == 6 and ("n/a/b", "a%2Fb") in rows


def test_a_version_1_control_db_is_upgraded(cli_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    db = tmp_path / "old.db"
    assert cli("plan", str(tmp_path / "src"), str(tmp_path / "d"), "--job", "old", "--db",
               f"sqlite:///{db}", env=cli_env).returncode == 0
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE lakeshift_failures DROP COLUMN skipped")
    con.execute("DROP TABLE lakeshift_renames")
    con.execute("DROP TABLE lakeshift_deletions")
    for table, col in [("lakeshift_partitions", "cursor_copied"),
                       ("lakeshift_partitions", "cursor_skipped"),
                       ("lakeshift_partitions", "cursor_bytes"), ("lakeshift_runs", "number"),
                       ("lakeshift_runs", "heartbeat_at"), ("lakeshift_runs", "lease_expires")]:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {col}")  # added by version 3
    con.execute("DROP TABLE lakeshift_sync_windows")
    con.execute("DROP TABLE lakeshift_schedules")
    con.execute("DROP TABLE lakeshift_sync_deletions")
    con.execute("DROP INDEX ix_lakeshift_partitions_claim")  # added by the dask migration
    # added by the monitor's version (migrations.MONITOR_VERSION)
    con.execute("ALTER TABLE lakeshift_runs DROP COLUMN cancel_requested")
    con.execute("DROP TABLE lakeshift_partition_runs")
    con.execute("DROP TABLE lakeshift_run_samples")
    con.execute("DROP TABLE lakeshift_sync_delete_candidates")  # the sync3 migration's
    con.execute("DROP INDEX ix_lakeshift_failures_open_key")  # version 10's
    con.execute("ALTER TABLE lakeshift_failures DROP COLUMN deletion")
    con.execute("ALTER TABLE lakeshift_failures DROP COLUMN cleared_run_id")  # version 9's
    con.execute("UPDATE lakeshift_schema SET version = 1")
    con.commit()
    con.close()
    p = cli("run", "--job", "old", "--db", f"sqlite:///{db}", env=cli_env)
    assert p.returncode == 0, p.stderr
    con = sqlite3.connect(db)
    assert con.execute("select version from lakeshift_schema").fetchone()[0] == LATEST
    assert con.execute("select count(*) from sqlite_master where type = 'index' and "
                       "name = 'ix_lakeshift_partitions_claim'").fetchone()[0] == 1
    assert con.execute("select count(*) from lakeshift_sync_windows").fetchone()[0] == 0
    cols = [r[1] for r in con.execute("pragma table_info(lakeshift_failures)")]
    assert "skipped" in cols and "cleared_run_id" in cols and "deletion" in cols
    assert con.execute("select count(*) from sqlite_master where type = 'index' and "
                       "name = 'ix_lakeshift_failures_open_key'").fetchone()[0] == 1
    assert con.execute("select count(*) from lakeshift_renames").fetchone()[0] == 0


def test_verify_pairs_renamed_objects_and_reports_renamings(
        cli_env: dict[str, str], s3: Any, bucket: str, container: str, blob_service: Any,
        tmp_path: Path) -> None:
    _seed(s3, bucket)
    res = lakeshift.copy(f"s3://{bucket}/n/", f"az://{container}/v/", invalid_names="encode")
    assert res.exit_code == 0 and len(res.renames) == 5  # Azurite is flat: no collision
    again = lakeshift.copy(f"s3://{bucket}/n/", f"az://{container}/v/", invalid_names="encode")
    assert (again.stats.copied, again.stats.skipped) == (0, 8)
    p = cli("verify", f"s3://{bucket}/n/", f"az://{container}/v/", "--invalid-names", "encode",
            "--report", str(tmp_path / "r"), "--json", env=cli_env)
    s = json.loads(p.stdout)
    assert p.returncode == 0, s
    assert (s["checked"], s["verified"], s["extra"], s["missing"]) == (8, 8, 0, 0)
    assert s["renamed"] == 5 and s["differences"] == 0
    import csv

    with open(f"{tmp_path / 'r'}.csv", newline="") as fh:
        rows = {r["source_key"]: r for r in csv.DictReader(fh)}
    assert rows["n/back\\slash.txt"]["kind"] == "renamed"
    assert rows["n/back\\slash.txt"]["detail"].startswith("v/back%5Cslash.txt (backslash")
    # Without the setting, the renamed objects look missing and their new names extra.
    p = cli("verify", f"s3://{bucket}/n/", f"az://{container}/v/", "--report",
            str(tmp_path / "r2"), "--json", env=cli_env)
    s = json.loads(p.stdout)
    assert p.returncode == 1 and s["missing"] == 5 and s["extra"] == 5


def test_a_local_file_name_that_is_not_utf8(blob_service: Any, container: str, azure_env: Any,
                                            tmp_path: Path) -> None:
    import os

    src = tmp_path / "src"
    src.mkdir()
    with open(os.path.join(bytes(src), b"caf\xe9.csv"), "wb") as f:
        f.write(b"latin-1 name")
    (src / "ok.csv").write_bytes(b"ok")
    res = lakeshift.copy(str(src), f"az://{container}/l1/")
    assert res.exit_code == 1 and [f.message.split(":")[0] for f in res.failures] == ["not-utf8"]
    res = lakeshift.copy(str(src), f"az://{container}/l1/", invalid_names="encode")
    assert res.exit_code == 0
    from tests.helpers import blob_bytes

    assert blob_bytes(blob_service, container, "l1/caf%E9.csv") == b"latin-1 name"
