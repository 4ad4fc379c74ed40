"""The width ``--help`` is drawn at.

On a terminal: the terminal's width, at most ``WIDEST`` (longer lines are hard to read).
Not on a terminal (a pipe, a file, a test capturing it): ``NOT_A_TERMINAL``, whatever
terminal the command was started from.  A width asked for — click's own
``Context(terminal_width=…)``, typer's ``TERMINAL_WIDTH``, or ``COLUMNS`` — is taken as
given, uncapped (a script that sets ``COLUMNS=200`` gets lines of 200).

Help and epilog paragraphs of prose are joined into one line each (``flowing``), for the
help to wrap at that width, not at the source's.

Typer draws help with rich on a console of ``typer.rich_utils.MAX_WIDTH`` columns (None:
rich's own guess — any terminal width, uncapped, and the terminal's even when only stdin
is one); without rich, click's formatter caps at ``Context.max_content_width`` (80).  The
command classes below set both while their help is drawn, and put them back after.  While
it is drawn, typer's panels of options are drawn by cli/help_layout (every name, value and
environment variable in full at any width); a typer without the function that draws them
gets click's plain help, which cuts nothing either.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from typer.core import HAS_RICH, TyperCommand, TyperGroup

from lakeshift.cli import help_layout

#: The widest help on a terminal, in columns.
WIDEST = 120
#: The width of help written anywhere but a terminal.
NOT_A_TERMINAL = 80


def help_width(environ: Mapping[str, str] | None = None, stream: TextIO | None = None,
               asked: int | None = None) -> int:
    """The width to draw help at, for output to ``stream`` (stdout) in ``environ``
    (os.environ); ``asked``: a width the caller gave (click's ``terminal_width``)."""
    if asked is not None and asked > 0:
        return asked
    env = os.environ if environ is None else environ
    for name in ("TERMINAL_WIDTH", "COLUMNS"):
        raw = env.get(name, "").strip()
        if raw.isascii() and raw.isdigit() and int(raw) > 0:
            return int(raw)
    out = sys.stdout if stream is None else stream
    try:
        if out.isatty():
            columns = os.get_terminal_size(out.fileno()).columns
            if columns > 0:  # a pseudo-terminal may not know its size yet (0)
                return min(columns, WIDEST)
    except (AttributeError, OSError, ValueError):  # no real file behind it
        pass
    return NOT_A_TERMINAL


def flowing(text: str) -> str:
    """``text`` with each paragraph of prose on one line, for help to wrap at its width.

    A help text is written wrapped at the source's width; typer's rich help keeps every
    line break, so at 80 columns each of those lines wraps again (a long line, then a few
    words alone) and on a wide terminal the text stays at the source's width.  A paragraph
    (between blank lines) whose lines all start at the margin is prose: its lines are
    joined.  One with an indented line (an example command, one on two lines) or marked
    ``\b`` (click's "keep as written") is kept as it is."""
    paragraphs = text.split("\n\n")
    for i, paragraph in enumerate(paragraphs):
        lines = paragraph.strip("\n").split("\n")
        if paragraph.startswith("\b") or any(line[:1].isspace() for line in lines):
            continue
        paragraphs[i] = " ".join(line.strip() for line in lines)
    return "\n\n".join(paragraphs)


#: typer's functions that help_layout's panel of options stands in for, and uses.
_PANEL_FUNCTIONS = ("_print_options_panel", "_get_parameter_help")


@contextmanager
def drawn_at_help_width(ctx: Any) -> Iterator[bool]:
    """While help is drawn: typer's rich console and click's formatter at ``help_width``,
    typer's panels of options drawn by ``help_layout.options_panel``.  Yields whether that
    could be done (False: typer's rich help is not what this expects; draw click's)."""
    width = help_width(asked=ctx.terminal_width)
    saved = ctx.terminal_width, ctx.max_content_width
    ctx.terminal_width = ctx.max_content_width = width
    rich_utils: Any = _typer_rich_utils() if HAS_RICH else None
    laid_out = rich_utils is not None and all(hasattr(rich_utils, f) for f in _PANEL_FUNCTIONS)
    before = (rich_utils.MAX_WIDTH, getattr(rich_utils, _PANEL_FUNCTIONS[0], None)) \
        if rich_utils is not None else None
    if rich_utils is not None:
        rich_utils.MAX_WIDTH = width
        if laid_out:
            rich_utils._print_options_panel = help_layout.options_panel
    try:
        yield laid_out
    finally:
        ctx.terminal_width, ctx.max_content_width = saved
        if rich_utils is not None and before is not None:
            rich_utils.MAX_WIDTH = before[0]
            if laid_out:
                rich_utils._print_options_panel = before[1]


@contextmanager
def _plain_unless(laid_out: bool, command: Any) -> Iterator[None]:
    """click's plain help while ``command``'s help is drawn, unless ``laid_out``."""
    mode = command.rich_markup_mode
    if not laid_out:
        command.rich_markup_mode = None
    try:
        yield
    finally:
        command.rich_markup_mode = mode


def _typer_rich_utils() -> Any:
    """``typer.rich_utils`` (it imports rich: only here, where typer's help would import it
    anyway).  Its import reads ``TERMINAL_WIDTH`` with ``int()``: a value that is no number
    ("wide") raised ValueError, an internal error (exit 4), where ``help_width`` ignores it
    as it ignores such a ``COLUMNS``.  That value is hidden from the import (its width is
    replaced while help is drawn anyway)."""
    raw = os.environ.get("TERMINAL_WIDTH")
    try:
        int(raw or "0")
    except ValueError:
        del os.environ["TERMINAL_WIDTH"]
        try:
            return importlib.import_module("typer.rich_utils")
        finally:
            os.environ["TERMINAL_WIDTH"] = str(raw)
    return importlib.import_module("typer.rich_utils")


class HelpCommand(TyperCommand):
    """A command whose help is drawn at ``help_width``, laid out by cli/help_layout: each
    value named (SRC, N, TEXT), a flag with none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        help_layout.name_values(self.params)

    def get_help(self, ctx: Any) -> str:
        with drawn_at_help_width(ctx) as laid_out, _plain_unless(laid_out, self):
            return str(super().get_help(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return help_layout.usage_pieces(self, ctx)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        """click's plain help (typer without rich): typer's rows, an argument named as in
        the rich help (``SRC``, not ``src <str>``)."""
        arguments, options = help_layout.plain_records(self, ctx)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class HelpGroup(TyperGroup):
    """The ``lakeshift`` group, its help drawn at ``help_width``."""

    def get_help(self, ctx: Any) -> str:
        with drawn_at_help_width(ctx) as laid_out, _plain_unless(laid_out, self):
            return str(super().get_help(ctx))
