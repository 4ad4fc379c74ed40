"""What Azurite spends per GiB for each way of writing the same bytes: Put Blob with and
without the blob's MD5, Put Block + Put Block List in 8 MiB and 4 MiB blocks, with and
without a transactional Content-MD5 per block.  One fresh Azurite per style; N × 64 MiB
sent one after another (after one unmeasured blob); Azurite's CPU read from /proc.

Tells whether a client could save the emulator work by sending other requests (issue 16:
over plain HTTP the large sets run at what Azurite allows).

    python bench/azurite_cost.py [--blobs 8]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Emulators, MiB

SIZE = 64 * MiB


def put_blob(data: bytes, with_md5: bool) -> Callable[[Any, int], None]:
    from azure.storage.blob import ContentSettings

    settings = ContentSettings(content_md5=hashlib.md5(data).digest()) if with_md5 else None

    def send(container: Any, i: int) -> None:
        container.get_blob_client(f"b{i}").upload_blob(
            data, overwrite=True, max_concurrency=1, content_settings=settings)
    return send


def put_blocks(data: bytes, block: int, with_md5: bool) -> Callable[[Any, int], None]:
    from azure.storage.blob import BlobBlock

    def send(container: Any, i: int) -> None:
        blob = container.get_blob_client(f"b{i}")
        ids = []
        for at in range(0, len(data), block):
            bid = base64.b64encode(f"{at:012d}".encode()).decode()
            blob.stage_block(bid, data[at:at + block], validate_content=with_md5)
            ids.append(BlobBlock(block_id=bid))
        blob.commit_block_list(ids)
    return send


def measure(name: str, send: Callable[[Any, int], None], blobs: int) -> None:
    from azure.storage.blob import BlobServiceClient

    emus = Emulators(azure=True)
    try:
        assert emus.azurite is not None
        service = BlobServiceClient.from_connection_string(
            emus.env["AZURE_STORAGE_CONNECTION_STRING"], max_single_put_size=2 * SIZE)
        container = service.get_container_client("cost")
        container.create_container()
        send(container, 0)  # not counted: the first write of a fresh Azurite
        cpu0, t0 = emus.azurite.cpu_seconds(), time.monotonic()
        for i in range(1, blobs + 1):
            send(container, i)
        cpu, wall = emus.azurite.cpu_seconds() - cpu0, time.monotonic() - t0
        gib = blobs * SIZE / (1024 * MiB)
        print(f"{name:<42} Azurite CPU {cpu / gib:5.2f} s/GiB   wall {wall / gib:5.2f} s/GiB",
              flush=True)
    finally:
        emus.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blobs", type=int, default=8)
    args = ap.parse_args()
    data = os.urandom(SIZE)
    for name, send in (
            ("Put Blob, no MD5", put_blob(data, False)),
            ("Put Blob with the blob's MD5", put_blob(data, True)),
            ("Put Block 8 MiB + Put Block List", put_blocks(data, 8 * MiB, False)),
            ("Put Block 8 MiB with Content-MD5 + list", put_blocks(data, 8 * MiB, True)),
            ("Put Block 4 MiB + Put Block List", put_blocks(data, 4 * MiB, False))):
        measure(name, send, args.blobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
