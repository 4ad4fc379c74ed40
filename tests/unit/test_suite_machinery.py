"""The suite's own machinery: its in-process servers stop at once (each http.server loop
looks for ``shutdown()`` every SERVE_POLL_S, not every 0.5 s, which every test starting a
WebHDFS double, with its two servers, waited out once more at its end); `make test`'s two
phases (the suite in two xdist workers, then the tests marked `alone` in one process); and
a working folder per test process, so that the left-files guard blames the right test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from tests import conftest, servers
from tests.doubles.webhdfs import serve


def test_a_webhdfs_double_stops_at_once(tmp_path: Path) -> None:
    took = []
    for _ in range(3):
        with serve(tmp_path, "hadoop"):
            time.sleep(0.05)  # both loops inside their wait, as after a test's requests
            start = time.monotonic()
        took.append(time.monotonic() - start)
    # With the default poll interval each stop took 0.5-1.0 s (1.5 s or more for three).
    assert sum(took) < 0.75, took



# -- `make test`: two phases, a working folder per test process ---------------------------

REPO = Path(__file__).resolve().parents[2]

_ROLES = '''
import os
import time
from pathlib import Path

SYNC = Path(os.environ["GUARD_SYNC"])


def _wait(name):
    end = time.monotonic() + 60
    while not (SYNC / name).exists():
        assert time.monotonic() < end, f"no {name}"
        time.sleep(0.02)


def test_role():
    if os.environ["PYTEST_XDIST_WORKER"] == "gw0":
        # Leaves a report in its working folder while gw1's test runs, and ends only once
        # gw1's test has ended and been checked.
        _wait("gw1-started")
        Path("lakeshift-verify-leak.json").write_text("{}")
        (SYNC / "leaked").touch()
        _wait("gw1-checked")
    else:
        (SYNC / "gw1-started").touch()
        _wait("leaked")
'''

_ROLES_CONFTEST = '''
import os
from pathlib import Path

import pytest


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    yield  # the left-files guard has checked this test
    if os.environ["PYTEST_XDIST_WORKER"] == "gw1":
        (Path(os.environ["GUARD_SYNC"]) / "gw1-checked").touch()
'''


def _pytest(folder: Path, *args: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """A pytest session in ``folder`` with the suite's machinery (tests/conftest.py as a
    plugin), its temporary folders inside ``folder``."""
    environ = servers.clean_env() | (env or {}) | {"COLUMNS": "400"}
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO), environ["PYTHONPATH"]])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--basetemp", str(folder / "basetemp"), "-o", "markers=alone: x", "-q", "-rA",
         *args],
        cwd=folder, env=environ, capture_output=True, text=True, timeout=240,
        stdin=subprocess.DEVNULL)


def test_the_left_files_guard_blames_the_worker_whose_test_left_the_file(
        tmp_path: Path) -> None:
    """Two workers, one test each at the same time; gw0's leaves a report in the working
    folder.  With one working folder for both (the repository, before), gw1's test was
    blamed for it (and gw0's passed); each worker now has its own."""
    (tmp_path / "sync").mkdir()
    (tmp_path / "test_roles.py").write_text(_ROLES)
    (tmp_path / "conftest.py").write_text(_ROLES_CONFTEST)
    p = _pytest(tmp_path, "-n", "2", "--dist", "each", "test_roles.py",
                env={"GUARD_SYNC": str(tmp_path / "sync")})
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "2 passed, 1 error" in out, out  # gw0's test passed, its teardown did not
    [error] = [line for line in out.splitlines() if line.startswith("ERROR ")]
    assert "the test left ['lakeshift-verify-leak.json'] in" in error, out
    assert f"{tmp_path / 'basetemp' / 'popen-gw0'}{os.sep}" in error, out
    assert not list(tmp_path.glob("lakeshift-verify-*"))  # not the session's folder


def test_make_test_runs_two_phases_that_each_fail_on_failure_or_no_test() -> None:
    p = subprocess.run(["make", "-n", "test", "PYTEST_ARGS=-x", "BIN=.venv/bin"],
                       cwd=REPO, capture_output=True, text=True, check=True)
    lines = [" ".join(line.split()) for line in p.stdout.replace("\\\n", " ").splitlines()]
    runs = [line for line in lines if " -m pytest" in line]
    assert runs == [
        ".venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "
        "--alone=exclude -x",
        ".venv/bin/python -m pytest --alone=only -x"], p.stdout
    # Make stops at the first failing command: no status in the recipe is ignored.
    recipe = (REPO / "Makefile").read_text().split("\ntest: ", 1)[1].split("\n\n", 1)[0]
    assert not [line for line in recipe.splitlines()[1:]
                if line.lstrip("\t@").startswith("-") or "||" in line or ";" in line], recipe


_PHASES = '''
import pytest


@pytest.mark.alone
def test_alone():
    pass


def test_shared():
    pass
'''


def test_each_phase_runs_its_own_tests_and_finds_none_is_exit_5(tmp_path: Path) -> None:
    (tmp_path / "test_phases.py").write_text(_PHASES)
    (tmp_path / "test_plain.py").write_text(
        "from pathlib import Path\nPath('imported').touch()\n\n\ndef test_plain():\n"
        "    pass\n")
    p = _pytest(tmp_path, "-n", "2", "--dist", "loadfile", "--alone=exclude")
    assert p.returncode == 0, p.stdout
    assert "PASSED test_phases.py::test_shared" in p.stdout
    assert "PASSED test_plain.py::test_plain" in p.stdout
    assert "2 passed in" in p.stdout, p.stdout  # (xdist does not count the deselected)
    (tmp_path / "imported").unlink()
    p = _pytest(tmp_path, "--alone=only")
    assert p.returncode == 0, p.stdout
    assert "PASSED test_phases.py::test_alone" in p.stdout
    assert "1 passed, 1 deselected" in p.stdout, p.stdout
    assert not (tmp_path / "imported").exists()  # a file marking no test alone: not imported
    p = _pytest(tmp_path, "--alone=include")
    assert "3 passed" in p.stdout, p.stdout
    # A phase that finds no test fails (pytest's exit 5), in either kind of run.
    assert _pytest(tmp_path, "--alone=only", "test_plain.py").returncode == 5
    assert _pytest(tmp_path, "--alone=only", "-k", "shared").returncode == 5
    p = _pytest(tmp_path, "-n", "2", "--alone=exclude", "-k", "test_alone")
    assert p.returncode == 5, p.stdout


def test_the_tests_a_busy_neighbour_failed_run_alone() -> None:
    """Beside a second test worker these failed once (session 13): they run in the phase
    of their own."""
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                        "--alone=only", "-p", "no:cacheprovider", "tests"],
                       cwd=REPO, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    assert {
        "tests/integration/test_dask.py::test_a_lost_db_connection_costs_a_pause_not_the_run",
        "tests/integration/test_dask.py::"
        "test_the_driver_waits_out_a_lost_db_connection_at_the_run_s_start_and_end",
        "tests/web/test_browser.py::"
        "test_a_live_run_moves_on_the_page_and_a_cancel_stops_it_at_a_checkpoint",
    } <= set(p.stdout.split()), p.stdout


def test_the_longest_files_start_first_and_the_unit_tests_fill_the_end() -> None:
    ids = ["tests/e2e/test_a.py::t1", "tests/unit/test_u.py::t1",
           "tests/integration/test_verify_memory.py::t1", "tests/e2e/test_a.py::t2",
           "tests/unit/test_u.py::t2", "tests/integration/test_dask.py::t1",
           "tests/integration/test_dask.py::t2", "tests/test_top.py::t1"]
    assert sorted(ids, key=lambda i: conftest._run_order(SimpleNamespace(nodeid=i))) == [
        "tests/integration/test_dask.py::t1", "tests/integration/test_dask.py::t2",
        "tests/integration/test_verify_memory.py::t1",
        "tests/e2e/test_a.py::t1", "tests/e2e/test_a.py::t2", "tests/test_top.py::t1",
        "tests/unit/test_u.py::t1", "tests/unit/test_u.py::t2"]
    assert [f for f in conftest.LONG_FILES if not (REPO / f).is_file()] == []
