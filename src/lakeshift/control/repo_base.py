"""The control DB's connection, transactions and the helpers the repository's
modules share (control/repository.py assembles ``ControlDB`` from them)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Connection, Engine, RowMapping
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from lakeshift.control.db import ControlDBUnavailable, db_error, display_url, open_engine
from lakeshift.control.records import Job, KeySpan, as_utc
from lakeshift.control.schema import (
    KEY_INDEXED,
    adf_delta_table,
    deletions,
    failures,
    renames,
    runs,
)
from lakeshift.errors import UsageError
from lakeshift.model import Failure, Rename, SourceDeleted
from lakeshift.redact import redact
from lakeshift.urls import saved_destination

#: The greatest id a row can have (a signed 64-bit integer): a greater one names no row,
#: and is answered as such instead of reaching the driver (which cannot bind it).
MAX_ID = 2**63 - 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunGone(UsageError):
    """The run's row is no longer in the control DB: its job was deleted while it ran."""


@dataclass
class PartitionStats:
    listed: int = 0
    copied: int = 0
    skipped: int = 0
    failed_objects: int = 0
    bytes: int = 0


@dataclass
class Records:
    """What a partition's copy wrote down since the last save: failures (and skips on
    purpose), renames and source deletions.  Saved in the same transaction as the cursor,
    so every record of a key at or before a saved cursor is in the DB."""

    job_id: int
    run_id: int | None
    failures: Sequence[Failure] = field(default_factory=list)
    renames: Sequence[Rename] = field(default_factory=list)
    deletions: Sequence[SourceDeleted] = field(default_factory=list)
    #: The failures are sync --delete's deletion phase's (destination keys).
    deletion: bool = False


class ControlBase:
    """The engine, its transactions and the DB's clock."""

    url: str
    shown: str
    read_only: bool
    engine: Engine

    def __init__(self, url: str, create: bool = False, read_only: bool = False) -> None:
        self.url = url
        self.shown = display_url(url)
        self.read_only = read_only
        self.engine: Engine = open_engine(url, create, read_only=read_only)
        self._passing = {}

    def close(self) -> None:
        self.engine.dispose()

    #: Partition id → (run id, cursor at the claim, greatest failure id at the claim) of
    #: the partitions this process claimed for a run that resumes from cursors (not a sync
    #: pass, not a dry run): the keys its saves go past are the keys after that cursor, and
    #: what they clear was recorded before the claim (``_clear_passed``).
    _passing: dict[int, tuple[int, str | None, int]]

    def _note_claims(self, conn: Connection, run_id: int | None, from_start: bool,
                     rows: Sequence[RowMapping]) -> None:
        if run_id is None or from_start or not rows:
            return
        if not _dry_run(conn.execute(select(runs.c.settings).where(runs.c.id == run_id))
                        .scalar()):
            # Rows recorded after this are the claim's own: a failure its pass records
            # is never cleared by that pass going past its key (--preserve records a
            # parent folder's failure under the key of the file that passes the cursor).
            last = int(conn.execute(select(func.max(failures.c.id))).scalar() or 0)
            for r in rows:
                self._passing[int(r["id"])] = (run_id, r["cursor"], last)

    def _clear_passed(self, conn: Connection, partition_id: int, cursor: str | None,
                      finished: bool) -> None:
        """A save of a claimed partition: its failures that the claim went past (keys after
        the cursor it was claimed at, up to ``cursor``; every key after it when
        ``finished``, the partition succeeded) are no longer current, skips on purpose
        included: the claim listed each of those keys and looked at it, so one still
        skipped was recorded again (a newer row) and one not recorded was copied, found
        identical or is gone (a run with other options — --skip-errors, --invalid-names —
        copies what an earlier one skipped)."""
        passing = self._passing
        if partition_id not in passing:
            return
        run_id, start, last = passing[partition_id]
        if not finished and (cursor is None or cursor == start):
            return
        _clear_failures(conn, partition_id, run_id, start,
                        None if finished else cursor, recorded_by=last, skips=True)

    def _tx(self) -> Any:
        return _Tx(self)

    def _now(self, plus_s: float = 0.0) -> ColumnElement[Any]:
        """The DB's clock (plus ``plus_s`` seconds), never this client's: leases taken and
        checked by several machines must agree on what time it is."""
        return db_now(self.engine.dialect.name, plus_s)


