"""The one way to build :class:`CopyOptions` from what a user gives (the CLI's flags, the
API's keyword arguments, a job's saved options): sizes and lists in their user spellings,
then :meth:`CopyOptions.validate`.  ``copy`` and ``plan`` build theirs here; ``run`` rebuilds
a job's options through ``jobrunner.job_copy_options``, which ends in the same validator."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lakeshift.engine.pipeline import CopyOptions
from lakeshift.engine.preserve import preserve_set, read_identity_map
from lakeshift.errors import UsageError
from lakeshift.sizes import size_arg

MiB = 1024 * 1024


def skip_error_kinds(value: str | Iterable[str]) -> frozenset[str]:
    """``"missing,forbidden"`` (the flag's spelling) or an iterable of kinds."""
    parts = value.split(",") if isinstance(value, str) else value
    return frozenset(p.strip() for p in parts if p.strip())


def identity_pairs(value: str | Path | Iterable[tuple[str, str]] | None
                   ) -> tuple[tuple[str, str], ...]:
    """--map-identities: a file's path (read now: a job keeps the pairs, not the path), or
    the pairs themselves (a job's saved options, a program's own)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str | Path):
        return read_identity_map(value)
    return tuple((str(a), str(b)) for a, b in value)


def copy_options(*, concurrency: int = 32, block_size: int | str = 8 * MiB,
                 single_put_max: int | str = 64 * MiB, overwrite: str = "if-different",
                 include: Iterable[str] = (), exclude: Iterable[str] = (),
                 dry_run: bool = False, folder_markers: str = "skip",
                 skip_errors: str | Iterable[str] = (), invalid_names: str = "fail",
                 adaptive: bool = True, max_requests_per_second: float | None = None,
                 max_bandwidth: int | str | None = None,
                 delete_source: bool = False, empty_dirs: bool | None = None,
                 preserve: str | Iterable[str] = (),
                 map_identities: str | Path | Iterable[tuple[str, str]] | None = None,
                 copy_mode: str = "stream") -> CopyOptions:
    """Validated copy options; a bad value raises a UsageError naming its flag."""
    if overwrite not in ("if-different", "always", "never"):
        raise UsageError(f"--overwrite {overwrite!r}: use if-different, always or never")
    opts = CopyOptions(
        concurrency=concurrency, block_size=size_arg(block_size, "--block-size"),
        single_put_max=size_arg(single_put_max, "--single-put-max"),
        overwrite=overwrite,  # type: ignore[arg-type]  # checked above
        include=tuple(include), exclude=tuple(exclude), dry_run=dry_run,
        folder_markers=folder_markers, skip_errors=skip_error_kinds(skip_errors),
        invalid_names=invalid_names, adaptive=adaptive,
        max_requests_per_second=max_requests_per_second,
        max_bandwidth=size_arg(max_bandwidth, "--max-bandwidth")
        if max_bandwidth not in (None, "") else None,
        delete_source=delete_source, empty_dirs=empty_dirs, preserve=preserve_set(preserve),
        identity_map=identity_pairs(map_identities), copy_mode=copy_mode)
    opts.validate()
    return opts
