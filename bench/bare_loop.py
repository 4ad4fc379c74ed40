"""The ceiling for the small set: a bare loop of lakeshift's own lowest store calls, with
no engine in the way — list the source (``list_page``), then for every object one GET
(``read``) and one Put Blob (``put``, carrying the listing's MD5), 64 in flight.

Run by ``copy_vs_rclone.py --sets bare`` under /usr/bin/time beside ``lakeshift copy`` of
the same set on fresh emulators; the target (issue 16) is lakeshift >= 90 % of its files/s.

    python bench/bare_loop.py s3://bench/data/ az://bench/data/ [--in-flight 64]

``--requests`` makes the loop send what ``lakeshift copy`` sends for each object, to tell
the engine's cost from the requests' cost at the services: ``if-match`` (the GET carries
the listing's ETag in If-Match, as lakeshift's reads do), ``metadata`` (the Put Blob
carries the source's ETag and time as metadata, as lakeshift's writes do), ``both``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys

from lakeshift.engine.transfer_base import _dest_props
from lakeshift.model import ObjectInfo
from lakeshift.stores.base import StoreConfig
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url


async def main(source: str, destination: str, in_flight: int, requests: str) -> int:
    if_match = requests in ("if-match", "both")
    metadata = requests in ("metadata", "both")
    s_url, d_url = parse_url(source), parse_url(destination)
    src = open_store(StoreConfig(s_url))
    dst = open_store(StoreConfig(d_url))
    try:
        await dst.prepare_destination()
        queue: asyncio.Queue[ObjectInfo | None] = asyncio.Queue(in_flight * 4)
        done = 0

        async def lister() -> None:
            token = None
            while True:
                page = await src.list_page(s_url.path, token)
                for obj in page.objects:
                    await queue.put(obj)
                token = page.token
                if token is None:
                    break
            for _ in range(in_flight):
                await queue.put(None)

        async def worker() -> None:
            nonlocal done
            while (obj := await queue.get()) is not None:
                r = await src.read(obj.key, if_match=obj.etag if if_match else None)
                md5 = obj.md5 if obj.md5 is not None else hashlib.md5(r.data).digest()
                key = d_url.path + obj.key[len(s_url.path):]
                props = _dest_props(r.props, obj) if metadata else r.props
                await dst.put(key, r.data, props, md5)
                done += 1

        async with asyncio.TaskGroup() as tg:
            tg.create_task(lister())
            for _ in range(in_flight):
                tg.create_task(worker())
    finally:
        await asyncio.gather(src.close(), dst.close(), return_exceptions=True)
    print(f"{done} objects", file=sys.stderr)
    return 0 if done else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("source")
    ap.add_argument("destination")
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--requests", default="bare", choices=("bare", "if-match", "metadata", "both"))
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.source, a.destination, a.in_flight, a.requests)))
