"""lakeshift vs rclone, moto (S3) → Azurite (Blob), on the same data in the same run.

  python bench/copy_vs_rclone.py                 # both sets, 2 runs each tool, interleaved
  python bench/copy_vs_rclone.py --sets small --runs 1
  python bench/copy_vs_rclone.py --sets local    # local → local, 100,000 × 64 B
  python bench/copy_vs_rclone.py --sets bare     # small set vs a bare GET+PUT loop (bare_loop.py)
  python bench/copy_vs_rclone.py --sets large-bare,multipart-bare   # 16 × 64 MiB vs the bare loop
  python bench/copy_vs_rclone.py --sets large-bare --check   # and every object compared after
  python bench/copy_vs_rclone.py --transports https   # Azurite over HTTPS only
  python bench/copy_vs_rclone.py --sets blob     # Blob → Blob: streamed, --copy-mode server, rclone
  python bench/copy_vs_rclone.py --rss           # lakeshift peak RSS, 5,000 vs 50,000 objects
  python bench/copy_vs_rclone.py --marginal      # client CPU per 1,000 small objects, start-up out
  python bench/copy_vs_rclone.py --moto close    # moto_server as shipped (Connection: close)
  BENCH_AZURITE_MEMORY=1 python bench/copy_vs_rclone.py --sets multipart   # Azurite in memory

Every measured run gets fresh emulators (Azurite slows down as blobs accumulate). Prints
each run (wall, files/s, MB/s, client CPU, peak RSS, emulator CPU) and the ratio
lakeshift/rclone of the mean throughput.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import LAKESHIFT, REPO, Emulators, Measured, MiB, measure, rclone_env, seed, settle

SETS = {
    "small": {"count": 5000, "size": 4 * 1024, "rclone": ["--transfers", "32", "--checkers", "32"]},
    "large": {"count": 16, "size": 64 * MiB, "rclone": ["--transfers", "8"]},
    # Not in the target: typical Parquet files, and large files as the AWS CLI
    # uploads them (8 MiB parts, so no MD5 in the ETag): --sets medium,multipart.
    "medium": {"count": 256, "size": 4 * MiB,
               "rclone": ["--transfers", "32", "--checkers", "32"]},
    "multipart": {"count": 16, "size": 64 * MiB, "parts": 8 * MiB,
                  "rclone": ["--transfers", "8"]},
    # Blob → Blob in one Azurite (two containers), 16 × 64 MiB: lakeshift streamed, lakeshift
    # --copy-mode server (Copy Blob From URL), rclone; `io` is what passed through the tool.
    "blob": {"count": 16, "size": 64 * MiB, "blob": 1, "rclone": ["--transfers", "8"]},
    # Local disk → local disk, no emulator in the way: the client's cycles per object
    # decide (issue 16 item 4; `--sets local`).
    # The small set against its ceiling: lakeshift copy vs bench/bare_loop.py (lakeshift's
    # own store calls, list + GET + Put Blob, 64 in flight, no engine); issue 16's target
    # is >= 90 % of the bare loop's files/s.  No rclone here.
    "bare": {"count": int(os.environ.get("BENCH_BARE_COUNT", "5000")), "size": 4 * 1024,
             "versus": "bare", "rclone": []},
    # The large sets against their ceiling: the same bare loop moving each object with the
    # requests of lakeshift's path for it (a 64 MiB object with its S3 MD5: one streamed GET
    # into one Put Blob carrying it; a multipart one: its checksum HEADs, then blocks, each
    # with its CRC64, over plain HTTP), 16 in flight.  No rclone here.
    "large-bare": {"count": int(os.environ.get("BENCH_LARGE_BARE_COUNT", "16")),
                   "size": int(os.environ.get("BENCH_LARGE_BARE_SIZE", str(64 * MiB))),
                   "versus": "bare", "in_flight": 16, "rclone": []},
    "multipart-bare": {"count": int(os.environ.get("BENCH_LARGE_BARE_COUNT", "16")),
                       "size": int(os.environ.get("BENCH_LARGE_BARE_SIZE", str(64 * MiB))),
                       "parts": int(os.environ.get("BENCH_LARGE_BARE_PARTS", str(8 * MiB))),
                       "versus": "bare", "in_flight": 16, "rclone": []},
    "local": {"count": int(os.environ.get("BENCH_LOCAL_COUNT", "100000")), "size": 64, "local": 1,
              "rclone": ["--transfers", "32", "--checkers", "32"]},
}


def local_run(tool: str, count: int, size: int, rclone_args: list[str]) -> Measured:
    """``count`` files of ``size`` bytes in folders of 1,000, copied to an empty folder.

    Every run (either tool, warm-up or measured) reads the SAME source tree, made and read
    once (``_local_source``), and writes a fresh destination beside it; nothing is deleted
    until the bench ends.  Each run used to seed its own source and start a moto it did
    not use: the tool then read 20,000 files created a second before (the first read of
    each sets its atime: an inode write per file) while moto's start-up settled, and the
    runs differed by which of those landed in their window."""
    src = _local_source(count, size)
    dst = src.parent / f"dst-{tool}-{len(_LOCAL_RUNS)}"
    _LOCAL_RUNS.append(dst)
    settle(3.0)
    if tool == "lakeshift":
        argv = [LAKESHIFT, "copy", str(src), str(dst), "--progress", "none", "--json"]
    else:
        argv = ["rclone", "copy", str(src), str(dst), *rclone_args]
    return measure(tool, argv, common.servers.clean_env(), _NoEmulators(),  # type: ignore[arg-type]
                   count, count * size)


class _NoEmulators:
    """What measure() asks of the emulators, for a run that has none."""

    def cpu_split(self) -> tuple[float, float]:
        return 0.0, 0.0


_LOCAL_RUNS: list[Path] = []
_LOCAL_SOURCES: dict[tuple[int, int], Path] = {}


def _local_source(count: int, size: int) -> Path:
    """The source tree for ``count`` × ``size`` B, made on first use, then read once whole
    (its atimes set and its pages cached, as for every later run)."""
    if (count, size) not in _LOCAL_SOURCES:
        work = Path(tempfile.mkdtemp(prefix="lakeshift-bench-local-"))
        _LEFT_FOR_LATER.append(work)
        src = work / "src"
        block = os.urandom(size)
        for i in range(count):
            folder = src / f"{i // 1000:03d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True)
            (folder / f"f-{i:06d}.bin").write_bytes(block)
        settle()
        for path in src.rglob("*.bin"):
            path.read_bytes()
        _LOCAL_SOURCES[count, size] = src
    return _LOCAL_SOURCES[count, size]


# Removed when the bench ends, not before the next run: on this ext4 (no journal) creating
# a file right after tens of thousands were deleted makes the kernel check each recently
# freed inode (ext4 recently_deleted(), a minute or more), seconds of system CPU for
# whichever tool runs next (measured with perf).
_LEFT_FOR_LATER: list[Path] = []
atexit.register(lambda: [shutil.rmtree(w, ignore_errors=True) for w in _LEFT_FOR_LATER])


def blob_run(tool: str, count: int, size: int, rclone_args: list[str], tls: bool,
             extra: list[str], count_bytes: bool = False) -> Measured:
    """``count`` blobs of ``size`` bytes (each with its Content-MD5) copied to another
    container of the same Azurite.  With ``count_bytes`` the tool reaches Azurite through
    tests/faultproxy.py, which counts the body bytes both ways (plain HTTP only)."""
    from azure.storage.blob import BlobServiceClient, ContentSettings

    from tests import servers
    from tests.faultproxy import FaultProxy

    emus = Emulators(tls=tls)
    proxy = None
    try:
        svc = BlobServiceClient.from_connection_string(
            emus.env["AZURE_STORAGE_CONNECTION_STRING"],
            connection_verify=str(emus.ca_file()) if tls else True)
        src = svc.create_container("src")
        svc.create_container("dst")
        for i in range(count):
            body = os.urandom(size)
            src.upload_blob(f"data/obj-{i:04d}.bin", body, max_concurrency=4,
                            content_settings=ContentSettings(
                                content_md5=bytearray(hashlib.md5(body).digest())))
        settle()
        if count_bytes:
            assert emus.azurite is not None and not tls
            proxy = FaultProxy(f"http://127.0.0.1:{emus.azurite.port}")
            emus.env["AZURE_STORAGE_CONNECTION_STRING"] = servers.azurite_connection_string(
                emus.azurite.port).replace(f":{emus.azurite.port}/", f":{proxy.port}/")
            emus.azurite.port = proxy.port  # rclone's sas_url too
        if tool.startswith("lakeshift"):
            # `copy` is --copy-mode auto by default: the streamed row says stream.
            mode = ["--copy-mode", "server" if tool == "lakeshift-server" else "stream"]
            argv = [LAKESHIFT, "copy", "az://src/data/", "az://dst/data/", "--progress",
                    "none", "--json", *mode, *extra]
            env = emus.env
        else:
            conf = emus.rclone_config()
            argv = ["rclone", "copy", "az:src/data", "az:dst/data", *rclone_args]
            if tls:
                argv += ["--ca-cert", str(emus.ca_file())]
            env = rclone_env(emus.env, conf)
        m = measure(tool, argv, env, emus, count, count * size)
        if proxy is not None:
            m.through_mb = proxy.body_bytes / MiB
        return m
    finally:
        if proxy is not None:
            proxy.stop()
        emus.stop()


def one_run(tool: str, name: str, extra: list[str], tls: bool = False,
            count: int | None = None) -> Measured:
    """One measured run of ``tool`` on set ``name`` (``count`` objects instead of the set's
    own when given) on fresh emulators."""
    spec = SETS[name]
    size = int(spec["size"])  # type: ignore[call-overload]
    count = int(spec["count"]) if count is None else count  # type: ignore[call-overload]
    if spec.get("local"):
        return local_run(tool, count, size, list(spec["rclone"]))  # type: ignore[call-overload]
    if spec.get("blob"):
        return blob_run(tool, count, size, list(spec["rclone"]), tls, extra)  # type: ignore[call-overload]
    emus = Emulators(tls=tls)
    try:
        seed(emus.s3(), "bench", "data/", count, size, int(spec.get("parts", 0)))  # type: ignore[call-overload]
        settle()
        if tool == "lakeshift":
            argv = [LAKESHIFT, "copy", "s3://bench/data/", "az://bench/data/", "--progress",
                    "none", "--json", *extra]
            env = emus.env
        elif tool == "bare":
            argv = [sys.executable, str(REPO / "bench" / "bare_loop.py"), "s3://bench/data/",
                    "az://bench/data/", "--in-flight", str(spec.get("in_flight", 64))]
            env = emus.env
        else:
            conf = emus.rclone_config()
            argv = ["rclone", "copy", "s3:bench/data", "az:bench/data",
                    *spec["rclone"]]  # type: ignore[misc]
            if tls:
                argv += ["--ca-cert", str(emus.ca_file())]
            env = rclone_env(emus.env, conf)
        m = measure(tool, argv, env, emus, count, count * size)
        if CHECK:
            m.exact = check_copied(emus, tls)
        return m
    finally:
        emus.stop()


#: ``--check``: after each S3 → Azure run (untimed), every source object compared byte for
#: byte with the blob of its name.
CHECK = False
#: Runs whose destination did not hold every object exactly (the bench then exits 1).
MISMATCHED: list[Measured] = []


def check_copied(emus: Emulators, tls: bool) -> tuple[int, int]:
    """(objects whose blob at the destination holds exactly their bytes, objects at the
    source) of ``s3://bench/data/`` → ``az://bench/data/``."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    s3 = emus.s3()
    svc = BlobServiceClient.from_connection_string(
        emus.env["AZURE_STORAGE_CONNECTION_STRING"],
        connection_verify=str(emus.ca_file()) if tls else True)
    container = svc.get_container_client("bench")
    exact = total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="data/"):
        for item in page.get("Contents", []):
            total += 1
            body = s3.get_object(Bucket="bench", Key=item["Key"])["Body"].read()
            try:
                blob = container.download_blob(item["Key"], max_concurrency=4).readall()
            except ResourceNotFoundError:
                continue
            exact += blob == body
    return exact, total


