"""What a user sees: counts in the right number, sizes in one set of units, skips by
reason, runs with nothing to do, errors as JSON under --json, reports where asked."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from tests import servers
from tests.e2e.cli import BIN, lakeshift, one_clear_line


def _local_source(tmp_path: Path, sizes: dict[str, int]) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for name, size in sizes.items():
        (src / name).write_bytes(b"x" * size)
    return src


def test_one_object_is_singular_in_the_summary(cli_env: dict[str, str], tmp_path: Path,
                                               container: str) -> None:
    src = _local_source(tmp_path, {"only.txt": 10})
    p = lakeshift("copy", str(src), f"az://{container}/one/", "--progress", "none",
                  env=cli_env)
    assert p.returncode == 0, p.stderr
    assert not re.search(r"(?<![\d.])1 objects", p.stdout), p.stdout  # (9.1 objects/s is fine)
    assert re.search(r"copied\s+1 object\s", p.stdout), p.stdout
    assert re.search(r"skipped\s+0 objects\s", p.stdout), p.stdout


def test_progress_bar_shows_binary_sizes_and_rates(cli_env: dict[str, str], tmp_path: Path,
                                                   container: str) -> None:
    src = _local_source(tmp_path, {"a.bin": 300_000, "b.bin": 300_000, "c.bin": 300_000})
    p = lakeshift("copy", str(src), f"az://{container}/bar/", "--progress", "bar", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert "878.9 KiB/878.9 KiB" in p.stderr, p.stderr  # the summary's units
    assert "3/3 objects" in p.stderr
    assert re.search(r"\d+(\.\d)? [KMG]iB/s", p.stderr), p.stderr
    assert not re.search(r"\d+/\d+ bytes|\d+/\d{6,}\b", p.stderr), p.stderr  # raw counts
    assert not re.search(r"\b[kMG]B/s", p.stderr), p.stderr  # decimal rates
    assert "KiB" in p.stdout  # and the summary speaks the same units


def test_skipped_counts_by_reason(cli_env: dict[str, str], s3: Any, bucket: str,
                                  container: str) -> None:
    s3.put_object(Bucket=bucket, Key="in/dir/", Body=b"")  # a folder marker
    s3.put_object(Bucket=bucket, Key="in/dir/a.txt", Body=b"a")
    s3.put_object(Bucket=bucket, Key="in/back\\slash.txt", Body=b"b")  # no such Azure name
    args = ["copy", f"s3://{bucket}/in/", f"az://{container}/r/", "--invalid-names", "skip"]
    first = lakeshift(*args, "--json", env=cli_env)
    assert first.returncode == 0, first.stderr
    s = json.loads(first.stdout)
    assert s["skipped_by_reason"] == {"folder-marker": 1, "invalid-name": 1}
    again = lakeshift(*args, "--json", env=cli_env)
    s = json.loads(again.stdout)
    assert s["skipped"] == 3
    assert s["skipped_by_reason"] == {"folder-marker": 1, "identical": 1, "invalid-name": 1}
    text = lakeshift(*args, "--progress", "none", env=cli_env)
    assert "(1 folder marker, 1 identical, 1 invalid name)" in text.stdout, text.stdout
    never = lakeshift(*args, "--overwrite", "never", "--json", env=cli_env)
    assert json.loads(never.stdout)["skipped_by_reason"] == {
        "exists": 1, "folder-marker": 1, "invalid-name": 1}


def _plan_and_run(cli_env: dict[str, str], src: str, dst: str, db: str,
                  job: str = "j") -> None:
    p = lakeshift("plan", src, dst, "--job", job, "--db", db, env=cli_env)
    assert p.returncode == 0, p.stderr
    r = lakeshift("run", "--job", job, "--db", db, "--progress", "none", env=cli_env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_rerun_of_a_finished_job_says_there_is_nothing_to_do(
        cli_env: dict[str, str], tmp_path: Path, container: str) -> None:
    src = _local_source(tmp_path, {"a.txt": 3})
    db = f"sqlite:///{tmp_path}/j.db"
    _plan_and_run(cli_env, str(src), f"az://{container}/done/", db)
    p = lakeshift("run", "--job", "j", "--db", db, env=cli_env)
    assert p.returncode == 0, p.stderr
    assert "nothing to do" in p.stdout and "every partition has succeeded" in p.stdout
    j = lakeshift("run", "--job", "j", "--db", db, "--json", env=cli_env)
    assert j.returncode == 0 and json.loads(j.stdout)["nothing_to_do"] is True


def test_status_cuts_a_long_error_at_a_word(cli_env: dict[str, str], tmp_path: Path,
                                            container: str) -> None:
    src = _local_source(tmp_path, {"a.txt": 3})
    db_path = tmp_path / "s.db"
    p = lakeshift("plan", str(src), f"az://{container}/s/", "--job", "j", "--db",
                  f"sqlite:///{db_path}", env=cli_env)
    assert p.returncode == 0, p.stderr
    error = "error at xy: " + " ".join(f"{i:04d}wxyzuv" for i in range(40))
    assert error[:120].endswith("0009wxyz")  # a plain cut lands mid-word
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE lakeshift_partitions SET state = 'failed', last_error = ?",
                     (error,))
    text = lakeshift("status", "--job", "j", "--db", f"sqlite:///{db_path}", env=cli_env)
    assert text.returncode == 0, text.stderr
    words = re.findall(r"\d{4}w[a-z]*", text.stdout)
    assert words and all(w.endswith("wxyzuv") for w in words), words
    assert "…" in text.stdout
    js = lakeshift("status", "--job", "j", "--db", f"sqlite:///{db_path}", "--json",
                   env=cli_env)
    assert json.loads(js.stdout)["jobs"][0]["partition_table"][0]["last_error"] == error


def test_failures_with_none_says_so(cli_env: dict[str, str], tmp_path: Path,
                                    container: str) -> None:
    src = _local_source(tmp_path, {"a.txt": 3})
    db = f"sqlite:///{tmp_path}/f.db"
    _plan_and_run(cli_env, str(src), f"az://{container}/f/", db)
    p = lakeshift("failures", "--job", "j", "--db", db, env=cli_env)
    assert p.returncode == 0, p.stderr
    assert "job 'j' has no failed or skipped objects" in p.stderr
    assert p.stdout.strip() == "object_key,error_kind,message,attempts,skipped,at," \
                               "partition_id,run_id"  # still a CSV
    out = tmp_path / "f.csv"
    c = lakeshift("failures", "--job", "j", "--db", db, "--csv", str(out), env=cli_env)
    assert c.returncode == 0 and "no failed or skipped objects" in c.stdout


def test_errors_are_json_objects_under_json(cli_env: dict[str, str], tmp_path: Path) -> None:
    usage = lakeshift("copy", "s3:/bad", str(tmp_path / "x"), "--json", env=cli_env)
    assert usage.returncode == 2
    line = one_clear_line(usage)
    err = json.loads(usage.stdout)["error"]
    assert err["kind"] == "usage" and err["exit_code"] == 2
    assert err["message"] in line and "malformed URL" in err["message"]
    env = {k: v for k, v in cli_env.items() if not k.startswith("AWS_ACCESS")}
    env.pop("AWS_SECRET_ACCESS_KEY")
    auth = lakeshift("copy", "s3://whatever-bucket/", str(tmp_path / "o"), "--json", env=env)
    assert auth.returncode == 3
    assert json.loads(auth.stdout)["error"]["kind"] == "auth"
    flag = lakeshift("status", "--json", "--no-such-flag", env=cli_env)
    assert flag.returncode == 2 and json.loads(flag.stdout)["error"]["exit_code"] == 2
    plain = lakeshift("copy", "s3:/bad", str(tmp_path / "x"), env=cli_env)
    assert plain.returncode == 2 and plain.stdout == ""


def test_verify_report_in_a_new_folder(cli_env: dict[str, str], tmp_path: Path,
                                       container: str) -> None:
    src = _local_source(tmp_path, {"a.txt": 3, "b.txt": 4})
    dst = f"az://{container}/v/"
    assert lakeshift("copy", str(src), dst, env=cli_env).returncode == 0
    report = tmp_path / "reports" / "2024" / "raw"
    p = lakeshift("verify", str(src), dst, "--report", str(report), env=cli_env)
    assert p.returncode == 0, p.stderr
    assert "2 objects checked" in p.stdout
    assert json.loads((tmp_path / "reports/2024/raw.json").read_text())["verified"] == 2
    assert (tmp_path / "reports/2024/raw.csv").read_text().startswith("name,kind")


def test_verify_with_a_rejected_key_leaves_no_report(cli_env: dict[str, str], azurite: Any,
                                                     tmp_path: Path) -> None:
    src = _local_source(tmp_path, {"a.txt": 3})
    env = dict(cli_env, AZURE_STORAGE_CONNECTION_STRING=servers.azurite_connection_string(
        azurite.port, key="V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="))
    p = lakeshift("verify", str(src), "az://some-container/", "--report",
                  str(tmp_path / "out" / "r"), env=env)
    assert p.returncode == 3, p.stderr
    assert "credentials rejected" in one_clear_line(p)
    assert not (tmp_path / "out").exists()
    q = lakeshift("verify", str(src), "az://some-container/", "--report",
                  str(tmp_path / "r"), env=env)
    assert q.returncode == 3
    assert not list(tmp_path.glob("r.*"))


def _init(args: list[str], answers: list[str], env: dict[str, str]
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "init", *args], input="\n".join(answers) + "\n",
                          env=env, capture_output=True, text=True, timeout=60)


def test_init_asks_again_for_a_number(cli_env: dict[str, str], tmp_path: Path) -> None:
    before = ["/data/in", "/data/out", "n", "none", "job1", f"sqlite:///{tmp_path}/i.db"]
    out = tmp_path / "new" / "folder" / "lakeshift.toml"
    p = _init(["-o", str(out)], [*before, "four", "0", "4", "many", "8", "sometimes", "once"],
              cli_env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("a whole number of at least 1") == 3
    text = out.read_text()  # the missing folders were created
    assert "batch_count = 4" in text and "concurrency = 8" in text
    assert 'schedule = "once"' in text
    # Answers that run out after a wrong one: that answer is the error.
    bad = _init(["-o", str(tmp_path / "b.toml")], [*before, "four"], cli_env)
    assert bad.returncode == 2
    assert "'four'" in one_clear_line(bad) and "whole number" in bad.stderr
    assert not (tmp_path / "b.toml").exists()


def test_init_refuses_a_path_it_cannot_write_before_asking(cli_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    p = _init(["-o", str(tmp_path / "a-file" / "lakeshift.toml")], ["/data/in"], cli_env)
    assert p.returncode == 2
    assert "is not a folder you can write to" in one_clear_line(p)
    assert "Source URL" not in p.stdout  # refused before the first question


def test_plan_that_fails_leaves_no_db_and_no_job(cli_env: dict[str, str], tmp_path: Path,
                                                 container: str) -> None:
    db_file = tmp_path / "p.db"
    db = f"sqlite:///{db_file}"
    missing = lakeshift("plan", str(tmp_path / "no" / "such-dir"), f"az://{container}/p/",
                        "--job", "j", "--db", db, env=cli_env)
    assert missing.returncode == 2 and "does not exist" in one_clear_line(missing)
    auto = lakeshift("plan", "s3://no-such-bucket-plan/", f"az://{container}/p/", "--job", "j",
                     "--db", db, "--partition-by", "auto", env=cli_env)
    assert auto.returncode == 2 and "bucket does not exist" in one_clear_line(auto)
    bad = lakeshift("plan", str(tmp_path), f"az://{container}/p/", "--job", "j", "--db", db,
                    "--overwrite", "sometimes", env=cli_env)
    assert bad.returncode == 2
    assert not list(tmp_path.glob("p.db*"))
    # In a DB that exists, a failing plan writes no job.
    src = _local_source(tmp_path, {"a.txt": 1})
    assert lakeshift("plan", str(src), f"az://{container}/p/", "--job", "ok", "--db", db,
                     env=cli_env).returncode == 0
    again = lakeshift("plan", str(tmp_path / "no" / "such-dir"), f"az://{container}/p/", "--job",
                      "j", "--db", db, env=cli_env)
    assert again.returncode == 2
    s = json.loads(lakeshift("status", "--db", db, "--json", env=cli_env).stdout)
    assert [j["job"] for j in s["jobs"]] == ["ok"]


def test_replan_a_job_and_delete_one(cli_env: dict[str, str], tmp_path: Path,
                                     container: str) -> None:
    from lakeshift import delete_job

    src = _local_source(tmp_path, {"a.txt": 1, "b.txt": 2})
    db = f"sqlite:///{tmp_path}/r.db"
    dst = f"az://{container}/re/"
    _plan_and_run(cli_env, str(src), dst, db)
    again = lakeshift("plan", str(src), dst, "--job", "j", "--db", db, env=cli_env)
    assert again.returncode == 2 and "--replan" in one_clear_line(again)
    # Without SRC DST: the same partitions, from the start.
    p = lakeshift("plan", "--job", "j", "--db", db, "--replan", "--json", env=cli_env)
    assert p.returncode == 0, p.stderr
    assert [x["state"] for x in json.loads(p.stdout)["partition_table"]] == ["pending"]
    r = lakeshift("run", "--job", "j", "--db", db, "--json", env=cli_env)
    s = json.loads(r.stdout)
    assert (s["nothing_to_do"], s["partitions_succeeded"], s["skipped"]) == (False, 1, 2)
    # With SRC DST: the new plan replaces the old one.
    (tmp_path / "o").mkdir()
    other = _local_source(tmp_path / "o", {"c.txt": 3})
    q = lakeshift("plan", str(other), dst, "--job", "j", "--db", db, "--replan", "--json",
                  env=cli_env)
    assert q.returncode == 0, q.stderr
    assert [x["source"][-7:] for x in json.loads(q.stdout)["partition_table"]] == ["/o/src/"]
    delete_job("j", db=db)
    st = lakeshift("status", "--db", db, "--json", env=cli_env)
    assert json.loads(st.stdout)["jobs"] == []


def test_runs_are_numbered_per_job(cli_env: dict[str, str], tmp_path: Path,
                                   container: str) -> None:
    src = _local_source(tmp_path, {"a.txt": 1})
    db = f"sqlite:///{tmp_path}/n.db"
    _plan_and_run(cli_env, str(src), f"az://{container}/n1/", db, job="one")
    _plan_and_run(cli_env, str(src), f"az://{container}/n2/", db, job="two")
    r = lakeshift("run", "--job", "two", "--db", db, env=cli_env)
    assert r.stdout.startswith("Job 'two': nothing to do")
    j = lakeshift("run", "--job", "two", "--db", db, "--json", env=cli_env)
    assert json.loads(j.stdout)["run_number"] == 3  # the job's third run, the DB's fifth
    st = lakeshift("status", "--job", "two", "--db", db, env=cli_env)
    assert [ln.split()[1] for ln in st.stdout.splitlines() if ln.startswith("  run ")] == \
        ["3", "2", "1"]
    runs = json.loads(lakeshift("status", "--job", "two", "--db", db, "--json",
                                env=cli_env).stdout)["jobs"][0]["runs"]
    assert [x["number"] for x in runs] == [3, 2, 1]
