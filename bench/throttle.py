"""Throughput under throttling: 10% of Azure writes answered 503 ServerBusy.

  python bench/throttle.py [--objects 2000] [--runs 2]

Each run: fresh moto + Azurite, a fault-injection proxy (tests/faultproxy.py) in front of
Azurite, 2,000 × 4 KiB copied S3 → Blob by `lakeshift copy`. Three modes, interleaved:
clean (proxy, no faults), 10% 503s with the adaptive (AIMD) limiter, 10% 503s without it.
Prints each run and the throughput of each mode as a ratio to the clean runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LAKESHIFT, Emulators, Measured, measure, seed

from tests import servers
from tests.faultproxy import FaultProxy

BUSY = (b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
        b"<Message>The server is busy.</Message></Error>")


def one(mode: str, count: int) -> Measured:
    emus = Emulators()
    assert emus.azurite is not None
    proxy = FaultProxy(f"http://127.0.0.1:{emus.azurite.port}")
    try:
        seed(emus.s3(), "bench", "data/", count, 4096)
        if mode != "clean":
            proxy.add("status", method="PUT", path=r"/bench/", uses=10**9, probability=0.1,
                      status=503, headers={"x-ms-error-code": "ServerBusy"}, body=BUSY)
        env = dict(emus.env)
        env["AZURE_STORAGE_CONNECTION_STRING"] = (
            f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
            f"AccountKey={servers.AZURITE_KEY};"
            f"BlobEndpoint={proxy.url}/{servers.AZURITE_ACCOUNT};")
        argv = [LAKESHIFT, "copy", "s3://bench/data/", "az://bench/data/", "--progress",
                "none", "--json"]
        if mode == "503-fixed":
            argv.append("--no-adaptive")
        m = measure(mode, argv, env, emus, count, count * 4096)
        print(f"  {m.row()}  injected {proxy.injected}", flush=True)
        return m
    finally:
        proxy.stop()
        emus.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    modes = ["clean", "503-adaptive", "503-fixed"]
    results: dict[str, list[Measured]] = {m: [] for m in modes}
    for run in range(args.runs):
        for mode in modes if run % 2 == 0 else reversed(modes):
            results[mode].append(one(mode, args.objects))
    clean = statistics.mean(m.objects / m.wall for m in results["clean"])
    for mode in modes:
        rate = statistics.mean(m.objects / m.wall for m in results[mode])
        print(f"{mode:<13} {rate:7.1f} files/s  ratio to clean {rate / clean:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