def rss_scaling() -> None:
    """Peak RSS for 5,000 vs 50,000 small objects (moto → local disk: Azurite cannot hold
    50,000 blobs at a useful speed here; the engine and its memory bounds are the same)."""
    for count in (5000, 50000):
        emus = Emulators(azure=False)
        out = Path(tempfile.mkdtemp(prefix="lakeshift-rss-"))
        try:
            seed(emus.s3(), "bench", "data/", count, 1024)
            m = measure("lakeshift", [LAKESHIFT, "copy", "s3://bench/data/", str(out),
                                      "--progress", "none", "--json"],
                        emus.env, emus, count, count * 1024)
            print(f"rss {count:>6} objects: {m.row()}", flush=True)
        finally:
            emus.stop()
            shutil.rmtree(out, ignore_errors=True)


def marginal_cpu(runs: int, extra: list[str], counts: tuple[int, int] = (1000, 10000)) -> None:
    """Client CPU per 1,000 small objects with the start-up taken out (issue 16 item 4:
    "measured with the emulators excluded"): each tool copies 1,000 and then 10,000 × 4 KiB
    objects S3 → Azure on fresh emulators; (CPU of 10,000 − CPU of 1,000) / 9."""
    small, large = counts
    for tool in ("lakeshift", "bare", "rclone"):
        per: list[float] = []
        for _ in range(runs):
            a = one_run(tool, "small", extra, count=small)
            b = one_run(tool, "small", extra, count=large)
            if a.returncode or b.returncode:
                print(f"  {tool}: a run failed (rc {a.returncode}, {b.returncode})", flush=True)
                continue
            per.append((b.cpu - a.cpu) / (large - small) * 1000)
            print(f"  {tool:<9} {small:>6}: cpu {a.cpu:5.2f} s   {large:>6}: cpu {b.cpu:5.2f} s"
                  f"   per 1,000 beyond start-up: {per[-1]:.3f} s", flush=True)
        if per:
            print(f"  {tool:<9} marginal client CPU per 1,000 objects: "
                  + " / ".join(f"{p:.3f}" for p in per) + " s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="small,large")
    ap.add_argument("--transports", default="http",
                    help="http, https or both (http,https): Azurite's scheme; local sets "
                         "run once whatever this says")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1, choices=(0, 1),
                    help="one unmeasured run of each tool first: the first run after seeding "
                         "a set was the slowest for either tool")
    ap.add_argument("--rss", action="store_true", help="only the RSS scaling check")
    ap.add_argument("--marginal", action="store_true",
                    help="only the client CPU per 1,000 small objects beyond start-up "
                         "(1,000 vs 10,000 objects; lakeshift, the bare loop, rclone)")
    ap.add_argument("--check", action="store_true",
                    help="after each S3 → Azure run (untimed), compare every object with its "
                         "blob byte for byte; exit 1 if any differs or is missing")
    ap.add_argument("--lakeshift-args", default="", help="extra flags for lakeshift copy")
    ap.add_argument("--moto", default=common.MOTO, choices=common.MOTO_MODES,
                    help="keepalive (default: connections kept alive, as real S3 keeps them) "
                         "or close (moto_server's Connection: close on every response)")
    args = ap.parse_args()
    common.MOTO = args.moto
    global CHECK
    CHECK = args.check
    names = args.sets.split(",")
    unknown = [n for n in names if n not in SETS]
    if unknown and not args.rss:
        print(f"unknown set {unknown[0]!r}: use {', '.join(SETS)}", file=sys.stderr)
        return 2
    if not shutil.which("rclone") and not args.rss and \
            any(SETS[n].get("versus", "rclone") == "rclone" for n in names):
        print("rclone is not installed: `make tools` (apt-get install rclone)", file=sys.stderr)
        return 2
    if args.rss:
        rss_scaling()
        return 0
    if args.marginal:
        small, large = os.environ.get("BENCH_MARGINAL_COUNTS", "1000,10000").split(",")
        marginal_cpu(args.runs, args.lakeshift_args.split(), (int(small), int(large)))
        return 0
    results: dict[str, list[Measured]] = {}
    extra = args.lakeshift_args.split()
    for name in names:
        transports = ["http"] if SETS[name].get("local") else args.transports.split(",")
        for transport in transports:
            tls = transport == "https"
            label = name if SETS[name].get("local") else f"{name}/{transport}"
            memory = ", Azurite in memory" if common.AZURITE_MEMORY else ""
            print(f"== {label} (moto {common.MOTO}{memory}): {SETS[name]['count']} × "
                  f"{int(SETS[name]['size']) // 1024} KiB", flush=True)
            versus = str(SETS[name].get("versus", "rclone"))
            for tool in (versus, "lakeshift")[:args.warmup * 2]:
                m = one_run(tool, name, extra, tls)
                show("(warm-up, not counted) ", m)
            for run in range(args.runs):
                tools = ["lakeshift", versus]
                if SETS[name].get("blob"):
                    tools.insert(1, "lakeshift-server")
                for tool in tools if run % 2 == 0 else tools[::-1]:
                    m = one_run(tool, name, extra, tls)
                    results.setdefault(f"{label}/{tool}", []).append(m)
                    show("", m)
            if SETS[name].get("blob") and not tls:
                spec = SETS[name]
                for tool in ("lakeshift", "lakeshift-server", "rclone"):
                    m = blob_run(tool, int(spec["count"]), int(spec["size"]),  # type: ignore[call-overload]
                                 list(spec["rclone"]), False, extra, count_bytes=True)  # type: ignore[call-overload]
                    results.setdefault(f"{label}/{tool}/counted", []).append(m)
                    print("  (counted through a proxy, not timed) " + m.row(), flush=True)
            ls = [m.objects / m.wall for m in results[f"{label}/lakeshift"]]
            rc = [m.objects / m.wall for m in results[f"{label}/{versus}"]]
            print(f"  ratio lakeshift/{versus} ({label}, mean files/s): "
                  f"{statistics.mean(ls) / statistics.mean(rc):.2f}", flush=True)
    out = Path(os.environ.get("BENCH_RESULTS", str(REPO / "bench" / "results")))
    out.mkdir(exist_ok=True)
    (out / "copy_vs_rclone.json").write_text(json.dumps(
        {k: [m.__dict__ for m in v] for k, v in results.items()}, indent=2))
    return 1 if MISMATCHED else 0


def show(prefix: str, m: Measured) -> None:
    """One run's row; the bare loop's own line (the paths it took); with ``--check``, what
    arrived."""
    print(f"  {prefix}{m.row()}", flush=True)
    if m.tool == "bare" and m.said:
        print(f"    bare loop: {m.said}", flush=True)
    if m.exact is not None:
        exact, total = m.exact
        print(f"    {m.tool}: {exact} of {total} objects byte-exact at the destination"
              + ("" if exact == total else "  MISMATCH"), flush=True)
        if exact != total:
            MISMATCHED.append(m)


if __name__ == "__main__":
    sys.exit(main())
