"""The ``lakeshift`` command.  Every user mistake ends in one line and an exit code
(DESIGN.md §4); a bug ends in one line pointing at a log file with the traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Annotated, Any, NoReturn

import typer

from lakeshift import __version__
from lakeshift.cli.help_width import HelpCommand, HelpGroup, flowing
from lakeshift.cli.lazy_params import install as _lazy_params
from lakeshift.cli.text import StopNotice
from lakeshift.errors import LakeshiftError
from lakeshift.redact import redact

_lazy_params()  # typer's Pydantic adapters only for the values that need one


def _version(value: bool) -> None:
    if value:
        print(f"lakeshift {__version__}")
        raise typer.Exit(0)


def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Migrate data lakes into Azure Data Lake Storage Gen2.

    Example: lakeshift copy s3://my-bucket/raw/ abfss://lake@myaccount.dfs.core.windows.net/raw/
    """


#: Every command, in ``--help`` order: name -> (module in lakeshift.cli, function, help,
#: epilog).  Help and epilog are literal text, or the name of an attribute of the module.
_COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "copy": ("copy_cmd", "copy", "HELP", "EPILOG"),
    "verify": ("verify_cmd", "verify", "HELP", "EPILOG"),
    "tune": ("tune_cmd", "tune", "HELP", "EPILOG"),
    "plan": ("job_cmds", "plan", "PLAN_HELP", "PLAN_EPILOG"),
    "run": ("job_cmds", "run", "RUN_HELP", "RUN_EPILOG"),
    "sync": ("sync_cmd", "sync", "HELP", "EPILOG"),
    "scan": ("scan_cmd", "scan", "HELP", "EPILOG"),
    "check": ("setup_cmds", "check", "CHECK_HELP", "CHECK_EPILOG"),
    "init": ("setup_cmds", "init", "INIT_HELP",
             "Example:\n\n  lakeshift init && lakeshift run --config lakeshift.toml"),
    "status": ("job_cmds", "status", "Jobs, runs and partitions: state, objects, bytes, "
               "throughput, duration, last error.",
               "Example:\n\n  lakeshift status --job raw --json"),
    "failures": ("job_cmds", "failures", "Every object of a job that failed (or was "
                 "skipped on purpose) and has not been copied since: key, error class, "
                 "message, attempts, time; --run N: what run N met.",
                 "Example:\n\n  lakeshift failures --job raw --csv failed.csv\n\nThen, to "
                 "retry just those objects:\n\n  lakeshift sync --job raw --files-from "
                 "failed.csv"),
    "monitor": ("monitor_cmd", "monitor", "HELP", "EPILOG"),
    "delete-job": ("job_cmds", "delete_job", "DELETE_HELP", "DELETE_EPILOG"),
}


def build_app(only: str | None = None) -> typer.Typer:
    """The ``lakeshift`` typer app: every command, or only the command ``only``.

    A command's module is imported, and typer resolves its parameters' annotations, only
    when the command is in the app: ``lakeshift copy`` does not import the web monitor, the
    control database's commands or ``tune``, nor build their click commands (typer builds
    every registered command's parameters on each invocation).
    """
    import importlib

    application = typer.Typer(
        name="lakeshift",
        help="Migrate data lakes (S3, Azure Blob, local disk) into Azure Data Lake Storage "
             "Gen2.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        cls=HelpGroup,  # help as wide as the terminal, up to 120 columns (cli/help_width)
    )
    application.callback()(root)
    for name, (module_name, function, help_text, epilog) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"lakeshift.cli.{module_name}")
        application.command(name, help=flowing(getattr(module, help_text, help_text)),
                            epilog=flowing(getattr(module, epilog, epilog)),
                            cls=HelpCommand)(getattr(module, function))
    return application


def _command_word(args: list[str]) -> str | None:
    """The command a command line names, when it is one of ours (the root takes no option
    with a value, so the first word not starting with ``-`` is the command)."""
    for arg in args:
        if not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
    return None


_app: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    """``app``: the full app, built on first use (tests and ``typer`` tools import it)."""
    global _app
    if name == "app":
        if _app is None:
            _app = build_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """With ``app``: the ``typer`` tool (``typer lakeshift.cli.app utils docs``) looks for
    it in ``dir()``, and without it took ``main`` for a one-command CLI."""
    return sorted({*globals(), "app"})


#: The exit code of a command cut short because its stdout's reader left (128 + SIGPIPE).
_STDOUT_CLOSED = 141


def _error(kind: str, message: str, exit_code: int, as_json: bool) -> int:
    """One line on stderr; with ``--json`` also ``{"error": {...}}`` on stdout, so a script
    reading stdout gets JSON whatever happened."""
    message = redact(message)
    print(f"lakeshift: {message}", file=sys.stderr)
    if as_json:
        try:
            json.dump({"error": {"kind": kind, "message": message, "exit_code": exit_code}},
                      sys.stdout)
            print(flush=True)
        except BrokenPipeError:  # stdout's reader is gone (``| head``): the code still says it
            _drop_stdout()
    return exit_code


def _stdout_closed() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no real stdout (captured, closed)
        return False


