"""``copy`` (``lakeshift copy``) and ``--proof-log``'s writer, which ``run`` and
``sync`` use too."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lakeshift.api.common import MiB, _blocking
from lakeshift.engine.copy_options import copy_options, identity_pairs
from lakeshift.engine.events import Subscriber
from lakeshift.engine.pipeline import copy_async as _copy_pair
from lakeshift.errors import UsageError
from lakeshift.model import CopyResult
from lakeshift.plan.source import (
    destination_config,
    source_avoiding_destination,
    source_config,
    source_shown,
)
from lakeshift.stores.base import StoreOptions

if TYPE_CHECKING:
    from lakeshift.engine.proof_log import ProofLog


async def _check_proof_log(proof_log: str | Path, reader: bool = False) -> None:
    """What opening ``--proof-log`` would refuse, refused now (nothing created; a FIFO
    nobody reads only with ``reader``: ``ProofLog.check``)."""
    from lakeshift.engine.proof_log import ProofLog

    await asyncio.to_thread(ProofLog.check, proof_log, reader)


def _refuse_proof_log_on_dask(proof_log: str | Path | None, dask: str | None) -> None:
    if proof_log is not None and dask is not None:
        raise UsageError("--proof-log cannot go with --dask: the workers copy in their own "
                         "processes and their objects' events do not reach this one, so no "
                         "row could be written as its object finishes; leave out --dask for "
                         "a proof log, or prove the copies afterwards with `lakeshift verify "
                         "SRC DST --report R --list-verified` (a row per object)")


@asynccontextmanager
async def _proofs(proof_log: str | Path | ProofLog | None,
                  subscribers: list[Subscriber] | None
                  ) -> AsyncIterator[list[Subscriber] | None]:
    """The subscribers, with ``--proof-log``'s writer among them while the command copies
    (opened off the loop; closed once its queued rows are written).  A command that
    stops leaves a log it created without a row nowhere.  A row that cannot be written
    stops the command (cancelled: a run's partition that met it fails with the log's
    error, the others go back to pending at their cursors, as after Ctrl-C), which then
    raises the log's UsageError.  ``proof_log`` may be the log opened already (``sync``
    opens it before it makes a job), which is then this one's to close."""
    if proof_log is None:
        yield subscribers
        return
    from lakeshift.engine.proof_log import ProofLog

    log = (proof_log if isinstance(proof_log, ProofLog)
           else await asyncio.to_thread(ProofLog.open, proof_log))
    log.taken = True
    task = asyncio.current_task()
    if task is not None:
        log.on_failure = task.cancel
    try:
        yield [*(subscribers or []), log]
    except BaseException:
        await _closed(log, discard=True)  # the rows queued are written: objects copied
        if log.on_failure is None and task is not None:  # it cancelled the command
            task.uncancel()
            raise log.failure() from None
        raise
    if log.on_failure is None and task is not None:  # cancelled, and the cancel was taken
        task.uncancel()
    await asyncio.to_thread(log.close)


async def _closed(log: ProofLog, discard: bool) -> None:
    """``log.close(discard)`` awaited off the event loop: behind a stalled disk it waits up
    to the stall limit (``http.STALL_SECONDS``, 120 s) for the rows queued, and the loop
    must not be held meanwhile (heartbeats, the display, an embedding application).  A
    daemon thread of its own rather than ``asyncio.to_thread``: a command interrupted again
    while it waits leaves it behind (``asyncio.run``'s end waits for the default
    executor's threads, up to that limit)."""
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if closed.done():  # (the command was interrupted again: nobody waits)
            return
        if error is None:
            closed.set_result(None)
        else:
            closed.set_exception(error)

    def close() -> None:
        error: BaseException | None = None
        try:
            log.close(discard)
        except BaseException as e:  # (said on the loop, by the command awaiting it)
            error = e
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=close, daemon=True, name="lakeshift-proof-log-close").start()
    await closed


async def copy_async(source: str, destination: str, *, concurrency: int = 32,
                     block_size: int | str = 8 * MiB, single_put_max: int | str | None = None,
                     overwrite: str = "if-different", include: Sequence[str] = (),
                     exclude: Sequence[str] = (), dry_run: bool = False,
                     folder_markers: str = "skip", skip_errors: str | Iterable[str] = (),
                     invalid_names: str = "fail",
                     max_requests_per_second: float | None = None,
                     max_bandwidth: int | str | None = None, adaptive: bool = True,
                     delete_source_after_verify: bool = False,
                     empty_dirs: bool | None = None, preserve: str | Iterable[str] = (),
                     map_identities: str | Path | None = None, copy_mode: str = "auto",
                     proof_log: str | Path | None = None,
                     store_options: StoreOptions | None = None,
                     subscribers: list[Subscriber] | None = None) -> CopyResult:
    """Copy what ``source`` names into ``destination`` (``lakeshift copy``).

    Returns a :class:`CopyResult`; object failures are in ``result.failures`` (and
    ``result.exit_code`` is 1), errors that stop the run raise a ``LakeshiftError``.
    ``subscribers`` receive the engine's events (progress).  ``copy_mode`` is ``auto`` by
    default: server-side copies where the stores allow, streaming once one fails.
    ``proof_log`` (a CSV file's path) gets one row per object copied, appended as each
    finishes: when, source key, destination key, size, proof, attempts (nothing in a dry
    run; docs/copy.md "The proof log").  A path that cannot be written raises a UsageError before
    anything is copied.
    """
    pairs = await asyncio.to_thread(identity_pairs, map_identities)  # a file: off the loop
    opts = copy_options(concurrency=concurrency, block_size=block_size,
                        single_put_max=single_put_max, overwrite=overwrite, include=include,
                        exclude=exclude, dry_run=dry_run, folder_markers=folder_markers,
                        skip_errors=skip_errors, invalid_names=invalid_names,
                        adaptive=adaptive, max_requests_per_second=max_requests_per_second,
                        max_bandwidth=max_bandwidth, delete_source=delete_source_after_verify,
                        empty_dirs=empty_dirs, preserve=preserve,
                        map_identities=pairs, copy_mode=copy_mode)
    dst = destination_config(destination, store_options)
    src = source_avoiding_destination(source_config(source, store_options), dst)
    if dry_run and proof_log is not None:  # a dry run writes no log, but checks the path
        await _check_proof_log(proof_log, reader=True)
        proof_log = None
    async with _proofs(proof_log, subscribers) as subscribers:
        result = await _copy_pair(src, dst, opts, subscribers)
    result.source, result.destination = source_shown(src), dst.url.display()
    return result


copy = _blocking(copy_async)
