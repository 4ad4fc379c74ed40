"""Opening the control DB: URL checks, SQLite pragmas, schema version and migrations.

SQLite (the default, ``sqlite:///lakeshift.db``) runs in WAL mode and every transaction is
``BEGIN IMMEDIATE``, so claiming work is one serialised statement.  A SQLite URL may name
its file as a SQLite URI filename (``sqlite:///file:/abs/path.db?mode=rwc&uri=true``, as
``lakeshift init`` writes one typed with SQLite's own parameters): ``sqlite_file`` reads
the file it names.  PostgreSQL URLs use psycopg 3.  Errors come out as UsageError with one
line that names the fix.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from lakeshift.control import migrations
from lakeshift.control.schema import metadata, schema_version
from lakeshift.errors import SchemaOutdated, UsageError
from lakeshift.redact import redact

SCHEMA_VERSION = migrations.LATEST


def display_url(url: str) -> str:
    """The DB URL with any password hidden; a SQLite one as written (rendered, a URI
    filename's ``file:`` would read ``file%3A``)."""
    try:
        u = make_url(url)
    except ArgumentError:
        return redact(url)
    return redact(url) if u.drivername.startswith("sqlite") else \
        u.render_as_string(hide_password=True)


def _normalise(url: str) -> Any:
    try:
        u = make_url(url)
    except ArgumentError:
        raise UsageError(f"malformed control DB URL {redact(url)!r}: use "
                         "sqlite:///path/to/file.db or postgresql://user@host/db") from None
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg",
                            "mssql+pyodbc", "mssql+pymssql"):
        raise UsageError(f"unsupported control DB {u.drivername!r}: use sqlite:///… or "
                         "postgresql://… (SQL Server via mssql+pyodbc:// is untested)")
    return u


#: The SQLite URLs lakeshift opens, as a refusal names them.
SQLITE_FORMS = ("sqlite:///path/to/file.db (relative to the folder it runs in), "
                "sqlite:////absolute/path/to/file.db, or a SQLite URI filename "
                "sqlite:///file:/path/to/file.db?uri=true (SQLite's parameters beside uri, "
                "e.g. &mode=rwc)")

#: Query keys of a SQLite URL that SQLAlchemy's driver (pysqlite) takes for itself; the
#: others are SQLite's own URI parameters, read only from a URI filename.
_DRIVER_KEYS = frozenset({"uri", "timeout", "isolation_level", "detect_types",
                          "check_same_thread", "cached_statements"})
#: How the driver reads ``uri=`` (sqlalchemy.util.asbool).
_TRUE = frozenset({"true", "yes", "on", "y", "t", "1"})
_FALSE = frozenset({"false", "no", "off", "n", "f", "0"})
#: What the driver's options must be (it converts them, and a value it cannot convert was
#: an internal error): a number of seconds, an integer, true or false.
_DRIVER_VALUES = {"timeout": "a number", "detect_types": "an integer",
                  "cached_statements": "an integer", "check_same_thread": "true or false"}


