"""Shared benchmark helpers: fresh emulators, seeding, measured child processes, rclone config.

Follows ../shared/BENCHMARKING.md: fresh emulators for every measured run, tools interleaved,
emulator CPU read from /proc, client CPU and peak RSS from the child's rusage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import servers  # noqa: E402

LAKESHIFT = str(Path(sys.executable).parent / "lakeshift")
MiB = 1024 * 1024


@dataclass
class Measured:
    tool: str
    wall: float
    cpu: float
    rss_mb: float
    emulator_cpu: float
    returncode: int
    objects: int
    nbytes: int
    moto_cpu: float = 0.0
    azurite_cpu: float = 0.0
    #: Body bytes through the tool, counted by a loopback proxy in front of Azurite (only
    #: in the runs made to count them, never the timed ones: the proxy costs CPU).
    through_mb: float | None = None
    #: The tool's CPU split: user (its own code) and system (the kernel working for it; on
    #: local disk mostly the file system's, which other jobs on the machine disturb).
    user: float = 0.0
    sys: float = 0.0
    #: The last line the tool wrote to stderr (the bare loop: the paths it took).
    said: str = ""
    #: With copy_vs_rclone.py --check: (objects byte-exact at the destination, objects).
    exact: tuple[int, int] | None = None

    def row(self) -> str:
        return (f"{self.tool:<10} {self.wall:7.1f} s {self.objects / self.wall:8.1f} files/s "
                f"{self.nbytes / MiB / self.wall:8.1f} MB/s  cpu {self.cpu:6.1f} s "
                f"(user {self.user:.1f}, sys {self.sys:.1f})  "
                f"rss {self.rss_mb:7.0f} MB  emulators {self.emulator_cpu:6.1f} s "
                f"(moto {self.moto_cpu:.1f}, azurite {self.azurite_cpu:.1f})  "
                f"rc={self.returncode}" + (f"  through the client {self.through_mb:.1f} MB"
                                           if self.through_mb is not None else ""))


#: How moto serves: "keepalive" (bench/moto_keepalive.py: moto's app on werkzeug, connections
#: kept alive as real S3 keeps them) or "close" (``moto_server``: ``Connection: close`` on
#: every response, so every S3 request of either tool opens a TCP connection).
#: ``--moto`` or BENCH_MOTO.
MOTO_MODES = ("keepalive", "close")
MOTO = os.environ.get("BENCH_MOTO", "keepalive")


def start_moto(mode: str | None = None) -> servers.Server:
    """A fresh moto server, served as ``mode`` (MOTO when None) says."""
    mode = mode or MOTO
    if mode not in MOTO_MODES:
        raise SystemExit(f"moto mode {mode!r}: use {' or '.join(MOTO_MODES)}")
    if mode == "close":
        return servers.start_moto()
    workdir = Path(tempfile.mkdtemp(prefix="lakeshift-moto-"))
    port = servers.free_port()
    argv = [sys.executable, str(REPO / "bench" / "moto_keepalive.py"), "-H", "127.0.0.1",
            "-p", str(port)]
    proc, log = servers._spawn("moto", argv, workdir)
    srv = servers.Server("moto", port, proc, workdir, log)
    servers._wait_or_stop(srv, f"http://127.0.0.1:{port}/")
    return srv


#: ``BENCH_AZURITE_PROFILE=DIR``: every Azurite of the bench runs under ``node --cpu-prof``,
#: one numbered folder of DIR per Azurite (in the order they start), each holding the
#: ``.cpuprofile`` Node writes when Azurite stops; ``bench/azurite_profile.py`` reads them.
#: (Profiling costs Azurite some CPU: compare profiled runs with profiled runs only.)
AZURITE_PROFILE = os.environ.get("BENCH_AZURITE_PROFILE", "")
_PROFILED = [0]


def azurite_profile_args() -> list[str] | None:
    """Node's options for the next Azurite: its CPU profile in the next numbered folder of
    BENCH_AZURITE_PROFILE; None when that is not set."""
    if not AZURITE_PROFILE:
        return None
    _PROFILED[0] += 1
    out = Path(AZURITE_PROFILE) / f"{_PROFILED[0]:03d}"
    out.mkdir(parents=True, exist_ok=True)
    return ["--cpu-prof", f"--cpu-prof-dir={out}"]


#: ``BENCH_AZURITE_MEMORY=1``: every Azurite keeps its blobs in memory
#: (``--inMemoryPersistence``): no extent file written and read back per block, which is
#: the emulator's own cost, not the service's.  Report such runs as their own series.
AZURITE_MEMORY = os.environ.get("BENCH_AZURITE_MEMORY", "") not in ("", "0")


class Emulators:
    """A fresh moto + Azurite pair (new, empty data directories); with ``tls`` Azurite
    serves HTTPS with a throw-away CA that both tools are told to trust (lakeshift through
    SSL_CERT_FILE, rclone through --ca-cert), as a real Azure endpoint is reached.  moto
    serves as ``MOTO`` says (kept-alive connections by default)."""

    def __init__(self, azure: bool = True, tls: bool = False) -> None:
        self.moto = start_moto()
        try:
            self.azurite = servers.start_azurite(
                tls=tls, node_args=azurite_profile_args(), in_memory=AZURITE_MEMORY) \
                if azure else None
        except BaseException:  # a failed Azurite start leaves no moto running
            self.moto.stop()
            raise
        self.tls = tls and azure
        self.env = servers.clean_env()
        self.env.update({
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.moto.port}",
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_REGION": "us-east-1"})
        if self.azurite:
            scheme = "https" if self.tls else "http"
            self.env["AZURE_STORAGE_CONNECTION_STRING"] = servers.azurite_connection_string(
                self.azurite.port, scheme=scheme)
            if self.tls:
                self.env["SSL_CERT_FILE"] = str(self.ca_file())

    def ca_file(self) -> Path:
        assert self.azurite is not None
        return self.azurite.workdir / "ca.pem"

    def azure_url(self) -> str:
        assert self.azurite is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.azurite.port}/{servers.AZURITE_ACCOUNT}"

    def s3(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.env["AWS_ENDPOINT_URL"],
                            region_name="us-east-1", aws_access_key_id="bench",
                            aws_secret_access_key="bench-secret",
                            config=Config(max_pool_connections=32))

    def emulator_cpu(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(moto, Azurite) CPU seconds so far."""
        return (self.moto.cpu_seconds(),
                self.azurite.cpu_seconds() if self.azurite is not None else 0.0)

    def rclone_config(self) -> Path:
        from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

        assert self.azurite is not None
        sas = generate_account_sas(servers.AZURITE_ACCOUNT, servers.AZURITE_KEY,
                                   ResourceTypes(service=True, container=True, object=True),
                                   AccountSasPermissions(read=True, write=True, list=True,
                                                         create=True, add=True, delete=True),
                                   datetime.now(UTC) + timedelta(hours=4))
        conf = Path(tempfile.mkdtemp(prefix="lakeshift-bench-")) / "rclone.conf"
        conf.write_text(
            "[az]\ntype = azureblob\n"
            f"sas_url = {self.azure_url()}?{sas}\n\n"
            "[s3]\ntype = s3\nprovider = Other\n"
            f"endpoint = {self.env['AWS_ENDPOINT_URL']}\nforce_path_style = true\n"
            "access_key_id = bench\nsecret_access_key = bench-secret\nregion = us-east-1\n")
        return conf

    def stop(self) -> None:
        for s in (self.moto, self.azurite):
            if s is not None:
                s.stop()


