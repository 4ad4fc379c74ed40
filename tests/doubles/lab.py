"""A Gen1/HDFS → ADLS Gen2 lab on this machine: ``python -m tests.doubles.lab``.

No ADLS Gen1 account (retired in 2024) or Hadoop cluster runs here, and Azurite has no DFS
endpoint, so the lab starts the project's doubles on free loopback ports and prints what a
user needs to point lakeshift at them:

* the WebHDFS double (tests/doubles/webhdfs.py) twice: the **Gen1** dialect (``adl://`` URLs,
  OAuth bearer token, ``listSize``/``listAfter`` paging) and the **Hadoop** dialect
  (``webhdfs://`` URLs, ``user.name``, ``LISTSTATUS_BATCH``, NameNode → DataNode redirect);
* Azurite's blob service behind the DFS double (tests/doubles/dfs.py): one **ADLS Gen2**
  account with a hierarchical namespace (directories and ACLs on the DFS endpoint);
* an ``az`` stand-in on PATH that hands out the Gen1 double's token, as ``az account
  get-access-token`` does (``LAKESHIFT_ADL_AUTH=cli``).

Both sources hold a small lake: nested and empty folders, a file larger than a block, owners,
permission bits and ACLs (Gen1: object IDs of one tenant; Hadoop: names), and ``ids.csv`` maps
every principal to the Gen2 tenant's object IDs.  ``--env-file FILE`` writes the environment
as ``export`` lines (``. FILE`` in a shell); the lab runs until Ctrl-C / SIGTERM, then stops
Azurite by its PID and removes its folder.  ``--demo`` (``make demo-gen1``) instead runs a
Gen1 → Gen2 migration with ACLs on it — scan, copy with ``--preserve``, verify — checks the
copy independently (the Azure SDKs, not lakeshift) and stops.  docs/gen1-migration.md "Try
it on the lab" shows the commands; tests/test_gen1_lab_doc.py runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests import servers
from tests.doubles import dfs, webhdfs

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
#: What the lab's URLs look like; LAKESHIFT_WEBHDFS_ENDPOINT sends them to the doubles.
GEN1_URL = "adl://lab.azuredatalakestore.net"
HADOOP_URL = "webhdfs://namenode:9870"
FILESYSTEM = "gen2"

# The Gen1 tenant's object IDs and the Gen2 tenant's (they differ: ids.csv maps them).
SRC_OWNER, DST_OWNER = (f"{t}-0000-4000-8000-000000000001" for t in ("11111111", "aaaaaaaa"))
SRC_TEAM, DST_TEAM = (f"{t}-0000-4000-8000-000000000002" for t in ("11111111", "aaaaaaaa"))
SRC_ALICE, DST_ALICE = (f"{t}-0000-4000-8000-000000000003" for t in ("11111111", "aaaaaaaa"))
DST_HDFS = "aaaaaaaa-0000-4000-8000-000000000004"


@dataclass
class Lab:
    workdir: Path
    gen1: webhdfs.WebHdfsDouble
    hadoop: webhdfs.WebHdfsDouble
    gen2: dfs.DfsDouble
    env: dict[str, str] = field(default_factory=dict)

    def banner(self) -> str:
        e = self.env
        return "\n".join([
            "lakeshift lab: ready (Ctrl-C stops it)",
            f"  ADLS Gen1 (WebHDFS, OAuth)  {GEN1_URL}/lake/   → {e['LAB_GEN1_ENDPOINT']}",
            f"  Hadoop HDFS (WebHDFS)       {HADOOP_URL}/lake/  → {e['LAB_HADOOP_ENDPOINT']}",
            "                              (with LAKESHIFT_WEBHDFS_ENDPOINT="
            "$LAB_HADOOP_ENDPOINT)",
            f"  ADLS Gen2 (blob + DFS)      az://{FILESYSTEM}/       → {self.gen2.endpoint}",
            f"  identity map                {e['LAB_IDS']}",
            "environment (or --env-file FILE, then `. FILE`):",
            *(f"  export {k}={shlex.quote(v)}" for k, v in self.env.items()),
        ])

    def env_file_text(self) -> str:
        lines = [f"export {k}={shlex.quote(v)}" for k, v in self.env.items() if k != "PATH"]
        lines.append(f'export PATH={shlex.quote(self.env["PATH"].split(os.pathsep, 1)[0])}'
                     f'{os.pathsep}{shlex.quote(str(_venv_bin()))}{os.pathsep}"$PATH"')
        return "\n".join(lines) + "\n"


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _fake_az(bin_dir: Path, token: str) -> None:
    """An ``az`` that answers ``az account get-access-token --resource …datalake…`` as the
    Azure CLI does, with a token valid for an hour from each call."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "az"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys, time\n"
        "if 'get-access-token' not in sys.argv:\n"
        "    sys.exit('lakeshift lab: this az only hands out the Gen1 double\\'s token')\n"
        f"print(json.dumps({{'accessToken': {token!r}, 'tokenType': 'Bearer', "
        "'expires_on': int(time.time()) + 3600}))\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def seed(gen1: webhdfs.WebHdfsDouble, hadoop: webhdfs.WebHdfsDouble) -> dict[str, bytes]:
    """The same small lake in both sources (keys relative to the source root)."""
    files = {"lake/raw/2024/01/a.csv": b"id,v\n1,a\n", "lake/raw/2024/02/b.csv": b"id,v\n2,b\n",
             "lake/curated/sales.parquet": bytes(range(256)) * 40,
             "lake/big.bin": os.urandom(3 * MiB + 777), "lake/README.txt": b"lab lake\n"}
    for double in (gen1, hadoop):
        for k, v in files.items():
            double.write(k, v)
        (double.root / "lake/empty").mkdir(parents=True, exist_ok=True)
        (double.root / "lake/raw/2024/03/staging").mkdir(parents=True, exist_ok=True)
    gen1.owners["lake/curated"] = (SRC_OWNER, SRC_TEAM, "750")
    gen1.acls["lake/curated"] = [f"user:{SRC_ALICE}:r-x", "group::r-x", "default:user::rwx",
                                 f"default:user:{SRC_ALICE}:r-x", "default:group::r-x",
                                 "default:mask::r-x", "default:other::---"]
    gen1.owners["lake/curated/sales.parquet"] = (SRC_OWNER, SRC_TEAM, "640")
    gen1.acls["lake/curated/sales.parquet"] = [f"user:{SRC_ALICE}:r--", "group::r--"]
    gen1.owners["lake/empty"] = (SRC_ALICE, SRC_TEAM, "700")
    hadoop.owners["lake/curated"] = ("hdfs", "analysts", "750")
    hadoop.acls["lake/curated"] = ["user:alice:r-x", "group::r-x"]
    hadoop.owners["lake/curated/sales.parquet"] = ("alice", "analysts", "640")
    return files


