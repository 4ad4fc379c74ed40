"""The engine's pipeline is split along its seams (engine/pipeline*.py: the entry and
planner, the listings, the pool, the per-object action, destination names, the stat
keeping): each module stays near the size DESIGN.md wants and says what it is for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lakeshift.engine as engine

ENGINE = Path(engine.__file__).parent
PIPELINE_MODULES = sorted(p.name for p in ENGINE.glob("pipeline*.py"))


@pytest.mark.parametrize("name", PIPELINE_MODULES)
def test_each_pipeline_module_stays_near_the_size_the_design_wants(name: str) -> None:
    text = (ENGINE / name).read_text(encoding="utf-8")
    assert text.count("\n") <= 520, (name, text.count("\n"))
    assert ast.get_docstring(ast.parse(text)), name
