"""`make demo`: a real migration on local emulators, end to end.

Starts moto (S3) and Azurite (Blob) on free loopback ports, fills an S3 bucket with a small
realistic lake, runs ``lakeshift copy`` with progress, then checks independently (boto3 and
the Azure SDK, not lakeshift) that every object arrived with the same bytes, and stops the
emulators by PID and removes its temp folder whatever happens.  ``--small`` is the quick
version that `make test` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import servers  # noqa: E402

MiB = 1024 * 1024
BUCKET = "demo-lake"
CONTAINER = "lake"


def lake_objects(small: bool) -> dict[str, bytes | int]:
    """Keys → content (bytes), or → size for large random files generated on upload."""
    rng = random.Random(42)
    objs: dict[str, bytes | int] = {}
    tables = ["sales", "customers", "web logs", "ünïcode_tables"]
    for t in tables:
        for day in range(1, (4 if small else 11)):
            for part in range(3 if small else 8):
                key = f"raw/{t}/date=2024-03-{day:02d}/part-{part:05d}.csv"
                rows = "\n".join(f"{i},{rng.randint(0, 10**6)},{t}" for i in range(rng.randint(
                    5, 200)))
                objs[key] = f"id,value,table\n{rows}\n".encode()
    objs["raw/README with spaces.txt"] = "A demo lake: naïve café data ✓\n".encode()
    objs["raw/_SUCCESS"] = b""
    big = 9 * MiB if small else 64 * MiB
    for i in range(1 if small else 3):
        objs[f"raw/archive/dump-{i}.bin"] = big + i * 12345
    return objs


def upload(s3: Any, objs: dict[str, bytes | int]) -> None:
    def put(item: tuple[str, bytes | int]) -> None:
        key, val = item
        body = os.urandom(val) if isinstance(val, int) else val
        ctype = "text/csv" if key.endswith(".csv") else "application/octet-stream"
        if isinstance(val, int):
            s3.upload_fileobj(__import__("io").BytesIO(body), BUCKET, key,
                              ExtraArgs={"ContentType": ctype})
        else:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=ctype,
                          Metadata={"origin": "demo"})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, objs.items()))


def verify(s3: Any, svc: Any) -> tuple[int, list[str]]:
    """Compare every source object with its destination blob by MD5 of the bytes, and check
    what the blob keeps to prove it: its Content-MD5 — or, for an S3 multipart object
    copied in blocks (which has no MD5 to store), the source's ETag it records."""
    src: dict[str, str] = {}  # key -> ETag
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="raw/"):
        for o in page.get("Contents", []):
            src[o["Key"][len("raw/"):]] = o["ETag"].strip('"')
    cont = svc.get_container_client(CONTAINER)
    dst = {b.name[len("migrated/"):]: b
           for b in cont.list_blobs(name_starts_with="migrated/", include=["metadata"])}
    problems = [f"missing at destination: {k}" for k in sorted(set(src) - set(dst))]
    problems += [f"extra at destination: {k}" for k in sorted(set(dst) - set(src))]

    def check(key: str) -> str | None:
        a = hashlib.md5(s3.get_object(Bucket=BUCKET, Key="raw/" + key)["Body"].read()).digest()
        blob = cont.get_blob_client("migrated/" + key)
        b = hashlib.md5(blob.download_blob().readall()).digest()
        stored = dst[key].content_settings.content_md5
        if a != b:
            return f"content differs: {key}"
        if stored:
            return None if bytes(stored) == a else f"Content-MD5 wrong: {key}"
        # (No MD5 exists for a multipart source copied in blocks: its ETag is kept instead.)
        if "-" in src[key] and (dst[key].metadata or {}).get("lakeshift_src_etag") == src[key]:
            return None
        return f"neither Content-MD5 nor the multipart source's ETag kept: {key}"

    with ThreadPoolExecutor(16) as pool:
        problems += [p for p in pool.map(check, sorted(set(src) & set(dst))) if p]
    return len(src), problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small", action="store_true", help="a quick run (what make test uses)")
    args = ap.parse_args()
    import boto3
    from azure.storage.blob import BlobServiceClient

    # Everything the demo and the programs it starts write to the temp folder (emulator
    # data and logs, the verify report, an error log) goes into one folder removed at the
    # end, whatever happens: a demo run leaves nothing behind.
    scratch = tempfile.mkdtemp(prefix="lakeshift-demo-")
    tempfile.tempdir = scratch
    moto = azurite = None
    try:
        print("Starting moto (S3) and Azurite (Blob) on loopback…", flush=True)
        moto = servers.start_moto()
        azurite = servers.start_azurite()
        env = servers.clean_env()
        env.update({
            "TMPDIR": scratch,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto.port}",
            "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo-secret",
            "AWS_REGION": "us-east-1",
            "AZURE_STORAGE_CONNECTION_STRING": servers.azurite_connection_string(azurite.port),
        })
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="demo", aws_secret_access_key="demo-secret")
        s3.create_bucket(Bucket=BUCKET)
        objs = lake_objects(args.small)
        total = sum(v if isinstance(v, int) else len(v) for v in objs.values())
        print(f"Filling s3://{BUCKET}/raw/ with {len(objs)} objects "
              f"({total / MiB:.0f} MiB)…", flush=True)
        upload(s3, objs)
        cmd = [str(Path(sys.executable).parent / "lakeshift"), "copy", f"s3://{BUCKET}/raw/",
               f"az://{CONTAINER}/migrated/"]
        print("\n$ AWS_ENDPOINT_URL=… AZURE_STORAGE_CONNECTION_STRING=… lakeshift copy "
              f"s3://{BUCKET}/raw/ az://{CONTAINER}/migrated/\n", flush=True)
        t0 = time.monotonic()
        rc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL).returncode
        print(f"\nlakeshift exited {rc} after {time.monotonic() - t0:.1f} s", flush=True)
        if rc != 0:
            return rc
        print("Checking independently (boto3 + Azure SDK): every object, MD5 of the bytes, "
              "and the blob's stored Content-MD5 (or the multipart source's ETag)…", flush=True)
        svc = BlobServiceClient.from_connection_string(env["AZURE_STORAGE_CONNECTION_STRING"])
        n, problems = verify(s3, svc)
        for p in problems[:20]:
            print("  PROBLEM:", p)
        if problems:
            print(f"destination differs from source: {len(problems)} problems")
            return 1
        print(f"OK: destination equals source — {n} objects, every MD5 matches.")
        print("\nRunning the same copy again copies nothing (everything is identical):",
              flush=True)
        rerun = subprocess.run([*cmd, "--progress", "none"], env=env, stdin=subprocess.DEVNULL)
        if rerun.returncode:
            return rerun.returncode
        report = Path(scratch) / "verify"
        print("\nAnd lakeshift's own proof, `lakeshift verify` (multipart ETags recomputed):",
              flush=True)
        code = subprocess.run([str(Path(sys.executable).parent / "lakeshift"), "verify",
                               f"s3://{BUCKET}/raw/", f"az://{CONTAINER}/migrated/",
                               "--report", str(report)], env=env,
                              stdin=subprocess.DEVNULL).returncode
        # The report above is in the demo's scratch folder, removed below.
        print("(The demo removes that report with its scratch folder; `lakeshift verify "
              "--report PREFIX` writes one where you choose.)", flush=True)
        return code
    finally:
        for srv in (moto, azurite):
            if srv is not None:
                srv.stop()
        tempfile.tempdir = None
        shutil.rmtree(scratch, ignore_errors=True)
        print("Emulators stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
