"""Every option of every command is an argument of the API function of the same name
(issue 10): the CLI is a face over lakeshift.api, so nothing a command can do is out of a
program's reach."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import fields
from typing import Any

import pytest
import typer

import lakeshift
from lakeshift.cli.app import app

#: Command → API function.
FUNCTIONS = {"copy": lakeshift.copy, "plan": lakeshift.plan, "run": lakeshift.run,
             "sync": lakeshift.sync, "status": lakeshift.status, "failures": lakeshift.failures,
             "verify": lakeshift.verify, "check": lakeshift.check, "scan": lakeshift.scan,
             "tune": lakeshift.tune, "delete-job": lakeshift.delete_job}

#: How the output looks, and asking before deleting, are the face's business, not the API's.
PRESENTATION = {"as_json", "progress", "yes"}

#: Positional arguments whose Python spelling differs: SRC DST are source, destination;
#: `plan`'s SRC… DST are sources and destination.
ARGUMENTS = {("copy", "src"): ("source",), ("copy", "dst"): ("destination",),
             ("check", "src"): ("source",), ("check", "dst"): ("destination",),
             ("scan", "src"): ("source",), ("scan", "dst"): ("destination",),
             ("tune", "src"): ("source",), ("tune", "dst"): ("destination",),
             ("plan", "urls"): ("sources", "destination"),
             ("verify", "urls"): ("source", "destination"),
             ("sync", "urls"): ("source", "destination"),
             ("delete-job", "name"): ("job",)}

STORE_FIELDS = {f.name for f in fields(lakeshift.StoreOptions)}


def _params(command: str) -> list[Any]:
    group: Any = typer.main.get_command(app)
    return list(group.commands[command].params)


def test_every_command_with_a_function_is_checked() -> None:
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    # init is the interactive wizard; monitor serves the web face (over lakeshift.run_detail
    # and the other reads of docs/api.md "monitor")
    assert commands - {"init", "monitor"} == set(FUNCTIONS)


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_the_function_has_every_option_of_its_command(command: str) -> None:
    fn = FUNCTIONS[command]
    accepted = inspect.signature(fn).parameters
    missing = []
    for p in _params(command):
        if p.name in PRESENTATION:
            continue
        names = ARGUMENTS.get((command, p.name), (p.name,))
        for name in names:
            if name in accepted:
                continue
            if name in STORE_FIELDS and "store_options" in accepted:
                continue  # one StoreOptions argument carries every store flag
            missing.append(f"{'/'.join(p.opts)} ({name})")
    assert not missing, f"lakeshift.{command} lacks {', '.join(missing)}"


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_store_options_only_where_the_command_opens_stores(command: str) -> None:
    has_flags = any(p.name in STORE_FIELDS for p in _params(command))
    assert has_flags == ("store_options" in inspect.signature(FUNCTIONS[command]).parameters)


def test_the_older_names_remain() -> None:
    assert lakeshift.run_job is lakeshift.run
    assert callable(lakeshift.plan_job)


#: Every blocking function of the API and its async twin.
BLOCKING = {name: getattr(lakeshift, name) for name in
            ("copy", "plan", "run", "sync", "status", "failures", "verify", "check",
             "reset_job", "delete_job")}


@pytest.mark.parametrize("name", sorted(BLOCKING))
def test_each_function_has_an_async_twin_with_the_same_parameters(name: str) -> None:
    twin = getattr(lakeshift, f"{name}_async")
    assert inspect.iscoroutinefunction(twin)
    assert inspect.signature(BLOCKING[name]) == inspect.signature(twin)
    assert f"{name}_async" in lakeshift.__all__


@pytest.mark.parametrize("name", sorted(BLOCKING))
def test_a_blocking_call_inside_a_running_loop_names_the_async_twin(name: str) -> None:
    async def inside() -> None:
        with pytest.raises(lakeshift.UsageError, match=rf"await lakeshift\.{name}_async"):
            BLOCKING[name]("x", "y") if name in ("copy", "check") else (
                BLOCKING[name]("x") if name in ("reset_job", "delete_job")
                else BLOCKING[name](job="x"))

    asyncio.run(inside())


@pytest.mark.parametrize("command", sorted(FUNCTIONS))
def test_each_option_is_spelled_as_the_argument_it_sets(command: str) -> None:
    """Not only the parameter names: the flag a user types is the argument's name with
    dashes (`failures --csv-file` sets csv_file; older spellings may remain beside it)."""
    wrong = []
    for p in _params(command):
        if p.name in PRESENTATION or p.param_type_name != "option":
            continue
        flag = "--" + p.name.replace("_", "-")
        if flag not in p.opts:
            wrong.append(f"{'/'.join(p.opts)} sets {p.name}: add {flag}")
    assert not wrong, f"lakeshift {command}: {', '.join(wrong)}"
