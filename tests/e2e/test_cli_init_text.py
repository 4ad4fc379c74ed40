"""``lakeshift init``'s words: the file it names is the one it wrote, and an error after a
prompt starts its own line."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from tests.e2e.cli import BIN


def _init(args: list[str], stdin: str, env: dict[str, str], cwd: Path,
          stderr: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "init", *args], input=stdin, env=env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=60)


def test_the_written_file_says_to_run_itself(local_env: dict[str, str],
                                             tmp_path: Path) -> None:
    answers = ["/data/in", "/data/out", "n", "none", "job1", f"sqlite:///{tmp_path}/i.db",
               "4", "8", "once"]
    for out in ("job.toml", "my jobs/job 2.toml"):
        p = _init(["-o", out], "\n".join(answers) + "\n", local_env, tmp_path)
        assert p.returncode == 0, p.stdout + p.stderr
        text = (tmp_path / out).read_text()
        run_line = next(ln for ln in text.splitlines() if "Run it with" in ln)
        assert run_line.endswith("lakeshift run --config " +
                                 ("job.toml" if out == "job.toml" else f"'{out}'")), run_line
        assert "lakeshift.toml" not in text
        assert tomllib.loads(text)["job"]["name"] == "job1"


def test_an_error_after_a_prompt_is_on_its_own_line(local_env: dict[str, str],
                                                    tmp_path: Path) -> None:
    # stdout and stderr into one pipe, as a terminal shows them.
    p = _init(["-o", "x.toml"], "", local_env, tmp_path, stderr=subprocess.STDOUT)
    assert p.returncode == 2
    lines = p.stdout.splitlines()
    assert lines[-1].startswith("lakeshift: init is interactive"), lines
    assert lines[-2].startswith("Source URL"), lines
    # After a wrong answer, that answer is the error: also on its own line.
    answers = ["/data/in", "/data/out", "n", "none", "job1", f"sqlite:///{tmp_path}/i.db",
               "four"]
    q = _init(["-o", "x.toml"], "\n".join(answers) + "\n", local_env, tmp_path,
              stderr=subprocess.STDOUT)
    assert q.returncode == 2
    assert q.stdout.splitlines()[-1].startswith("lakeshift: init: "), q.stdout
    assert not (tmp_path / "x.toml").exists()
