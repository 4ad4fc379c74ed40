"""``lakeshift copy``: one-shot copy of everything a source URL names."""

from __future__ import annotations

from typing import Annotated

import typer

from lakeshift import api
from lakeshift.cli.options import (
    NO_STORE_OPTIONS,
    AdaptiveOpt,
    BlockSizeOpt,
    ConcurrencyOpt,
    CopyModeOpt,
    DeleteSourceOpt,
    EmptyDirsOpt,
    ExcludeOpt,
    FolderMarkersOpt,
    IncludeOpt,
    InvalidNamesOpt,
    JsonOpt,
    MapIdentitiesOpt,
    MaxBandwidthOpt,
    MaxRpsOpt,
    OverwriteOpt,
    PreserveOpt,
    ProgressOpt,
    SinglePutMaxOpt,
    SkipErrorsOpt,
    with_store_options,
)
from lakeshift.cli.progress import check_progress_mode, progress_subscribers
from lakeshift.cli.summary import print_summary

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
    empty_dirs: EmptyDirsOpt = None,
    preserve: PreserveOpt = "",
    map_identities: MapIdentitiesOpt = None,
    copy_mode: CopyModeOpt = "auto",
    as_json: JsonOpt = False,
    progress: ProgressOpt = "auto",
    store: api.StoreOptions = NO_STORE_OPTIONS,
) -> int:
    check_progress_mode(progress)
    with progress_subscribers(progress, as_json) as subs:
        result = api.copy(src, dst, concurrency=concurrency, block_size=block_size,
                          single_put_max=single_put_max, overwrite=overwrite,
                          include=include or (), exclude=exclude or (), dry_run=dry_run,
                          folder_markers=folder_markers, skip_errors=skip_errors,
                          invalid_names=invalid_names,
                          max_requests_per_second=max_requests_per_second,
                          max_bandwidth=max_bandwidth, adaptive=adaptive,
                          delete_source_after_verify=delete_source_after_verify,
                          empty_dirs=empty_dirs, preserve=preserve,
                          map_identities=map_identities, copy_mode=copy_mode,
                          store_options=store, subscribers=subs)
    print_summary(result, result.source, result.destination, as_json)
    return result.exit_code