def _takes(kind: str, value: str) -> bool:
    """Whether the driver converts ``value`` to ``kind`` (one of _DRIVER_VALUES')."""
    if kind == "true or false":
        return value.strip().lower() in _TRUE | _FALSE
    try:
        (float if kind == "a number" else int)(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SqliteFile:
    """The file a SQLite control DB URL names (as SQLite resolves it: a relative path from
    the folder the process runs in) and, for a URI filename, SQLite's own URI parameters
    (``mode``, ``cache``, ``vfs``…; the driver's options left out)."""

    path: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def read_only(self) -> str | None:
        """The parameter that opens the file read-only (``mode=ro``, ``immutable=1``), as
        written; None when it may be written."""
        if self.params.get("mode") == "ro":
            return "mode=ro"
        immutable = self.params.get("immutable")
        if immutable is not None and _uri_boolean(immutable):
            return f"immutable={immutable}"
        return None


def _uri_boolean(value: str) -> bool:
    """A SQLite URI parameter's truth, as SQLite reads it (sqlite3_uri_boolean)."""
    v = value.strip().lower()
    return v in _TRUE or (v.isdigit() and int(v) != 0)


def sqlite_file(url: Any, shown: str | None = None) -> SqliteFile | None:
    """The file a SQLite URL (a string or SQLAlchemy URL; ``shown``: as a message names it)
    names; None for another kind of DB.  A URI filename (``sqlite:///file:PATH?…&uri=true``)
    names ``PATH`` (percent-decoded, as SQLite decodes it, its ``//localhost`` authority
    dropped), and its other query keys are SQLite's parameters.  UsageError, one line
    naming the forms that work, for a URL that can name no file lakeshift can keep its
    state in: in memory, on another host, SQLite's parameters without a URI filename (the
    driver would drop them, or take them into the file's name)."""
    u = make_url(url) if isinstance(url, str) else url
    if not u.drivername.startswith("sqlite"):
        return None
    if shown is None:
        shown = display_url(url) if isinstance(url, str) else \
            u.render_as_string(hide_password=True)
    if u.host or u.port or u.username or u.password:
        raise UsageError(f"control DB {shown}: a SQLite URL names a file, with no host or "
                         f"user (three slashes after sqlite:): use {SQLITE_FORMS}")
    twice = sorted(k for k, v in u.query.items() if isinstance(v, tuple))
    if twice:
        # The driver and SQLite would each read them their own way (the driver takes a
        # repeated uri= as true, whatever its values): one value a key.
        raise UsageError(f"control DB {shown}: {', '.join(twice)} given more than once: "
                         "give each parameter once")
    query = {k: str(v) for k, v in u.query.items()}
    uri_value = query.get("uri", "false").strip().lower()
    if uri_value not in _TRUE | _FALSE:
        raise UsageError(f"control DB {shown}: uri={query['uri']!r} is neither true nor false: "
                         f"use {SQLITE_FORMS}")
    uri = uri_value in _TRUE
    for key, kind in _DRIVER_VALUES.items():
        if key in query and not _takes(kind, query[key]):
            raise UsageError(f"control DB {shown}: {key}={query[key]!r} is not {kind}: give "
                             f"{key} {kind}, or leave it out")
    database = u.database or ""
    params = {k: v for k, v in query.items() if k not in _DRIVER_KEYS}
    if params and not (uri and database.startswith("file:")):
        names = ", ".join(sorted(params))
        raise UsageError(f"control DB {shown}: {names} {'is' if len(params) == 1 else 'are'} "
                         "SQLite URI parameters, read only from a URI filename (the file "
                         "named file:PATH, with uri=true): use " + SQLITE_FORMS)
    if database.startswith("file:") and not uri:
        # Without uri=true the driver opens a file named "file:…" in the current folder.
        raise UsageError(f"control DB {shown}: a SQLite URI filename (file:PATH) needs "
                         f"uri=true beside it: use {SQLITE_FORMS}")
    path = database
    if uri and database.startswith("file:"):
        rest = database[len("file:"):].partition("#")[0]
        if rest.startswith("//"):
            host, slash, rest = rest[2:].partition("/")
            if host.lower() not in ("", "localhost"):
                raise UsageError(f"control DB {shown} names a file on host {host!r}: SQLite "
                                 f"opens only this machine's files: use {SQLITE_FORMS}")
            rest = slash + rest
        path = unquote(rest)
    if path in ("", ":memory:") or params.get("mode") == "memory":
        raise UsageError(f"the control DB must be a file, not memory (every command reads "
                         f"what the last one left): use {SQLITE_FORMS}")
    return SqliteFile(path, params)


def open_read_only(url: str) -> Engine:
    """An engine that can only read the DB: no table is created, no migration runs (an older
    schema raises SchemaOutdated), SQLite opens the file with ``mode=ro`` and takes no write
    lock, PostgreSQL sessions are ``default_transaction_read_only``."""
    return open_engine(url, create=False, read_only=True)


def open_engine(url: str, create: bool, read_only: bool = False) -> Engine:
    """An engine on a DB whose schema is current (created or migrated when ``create``).
    ``read_only``: see open_read_only."""
    u = _normalise(url)
    shown = display_url(url)
    if (target := sqlite_file(u, shown)) is not None:
        path = target.path
        if (not create or read_only) and not os.path.exists(path):
            raise UsageError(f"no control DB at {path}: run `lakeshift plan` first, or pass "
                             "--db with the right path")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise UsageError(f"cannot create control DB {path}: directory {parent} does not "
                             "exist")
        if not read_only and (ro := target.read_only) is not None:
            raise UsageError(f"control DB {shown} opens its file read-only ({ro}), and this "
                             f"command writes to it: leave {ro} out (the monitor reads "
                             "read-only by itself)")
        if (not read_only and target.params.get("mode") == "rw"
                and not os.path.exists(path)):
            raise UsageError(f"no control DB at {path}, and mode=rw opens only an existing "
                             "file: use mode=rwc (or leave mode out) to create it")
        if read_only:
            # The file opened read-only by SQLite itself: nothing here can write it (the
            # URL's other SQLite parameters kept: its vfs, cache…).
            file_url = "file:" + quote(os.path.abspath(path)) + "?" + urlencode(
                {**target.params, "mode": "ro"})
            engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(
                file_url, uri=True, timeout=10, check_same_thread=False))
            _sqlite_read_pragmas(engine)
        else:
            engine = create_engine(u, connect_args={"timeout": 10})
            _sqlite_pragmas(engine)
    else:
        args: dict[str, Any] = {}
        if "psycopg" in u.drivername:
            args["connect_timeout"] = 10
            if read_only:
                args["options"] = "-c default_transaction_read_only=on"
        try:
            engine = create_engine(u, pool_pre_ping=True, pool_size=5, max_overflow=5,
                                   connect_args=args)
        except NoSuchModuleError as e:
            raise UsageError(f"the driver for {shown} is not installed: {e}") from None
    try:
        _check_schema(engine, create and not read_only, shown, read_only)
    except OperationalError as e:
        engine.dispose()
        raise db_error(e, shown) from None
    except DatabaseError as e:
        engine.dispose()
        raise UsageError(f"{shown} is not a lakeshift control DB (corrupt, or another kind "
                         f"of file): {str(e.orig).splitlines()[0]} — restore it or use "
                         "another --db") from None
    return engine


