"""`lakeshift plan --show --job` on a job of 10,000 partitions: a summary (how many, of which
kind, the objects known), a page of partitions and the line naming the option that shows the
rest (it printed every partition); --json and the API keep the whole table."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import lakeshift
from lakeshift.control.repository import ControlDB
from lakeshift.model import PartitionSpec
from tests import servers
from tests.e2e.cli import lakeshift as cli
from tests.e2e.cli import one_clear_line

PARTS = 10_000


def _seqs(text: str) -> list[int]:
    return [int(ln.split("│")[1]) for ln in text.splitlines()
            if ln.startswith("│") and ln.split("│")[1].strip().isdigit()]


def test_plan_show_is_a_summary_and_a_page(tmp_path: Path) -> None:
    """10 prefixes, then 9,990 key ranges (as --partition-by auto cuts them); the first two
    partitions have listed 3 objects each."""
    path = tmp_path / "p.db"
    db = f"sqlite:///{path}"
    control = ControlDB(db, create=True)
    try:
        control.create_job("big", "az://acct/c/", {}, [
            PartitionSpec("s3://b/", f"p{i}/", "", "az://acct/c/") for i in range(10)] + [
            PartitionSpec("s3://b/", "", "", "az://acct/c/", range_start=f"k{i:05d}",
                          range_end=f"k{i + 1:05d}") for i in range(PARTS - 10)])
    finally:
        control.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE lakeshift_partitions SET listed = 3, copied = 3, bytes = 3072 "
                     "WHERE seq <= 2")
    env = servers.clean_env()
    p = cli("plan", "--show", "--job", "big", "--db", db, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) < 80, p.stdout  # it was every partition: 30,000 lines and more
    assert lines[0] == ("job big → az://acct/c/: 10,000 partitions (10 prefixes, 9,990 key "
                        "ranges); 6 objects listed, 6 objects (6.0 KiB) copied so far")
    assert _seqs(p.stdout) == list(range(1, 21))
    assert "partitions 1–20 of 10,000" in p.stdout
    assert lines[-1] == ("  … 9,980 more partitions: --offset 20 shows the next, --all "
                         "every partition, --json all of them as data")
    nxt = cli("plan", "--show", "--job", "big", "--db", db, "--offset", "9995", env=env)
    assert _seqs(nxt.stdout) == list(range(9996, PARTS + 1)) and "more" not in nxt.stdout
    assert "[k09985, k09986)" in nxt.stdout
    # --all prints the whole table (it takes rich 15 s for 10,000 rows: a job of 25 here).
    control = ControlDB(db)
    try:
        control.create_job("few", "az://acct/d/", {}, [
            PartitionSpec("s3://b/", f"p{i}/", "", "az://acct/d/") for i in range(25)])
    finally:
        control.close()
    whole = cli("plan", "--show", "--job", "few", "--db", db, "--all", env=env)
    assert _seqs(whole.stdout) == list(range(1, 26)) and "more" not in whole.stdout
    assert whole.stdout.splitlines()[0] == "job few → az://acct/d/: 25 partitions (25 prefixes)"
    data = json.loads(cli("plan", "--show", "--job", "big", "--db", db, "--json",
                          env=env).stdout)
    assert len(data["partition_table"]) == data["partition_table_total"] == PARTS
    assert data["key_range_partitions"] == PARTS - 10
    # The API the CLI calls pages the same way.
    page = lakeshift.plan(job="big", db=db, show=True, offset=10, limit=2).job
    assert [x.seq for x in page.partition_table] == [11, 12]
    assert (page.partitions, page.key_range_partitions) == (PARTS, PARTS - 10)
    bad = cli("plan", "--show", "--job", "big", "--db", db, "--all", "--limit", "5", env=env)
    assert bad.returncode == 2 and "--all shows every partition" in one_clear_line(bad)