def _stdout_identity() -> tuple[int, int] | None:
    """(device, inode) of what stdout is now, or None."""
    try:
        st = os.fstat(sys.stdout.fileno())
        return st.st_dev, st.st_ino
    except (AttributeError, OSError, ValueError):
        return None


def _stdout_dropped(before: tuple[int, int] | None) -> bool:
    """Whether stdout was pointed at /dev/null since ``before`` (rich does so itself when
    its reader leaves: ``Console.on_broken_pipe``, as with ``--help | head -1``)."""
    now = _stdout_identity()
    if before is None or now is None or now == before:
        return False
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return now == (null.st_dev, null.st_ino)


def _drop_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone: what is still buffered, and the
    interpreter's final flush, then go nowhere instead of raising BrokenPipeError."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, sys.stdout.fileno())
        finally:
            os.close(null)
    except (AttributeError, OSError, ValueError):
        pass


def _internal_error(exc: BaseException, as_json: bool) -> int:
    import tempfile  # (only after a bug: it imports shutil, bz2, lzma)
    import traceback

    fd, path = tempfile.mkstemp(prefix=f"lakeshift-error-{time.strftime('%Y%m%d-%H%M%S')}-",
                                suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(redact("".join(traceback.format_exception(exc))))
    return _error("internal", f"internal error ({type(exc).__name__}); this is a bug — the "
                  f"traceback is in {path}", 4, as_json)


def _click_exceptions() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...],
                                  tuple[type[Any], ...]]:
    """Typer ships its own copy of click (typer._click) in newer releases; accept both."""
    import click

    mods: list[Any] = [click]
    try:
        from typer import _click

        mods.append(_click)
    except ImportError:
        pass

    def classes(name: str) -> tuple[type[Any], ...]:
        found = [getattr(m.exceptions, name, None) for m in mods] + [getattr(typer, name, None)]
        return tuple({c for c in found if isinstance(c, type)})

    return classes("Exit"), classes("Abort"), classes("ClickException")


#: Commands that leave nothing to continue when stopped (they only read, or start over).
_NOTHING_TO_CONTINUE = {"scan", "monitor", "status", "failures", "check", "verify", "tune"}


def _interrupted(argv: list[str] | None = None) -> int:
    if not StopNotice.given:
        words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
        if words and words[0] in _NOTHING_TO_CONTINUE:
            print("lakeshift: interrupted", file=sys.stderr)
        else:
            print("lakeshift: interrupted; run the same command again to continue",
                  file=sys.stderr)
    return 130


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises)."""
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    stdout_was = _stdout_identity()
    try:
        only = _command_word(args)
        application = build_app(only) if only is not None else __getattr__("app")
        result = application(args=argv, standalone_mode=False, prog_name="lakeshift")
        code = int(result) if isinstance(result, int) else 0
        if code == 130:  # typer turns KeyboardInterrupt into Exit(130) and returns it
            _interrupted(argv)
        return code
    except LakeshiftError as e:
        return _error(e.kind, str(e), e.exit_code, as_json)
    except (BrokenPipeError, SystemExit) as e:
        # stdout's reader left while the command wrote (``| head``); click answers that with
        # SystemExit(1), which would read as "some objects failed": the command was cut
        # short by the closed pipe, 128 + SIGPIPE as a shell says for one killed by it.
        pipe = e if isinstance(e, BrokenPipeError) else e.__context__
        if not isinstance(pipe, BrokenPipeError):
            raise
        if not (_stdout_closed() or _stdout_dropped(stdout_was)):
            # not stdout's: a socket's, that no store translated
            return _internal_error(pipe, as_json)
        _drop_stdout()
        return _STDOUT_CLOSED
    except (KeyboardInterrupt, asyncio.CancelledError):
        return _interrupted(argv)
    except BaseExceptionGroup as eg:
        for inner in eg.exceptions:
            if isinstance(inner, LakeshiftError):
                return _error(inner.kind, str(inner), inner.exit_code, as_json)
        return _internal_error(eg, as_json)
    except Exception as e:
        # click's exception classes (and click itself) only on this path: importing click
        # cost every command's start-up ~15 ms.
        exits, aborts, click_errors = _click_exceptions()
        if isinstance(e, exits):
            code = int(getattr(e, "exit_code", 0))
            if code == 130:
                _interrupted(argv)
            return code
        if isinstance(e, aborts):
            return _interrupted(argv)
        if isinstance(e, click_errors):
            return _error("usage", f"{e.format_message()} (see --help)", 2, as_json)
        return _internal_error(e, as_json)


class _Notices(logging.Handler):
    """The ``lakeshift`` logger's notices (a store's first contact being tried again:
    stores/reach.py) as ``lakeshift: …`` lines on stderr — whatever ``sys.stderr`` is when
    one comes (a progress display may stand in for it) — never on stdout, which ``--json``
    keeps for JSON."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"lakeshift: {redact(record.getMessage())}", file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def main() -> NoReturn:
    """Console-script entry point.

    Exits through ``os._exit`` after flushing: obstore's Rust runtime can abort the process
    while the interpreter finalizes (DESIGN.md §8), which would replace our exit code.
    """
    notices = logging.getLogger("lakeshift")
    notices.addHandler(_Notices(logging.WARNING))
    notices.propagate = False
    code = run()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left before our last bytes: the code stands
        _drop_stdout()
    try:
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)
