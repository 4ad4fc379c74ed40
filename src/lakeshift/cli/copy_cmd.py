"""``lakeshift copy``: one-shot copy of everything a source URL names."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lakeshift import api
from lakeshift.cli.options import (
    FILTERS,
    KEEPING,
    NO_OPTIONS,
    NO_STORE_OPTIONS,
    PACING,
    CopyModeOpt,
    JsonOpt,
    ProgressOpt,
    ProofLogOpt,
    with_options,
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
@with_options(pacing=PACING, filters=FILTERS, keeping=KEEPING)
def copy(
    src: Annotated[str, typer.Argument(help="Source: s3://bucket/prefix, az://container/path, "
                                            "https://ACCOUNT.blob.core.windows.net/c/path, "
                                            "or a local path.", show_default=False)],
    dst: Annotated[str, typer.Argument(help="Destination: abfss://FS@ACCOUNT.dfs.core.windows.net"
                                            "/path, az://container/path, s3://…, or a local "
                                            "directory.", show_default=False)],
    pacing: dict[str, Any] = NO_OPTIONS,
    filters: dict[str, Any] = NO_OPTIONS,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List and compare, copy nothing."
                                          )] = False,
    keeping: dict[str, Any] = NO_OPTIONS,
    copy_mode: CopyModeOpt = "auto",
    proof_log: ProofLogOpt = None,
    as_json: JsonOpt = False,
    progress: ProgressOpt = "auto",
    store: api.StoreOptions = NO_STORE_OPTIONS,
) -> int:
    check_progress_mode(progress)
    with progress_subscribers(progress, as_json) as subs:
        result = api.copy(src, dst, dry_run=dry_run, copy_mode=copy_mode, proof_log=proof_log,
                          store_options=store, subscribers=subs, **pacing, **filters,
                          **keeping)
    print_summary(result, result.source, result.destination, as_json,
                  None if proof_log is None or dry_run else proof_log)
    return result.exit_code