class _Tx:
    """A transaction whose database errors become one-line UsageErrors."""

    def __init__(self, db: ControlBase) -> None:
        self.db = db
        self.ctx: Any = None

    def __enter__(self) -> Any:
        try:
            self.ctx = self.db.engine.begin()
            return self.ctx.__enter__()
        except OperationalError as e:
            raise db_error(e, self.db.shown) from None

    def __exit__(self, *exc: Any) -> bool:
        try:
            handled = bool(self.ctx.__exit__(*exc))
        except OperationalError as e:
            raise db_error(e, self.db.shown) from None
        except SQLAlchemyError as e:
            raise UsageError(f"control DB {self.db.shown}: {str(e).splitlines()[0]}") from None
        if isinstance(exc[1], OperationalError) and _connection_lost(exc[1]):
            # The server went away inside the transaction: as unreachable as at its start.
            raise db_error(exc[1], self.db.shown) from None
        if self.db.read_only and isinstance(exc[1], DBAPIError):
            raise UsageError(f"control DB {self.db.shown} is open read-only here: "
                             f"{str(exc[1].orig).splitlines()[0]}") from None
        return handled


def _failures_of(job_id: int, run_id: int | None,
                 partition_id: int | None) -> ColumnElement[bool]:
    where = failures.c.job_id == job_id
    if run_id is not None:
        where = and_(where, failures.c.run_id == run_id)
    if partition_id is not None:
        where = and_(where, failures.c.partition_id == partition_id)
    return where


def _dry_run(settings: str | None) -> bool:
    """Whether a run's recorded settings are a dry run's (nothing copied, nothing cleared);
    settings that cannot be read count as one."""
    try:
        return bool(json.loads(settings or "{}").get("dry_run"))
    except (ValueError, AttributeError):
        return True


def _deletes(settings: str | None) -> bool:
    """Whether a run's recorded settings are a sync --delete pass's (not a dry run)."""
    try:
        given = json.loads(settings or "{}")
        return bool(given.get("mode") == "sync" and given.get("delete")
                    and not given.get("dry_run"))
    except (ValueError, AttributeError):
        return False


#: The error kind of a --files-from key in no partition (engine/sync.py): recorded on the
#: pass's first partition, which no pass of that partition ever lists.
OUTSIDE_PARTITIONS = "outside-partitions"


def _clearable(run_id: int, recorded_by: int | None, *, skips: bool,
               deletion: bool = False) -> ColumnElement[bool]:
    """The one rule of which failure rows a pass of run ``run_id`` may clear (its caller
    adds the partitions and keys it went past): current ones, never an outside-partitions
    row (a named key in no partition: no pass lists it), never the pass's own — those
    recorded after failure id ``recorded_by`` (a run's claim), or, without it, those of
    ``run_id`` (a sync pass): a failure that is not a listed key's (a parent folder's ACL
    under --preserve) leaves the cursor free to pass its key.  ``skips``: skips on purpose
    too (a pass that listed their keys and looked at each: a resumed run, a --files-from
    pass; not a sync window, which does not take an unchanged object).  ``deletion``: the
    rows of sync --delete's deletion phase (destination keys) instead of a copy's."""
    f = failures.c
    # ``id + 0``: no index walk by id (SQLite, its statistics analysed, took the rowid
    # range — every open failure of the partition — over the key index).
    where = and_(f.cleared_run_id.is_(None), f.error_kind != OUTSIDE_PARTITIONS,
                 f.deletion == int(deletion),
                 f.id + 0 <= recorded_by if recorded_by is not None else
                 or_(f.run_id.is_(None), f.run_id != run_id))
    return where if skips else and_(where, f.skipped == 0)


def _clear_failures(conn: Connection, partition_id: int, run_id: int, after: str | None,
                    upto: str | None, recorded_by: int | None = None, *,
                    skips: bool = False, spans: Sequence[KeySpan] | None = None,
                    deletion: bool = False) -> None:
    """Mark the partition's current failures (``_clearable``) with keys in (``after``,
    ``upto``] (None: no bound) and, given ``spans``, in one of them, as cleared by
    ``run_id``: a pass listed those keys in full and none of them failed (a failed key
    stops the cursor before it), so each was copied, found identical, or is gone."""
    f = failures.c
    where = and_(f.partition_id == partition_id,
                 _clearable(run_id, recorded_by, skips=skips, deletion=deletion))
    keys = _KeyBounds(conn.dialect.name)
    if after is not None:
        where = and_(where, keys.above(after))
    if upto is not None:
        where = and_(where, keys.upto(upto))
    if spans is not None:
        if not spans:
            return
        where = and_(where, or_(*(keys.within(s) for s in spans)))
    conn.execute(update(failures).where(where).values(cleared_run_id=run_id))


