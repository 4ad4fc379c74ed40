"""The options several commands share are one definition (cli/options.py groups): the same
flags, default, help and environment variable wherever they appear (issue 10)."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from lakeshift.cli.app import app

COMMANDS = ("copy", "plan", "run", "sync")
#: Pacing, filters, what is kept, how a job's partitions are worked through, the stores.
SHARED = ("concurrency", "block_size", "single_put_max", "max_requests_per_second",
          "max_bandwidth", "adaptive", "include", "exclude", "overwrite", "folder_markers",
          "skip_errors", "invalid_names", "delete_source_after_verify", "empty_dirs",
          "preserve", "map_identities", "batch_count", "lease_seconds", "dask",
          "s3_endpoint", "azure_auth", "allow_http")


def _options(command: str) -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}


@pytest.mark.parametrize("name", SHARED)
def test_a_shared_option_is_the_same_in_every_command(name: str) -> None:
    # plan's --dask is another option of the same name: it lists an automatic plan on the
    # cluster (run and sync run the partitions there); so is run's --s3-endpoint: it
    # overrides the job's for one run (the others say where a store is).
    seen = {c: o[name] for c in COMMANDS if name in (o := _options(c))
            and not (name == "dask" and c == "plan")
            and not (name == "s3_endpoint" and c == "run")}
    assert len(seen) >= 2, f"{name} is not shared"
    shapes = {c: (tuple(p.opts), tuple(p.secondary_opts), p.default, p.help, p.envvar)
              for c, p in seen.items()}
    first = next(iter(shapes.values()))
    assert all(s == first for s in shapes.values()), shapes
