"""Opening the control DB: URL checks, SQLite pragmas, schema version and migrations.

SQLite (the default, ``sqlite:///lakeshift.db``) runs in WAL mode and every transaction is
``BEGIN IMMEDIATE``, so claiming work is one serialised statement.  PostgreSQL URLs use
psycopg 3.  Errors come out as UsageError with one line that names the fix.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from lakeshift.control import migrations
from lakeshift.control.schema import metadata, schema_version
from lakeshift.errors import SchemaOutdated, UsageError
from lakeshift.redact import redact

SCHEMA_VERSION = migrations.LATEST


def display_url(url: str) -> str:
    """The DB URL with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return redact(url)


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
    if u.drivername.startswith("sqlite"):
        path = u.database or ""
        if path in ("", ":memory:"):
            raise UsageError("the control DB must be a file: sqlite:///path/to/file.db")
        if (not create or read_only) and not os.path.exists(path):
            raise UsageError(f"no control DB at {path}: run `lakeshift plan` first, or pass "
                             "--db with the right path")
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise UsageError(f"cannot create control DB {path}: directory {parent} does not "
                             "exist")
        if read_only:
            # The file opened read-only by SQLite itself: nothing here can write it.
            file_url = "file:" + quote(os.path.abspath(path)) + "?mode=ro"
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