class _KeyBounds:
    """Conditions on a failure's key, as listings order keys (by code point).  On
    PostgreSQL the key compares in the "C" collation, and each bound is repeated on the
    key's first KEY_INDEXED characters, which its index holds (``ix_…_open_key_c``):
    truncating two keys keeps their order or makes them equal, so the repeat is always
    true of the keys the exact bound takes, and lets the index walk only them."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        key: Any = failures.c.object_key
        self.key = key.collate("C") if self.pg else key
        # The length written into the SQL, as in the index's expression (a bound
        # parameter would not match it).
        self.short = func.left(failures.c.object_key,
                               literal_column(str(KEY_INDEXED))).collate("C")

    def above(self, low: str, inclusive: bool = False) -> ColumnElement[bool]:
        exact = self.key >= low if inclusive else self.key > low
        return and_(exact, self.short >= low[:KEY_INDEXED]) if self.pg else exact

    def upto(self, high: str) -> ColumnElement[bool]:
        exact = self.key <= high
        return and_(exact, self.short <= high[:KEY_INDEXED]) if self.pg else exact

    def below(self, high: str) -> ColumnElement[bool]:
        exact = self.key < high
        return and_(exact, self.short <= high[:KEY_INDEXED]) if self.pg else exact

    def within(self, span: KeySpan) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = []
        if span.prefix:
            parts.append(self.above(span.prefix, inclusive=True))
            past = _past_prefix(span.prefix)
            if past is not None:
                parts.append(self.below(past))
        if span.start_after is not None:
            parts.append(self.above(span.start_after))
        if span.range_start is not None:
            parts.append(self.above(span.range_start, inclusive=True))
        if span.range_end is not None:
            parts.append(self.below(span.range_end))
        return and_(true(), *parts)


def _past_prefix(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix`` (None:
    there is none, every character being the greatest)."""
    p = prefix.rstrip("\U0010ffff")
    if not p:
        return None
    following = ord(p[-1]) + 1
    return p[:-1] + chr(0xE000 if 0xD800 <= following < 0xE000 else following)  # no surrogate


def _connection_lost(e: OperationalError) -> bool:
    return isinstance(db_error(e, ""), ControlDBUnavailable)


def _adf_table(engine: Engine, name: str, shown: str) -> Any:
    """The ADF control table (``--adf-control-table``), reflected."""
    return _reflect_adf(engine, name, shown, "--adf-control-table",
                        ("PartitionPrefix", "SuccessOrFailure"), None)


def _reflect_adf(engine: Engine, name: str, shown: str, option: str,
                 columns: tuple[str, ...], create: Callable[[str, str | None], Any] | None
                 ) -> Any:
    """An ADF template table, reflected: a plain name, the template's ``columns``; when
    missing, made by ``create`` (table, schema) or refused."""
    from sqlalchemy import MetaData, Table
    from sqlalchemy.exc import NoSuchTableError

    if not name.replace("_", "").replace(".", "").isalnum():
        raise UsageError(f"{option} {name!r} is not a plain table name")
    schema, _, table = name.rpartition(".")
    what = "delta template" if "JobRunTime" in columns else "template"
    types = {"PartitionPrefix": "varchar(255)", "JobRunTime": "datetime",
             "SuccessOrFailure": "bit"}
    try:
        t = Table(table, MetaData(), schema=schema or None, autoload_with=engine)
    except NoSuchTableError:
        if create is None:
            raise UsageError(f"table {name!r} not found in {shown}: create it as the ADF "
                             f"{what} does ({', '.join(f'{c} {types[c]}' for c in columns)})"
                             ) from None
        t = create(table, schema or None)
        t.create(engine, checkfirst=True)
        return t
    for col in columns:
        if col not in t.c:
            listed = ", ".join(columns[:-1]) + " and " + columns[-1]
            raise UsageError(f"table {name!r} has no {col} column (the ADF {what}'s columns "
                             f"are {listed})")
    return t


