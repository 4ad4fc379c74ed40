"""``lakeshift copy``: one-shot copy of everything a source URL names."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from lakeshift.api import destination_config, source_config
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

_S3 = "S3 options"
_AZ = "Azure options"


def store_options(s3_endpoint: str | None, s3_region: str | None, aws_profile: str | None,
                  aws_imds: bool, s3_anonymous: bool, azure_auth: str,
                  allow_http: bool) -> StoreOptions:
    return StoreOptions(s3_endpoint=s3_endpoint, s3_region=s3_region, aws_profile=aws_profile,
                        aws_imds=aws_imds, s3_anonymous=s3_anonymous, azure_auth=azure_auth,
                        allow_http=allow_http)


def copy(
    src: Annotated[str, typer.Argument(help="Source: s3://bucket/prefix, az://container/path, "
                                            "https://ACCOUNT.blob.core.windows.net/c/path, "
                                            "or a local path.", show_default=False)],
    dst: Annotated[str, typer.Argument(help="Destination: abfss://FS@ACCOUNT.dfs.core.windows.net"
                                            "/path, az://container/path, s3://…, or a local "
                                            "directory.", show_default=False)],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", envvar="LAKESHIFT_CONCURRENCY",
                                             help="Objects (and blocks) in flight.")] = 32,
    block_size: Annotated[str, typer.Option(
        "--block-size", envvar="LAKESHIFT_BLOCK_SIZE",
        help="Block size for large objects; objects up to this size go in one request. Memory "
             "for data stays under concurrency × block size.")] = "8MiB",
    overwrite: Annotated[str, typer.Option(
        "--overwrite", envvar="LAKESHIFT_OVERWRITE",
        help="if-different: skip objects proven identical; always: copy everything; "
             "never: skip any name that exists.")] = "if-different",
    include: Annotated[list[str] | None, typer.Option(
        "--include", help="Copy only names matching this glob (repeatable; * within a "
                          "folder, ** across folders; no / = file name).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Skip names matching this glob (repeatable).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List and compare, copy nothing."
                                          )] = False,
    folder_markers: Annotated[str, typer.Option(
        "--folder-markers", help="S3 folder-marker keys (dir/, size 0): skip, or keep as "
                                 "hdi_isfolder marker blobs.")] = "skip",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    progress: Annotated[str, typer.Option(
        "--progress", help="auto (bar on a terminal, plain lines otherwise), bar, plain, none."
    )] = "auto",
    s3_endpoint: Annotated[str | None, typer.Option(
        "--s3-endpoint", rich_help_panel=_S3,
        help="S3-compatible endpoint (MinIO, Ceph); default AWS_ENDPOINT_URL or AWS.")] = None,
    s3_region: Annotated[str | None, typer.Option("--s3-region", rich_help_panel=_S3,
                                                  help="Default AWS_REGION or us-east-1.")
                         ] = None,
    aws_profile: Annotated[str | None, typer.Option("--aws-profile", rich_help_panel=_S3,
                                                    help="Profile in ~/.aws (or AWS_PROFILE).")
                           ] = None,
    aws_imds: Annotated[bool, typer.Option("--aws-imds", rich_help_panel=_S3,
                                           help="Allow the EC2 instance role (metadata service)."
                                           )] = False,
    s3_anonymous: Annotated[bool, typer.Option("--s3-anonymous", rich_help_panel=_S3,
                                               help="Unsigned requests (public buckets).")
                            ] = False,
    azure_auth: Annotated[str, typer.Option(
        "--azure-auth", envvar="LAKESHIFT_AZURE_AUTH", rich_help_panel=_AZ,
        help="auto, connection-string, key, sas, service-principal, cli, managed-identity."
    )] = "auto",
    allow_http: Annotated[bool, typer.Option(
        "--allow-http", help="Allow plain HTTP to a host that is not loopback.")] = False,
) -> int:
    if overwrite not in ("if-different", "always", "never"):
        raise UsageError(f"--overwrite {overwrite!r}: use if-different, always or never")
    if progress not in ("auto", "bar", "plain", "none"):
        raise UsageError(f"--progress {progress!r}: use auto, bar, plain or none")
    ow: Overwrite = overwrite  # type: ignore[assignment]
    opts = CopyOptions(concurrency=concurrency, block_size=parse_size(block_size, "--block-size"),
                       overwrite=ow, include=tuple(include or ()), exclude=tuple(exclude or ()),
                       dry_run=dry_run, folder_markers=folder_markers)
    opts.validate()
    so = store_options(s3_endpoint, s3_region, aws_profile, aws_imds, s3_anonymous, azure_auth,
                       allow_http)
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