def identity_map() -> str:
    """ids.csv: every principal of both sources → the Gen2 tenant's object IDs."""
    return ("source,destination\n# Gen1 tenant object IDs → Gen2 tenant object IDs\n"
            f"{SRC_OWNER},{DST_OWNER}\ngroup:{SRC_TEAM},{DST_TEAM}\n"
            f"user:{SRC_ALICE},{DST_ALICE}\n"
            f"{webhdfs.GEN1_OWNER},{DST_OWNER}\ngroup:{webhdfs.GEN1_GROUP},{DST_TEAM}\n"
            "# HDFS names → Gen2 tenant object IDs\n"
            f"user:alice,{DST_ALICE}\ngroup:analysts,{DST_TEAM}\nuser:hdfs,{DST_HDFS}\n"
            f"group:supergroup,{DST_TEAM}\n")


@contextmanager
def lab(workdir: Path | None = None) -> Iterator[Lab]:
    """Start everything; stop it (Azurite by PID) and remove the folder on the way out."""
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix="lakeshift-lab-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if own:
            stack.callback(shutil.rmtree, work, True)
        azurite = servers.start_azurite()
        stack.callback(azurite.stop)
        gen2 = stack.enter_context(dfs.serve(azurite.port))
        (work / "gen1").mkdir(exist_ok=True)
        (work / "hadoop").mkdir(exist_ok=True)
        gen1 = stack.enter_context(webhdfs.serve(work / "gen1", "gen1"))
        hadoop = stack.enter_context(webhdfs.serve(work / "hadoop", "hadoop"))
        seed(gen1, hadoop)
        _fake_az(work / "bin", gen1.token)
        (work / "ids.csv").write_text(identity_map())
        env = {
            "LAB_DIR": str(work), "LAB_IDS": str(work / "ids.csv"),
            "LAB_GEN1_URL": GEN1_URL, "LAB_HADOOP_URL": HADOOP_URL,
            "LAB_GEN1_ENDPOINT": gen1.endpoint, "LAB_HADOOP_ENDPOINT": hadoop.endpoint,
            "LAKESHIFT_WEBHDFS_ENDPOINT": gen1.endpoint, "LAKESHIFT_ADL_AUTH": "cli",
            "HADOOP_USER_NAME": "migrator",
            "AZURE_STORAGE_CONNECTION_STRING": gen2.connection_string(),
            "AZURE_STORAGE_DFS_ENDPOINT": gen2.endpoint,
            "PATH": f"{work / 'bin'}{os.pathsep}{_venv_bin()}{os.pathsep}"
                    f"{os.environ.get('PATH', '')}",
        }
        yield Lab(work, gen1, hadoop, gen2, env)


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    print("$ lakeshift " + " ".join(shlex.quote(a) for a in args), flush=True)
    p = subprocess.run([str(_venv_bin() / "lakeshift"), *args], env=env, text=True,
                       capture_output=True, timeout=300)
    sys.stdout.write(p.stdout)
    sys.stderr.write(p.stderr)
    return p


