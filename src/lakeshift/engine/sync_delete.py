"""sync --delete's deletion phase (engine/sync.py ``SyncMode.delete_found``): after
every partition of a pass is listed, its recorded candidates are checked against the
cap, asked again at the source, paired with renamed objects' new names, and deleted."""

from __future__ import annotations

import asyncio
import functools
import shlex
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from lakeshift.engine.events import EventBus
from lakeshift.engine.pipeline_action import transfer_one
from lakeshift.engine.pipeline_pool import drive
from lakeshift.engine.renames import NewName, same_content
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.engine.transfer import TransferContext
from lakeshift.errors import AuthError, DestinationFolderError, LakeshiftError, UsageError
from lakeshift.model import Failure, ObjectInfo, RunResult
from lakeshift.stores.base import Store

if TYPE_CHECKING:
    from lakeshift.engine.sync import SyncMode


async def delete_found(mode: SyncMode, run: RunResult, store_options: Any, opts: Any) -> None:
    """After every partition of the pass (before its run row closes): candidates under
    a folder where the pass had failures are dropped (it did not see all there), the
    rest are counted against --max-delete (across the pass), then deleted, each
    recorded as it is made.  Before each deletion the source key is asked again (one
    HEAD): an object that reappeared is not deleted; after it, once more: one that
    reappeared meanwhile is copied back.  Above the cap nothing is deleted and the
    partitions that had candidates fail (their windows stay where they were)."""
    from lakeshift.engine.jobrunner_run import partition_store
    from lakeshift.engine.pipeline_stats import StatsCounter
    from lakeshift.engine.slots import SlotPool
    from lakeshift.engine.sync import CANDIDATE_BATCH

    call = asyncio.to_thread
    # Only partitions whose listing succeeded: a failed one's candidates may be
    # incomplete, and its window stays anyway.
    eligible = {int(row["id"]) for row, _, _ in mode._deferred}
    mode.held_by_failures = await call(mode.db.drop_delete_candidates_under_failures,
                                       run.run_id)
    per_partition = {pid_: n for pid_, n in (await call(
        mode.db.delete_candidate_counts, run.run_id)).items() if pid_ in eligible}
    total = sum(per_partition.values())
    cap = mode.settings.max_delete
    limit = cap.limit(mode.destination_objects)
    if total > limit:
        how = (f"--max-delete {cap}" if cap.explicit
               else f"the default cap of {cap} (pass --max-delete N or P% to allow more)")
        if cap.percent is not None:
            # The limit a percentage gives, and what it is a percentage of (the pass's).
            how += (f" ({cap} of the {mode.destination_objects} destination object"
                    f"{'s' if mode.destination_objects != 1 else ''} the pass listed: "
                    f"{limit})")
        error = (f"{total} destination object{'s have' if total != 1 else ' has'} no "
                 f"source any more, more than {how}: nothing deleted in this pass")
        for pid_ in per_partition:
            mode._deferred_failure[pid_] = error
        return
    policy = RetryPolicy(attempts=opts.retries)
    stores: dict[str, Store] = {}
    rows = {int(r["id"]): r for r in await call(mode.db.partitions, mode.job.id)}
    events = EventBus([StatsCounter(run.stats, []), *mode.subscribers])

    def store(url: str) -> Store:
        return partition_store(stores, url, store_options)

    def source(row: Any) -> Store:
        """A partition's source store, told its destination as the pass's was (a local
        source's look-ups never reach into a local destination)."""
        return partition_store(stores, str(row["source"]), store_options,
                               str(row["destination"]))

    def failed(pid_: int, key: str, e: LakeshiftError, what: str) -> Failure:
        mode._deferred_failure[pid_] = ("some deletions failed (lakeshift failures --job "
                                        f"{shlex.quote(mode.job.name)})")
        run.stats.failed += 1
        return Failure(key, e.kind, f"{what}: {e}", policy.attempts)

    async def delete_one(r: Any) -> None:
        pid_, key = int(r["partition_id"]), str(r["destination_key"])
        if pid_ not in eligible:
            return
        src, dst = source(rows[pid_]), store(str(rows[pid_]["destination"]))
        source_key = str(r["source_key"])
        problem: Failure | None = None
        done: tuple[int, str, str, int] | None = None
        try:
            if await at_source(src, source_key, policy) is not None:
                mode.reappeared.append(source_key)
            elif not await renamed_first(r, dst):
                problem = Failure(key, "rename", "kept: it was renamed at the source and "
                                  "its new name could not be copied", policy.attempts)
                mode._deferred_failure[pid_] = ("a renamed object's new name could not be "
                                                "copied (lakeshift failures --job "
                                                f"{shlex.quote(mode.job.name)})")
            else:
                await retry(functools.partial(dst.delete, key), policy)
                done = (pid_, source_key, key, int(r["size"]))
                again = await at_source(src, source_key, policy)
                if again is not None:
                    # Written while it was being deleted: its copy goes back now.
                    mode.reappeared.append(source_key)
                    await transfer_one(context(src, dst), again, key, events,
                                       opts.retries)
        except (AuthError, UsageError):
            raise
        except LakeshiftError as e:
            problem = failed(pid_, key, e, "could not delete from the destination"
                             if done is None else "deleted, then its source reappeared")
        # Written as it happens: a pass stopped now has recorded every deletion made.
        await call(mode.db.delete_candidate_done, mode.job.id, run.run_id, int(r["id"]),
                   done)
        if problem is not None:
            await call(mode.db.add_failures, mode.job.id, pid_, run.run_id, [problem], True)
        if done is not None:
            mode.deleted_count[pid_] = mode.deleted_count.get(pid_, 0) + 1
            if len(mode.deleted_keys) < 1000:
                mode.deleted_keys.append(key)

    pairing = asyncio.Lock()
    contexts: dict[tuple[int, int], TransferContext] = {}

    def context(src: Store, dst: Store) -> TransferContext:
        if (id(src), id(dst)) not in contexts:
            contexts[id(src), id(dst)] = TransferContext(
                src, dst, opts.block_size, SlotPool(max(1, min(4, opts.concurrency))),
                policy, events, opts.pacing(events), opts.single_put_max)
        return contexts[id(src), id(dst)]

    async def partner(r: Any, dst: Store) -> NewName | None:
        """A new name of the pass with the candidate's content, taken (once)."""
        assert mode.new_names is not None
        names = await call(mode.new_names.of_size, int(r["size"]))
        if not names:
            return None
        old = await retry(functools.partial(dst.exists, r["destination_key"]), policy)
        if old is None:
            return None
        async with pairing:
            for n in await call(mode.new_names.of_size, int(r["size"])):
                if await same_content(old, dst, n,
                                      source(rows[n.partition_id])):
                    await call(mode.new_names.take, n)
                    return n
        return None

    async def renamed_first(r: Any, dst: Store) -> bool:
        """When the candidate was renamed at the source, its new name's copy is made
        before it is deleted (a rename that kept its time is outside the window).
        False: it was, and that copy failed."""
        if mode.new_names is None:
            return True
        n = await partner(r, dst)
        if n is None:
            return True
        row = rows[n.partition_id]
        nsrc, ndst = source(row), store(str(row["destination"]))
        there = await retry(functools.partial(ndst.exists, n.destination_key), policy)
        if there is None or there.size != n.size:
            now = await at_source(nsrc, n.key, policy)
            if now is None:
                return True  # the new name is gone too: not a rename after all
            if not await transfer_one(context(nsrc, ndst), now, n.destination_key,
                                      events, opts.retries):
                return False
        mode.renames.append((str(r["destination_key"]), n.destination_key))
        return True

    async def each(rows: list[Any]) -> AsyncIterator[Any]:
        for r in rows:
            yield r

    after = 0
    try:
        while batch := await call(mode.db.delete_candidates, run.run_id, after,
                                  CANDIDATE_BATCH):
            after = int(batch[-1]["id"])
            await drive(each(batch), delete_one, max(1, opts.concurrency))
    finally:
        await asyncio.gather(*(st.close() for st in stores.values()),
                             return_exceptions=True)


async def at_source(src: Store, key: str, policy: RetryPolicy) -> ObjectInfo | None:
    """The source object ``key`` (one HEAD, retried), or None.  None too for a name that
    is, or goes through, a link to the destination folder or into it (a local source's
    DestinationFolderError): the walk lists nothing there, so a destination object of that
    name has no source — it is not kept as one that reappeared, and nothing is copied
    back from the destination into itself."""
    try:
        return await retry(functools.partial(src.exists, key), policy)
    except DestinationFolderError:
        return None
