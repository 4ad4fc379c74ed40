"""lakeshift.api is a package of one module per family of commands (it was one module of
1,700 lines): every name the modules define is reached as ``lakeshift.api.X`` and by
``from lakeshift.api import X``, the package binds none of them until asked, and a copy
loads only the modules a copy needs.  Each check of what is loaded runs in a fresh
interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import lakeshift.api as api

PACKAGE = Path(api.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _defined(module: str) -> set[str]:
    """The names ``module``'s top level binds by def, class or assignment."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names - {"__all__"}


def test_the_package_maps_every_name_its_modules_define_to_its_module() -> None:
    assert set(MODULES) == set(api._MODULES)
    for module in MODULES:
        for name in _defined(module):
            assert api._HOMES.get(name) == f"lakeshift.api.{module}", (module, name)


@pytest.mark.parametrize("module", MODULES)
def test_each_module_stays_near_the_size_the_design_wants(module: str) -> None:
    lines = (PACKAGE / f"{module}.py").read_text(encoding="utf-8").count("\n")
    assert lines <= 520, (module, lines)


def test_the_names_tests_docs_and_faces_use_resolve_to_their_definitions() -> None:
    from lakeshift.api import checks, common, copying, jobs, monitor, state, tuning

    for name, module in [("_blocking", common), ("_planning_db", common),
                         ("reading_only", common), ("_copy_pair", copying),
                         ("copy", copying), ("plan", jobs), ("run_job", jobs),
                         ("write_failures_csv", state), ("FAILURE_FIELDS", state),
                         ("ATTENTION_STATES", state), ("verify", checks),
                         ("_shown_settings", monitor), ("MAX_SAMPLES", monitor),
                         ("tune", tuning)]:
        assert getattr(api, name) is getattr(module, name), name
    from lakeshift import model
    from lakeshift.api import DEFAULT_DB, JobStatus, StoreOptions, UsageError, csv_cell
    from lakeshift.control import DEFAULT_DB as default_db
    from lakeshift.csv_cells import csv_cell as cell
    from lakeshift.errors import UsageError as usage_error
    from lakeshift.stores.base import StoreOptions as store_options

    assert (DEFAULT_DB, JobStatus, StoreOptions, UsageError, csv_cell) == (
        default_db, model.JobStatus, store_options, usage_error, cell)
    assert set(api.__all__) <= set(dir(api))
    with pytest.raises(AttributeError):
        api.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from lakeshift.api import no_such_name", {})


def _loaded(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "; import json, sys; "
                          "print(json.dumps(sorted(m for m in sys.modules "
                          "if m.startswith('lakeshift.api'))))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_package_loads_a_module_only_when_one_of_its_names_is_asked_for() -> None:
    assert _loaded("import lakeshift.api") == ["lakeshift.api"]
    assert _loaded("from lakeshift.api import copy") == [
        "lakeshift.api", "lakeshift.api.common", "lakeshift.api.copying"]
    assert _loaded("import lakeshift; lakeshift.status") == [
        "lakeshift.api", "lakeshift.api.common", "lakeshift.api.state"]


def test_star_import_gives_every_public_name() -> None:
    ns: dict[str, object] = {}
    exec("from lakeshift.api import *", ns)
    assert set(api.__all__) <= set(ns)
