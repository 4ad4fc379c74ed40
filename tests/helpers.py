"""Independent checks of what landed at the destination (SDK listings, not lakeshift), and
source objects made the way other tools make them."""

from __future__ import annotations

import hashlib
import math
import os
import socketserver
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def blobs(blob_service: Any, container: str, prefix: str = "") -> dict[str, Any]:
    c = blob_service.get_container_client(container)
    return {b.name: b for b in c.list_blobs(name_starts_with=prefix or None,
                                           include=["metadata"])}


def blob_bytes(blob_service: Any, container: str, name: str) -> bytes:
    return bytes(blob_service.get_blob_client(container, name).download_blob().readall())


def s3_objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def next_second(margin: float = 0.05) -> None:
    """Sleep until just past the wall clock's next whole second: whatever happened before the
    call has an earlier whole-second timestamp than whatever happens after it.  S3 and Azure
    give LastModified in whole seconds (truncated) and sync windows end on whole seconds, so
    this is what a test needs between a write and the pass that must (not) see it; it waits
    0.55 s on average where a fixed ``time.sleep(1.1)`` waited 1.1 s.  The margin covers
    file systems that stamp mtimes from a coarse clock (a few ms behind ``time.time()``)."""
    now = time.time()
    time.sleep(math.floor(now) + 1 + margin - now)


#: How often a test server's ``serve_forever`` loop looks for ``shutdown()``: with the
#: default 0.5 s every stop waited up to half a second for it (a WebHDFS double's two
#: servers, up to a second), in each of the tests that start one.
SERVE_POLL_S = 0.02


def serve_in_thread(srv: socketserver.BaseServer) -> threading.Thread:
    """Run ``srv`` in a daemon thread; ``srv.shutdown()`` then returns within SERVE_POLL_S."""
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": SERVE_POLL_S},
                              daemon=True)
    thread.start()
    return thread


def md5(b: bytes) -> bytes:
    return hashlib.md5(b).digest()


def put_multipart(s3: Any, bucket: str, key: str, data: bytes, part: int, **kw: Any) -> None:
    """Upload ``data`` in parts of ``part`` bytes: the ETag is md5-of-md5s-N, not an MD5."""
    mpu = s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)
    parts = []
    for n, i in enumerate(range(0, len(data), part), start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, PartNumber=n, UploadId=mpu["UploadId"],
                           Body=data[i:i + part])
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": parts})


def seed_each_path(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """One S3 object for each way lakeshift copies one (with 1 MiB blocks): a single put
    (small), a streamed put checked against the source MD5 (single part, 3 MiB), and
    parallel blocks (multipart: no MD5 in the ETag)."""
    import os

    objs = {f"{prefix}small.txt": b"small", f"{prefix}streamed.bin": os.urandom(3 * 2**20 + 3)}
    for k, v in objs.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    objs[f"{prefix}blocks.bin"] = os.urandom(6 * 2**20)
    put_multipart(s3, bucket, f"{prefix}blocks.bin", objs[f"{prefix}blocks.bin"], 5 * 2**20)
    return objs


def old_lake(root: Path, names: list[str], data: bytes = b"v1") -> None:
    """Files under ``root``, modified two hours ago (before any sync window's end)."""
    old = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (old, old))


def file_names(root: Path) -> list[str]:
    """The files under ``root``, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def upload_parts(s3: Any, bucket: str, key: str, sizes: list[int], crc32: str = "",
                 **extra: Any) -> bytes:
    """A multipart upload of parts of ``sizes`` (not all equal, as some tools write them),
    with a CRC32 each when ``crc32`` ("COMPOSITE" or "FULL_OBJECT"); returns the bytes."""
    import os

    algo = {"ChecksumAlgorithm": "CRC32"} if crc32 else {}
    kind = {"ChecksumType": crc32} if crc32 else {}
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, **algo, **kind,
                                    **extra)["UploadId"]
    parts, done = [os.urandom(n) for n in sizes], []
    for n, body in enumerate(parts, 1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=body,
                           **algo)
        done.append({"ETag": r["ETag"], "PartNumber": n,
                     **({"ChecksumCRC32": r["ChecksumCRC32"]} if crc32 else {})})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up,
                                 MultipartUpload={"Parts": done})
    return b"".join(parts)
