"""What every command's function shares: ``_blocking`` (the blocking twin of each
``NAME_async``), ``reading_only`` and the control DB's opening (``_control``, ``_opened``,
``_planning_db``), the start-up checks of a job's stores (``_check_stores``), ``--dask``'s
cluster, paging arguments and report folders."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from lakeshift.errors import EndpointUnreachable, UsageError
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.urls import parse_url

if TYPE_CHECKING:
    from lakeshift.control.db import SqliteFile
    from lakeshift.control.records import Job
    from lakeshift.control.repository import ControlDB


MiB = 1024 * 1024
_STATES = ("pending", "running", "succeeded", "failed")
P = ParamSpec("P")
T = TypeVar("T")


def _blocking(async_fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The blocking twin of ``NAME_async``: runs it in a new event loop (``asyncio.run``).
    Called from a running loop (a web handler, a notebook, a Dask worker's coroutine) it
    cannot block that loop: it raises one UsageError naming ``NAME_async`` instead."""
    name = async_fn.__name__.removesuffix("_async")

    @functools.wraps(async_fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(async_fn(*args, **kwargs))
        raise UsageError(f"lakeshift.{name}() was called inside a running event loop, which "
                         f"it would block: use `await lakeshift.{name}_async(...)` there")

    call.__name__ = call.__qualname__ = name
    call.__doc__ = (f"Blocking form of :func:`{name}_async` (same arguments, same result); "
                    f"not for use inside a running event loop.\n\n{async_fn.__doc__ or ''}")
    return call


#: Set by reading_only(): the control DB is opened read-only in this context.
_READ_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("lakeshift_read_only",
                                                                  default=False)


@contextmanager
def reading_only() -> Iterator[None]:
    """Inside ``with lakeshift.reading_only():`` the API only reads control DBs: no table is
    created, no migration runs (a DB of an older schema raises
    :class:`~lakeshift.control.db.SchemaOutdated`, a UsageError naming the command that
    upgrades it), SQLite takes no write lock, and a call that would write fails.  The
    monitor serves every page in it.  A context variable: it follows ``asyncio`` tasks and
    ``asyncio.to_thread``."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def _control(db: str, create: bool = False) -> ControlDB:
    # Imported here: SQLAlchemy costs ~0.13 s at start-up, and `copy` never needs it.
    from lakeshift.control.repository import ControlDB

    if _READ_ONLY.get():
        return ControlDB(db, read_only=True)
    return ControlDB(db, create=create)


@asynccontextmanager
async def _opened(db: str, create: bool = False) -> AsyncIterator[ControlDB]:
    """The control DB, opened and closed in a worker thread (the event loop stays free)."""
    control = await asyncio.to_thread(_control, db, create)
    try:
        yield control
    finally:
        await asyncio.to_thread(control.close)


def _as_utc(value: datetime | None) -> datetime | None:
    from lakeshift.control.records import as_utc

    return as_utc(value)


@asynccontextmanager
async def _planning_db(db: str) -> AsyncIterator[ControlDB]:
    """The control DB to write a job in, created if missing.  The job is written in one
    transaction, last: a plan that fails before it leaves no job, and no DB file that was
    created only to hold it."""
    new_file = _new_sqlite_file(db)
    control: ControlDB | None = None
    try:
        control = await asyncio.to_thread(_control, db, True)
        yield control
    except BaseException:
        if control is not None:
            await asyncio.to_thread(control.close)
            control = None
        _remove_sqlite_file(new_file)
        raise
    finally:
        if control is not None:
            await asyncio.to_thread(control.close)


def _sqlite_db_file(db: str) -> SqliteFile | None:
    """The file the SQLite control DB URL ``db`` names, as opening it reads it
    (``control/db.sqlite_file``: its path, and a URI filename's SQLite parameters); None for
    another kind of DB; UsageError, one line, for a URL opening refuses (memory, another
    host…).  For a face that writes a DB URL for later (``init``) without opening it."""
    from lakeshift.control.db import sqlite_file

    return sqlite_file(db)


def _new_sqlite_file(db: str) -> Path | None:
    """The SQLite file ``db`` names when it does not exist yet (else None); a URI filename's
    (``sqlite:///file:PATH?mode=rwc&uri=true``) is ``PATH``."""
    from sqlalchemy.exc import ArgumentError

    from lakeshift.control.db import sqlite_file

    try:
        target = sqlite_file(db)
    except (ArgumentError, UsageError):
        return None  # ControlDB says what is wrong with it
    if target is None:
        return None
    path = Path(target.path)
    return None if path.exists() else path


def _processes_here(fleet: Any) -> int:
    """How many processes of this machine copy (their buffers are checked against its
    memory): 1 without ``--dask``, N for ``local:N``, none for a remote cluster's workers
    (a client's memory says nothing of theirs)."""
    return 1 if fleet is None else int(fleet.local_workers)


def _dask_cluster(dask: str | None, db: str) -> Any:
    """``--dask``'s cluster (a scale.cluster.ClusterSpec), checked with the DB it needs;
    None without ``--dask``."""
    if dask is None:
        return None
    from lakeshift.scale.cluster import ClusterSpec
    from lakeshift.scale.driver import refuse_sqlite

    spec = ClusterSpec.parse(dask)
    refuse_sqlite(db, dask)
    return spec


def _remove_sqlite_file(path: Path | None) -> None:
    if path is not None:
        for p in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-journal"))):
            p.unlink(missing_ok=True)


async def _check_stores(pairs: Iterable[tuple[StoreConfig, StoreConfig]],
                       new_job: bool) -> None:
    """``copy``'s start-up checks for every distinct source and destination store: the
    credentials are resolved, a source is listed, a destination prepared.  A missing or
    rejected credential raises AuthError (exit 3), a bad key or URL UsageError (exit 2),
    before a job or a run is recorded (it used to end as a failed partition, exit 1).
    For an existing job a store that answers but is unusable (a bucket gone) is left to
    fail its own partitions: the others still run (docs/migrations.md "Running")."""
    from lakeshift.engine.pipeline import check_reachable
    from lakeshift.engine.retry import RetryPolicy
    from lakeshift.stores.registry import open_store

    def root(c: StoreConfig) -> tuple[str | None, ...]:
        return (c.url.scheme, c.url.bucket, c.url.account, c.url.endpoint_suffix)

    checks: dict[tuple[str | None, ...], tuple[StoreConfig, str]] = {}
    for src, dst in pairs:
        checks.setdefault(("source", *root(src)), (src, "source"))
        checks.setdefault(("destination", *root(dst)), (dst, "destination"))

    async def check_all() -> None:
        for config, label in checks.values():
            store = open_store(config)
            try:
                await check_reachable(store.check_source if label == "source"
                                      else store.prepare_destination, label, RetryPolicy())
            except EndpointUnreachable:
                raise  # nothing of the job can run: the user must fix the endpoint first
            except UsageError:
                if new_job:
                    raise
            finally:
                await store.close()

    await check_all()


def _job_store_pairs(control: ControlDB, j: Job,
                     so: StoreOptions) -> list[tuple[StoreConfig, StoreConfig]]:
    return [(StoreConfig(parse_url(r["source"]), so), StoreConfig(parse_url(r["destination"]), so))
            for r in control.partitions(j.id) if r["source"]]


def _run_store_options(saved: StoreOptions, given: StoreOptions | None,
                       given_names: Collection[str] = (),
                       environment: StoreOptions | None = None
                       ) -> tuple[StoreOptions, dict[str, tuple[Any, str, Any]]]:
    """How a run (or sync pass) of a job reaches its stores, for this run only: each field
    of ``given`` (``run --s3-endpoint``, sync's store flags) that is not its default, or
    whose name is in ``given_names`` (a flag typed at its default value, ``--azure-auth
    auto``), wins over the job's (``saved``); the job's wins over the ``environment``'s
    (``LAKESHIFT_AZURE_AUTH`` …), which is used where the job has the default.  Flag > job >
    environment > default.  With a new job's ``saved`` (``StoreOptions()``), what that job
    keeps.

    Also, for ``RunResult.store_settings``, each field (not the S3 endpoint: see
    ``_s3_endpoint_used``) that a flag or the environment set: field → (the value used,
    where it came from: the flag, ``"job"``, ``"environment"`` or ``"default"``, the job's
    value).  A flag given with the job's own value is the job's, as for the endpoint."""
    from dataclasses import fields, replace

    default = StoreOptions()
    given = given or default
    environment = environment or default
    chosen: dict[str, Any] = {}
    settings: dict[str, tuple[Any, str, Any]] = {}
    for f in fields(StoreOptions):
        flag, job, env, none = (getattr(o, f.name) for o in (given, saved, environment,
                                                             default))
        typed = f.name in given_names or flag != none
        if typed:
            value, where = flag, ("job" if flag == job != none
                                  else "--" + f.name.replace("_", "-"))
        elif job != none:
            value, where = job, "job"
        elif env != none:
            value, where = env, "environment"
        else:
            value, where = job, "default"
        chosen[f.name] = value
        if f.name != "s3_endpoint" and (typed or env != none):
            settings[f.name] = (value, where, job)
    return replace(saved, **chosen), settings


def _run_copy_mode(saved: str, given: str | None, environment: str | None
                   ) -> tuple[str, tuple[str, str, str] | None]:
    """The copy mode a run of a job uses, by the store options' order
    (``_run_store_options``): ``given`` (``run --copy-mode``, typed for this run: even
    ``stream`` counts) > the job's ``saved`` one when it is not the default (``stream``) >
    ``environment`` (``LAKESHIFT_COPY_MODE``, which typer would otherwise hand over as if
    the flag were typed) > the default.  Also, for ``RunResult.copy_mode_setting``, when a
    flag or the environment was involved: (the mode used, where it came from --
    ``"--copy-mode"``, ``"job"``, ``"environment"`` -- the job's saved mode); else None."""
    default = "stream"
    if given is not None:
        return given, (given, "job" if given == saved else "--copy-mode", saved)
    if saved != default:
        return saved, ((saved, "job", saved) if environment is not None else None)
    if environment is not None:
        return environment, (environment, "environment", saved)
    return saved, None


def _s3_endpoint_used(j: Job, saved: StoreOptions, given: StoreOptions | None
                      ) -> tuple[str | None, str] | None:
    """The S3 endpoint a run of job ``j`` reaches its S3 store by, and where that came
    from — ``--s3-endpoint`` (given for this run, other than the job's), ``job`` (planned
    with it),
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (the environment), ``aws`` (none: AWS's
    own, None) — in that order of precedence (stores/s3/auth.py ``resolve``); None for a
    job without an S3 store."""
    import os

    urls = [*j.options.get("sources", []), j.options.get("adf_source") or "", j.destination]
    if not any(str(u).lower().startswith("s3://") for u in urls):
        return None
    # (An empty one given, ``run --s3-endpoint ""``, drops the job's: the environment's.
    # One given that is the job's own -- ``sync SRC DST --s3-endpoint URL`` that made the
    # job, or repeats it each pass -- is the job's: later runs use it too.)
    chosen, where = ((given.s3_endpoint, "--s3-endpoint")
                     if given is not None and given.s3_endpoint is not None
                     and given.s3_endpoint != saved.s3_endpoint
                     else (saved.s3_endpoint, "job"))
    if chosen:
        return chosen, where
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if os.environ.get(variable):
            return os.environ[variable], variable
    return None, "aws"


def _endpoint_settings(endpoint: tuple[str | None, str] | None) -> dict[str, Any]:
    """What a run's row records of the S3 endpoint it used (``_s3_endpoint_used``), for
    the monitor's run page: the URL redacted and where it came from; nothing for a job
    without an S3 store.  A ``run``'s and each sync pass's alike."""
    if endpoint is None:
        return {}
    from lakeshift.redact import redact

    return {"s3_endpoint": redact(endpoint[0]) if endpoint[0] else None,
            "s3_endpoint_from": endpoint[1]}


#: The store options a run's row records (``_store_settings_recorded``), each with the
#: URL scheme of the stores it applies to.
_RECORDED_STORE_OPTIONS = {"azure_auth": "azure", "s3_request_payer": "s3"}


def _store_settings_recorded(j: Job, used: StoreOptions, saved: StoreOptions,
                             settings: dict[str, tuple[Any, str, Any]]) -> dict[str, Any]:
    """What a run's row records of its Azure auth and S3 request payer, for the monitor's
    run page, as ``_endpoint_settings`` does of the S3 endpoint: each one of a job with a
    store it applies to (an Azure store; an S3 one), the value ``used`` and where it came
    from -- the flag (``--azure-auth``: typed for this run or pass), ``job``,
    ``environment`` or ``default`` (``settings``: ``_run_store_options``' where a flag or
    the environment was involved; else the job's saved value, or the default).  A
    ``run``'s and each sync pass's alike."""
    urls = [*j.options.get("sources", []), j.options.get("adf_source") or "", j.destination]
    schemes = set()
    for u in urls:
        try:
            schemes.add(parse_url(str(u)).scheme if u else None)
        except UsageError:
            continue  # (not a store this run reaches: nothing to record of it)
    default = StoreOptions()
    out: dict[str, Any] = {}
    for name, scheme in _RECORDED_STORE_OPTIONS.items():
        if scheme not in schemes:
            continue
        value = getattr(used, name)
        where = (settings[name][1] if name in settings
                 else "job" if getattr(saved, name) != getattr(default, name) else "default")
        out[name], out[f"{name}_from"] = value, where
    return out


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the report folder {folder}: {e.strerror}") from None
    return missing


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _page_args(offset: int, limit: int | None, most: int | None = None) -> None:
    if offset < 0 or (limit is not None and limit < 0):
        raise UsageError("offset and limit must be 0 or more")
    if most is not None and (limit is None or limit > most):
        raise UsageError(f"limit must be at most {most}")