def demo(lab_: Lab) -> int:
    """A Gen1 → Gen2 migration with ACLs on the lab, checked with the Azure SDKs."""
    from azure.storage.blob import BlobServiceClient
    from azure.storage.filedatalake import DataLakeServiceClient

    env = {**servers.clean_env(), **lab_.env}
    src, dst = f"{GEN1_URL}/lake/", f"az://{FILESYSTEM}/lake/"
    steps = [("scan", src, f"az://{FILESYSTEM}/", "--no-calibrate"),
             ("copy", src, dst, "--preserve", "acl,owner,group,permissions",
              "--map-identities", lab_.env["LAB_IDS"], "--block-size", "1MiB"),
             ("verify", src, dst, "--report", str(lab_.workdir / "verify"))]
    for step in steps:
        if _run(env, *step).returncode != 0:
            print(f"demo-gen1: `lakeshift {step[0]}` failed", file=sys.stderr)
            return 1
    blobs = BlobServiceClient.from_connection_string(lab_.gen2.connection_string())
    fs = blobs.get_container_client(FILESYSTEM)
    for rel in ("raw/2024/01/a.csv", "curated/sales.parquet", "big.bin", "README.txt"):
        want = (lab_.gen1.root / "lake" / rel).read_bytes()
        if fs.get_blob_client(f"lake/{rel}").download_blob().readall() != want:
            print(f"demo-gen1: lake/{rel} differs", file=sys.stderr)
            return 1
    dl = DataLakeServiceClient.from_connection_string(lab_.gen2.connection_string())
    got = dl.get_file_system_client(FILESYSTEM).get_directory_client(
        "lake/curated").get_access_control()
    want_acl = (f"user::rwx,user:{DST_ALICE}:r-x,group::r-x,mask::r-x,other::---,"
                f"default:user::rwx,default:user:{DST_ALICE}:r-x,default:group::r-x,"
                "default:mask::r-x,default:other::---")
    if (got["owner"], got["group"], got["acl"]) != (DST_OWNER, DST_TEAM, want_acl):
        print(f"demo-gen1: ACL of lake/curated read back as {json.dumps(got, default=str)}",
              file=sys.stderr)
        return 1
    empty = dl.get_file_system_client(FILESYSTEM).get_directory_client("lake/empty")
    if empty.get_access_control()["owner"] != DST_ALICE:
        print("demo-gen1: the empty directory's owner was not mapped", file=sys.stderr)
        return 1
    print("demo-gen1: OK — files equal, empty directories made, ACLs mapped to the Gen2 "
          "tenant (read back with azure-storage-file-datalake)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.doubles.lab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env-file", type=Path, help="also write the environment as export "
                                                  "lines (`. FILE` in a shell)")
    ap.add_argument("--demo", action="store_true", help="run a Gen1 → Gen2 migration with "
                                                        "ACLs on the lab, check it, stop")
    args = ap.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with lab() as lab_:
            if args.demo:
                return demo(lab_)
            if args.env_file is not None:
                tmp = args.env_file.with_name(args.env_file.name + ".tmp")
                tmp.write_text(lab_.env_file_text())
                tmp.replace(args.env_file)  # whole or not at all: a reader may be waiting
            print(lab_.banner(), flush=True)
            stop.wait()
            print("lakeshift lab: stopping", flush=True)
    except RuntimeError as e:  # a server that would not start (Azurite missing…)
        print(f"lakeshift lab: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
