"""lakeshift and lakeshift.api bind their names on first use (PEP 562), but a type checker
must still see each public name with its type and refuse a name neither has: a module
``__getattr__`` visible to mypy types every unknown attribute as Any, so a typo such as
``lakeshift.api.stauts(...)`` passed ``mypy --strict`` once api.py became a package."""

from __future__ import annotations

import re
from pathlib import Path

import lakeshift
import lakeshift.api


def test_mypy_sees_every_public_name_typed_and_refuses_unknown_ones(tmp_path: Path) -> None:
    from mypy import api as mypy

    lines = ["import lakeshift", "import lakeshift.api as api"]
    public = [("lakeshift", n) for n in lakeshift.__all__ if n != "__version__"] + [
        ("api", n) for n in lakeshift.api.__all__]
    lines += [f"reveal_type({where}.{name})" for where, name in public]
    first_typo = len(lines) + 1
    lines += ["api.stauts()", "lakeshift.cpoy('a', 'b')"]
    snippet = tmp_path / "uses.py"
    snippet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, _, _ = mypy.run(["--strict", "--follow-imports=silent", "--no-error-summary",
                          f"--cache-dir={tmp_path / 'cache'}", str(snippet)])
    revealed = dict(re.findall(r":(\d+): note: Revealed type is \"(.*)\"", out))
    for i, (where, name) in enumerate(public, start=3):
        assert revealed.get(str(i), "Any") != "Any", (where, name, out)
    errors = re.findall(r":(\d+): error: Module has no attribute \"(\w+)\"", out)
    assert errors == [(str(first_typo), "stauts"), (str(first_typo + 1), "cpoy")], out
