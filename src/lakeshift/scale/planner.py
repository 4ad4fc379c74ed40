"""``lakeshift plan --partition-by auto --dask …``: the listing of a huge source, split
across Dask workers so that no process lists it all.

The driver discovers the first regions with a few listing requests (the root's subfolders,
or its keys' next characters: plan/partitioner.py ``split_region``).  Each region is one
Dask task: a worker lists it, with its own store client built from the pickled
``StoreConfig``, and returns chunk boundaries (first key, last key, count), never keys; a
region bigger than ``split_at`` comes back split, and its parts become new tasks.  The
driver then cuts the partitions from the boundaries, exactly as a plan without Dask does:
memory on the driver is O(partitions), on a worker O(one page + its chunks).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from lakeshift.engine.events import EventBus
from lakeshift.model import PartitionSpec
from lakeshift.plan.partitioner import (
    SPLIT_AT,
    AutoPartitioner,
    Chunk,
    PlannedSource,
    Region,
    RegionResult,
    check_target,
    emit_listed,
    list_region,
    partitions_of,
    root_region,
    split_region,
)
from lakeshift.scale.cluster import ClusterSpec, Fleet, open_fleet
from lakeshift.stores.base import Store, StoreConfig
from lakeshift.stores.registry import open_store

#: Regions one worker task lists at a time.
PARALLEL = 8


@asynccontextmanager
async def dask_partitioner(spec: ClusterSpec, split_at: int = SPLIT_AT
                           ) -> AsyncIterator[AutoPartitioner]:
    """An ``AutoPartitioner`` whose listing runs on the cluster ``spec`` (connected on
    entry, closed, with a local:N cluster stopped, on exit)."""
    fleet = await asyncio.to_thread(open_fleet, spec)
    try:
        async def auto(store: Store, cfg: StoreConfig, src: PlannedSource, target: int,
                       events: EventBus | None) -> list[PartitionSpec]:
            return await auto_partitions_on_dask(fleet, cfg, src, target, events, split_at,
                                                 store)

        yield auto
    finally:
        await asyncio.to_thread(fleet.close)


def list_regions_task(cfg: StoreConfig, regions: list[Region], target: int,
                      split_at: int, parallel: int = PARALLEL) -> list[RegionResult]:
    """A Dask task's body: the chunk boundaries (or the parts) of a few regions, listed
    ``parallel`` at a time in the worker's process with the worker's credentials."""

    async def go() -> list[RegionResult]:
        store = open_store(cfg)
        gate = asyncio.Semaphore(parallel)

        async def one(region: Region) -> RegionResult:
            async with gate:
                return await list_region(store, region, target, split_at)

        try:
            return list(await asyncio.gather(*(one(r) for r in regions)))
        finally:
            await store.close()

    return asyncio.run(go())


async def auto_partitions_on_dask(fleet: Fleet, cfg: StoreConfig, src: PlannedSource,
                                  target: int, events: EventBus | None = None,
                                  split_at: int = SPLIT_AT,
                                  store: Store | None = None) -> list[PartitionSpec]:
    """The automatic partitions of one source, listed by the fleet's workers (the same
    partitions as ``partitioner.auto_partitions``); the driver's discovery goes through
    ``store`` when given (else one opened from ``cfg``)."""
    check_target(target)
    own = store is None
    driver = open_store(cfg) if store is None else store
    try:
        first = await split_region(driver, root_region(src), target, split_at)
    finally:
        if own:
            await driver.close()
    chunks = await asyncio.to_thread(_gather, fleet, cfg, first, target, split_at, events)
    return partitions_of(src, chunks, target)


def _gather(fleet: Fleet, cfg: StoreConfig, first: RegionResult, target: int,
            split_at: int, events: EventBus | None) -> list[Chunk]:
    """Every chunk of the source: the first regions' tasks, then their parts' tasks, as
    the results come in."""
    from lakeshift.scale.cluster import distributed_module

    distributed = distributed_module()
    client = fleet.client
    chunks: list[Chunk] = list(first.chunks)
    emit_listed(events, first.chunks)

    workers = max(1, len(fleet.workers()))

    def submit(regions: list[Region]) -> list[Any]:
        # A task lists a few regions at once (a worker runs one task per thread, and a
        # listing mostly waits); about two tasks per worker, so that all are busy.
        size = min(PARALLEL * 4, max(1, -(-len(regions) // (2 * workers))))
        return [client.submit(list_regions_task, cfg, regions[i:i + size], target,
                              split_at, pure=False)
                for i in range(0, len(regions), size)]

    pending = distributed.as_completed(submit(first.split))
    try:
        for future in pending:
            results: list[RegionResult] = future.result()  # a worker's error is the plan's
            parts: list[Region] = []
            for r in results:
                chunks += r.chunks
                emit_listed(events, r.chunks)
                parts += r.split
            for f in submit(parts):
                pending.add(f)
    finally:
        pending.clear()  # on an error: the tasks not done yet are released (cancelled)
    return chunks
