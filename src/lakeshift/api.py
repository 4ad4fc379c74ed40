"""The Python API; it mirrors the CLI (``lakeshift copy`` ↔ :func:`copy`)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace

from lakeshift.engine.events import Subscriber
from lakeshift.engine.pipeline import CopyOptions, CopyResult, copy_async
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
         block_size: int = 8 * 1024 * 1024, overwrite: Overwrite = "if-different",
         include: tuple[str, ...] = (), exclude: tuple[str, ...] = (), dry_run: bool = False,
         folder_markers: str = "skip", store_options: StoreOptions | None = None,
         subscribers: list[Subscriber] | None = None) -> CopyResult:
    """Copy what ``source`` names into ``destination``; see ``lakeshift copy --help``.

    Returns a :class:`CopyResult`; object failures are in ``result.failures`` (and
    ``result.exit_code`` is 1), errors that stop the run raise a ``LakeshiftError``.
    """
    opts = CopyOptions(concurrency=concurrency, block_size=block_size, overwrite=overwrite,
                       include=tuple(include), exclude=tuple(exclude), dry_run=dry_run,
                       folder_markers=folder_markers)
    return asyncio.run(copy_async(source_config(source, store_options),
                                  destination_config(destination, store_options), opts,
                                  subscribers))


__all__ = ["CopyOptions", "CopyResult", "StoreOptions", "StoreURL", "copy",
           "destination_config", "source_config"]
