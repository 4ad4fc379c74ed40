"""Run the installed ``lakeshift`` console script as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
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
