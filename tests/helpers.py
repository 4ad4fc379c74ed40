"""Independent checks of what landed at the destination (SDK listings, not lakeshift)."""

from __future__ import annotations

import hashlib
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


def md5(b: bytes) -> bytes:
    return hashlib.md5(b).digest()
