"""cli/help_layout stands in for typer's panel of options only while help is drawn; a typer
without the functions it expects gets click's plain help, which cuts nothing either."""

from __future__ import annotations

import pytest
from typer import rich_utils
from typer.testing import CliRunner

from lakeshift.cli import app as cli
from lakeshift.cli import help_layout


def _help(args: list[str]) -> str:
    r = CliRunner().invoke(cli.build_app(args[0]), args, prog_name="lakeshift",
                           terminal_width=80, env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    return r.output


def test_typers_panel_is_put_back_after_help() -> None:
    own = rich_utils._print_options_panel
    assert own is not help_layout.options_panel
    out = _help(["copy", "--help"])
    assert "--max-requests-per-second N" in out and "╭─ Options" in out
    assert rich_utils._print_options_panel is own


def test_a_typer_without_the_panel_function_gets_clicks_plain_help(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(rich_utils, "_print_options_panel")
    out = _help(["copy", "--help"])
    assert "╭" not in out and "\nOptions:\n" in out, out  # click's formatter, not rich's
    assert "Usage: lakeshift copy [OPTIONS] SRC DST" in out
    assert "\n  SRC  Source:" in out and "<str>" not in out, out  # typer's: "src <str>"
    assert "--max-requests-per-second N" in out and "LAKESHIFT_CONCURRENCY" in out
    assert "--dry-run " in out and "<bool>" not in out
    assert not hasattr(rich_utils, "_print_options_panel")  # nothing left behind
    assert _help(["plan", "--help"]).count("…") == 1  # "SRC [SRC…] DST", the help's own


def test_a_missing_argument_is_named_as_the_usage_line_names_it() -> None:
    r = CliRunner().invoke(cli.build_app("copy"), ["copy", "/tmp"], prog_name="lakeshift")
    assert r.exit_code == 2 and "Missing argument 'DST'" in r.output, r.output
