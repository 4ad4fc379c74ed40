"""`lakeshift status --job` on a job of 10,000 partitions: a summary by state and the
partitions that need attention, a page at a time (it printed every partition)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import lakeshift
from lakeshift.control.repository import ControlDB
from lakeshift.model import PartitionSpec
from tests import servers
from tests.e2e.cli import lakeshift as cli
from tests.e2e.cli import one_clear_line

PARTS = 10_000


@pytest.fixture(scope="module")
def big_job(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Job ``big``: 9,990 partitions succeeded (2 objects, 2,048 bytes each), 3 failed (the
    seqs 7000, 42, 9000), 2 running (100, 5000) but held by no run (one that died left
    them: they read as interrupted), 5 pending (the last five)."""
    path = tmp_path_factory.mktemp("status") / "s.db"
    db = f"sqlite:///{path}"
    control = ControlDB(db, create=True)
    try:
        control.create_job("big", "az://acct/c/", {}, [
            PartitionSpec("s3://b/", f"p{i:05d}/", "", "az://acct/c/") for i in range(PARTS)])
    finally:
        control.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE lakeshift_partitions SET state = 'succeeded', listed = 2, "
                     "copied = 2, bytes = 2048 WHERE seq <= ?", (PARTS - 5,))
        conn.execute("UPDATE lakeshift_partitions SET state = 'failed', failed_objects = 1, "
                     "listed = 2, copied = 1, bytes = 1024, last_error = 'seq ' || seq || "
                     "' broke' WHERE seq IN (7000, 42, 9000)")
        conn.execute("UPDATE lakeshift_partitions SET state = 'running', copied = 0, "
                     "bytes = 0, listed = 0 WHERE seq IN (100, 5000)")
    return db


def _seqs(text: str) -> list[int]:
    """The partitions' numbers in the text table's rows."""
    return [int(ln.split("│")[1]) for ln in text.splitlines()
            if ln.startswith("│") and ln.split("│")[1].strip().isdigit()]


def test_text_shows_a_summary_and_a_page_of_what_needs_attention(big_job: str) -> None:
    env = servers.clean_env()
    p = cli("status", "--job", "big", "--db", big_job, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) < 60, p.stdout  # it was every partition: 30,000 lines and more
    assert lines[0].startswith("job big → az://acct/c/: 10000 partitions — 9990 succeeded, "
                               "3 failed, 2 interrupted (lease expired; the next run takes "
                               "them over), 5 pending;")
    assert lines[1:5] == [
        "  pending        5 partitions 0/0 objects copied, 0 B",
        "  running        2 partitions 0/0 objects copied, 0 B — 2 interrupted (lease "
        "expired; the next run takes them over)",
        "  succeeded  9,990 partitions 19,980/19,980 objects copied, 19.5 MiB",
        "  failed         3 partitions 3/6 objects copied, 3.0 KiB, 3 objects failed"]
    # The failed first, then the interrupted (no lease: left by a run that died), then the
    # running, then the pending, each in order.
    assert _seqs(p.stdout) == [42, 7000, 9000, 100, 5000, *range(PARTS - 4, PARTS + 1)]
    assert "partitions needing attention 1–10 of 10" in p.stdout
    assert "seq 42 broke" in p.stdout and "more" not in p.stdout


def test_a_page_and_the_line_that_names_the_next(big_job: str) -> None:
    env = servers.clean_env()
    first = cli("status", "--job", "big", "--db", big_job, "--limit", "4", env=env)
    assert _seqs(first.stdout) == [42, 7000, 9000, 100]
    assert "  … 6 more partitions needing attention: --offset 4 --limit 4 shows the next, " \
           "--all every partition" in first.stdout.splitlines()
    nxt = cli("status", "--job", "big", "--db", big_job, "--limit", "4", "--offset", "4",
              env=env)
    assert _seqs(nxt.stdout) == [5000, 9996, 9997, 9998]
    page = cli("status", "--job", "big", "--db", big_job, "--state", "succeeded", "--offset",
               "9980", env=env)
    assert _seqs(page.stdout) == [
        s for s in range(1, PARTS - 4) if s not in (42, 100, 5000, 7000, 9000)][9980:]
    assert "succeeded partitions 9981–9990 of 9,990" in page.stdout
    none = cli("status", "--job", "big", "--db", big_job, "--state", "failed", "--offset",
               "3", env=env)
    assert _seqs(none.stdout) == [] and "3 failed partitions, none from --offset 3" in \
        none.stdout
    zero = cli("status", "--job", "big", "--db", big_job, "--limit", "0", env=env)
    assert _seqs(zero.stdout) == [] and zero.stdout.splitlines()[-1] == \
        "  10 partitions needing attention, none shown (--limit 0)"