class ControlDBUnavailable(UsageError):
    """The control DB could not be reached or dropped the connection (server down,
    restarted, network cut): worth trying again later, unlike a wrong URL or a damaged DB."""


def db_error(e: Exception, shown: str) -> UsageError:
    text = str(getattr(e, "orig", e)).strip().splitlines()[0] if str(e) else type(e).__name__
    if "locked" in text:
        return UsageError(f"control DB {shown} is locked by another writer (timed out after "
                          "10 s): wait for it, or use PostgreSQL for several processes")
    if "not a database" in text or "malformed" in text:
        return UsageError(f"{shown} is not a lakeshift control DB (corrupt, or another kind "
                          "of file) — restore it or use another --db")
    lost = isinstance(e, OperationalError) and bool(getattr(e, "connection_invalidated", False))
    if lost or any(w in text.lower() for w in _CONNECTION_LOST):
        return ControlDBUnavailable(redact(f"cannot use control DB {shown}: {text}: check "
                                           "that its server is up and --db / LAKESHIFT_DB"))
    return UsageError(redact(f"cannot use control DB {shown}: {text}"))


#: What psycopg and SQLAlchemy say when the server is down or the connection was cut.
_CONNECTION_LOST = ("connection refused", "server closed the connection", "terminating connection",
                    "connection timeout", "timeout expired", "could not receive data",
                    "could not send data", "connection is closed", "the connection is lost",
                    "consuming input failed", "connection failed", "connection to server")


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # One writer at a time, taken at the start: a claim can never interleave.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_read_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # A deferred transaction: a reader never takes the write lock a claim waits for.
        conn.exec_driver_sql("BEGIN")


def _check_schema(engine: Engine, create: bool, shown: str, read_only: bool = False) -> None:
    with engine.begin() as conn:
        names = set(inspect(conn).get_table_names())
        if "lakeshift_schema" not in names:
            if not create:
                raise UsageError(f"{shown} has no lakeshift tables: run `lakeshift plan` first")
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
            return
        version = conn.execute(select(schema_version.c.version)).scalar()
        if version is None:
            raise UsageError(f"{shown}: lakeshift_schema is empty — the DB is damaged")
        if version > SCHEMA_VERSION:
            raise UsageError(f"{shown} has schema version {version}, newer than this "
                             f"lakeshift understands ({SCHEMA_VERSION}): upgrade lakeshift")
        if version < SCHEMA_VERSION and read_only:
            raise SchemaOutdated(
                f"{shown} has schema version {version}, older than this lakeshift's "
                f"({SCHEMA_VERSION}), and is only read here: run `lakeshift status --db "
                f"{shown}` once to upgrade it")
        if version < SCHEMA_VERSION and conn.dialect.name != "sqlite":
            # Processes opening the old DB at once upgrade it one at a time: the others wait
            # here for the first to commit and read the version it wrote (SQLite: BEGIN
            # IMMEDIATE already serialises them).
            version = conn.execute(select(schema_version.c.version).with_for_update()).scalar()
        if version is not None and version < SCHEMA_VERSION:
            migrations.upgrade(conn, version)
            conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
