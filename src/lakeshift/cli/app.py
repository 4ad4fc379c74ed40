"""The ``lakeshift`` command.  Every user mistake ends in one line and an exit code
(DESIGN.md §4); a bug ends in one line pointing at a log file with the traceback."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import traceback
from typing import Annotated, NoReturn

import typer

from lakeshift import __version__
from lakeshift.cli import copy_cmd
from lakeshift.errors import LakeshiftError
from lakeshift.redact import redact

app = typer.Typer(
    name="lakeshift",
    help="Migrate data lakes (S3, Azure Blob, local disk) into Azure Data Lake Storage Gen2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"lakeshift {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Migrate data lakes into Azure Data Lake Storage Gen2.

    Example: lakeshift copy s3://my-bucket/raw/ abfss://lake@myaccount.dfs.core.windows.net/raw/
    """


app.command("copy", help=copy_cmd.HELP, epilog=copy_cmd.EPILOG)(copy_cmd.copy)


def _internal_error(exc: BaseException) -> int:
    fd, path = tempfile.mkstemp(prefix=f"lakeshift-error-{time.strftime('%Y%m%d-%H%M%S')}-",
                                suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(redact("".join(traceback.format_exception(exc))))
    print(f"lakeshift: internal error ({type(exc).__name__}); this is a bug — the traceback is "
          f"in {path}", file=sys.stderr)
    return 4


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (never raises)."""
    import click

    try:
        result = app(args=argv, standalone_mode=False, prog_name="lakeshift")
        return int(result) if isinstance(result, int) else 0
    except LakeshiftError as e:
        print(f"lakeshift: {redact(str(e))}", file=sys.stderr)
        return e.exit_code
    except click.exceptions.Exit as e:
        return int(e.exit_code)
    except click.exceptions.Abort:
        print("lakeshift: interrupted", file=sys.stderr)
        return 130
    except click.ClickException as e:
        print(f"lakeshift: {redact(e.format_message())} (see --help)", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("lakeshift: interrupted", file=sys.stderr)
        return 130
    except BaseExceptionGroup as eg:
        for inner in eg.exceptions:
            if isinstance(inner, LakeshiftError):
                print(f"lakeshift: {redact(str(inner))}", file=sys.stderr)
                return inner.exit_code
        return _internal_error(eg)
    except Exception as e:
        return _internal_error(e)


def main() -> NoReturn:
    """Console-script entry point.

    Exits through ``os._exit`` after flushing: obstore's Rust runtime can abort the process
    while the interpreter finalizes (DESIGN.md §8), which would replace our exit code.
    """
    code = run()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