def seed(s3: Any, bucket: str, prefix: str, count: int, size: int, part_size: int = 0) -> None:
    """``count`` objects of ``size`` random bytes; with ``part_size``, uploaded in parts of
    that size (an ETag md5-of-md5s-N, as the AWS CLI writes large files)."""
    import io

    from boto3.s3.transfer import TransferConfig

    s3.create_bucket(Bucket=bucket)
    block = os.urandom(size)

    def put(i: int) -> None:
        body = block if size <= 64 * 1024 else os.urandom(size)
        key = f"{prefix}{i // 1000:03d}/obj-{i:06d}.bin"
        if part_size:
            cfg = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                 use_threads=False)
            s3.upload_fileobj(io.BytesIO(body), bucket, key, Config=cfg)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def settle(seconds: float = 1.0) -> None:
    """Let the seeding's (and the last run's clean-up's) dirty pages reach the disk before a
    measured run, so the kernel's write-back lands in no tool's window."""
    os.sync()
    time.sleep(seconds)


def compiled() -> None:
    """lakeshift's modules byte-compiled, as ``pip install`` leaves them (once per bench)."""
    global _COMPILED
    if not _COMPILED:
        import compileall

        compileall.compile_dir(str(REPO / "src" / "lakeshift"), quiet=1)
        _COMPILED = True


_COMPILED = False


def measure(tool: str, argv: list[str], env: dict[str, str], emus: Emulators, objects: int,
            nbytes: int) -> Measured:
    """Run argv under /usr/bin/time: wall time, the tool's CPU and peak RSS, emulator CPU.

    (rusage from wait4 would be wrong here: a child's ru_maxrss starts from the forking
    parent's RSS, and the parent just seeded the data.)
    """
    compiled()
    # As installed for a user: modules load from their bytecode, not compiled at every
    # start (this machine sets PYTHONDONTWRITEBYTECODE; with it a one-object copy paid
    # ~0.1 s more CPU).
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    moto0, az0 = emus.cpu_split()
    stats = Path(tempfile.mkstemp(prefix="lakeshift-bench-time-")[1])
    t0 = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", str(stats), *argv],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    user, sys_, maxrss_kb = stats.read_text().split()[-3:]
    stats.unlink()
    if proc.returncode != 0:
        print(f"  {tool} failed (rc={proc.returncode}): "
              f"{proc.stderr.decode(errors='replace')[-1500:]}", file=sys.stderr)
    moto1, az1 = emus.cpu_split()
    return Measured(tool, wall, float(user) + float(sys_), int(maxrss_kb) / 1024,
                    moto1 - moto0 + az1 - az0, proc.returncode, objects, nbytes,
                    moto1 - moto0, az1 - az0, user=float(user), sys=float(sys_),
                    said=(proc.stderr.decode(errors="replace").strip().splitlines() or [""])[-1])


def rclone_env(env: dict[str, str], conf: Path) -> dict[str, str]:
    # (rclone is given the CA with --ca-cert: AWS_CA_BUNDLE would stop its s3 backend.)
    out = {k: v for k, v in env.items()
           if not k.startswith(("AWS_", "AZURE_")) and k != "SSL_CERT_FILE"}
    out["RCLONE_CONFIG"] = str(conf)
    return out
