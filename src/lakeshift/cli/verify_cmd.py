"""`lakeshift verify`: every object present, same size, same checksum; a report of the
differences."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from lakeshift.api import destination_config, source_config
from lakeshift.cli.options import (
    NO_STORE_OPTIONS,
    ExcludeOpt,
    IncludeOpt,
    JsonOpt,
    with_store_options,
)
from lakeshift.cli.sizes import human_bytes
from lakeshift.control import DEFAULT_DB
from lakeshift.engine.verify import Pair, Report, VerifyOptions, verify_async, write_summary
from lakeshift.errors import UsageError
from lakeshift.plan.source import SourceSpec
from lakeshift.stores.base import StoreConfig, StoreOptions
from lakeshift.urls import parse_url

HELP = """Prove that DST holds exactly what SRC holds.

Every object present, same size, same checksum (source MD5 vs destination Content-MD5; S3
multipart ETags recomputed from the destination's bytes; local files hashed). --deep reads and
hashes both sides. Writes a CSV of the differences and a JSON summary; exits 1 on any
difference."""
EPILOG = """Examples:

  lakeshift verify s3://lake/raw/ abfss://lake@acct.dfs.core.windows.net/raw/

  lakeshift verify --job raw --db postgresql://lakeshift@dbhost/migration --deep
"""


@with_store_options
def verify(
    urls: Annotated[list[str] | None, typer.Argument(
        help="SRC DST (or none, with --job).", show_default=False)] = None,
    job: Annotated[str | None, typer.Option("--job", "-j", help="Verify every partition of "
                                            "this job (source and destination from the DB).")
                   ] = None,
    db: Annotated[str, typer.Option("--db", envvar="LAKESHIFT_DB", help="Control DB (with "
                                    "--job).")] = DEFAULT_DB,
    deep: Annotated[bool, typer.Option("--deep", help="Read and hash both sides.")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Report path prefix: writes PREFIX.csv and PREFIX.json "
                         "(default lakeshift-verify-YYYYmmdd-HHMMSS in this directory).")
                      ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c",
                                             help="Objects read at the same time.")] = 16,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    invalid_names: Annotated[str, typer.Option(
        "--invalid-names", help="As the copy was run: encode looks renamed objects up under "
                                "their encoded names; skip reports skipped names as "
                                "unverifiable. A job's own setting is used with --job.")
    ] = "fail",
    as_json: JsonOpt = False,
    store: StoreOptions = NO_STORE_OPTIONS,
) -> int:
    so = store
    urls = urls or []
    if job:
        if urls:
            raise UsageError("give SRC DST, or --job, not both")
        pairs, label, invalid_names = _job_pairs(db, job, so)
    elif len(urls) == 2:
        pairs = [(source_config(urls[0], so), destination_config(urls[1], so), None, None)]
        label = f"{urls[0]} → {urls[1]}"
    else:
        raise UsageError("verify needs SRC DST (or --job NAME)")
    if invalid_names not in ("fail", "skip", "encode"):
        raise UsageError("--invalid-names must be fail, skip or encode")
    if not 1 <= concurrency <= 256:
        raise UsageError("--concurrency must be between 1 and 256")
    prefix = report or Path(time.strftime("lakeshift-verify-%Y%m%d-%H%M%S"))
    csv_path, json_path = Path(f"{prefix}.csv"), Path(f"{prefix}.json")
    try:
        fh = open(csv_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise UsageError(f"cannot write the report {csv_path}: {e.strerror}") from None
    with fh:
        opts = VerifyOptions(deep=deep, concurrency=concurrency,
                             include=tuple(include or ()), exclude=tuple(exclude or ()),
                             invalid_names=invalid_names)
        result = asyncio.run(verify_async(pairs, opts, Report(fh)))
    summary = write_summary(json_path, result, {"verified_what": label, "deep": deep,
                                                "report_csv": str(csv_path)})
    if as_json:
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        s = summary
        print(f"Verify {label}{' (deep)' if deep else ''}: {s['checked']} objects checked, "
              f"{s['verified']} verified by checksum; {s['missing']} missing, {s['extra']} "
              f"extra, {s['size']} size mismatches, {s['checksum']} checksum mismatches, "
              f"{s['unverifiable']} unverifiable; read {human_bytes(s['bytes_read'])} in "
              f"{s['duration_s']:.1f} s")
        for reason, n in s["unverifiable_reasons"].items():
            print(f"  unverifiable ({n}): {reason}")
        print(f"  report: {csv_path} and {json_path}")
    return result.exit_code


def _job_pairs(db: str, job: str, so: StoreOptions) -> tuple[list[Pair], str, str]:
    from lakeshift.control.repository import ControlDB  # SQLAlchemy only when --job

    control = ControlDB(db)
    try:
        j = control.job(job)
        saved = StoreOptions(**j.options.get("store", {}))
        options = saved if so == StoreOptions() else so
        pairs: list[Pair] = []
        for r in control.partitions(j.id):
            spec = SourceSpec(r["prefix"], r["rel_base"], range_start=r["range_start"],
                              range_end=r["range_end"])
            pairs.append((StoreConfig(parse_url(r["source"]), options),
                          StoreConfig(parse_url(r["destination"]), options), spec, None))
        return (pairs, f"job {job} ({len(pairs)} partitions)",
                str(j.options.get("invalid_names", "fail")))
    finally:
        control.close()
