"""ADLS Gen1 and Hadoop HDFS sources end to end: the CLI as a user runs it, against the
WebHDFS double (tests/doubles/webhdfs.py) and Azurite."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tests.doubles.fixtures import GEN1_HOST
from tests.doubles.webhdfs import WebHdfsDouble
from tests.e2e.cli import lakeshift, one_clear_line
from tests.helpers import blob_bytes, blobs

MiB = 1024 * 1024


def _tree(double: WebHdfsDouble) -> dict[str, bytes]:
    files = {
        "lake/raw/2024/01/a.csv": b"id,v\n1,a\n",
        "lake/raw/2024/01/b.csv": b"id,v\n2,b\n",
        "lake/raw/2024/02/deep/c.json": b'{"c": 3}',
        "lake/raw/2024-summary.txt": b"summary",
        "lake/raw/big.bin": os.urandom(5 * MiB + 12345),  # > block size: parallel ranges
        "lake/raw/z.txt": b"last",
    }
    for k, v in files.items():
        double.write(k, v)
    (double.root / "lake/raw/empty").mkdir(parents=True)
    return files


def _env(cli_env: dict[str, str], double: WebHdfsDouble) -> dict[str, str]:
    return {**cli_env, **double.env}


def test_gen1_tree_copies_to_blob_and_verifies(cli_env: dict[str, str], gen1: WebHdfsDouble,
                                               blob_service: Any, container: str,
                                               tmp_path: Path) -> None:
    files = _tree(gen1)
    env = _env(cli_env, gen1)
    src = f"adl://{GEN1_HOST}/lake/raw/"
    p = lakeshift("copy", src, f"az://{container}/gen2/",
                  "--block-size", "1MiB", "--concurrency", "4", "--folder-markers", "keep",
                  "--json", env=env)
    assert p.returncode == 0, p.stderr
    got = blobs(blob_service, container, "gen2/")
    for k, v in files.items():
        name = "gen2/" + k.removeprefix("lake/raw/")
        assert blob_bytes(blob_service, container, name) == v, name
    # The large file went as parallel ranged OPENs (offset/length), and Azure holds its MD5.
    opens = [q for op, path, q in gen1.requests if op == "OPEN" and path.endswith("big.bin")]
    assert len(opens) > 1 and all("length" in q for q in opens)
    big = got["gen2/big.bin"]
    assert bytes(big.content_settings.content_md5) == hashlib.md5(
        files["lake/raw/big.bin"]).digest()
    # The empty folder is kept as a folder marker (--folder-markers keep).
    assert got["gen2/empty"].metadata.get("hdi_isfolder") == "true"
    # Gen1 listings were paged with listSize (every LISTSTATUS asked for a bounded batch).
    assert all("listSize" in q for op, _, q in gen1.requests if op == "LISTSTATUS")
    v = lakeshift("verify", src, f"az://{container}/gen2/", "--json",
                  "--report", str(tmp_path / "verify"), env=env)
    assert v.returncode == 0, (v.stdout, v.stderr)
    again = lakeshift("copy", src, f"az://{container}/gen2/", "--json",
                      env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["copied"] == 0


def test_gen1_plan_auto_partitions_and_run(cli_env: dict[str, str], gen1: WebHdfsDouble,
                                           blob_service: Any, container: str,
                                           tmp_path: Path) -> None:
    for d in ("x", "y"):
        for i in range(9):
            gen1.write(f"data/{d}/f{i:02d}.bin", f"{d}{i}".encode())
    env = _env(cli_env, gen1)
    db = f"sqlite:///{tmp_path}/gen1.db"
    p = lakeshift("plan", f"adl://{GEN1_HOST}/data/", f"az://{container}/p/", "--job", "g1",
                  "--db", db, "--partition-by", "auto", "--target-objects", "4", "--json",
                  env=env)
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["partition_table"]) >= 4
    r = lakeshift("run", "--job", "g1", "--db", db, "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["copied"] == 18
    assert len(blobs(blob_service, container, "p/")) == 18


def test_forbidden_subtree_is_skipped_and_recorded(cli_env: dict[str, str],
                                                   gen1: WebHdfsDouble, container: str,
                                                   blob_service: Any, tmp_path: Path) -> None:
    gen1.write("t/open/a.txt", b"a")
    gen1.write("t/secret/s.txt", b"s")
    gen1.write("t/z.txt", b"z")
    gen1.forbidden.add("t/secret")
    env = _env(cli_env, gen1)
    src = f"adl://{GEN1_HOST}/t/"
    failed = lakeshift("copy", src, f"az://{container}/f1/", "--json",
                       env=env)
    assert failed.returncode == 1
    p = lakeshift("copy", src, f"az://{container}/f2/", "--json",
                  "--skip-errors", "forbidden", env=env)
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["copied"] == 2
    assert set(blobs(blob_service, container, "f2/")) == {"f2/open/a.txt", "f2/z.txt"}
    assert "t/secret" in p.stdout and "AccessControlException" in p.stdout

    # verify: the subtree the source refused is reported as forbidden, not as missing.
    report = tmp_path / "v"
    v = lakeshift("verify", src, f"az://{container}/f2/", "--json", "--report", str(report),
                  env=env)
    assert v.returncode == 0, (v.stdout, v.stderr)
    got = json.loads(v.stdout)
    assert got["missing"] == 0 and got["unverifiable"] == 1, got
    reason, = got["unverifiable_reasons"]
    assert reason.startswith("forbidden at the source"), reason
    rows = (report.with_suffix(".csv")).read_text()
    assert "secret" in rows and "AccessControlException" in rows


def test_hadoop_copy_follows_the_datanode_redirect(cli_env: dict[str, str],
                                                   hadoop: WebHdfsDouble, container: str,
                                                   blob_service: Any) -> None:
    files = _tree(hadoop)
    env = _env(cli_env, hadoop)
    p = lakeshift("copy", "webhdfs://namenode:9870/lake/raw/", f"az://{container}/h/",
                  "--block-size", "1MiB", "--json", env=env)
    assert p.returncode == 0, p.stderr
    for k, v in files.items():
        assert blob_bytes(blob_service, container, "h/" + k.removeprefix("lake/raw/")) == v
    # Listed in batches of 3 (LISTSTATUS_BATCH + startAfter), read from the DataNode.
    assert any("startAfter" in q for op, _, q in hadoop.requests if op == "LISTSTATUS_BATCH")
    assert all(q.get("user.name") == "migrator" for _, _, q in hadoop.requests)
    assert any("namenoderpcaddress" in q for op, _, q in hadoop.requests if op == "OPEN")


def test_bad_gen1_input_is_one_clear_line(cli_env: dict[str, str], gen1: WebHdfsDouble,
                                          tmp_path: Path) -> None:
    env = _env(cli_env, gen1)
    # No credentials at all: exit 3, naming what to set.
    p = lakeshift("copy", f"adl://{GEN1_HOST}/x/", str(tmp_path / "o"),
                  env={k: v for k, v in env.items() if k != "LAKESHIFT_ADL_AUTH"})
    assert p.returncode == 3 and "AZURE_CLIENT_ID" in one_clear_line(p)
    # A path that does not exist: exit 2.
    p = lakeshift("copy", f"adl://{GEN1_HOST}/nope/", str(tmp_path / "o"), env=env)
    assert p.returncode == 2 and "no such file or directory" in one_clear_line(p)
    # Unreachable account (nothing listens there): exit 2, one line naming the endpoint and
    # the setting, after the one notice that it was tried again (stores/reach.py).
    env2 = {**env, "LAKESHIFT_WEBHDFS_ENDPOINT": "http://127.0.0.1:9"}
    p = lakeshift("copy", f"adl://{GEN1_HOST}/x/", str(tmp_path / "o"),
                  env=env2)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    notice, line = p.stderr.strip().splitlines()
    assert notice == ("lakeshift: no answer from http://127.0.0.1:9 yet (connection refused); "
                      "trying again…")
    assert line.startswith("lakeshift: cannot reach the ADLS Gen1 endpoint "
                           "http://127.0.0.1:9: connection refused (3 tries in "), line
    assert line.endswith("check LAKESHIFT_WEBHDFS_ENDPOINT, the network and any firewall")
    # A token the service refuses: exit 3, and the token is never printed.
    gen1.token = "another-token"
    p = lakeshift("copy", f"adl://{GEN1_HOST}/x/", str(tmp_path / "o"),
                  env=env)
    assert p.returncode == 3 and "gen1-test-token" not in p.stderr + p.stdout
    one_clear_line(p)
    # Not a Gen1 host: exit 2.
    p = lakeshift("copy", "adl://acct.example.com/x", str(tmp_path / "o"), env=env)
    assert p.returncode == 2 and "adl://ACCOUNT.azuredatalakestore.net" in one_clear_line(p)


def test_a_remote_exception_fails_its_file_with_the_servers_words(
        cli_env: dict[str, str], hadoop: WebHdfsDouble, tmp_path: Path) -> None:
    """An exception the client has no rule for (here IllegalArgumentException on OPEN) is
    that file's recorded failure (exit 1), not an internal error (exit 4)."""
    hadoop.write("r/good.txt", b"good")
    hadoop.write("r/odd.txt", b"odd")
    hadoop.refused_reads["r/odd.txt"] = "IllegalArgumentException"
    p = lakeshift("copy", "webhdfs://nn:9870/r/", str(tmp_path / "out"), "--json",
                  env=_env(cli_env, hadoop))
    assert p.returncode == 1, (p.stdout, p.stderr)
    summary = json.loads(p.stdout)
    assert summary["copied"] == 1 and summary["failed"] == 1
    [failure] = summary["failures"]
    assert failure["key"] == "r/odd.txt"
    assert "IllegalArgumentException: cannot open /r/odd.txt" in failure["message"]
    assert (tmp_path / "out" / "good.txt").read_bytes() == b"good"
