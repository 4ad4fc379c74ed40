"""Session-wide real servers (moto, Azurite) on free loopback ports, stopped by PID."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers
from tests.netguard import sitecustomize as _netguard

# A shell without job control starts background commands (`make test &`, nohup) with SIGINT
# ignored, and an ignored signal stays ignored across exec: every lakeshift process a test
# starts would then shrug off the Ctrl-C the interrupt tests send. Give children the default.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Nothing in a test may reach a cloud endpoint or an instance-metadata service.
for _k in [k for k in os.environ if k.startswith(("AWS_", "AZURE_", "LAKESHIFT_"))]:
    del os.environ[_k]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
# ...and the network guard proves it: a DNS lookup of anything but loopback fails loudly,
# here and (PYTHONPATH → tests/netguard/sitecustomize.py) in every Python child.
_netguard.install()
os.environ["PYTHONPATH"] = _netguard.child_pythonpath(os.environ.get("PYTHONPATH"))

# With PYTHONDONTWRITEBYTECODE set (some shells and CI images set it), every Python child —
# each of the hundreds of `lakeshift` runs, the netguard's sitecustomize, helper scripts —
# compiled lakeshift's modules again from source (~0.1 s CPU each), and pytest rewrote and
# compiled every test module on each run.  The suite's processes write bytecode as Python
# does by default, into __pycache__/ beside the sources (git-ignored); a PYTHONPYCACHEPREFIX
# would ignore the bytecode pip wrote for site-packages and compile all of it once more.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
    sys.dont_write_bytecode = False


# The tests `-m "not slow"` leaves out besides those marked in their own files: each took
# 0.8 s or more (`pytest -m "not slow" --durations=0`, 2 shared cores, 2026-11).  A few
# quick representatives of each area stay in the fast subset; CI runs everything.  A node id
# without a parameter stands for all its parameters.
SLOW_TESTS = frozenset({
    "tests/e2e/test_cli_copy.py::test_abfss_url_on_the_emulator_and_an_account_mismatch",
    "tests/e2e/test_cli_copy.py::test_copy_json_summary_and_exit_code_every_time",
    "tests/e2e/test_cli_copy.py::test_interrupt_exits_130_and_a_rerun_finishes",
    "tests/e2e/test_cli_copy.py::test_wrong_aws_key_is_exit_3_when_the_service_checks_keys",
    "tests/e2e/test_cli_setup.py::test_check_reports_each_step_ok",
    "tests/e2e/test_cli_setup.py::test_init_wizard_writes_a_config_that_run_runs",
    "tests/e2e/test_cli_sources.py::test_symlink_loops_are_skipped_and_recorded_and_the_rest_is_copied",
    "tests/e2e/test_cli_sources.py::test_unreadable_file_and_folder_are_forbidden",
    "tests/integration/test_azure_entra_id.py::test_copy_and_rerun_with_an_entra_id_token",
    "tests/integration/test_azure_sas.py::test_copy_rerun_and_move_with_a_sas",
    "tests/integration/test_block_limits.py::"
    "test_bigger_blocks_keep_an_object_within_the_block_limit",
    "tests/integration/test_control_db.py::"
    "test_claims_never_overlap_and_expired_leases_are_taken_over",
    "tests/integration/test_copy_s3_to_azure.py::"
    "test_destination_container_is_created_and_other_directions_work",
    "tests/integration/test_jobs.py::test_adf_control_table_is_read_and_updated_like_the_template",
    "tests/integration/test_jobs.py::"
    "test_auto_partitioning_cuts_key_ranges_that_cover_everything_once",
    "tests/integration/test_jobs.py::test_auto_partitioning_follows_folders_that_fit",
    "tests/integration/test_jobs.py::test_corrupt_newer_and_locked_dbs_are_refused_unchanged",
    "tests/integration/test_jobs.py::test_failures_are_listed_with_key_class_and_message",
    "tests/integration/test_jobs.py::test_kill_9_mid_partition_then_rerun_misses_nothing",
    "tests/integration/test_jobs.py::"
    "test_one_failing_partition_leaves_the_others_and_a_rerun_finishes_it",
    "tests/integration/test_jobs.py::test_plan_run_status_and_rerun[postgresql]",
    "tests/integration/test_jobs.py::test_two_runs_share_a_job_without_doing_a_partition_twice",
    "tests/integration/test_names_and_skips.py::test_a_version_1_control_db_is_upgraded",
    "tests/integration/test_names_and_skips.py::"
    "test_job_records_renames_and_skips_in_the_control_db",
    "tests/integration/test_names_and_skips.py::"
    "test_verify_pairs_renamed_objects_and_reports_renamings",
    "tests/integration/test_verify.py::test_local_source_and_deep_mode",
    "tests/integration/test_verify_pacing.py::"
    "test_deep_verify_takes_every_hashed_byte_from_the_bandwidth_cap",
    "tests/integration/test_verify.py::test_multipart_etag_is_recomputed_from_the_destination",
    "tests/integration/test_verify.py::test_verify_a_job",
    "tests/integration/test_verify.py::test_verify_finds_each_planted_difference_and_nothing_else",
})


# `make test` runs the suite in two phases: everything but the tests marked `alone` in two
# pytest-xdist workers (`-n 2 --dist loadfile --alone=exclude`), then those in one process
# (`--alone=only`).  A test is marked `alone` when a busy neighbour can fail it: it races a
# clock or a running process against work that a second worker slows down.
ALONE_CHOICES = ("include", "exclude", "only")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--alone", choices=ALONE_CHOICES, default="include",
        help="the tests marked alone: run with the others (include, the default), left out "
             "(exclude: `make test`'s phase in two workers) or run only them (only: its "
             "phase in one process)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--alone=only`` a test file that marks no test `alone` is not even imported:
    collecting the whole suite took that phase ~15 s of CPU for its few tests.  (So a test
    is marked in its own file: ``@pytest.mark.alone``, or a ``pytestmark`` holding it.)"""
    if (config.getoption("alone") == "only" and collection_path.suffix == ".py"
            and collection_path.name.startswith("test_")
            and "mark.alone" not in collection_path.read_text(encoding="utf-8")):
        return True
    return None


