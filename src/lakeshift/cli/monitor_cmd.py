"""`lakeshift monitor`: the web monitor over a control DB (lakeshift/web)."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lakeshift import api
from lakeshift.cli.options import DbOpt
from lakeshift.errors import UsageError
from lakeshift.redact import redact, register_secret

HELP = """Web monitor of a control DB: jobs, runs, partition runs and their details, live.

Pages refresh while runs go on; /api/… serves the same as JSON and /metrics as Prometheus
metrics. Binds 127.0.0.1 unless --host says otherwise.

Read-only unless started with --allow-actions and a token (LAKESHIFT_MONITOR_TOKEN, or
--token-file FILE; never on the command line); then two actions appear where they apply,
each a form asking for that token: "Cancel this run" on a running run's page (/runs/ID; it
stops at its next heartbeat with its cursors saved, and lakeshift run --job J resumes it),
and "Rerun N failed partitions" on the job's page (/jobs/NAME, when it has failed
partitions; they become pending, for the running run or the next lakeshift run)."""
EPILOG = """Examples:

  lakeshift monitor --db sqlite:///lakeshift.db   # then open http://127.0.0.1:8765/

  (umask 077; openssl rand -hex 16 > ~/.lakeshift-monitor-token)   # the token you type
  lakeshift monitor --allow-actions --token-file ~/.lakeshift-monitor-token
"""

#: Tokens shorter than this are refused: anyone who can reach the port can guess them.
MIN_TOKEN = 12
#: Where the token comes from when no --token-file is given.
TOKEN_VARIABLE = "LAKESHIFT_MONITOR_TOKEN"
#: The two ways to give the token, as the refusals name them.
TOKEN_WAYS = f"set {TOKEN_VARIABLE}, or put it in a file and give --token-file FILE"


def monitor(
    db: DbOpt = api.DEFAULT_DB,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on. Anything but loopback exposes the monitor to "
                       "other machines.", metavar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                      help="Port to listen on (0: any free port).",
        metavar="PORT")] = 8765,
    allow_actions: Annotated[bool, typer.Option(
        "--allow-actions", help="Offer 'Cancel this run' (a running run's page) and "
                                "'Rerun N failed partitions' (the job's page), each a form "
                                "that must send the token.")] = False,
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", show_default=False,
        help="File holding the secret that actions must send (form field, X-Lakeshift-Token "
             "header or bearer token), else LAKESHIFT_MONITOR_TOKEN; needed by "
             "--allow-actions. Never on the command line (ps and shell history show it).",
        metavar="FILE")] = None,
    # Refused whatever it holds: only here to say where the token goes instead.
    token_given: Annotated[str | None, typer.Option(
        "--token", hidden=True, metavar="TOKEN")] = None,
) -> int:
    from lakeshift.web.server import is_loopback, serve

    if token_given is not None:
        raise UsageError("--token takes no secret on the command line (ps and shell history "
                         f"show it): {TOKEN_WAYS}")
    token = _token(token_file)
    if token_file is not None and not allow_actions:
        # Given, the token is for actions; without --allow-actions there are none.
        print(f"lakeshift: warning: --token-file {token_file} is used only with "
              "--allow-actions: this monitor is read-only (add --allow-actions to offer "
              "the actions)", file=sys.stderr, flush=True)
    if allow_actions and not token:
        raise UsageError(f"--allow-actions needs a token, refused without one: {TOKEN_WAYS}")
    if allow_actions and token is not None and len(token) < MIN_TOKEN:
        raise UsageError(f"the token ({_token_source(token_file)}) must be at least "
                         f"{MIN_TOKEN} characters (it guards the actions)")
    from lakeshift.errors import SchemaOutdated

    try:
        with api.reading_only():  # the monitor never writes the DB, nor upgrades it
            shown_db = api.status(db=db).db  # a missing or damaged DB: one line, exit 2
    except SchemaOutdated as e:
        # Served anyway: each page says the same (503) until the DB is upgraded.
        print(f"lakeshift: warning: {e}", file=sys.stderr, flush=True)
        shown_db = redact(db)
    if not is_loopback(host):
        print(f"lakeshift: warning: listening on {host}: other machines can reach the monitor "
              "(job names, keys and errors" + (", and its actions to whoever has the token"
                                                 if allow_actions else "") + ")",
              file=sys.stderr, flush=True)

    def ready(url: str) -> None:
        mode = "actions allowed with the token" if allow_actions else "read-only"
        where = "listening on all interfaces; " if _all_interfaces(host) else ""
        print(f"lakeshift monitor: {url} over {shown_db} ({where}{mode}; Ctrl-C stops)",
              flush=True)

    serve(db, host, port, token if allow_actions else None, ready)
    return 0


def _token_source(token_file: Path | None) -> str:
    return f"--token-file {token_file}" if token_file is not None else TOKEN_VARIABLE


def _token(token_file: Path | None) -> str | None:
    """The actions' token: the file's content (without the line end an editor or ``echo``
    leaves) when --token-file is given, a flag winning over the environment as elsewhere;
    else LAKESHIFT_MONITOR_TOKEN; None when neither is set.  Registered as a secret, so no
    message or page shows it."""
    if token_file is None:
        token = os.environ.get(TOKEN_VARIABLE) or None
    else:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise UsageError(f"cannot read --token-file {token_file}: {why}") from None
        if not token:
            raise UsageError(f"--token-file {token_file} is empty: put the token in it, or "
                             f"set {TOKEN_VARIABLE}")
        if "\n" in token or "\r" in token:
            # No form field, header or bearer token can send a line break back.
            raise UsageError(f"--token-file {token_file} holds more than one line: put only "
                             "the token in it, on one line")
    if token:
        register_secret(token)
    return token


def _all_interfaces(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False
