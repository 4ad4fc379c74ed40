"""``lakeshift monitor --help`` says where its two actions are (README's monitor section):
"Cancel this run" on a running run's page, "Rerun N failed partitions" on the job's page,
and that both need --allow-actions and the token, which never comes from the command line."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from lakeshift.cli.app import app


def test_monitor_help_names_each_action_where_it_is_and_what_it_needs() -> None:
    r = CliRunner().invoke(app, ["monitor", "--help"], env={"COLUMNS": "200"},
                           terminal_width=200)
    assert r.exit_code == 0, r.output
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", r.output).split())
    assert "Read-only unless started with --allow-actions and a token " \
           "(LAKESHIFT_MONITOR_TOKEN, or --token-file FILE; never on the command line)" \
           in text, text
    assert '"Cancel this run" on a running run\'s page (/runs/ID' in text, text
    assert '"Rerun N failed partitions" on the job\'s page (/jobs/NAME' in text, text
    assert "each a form asking for that token" in text, text
