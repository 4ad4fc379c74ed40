"""The one way to build :class:`CopyOptions` from what a user gives (the CLI's flags, the
API's keyword arguments) and from what a job saved when it was planned: sizes and lists in
their user spellings, then :meth:`CopyOptions.validate`.  ``copy`` and ``plan`` call
:func:`copy_options`; ``run`` and ``sync`` call :func:`job_copy_options`, which is the same
builder fed with the job's saved options."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lakeshift.engine.pipeline import CopyOptions
from lakeshift.engine.preserve import preserve_set, read_identity_map
from lakeshift.errors import UsageError
from lakeshift.sizes import human_bytes, size_arg, size_per_second

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
def bandwidth_arg(value: int | str | float | None) -> float | None:
    """``--max-bandwidth`` in bytes per second (None: no cap): bytes as a number, or a
    rate as the flag takes it (``"200MiB/s"``, ``"100MB"``: ``sizes.size_per_second``)."""
    if value is None or value == "":
        return None
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        value = size_per_second(value, "--max-bandwidth")
    return size_arg(value, "--max-bandwidth")


def single_put_limit(value: int | str | None, block_size: int) -> int:
    """``--single-put-max`` in bytes; unset (None): 64 MiB, or the block size when that is
    larger (a limit below it could change nothing, and is refused when given)."""
    if value is None or value == "":
        return max(64 * MiB, block_size)
    return size_arg(value, "--single-put-max")


def physical_memory() -> int:
    """This machine's memory in bytes; 0 when it cannot be told."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


#: Where the cgroup file systems are mounted, and where this process's cgroups are listed
#: (tests point them at a fake tree).
CGROUP_ROOT = "/sys/fs/cgroup"
SELF_CGROUP = "/proc/self/cgroup"
#: cgroup v1 says "no limit" with a number near 2**63 (rounded down to a page).
_V1_UNLIMITED = 1 << 62


def cgroup_memory_limit(root: str | None = None, self_cgroup: str | None = None) -> int:
    """This process's cgroup memory limit in bytes; 0 when none is set or none can be read.

    cgroup v2: ``memory.max`` (``max``: none); v1: ``memory/memory.limit_in_bytes`` (a huge
    number: none).  Read in the process's own cgroup (its path from ``/proc/self/cgroup``),
    each of its ancestors (their limits hold too) and the mount's root (a container usually
    sees its own cgroup there); the smallest counts."""
    root = CGROUP_ROOT if root is None else root
    paths = {"v2": "/", "v1": "/"}
    try:
        with open(SELF_CGROUP if self_cgroup is None else self_cgroup, encoding="utf-8") as f:
            for line in f:
                hierarchy, _, rest = line.strip().partition(":")
                controllers, _, path = rest.partition(":")
                if hierarchy == "0" and not controllers:
                    paths["v2"] = path or "/"
                elif "memory" in controllers.split(","):
                    paths["v1"] = path or "/"
    except OSError:
        pass
    limits = []
    for version, base, name in (("v2", root, "memory.max"),
                                ("v1", os.path.join(root, "memory"), "memory.limit_in_bytes")):
        parts = [p for p in paths[version].split("/") if p and p not in (".", "..")]
        for depth in range(len(parts), -1, -1):
            try:
                with open(os.path.join(base, *parts[:depth], name), encoding="ascii") as f:
                    text = f.read().strip()
            except (OSError, UnicodeDecodeError):
                continue
            if text.isdigit() and 0 < int(text) < _V1_UNLIMITED:
                limits.append(int(text))
    return min(limits, default=0)


def memory_for_data() -> tuple[int, str]:
    """The memory the copy's buffers must fit in, and whose it is (for a message): this
    container's (cgroup) limit when it is below this machine's memory, else this machine's
    memory; 0 when neither can be told."""
    machine, limit = physical_memory(), cgroup_memory_limit()
    if limit and (machine <= 0 or limit < machine):
        return limit, f"this container's {human_bytes(limit)} limit"
    return machine, f"this machine's {human_bytes(machine)}"


