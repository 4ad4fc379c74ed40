"""What Ctrl-C prints: only a command that can continue tells the user to run it again."""

from __future__ import annotations

from typing import Any

import pytest

from lakeshift.cli import app


@pytest.mark.parametrize(("argv", "line"), [
    (["scan", "s3://b/"], "lakeshift: interrupted\n"),
    (["monitor", "--db", "sqlite:///c.db"], "lakeshift: interrupted\n"),
    (["copy", "s3://b/", "az://c/"],
     "lakeshift: interrupted; run the same command again to continue\n"),
    (["run", "--job", "j"], "lakeshift: interrupted; run the same command again to continue\n"),
])
def test_the_interrupted_line_fits_the_command(argv: list[str], line: str, capsys: Any) -> None:
    assert app._interrupted(argv) == 130
    assert capsys.readouterr().err == line
