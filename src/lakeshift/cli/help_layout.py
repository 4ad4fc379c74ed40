"""How ``--help`` lays out a command's arguments and options, readable at 80 columns.

Typer's rich help draws options as a table of six columns (long name, short name, negative
long, negative short, type, help) whose cells rich cuts with ``…`` when they do not fit:
at 80 columns ``--max-requests-per…``, ``LAKESHIFT_CONCURRE…``, and a help column ~20
characters wide.  Here each option is one line of names (``-c, --concurrency N``) beside
its help, as click lays them out: a name wider than the names column (about 3/10 of the
width, less when a help holds a word that would not fit beside it) gets a line of its own,
its help starting on the next line under the others'.
Every cell wraps at spaces and folds a word longer than its column; nothing is cut.

Values are named in the usual upper-case style: the parameter's own ``metavar``, else
``N`` (whole number), ``NUMBER``, ``PATH``, ``TEXT``; a flag takes none (typer wrote
``<bool>``, which read as "give a value": ``--dry-run true``); an argument is its name in
upper case, ``SRC DST`` on the usage line (typer wrote ``{src} {dst}``).  An argument that
takes several values is followed by ``...``, unless its ``metavar`` already says what it
takes (``SRC DST``, ``SRC... DST``): ``[URLS]...`` told a user nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: A value's name by the name of the type its parameter is annotated with.
_VALUE_NAMES = {"int": "N", "float": "NUMBER", "str": "TEXT", "Path": "PATH",
                "PurePath": "PATH"}
#: The names column's widest, as a share of the width inside a panel.
_NAMES_SHARE = 0.3
#: The names column's narrowest.
_NAMES_LEAST = 12
#: The columns a panel takes around its content: a border and one space on each side.
_PANEL_FRAME = 4


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def _takes_no_value(param: Any) -> bool:
    return bool(getattr(param, "is_flag", False) or getattr(param, "count", False))


def value_name(param: Any) -> str | None:
    """What ``param``'s value is called in help: None for a flag (it takes none)."""
    if _takes_no_value(param):
        return None
    if param.metavar is not None:
        return str(param.metavar)
    if _is_argument(param):
        return str(param.name).upper()
    desc = getattr(param, "type_descriptor", None)
    if desc is None:  # not typer's parameter: click names it (TEXT, INTEGER…)
        return None
    if getattr(desc, "is_choice", False) and getattr(desc, "choices", None):
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices) + "]"
    annotation = desc.annotation
    args = getattr(annotation, "__args__", None)
    if getattr(desc, "is_list", False) and args:  # a repeatable option: its element
        annotation = args[0]
    name = getattr(annotation, "__name__", "")
    return _VALUE_NAMES.get(name, name.upper() or "VALUE")


def name_values(params: Iterable[Any]) -> None:
    """Give each parameter that takes a value and has no ``metavar`` its ``value_name``:
    click's own help, usage line and error messages ("Missing argument 'SRC'") then name it
    as the rich help does."""
    for param in params:
        if param.metavar is None:
            name = value_name(param)
            if name is not None:
                param.metavar = name


def _argument_name(param: Any) -> tuple[str, str]:
    """An argument's name and what follows it: (``SRC``, ``""``); (``FILE``, ``...``) for
    one that takes several values, unless its name says what it takes already
    (``SRC DST``, ``SRC... DST``)."""
    name = value_name(param) or str(param.name).upper()
    several = param.nargs != 1 and " " not in name and "..." not in name
    return name, "..." if several else ""


