"""``--help`` as wide as the terminal, up to 120 columns; 80 when not on a terminal (a pipe,
a file, a test); a width asked for (``COLUMNS``, typer's ``TERMINAL_WIDTH``, click's
``terminal_width``) as given.  The terminal is a real pseudo-terminal of a set size."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lakeshift.cli.help_width import NOT_A_TERMINAL, WIDEST, flowing, help_width
from tests import servers
from tests.e2e.cli import BIN, lakeshift

#: CSI sequences (colours, cursor) and OSC 8 hyperlinks rich writes to a terminal.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\")


def env_of(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no width asked for, a terminal type rich draws on."""
    env = servers.clean_env()
    for name in ("COLUMNS", "LINES", "TERMINAL_WIDTH", "TYPER_USE_RICH", "NO_COLOR",
                 "FORCE_COLOR", "_TYPER_FORCE_DISABLE_TERMINAL"):
        env.pop(name, None)
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


@contextmanager
def terminal(columns: int) -> Iterator[tuple[int, int]]:
    """A pseudo-terminal ``columns`` wide: (its reading end, its terminal end)."""
    reader, tty = pty.openpty()
    fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    try:
        yield reader, tty
    finally:
        for fd in (reader, tty):
            try:
                os.close(fd)
            except OSError:
                pass


def on_terminal(columns: int, *args: str, env: dict[str, str]) -> list[str]:
    """The lines ``lakeshift ARGS`` writes to a terminal ``columns`` wide (colours removed)."""
    with terminal(columns) as (reader, tty):
        proc = subprocess.Popen([str(BIN), *args], env=env, stdin=subprocess.DEVNULL,
                                stdout=tty, stderr=subprocess.PIPE)
        os.close(tty)
        out = b""
        while True:
            ready, _, _ = select.select([reader], [], [], 60)
            assert ready, "no output within 60 s"
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # EIO: the command closed the terminal (exited)
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    lines = ANSI.sub("", out.decode()).replace("\r\n", "\n").split("\n")
    assert any("Usage: lakeshift" in line for line in lines), lines
    return lines


def widest(lines: list[str]) -> int:
    return max(len(line.rstrip()) for line in lines)


def paragraph(lines: list[str], start: str) -> list[str]:
    """The lines of the paragraph that begins with ``start`` (up to a blank line)."""
    first = next(i for i, line in enumerate(lines) if line.strip().startswith(start))
    end = next((i for i in range(first, len(lines)) if not lines[i].strip()), len(lines))
    return [line.rstrip() for line in lines[first:end]]


@pytest.mark.parametrize("args", [["--help"], ["copy", "--help"]])
def test_help_on_a_wide_terminal_is_as_wide_as_it_up_to_120(args: list[str]) -> None:
    assert widest(on_terminal(200, *args, env=env_of())) == WIDEST  # not 200, not 80
    # Narrower than the cap: the terminal's own width.
    assert widest(on_terminal(100, *args, env=env_of())) == 100


def test_help_without_rich_uses_the_terminal_too() -> None:
    """click's own formatter (typer without rich) caps help at 80 by itself."""
    lines = on_terminal(200, "copy", "--help", env=env_of(TYPER_USE_RICH="0"))
    assert NOT_A_TERMINAL < widest(lines) <= WIDEST
    assert "--dry-run" in "\n".join(lines)


@pytest.mark.parametrize("args", [["--help"], ["copy", "--help"]])
def test_help_into_a_pipe_is_80_unless_a_width_is_asked_for(args: list[str]) -> None:
    piped = lakeshift(*args, env=env_of())
    assert piped.returncode == 0, piped.stderr
    assert widest(piped.stdout.splitlines()) == NOT_A_TERMINAL
    wide = lakeshift(*args, env=env_of(COLUMNS="150"))
    assert widest(wide.stdout.splitlines()) == 150  # asked for: not capped
    # A COLUMNS given on a terminal wins too.
    assert widest(on_terminal(200, *args, env=env_of(COLUMNS="90"))) == 90


@pytest.mark.parametrize("name", ["COLUMNS", "TERMINAL_WIDTH"])
@pytest.mark.parametrize("value", ["0", "-1", "abc", ""])
def test_a_width_that_is_no_width_is_ignored(name: str, value: str) -> None:
    """A width set to nothing usable: 80 into a pipe, the terminal's on one.  typer's own
    import read ``TERMINAL_WIDTH=abc`` with int(): help was an internal error (exit 4)."""
    piped = lakeshift("copy", "--help", env=env_of(**{name: value}))
    assert piped.returncode == 0, piped.stderr
    assert widest(piped.stdout.splitlines()) == NOT_A_TERMINAL
    assert widest(on_terminal(100, "--help", env=env_of(**{name: value}))) == 100


def test_the_width_rules() -> None:
    with terminal(200) as (_, tty), os.fdopen(os.dup(tty), "w") as wide, \
            terminal(60) as (_, narrow_tty), os.fdopen(os.dup(narrow_tty), "w") as narrow:
        assert help_width({}, wide) == WIDEST
        assert help_width({}, narrow) == 60
        assert help_width({"COLUMNS": "150"}, wide) == 150
        assert help_width({"TERMINAL_WIDTH": "99", "COLUMNS": "150"}, wide) == 99
        assert help_width({"COLUMNS": "wide"}, wide) == WIDEST  # not a number: ignored
        assert help_width({}, wide, asked=70) == 70  # click's terminal_width
    read, write = os.pipe()
    with os.fdopen(read), os.fdopen(write, "w") as pipe:
        assert help_width({}, pipe) == NOT_A_TERMINAL


def test_prose_flows_to_the_width_and_examples_keep_their_lines() -> None:
    """Help is written wrapped at the source's width; drawn as written it wrapped again at
    80 (a long line, then a few words alone) and stayed that narrow on a wide terminal."""
    piped = lakeshift("plan", "--help", env=env_of())
    prose = paragraph(piped.stdout.splitlines(), "Partitions come from --prefix flags")
    assert len(prose) >= 4 and all(len(line) > 66 for line in prose[:-1]), prose
    wide = paragraph(on_terminal(200, "plan", "--help", env=env_of()),
                     "Partitions come from --prefix flags")
    assert len(wide) < len(prose) and all(len(line) > 100 for line in wide[:-1]), wide
    assert " ".join(" ".join(prose).split()) == " ".join(" ".join(wide).split())
    copy = [line.strip() for line in on_terminal(200, "copy", "--help", env=env_of())]
    i = copy.index("AWS_ENDPOINT_URL=http://127.0.0.1:5000 AZURE_STORAGE_CONNECTION_STRING='...'")
    assert copy[i + 1] == "lakeshift copy s3://demo/lake/ az://lake/ --json"  # as written


def test_what_flows_and_what_is_kept() -> None:
    text = ("First line\nof the summary.\n\nProse written\nover three\nlines.\n\n"
            "Example:\n\n  lakeshift copy a \\\n      b\n\n\b\nkept\nas written\n")
    assert flowing(text) == ("First line of the summary.\n\nProse written over three lines."
                             "\n\nExample:\n\n  lakeshift copy a \\\n      b\n\n"
                             "\b\nkept\nas written\n")