def db_now(dialect: str, plus_s: float = 0.0) -> ColumnElement[Any]:
    """The DB server's current UTC time plus ``plus_s`` seconds, as SQL.  On SQLite the
    text has SQLAlchemy's own DateTime format, so stored times compare as they should."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H:%M:%f000", "now", f"{plus_s:+.3f} seconds")
    if dialect == "mssql":
        return func.dateadd(literal_column("millisecond"), int(plus_s * 1000),
                            func.sysdatetimeoffset())
    now: ColumnElement[Any] = func.now()
    return now + timedelta(seconds=plus_s) if plus_s else now


def _insert_records(conn: Connection, partition_id: int | None, r: Records,
                    now: ColumnElement[Any]) -> None:
    if r.failures:
        conn.execute(failures.insert().values(at=now), [
            {"job_id": r.job_id, "partition_id": partition_id, "run_id": r.run_id,
             "object_key": f.object_key, "error_kind": f.error_kind,
             "message": redact(f.message)[:4000], "attempts": f.attempts,
             "skipped": int(f.skipped), "deletion": int(r.deletion)}
            for f in r.failures])
    if r.renames:
        # A run that died saved the renames of keys after its cursor; its rerun meets those
        # keys again and must not record them twice.
        keys = [x.key for x in r.renames]
        known: set[tuple[str, str]] = set()
        for i in range(0, len(keys), 500):  # bound the statement's parameters
            known.update((k, d) for k, d in conn.execute(
                select(renames.c.source_key, renames.c.destination_key).where(and_(
                    renames.c.job_id == r.job_id, renames.c.source_key.in_(keys[i:i + 500])))))
        new = [x for x in r.renames if (x.key, x.destination_key) not in known]
        if new:
            conn.execute(renames.insert().values(at=now), [
                {"job_id": r.job_id, "partition_id": partition_id, "source_key": x.key,
                 "destination_key": x.destination_key, "rule": x.rule} for x in new])
    done = [x for x in r.deletions if x.kept is None]
    if done:
        conn.execute(deletions.insert().values(at=now), [
            {"job_id": r.job_id, "partition_id": partition_id, "source_key": x.key,
             "destination_key": x.destination_key, "md5": x.md5} for x in done])


def _partition_run_values(values: dict[str, Any]) -> dict[str, Any]:
    row = dict(values)
    if "retries" in row:
        row["retries"] = json.dumps(row["retries"], sort_keys=True)
    if row.get("error"):
        row["error"] = redact(str(row["error"]))[:4000]
    return row


def _cursor_stats(cursor: str | None, s: PartitionStats | None) -> dict[str, int]:
    if s is None:
        return {}
    if cursor is None:
        return {"cursor_copied": 0, "cursor_skipped": 0, "cursor_bytes": 0}
    return {"cursor_copied": s.copied, "cursor_skipped": s.skipped, "cursor_bytes": s.bytes}
def _flag(column: Any, value: int) -> Any:
    """1 or 0 in the type of a template table's SuccessOrFailure column.  The template's
    column is SQL Server's ``bit``; a user's table on PostgreSQL has ``bit`` (a bit string),
    ``boolean`` or an integer, and PostgreSQL compares and stores only values of the column's
    own type (``bit = integer`` has no operator)."""
    from sqlalchemy import cast
    from sqlalchemy.types import NullType

    if isinstance(column.type, NullType):  # SQLite reflects `bit` as a type it does not know
        return literal(value)
    return cast(literal(value), column.type)


def _adf_delta(engine: Engine, name: str, shown: str, create: bool) -> Any:
    """The delta table, created with the template's columns when ``create`` and missing."""
    return _reflect_adf(engine, name, shown, "--adf-delta-table",
                        ("PartitionPrefix", "JobRunTime", "SuccessOrFailure"),
                        adf_delta_table if create else None)


def _stats(s: PartitionStats) -> dict[str, int]:
    return {"listed": s.listed, "copied": s.copied, "skipped": s.skipped,
            "failed_objects": s.failed_objects, "bytes": s.bytes}


def _job(row: RowMapping, typed: str | None = None) -> Job:
    """The job of a ``lakeshift_jobs`` row; ``typed``: one of its partitions' destinations,
    by which a destination saved in the form of before session 19 reads as the place it
    was (``urls.saved_destination``)."""
    return Job(int(row["id"]), str(row["name"]),
               saved_destination(str(row["destination"]), typed),
               json.loads(row["options"]), row["adf_table"],
               as_utc(row["created_at"]) or utcnow())


def _owner_dead(owner: str | None, host: str | None = None) -> bool:
    """Whether ``owner`` (host:pid:nonce) is a process of this host that no longer exists."""
    o_host, _, rest = (owner or "").partition(":")
    o_pid = rest.split(":", 1)[0]
    return (o_host == (host or socket.gethostname()) and o_pid.isdigit()
            and not _alive(int(o_pid)))


def _check_run_exists(conn: Connection, run_id: int) -> None:
    if conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise RunGone(f"run {run_id} is no longer in the control DB: its job was deleted "
                      "while it ran")


def _owner_host(owner: str | None) -> str:
    return (owner or "").partition(":")[0]


def _owner_pid(owner: str | None) -> str:
    return (owner or "").partition(":")[2].split(":", 1)[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
