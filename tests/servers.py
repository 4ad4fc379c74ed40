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
    # The network guard (tests/netguard/sitecustomize.py) in every Python child.
    from tests.netguard.sitecustomize import child_pythonpath

    env["PYTHONPATH"] = child_pythonpath(env.get("PYTHONPATH"))
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
    import ssl

    deadline = time.monotonic() + timeout
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # only asks whether the server is up
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=unverified))
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
    srv = Server("moto", port, proc, workdir, log)
    _wait_or_stop(srv, f"http://127.0.0.1:{port}/")
    return srv


def start_azurite(oauth: bool = False, tls: bool = False,
                  node_args: list[str] | None = None, in_memory: bool = False) -> Server:
    """Azurite's blob service.  With ``tls``: over HTTPS with a throw-away certificate
    (trusted by pointing SSL_CERT_FILE at ``workdir/ca.pem``).  With ``oauth``: over HTTPS
    too, and Entra ID bearer tokens checked at Azurite's "basic" level (issuer, audience,
    lifetime).  ``node_args``: Azurite run by ``node`` with these options first (the bench's
    ``--cpu-prof``; Node refuses them in NODE_OPTIONS).  ``in_memory``: blobs kept in
    Azurite's memory (``--inMemoryPersistence``), no extent files on disk (the bench's
    BENCH_AZURITE_MEMORY)."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} missing: run `make azurite` (or `make tools`) first")
    workdir = Path(tempfile.mkdtemp(prefix="lakeshift-azurite-"))
    port = free_port()
    argv = [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--location", str(workdir / "data"), "--skipApiVersionCheck", "--loose",
            "--disableTelemetry", "--silent"]
    scheme = "http"
    if oauth or tls:
        cert, key = self_signed_certificate(workdir)
        argv += ["--cert", str(cert), "--key", str(key)]
        scheme = "https"
    if oauth:
        argv += ["--oauth", "basic"]
    if in_memory:  # Azurite refuses --location beside it
        i = argv.index("--location")
        argv[i:i + 2] = ["--inMemoryPersistence"]
    if node_args:
        argv = [shutil.which("node") or "node", *node_args, os.path.realpath(argv[0]), *argv[1:]]
    proc, log = _spawn("azurite", argv, workdir)
    srv = Server("azurite", port, proc, workdir, log)
    _wait_or_stop(srv, f"{scheme}://127.0.0.1:{port}/{AZURITE_ACCOUNT}?comp=list")
    return srv


def _wait_or_stop(srv: Server, url: str) -> None:
    """Wait for ``srv`` to answer; one that does not is stopped (by PID, its workdir
    removed) before the error goes up, so a failed start leaves nothing running."""
    try:
        _wait_http(url, srv.proc, srv.log)
    except BaseException:
        srv.stop()
        raise


def self_signed_certificate(workdir: Path) -> tuple[Path, Path]:
    """A throw-away CA (``workdir/ca.pem``, for SSL_CERT_FILE) and a server certificate for
    127.0.0.1 that it signed, with the server's key, as PEM files (rustls refuses a CA
    certificate used as the server's own)."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lakeshift test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = workdir / "cert.pem", workdir / "key.pem"
    (workdir / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def entra_token(minutes: int = 60) -> str:
    """An Entra ID access token for Azure Storage as Azurite's basic OAuth level checks it
    (issuer, audience, lifetime; the signature is not checked)."""
    import base64
    import json

    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"aud": "https://storage.azure.com", "iat": now - 60, "nbf": now - 60,
              "exp": now + minutes * 60,
              "iss": "https://sts.windows.net/ab1f708d-50f6-404c-a006-d71b2ac7a606/",
              "oid": "00000000-0000-0000-0000-000000000001", "tid": "ab1f708d"}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def azurite_connection_string(port: int, key: str = AZURITE_KEY, scheme: str = "http") -> str:
    return (f"DefaultEndpointsProtocol={scheme};AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={scheme}://127.0.0.1:{port}/{AZURITE_ACCOUNT};")


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
