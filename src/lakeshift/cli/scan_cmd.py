"""``lakeshift scan``: what a migration would meet, before it starts.  Calls
``lakeshift.api.scan`` and renders its result as text or JSON."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from lakeshift import api
from lakeshift.cli.options import NO_STORE_OPTIONS, BlockSizeOpt, JsonOpt, with_store_options
from lakeshift.cli.sizes import human_bytes
from lakeshift.cli.text import count
from lakeshift.model import ScanResult

HELP = """Scan SRC before migrating it: objects and bytes by top-level prefix and storage
class; what cannot be copied as it is (archived objects, names the destination rejects,
colliding metadata keys, SSE-C objects, file/folder collisions, folder markers, empty
folders, local links and FIFOs the copy skips or fails); versioning and requester-pays
(S3); the cost and duration of the copy.

One listing, as copy lists; a HEAD for the first --sample objects only (--head-all: every
one). With DST, a small sample is copied to a temporary prefix of DST to time it, then
removed: a scan writes nothing else."""
EPILOG = """Examples:

  lakeshift scan s3://my-bucket/raw/

  lakeshift scan s3://my-bucket/raw/ abfss://lake@acct.dfs.core.windows.net/raw/ --json

  lakeshift scan s3://my-bucket/ --prices my-prices.toml --head-all
"""

#: How a finding reads after its count: (for one, for more than one).
_FINDING_TEXT = {
    "forbidden": ("directory the source refused to list, or file it refused to read (403 or "
                  "permissions; not counted above)", "directories the source refused to "
                  "list, or files it refused to read (403 or permissions; not counted above)"),
    "dangling-link": ("symbolic link to nothing (not counted above)",
                      "symbolic links to nothing (not counted above)"),
    "symlink-loop": ("symbolic link that loops (not followed; not counted above)",
                     "symbolic links that loop (not followed; not counted above)"),
    "not-a-file": ("FIFO, socket or device (no content; not counted above)",
                   "FIFOs, sockets or devices (no content; not counted above)"),
    "archived": ("archived, not restored",) * 2,
    "archived-restored": ("archived and restored (copy as they are)",) * 2,
    "invalid-name": ("name the destination rejects", "names the destination rejects"),
    "metadata-collision": ("metadata key that collides once encoded",
                           "metadata keys that collide once encoded"),
    "sse-c": ("SSE-C encrypted (need the customer's key)",) * 2,
    "file-folder-collision": ("file/folder collision", "file/folder collisions"),
    "folder-marker": ("folder marker", "folder markers"),
    "empty-folder": ("empty folder", "empty folders"),
    "unknown-storage-class": ("in an unknown storage class",) * 2,
}


def _finding(n: int, kind: str) -> str:
    """``1 directory the source refused to list (…)``, ``2 directories …``: a finding's
    count and its words, in the count's number."""
    one, many = _FINDING_TEXT.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else many}"


@with_store_options
def scan(
    src: Annotated[str, typer.Argument(help="Source: s3://bucket/prefix, az://container/path, "
                                            "or a local path.", show_default=False)],
    dst: Annotated[str | None, typer.Argument(
        help="Destination (optional): names are checked against it, and a calibration copy "
             "times it.", show_default=False)] = None,
    prices: Annotated[Path | None, typer.Option(
        "--prices", help="A TOML price table over the shipped one (layout: "
                         "lakeshift/data/prices.toml).", metavar="FILE")] = None,
    sample: Annotated[int, typer.Option(
        "--sample", help="HEAD this many objects (SSE-C, metadata keys, restores).",
        metavar="N")] = 100,
    head_all: Annotated[bool, typer.Option(
        "--head-all", help="HEAD every object (one request each).")] = False,
    block_size: BlockSizeOpt = "8MiB",
    calibrate: Annotated[bool, typer.Option(
        "--calibrate/--no-calibrate", help="With DST: time a small sample copy (removed "
                                           "after).")] = True,
    as_json: JsonOpt = False,
    store: api.StoreOptions = NO_STORE_OPTIONS,
) -> int:
    result = api.scan(src, dst, prices=prices, sample=sample, head_all=head_all,
                      block_size=block_size, calibrate=calibrate, store_options=store)
    if as_json:
        json.dump(scan_dict(result), sys.stdout, indent=2)
        print()
    else:
        print("\n".join(scan_lines(result)), flush=True)
    return 0


def scan_dict(result: ScanResult) -> dict[str, Any]:
    d = dataclasses.asdict(result)
    d["duration"]["hours"] = round(result.duration.seconds / 3600, 2)
    return d


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def scan_lines(r: ScanResult) -> list[str]:
    lines = [f"Scan: {r.source}" + (f" → {r.destination}" if r.destination else ""),
             f"  {count(r.objects, 'object')}, {human_bytes(r.bytes)}; "
             f"{count(r.listing_requests, 'listing request')}, "
             f"{count(r.head_requests, 'HEAD request')}"]
    lines.append("  by top-level prefix:")
    for g in sorted(r.by_prefix, key=lambda g: -g.bytes)[:20]:
        lines.append(f"    {g.name:<30} {g.objects:>10}  {human_bytes(g.bytes):>10}")
    if len(r.by_prefix) > 20:
        lines.append(f"    … {len(r.by_prefix) - 20} more in --json")
    lines.append("  by storage class:")
    for g in r.by_storage_class:
        lines.append(f"    {g.name:<30} {g.objects:>10}  {human_bytes(g.bytes):>10}")
    if r.source.startswith("s3://"):  # bucket settings only S3 has
        lines.append(f"  versioned: {_yes(r.versioned)}; "
                     f"requester-pays: {_yes(r.requester_pays)}")
    if r.findings:
        lines.append("  cannot be copied as they are:")
    else:
        lines.append("  nothing found that cannot be copied as it is")
    for f in r.findings:
        lines.append(f"    {_finding(f.objects, f.kind)} "
                     f"({human_bytes(f.bytes)}; checked by {f.checked_by})")
        for ex in f.examples:
            lines.append(f"      {ex}")
        lines.append(f"      → {f.advice}")
    c = r.cost
    total = "under 0.01" if 0 < c.total < 0.005 else f"{c.total:,.2f}"
    lines.append(f"  cost estimate: {total} {c.currency} (prices: {c.region}, "
                 f"as of {c.date}; {c.price_file})")
    for ln in c.lines:
        qty = f"{ln.quantity:,.2f}" if ln.unit == "GB" else f"{ln.quantity:,.0f}"
        lines.append(f"    {ln.what:<44} {qty:>14} {ln.unit:<10} {ln.amount:>10,.2f}")
    d = r.duration
    lines.append(f"  duration estimate: {_duration(d.seconds)} ({d.method}: {d.detail})")
    for note in r.notes:
        lines.append(f"  note: {note}")
    return lines


def _yes(value: bool | None) -> str:
    if value is None:  # the credentials may not read the bucket's settings
        return "unknown (the bucket's setting could not be read)"
    return "yes" if value else "no"
