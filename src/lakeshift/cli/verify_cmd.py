"""`lakeshift verify`: every object present, same size, same checksum; a report of the
differences.  Calls ``lakeshift.api.verify``."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lakeshift import api
from lakeshift.api import DEFAULT_DB, StoreOptions
from lakeshift.cli.options import (
    NO_STORE_OPTIONS,
    AdaptiveOpt,
    ExcludeOpt,
    IncludeOpt,
    JsonOpt,
    MaxBandwidthOpt,
    MaxRpsOpt,
    whole_number,
    with_store_options,
)
from lakeshift.cli.sizes import human_bytes
from lakeshift.cli.text import count
from lakeshift.engine.events import PROOF_FOLDER
from lakeshift.errors import UsageError

#: What each proof of the summary's ``proofs`` means, for the text output.
PROOFS = {"source-md5": "the source's own MD5 equals the destination's",
          "read-md5": "its bytes were read and hashed: a source without an MD5 (WebHDFS, "
                      "local, multipart), or every object with --deep",
          "multipart-etag": "the source's multipart ETag rebuilt from the destination's bytes",
          PROOF_FOLDER: "a folder of the source there as a folder; no bytes to prove"}



def proof_text(proof: str) -> str:
    """What a proof of the summary means, in words (``source-crc32``: the source's own
    checksum of that algorithm, recomputed from the destination's bytes)."""
    if proof in PROOFS:
        return PROOFS[proof]
    if proof.startswith("source-"):
        algorithm = proof.removeprefix("source-").upper()
        return f"the source's own {algorithm} checksum recomputed from the destination's bytes"
    return proof


#: Differences the text output names, the first ones of the report (its CSV has them all).
SHOWN_DIFFERENCES = 10
#: How each kind of difference of the report is named in the text output.
_DIFFERENCE_LABELS = {"missing": "MISSING", "extra": "EXTRA", "size": "DIFFERS",
                      "checksum": "DIFFERS", "time": "DIFFERS"}


def difference_lines(report_csv: str, differences: int,
                     at_most: int = SHOWN_DIFFERENCES) -> list[str]:
    """The report's first ``at_most`` differences, one a line (``MISSING a.csv: not at the
    destination``, ``DIFFERS b.csv: [size] 3 != 5 bytes``), then how many more the CSV
    holds: a user sees which objects differ without opening it."""
    if differences <= 0:
        return []
    lines: list[str] = []
    try:
        with open(report_csv, newline="", encoding="utf-8", errors="replace") as fh:
            for row in csv.DictReader(fh):
                label = _DIFFERENCE_LABELS.get(row["kind"])
                if label is None:  # unverifiable or renamed: counted above, not a difference
                    continue
                kind = f"[{row['kind']}] " if label == "DIFFERS" else ""
                lines.append(f"  {label} {_cell(row['name'])}: {kind}{_cell(row['detail'])}")
                if len(lines) == at_most:
                    break
    except OSError:  # the report went away since it was written: its counts still stand
        return []
    if differences > len(lines):
        lines.append(f"  … and {differences - len(lines)} more: see {report_csv}")
    return lines


def _cell(value: str) -> str:
    """A report cell's text: the apostrophe it got so that a spreadsheet never runs it
    (csv_cells) taken off."""
    return value[1:] if value.startswith("'") else value


HELP = """Prove that DST holds exactly what SRC holds.

Every object present, same size, same checksum (source MD5 vs destination Content-MD5; S3
multipart ETags recomputed from the destination's bytes; local files hashed). --deep reads and
hashes both sides. Writes a CSV of the differences and a JSON summary (and, with
--list-verified, a CSV of every object proven equal and how); exits 1 on any difference."""
EPILOG = """Examples:

  lakeshift verify s3://lake/raw/ abfss://lake@acct.dfs.core.windows.net/raw/

  lakeshift verify --job raw --db postgresql://lakeshift@dbhost/migration --deep
"""


@with_store_options
def verify(
    ctx: typer.Context,
    urls: Annotated[list[str] | None, typer.Argument(
        help="SRC DST (or none, with --job).", show_default=False, metavar="SRC DST")] = None,
    job: Annotated[str | None, typer.Option("--job", "-j", help="Verify every partition of "
                                            "this job (source and destination from the DB).",
                                            metavar="NAME")] = None,
    db: Annotated[str, typer.Option("--db", envvar="LAKESHIFT_DB", help="Control DB (with "
                                    "--job).", metavar="URL")] = DEFAULT_DB,
    deep: Annotated[bool, typer.Option("--deep", help="Read and hash both sides.")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Report path prefix: writes PREFIX.csv and PREFIX.json (a "
                         "PREFIX ending .csv or .json: the same without it; default "
                         "lakeshift-verify-YYYYmmdd-HHMMSS in this directory).",
        metavar="PREFIX")] = None,
    concurrency: Annotated[str, typer.Option("--concurrency", "-c", metavar="N",
                                             help="Objects read at the same time.")] = "16",
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    invalid_names: Annotated[str, typer.Option(
        "--invalid-names", help="As the copy was run: encode looks renamed objects up under "
                                "their encoded names; skip reports skipped names as "
                                "unverifiable. A job's own setting is used with --job.",
        metavar="MODE")] = "fail",
    max_requests_per_second: MaxRpsOpt = None,
    max_bandwidth: MaxBandwidthOpt = None,
    adaptive: AdaptiveOpt = True,
    check_times: Annotated[bool, typer.Option(
        "--check-times", help="Also report objects whose kept original modification time "
                              "(lakeshift_src_mtime; a local file's mtime) differs.")] = False,
    list_verified: Annotated[bool, typer.Option(
        "--list-verified", help="Also write PREFIX-verified.csv: one row per object proven "
                                "equal (name, source and destination keys, size, proof, the "
                                "checksum compared on each side), written as each is proven."
    )] = False,
    empty_dirs: Annotated[bool | None, typer.Option(
        "--empty-dirs/--no-empty-dirs",
        help="As the copy was run: check the source's empty directories as folders at the "
             "destination (proof: folder; on a flat account, the hdi_isfolder marker blobs, "
             "on S3 the dir/ objects, the copy wrote). Default: as copy's, on where both "
             "sides have real directories (adl://, webhdfs://, local disk to ADLS Gen2 or "
             "local disk). A "
             "job's own setting is used with --job.", show_default=False)] = None,
    as_json: JsonOpt = False,
    store: StoreOptions = NO_STORE_OPTIONS,
) -> int:
    urls = urls or []
    if len(urls) > 2 and not job:
        raise UsageError("verify needs SRC DST (or --job NAME)")
    result = api.verify(urls[0] if urls else None, urls[1] if len(urls) > 1 else None,
                        job=job, db=db, deep=deep, report=report,
                        concurrency=whole_number(concurrency, "--concurrency"),
                        include=include or (), exclude=exclude or (),
                        invalid_names=invalid_names,
                        max_requests_per_second=max_requests_per_second,
                        max_bandwidth=max_bandwidth, adaptive=adaptive,
                        check_times=check_times, list_verified=list_verified,
                        empty_dirs=empty_dirs, store_options=store)
    if as_json:
        json.dump(result.summary, sys.stdout, indent=2)
        print()
        return result.exit_code
    r = result
    print(f"Verify {r.verified_what}{' (deep)' if r.deep else ''}: "
          f"{count(r.checked, 'object')} checked, {r.verified} verified; "
          f"{r.missing} missing, {r.extra} extra, {count(r.size, 'size mismatch')}, "
          f"{count(r.checksum, 'checksum mismatch')}, "
          + (f"{count(r.times, 'time mismatch')}, " if check_times else "")
          + f"{r.unverifiable} unverifiable; read "
          f"{human_bytes(r.bytes_read)} in {r.duration_s:.1f} s")
    for proof, n in r.proofs.items():
        print(f"  verified ({n}): {proof} ({proof_text(proof)})")
    for reason, n in r.unverifiable_reasons.items():
        print(f"  unverifiable ({n}): {reason}")
    lines = difference_lines(r.report_csv, r.differences)
    if lines:
        print("\n".join(lines))
    print(f"  report: {r.report_csv} and {r.report_json}")
    if job and (r.missing or r.size or r.checksum or r.times):
        import shlex

        from lakeshift.cli.job_cmds import again_args

        print(f"  to copy the missing and differing ones again: lakeshift sync "
              f"{again_args(job, db, ctx.get_parameter_source('db'))} --files-from "
              f"{shlex.quote(r.report_csv)}")
    if r.verified_csv is not None:
        print(f"  verified objects, one a line: {r.verified_csv}")
    return result.exit_code
