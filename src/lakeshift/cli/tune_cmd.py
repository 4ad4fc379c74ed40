"""``lakeshift tune SRC DST``: a short trial of a few settings on a sample of the source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lakeshift import api
from lakeshift.cli.options import (
    NO_STORE_OPTIONS,
    ExcludeOpt,
    IncludeOpt,
    JsonOpt,
    given,
    with_store_options,
)
from lakeshift.errors import UsageError
from lakeshift.plan.jobconfig import size_text
from lakeshift.sizes import human_bytes

HELP = """Try a few settings of --concurrency, --block-size and --single-put-max on a sample
of SRC (its first objects), copied into a scratch folder under DST that is deleted after
each trial; print a table and, with --config, write the fastest into its \\[run] table.
"""
EPILOG = """Example:

  lakeshift tune s3://lake/raw/ abfss://lake@acct.dfs.core.windows.net/raw/ --config lakeshift.toml
"""


@with_store_options
def tune(
    ctx: typer.Context,
    src: Annotated[str, typer.Argument(help="Source URL (as for copy).", show_default=False)],
    dst: Annotated[str, typer.Argument(help="Destination URL (as for copy); the trials write "
                                            "under DST/.lakeshift-tune-*/ and delete it.",
                                       show_default=False)],
    config: Annotated[str | None, typer.Option(
        "--config", help="lakeshift.toml whose \\[run] table gets the best setting "
                         "(`lakeshift init` writes one).", metavar="FILE")] = None,
    sample_objects: Annotated[int, typer.Option(
        "--sample-objects", help="At most this many objects in the sample.", metavar="N")] = 200,
    sample_size: Annotated[str, typer.Option(
        "--sample-size", help="At most this many bytes in the sample.", metavar="SIZE")] = "512MiB",
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    as_json: JsonOpt = False,
    store: api.StoreOptions = NO_STORE_OPTIONS,
) -> int:
    if config is not None:
        _refuse_defaults_the_config_replaces(ctx, config, store)
    result = api.tune(src, dst, config=config, sample_objects=sample_objects,
                      sample_size=sample_size, store_options=store, include=include or (),
                      exclude=exclude or ())
    rows = [{"concurrency": t.setting.concurrency, "block_size": t.setting.block_size,
             "single_put_max": t.setting.single_put_max, "seconds": round(t.seconds, 3),
             "bytes_per_s": round(t.bytes_per_s, 1),
             "objects_per_s": round(t.objects_per_s, 1), "failed": t.failed,
             "compared": n not in result.not_compared}
            for n, t in enumerate(result.trials)]
    best = result.best
    if as_json:
        import json

        print(json.dumps({"sample_objects": result.sample_objects,
                          "sample_bytes": result.sample_bytes, "trials": rows,
                          "best": {"concurrency": best.concurrency,
                                   "block_size": best.block_size,
                                   "single_put_max": best.single_put_max},
                          "not_tried": result.not_tried, "left_out": result.left_out,
                          "not_compared": result.not_compared,
                          "config": config}, indent=2))
        return 0
    print(f"Sample: {result.sample_objects} objects, {human_bytes(result.sample_bytes)}")
    print(f"  {'concurrency':>11}  {'block size':>10}  {'single put':>10}  {'seconds':>8}  "
          f"{'MiB/s':>8}  {'objects/s':>9}  failed")
    for n, t in enumerate(result.trials):
        compared = n not in result.not_compared
        mark = "  <- best" if t.setting == best and compared else (
            "" if compared else "  (not compared)")
        print(f"  {t.setting.concurrency:>11}  {human_bytes(t.setting.block_size):>10}  "
              f"{human_bytes(t.setting.single_put_max):>10}  {t.seconds:>8.2f}  "
              f"{t.bytes_per_s / 1048576:>8.1f}  {t.objects_per_s:>9.1f}  {t.failed:>6}{mark}")
    not_tried = result.not_tried
    if "block_size" in not_tried and "single_put_max" in not_tried:
        print("  (block size and single-put limit not tried: no object in the sample is "
              "larger than a block, so neither can matter for it)")
    else:
        for axis, why in not_tried.items():
            flag = "--" + axis.replace("_", "-")
            print(f"  ({flag} not tried: {why}; the best keeps "
                  f"{size_text(getattr(best, axis))})")
    if result.left_out:
        count = sum(len(keys) for keys in result.left_out.values())
        why = ", ".join(f"{len(keys)} {kind} ({keys[0]}{', …' if len(keys) > 1 else ''})"
                        for kind, keys in result.left_out.items())
        print(f"  ({count} of {result.sample_objects} objects left out of the timing: they "
              f"failed in every trial: {why}; lakeshift copy fails them too unless "
              f"--skip-errors {','.join(result.left_out)})")
    if result.not_compared:
        print(f"  ({len(result.not_compared)} of {len(result.trials)} trials not compared: "
              "they failed other objects than the rest (flaky), so they timed other work; "
              "the best is the fastest of the rest)")
    if max(t.seconds for t in result.trials) < 1.0:
        print("  (every trial took under a second: the differences may be noise; a larger "
              "--sample-objects / --sample-size gives a truer answer)")
    where = f"; written to {config} [run]" if config else " (--config FILE writes it)"
    print(f"Best: --concurrency {best.concurrency} --block-size {size_text(best.block_size)} "
          f"--single-put-max {size_text(best.single_put_max)}{where}")
    return 0


def _refuse_defaults_the_config_replaces(ctx: typer.Context, config: str,
                                         store: api.StoreOptions) -> None:
    """The API lets each store option given (one that is not its default) win over the
    config's; a flag given at its default (``--azure-auth auto``, or LAKESHIFT_AZURE_AUTH)
    cannot be told from none there, so the file's value would silently be used instead:
    refused when the file says otherwise."""
    from dataclasses import fields

    from lakeshift.plan.jobconfig import load

    default, from_file = api.StoreOptions(), load(Path(config)).store
    for f in fields(api.StoreOptions):
        value = getattr(store, f.name)
        if given(ctx, f.name, value) is not None and value == getattr(default, f.name) \
                and getattr(from_file, f.name) != value:
            flag = "--" + f.name.replace("_", "-")
            raise UsageError(
                f"{flag} {value!r} is the default, and {config} sets {f.name} = "
                f"{getattr(from_file, f.name)!r}, which tune --config uses: change the file, "
                f"or leave out {flag}")