# The files that take longest, longest first (summed test time, `pytest --durations=0`, 2
# shared cores).  Under xdist a file runs whole on one worker (--dist loadfile) in the order
# the files were collected (--no-loadscope-reorder: xdist's own order, most tests first,
# started these few-but-long files last, and a run ended on one worker alone for minutes);
# so they start first, then the rest, the many short unit test files last, to fill the end.
LONG_FILES = (
    "tests/integration/test_dask.py", "tests/integration/test_jobs.py",
    "tests/integration/test_verify_memory.py", "tests/integration/test_sync_cli.py",
    "tests/e2e/test_cli_output.py", "tests/e2e/test_cli_jobs.py",
    "tests/integration/test_multipart_proofs.py", "tests/web/test_browser.py",
    "tests/e2e/test_cli_copy.py", "tests/integration/test_stall_limits.py",
)


def _run_order(item: pytest.Item) -> tuple[int, int]:
    path = item.nodeid.split("::", 1)[0]
    if path in LONG_FILES:
        return 0, LONG_FILES.index(path)
    return (2 if path.startswith("tests/unit/") else 1), 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid in SLOW_TESTS or item.nodeid.split("[", 1)[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
    phase = config.getoption("alone")
    if phase != "include":
        only = phase == "only"
        keep = [i for i in items if (i.get_closest_marker("alone") is not None) == only]
        if len(keep) < len(items):
            kept = set(map(id, keep))
            config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
            items[:] = keep
    if hasattr(config, "workerinput"):  # an xdist worker: the longest files first
        items.sort(key=_run_order)  # stable: each file's tests stay together and in order


_LEFT_BEHIND = ("lakeshift-verify-*", "lakeshift-error-*", "*.db")


@pytest.fixture(scope="session", autouse=True)
def _working_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Each test process works in a folder of its own, never the repository: with xdist one
    per worker (under the worker's own temporary folder), so that the guard below blames a
    file left there on a test of this process, never on one that ended meanwhile on the
    other worker.  Tests name repository files by their own ``__file__`` (servers.REPO)."""
    folder = tmp_path_factory.mktemp("cwd", numbered=False)
    before = os.getcwd()
    os.chdir(folder)
    yield folder
    os.chdir(before)


@pytest.fixture(autouse=True)
def _nothing_left_in_the_working_folder(_working_folder: Path) -> Iterator[None]:
    """A test writes its reports, DBs and logs under ``tmp_path``: what a command writes by
    default into the current folder (verify's report) must not pile up there (in the
    repository, were it the current folder)."""
    here = _working_folder
    before = {p for pattern in _LEFT_BEHIND for p in here.glob(pattern)}
    yield
    left = {p for pattern in _LEFT_BEHIND for p in here.glob(pattern)} - before
    for p in left:
        p.unlink(missing_ok=True)
    assert not left, f"the test left {sorted(p.name for p in left)} in {here}"


@pytest.fixture(scope="session")
def moto() -> Iterator[servers.Server]:
    srv = servers.start_moto()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def azurite() -> Iterator[servers.Server]:
    srv = servers.start_azurite()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def azurite_oauth() -> Iterator[servers.Server]:
    """Azurite over HTTPS taking Entra ID bearer tokens (servers.start_azurite)."""
    srv = servers.start_azurite(oauth=True)
    yield srv
    srv.stop()


class EntraTestCredential:
    """Stands in for an azure-identity credential (no Entra ID can run here): hands out
    tokens that Azurite's OAuth "basic" level accepts, and counts them."""

    def __init__(self) -> None:
        self.issued = 0

    async def get_token(self, *scopes: str, **kw: object) -> object:
        import time

        from azure.core.credentials import AccessToken

        assert scopes == ("https://storage.azure.com/.default",), scopes
        self.issued += 1
        return AccessToken(servers.entra_token(), int(time.time()) + 3600)

    async def close(self) -> None:
        return None


@pytest.fixture
def entra_credential() -> EntraTestCredential:
    return EntraTestCredential()


@pytest.fixture
def entra_env(azurite_oauth: servers.Server, entra_credential: EntraTestCredential,
              monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a user whose Azure credential is an Entra ID token (here with
    ``--azure-auth cli``, its credential replaced by EntraTestCredential)."""
    from lakeshift.stores.azure import auth as azure_auth

    env = {"AZURE_STORAGE_ACCOUNT": servers.AZURITE_ACCOUNT,
           "AZURE_STORAGE_BLOB_ENDPOINT":
               f"https://127.0.0.1:{azurite_oauth.port}/{servers.AZURITE_ACCOUNT}",
           "SSL_CERT_FILE": str(azurite_oauth.workdir / "ca.pem")}
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(azure_auth, "token_credential", lambda settings: entra_credential)
    return env


@pytest.fixture
def s3_env(moto: servers.Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto.port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def azure_env(azurite: servers.Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {"AZURE_STORAGE_CONNECTION_STRING": servers.azurite_connection_string(azurite.port)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def s3(s3_env: dict[str, str]):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing-secret")


@pytest.fixture
def blob_service(azure_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azure_env["AZURE_STORAGE_CONNECTION_STRING"])


@pytest.fixture
def bucket(s3) -> str:  # type: ignore[no-untyped-def]
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def container(blob_service) -> str:  # type: ignore[no-untyped-def]
    name = f"c-{uuid.uuid4().hex[:12]}"
    blob_service.create_container(name)
    return name


@pytest.fixture
def cli_env(s3_env: dict[str, str], azure_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The environment a user's shell would have: emulator endpoints and credentials only."""
    env = servers.clean_env()
    env.update(s3_env)
    env.update(azure_env)
    env["HOME"] = str(tmp_path / "home")
    env["TMPDIR"] = str(tmp_path)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    env["COLUMNS"] = "120"
    return env


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.Server]:
    srv = servers.start_postgres()
    yield srv
    srv.stop()


@pytest.fixture
def pg_url(postgres: servers.Server) -> str:
    """A fresh database on the session's PostgreSQL server."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.extra["url"], autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.extra["url"].rsplit("/", 1)[0] + "/" + name


# The WebHDFS double's fixtures (ADLS Gen1 and Hadoop dialects): gen1, hadoop.
from tests.doubles.fixtures import gen1, gen2, hadoop  # noqa: E402, F401
