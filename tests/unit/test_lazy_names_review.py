"""What the lazy public names (PEP 562) must keep from the eager imports they replaced:
each check in a fresh interpreter, where nothing has loaded the lazy parts yet."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_the_typer_tool_finds_the_app_of_lakeshift_cli_app() -> None:
    """``typer lakeshift.cli.app utils docs`` (or ``… run``) looks for ``app`` in
    ``dir(module)``; without it, it picked the function ``main`` as a one-command CLI."""
    out = _run("import typer, typer.cli, lakeshift.cli.app as m; "
               "assert 'app' in dir(m), 'app not in dir'; "
               "found = typer.cli.get_typer_from_module(m); "
               "print(found is m.app, sorted(c.name for c in found.registered_commands))")
    assert out.startswith("True ['check', 'copy', 'delete-job'"), out


def test_star_import_of_lakeshift_model_gives_every_record() -> None:
    """``from lakeshift.model import *`` gave the 27 records lakeshift.reports now
    defines (they were module globals); ``dir()`` lists them too."""
    out = _run("import lakeshift.model as m; names = dir(m); ns = {}; "
               "exec('from lakeshift.model import *', ns); "
               "want = {'JobStatus', 'ScanResult', 'CheckResult', 'TuneResult', "
               "'PartitionSpec', 'CopyResult', 'ObjectInfo', 'Data'}; "
               "print(sorted(want - set(ns)), sorted(want - set(names)))")
    assert out == "[] []"


def test_type_hints_of_the_api_functions_resolve_through_lakeshift_api() -> None:
    _run("import typing, lakeshift.api as api; "
         "typing.get_type_hints(api.status); typing.get_type_hints(api.check_async)")


def test_lakeshift_reloads() -> None:
    """``importlib.reload(lakeshift)`` (IPython's autoreload, a notebook) ran the
    package's code again, whose ``del globals()["plan"]`` found no ``plan`` the second
    time: KeyError."""
    out = _run("import importlib, lakeshift, lakeshift.api; importlib.reload(lakeshift); "
               "print(lakeshift.plan is lakeshift.api.plan)")
    assert out == "True"
