"""`lakeshift monitor`: the web monitor over a control DB (lakeshift/web)."""

from __future__ import annotations

import ipaddress
import sys
from typing import Annotated

import typer

from lakeshift import api
from lakeshift.cli.options import DbOpt
from lakeshift.errors import UsageError
from lakeshift.redact import redact, register_secret

HELP = """Web monitor of a control DB: jobs, runs, partition runs and their details, live.

Pages refresh while runs go on; /api/… serves the same as JSON and /metrics as Prometheus
metrics. Binds 127.0.0.1 unless --host says otherwise.

Read-only unless started with --allow-actions and --token T (or LAKESHIFT_MONITOR_TOKEN);
then two actions appear where they apply, each a form asking for that token: "Cancel this
run" on a running run's page (/runs/ID; it stops at its next heartbeat with its cursors
saved, and lakeshift run --job J resumes it), and "Rerun N failed partitions" on the
job's page (/jobs/NAME, when it has failed partitions; they become pending, for the
running run or the next lakeshift run)."""
EPILOG = """Example:

  lakeshift monitor --db sqlite:///lakeshift.db   # then open http://127.0.0.1:8765/
"""

#: Tokens shorter than this are refused: anyone who can reach the port can guess them.
MIN_TOKEN = 12


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
                                "that must send --token.")] = False,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="LAKESHIFT_MONITOR_TOKEN", show_default=False,
        help="Secret that actions must send (form field, X-Lakeshift-Token header or "
             "bearer token); needed by --allow-actions.", metavar="TOKEN")] = None,
) -> int:
    from lakeshift.web.server import is_loopback, serve

    if allow_actions and not token:
        raise UsageError("--allow-actions needs --token T (or LAKESHIFT_MONITOR_TOKEN): "
                         "actions are refused without it")
    if allow_actions and token is not None and len(token) < MIN_TOKEN:
        raise UsageError(f"--token must be at least {MIN_TOKEN} characters (it guards the "
                         "actions)")
    if token:
        register_secret(token)
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


def _all_interfaces(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False
