"""The large sets against their ceiling (bench/copy_vs_rclone.py ``--sets large-bare`` and
``multipart-bare``, bench/bare_loop.py), run small: lakeshift copy and the bare loop each
copy every object byte-exact, the bare loop takes the path lakeshift takes for the set, and
the ratio is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


@pytest.mark.parametrize(("name", "size", "parts", "path"), [
    # Above one block (8 MiB), with the S3 MD5: one streamed GET into one Put Blob.
    ("large-bare", 9 * MiB, 0, "streamed put with the source's MD5: 3"),
    # Uploaded in 5 MiB parts (no MD5; boto3 keeps a CRC32): blocks, each with its CRC64.
    ("multipart-bare", 17 * MiB, 5 * MiB, "blocks with CRC64, proven by the source's "
                                          "checksum: 3"),
])
def test_large_set_against_the_bare_loop(name: str, size: int, parts: int, path: str,
                                         tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_LARGE_BARE_COUNT": "3", "BENCH_LARGE_BARE_SIZE": str(size),
           "BENCH_RESULTS": str(tmp_path)}
    if parts:
        env["BENCH_LARGE_BARE_PARTS"] = str(parts)
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "copy_vs_rclone.py"),
                           "--sets", name, "--runs", "1", "--warmup", "0", "--check"],
                          env=env, capture_output=True, text=True, timeout=180)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for tool in ("lakeshift", "bare"):
        assert f"    {tool}: 3 of 3 objects byte-exact at the destination\n" in out, out
        assert re.search(rf"^  {tool} .* rc=0$", out, re.M), out
    assert f"    bare loop: 3 objects: {path}\n" in out, out
    assert re.search(rf"^  ratio lakeshift/bare \({name}/http, mean files/s\): \d+\.\d\d$",
                     out, re.M), out
    assert (tmp_path / "copy_vs_rclone.json").exists()


def test_marginal_cpu_per_object_is_measured_for_each_tool(tmp_path: Path) -> None:
    """``--marginal``: each tool copies a small and a larger set; the start-up is taken out
    of the CPU per 1,000 objects (issue 16 item 4)."""
    env = {**os.environ, "BENCH_MARGINAL_COUNTS": "10,30", "BENCH_RESULTS": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "copy_vs_rclone.py"),
                           "--marginal", "--runs", "1"],
                          env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    for tool in ("lakeshift", "bare", "rclone"):
        assert re.search(rf"^  {tool} +10: cpu +\d+\.\d\d s +30: cpu +\d+\.\d\d s +per 1,000 "
                         r"beyond start-up: -?\d+\.\d{3} s$", out, re.M), out
        assert re.search(rf"^  {tool} +marginal client CPU per 1,000 objects: -?\d+\.\d{{3}} s$",
                         out, re.M), out


def test_an_unknown_set_is_one_line() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "copy_vs_rclone.py"),
                           "--sets", "large-bar"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("unknown set 'large-bar': use small, large,")
    assert "large-bare" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_azurite_profiled_per_run_and_summed(tmp_path: Path) -> None:
    """BENCH_AZURITE_PROFILE: each run's Azurite under ``node --cpu-prof``, one profile per
    Azurite, which bench/azurite_profile.py reads (CPU busy, garbage collector, extent I/O)."""
    prof = tmp_path / "prof"
    env = {**os.environ, "BENCH_LARGE_BARE_COUNT": "2", "BENCH_LARGE_BARE_SIZE": str(9 * MiB),
           "BENCH_RESULTS": str(tmp_path), "BENCH_AZURITE_PROFILE": str(prof)}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "copy_vs_rclone.py"),
                           "--sets", "large-bare", "--runs", "1", "--warmup", "0"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    profiles = sorted(prof.glob("*/*.cpuprofile"))
    # One Azurite for lakeshift's run, one for the bare loop's: each wrote its profile.
    assert [p.parent.name for p in profiles] == ["001", "002"], list(prof.rglob("*"))
    out = subprocess.run([sys.executable, str(REPO / "bench" / "azurite_profile.py"),
                          *map(str, profiles), "--top", "3"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    heads = re.findall(r"^\S+\.cpuprofile: (\d+\.\d\d) s busy \(garbage collector "
                       r"\d+\.\d\d s, extent file I/O (\d+\.\d\d) s\)$", out.stdout, re.M)
    assert len(heads) == 2, out.stdout
    # 18 MiB written to extent files and read back: Azurite was busy, some of it on that.
    assert all(float(busy) > 0 and float(io) > 0 for busy, io in heads), out.stdout
    bad = tmp_path / "bad.cpuprofile"
    bad.write_text("{}")
    out = subprocess.run([sys.executable, str(REPO / "bench" / "azurite_profile.py"), str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "not a readable V8 CPU profile" in out.stderr, out



def test_azurite_in_memory_copies_byte_exact(tmp_path: Path) -> None:
    """BENCH_AZURITE_MEMORY=1: Azurite keeps blobs in memory (no extent file written and
    read back per block, the emulator's own disk cost); the copy is still checked byte by
    byte, and the header says which Azurite the figures are of."""
    env = {**os.environ, "BENCH_LARGE_BARE_COUNT": "2", "BENCH_LARGE_BARE_SIZE": str(9 * MiB),
           "BENCH_LARGE_BARE_PARTS": str(5 * MiB), "BENCH_RESULTS": str(tmp_path),
           "BENCH_AZURITE_MEMORY": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "copy_vs_rclone.py"),
                           "--sets", "multipart-bare", "--runs", "1", "--warmup", "0", "--check"],
                          env=env, capture_output=True, text=True, timeout=180)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert out.startswith("== multipart-bare/http (moto keepalive, Azurite in memory): 2 × "), out
    for tool in ("lakeshift", "bare"):
        assert f"    {tool}: 2 of 2 objects byte-exact at the destination\n" in out, out


def test_an_azurite_in_memory_keeps_nothing_on_disk() -> None:
    """The option behind it: Azurite started with it writes no data folder (one without it
    does, at start)."""
    sys.path.insert(0, str(REPO))
    from tests import servers
    for in_memory in (False, True):
        srv = servers.start_azurite(in_memory=in_memory)
        try:
            assert (srv.workdir / "data").exists() is not in_memory, list(srv.workdir.iterdir())
        finally:
            srv.stop()
