"""``tune`` (``lakeshift tune``; issue 16)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lakeshift import model
from lakeshift.api.common import MiB, _blocking
from lakeshift.errors import UsageError
from lakeshift.plan.source import destination_config, source_config
from lakeshift.sizes import size_arg
from lakeshift.stores.base import StoreOptions
from lakeshift.urls import parse_url


async def tune_async(source: str, destination: str, *, config: str | Path | None = None,
                     sample_objects: int = 200, sample_size: int | str = 512 * MiB,
                     store_options: StoreOptions | None = None) -> model.TuneResult:
    """Try a few settings of concurrency, block size and single-put limit on a sample of
    ``source`` (its first ``sample_objects`` objects, at most ``sample_size`` bytes) copied
    into a scratch folder under ``destination`` that is deleted after each trial
    (``lakeshift tune``).  With ``config`` (a ``lakeshift.toml``) the best setting is written
    into its [run] table, which ``run --config`` then uses."""
    from lakeshift.engine.tune import tune_async as tune_pair
    from lakeshift.plan.jobconfig import write_run_settings

    if sample_objects < 1:
        raise UsageError("--sample-objects must be at least 1")
    size = size_arg(sample_size, "--sample-size")
    if size < 1:
        raise UsageError("--sample-size must be at least 1 byte (e.g. 512MiB)")
    if config is not None:
        # A config that cannot be read fails before the trials (read in a thread).
        from lakeshift.plan.jobconfig import load as load_config

        cfg = await asyncio.to_thread(load_config, Path(config))
        await asyncio.to_thread(_writable_config, Path(config))
        # The best setting goes into that job's [run]: it must be tried on that job's pair
        # (a folder of its source, into its destination or a folder of it).
        mine = store_options or StoreOptions()
        if not any(_url_within(source, mine, s, cfg.store) for s in cfg.sources) or \
                not _url_within(destination, mine, cfg.destination, cfg.store):
            raise UsageError(
                f"{config} copies {', '.join(cfg.sources)} → {cfg.destination}, not "
                f"{source} → {destination}: tune that job's source and destination (or "
                "folders of them), or leave out --config to only print the best setting")
    result = await tune_pair(source_config(source, store_options),
                             destination_config(destination, store_options), sample_objects,
                             size)
    if config is not None:
        b = result.best
        values: dict[str, int | str] = {"concurrency": b.concurrency}
        if "block_size" not in result.not_tried:
            # Sizes only when tried: an untried default would replace the file's own.
            values.update(block_size=b.block_size, single_put_max=b.single_put_max)
        await asyncio.to_thread(write_run_settings, Path(config), values)
    return result


def _writable_config(path: Path) -> None:
    """The best setting is written into ``path`` after the trials: one that cannot be
    written is refused before them (opened for appending, which changes nothing)."""
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write config {path}: {e.strerror}: make it writable, or "
                         "leave out --config to only print the best setting") from None


def _url_within(a: str, a_options: StoreOptions, b: str, b_options: StoreOptions) -> bool:
    """Whether URL ``a`` names ``b`` or a folder inside it, however each is spelled
    (``az://fs/raw`` and ``abfss://fs@acct.dfs.core.windows.net/raw/`` of that account, a
    relative path and its ``file://`` URL): the same store and a path at or below ``b``'s."""
    try:
        (place_a, path_a), (place_b, path_b) = _place(a, a_options), _place(b, b_options)
    except UsageError:
        return False
    return place_a == place_b and (path_a == path_b or path_b == "" or
                                   path_a.startswith(path_b + "/"))


def _place(url: str, options: StoreOptions) -> tuple[tuple[str, ...], str]:
    """Where ``url`` points: its store (local disk; a bucket at its S3 endpoint; an Azure
    container at its account's endpoint) and the path in it, without a trailing slash."""
    import os

    u = parse_url(url)
    if u.scheme == "file":  # absolute already; symlinks resolved too
        return ("file",), os.path.realpath(u.bucket).rstrip("/")
    path = u.path.rstrip("/")
    if u.scheme == "azure":
        # az:// takes its account from the credentials, abfss:// and https:// name it: the
        # account and endpoint the store would use, as it resolves them (asks no server).
        from lakeshift.stores.azure.auth import resolve

        try:
            settings = resolve(u, options)
            account = (settings.account, settings.blob_endpoint)
        except UsageError:  # say, a URL's account that is not the connection string's
            account = (u.account or "", u.endpoint_suffix or "")
        return ("azure", *account, u.bucket), path
    if u.scheme == "s3":
        # A bucket's name is unique only at its endpoint (MinIO, another S3 service): the
        # endpoint the store would use (--s3-endpoint, else the environment's), or AWS's.
        endpoint = (options.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL") or "")
        return ("s3", endpoint.strip().rstrip("/").lower(), u.bucket), path
    return (u.scheme, u.bucket), path


tune = _blocking(tune_async)
