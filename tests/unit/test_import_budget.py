"""``lakeshift copy`` imports only what a copy needs: not the other commands' modules (the
web monitor, the control DB's commands, tune, scan, Dask...), and ``import lakeshift`` alone
imports none of the API (its names resolve on first use).  Each check runs in a fresh
interpreter, as the command does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: Modules a copy must not import (each was imported by every command before).
NOT_FOR_COPY = (
    "lakeshift.cli.job_cmds", "lakeshift.cli.sync_cmd", "lakeshift.cli.monitor_cmd",
    "lakeshift.cli.tune_cmd", "lakeshift.cli.scan_cmd", "lakeshift.cli.setup_cmds",
    "lakeshift.cli.verify_cmd", "lakeshift.cli.status_view",
    # the other commands' records (~27 dataclasses, each compiling its methods) and check
    "lakeshift.reports", "lakeshift.monitor_reports", "lakeshift.engine.check",
    "lakeshift.plan.jobconfig", "tomllib",
)
#: Never imported by a copy, before or after (a regression guard).
NEVER_FOR_COPY = ("sqlalchemy", "dask", "distributed", "pydantic", "lakeshift.web",
                  "lakeshift.scale", "lakeshift.engine.tune", "lakeshift.plan.scan",
                  "lakeshift.plan.scan_calibration",
                  "lakeshift.control.repository")


def _modules(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_copy_imports_only_the_copy_command(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"x")
    code = ("import json, sys; from lakeshift.cli.app import run; "
            f"code = run(['copy', {str(tmp_path / 'src')!r}, {str(tmp_path / 'dst')!r}, "
            "'--progress', 'none']); assert code == 0, code; "
            "print(json.dumps(sorted(sys.modules)))")
    loaded = _modules(code)
    assert (tmp_path / "dst" / "a.txt").read_bytes() == b"x"
    assert "lakeshift.cli.copy_cmd" in loaded
    bad = [m for m in loaded if m in NOT_FOR_COPY
           or any(m == n or m.startswith(n + ".") for n in NEVER_FOR_COPY)]
    assert bad == []


def test_import_lakeshift_is_lazy() -> None:
    loaded = _modules("import json, sys, lakeshift; print(json.dumps(sorted(sys.modules)))")
    assert "lakeshift.api" not in loaded and "lakeshift.model" not in loaded


def test_every_public_name_resolves_and_plan_stays_the_function() -> None:
    code = ("import json, lakeshift, lakeshift.api, lakeshift.plan.jobconfig; "
            "import lakeshift.plan.compare; "
            "assert lakeshift.plan is lakeshift.api.plan, lakeshift.plan; "
            "missing = [n for n in lakeshift.__all__ if not hasattr(lakeshift, n)]; "
            "assert not missing, missing; "
            "assert set(lakeshift.__all__) <= set(dir(lakeshift)); "
            "ns = {}; exec('from lakeshift import *', ns); "
            "assert set(lakeshift.__all__) <= set(ns); print(json.dumps([]))")
    assert _modules(code) == []


def test_the_other_commands_records_resolve_lazily_and_stay_lakeshift_model_names() -> None:
    code = ("import json, pickle, sys, typing, lakeshift; "
            "hints = typing.get_type_hints(lakeshift.status); "
            "assert 'return' in hints; "
            "typing.get_type_hints(lakeshift.check_async); "
            "from lakeshift.api import CheckResult; from lakeshift.model import ScanGroup; "
            "import lakeshift.model as m; "
            "assert m.JobStatus is lakeshift.JobStatus and CheckResult is m.CheckResult; "
            "assert ScanGroup.__module__ == 'lakeshift.model'; "
            "g = ScanGroup('p', 1, 2); assert pickle.loads(pickle.dumps(g)) == g; "
            "assert typing.get_type_hints(m.ScanResult)['by_prefix']; print(json.dumps([]))")
    assert _modules(code) == []


def test_a_one_command_app_parses_and_helps_as_the_full_app() -> None:
    """``lakeshift NAME …`` runs on an app of NAME alone: its help, and its usage errors,
    are the full app's, word for word; other words (none, ``--help``, a typo) get the full
    app."""
    from typer.testing import CliRunner

    from lakeshift.cli import app as cli

    runner = CliRunner()
    full = cli.build_app()
    assert cli._command_word(["--progress", "copy", "a"]) == "copy"
    assert cli._command_word(["cpy", "a"]) is None and cli._command_word(["-h"]) is None
    for name in cli._COMMANDS:
        one = cli.build_app(name)
        for args in ([name, "--help"], [name, "--no-such-option"]):
            a = runner.invoke(full, args, prog_name="lakeshift")
            b = runner.invoke(one, args, prog_name="lakeshift")
            assert (a.exit_code, a.output) == (b.exit_code, b.output), (name, args)
