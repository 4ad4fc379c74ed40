"""Every option's value is named in --help by what it is (DURATION like 30s or 5m, SIZE
like 8MiB, N, URL, FILE, MODE…), never by its Python type (TEXT, NUMBER): `sync --lag
TEXT` said nothing about `5m`.  The same flag is named alike in every command."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer

from lakeshift.cli.app import app
from lakeshift.cli.help_layout import value_name

#: What help_layout (or click) calls a value when nothing names it.
GENERIC = {"TEXT", "NUMBER", "VALUE", "INTEGER", "FLOAT", "STRING"}

#: Flags whose kind is known: durations, sizes, counts, URLs, files.
KINDS = {
    "DURATION": ("--lag", "--overlap", "--every"),
    "SIZE": ("--block-size", "--single-put-max", "--sample-size"),
    "RATE": ("--max-bandwidth",),  # a size per second: 200MiB/s (or 200MiB)
    "N": ("--concurrency", "--batch-count", "--target-objects", "--limit", "--offset",
          "--sample", "--sample-objects", "--max-requests-per-second", "--run"),
    "URL": ("--db", "--s3-endpoint", "--inventory"),
    "URL|local:N": ("--dask",),  # a scheduler's address, or N local worker processes
    "FILE": ("--config", "--partitions-file", "--files-from", "--proof-log", "--csv-file",
             "--map-identities", "--prices", "--output"),
    "MODE": ("--overwrite", "--invalid-names", "--copy-mode", "--progress", "--azure-auth",
             "--folder-markers", "--partition-by"),
}


def _options() -> Iterator[tuple[str, str, Any]]:
    """(command, its longest flag, the option) for every option of every command."""
    group: Any = typer.main.get_command(app)
    for name, command in sorted(group.commands.items()):
        for param in command.params:
            if param.param_type_name == "option":
                yield name, max(param.opts, key=len), param


def test_no_option_value_is_named_by_its_python_type() -> None:
    generic = [f"lakeshift {c} {flag} {value_name(p)}" for c, flag, p in _options()
               if value_name(p) in GENERIC]
    assert not generic, "give these a metavar naming their kind: " + "; ".join(generic)


def test_one_flag_is_named_alike_in_every_command() -> None:
    names: dict[str, dict[str, list[str]]] = {}
    for command, flag, p in _options():
        if (name := value_name(p)) is not None:
            names.setdefault(flag, {}).setdefault(name, []).append(command)
    mixed = {flag: by_name for flag, by_name in names.items() if len(by_name) > 1}
    assert not mixed, mixed


def test_durations_sizes_counts_urls_files_and_modes_say_so() -> None:
    want = {flag: kind for kind, flags in KINDS.items() for flag in flags}
    seen = {flag for _, flag, _ in _options()}
    assert set(want) <= seen, set(want) - seen  # (a flag renamed: update KINDS)
    wrong = [f"lakeshift {c} {flag} {value_name(p)} (want {want[flag]})"
             for c, flag, p in _options() if flag in want and value_name(p) != want[flag]]
    assert not wrong, wrong
