"""Start and stop the real emulators the tests, the demo and the benchmarks use.

Each server runs on a free loopback port, in its own process group, and is stopped
by PID (never by name).  Used by ``tests/conftest.py``, ``scripts/demo.py`` and ``bench/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    """The host environment without cloud credentials, CA overrides or proxies."""
    drop = ("AWS_", "AZURE_", "LAKESHIFT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY",
              "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """utime+stime of the server process (for benchmarks)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early; log:\n{log.read_text()[-2000:]}")
        try:
            opener.open(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is listening
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} in {timeout}s")


def _spawn(name: str, argv: list[str], workdir: Path,
           env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"{name}.log"
    fh = open(log, "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=clean_env() | (env or {}), cwd=workdir, start_new_session=True)
    return proc, log


def start_moto(auth: bool = False) -> Server:
    """moto server; with ``auth`` it checks access keys (INITIAL_NO_AUTH_ACTION_COUNT=0)."""
    workdir = Path(tempfile.mkdtemp(prefix="lakeshift-moto-"))
    port = free_port()
    moto = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "moto_server"
    if not moto.exists():
        moto = Path(shutil.which("moto_server") or "moto_server")
    env = {"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if auth else None
    proc, log = _spawn("moto", [str(moto), "-H", "127.0.0.1", "-p", str(port)], workdir, env)
    _wait_http(f"http://127.0.0.1:{port}/", proc, log)
    return Server("moto", port, proc, workdir, log)


def start_azurite() -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="lakeshift-azurite-"))
    port = free_port()
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} missing: run `make tools` first")
    argv = [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--location", str(workdir / "data"), "--skipApiVersionCheck", "--loose",
            "--disableTelemetry", "--silent"]
    proc, log = _spawn("azurite", argv, workdir)
    _wait_http(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}?comp=list", proc, log)
    return Server("azurite", port, proc, workdir, log)


def azurite_connection_string(port: int, key: str = AZURITE_KEY) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")


def find_pg_bin() -> Path:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / "initdb").exists():
            return base
    raise RuntimeError("PostgreSQL not installed: run `make tools` (apt-get install postgresql)")


def start_postgres() -> Server:
    """A throw-away PostgreSQL cluster owned by the postgres user when run as root."""
    workdir = Path(tempfile.mkdtemp(prefix="lakeshift-pg-"))
    os.chmod(workdir, 0o777)
    bindir = find_pg_bin()
    data, sock = workdir / "data", workdir / "sock"
    sock.mkdir()
    os.chmod(sock, 0o777)
    runas: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*runas, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True,
                   env=clean_env())
    port = free_port()
    proc, log = _spawn("postgres", [*runas, str(bindir / "postgres"), "-D", str(data), "-p",
                                    str(port), "-k", str(sock), "-c", "listen_addresses=127.0.0.1",
                                    "-c", "fsync=off"], workdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited: {log.read_text()[-2000:]}")
        r = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                           capture_output=True)
        if r.returncode == 0:
            break
        time.sleep(0.2)
    srv = Server("postgres", port, proc, workdir, log)
    srv.extra["url"] = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return srv
