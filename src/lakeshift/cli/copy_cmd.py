"""``lakeshift copy``: one-shot copy of everything a source URL names."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from lakeshift.api import destination_config, source_config
from lakeshift.cli.options import (
    NO_STORE_OPTIONS,
    AdaptiveOpt,
    BlockSizeOpt,
    ConcurrencyOpt,
    DeleteSourceOpt,
    ExcludeOpt,
    FolderMarkersOpt,
    IncludeOpt,
    InvalidNamesOpt,
    JsonOpt,
    MaxBandwidthOpt,
    MaxRpsOpt,
    OverwriteOpt,
    ProgressOpt,
    SinglePutMaxOpt,
    SkipErrorsOpt,
    parse_skip_errors,
    with_store_options,
)
from lakeshift.cli.progress import make_progress
from lakeshift.cli.sizes import parse_size
from lakeshift.cli.summary import print_summary
from lakeshift.engine.events import Subscriber
from lakeshift.engine.pipeline import CopyOptions, copy_async
from lakeshift.errors import UsageError
from lakeshift.plan.compare import Overwrite
from lakeshift.stores.base import StoreOptions

HELP = """Copy objects from SRC into DST (S3, Azure Blob / ADLS Gen2, local disk).

Objects already identical at the destination (same size and MD5, or copied from the same
source version) are skipped, so running the same copy again only copies what changed.
"""
EPILOG = """Examples:

  lakeshift copy s3://my-bucket/raw/ abfss://lake@myaccount.dfs.core.windows.net/raw/

  lakeshift copy ./exports az://landing/exports --include '*.parquet' --dry-run

  AWS_ENDPOINT_URL=http://127.0.0.1:5000 AZURE_STORAGE_CONNECTION_STRING='...'
  lakeshift copy s3://demo/lake/ az://lake/ --json
"""

@with_store_options
def copy(
    src: Annotated[str, typer.Argument(help="Source: s3://bucket/prefix, az://container/path, "
                                            "https://ACCOUNT.blob.core.windows.net/c/path, "
                                            "or a local path.", show_default=False)],
    dst: Annotated[str, typer.Argument(help="Destination: abfss://FS@ACCOUNT.dfs.core.windows.net"
                                            "/path, az://container/path, s3://…, or a local "
                                            "directory.", show_default=False)],
    concurrency: ConcurrencyOpt = 32,
    block_size: BlockSizeOpt = "8MiB",
    single_put_max: SinglePutMaxOpt = "64MiB",
    overwrite: OverwriteOpt = "if-different",
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List and compare, copy nothing."
                                          )] = False,
    folder_markers: FolderMarkersOpt = "skip",
    skip_errors: SkipErrorsOpt = "",
    invalid_names: InvalidNamesOpt = "fail",
    max_requests_per_second: MaxRpsOpt = None,
    max_bandwidth: MaxBandwidthOpt = None,
    adaptive: AdaptiveOpt = True,
    delete_source_after_verify: DeleteSourceOpt = False,
    as_json: JsonOpt = False,
    progress: ProgressOpt = "auto",
    store: StoreOptions = NO_STORE_OPTIONS,
) -> int:
    if overwrite not in ("if-different", "always", "never"):
        raise UsageError(f"--overwrite {overwrite!r}: use if-different, always or never")
    if progress not in ("auto", "bar", "plain", "none"):
        raise UsageError(f"--progress {progress!r}: use auto, bar, plain or none")
    ow: Overwrite = overwrite  # type: ignore[assignment]
    opts = CopyOptions(concurrency=concurrency, block_size=parse_size(block_size, "--block-size"),
                       single_put_max=parse_size(single_put_max, "--single-put-max"),
                       overwrite=ow, include=tuple(include or ()), exclude=tuple(exclude or ()),
                       dry_run=dry_run, folder_markers=folder_markers,
                       skip_errors=parse_skip_errors(skip_errors), invalid_names=invalid_names,
                       adaptive=adaptive, max_requests_per_second=max_requests_per_second,
                       max_bandwidth=parse_size(max_bandwidth, "--max-bandwidth")
                       if max_bandwidth else None, delete_source=delete_source_after_verify)
    opts.validate()
    so = store
    src_cfg, dst_cfg = source_config(src, so), destination_config(dst, so)
    display = make_progress("none" if as_json and progress == "auto" else progress)
    subs: list[Subscriber] = [display] if display is not None else []
    try:
        result = asyncio.run(copy_async(src_cfg, dst_cfg, opts, subs))
    finally:
        if display is not None:
            display.close()
    print_summary(result, src_cfg.url.display(), dst_cfg.url.display(), as_json)
    return result.exit_code
