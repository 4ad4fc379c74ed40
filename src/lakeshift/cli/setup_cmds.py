"""`lakeshift check` (connection test) and `lakeshift init` (the set-up wizard)."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from lakeshift import api
from lakeshift.api import CheckResult, StoreOptions
from lakeshift.cli.options import (
    NO_STORE_OPTIONS,
    JsonOpt,
    with_store_options,
)
from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.plan.jobconfig import JobConfig, parse_every
from lakeshift.plan.jobconfig import dump as config_text
from lakeshift.stores.azure.auth import AUTH_CHOICES as AZURE_AUTH_CHOICES
from lakeshift.urls import parse_url

CHECK_HELP = """Test both sides before a migration.

Credentials, reachability, list and read on SRC, write and delete of a small probe object
under DST, and clock skew. Each line says ok, or what to fix."""
CHECK_EPILOG = """Example:

  lakeshift check s3://lake/raw/ abfss://lake@acct.dfs.core.windows.net/raw/
"""
INIT_HELP = """Set up a migration by answering questions; writes lakeshift.toml.

Like Data Factory's Copy Data tool: source, destination, where credentials come from (never
the secret), a connection test of each side, partitioning, and run once or on a schedule.
Every answer has an equivalent flag of `plan`/`run`; `lakeshift run --config lakeshift.toml`
runs it."""


def print_checks(result: CheckResult) -> int:
    for ln in result.lines:
        mark = "ok  " if ln.ok else "FAIL"
        print(f"{mark} {ln.side:<11} {ln.step:<17} {ln.detail}", flush=True)
    return result.exit_code


@with_store_options
def check(
    src: Annotated[str, typer.Argument(help="Source URL.", show_default=False)],
    dst: Annotated[str, typer.Argument(help="Destination URL.", show_default=False)],
    as_json: JsonOpt = False,
    store: StoreOptions = NO_STORE_OPTIONS,
) -> int:
    result = api.check(src, dst, store_options=store)
    if as_json:
        json.dump([asdict(ln) for ln in result.lines], sys.stdout, indent=2)
        print()
        return result.exit_code
    return print_checks(result)


def _ask(text: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
    return _ask_until(text, default, lambda a: not choices or a in choices,
                      f"one of: {', '.join(choices)}")


def _ask_count(text: str, default: int) -> int:
    return int(_ask_until(text, str(default), lambda a: a.isdigit() and int(a) >= 1,
                          "a whole number of at least 1"))


def _ask_until(text: str, default: str | None, valid: Callable[[str], bool],
               hint: str | Callable[[str], str | None], no_answer: str | None = None) -> str:
    """Ask until the answer is valid.  When the answers run out after a wrong one, that
    wrong answer is the error (one line), not a traceback or a silent default; when they
    run out before any, ``no_answer`` (else: init is interactive).  ``hint``: what a valid
    answer is, or a function saying what is wrong with a given one."""
    wrong: str | None = None
    while True:
        try:
            answer = typer.prompt(text, default=default,
                                  show_default=default not in (None, ""))
        except (EOFError, typer.Abort):
            print(flush=True)  # the prompt ended its line on stdout; the error has its own
            if wrong is not None:
                if callable(hint):
                    raise UsageError(f"init: {text!r}: {wrong!r}: {hint(wrong)}") from None
                raise UsageError(f"init: {text!r} wants {hint}, not {wrong!r}") from None
            if no_answer is not None:
                raise UsageError(no_answer) from None
            raise UsageError("init is interactive and got no answer: answer its questions, "
                             "or use the flags (lakeshift plan --help, lakeshift run --help)"
                             ) from None
        answer = str(answer).strip()
        if valid(answer):
            return answer
        wrong = answer
        print(f"  {hint(answer) if callable(hint) else hint}")


def _schedule_ok(text: str) -> bool:
    try:
        parse_every(text)
    except UsageError:
        return False
    return True


def _check_writable(output: Path) -> None:
    """Before any question: refuse a path init could not write at the end.  Missing
    folders are created then; the nearest existing one must be a writable folder."""
    if output.is_dir():
        raise UsageError(f"{output} is a folder: give the config's file name, e.g. "
                         f"-o {output / 'lakeshift.toml'}")
    existing = next(p for p in output.absolute().parents if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {output}: {existing} is not a folder you can write "
                         "to; choose another path with -o")


def _blank_s3_endpoint() -> str:
    """What a blank S3 endpoint means: none is written, so the environment's is used when
    the config is run (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL), else AWS."""
    from lakeshift.redact import redact

    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(var):
            return f"blank: {var} at each run, now {redact(os.environ[var])}"
    return "blank: AWS, or AWS_ENDPOINT_URL if set at run time"


_SQLITE_URL = re.compile(r"(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?", re.IGNORECASE | re.DOTALL)


def _absolute_sqlite(url: str) -> str:
    """A SQLite control DB URL whose file (as opening it reads it: ``_sqlite_db_file``) is
    relative made absolute, from the folder init runs in (where a relative path typed at
    its prompt points); any other URL as given.  A SQLite URI filename
    (``sqlite:///file:x.db?uri=true``) is written as the absolute path of the file it names
    (an absolute path put before ``file:`` would name another file), or, when it carries
    SQLite's own URI parameters (``mode=rwc``…), as a URI filename with that absolute path
    and the query as typed.  (``url`` has passed ``_db_url_problem``.)"""
    m = _SQLITE_URL.fullmatch(url)
    target = api._sqlite_db_file(url) if m is not None else None
    if m is None or target is None or os.path.isabs(target.path):
        return url
    head, database, query = m.group(1), m.group(2), m.group(3) or ""
    absolute = os.path.abspath(target.path)
    if target.path == database:  # a plain path
        return head + absolute + query
    if target.params:
        return head + "file:" + _uri_path(absolute) + query
    return head + absolute + _without_uri(query)


def _uri_path(path: str) -> str:
    """``path`` as a URI filename's path in a SQLAlchemy URL: what SQLite's URI reading
    would take as a query, fragment or escape (``?``, ``#``, ``%``) percent-encoded, and
    that encoding's ``%`` encoded again (the URL's own decoding comes first)."""
    sqlite = path.replace("%", "%25").replace("?", "%3F").replace("#", "%23")
    return sqlite.replace("%", "%25")


def _without_uri(query: str) -> str:
    """A SQLite URL's query without its ``uri`` key (the driver's other options kept)."""
    from urllib.parse import parse_qsl, urlencode

    rest = urlencode([(k, v) for k, v in parse_qsl(query.lstrip("?"),
                                                    keep_blank_values=True) if k != "uri"])
    return f"?{rest}" if rest else ""


def _db_url_problem(url: str) -> str | None:
    """Why ``run --config`` could not open the control DB ``url``, in one line (None: it
    can): a URL that is not a control DB's or carries a password (``init`` writes no
    secret, and the URL is written to the file and printed in the flags), or a SQLite URL
    the control DB refuses to open (memory, another host…: ``_sqlite_db_file``).
    (Parsed as the control DB parses it; nothing is opened.)"""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except ArgumentError:
        return f"wants {_DB_HINT}"
    if u.drivername.split("+")[0] not in ("sqlite", "postgresql", "postgres", "mssql") \
            or u.password is not None:
        return f"wants {_DB_HINT}"
    try:
        api._sqlite_db_file(url)
    except UsageError as e:
        return str(e)
    return None


_DB_HINT = ("sqlite:///path/to/file.db or postgresql://user@host/db, without a password (it "
            "belongs in ~/.pgpass or PGPASSWORD: init writes no secret)")


def _absolute_local(url: str) -> str:
    """A local path given relative (or from ``~``) made absolute, from the folder init runs
    in, as the control DB's path is (``_absolute_sqlite``): a config run from another
    folder would read another source and write another destination.  Its trailing slash
    kept; any URL (``file://`` ones are absolute) as given."""
    if "://" in url or os.path.isabs(url):
        return url
    absolute = os.path.abspath(os.path.expanduser(url))
    return absolute + "/" if url.endswith("/") and absolute != "/" else absolute


def init(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the config.",
                                         metavar="FILE")] = Path("lakeshift.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> int:
    if output.exists() and not output.is_dir() and not force:
        raise UsageError(f"{output} exists: pass --force to overwrite it, or -o another path")
    _check_writable(output)
    print("lakeshift init — each answer has a flag; secrets are never asked for or written.\n")
    src_list = _ask_sources(None)
    dst = _ask_destination(None)
    so = _ask_credentials(src_list, dst, None)
    failed: list[str] = []
    if _ask("Test the connections now? (y/n)", "y", ("y", "n")) == "y":
        while failed := _test_connections(src_list, dst, so):
            # Go back to the questions of the store that failed (its earlier answers the
            # defaults), or write it as it is; with no answer (no stdin: CI), nothing is
            # written.
            if _ask_until(
                    "The connection test failed: change the answers, or write the config "
                    "anyway? (change/write)", "change", lambda a: a in ("change", "write"),
                    "change or write",
                    no_answer="init: the connection test failed and no answer came to "
                              "'change the answers, or write the config anyway?': nothing "
                              "written; fix the connection and run init again") == "write":
                break
            if any(side.startswith("source") for side in failed):
                src_list = _ask_sources(src_list)
            if any(side.endswith("destination") for side in failed):
                dst = _ask_destination(dst)
            so = _ask_credentials(src_list, dst, so)
    mode = _ask("Partitioning: none, prefixes, auto (key ranges), adf (ADF control table)",
                "none", ("none", "prefixes", "auto", "adf"))
    prefixes: list[str] = []
    target, adf_table = 100_000, ""
    if mode == "prefixes":
        prefixes = [p.strip() for p in _ask("Prefixes under the source, comma-separated")
                    .split(",") if p.strip()]
    elif mode == "auto":
        target = _ask_count("Objects per partition", 100_000)
    elif mode == "adf":
        adf_table = _ask("Control table name", "s3_partition_control_table")
    name = _ask("Job name", "migration")
    # Written absolute: `run --config` may start in any folder, and a relative SQLite path
    # would name another DB from each.  The default lives beside the config.
    db = _absolute_sqlite(_ask_until("Control DB URL", "sqlite:///" + os.path.join(
        os.path.dirname(os.path.abspath(output)), "lakeshift.db"),
        lambda a: _db_url_problem(a) is None, _db_url_problem))
    batch = _ask_count("Partitions at a time (batch count)", 4)
    concurrency = _ask_count("Objects in flight (concurrency)", 32)
    schedule = _ask_until("Run once, or on a schedule (\"every 30m\")", "once", _schedule_ok,
                          "once, or every N followed by s, m, h or d (every 30m)")
    cfg = JobConfig(name=name, db=db, sources=src_list, destination=dst, store=so,
                                mode=mode, prefixes=prefixes, target_objects=target,
                                adf_control_table=adf_table or None, batch_count=batch,
                                concurrency=concurrency)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(config_text(cfg, schedule, str(output)), encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {output}: {e.strerror}") from None
    print(f"\nwrote {output}. Run it with:\n  lakeshift run --config {shlex.quote(str(output))}\n"
          "or with flags:\n  " + equivalent_flags(cfg))
    if failed:
        # Written as asked; the known-failing connection is said last, where it is seen
        # (exit 0: the config is what was asked for).
        check = "; ".join(" ".join(["lakeshift check", shlex.quote(s), shlex.quote(dst),
                                    *_store_flags(so)]) for s in src_list)
        print(f"warning: written anyway, but the connection test failed ({', '.join(failed)}):"
              f" fix it, then test again with: {check}", file=sys.stderr)
    return 0


def _ask_sources(before: list[str] | None) -> list[str]:
    sources = _ask("Source URL(s), comma-separated (s3://bucket/prefix, az://…, a path)",
                   ", ".join(before) if before else None)
    src_list = [s.strip() for s in sources.split(",") if s.strip()]
    for s in src_list:
        parse_url(s)
    return [_absolute_local(s) for s in src_list]


def _ask_destination(before: str | None) -> str:
    # A local folder is as good a destination as a cloud one (made if missing): said, since
    # a user could not tell from the cloud URLs alone.
    dst = _ask("Destination URL (abfss://FS@ACCOUNT.dfs.core.windows.net/path, az://…, "
               "s3://…) or a local folder's path", before)
    parse_url(dst)
    return _absolute_local(dst)


def _ask_credentials(src_list: list[str], dst: str, before: StoreOptions | None
                     ) -> StoreOptions:
    """Where each store's credentials come from (``before``'s answers the defaults)."""
    b = before or StoreOptions()
    s3_endpoint = aws_profile = ""
    aws_imds = s3_anon = False
    if any(s.startswith("s3://") for s in [*src_list, dst]):
        was = ("profile" if b.aws_profile else "instance-role" if b.aws_imds else
               "anonymous" if b.s3_anonymous else "env")
        aws = _ask("AWS credentials from: env (AWS_ACCESS_KEY_ID…), profile, instance-role, "
                   "anonymous", was, ("env", "profile", "instance-role", "anonymous"))
        if aws == "profile":
            aws_profile = _ask("Profile name (in ~/.aws)", b.aws_profile or "default")
        aws_imds, s3_anon = aws == "instance-role", aws == "anonymous"
        s3_endpoint = _ask(f"S3-compatible endpoint ({_blank_s3_endpoint()})",
                           b.s3_endpoint or "")
    azure_auth = "auto"
    if any(parse_url(u).scheme == "azure" for u in [*src_list, dst]):
        azure_auth = _ask("Azure credentials from (auto = connection string, key, SAS, then "
                          "service principal)", b.azure_auth, AZURE_AUTH_CHOICES)
    return StoreOptions(s3_endpoint=s3_endpoint or None, aws_profile=aws_profile or None,
                        aws_imds=aws_imds, s3_anonymous=s3_anon, azure_auth=azure_auth)


def _test_connections(src_list: list[str], dst: str, so: StoreOptions) -> list[str]:
    """``check`` each source with the destination, its lines printed; the sides that failed
    ("source URL", "destination", or "source URL or destination" when the test could not
    start), none when every step passed."""
    failed: list[str] = []
    for s in src_list:
        try:
            result = api.check(s, dst, store_options=so)
        except LakeshiftError as e:
            print(f"FAIL {e}")
            failed.append(f"source {s} or destination")
            continue
        print_checks(result)
        sides = {ln.side for ln in result.lines if not ln.ok}
        if result.exit_code and not sides:
            sides = {"source", "destination"}
        if "source" in sides:
            failed.append(f"source {s}")
        if "destination" in sides and "destination" not in failed:
            failed.append("destination")
    return failed


def equivalent_flags(cfg: JobConfig) -> str:
    """The plan and run commands the config stands for, each value quoted for a shell (a
    path with a space -- the default control DB's folder, say -- pastes as one word)."""
    q = shlex.quote
    plan = ["lakeshift plan", *map(q, cfg.sources), q(cfg.destination), "--job", q(cfg.name),
            "--db", q(cfg.db)]
    plan += [f"--prefix {q(p)}" for p in cfg.prefixes]
    if cfg.mode == "auto":
        plan += ["--partition-by auto", f"--target-objects {cfg.target_objects}"]
    if cfg.mode == "adf":
        plan += [f"--adf-control-table {q(cfg.adf_control_table or '')}"]
    plan += _store_flags(cfg.store)
    run = ["lakeshift run --job", q(cfg.name), "--db", q(cfg.db), "--batch-count",
           str(cfg.batch_count), "--concurrency", str(cfg.concurrency)]
    return " ".join(plan) + "\n  " + " ".join(run)


def _store_flags(s: StoreOptions) -> list[str]:
    """The flags of ``plan``, ``run`` and ``check`` that reach the stores as ``s`` says."""
    q = shlex.quote
    plan: list[str] = []
    if s.s3_endpoint:
        plan.append(f"--s3-endpoint {q(s.s3_endpoint)}")
    if s.aws_profile:
        plan.append(f"--aws-profile {q(s.aws_profile)}")
    if s.aws_imds:
        plan.append("--aws-imds")
    if s.s3_anonymous:
        plan.append("--s3-anonymous")
    if s.azure_auth != "auto":
        plan.append(f"--azure-auth {s.azure_auth}")
    return plan