def check_memory(opts: CopyOptions, processes: int = 1) -> None:
    """Object data stays under concurrency × block size in each copying process (the
    SlotPool): a UsageError when ``processes`` of them here (the copy itself, or a
    ``--dask local:N`` cluster's workers) could take more than half of the memory they may
    use: this machine's, or this container's limit when lower (``memory_for_data``).  A
    remote Dask cluster's workers (``processes`` 0) are not this machine's."""
    memory, whose = memory_for_data()
    need = processes * opts.concurrency * opts.block_size
    if memory <= 0 or need <= memory // 2:
        return
    from lakeshift.plan.jobconfig import size_text

    workers = f" × {processes} local Dask workers" if processes > 1 else ""
    raise UsageError(
        f"--concurrency {opts.concurrency} × --block-size {size_text(opts.block_size)}"
        f"{workers} needs {human_bytes(need)} of memory for data, more than half of "
        f"{whose}: lower --concurrency or --block-size (their product at most "
        f"{human_bytes(memory // 2 // max(processes, 1))})")


def copy_options(*, concurrency: int = 32, block_size: int | str = 8 * MiB,
                 single_put_max: int | str | None = None, overwrite: str = "if-different",
                 include: Iterable[str] = (), exclude: Iterable[str] = (),
                 dry_run: bool = False, folder_markers: str = "skip",
                 skip_errors: str | Iterable[str] = (), invalid_names: str = "fail",
                 adaptive: bool = True, max_requests_per_second: float | None = None,
                 max_bandwidth: int | str | float | None = None,
                 delete_source: bool = False, empty_dirs: bool | None = None,
                 preserve: str | Iterable[str] = (),
                 map_identities: str | Path | Iterable[tuple[str, str]] | None = None,
                 copy_mode: str = "stream", processes_here: int = 1) -> CopyOptions:
    """Validated copy options; a bad value raises a UsageError naming its flag.
    ``single_put_max`` None: see ``single_put_limit``.  ``processes_here``: how many
    processes of this machine copy with them (``check_memory``): 1, or a ``--dask local:N``
    cluster's N, or 0 for a remote Dask cluster (its workers' memory is not this one's)."""
    if overwrite not in ("if-different", "always", "never"):
        raise UsageError(f"--overwrite {overwrite!r}: use if-different, always or never")
    block = size_arg(block_size, "--block-size")
    opts = CopyOptions(
        concurrency=concurrency, block_size=block,
        single_put_max=single_put_limit(single_put_max, block),
        overwrite=overwrite,  # type: ignore[arg-type]  # checked above
        include=tuple(include), exclude=tuple(exclude), dry_run=dry_run,
        folder_markers=folder_markers, skip_errors=skip_error_kinds(skip_errors),
        invalid_names=invalid_names, adaptive=adaptive,
        max_requests_per_second=max_requests_per_second,
        max_bandwidth=bandwidth_arg(max_bandwidth), delete_source=delete_source,
        empty_dirs=empty_dirs, preserve=preserve_set(preserve),
        identity_map=identity_pairs(map_identities), copy_mode=copy_mode)
    opts.validate()
    check_memory(opts, processes_here)
    return opts


def job_copy_options(saved: Mapping[str, Any], *, concurrency: int = 32,
                     block_size: int | str = 8 * MiB, single_put_max: int | str | None = None,
                     adaptive: bool = True, max_requests_per_second: float | None = None,
                     max_bandwidth: int | str | float | None = None,
                     copy_mode: str | None = None, processes_here: int = 1) -> CopyOptions:
    """A job's copy options: what it saved when it was planned (``saved``: its options —
    filters, overwrite, skips, names, move, copy mode) with this run's concurrency, sizes
    and pacing; ``copy_mode`` (``run --copy-mode``) overrides the saved one for this run."""
    return copy_options(
        concurrency=concurrency, block_size=block_size, single_put_max=single_put_max,
        adaptive=adaptive, max_requests_per_second=max_requests_per_second,
        max_bandwidth=max_bandwidth, overwrite=str(saved.get("overwrite", "if-different")),
        include=saved.get("include", ()), exclude=saved.get("exclude", ()),
        folder_markers=str(saved.get("folder_markers", "skip")),
        skip_errors=saved.get("skip_errors", ()),
        invalid_names=str(saved.get("invalid_names", "fail")),
        delete_source=bool(saved.get("delete_source", False)),
        empty_dirs=saved.get("empty_dirs"), preserve=saved.get("preserve", ()),
        map_identities=[(str(a), str(b)) for a, b in saved.get("identity_map", ())],
        copy_mode=copy_mode or str(saved.get("copy_mode", "stream")),
        processes_here=processes_here)
