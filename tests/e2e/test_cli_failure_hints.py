"""A copy's summary that lists failures ends with what to do about each kind present,
once a kind (not once an object), naming the flag; the flag, given, does it.

Local disk only: a file the copy may not read (``forbidden``, mode bits binding even as
root) and a name a directory at the destination already holds (``invalid-name``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.e2e.cli import lakeshift, obeying_file_modes, one_clear_line


def test_each_kind_of_failure_ends_the_summary_with_its_fix_once(
        local_env: dict[str, str], tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for name in ("a.txt", "locked-1.txt", "locked-2.txt", "ok.txt"):
        (src / name).write_text(name)
    (src / "locked-1.txt").chmod(0)
    (src / "locked-2.txt").chmod(0)
    (dst / "a.txt").mkdir(parents=True)  # a directory where the file a.txt would go

    p = lakeshift("copy", str(src), str(dst), env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert "  FAILED a.txt: [invalid-name] " in p.stdout, p.stdout
    assert p.stdout.count("--skip-errors forbidden ") == 1, p.stdout  # two objects, one hint
    hints = p.stdout.splitlines()[-3:]  # the summary ends with them
    assert sorted(hints[:2]) == [_FORBIDDEN, _INVALID_NAME], p.stdout
    kinds = ",".join(h.split(":")[0].strip() for h in hints[:2])
    assert hints[2] == (f"  to skip them all and go on: --skip-errors {kinds} (one flag, "
                        "comma-separated)"), p.stdout

    # One kind skipped already: the other's hint, and the flag that keeps both.
    p = lakeshift("copy", str(src), str(dst), "--skip-errors", "forbidden", env=local_env,
                  prefix=obeying_file_modes())
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.splitlines()[-2:] == [
        _INVALID_NAME, "  to skip them all and go on: --skip-errors forbidden,invalid-name "
        "(one flag, comma-separated)"], p.stdout

    # The flag the last line names, given: the copy goes on past both, and says so.
    p = lakeshift("copy", str(src), str(dst), *hints[2].split(": ")[1].split(" (")[0].split(),
                  env=local_env, prefix=obeying_file_modes())
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SKIPPED locked-1.txt: [forbidden]" in p.stdout, p.stdout
    assert "SKIPPED a.txt: [invalid-name]" in p.stdout, p.stdout
    assert "go on" not in p.stdout, p.stdout  # nothing failed: no hint
    os.chmod(src / "locked-1.txt", 0o644)
    os.chmod(src / "locked-2.txt", 0o644)


_FORBIDDEN = ("  forbidden: to skip these and go on: --skip-errors forbidden (or grant read "
              "access and run again)")
_INVALID_NAME = ("  invalid-name: to skip these and go on: --skip-errors invalid-name; to "
                 "rename instead a name the destination's rules reject: --invalid-names "
                 "encode")


def test_an_unreadable_source_folder_is_said_forbidden_in_json(
        local_env: dict[str, str], tmp_path: Path) -> None:
    """A local source folder that may not be read stops the copy first (exit 2, one line);
    --json names its kind ``forbidden``, as an unreadable file's is, not ``usage``."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    src.chmod(0)
    try:
        p = lakeshift("copy", str(src), str(tmp_path / "dst"), "--json", env=local_env,
                      prefix=obeying_file_modes())
    finally:
        src.chmod(0o755)
    assert p.returncode == 2, p.stdout + p.stderr
    assert json.loads(p.stdout)["error"] == {
        "kind": "forbidden", "exit_code": 2,
        "message": f"local directory {src} is not readable: check its permissions"}
    assert one_clear_line(p) == f"lakeshift: local directory {src} is not readable: check " \
                                "its permissions"
