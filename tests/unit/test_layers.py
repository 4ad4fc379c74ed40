"""Layers import downward only (docs/architecture.md, "Layers"): every module's imports,
those inside functions and under TYPE_CHECKING included, are read with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "lakeshift"

CORE = {"errors", "model", "reports", "monitor_reports", "urls", "redact", "sizes", "csv_cells"}
FACES = {"cli", "web"}

#: What each layer may import besides the standard library and third parties.
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "stores": {"core", "stores"},
    "control": {"core", "control"},
    "engine": {"core", "stores", "control", "engine", "plan"},
    "plan": {"core", "stores", "control", "engine", "plan"},
    # scale/ (Dask) drives the engine on workers: beside engine and plan, under the API.
    "scale": {"core", "stores", "control", "engine", "plan", "scale"},
    "api": {"core", "stores", "control", "engine", "plan", "scale", "api"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if parts == ["lakeshift"] or parts[1] == "api":
        return "api"  # __init__ re-exports the API
    if parts[1] in CORE:
        return "core"
    return parts[1]


def is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every lakeshift import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else \
        module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from lakeshift.x import y` imports the module lakeshift.x.y when there is one
            out += [(node.lineno, f"{base}.{a.name}" if is_module(f"{base}.{a.name}")
                     else base) for a in node.names]
    return [(n, m) for n, m in out if m == "lakeshift" or m.startswith("lakeshift.")]


#: The web monitor reads and acts only through the public API and its records.
WEB_MAY_IMPORT = {"lakeshift", "lakeshift.api", "lakeshift.model"}
#: The one door from the CLI into the web face: `lakeshift monitor` serves it.
CLI_TO_WEB = {"lakeshift.web.server"}
#: Internals a face may import from the module that owns them (they are not public API):
#: the config file that `init` writes and `run --config` reads, and the Azure auth choices
#: `init` offers.  Both are plain data and parsing, no store or DB.
FACE_INTERNALS = {"lakeshift.plan.jobconfig", "lakeshift.stores.azure.auth"}


def face_may_import(module: str) -> bool:
    return (module in ("lakeshift", "lakeshift.api", "lakeshift.engine.events")
            or module in FACE_INTERNALS
            or layer(module) == "core" or module.split(".")[1] in FACES)


def web_may_import(module: str) -> bool:
    return module in WEB_MAY_IMPORT or module.split(".")[:2] == ["lakeshift", "web"]


MODULES = sorted(PKG.rglob("*.py"))


def test_the_rules_see_every_module() -> None:
    assert len(MODULES) > 40
    assert {layer(module_name(p)) for p in MODULES} >= {"core", "stores", "control", "engine",
                                                         "plan", "api", "cli", "web"}


def test_the_web_face_may_not_reach_below_the_api() -> None:
    for allowed in ("lakeshift", "lakeshift.api", "lakeshift.model", "lakeshift.web.chart"):
        assert web_may_import(allowed)
    for refused in ("lakeshift.control.repository", "lakeshift.engine.events",
                    "lakeshift.errors", "lakeshift.cli.app"):
        assert not web_may_import(refused)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_go_downward(path: Path) -> None:
    me = module_name(path)
    mine = layer(me)
    bad = []
    for line, target in imports(path):
        if mine == "web":
            ok = web_may_import(target)
        elif mine == "cli" and target in CLI_TO_WEB:
            ok = True
        elif mine in FACES:
            ok = face_may_import(target) and not (
                target.split(".")[1:2] and target.split(".")[1] in FACES
                and target.split(".")[1] != mine)
        elif layer(target) in FACES:
            ok = False  # nothing outside the faces imports them
        else:
            ok = layer(target) in ALLOWED[mine]
        if not ok:
            bad.append(f"{path.relative_to(SRC)}:{line} imports {target}")
    assert not bad, "\n".join(dict.fromkeys(bad))
