"""Every command's ``--help`` at 80 columns, into a pipe and on a terminal, shows every
option name, value name and environment variable in full: rich's option table cut them
with ``…`` (``--max-requests-per…``, ``LAKESHIFT_CONCURRE…``), showed flags with a value
(``--dry-run <bool>``, which users then typed: ``--dry-run true``) and wrote the usage line
``{src} {dst}``."""

from __future__ import annotations

import re
from typing import Any

from typer.main import get_command

from lakeshift.cli import app as cli
from tests.e2e.cli import lakeshift
from tests.e2e.test_cli_help_width import env_of, on_terminal

#: typer's own value names: ``<bool>``, ``<str>``, ``<list[str]>``, ``<float>``…
TYPER_TYPE = re.compile(r"<[a-z][a-z\[\], |]*>")


def _commands_listed() -> list[str]:
    """The commands ``lakeshift --help`` lists (into a pipe, 80 columns)."""
    p = lakeshift("--help", env=env_of(COLUMNS="80"))
    assert p.returncode == 0, p.stderr
    panel = p.stdout.split("Commands")[1]
    return re.findall(r"^│ ([a-z][a-z-]*) ", panel, re.MULTILINE)


def _whole(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def _written(command: Any) -> str:
    """What the command's help says in its own words (its help, epilog, each parameter's):
    the ``…`` and ``{`` these hold are the help's own, not cuts."""
    texts = [command.help or "", command.epilog or ""]
    texts += [getattr(p, "help", None) or "" for p in command.params]
    return "\n".join(texts)


def _check(name: str, command: Any, out: str) -> None:
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80, (name, out)
    said = _written(command)
    # Nothing cut: every "…" and "{" is one the texts hold (e.g. "s3://…"), none added.
    assert out.count("…") == said.count("…"), (name, out)
    assert out.count("{") == said.count("{"), (name, out)
    assert TYPER_TYPE.search(out) is None, (name, TYPER_TYPE.search(out), out)
    flat = " ".join(out.replace("│", " ").split())
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    usage = " ".join(["Usage: lakeshift", name, "[OPTIONS]"] + [
        (p.metavar if p.required else f"[{p.metavar}]") + (
            "..." if p.nargs != 1 and " " not in p.metavar and "..." not in p.metavar else "")
        for p in arguments])
    assert usage in flat, (name, usage, out)
    assert "[URLS]" not in flat, (name, out)  # a name that says what to give, not "URLS"
    for p in command.params:
        if p.param_type_name == "argument" or p.hidden:
            continue
        for opt in [*p.opts, *p.secondary_opts]:  # each name in full, on one line
            assert _whole(opt, out), (name, opt, out)
        envvars = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or ())
        for var in envvars:
            assert _whole(var, out), (name, var, out)
        longest = max(p.opts, key=len)
        if p.is_flag:  # no value: the flag's names, then its help
            assert not re.search(rf"{re.escape(longest)} [A-Z]{{2,}}\b", out), (name, longest)
        else:  # the value in upper case, after the names, on their line
            # (Upper case but for words typed as they are: --dask URL|local:N.)
            shape = p.metavar.replace("local:", "") if p.metavar else ""
            assert shape and shape == shape.upper(), (name, longest, p.metavar)
            names = rf"{re.escape(longest)}(, --?[\w-]+)*"  # -j, --job NAME; --csv-file, --csv
            assert re.search(rf"{names} {re.escape(p.metavar)}(\s|$)", out), \
                (name, longest, p.metavar, out)


def test_every_commands_help_at_80_columns_cuts_nothing() -> None:
    listed = _commands_listed()
    assert listed == list(cli._COMMANDS), listed
    group = get_command(cli.build_app())
    env = env_of(COLUMNS="80")
    for name in listed:
        p = lakeshift(name, "--help", env=env)
        assert p.returncode == 0 and p.stderr == "", (name, p.stderr)
        _check(name, group.commands[name], p.stdout)  # type: ignore[attr-defined]
    # On a terminal 80 columns wide, the same.
    for name in ("copy", "plan"):
        lines = on_terminal(80, name, "--help", env=env_of())
        _check(name, group.commands[name], "\n".join(lines))  # type: ignore[attr-defined]


def test_no_commands_help_names_a_value_by_its_python_type() -> None:
    """`sync --lag TEXT`, `tune --sample-size TEXT`, `run --lease-seconds NUMBER` said
    nothing of what to give; each value is named by its kind (tests/unit/
    test_cli_metavars.py checks every option's)."""
    env = env_of(COLUMNS="100")
    for name in _commands_listed():
        p = lakeshift(name, "--help", env=env)
        assert p.returncode == 0, (name, p.stderr)
        generic = re.search(r"--[\w-]+(, -\w)? (TEXT|NUMBER|INTEGER|FLOAT)\b", p.stdout)
        assert generic is None, (name, generic.group(0) if generic else None)
    p = lakeshift("sync", "--help", env=env)
    for named in ("--lag DURATION", "--every DURATION", "--block-size SIZE",
                  "--max-delete N|P%", "--lease-seconds SECONDS", "--s3-endpoint URL"):
        assert named in p.stdout, (named, p.stdout)
