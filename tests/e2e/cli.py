"""Run the installed ``lakeshift`` console script as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent / "lakeshift"


def lakeshift(*args: str, env: dict[str, str], timeout: float = 120,
              prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, str(BIN), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def obeying_file_modes() -> tuple[str, ...]:
    """A command prefix under which mode bits bind even as root (which reads any file):
    the capabilities that bypass them are dropped."""
    if os.geteuid() != 0:
        return ()
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def one_clear_line(p: subprocess.CompletedProcess[str]) -> str:
    """The error output must be one line, with no traceback."""
    err = p.stderr.strip()
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr
    assert len(err.splitlines()) == 1, err
    return err


#: What a command that stops at its first contact with a store may take at most, with
#: LAKESHIFT_CONNECT_SECONDS=1: well under what an unbounded wait would (300 s a try), well
#: over what a bounded one needs (4 s, plus the start of a Python process on a busy machine).
#: Loose: it is there to catch minutes, not to time anything.
BOUND_S = 25


@dataclass
class Stopped:
    """A command that stopped before doing anything: its last stderr line, the notices
    before it (``lakeshift: no answer from … yet``), its stdout."""

    line: str
    notices: list[str]
    stdout: str

    def only_line(self) -> str:
        """The line, when it came alone (nothing was tried again)."""
        assert self.notices == [], self.notices
        return self.line


def stops(*args: str, env: dict[str, str], code: int = 2) -> Stopped:
    """``lakeshift ARGS`` run, checked to be one that stopped with exit ``code``, one line
    (after any "no answer … yet" notices), no traceback, within ``BOUND_S``."""
    started = time.monotonic()
    p = lakeshift(*args, env=env)
    took = time.monotonic() - started
    assert p.returncode == code, p.stdout + p.stderr
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    assert took < BOUND_S, (took, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert lines and all(ln.startswith("lakeshift: no answer from ") for ln in lines[:-1]), lines
    return Stopped(lines[-1], lines[:-1], p.stdout)


def planned_local_job(env: dict[str, str], tmp_path: Path, container: str, job: str,
                      files: int = 0, size: int = 1500, *options: str,
                      also: dict[str, bytes] | None = None) -> tuple[Path, str]:
    """A local folder ``tmp_path/src`` planned (``lakeshift plan``) as job ``job`` into
    ``az://CONTAINER/JOB/``, in the SQLite DB ``tmp_path/JOB.db``: (the folder, the DB's
    URL).  It holds ``files`` files ``00000.bin``… of ``size`` random bytes, else one
    ``a.bin`` holding ``a``, and ``also``'s; ``options`` go to ``plan``."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(files):
        (src / f"{i:05d}.bin").write_bytes(os.urandom(size))
    for name, data in (also if also is not None else {} if files else {"a.bin": b"a"}).items():
        (src / name).write_bytes(data)
    db = f"sqlite:///{tmp_path / job}.db"
    p = lakeshift("plan", str(src), f"az://{container}/{job}/", "--job", job, "--db", db,
                  *options, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    return src, db


def run_in_background(env: dict[str, str], job: str, db: str,
                      *options: str) -> subprocess.Popen[bytes]:
    """``lakeshift run --job JOB --db DB --progress none OPTIONS`` started and left running
    (to be killed), its output dropped."""
    return subprocess.Popen([str(BIN), "run", "--job", job, "--db", db, *options,
                             "--progress", "none"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