def test_json_keeps_every_partition_and_pages_the_same_way(big_job: str) -> None:
    env = servers.clean_env()
    whole = json.loads(cli("status", "--job", "big", "--db", big_job, "--json",
                           env=env).stdout)["jobs"][0]
    assert len(whole["partition_table"]) == whole["partition_table_total"] == PARTS
    assert whole["by_state"]["failed"] == {"partitions": 3, "listed": 6, "copied": 3,
                                           "bytes": 3072, "failed_objects": 3}
    page = json.loads(cli("status", "--job", "big", "--db", big_job, "--json", "--limit", "3",
                          "--offset", "1", "--state", "attention", env=env).stdout)["jobs"][0]
    assert [p["seq"] for p in page["partition_table"]] == [7000, 9000, 100]
    assert page["partition_table"][0]["last_error"] == "seq 7000 broke"
    assert (page["partition_table_offset"], page["partition_table_total"],
            page["partition_table_states"]) == (1, 10, ["failed", "interrupted", "running",
                                                       "pending"])
    # The API the CLI calls, as the monitor's /api/jobs/NAME?offset=&limit= pages it.
    api = lakeshift.status(db=big_job, job="big", state=["pending,failed"], limit=4).jobs[0]
    assert [p.seq for p in api.partition_table] == [9996, 9997, 9998, 9999]
    assert api.partition_table_total == 8


@pytest.mark.parametrize(("args", "message"), [
    (["--state", "stuck"], "--state 'stuck': use pending, running, succeeded, failed, "
                           "interrupted, attention (failed, interrupted, running, pending) "
                           "or all"),
    (["--all", "--limit", "5"], "--all shows every partition: leave out --state, --offset "
                                "and --limit"),
])
def test_a_wrong_choice_is_one_clear_line(big_job: str, args: list[str], message: str) -> None:
    p = cli("status", "--job", "big", "--db", big_job, *args, env=servers.clean_env())
    assert p.returncode == 2 and message in one_clear_line(p)


def test_paging_needs_a_job(big_job: str) -> None:
    p = cli("status", "--db", big_job, "--limit", "5", env=servers.clean_env())
    assert p.returncode == 2 and "add --job NAME" in one_clear_line(p)


def test_all_shows_every_partition(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/a.db"
    control = ControlDB(db, create=True)
    try:
        control.create_job("few", str(tmp_path / "dst"), {}, [
            PartitionSpec(str(tmp_path / "src"), f"p{i}/", "", str(tmp_path / "dst"))
            for i in range(25)])
    finally:
        control.close()
    p = cli("status", "--job", "few", "--db", db, "--all", env=servers.clean_env())
    assert p.returncode == 0, p.stderr
    assert _seqs(p.stdout) == list(range(1, 26)) and "more" not in p.stdout
    default = cli("status", "--job", "few", "--db", db, env=servers.clean_env())
    assert len(_seqs(default.stdout)) == 20
    assert "… 5 more partitions needing attention: --offset 20 shows the next" in \
        default.stdout
    one = cli("status", "--job", "few", "--db", db, "--state", "pending", "--limit", "24",
              env=servers.clean_env())
    assert "  … 1 more pending partition: --offset 24 --limit 24 shows the next, --all every " \
        "partition" in one.stdout.splitlines()