def usage_pieces(command: Any, ctx: Any) -> list[str]:
    """The usage line after the command's name: ``[OPTIONS] SRC [DST]``, ``[SRC DST]``."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if _is_argument(param) and not getattr(param, "hidden", False):
            name, more = _argument_name(param)
            pieces.append((name if param.required else f"[{name}]") + more)
        elif not _is_argument(param):
            pieces.extend(param.get_usage_pieces(ctx))
    return pieces


def names_of(param: Any) -> list[tuple[str, str]]:
    """``param``'s names and value, as (text, kind) pieces: kind is ``switch`` (-c),
    ``option`` (--concurrency), ``negative`` (--no-adaptive), ``value`` (N) or ``sep``."""
    pieces: list[tuple[str, str]] = []
    if _is_argument(param):
        return [("".join(_argument_name(param)), "value")]
    opts = sorted(param.opts, key=lambda o: o.startswith("--"))  # -c before --concurrency
    for i, opt in enumerate(opts):
        if i:
            pieces.append((", ", "sep"))
        pieces.append((opt, "option" if opt.startswith("--") else "switch"))
    for i, opt in enumerate(param.secondary_opts):
        pieces.append((" / " if i == 0 else ", ", "sep"))
        pieces.append((opt, "negative"))
    value = value_name(param)
    if value is not None:
        pieces.append((" ", "sep"))
        pieces.append((value + ("..." if param.nargs not in (1, 0) else ""), "value"))
    return pieces


def names_text(param: Any) -> str:
    return "".join(text for text, _ in names_of(param))


def plain_records(command: Any, ctx: Any) -> tuple[list[tuple[str, str]],
                                                     list[tuple[str, str]]]:
    """The (names, help) rows of click's plain formatter (typer without rich): arguments,
    options.  typer's own rows name an argument ``src <str>``."""
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if _is_argument(param):
            arguments.append((names_text(param), record[1]))
        else:
            options.append((names_text(param), record[1]))
    return arguments, options


def options_panel(*, name: str, params: list[Any], ctx: Any, markup_mode: Any,
                  console: Any) -> None:
    """Draw one panel of arguments or options (typer's ``_print_options_panel``, whose
    place this takes while help is drawn: cli/help_width)."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text
    from typer import rich_utils

    if not params:
        return
    styles = {"option": rich_utils.STYLE_OPTION, "switch": rich_utils.STYLE_SWITCH,
              "negative": rich_utils.STYLE_NEGATIVE_OPTION, "value": rich_utils.STYLE_TYPES,
              "sep": ""}
    inner = max(console.width - _PANEL_FRAME, 20)
    # One names column for every panel of the command, for them to line up; narrower when
    # a help holds a word (a comma-separated list) that would not fit beside it.
    shown = [p for p in ctx.command.get_params(ctx) if not getattr(p, "hidden", False)]
    column = min(max(len(names_text(p)) for p in [*shown, *params]),
                 max(_NAMES_LEAST, int(inner * _NAMES_SHARE)))
    longest_word = max((len(word) for p in shown for word in (p.help or "").split()),
                       default=0)
    column = max(_NAMES_LEAST, min(column, inner - 2 - longest_word))

    def grid() -> Table:
        table = Table.grid(padding=(0, 2, 0, 0), expand=True)
        table.add_column(width=column, overflow="fold")
        table.add_column(ratio=1, overflow="fold")
        return table

    parts: list[Any] = []
    rows = grid()
    for param in params:
        label = Text(overflow="fold")
        for text, kind in names_of(param):
            label.append(text, style=styles[kind])
        description = _description(param, ctx, markup_mode, rich_utils)
        if label.cell_len <= column:
            rows.add_row(label, description)
            continue
        if rows.row_count:
            parts.append(rows)
            rows = grid()
        parts.append(label)
        rows.add_row("", description)
    if rows.row_count:
        parts.append(rows)
    console.print(Panel(Group(*parts), border_style=rich_utils.STYLE_OPTIONS_PANEL_BORDER,
                        title=name, title_align=rich_utils.ALIGN_OPTIONS_PANEL))


def _description(param: Any, ctx: Any, markup_mode: Any, rich_utils: Any) -> Any:
    """``param``'s help, then its environment variable, default and "required", as typer
    writes them (``[env var: …]``), after the help on the same lines, wrapping at spaces."""
    from rich.console import Group
    from rich.text import Text

    items = list(rich_utils._get_parameter_help(param=param, ctx=ctx,
                                                 markup_mode=markup_mode).renderables)
    prose = items.pop(0) if getattr(param, "help", None) and items else None
    extras = Text(overflow="fold")
    for item in items:
        if extras:
            extras.append(" ")
        extras.append_text(item if isinstance(item, Text) else Text(str(item)))
    if prose is None:
        return extras
    if isinstance(prose, Text):
        text = prose.copy()
        text.overflow = "fold"
        if extras:
            text.append(" ")
            text.append_text(extras)
        return text
    return Group(prose, extras) if extras else prose  # Markdown: extras on a line below
