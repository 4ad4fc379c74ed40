"""The web monitor against a real server process over a control DB filled by real runs on
the emulators; Playwright drives Debian's Chromium (no browser download)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import servers
from tests.e2e.cli import BIN, lakeshift
from tests.faultproxy import FaultProxy

CHROMIUM = Path(os.environ.get("LAKESHIFT_CHROMIUM", "/usr/bin/chromium"))
#: Screenshots of the pages (git-ignored), kept for a person to look at after a run.
ARTIFACTS = Path(os.environ.get("LAKESHIFT_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "artifacts" / "web"))
TOKEN = "monitor-token-0123456789"
#: A key the page must show as text: Azure refuses its name (a segment ends with a dot),
#: so it lands in the failure log too.
SCRIPT_KEY = "xss/<script>window.__xss=1</script>.txt."
HARMLESS_HTML_KEY = "xss/<b>bold</b>.txt"


def emulator_env(s3_url: str, blob_url: str, home: Path) -> dict[str, str]:
    env = servers.clean_env()
    env.update({"AWS_ENDPOINT_URL": s3_url, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1",
                "AZURE_STORAGE_CONNECTION_STRING": (
                    f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
                    f"AccountKey={servers.AZURITE_KEY};"
                    f"BlobEndpoint={blob_url}/{servers.AZURITE_ACCOUNT};"),
                "HOME": str(home), "TMPDIR": str(home),
                "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"})
    return env


def s3_client(moto: servers.Server) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto.port}",
                        region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing-secret")


@dataclass
class Lake:
    """A bucket, a container and the environment of a user's shell on the emulators."""

    bucket: str
    container: str
    env: dict[str, str]
    s3: Any
    blobs: Any
    home: Path


@pytest.fixture(scope="session")
def lake(moto: servers.Server, azurite: servers.Server,
         tmp_path_factory: pytest.TempPathFactory) -> Lake:
    from azure.storage.blob import BlobServiceClient

    home = tmp_path_factory.mktemp("web-home")
    s3 = s3_client(moto)
    bucket, container = f"web-{uuid.uuid4().hex[:10]}", f"web-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    blobs = BlobServiceClient.from_connection_string(
        servers.azurite_connection_string(azurite.port))
    blobs.create_container(container)
    env = emulator_env(f"http://127.0.0.1:{moto.port}", f"http://127.0.0.1:{azurite.port}",
                       home)
    return Lake(bucket, container, env, s3, blobs, home)


@dataclass
class FilledDB:
    url: str
    path: Path
    job: str
    #: Objects copied, their bytes, and those that failed.
    copied: int
    copied_bytes: int
    failed_keys: list[str]


@pytest.fixture(scope="session")
def filled_db(lake: Lake, moto: servers.Server,
              tmp_path_factory: pytest.TempPathFactory) -> FilledDB:
    """One finished run of a 3-partition job, through a proxy that throttles 3 data
    requests (503): 21 objects copied, one (SCRIPT_KEY) failed for its name."""
    sizes = {f"2023/f{i:03d}.bin": 1000 + i for i in range(10)}
    sizes.update({f"2024/f{i:03d}.bin": 2000 + i for i in range(10)})
    sizes.update({SCRIPT_KEY: 77, HARMLESS_HTML_KEY: 55})
    for key, size in sizes.items():
        lake.s3.put_object(Bucket=lake.bucket, Key=key, Body=os.urandom(size))
    folder = tmp_path_factory.mktemp("web-db")
    path = folder / "control.db"
    url = f"sqlite:///{path}"
    proxy = FaultProxy(f"http://127.0.0.1:{moto.port}")
    try:
        env = {**lake.env, "AWS_ENDPOINT_URL": proxy.url}
        p = lakeshift("plan", f"s3://{lake.bucket}/", f"az://{lake.container}/filled/",
                      "--job", "filled", "--db", url, "--prefix", "2023/", "--prefix", "2024/",
                      "--prefix", "xss/", env=env)
        assert p.returncode == 0, p.stderr
        proxy.fault("data", 503, times=3, path=r".*/2024/.*")
        r = lakeshift("run", "--job", "filled", "--db", url, "--lease-seconds", "4",
                      "--batch-count", "2", env=env)
        assert r.returncode == 1, r.stderr  # the refused name
    finally:
        proxy.stop()
    good = {k: v for k, v in sizes.items() if k != SCRIPT_KEY}
    return FilledDB(url, path, "filled", len(good), sum(good.values()), [SCRIPT_KEY])


def copy_db(db: FilledDB, folder: Path) -> str:
    """A copy of the filled DB that a test may change."""
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{db.path}{suffix}")
        if src.exists():
            shutil.copy(src, folder / f"control.db{suffix}")
    return f"sqlite:///{folder / 'control.db'}"


@dataclass
class Monitor:
    url: str
    proc: subprocess.Popen[str]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_monitor(db: str, env: dict[str, str], *extra: str) -> Monitor:
    proc = subprocess.Popen([str(BIN), "monitor", "--db", db, "--port", "0", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "lakeshift monitor: http://127.0.0.1:PORT/ over …"
    if "http://" not in line:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"the monitor did not start: {line!r} {err!r}")
    url = line.split("http://", 1)[1].split()[0]
    return Monitor(f"http://{url}".rstrip("/"), proc)


@pytest.fixture
def monitor_of(lake: Lake) -> Iterator[Callable[..., Monitor]]:
    """Start monitors (stopped by handle at the end of the test)."""
    started: list[Monitor] = []

    def start(db: str, *extra: str, token: str | None = None) -> Monitor:
        """``token``: the actions' token, given as a user would (LAKESHIFT_MONITOR_TOKEN)."""
        env = lake.env if token is None else {**lake.env, "LAKESHIFT_MONITOR_TOKEN": token}
        m = start_monitor(db, env, *extra)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Not session-wide: while Playwright's sync API is open its event loop counts as
    # running in this thread, and every later test's asyncio.run() would be refused.
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; every dialog it opens (alert, …) is recorded in ``page.dialogs``."""
    # The monitor's Content-Security-Policy forbids eval, which Playwright's own
    # wait_for_function uses; bypassing it also means the HTML-in-keys test proves the
    # escaping itself, not the policy (test_http checks the policy is sent).
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def slow_run(lake: Lake, db: str, job: str, prefix: str, n: int = 40,
             size: int = 4096, bandwidth: str = "48KiB") -> tuple[subprocess.Popen[str],
                                                                 dict[str, bytes]]:
    """Plan a job over ``n`` objects and start `lakeshift run` on it in the background,
    paced by --max-bandwidth so that it lasts a few seconds (heartbeat every second)."""
    objs = {f"{prefix}o{i:03d}.bin": os.urandom(size) for i in range(n)}
    for k, v in objs.items():
        lake.s3.put_object(Bucket=lake.bucket, Key=k, Body=v)
    p = lakeshift("plan", f"s3://{lake.bucket}/{prefix}", f"az://{lake.container}/{job}/",
                  "--job", job, "--db", db, env=lake.env)
    assert p.returncode == 0, p.stderr
    proc = subprocess.Popen([str(BIN), "run", "--job", job, "--db", db, "--lease-seconds", "4",
                             "--concurrency", "2", "--max-bandwidth", bandwidth],
                            env=lake.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    return proc, objs


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    """Poll ``check`` until it returns something true (bounded)."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.2)
