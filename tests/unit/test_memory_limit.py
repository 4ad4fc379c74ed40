"""check_memory counts the memory this process may use: in a container with a cgroup
memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) that limit, when it is below
the machine's memory; the refusal says which one it used.  The reader runs on fake cgroup
trees (tmp files)."""
from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.engine import copy_options as co
from lakeshift.errors import UsageError

GiB = 1024 ** 3


def tree(root: Path, files: dict[str, str], self_cgroup: str | None) -> tuple[str, str]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    proc = root / "proc-self-cgroup"
    if self_cgroup is not None:
        proc.write_text(self_cgroup)
    return str(root / "cg"), str(proc)


@pytest.mark.parametrize(("files", "self_cgroup", "limit"), [
    # cgroup v2, a container's own cgroup at the mount's root (cgroup namespace).
    ({"cg/memory.max": str(2 * GiB)}, "0::/\n", 2 * GiB),
    ({"cg/memory.max": "max"}, "0::/\n", 0),
    # v2 without a namespace: the process's cgroup, whose ancestor has the limit.
    ({"cg/kubepods/memory.max": str(GiB), "cg/kubepods/pod1/c1/memory.max": "max"},
     "0::/kubepods/pod1/c1\n", GiB),
    ({"cg/kubepods/memory.max": str(4 * GiB), "cg/kubepods/pod1/memory.max": str(3 * GiB)},
     "0::/kubepods/pod1\n", 3 * GiB),
    # cgroup v1: the container sees its own memory cgroup at the mount's root, while
    # /proc/self/cgroup names its path on the host (not there).
    ({"cg/memory/memory.limit_in_bytes": str(3 * GiB)},
     "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n", 3 * GiB),
    ({"cg/memory/memory.limit_in_bytes": "9223372036854771712"}, "4:memory:/docker/abc\n", 0),
    ({"cg/memory/a/b/memory.limit_in_bytes": str(GiB),
      "cg/memory/memory.limit_in_bytes": "9223372036854771712"}, "4:memory:/a/b\n", GiB),
    # Nothing readable, or a /proc/self/cgroup that is not there: the roots alone.
    ({}, "0::/\n", 0),
    ({"cg/memory.max": str(GiB)}, None, GiB),
    ({"cg/memory.max": "garbage"}, "0::/../../etc\n", 0),
])
def test_the_cgroup_limit_is_read_where_the_kernel_keeps_it(
        tmp_path: Path, files: dict[str, str], self_cgroup: str | None, limit: int) -> None:
    root, proc = tree(tmp_path, files, self_cgroup)
    assert co.cgroup_memory_limit(root, proc) == limit


def _fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, limit: str, machine: int) -> None:
    root, proc = tree(tmp_path, {"cg/memory.max": limit}, "0::/\n")
    monkeypatch.setattr(co, "CGROUP_ROOT", root)
    monkeypatch.setattr(co, "SELF_CGROUP", proc)
    monkeypatch.setattr(co, "physical_memory", lambda: machine)


def test_a_containers_limit_below_the_machines_memory_decides_and_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, tmp_path, str(2 * GiB), 64 * GiB)
    co.copy_options(concurrency=8, block_size="128MiB")  # 1 GiB: half of 2 GiB
    with pytest.raises(UsageError) as e:
        co.copy_options(concurrency=12, block_size="128MiB")  # 1.5 GiB
    assert "more than half of this container's 2.0 GiB limit" in str(e.value)
    assert "their product at most 1.0 GiB" in str(e.value)
    assert "machine" not in str(e.value)


def test_a_limit_above_the_machines_memory_leaves_the_machines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, tmp_path, str(64 * GiB), 2 * GiB)
    with pytest.raises(UsageError, match=r"more than half of this machine's 2\.0 GiB:"):
        co.copy_options(concurrency=12, block_size="128MiB")
    _fake(monkeypatch, tmp_path, "max", 2 * GiB)
    assert co.memory_for_data() == (2 * GiB, "this machine's 2.0 GiB")


def test_concurrency_help_names_the_container_limit() -> None:
    """--concurrency's help says what check_memory counts (not the machine's memory alone)."""
    from typing import get_args

    from lakeshift.cli.options import ConcurrencyOpt

    [option] = [a for a in get_args(ConcurrencyOpt)[1:] if getattr(a, "help", None)]
    assert "container's memory limit (cgroup)" in option.help
