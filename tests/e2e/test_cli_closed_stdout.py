"""A reader that leaves early (``lakeshift … | head``, ``| true``): no traceback, and the
exit code still says what happened."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.e2e.cli import BIN


def _with_stdout_closed(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run ``lakeshift ARGS`` with its stdout a pipe whose read end is closed before the
    command writes: (exit code, stderr)."""
    p = subprocess.Popen([str(BIN), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read()
    return p.wait(timeout=120), err


def test_a_usage_error_under_json_with_stdout_closed(local_env: dict[str, str],
                                                     tmp_path: Path) -> None:
    code, err = _with_stdout_closed("copy", "./nonexist", "./o", "--json", env=local_env,
                                    cwd=tmp_path)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "does not exist" in err


def test_a_proof_log_to_a_closed_stdout(local_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_bytes(b"hi\n")
    code, err = _with_stdout_closed("copy", "./data", "./o", "--proof-log", "/dev/stdout",
                                    "--json", env=local_env, cwd=tmp_path)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--proof-log" in err


def test_a_summary_cut_short_by_a_closed_stdout(local_env: dict[str, str],
                                                tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_bytes(b"hi\n")
    code, err = _with_stdout_closed("copy", "./data", "./o", "--json", env=local_env,
                                    cwd=tmp_path)
    assert err == "" and code == 141  # 128 + SIGPIPE, not 1 ("some objects failed")
    assert (tmp_path / "o" / "a").read_bytes() == b"hi\n"


def test_help_into_a_reader_that_left(local_env: dict[str, str], tmp_path: Path) -> None:
    """``lakeshift --help | head -1``: rich writes the help, meets the closed pipe and points
    stdout at /dev/null itself before it exits 1; that is the closed stdout's 141, not an
    internal error (exit 4 and a log)."""
    for args in (["--help"], ["copy", "--help"]):
        code, err = _with_stdout_closed(*args, env=local_env, cwd=tmp_path)
        assert err == "" and code == 141, (args, code, err)
