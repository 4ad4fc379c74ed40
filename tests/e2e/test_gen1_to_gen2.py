"""ADLS Gen1 / HDFS → ADLS Gen2 as a user runs it: a tree with nested and empty folders, a
large file and ACLs, copied into a hierarchical account (the DFS double in front of Azurite):
directories are real, `verify` passes, and the ACLs read back through the DFS endpoint (by
azure-storage-file-datalake, not by lakeshift) equal the source's with principals mapped."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from tests.doubles.dfs import DfsDouble
from tests.doubles.fixtures import GEN1_HOST
from tests.doubles.webhdfs import WebHdfsDouble
from tests.e2e.cli import lakeshift

MiB = 1024 * 1024
# Gen1 lives in one tenant, the Gen2 account in another: object IDs differ.
SRC_OWNER, DST_OWNER = (f"{t}-0000-4000-8000-000000000001" for t in ("11111111", "aaaaaaaa"))
SRC_TEAM, DST_TEAM = (f"{t}-0000-4000-8000-000000000002" for t in ("11111111", "aaaaaaaa"))
SRC_ALICE, DST_ALICE = (f"{t}-0000-4000-8000-000000000003" for t in ("11111111", "aaaaaaaa"))
KEPT = "22222222-0000-4000-8000-000000000009"  # an ID the map leaves as it is


def _access(double: DfsDouble, fs: str, path: str) -> dict[str, Any]:
    from azure.storage.filedatalake import DataLakeServiceClient

    service = DataLakeServiceClient.from_connection_string(double.connection_string())
    got = service.get_file_system_client(fs).get_file_client(path).get_access_control()
    return {k: got[k] for k in ("owner", "group", "permissions", "acl")}


def _gen1_tree(gen1: WebHdfsDouble) -> dict[str, bytes]:
    files = {"lake/a/b/c.csv": b"id\n1\n", "lake/a/d.csv": b"id\n2\n",
             "lake/big.bin": os.urandom(3 * MiB + 777), "lake/top.txt": b"top"}
    for k, v in files.items():
        gen1.write(k, v)
    (gen1.root / "lake/empty").mkdir()
    (gen1.root / "lake/a/e/f").mkdir(parents=True)  # nested, empty
    gen1.owners["lake/a"] = (SRC_OWNER, SRC_TEAM, "750")
    gen1.acls["lake/a"] = [f"user:{SRC_ALICE}:r-x", "group::r-x",
                           "default:user::rwx", f"default:user:{SRC_ALICE}:r-x",
                           "default:group::r-x", "default:mask::r-x", "default:other::---"]
    gen1.owners["lake/a/d.csv"] = (SRC_OWNER, SRC_TEAM, "640")
    gen1.acls["lake/a/d.csv"] = [f"user:{SRC_ALICE}:r--", f"user:{KEPT}:rw-", "group::r--"]
    gen1.owners["lake/empty"] = (SRC_ALICE, SRC_TEAM, "700")
    return files


def test_gen1_tree_to_gen2_with_directories_and_acls(cli_env: dict[str, str],
                                                     gen1: WebHdfsDouble, gen2: DfsDouble,
                                                     blob_service: Any, container: str,
                                                     tmp_path: Path) -> None:
    files = _gen1_tree(gen1)
    ids = tmp_path / "ids.csv"
    ids.write_text("source,destination\n# tenant A -> tenant B\n"
                   f"{SRC_OWNER},{DST_OWNER}\ngroup:{SRC_TEAM},{DST_TEAM}\n"
                   f"user:{SRC_ALICE},{DST_ALICE}\n")
    env = {**cli_env, **gen1.env, **gen2.env()}
    src, dst = f"adl://{GEN1_HOST}/lake/", f"az://{container}/g2/"
    p = lakeshift("copy", src, dst, "--block-size", "1MiB", "--concurrency", "4",
                  "--preserve", "acl,owner,group", "--map-identities", str(ids), "--json",
                  env=env)
    assert p.returncode == 0, (p.stdout, p.stderr)
    # Every copied object is counted by its proof: the files by their bytes, the folders
    # (made with their owner and ACL) as folders, as the proof log names them.
    summary = json.loads(p.stdout)
    assert summary["proofs"]["folder"] == summary["copied"] - len(files) > 0, summary
    assert sum(summary["proofs"].values()) == summary["copied"], summary
    for k, v in files.items():
        name = "g2/" + k.removeprefix("lake/")
        assert blob_service.get_blob_client(container, name).download_blob().readall() == v
    big = blob_service.get_blob_client(container, "g2/big.bin").get_blob_properties()
    assert bytes(big.content_settings.content_md5) == hashlib.md5(files["lake/big.bin"]).digest()
    opens = [q for op, path, q in gen1.requests if op == "OPEN" and path.endswith("big.bin")]
    assert len(opens) > 1 and all("length" in q for q in opens)  # parallel ranged OPENs
    # Empty directories were made through the DFS endpoint (Path - Create), nested ones too.
    created = {path for method, fs, path, what in gen2.requests
               if (method, fs, what) == ("PUT", container, "directory")}
    assert created == {"g2/empty", "g2/a/e/f"}
    # The ACLs read back are the source's, principals mapped (KEPT passes as it is).
    assert _access(gen2, container, "g2/a") == {
        "owner": DST_OWNER, "group": DST_TEAM, "permissions": "rwxr-x---+",
        "acl": f"user::rwx,user:{DST_ALICE}:r-x,group::r-x,mask::r-x,other::---,"
               f"default:user::rwx,default:user:{DST_ALICE}:r-x,default:group::r-x,"
               "default:mask::r-x,default:other::---"}
    assert _access(gen2, container, "g2/a/d.csv") == {
        "owner": DST_OWNER, "group": DST_TEAM, "permissions": "rw-r-----+",
        "acl": f"user::rw-,user:{DST_ALICE}:r--,user:{KEPT}:rw-,group::r--,mask::r--,"
               "other::---"}
    assert _access(gen2, container, "g2/empty")["owner"] == DST_ALICE
    assert _access(gen2, container, "g2/empty")["permissions"] == "rwx------"
    v = lakeshift("verify", src, dst, "--json", "--report", str(tmp_path / "v1"), env=env)
    assert v.returncode == 0, (v.stdout, v.stderr)
    # WebHDFS has no MD5 (GETFILECHECKSUM is HDFS's CRC composite): the proof says so.
    # The folders the copy made are proven there as folders: the counts add up to copied.
    assert json.loads(v.stdout)["proofs"] == {"read-md5": len(files),
                                              "folder": summary["proofs"]["folder"]}
    text = lakeshift("verify", src, dst, "--report", str(tmp_path / "v2"), env=env)
    assert "verified (4): read-md5 (its bytes were read and hashed: a source without an MD5" \
        in text.stdout, text.stdout
    assert "verified (2): folder (a folder of the source there as a folder; no bytes to " \
        "prove)" in text.stdout, text.stdout
    as_run = lakeshift("verify", src, dst, "--no-empty-dirs", "--json", "--report",
                       str(tmp_path / "v3"), env=env)
    assert json.loads(as_run.stdout)["proofs"] == {"read-md5": len(files)}, as_run.stdout
    again = lakeshift("copy", src, dst, "--preserve", "acl,owner,group", "--map-identities",
                      str(ids), "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["copied"] == 0, again.stdout


def test_an_unmappable_principal_is_a_recorded_failure(cli_env: dict[str, str],
                                                        hadoop: WebHdfsDouble,
                                                        gen2: DfsDouble, container: str,
                                                        tmp_path: Path) -> None:
    """HDFS principals are names: each must be mapped; one that is not fails its path
    (named in the failure), the rest of the tree is copied with its ACLs."""
    hadoop.write("t/ok.txt", b"ok")
    hadoop.write("t/bobs.txt", b"bob's")
    hadoop.owners["t/ok.txt"] = ("alice", "analysts", "640")
    hadoop.owners["t/bobs.txt"] = ("bob", "analysts", "640")
    ids = tmp_path / "ids.csv"
    ids.write_text(f"user:alice,{DST_ALICE}\ngroup:analysts,{DST_TEAM}\n"
                   f"hdfs,{DST_OWNER}\ngroup:supergroup,{DST_TEAM}\n")
    env = {**cli_env, **hadoop.env, **gen2.env()}
    db = f"sqlite:///{tmp_path}/jobs.db"
    plan = lakeshift("plan", "webhdfs://nn:9870/t/", f"az://{container}/h/", "--job", "h",
                     "--db", db, "--preserve", "owner,group,permissions",
                     "--map-identities", str(ids), env=env)
    assert plan.returncode == 0, plan.stderr
    ids.unlink()  # the map is kept with the job
    r = lakeshift("run", "--job", "h", "--db", db, "--json", env=env)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["unmapped_principals"] == {"user:bob": 1}
    f = lakeshift("failures", "--job", "h", "--db", db, env=env)
    text = f.stdout
    assert "t/bobs.txt" in text and "'bob'" in text and "--map-identities" in text, text
    assert "ok.txt" not in text
    assert _access(gen2, container, "h/ok.txt") == {
        "owner": DST_ALICE, "group": DST_TEAM, "permissions": "rw-r-----",
        "acl": "user::rw-,group::r--,other::---"}
    # bob's file is not written at all (it would keep the service's default access, broader
    # than the source's); planned again with him mapped, the run copies it with his.
    from azure.storage.filedatalake import DataLakeServiceClient
    service = DataLakeServiceClient.from_connection_string(gen2.connection_string())
    assert not service.get_file_system_client(container).get_file_client("h/bobs.txt").exists()
    ids.write_text(f"user:alice,{DST_ALICE}\nuser:bob,bob@contoso.com\n"
                   f"group:analysts,{DST_TEAM}\nhdfs,{DST_OWNER}\n")
    again = lakeshift("plan", "webhdfs://nn:9870/t/", f"az://{container}/h/", "--job", "h",
                      "--db", db, "--replan", "--preserve", "owner,group,permissions",
                      "--map-identities", str(ids), env=env)
    assert again.returncode == 0, again.stderr
    r = lakeshift("run", "--job", "h", "--db", db, "--json", env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert json.loads(r.stdout)["copied"] == 1
    assert _access(gen2, container, "h/bobs.txt")["owner"] == "bob@contoso.com"


def test_the_copy_summary_names_each_unmappable_principal_and_its_count(
        cli_env: dict[str, str], hadoop: WebHdfsDouble, gen2: DfsDouble, container: str,
        tmp_path: Path) -> None:
    for name, owner in (("a", "bob"), ("b", "bob"), ("c", "carol"), ("d", "alice")):
        hadoop.write(f"u/{name}.txt", name.encode())
        hadoop.owners[f"u/{name}.txt"] = (owner, "analysts", "640")
    ids = tmp_path / "ids.csv"
    ids.write_text(f"user:alice,{DST_ALICE}\ngroup:analysts,{DST_TEAM}\n"
                   f"hdfs,{DST_OWNER}\ngroup:supergroup,{DST_TEAM}\n")
    env = {**cli_env, **hadoop.env, **gen2.env()}
    args = ("copy", "webhdfs://nn:9870/u/", f"az://{container}/u/", "--preserve",
            "owner,group", "--map-identities", str(ids))
    p = lakeshift(*args, env=env)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert ("unmappable principals: user:bob (2 paths), user:carol (1 path) — add them to "
            "--map-identities") in p.stdout, p.stdout
    j = lakeshift(*args, "--json", env=env)
    assert json.loads(j.stdout)["unmapped_principals"] == {"user:bob": 2, "user:carol": 1}


def test_preserve_needs_a_hierarchical_destination(cli_env: dict[str, str],
                                                   gen1: WebHdfsDouble, container: str) -> None:
    gen1.write("x/a.txt", b"a")
    env = {**cli_env, **gen1.env}  # Azurite itself: a flat namespace
    p = lakeshift("copy", f"adl://{GEN1_HOST}/x/", f"az://{container}/x/", "--preserve", "acl",
                  env=env)
    assert p.returncode == 2
    assert "hierarchical namespace" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_empty_directories_go_where_directories_are_real(cli_env: dict[str, str],
                                                        hadoop: WebHdfsDouble,
                                                        container: str, blob_service: Any,
                                                        tmp_path: Path) -> None:
    """Local disk gets directories (not empty files named like them); a flat account gets
    hdi_isfolder marker blobs only when --empty-dirs asks; reruns copy nothing."""
    hadoop.write("e/a.txt", b"a")
    (hadoop.root / "e/empty").mkdir()
    (hadoop.root / "e/x/y").mkdir(parents=True)
    env = {**cli_env, **hadoop.env}
    src, out = "webhdfs://nn:9870/e/", tmp_path / "out"
    for attempt in (1, 2):
        p = lakeshift("copy", src, str(out), "--json", env=env)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["copied"] == (3 if attempt == 1 else 0), p.stdout
    assert (out / "empty").is_dir() and (out / "x" / "y").is_dir()
    assert (out / "a.txt").read_bytes() == b"a"
    flat = lakeshift("copy", src, f"az://{container}/flat/", "--json", env=env)
    assert flat.returncode == 0 and json.loads(flat.stdout)["copied"] == 1
    asked = lakeshift("copy", src, f"az://{container}/asked/", "--empty-dirs", "--json",
                      env=env)
    assert asked.returncode == 0 and json.loads(asked.stdout)["copied"] == 3
    props = blob_service.get_blob_client(container, "asked/x/y").get_blob_properties()
    assert props.metadata == {"hdi_isfolder": "true"}
