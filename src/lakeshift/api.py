"""The Python API; it mirrors the CLI (``lakeshift copy`` ↔ :func:`copy`)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace

from lakeshift.engine.events import Subscriber
from lakeshift.engine.pipeline import CopyOptions, CopyResult, copy_async
from lakeshift.model import RunResult
from lakeshift.plan.compare import Overwrite
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.urls import StoreURL, parse_url


def source_config(url: str, options: StoreOptions | None = None) -> StoreConfig:
    """A source URL; a local path that is not a directory is split into its directory and
    the name (one file, or a string prefix of names) inside it."""
    parsed = parse_url(url)
    if parsed.scheme == "file" and not os.path.isdir(parsed.bucket):
        parent, name = os.path.split(parsed.bucket)
        parsed = replace(parsed, bucket=parent or "/", path=name)
    return StoreConfig(parsed, options or StoreOptions())


def destination_config(url: str, options: StoreOptions | None = None) -> StoreConfig:
    return StoreConfig(parse_url(url), options or StoreOptions())


def copy(source: str, destination: str, *, concurrency: int = 32,
         block_size: int = 8 * 1024 * 1024, single_put_max: int = 64 * 1024 * 1024,
         overwrite: Overwrite = "if-different", include: tuple[str, ...] = (),
         exclude: tuple[str, ...] = (), dry_run: bool = False,
         folder_markers: str = "skip", skip_errors: tuple[str, ...] = (),
         invalid_names: str = "fail", delete_source_after_verify: bool = False,
         store_options: StoreOptions | None = None,
         subscribers: list[Subscriber] | None = None) -> CopyResult:
    """Copy what ``source`` names into ``destination``; see ``lakeshift copy --help``.

    Returns a :class:`CopyResult`; object failures are in ``result.failures`` (and
    ``result.exit_code`` is 1), errors that stop the run raise a ``LakeshiftError``.
    """
    opts = CopyOptions(concurrency=concurrency, block_size=block_size,
                       single_put_max=single_put_max, overwrite=overwrite,
                       include=tuple(include), exclude=tuple(exclude), dry_run=dry_run,
                       folder_markers=folder_markers, skip_errors=frozenset(skip_errors),
                       invalid_names=invalid_names,
                       delete_source=delete_source_after_verify)
    opts.validate()
    return asyncio.run(copy_async(source_config(source, store_options),
                                  destination_config(destination, store_options), opts,
                                  subscribers))


def plan_job(sources: list[str], destination: str, *, job: str,
             db: str = "sqlite:///lakeshift.db",
         prefixes: tuple[str, ...] = (), partition_by: str = "none",
         target_objects: int = 100_000, adf_control_table: str | None = None,
         include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
         overwrite: Overwrite = "if-different", folder_markers: str = "skip",
         store_options: StoreOptions | None = None) -> int:
    """Write a job and its partitions to the control DB (``lakeshift plan``); returns the
    number of partitions."""
    from lakeshift.cli.job_cmds import create_plan
    from lakeshift.control.repository import ControlDB

    control = ControlDB(db, create=True)
    try:
        j = create_plan(control, job, list(sources), destination,
                        store_options or StoreOptions(), list(prefixes), partition_by,
                        target_objects, adf_control_table, list(include), list(exclude),
                        overwrite, folder_markers)
        return len(control.partitions(j.id))
    finally:
        control.close()


def run_job(*, job: str, db: str = "sqlite:///lakeshift.db", batch_count: int = 4,
            concurrency: int = 32, block_size: int = 8 * 1024 * 1024,
            single_put_max: int = 64 * 1024 * 1024, lease_seconds: float = 60.0,
            subscribers: list[Subscriber] | None = None) -> RunResult:
    """Copy the pending and failed partitions of a job (``lakeshift run``)."""
    from lakeshift.control.repository import ControlDB
    from lakeshift.engine import jobrunner

    control = ControlDB(db)
    try:
        j = control.job(job)
        opts = jobrunner.job_copy_options(j, concurrency, block_size,
                                          single_put_max=single_put_max)
        return asyncio.run(jobrunner.run_job(control, j, batch_count, opts,
                                             StoreOptions(**j.options.get("store", {})),
                                             subscribers, lease_s=lease_seconds,
                                             heartbeat_s=max(1.0, min(5.0, lease_seconds / 4))))
    finally:
        control.close()


__all__ = ["CopyOptions", "CopyResult", "StoreOptions", "StoreURL", "copy",
           "destination_config", "plan_job", "run_job", "source_config"]
