"""``tune`` (``lakeshift tune``; issue 16)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lakeshift import model
from lakeshift.api.common import MiB, _blocking
from lakeshift.errors import UsageError
from lakeshift.plan.places import store_difference, url_within
from lakeshift.plan.source import (
    destination_config,
    source_avoiding_destination,
    source_config,
)
from lakeshift.sizes import size_arg
from lakeshift.stores.base import StoreOptions
from lakeshift.urls import parse_url

if TYPE_CHECKING:
    from lakeshift.plan.jobconfig import JobConfig


async def tune_async(source: str, destination: str, *, config: str | Path | None = None,
                     sample_objects: int = 200, sample_size: int | str = 512 * MiB,
                     store_options: StoreOptions | None = None, include: Sequence[str] = (),
                     exclude: Sequence[str] = ()) -> model.TuneResult:
    """Try a few settings of concurrency, block size and single-put limit on a sample of
    ``source`` (its first ``sample_objects`` objects, at most ``sample_size`` bytes) copied
    into a scratch folder under ``destination`` that is deleted after each trial
    (``lakeshift tune``).  With ``config`` (a ``lakeshift.toml``) the best setting is written
    into its [run] table, which ``run --config`` then uses, and the trials reach the stores
    as its ``[source]`` and ``[destination]`` say (endpoint, credentials, plain HTTP…): a
    field of ``store_options`` that is not its default (a flag given) wins, as ``run``'s
    arguments win over the file's.  ``include`` / ``exclude``: the globs ``copy`` takes
    (its --include / --exclude): the sample is made of the names they take.

    Objects that fail in every trial, each the same way, for a reason of its own (the
    kinds ``copy --skip-errors`` accepts: unreadable, a dangling link, archived…) are left
    out of the timing (``TuneResult.left_out``); trials that failed other objects than the
    rest (flaky) are not compared (``TuneResult.not_compared``)."""
    from lakeshift.engine.tune import tune_async as tune_pair
    from lakeshift.plan.jobconfig import write_run_settings

    if sample_objects < 1:
        raise UsageError("--sample-objects must be at least 1")
    size = size_arg(sample_size, "--sample-size")
    if size < 1:
        raise UsageError("--sample-size must be at least 1 byte (e.g. 512MiB)")
    options = store_options or StoreOptions()
    if config is not None:
        # A config that cannot be read fails before the trials (read in a thread).
        from lakeshift.plan.jobconfig import load as load_config

        cfg = await asyncio.to_thread(load_config, Path(config))
        await asyncio.to_thread(_writable_config, Path(config))
        # The best setting goes into that job's [run]: it must be tried on that job's pair
        # (a folder of its source, into its destination or a folder of it).
        options = _over_config(options, cfg.store)
        for url in (source, destination, *cfg.sources, cfg.destination):
            parse_url(url)  # one that cannot be a place is refused as itself, not as "not X"
        if not any(url_within(source, options, s, cfg.store) for s in cfg.sources) or \
                not url_within(destination, options, cfg.destination, cfg.store):
            pair = f"{', '.join(cfg.sources)} → {cfg.destination}"
            servers = _servers_differ(source, destination, options, cfg)
            raise UsageError(
                (f"{config} copies {pair} with {servers}" if servers else
                 f"{config} copies {pair}, not {source} → {destination}")
                + ": tune that job's source and destination (or folders of them), or leave "
                "out --config to only print the best setting")
    dst = destination_config(destination, options)
    # (Its sample is what a copy would copy: not a local destination reached by a link.)
    result = await tune_pair(source_avoiding_destination(source_config(source, options), dst),
                             dst, sample_objects, size, tuple(include), tuple(exclude))
    if config is not None:
        b = result.best
        values: dict[str, int | str] = {"concurrency": b.concurrency}
        if "block_size" not in result.not_tried:
            # Sizes only when tried: an untried default would replace the file's own.
            values.update(block_size=b.block_size, single_put_max=b.single_put_max)
        await asyncio.to_thread(write_run_settings, Path(config), values)
    return result


def _servers_differ(source: str, destination: str, options: StoreOptions,
                    cfg: JobConfig) -> str:
    """What differs when the URLs name the config's but the servers do not (another S3
    endpoint or Azure account, from a flag or the environment), side by side; else "".
    Naming the URLs alone would say "copies X, not X"."""
    said = []
    for side, given, theirs in (("source", source, cfg.sources),
                                ("destination", destination, [cfg.destination])):
        if any(url_within(given, options, t, cfg.store) for t in theirs):
            continue
        differs = next(filter(None, (store_difference(given, options, t, cfg.store)
                                     for t in theirs)), None)
        if differs is None:  # another path too: the URLs say what differs
            return ""
        said.append(f"its {side} at {differs[1]}, while this tune's {side} would be at "
                    f"{differs[0]}")
    return "; ".join(said)


def _over_config(given: StoreOptions, from_config: StoreOptions) -> StoreOptions:
    """The config's store options, with each one ``given`` sets (not its default) instead."""
    default = StoreOptions()
    return replace(from_config, **{
        f.name: getattr(given, f.name) for f in fields(StoreOptions)
        if getattr(given, f.name) != getattr(default, f.name)})


def _writable_config(path: Path) -> None:
    """The best setting is written into ``path`` after the trials: one that cannot be
    written is refused before them (opened for appending, which changes nothing)."""
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write config {path}: {e.strerror}: make it writable, or "
                         "leave out --config to only print the best setting") from None


tune = _blocking(tune_async)
