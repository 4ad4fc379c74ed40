"""The ADLS Gen2 destination over the DFS double (tests/doubles/dfs.py, in front of Azurite):
the account says it is hierarchical, directories made through the DFS endpoint are seen on
the blob endpoint, and owner, group and ACLs set through azure-storage-file-datalake read
back as set (and as Gen2 refuses what it refuses)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import lakeshift
from lakeshift.errors import LakeshiftError
from lakeshift.model import ObjectProps
from lakeshift.stores.base import PathAccess, Store, StoreConfig
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url
from tests.doubles.dfs import DfsDouble
from tests.helpers import blobs

ALICE = "6f1c2a9e-1111-4c1b-9b57-3b5c8f0a0001"
TEAM = "6f1c2a9e-2222-4c1b-9b57-3b5c8f0a0002"


def _filesystem(blob_service: Any = None) -> str:
    """A new file system's name (made first through the blob endpoint when given one)."""
    fs = f"fs{uuid.uuid4().hex[:10]}"
    if blob_service is not None:
        blob_service.create_container(fs)
    return fs


@asynccontextmanager
async def _gen2(fs: str) -> AsyncIterator[Store]:
    """The ``az://FS/`` store over the double, prepared as a destination, closed after."""
    store = open_store(StoreConfig(parse_url(f"az://{fs}/")))
    try:
        await store.prepare_destination()
        yield store
    finally:
        await store.close()


def test_directories_and_acls_through_the_dfs_endpoint(gen2: DfsDouble) -> None:
    fs = _filesystem()

    async def main() -> None:
        async with _gen2(fs) as store:
            assert store.capabilities.hierarchical and store.capabilities.directories
            await store.make_directory("out/empty/")
            await store.put("out/data/a.txt", b"hello", ObjectProps(),
                            hashlib.md5(b"hello").digest())
            page = await store.list_page("out/")
            markers = {o.key for o in page.objects if o.is_dir_marker}
            # Gen2 shows a directory on the blob endpoint as a folder blob "out/empty"; the
            # listing names it as every store names a folder (stores/azure/folders.py).
            assert "out/empty/" in markers
            acl = (f"user::rwx,user:{ALICE}:r-x,group::r-x,mask::r-x,other::---,"
                   f"default:user::rwx,default:user:{ALICE}:r-x,default:group::r-x,"
                   "default:mask::r-x,default:other::---")
            await store.set_access("out/empty/", PathAccess(ALICE, TEAM, acl))
            got = await store.get_access("out/empty/")
            assert (got.owner, got.group, got.acl) == (ALICE, TEAM, acl)
            assert got.permissions == "rwxr-x---+"
            # A file's parent directory exists implicitly (the blob was written there).
            await store.set_access("out/data", PathAccess(acl="user::rwx,group::r-x,other::r-x"))
            assert (await store.get_access("out/data")).permissions == "rwxr-xr-x"
            file_acl = f"user::rw-,user:{ALICE}:r--,group::r--,mask::r--,other::---"
            await store.set_access("out/data/a.txt", PathAccess(acl=file_acl))
            assert (await store.get_access("out/data/a.txt")).acl == file_acl
            with pytest.raises(LakeshiftError, match="directories only"):
                await store.set_access("out/data/a.txt", PathAccess(
                    acl=file_acl + ",default:user::rwx"))
            with pytest.raises(LakeshiftError, match="'hdfs'"):
                await store.set_access("out/data/a.txt", PathAccess(owner="hdfs"))

    asyncio.run(main())
    assert ("PUT", fs, "out/empty", "directory") in gen2.requests


def test_a_sticky_bit_is_set_and_read_back(gen2: DfsDouble) -> None:
    """Gen2 takes the sticky bit as 4-digit octal in x-ms-permissions and reports it as t;
    beside an ACL it is set by a second request (the two headers exclude each other)."""
    from lakeshift.engine.preserve import IdentityMap, gen2_access
    from lakeshift.stores.webhdfs.client import AclStatus

    fs = _filesystem()

    async def main() -> None:
        async with _gen2(fs) as store:
            await store.make_directory("tmp/")
            await store.make_directory("shared/")
            status = AclStatus("", "", "1777", ())
            await store.set_access("tmp/", gen2_access(status, frozenset({"permissions"}),
                                                       IdentityMap.of([]), True))
            assert (await store.get_access("tmp/")).permissions == "rwxrwxrwt"
            await store.set_access("shared/", gen2_access(status, frozenset({"acl"}),
                                                          IdentityMap.of([]), True))
            got = await store.get_access("shared/")
            assert (got.acl, got.permissions) == ("user::rwx,group::rwx,other::rwx",
                                                  "rwxrwxrwt")

    asyncio.run(main())


def test_a_rerun_to_gen2_copies_nothing_again(s3: Any, bucket: str, blob_service: Any,
                                              container: str, gen2: DfsDouble) -> None:
    """Gen2 lists the directory "t/a" (made for "t/a/x") ahead of "t/a-1.csv" and "t/a.csv";
    the source names it "t/a/", which sorts after them: every file still pairs with its copy,
    so a second run copies nothing."""
    for key in ("t/a-1.csv", "t/a.csv", "t/a/x", "t/a/b-c/y", "t/a/b/z"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    src, dst = f"s3://{bucket}/t/", f"az://{container}/out/"
    first = lakeshift.copy(src, dst)
    assert (first.stats.copied, first.exit_code) == (5, 0)
    listed = set(blobs(blob_service, container))
    assert {"out/a", "out/a/b"} <= listed  # the double lists Gen2's implicit directories
    again = lakeshift.copy(src, dst)
    assert (again.stats.copied, again.exit_code) == (0, 0)


_BEARER_SCRIPT = """
import asyncio, json, sys
from lakeshift.errors import LakeshiftError
from lakeshift.stores.base import PathAccess, Store, StoreConfig
from lakeshift.stores.registry import open_store
from lakeshift.urls import parse_url

async def main(fs, path, owner):
    store = open_store(StoreConfig(parse_url(f"az://{fs}/")))
    try:
        await store.make_directory(path)
        await store.set_access(path, PathAccess(owner=owner))
        got = await store.get_access(path)
        return {"owner": got.owner, "blob_token": await store._blobs.tokens.get()}
    finally:
        await store.close()

try:
    print(json.dumps(asyncio.run(main(*sys.argv[1:]))))
except LakeshiftError as e:
    print(json.dumps({"error": str(e), "class": type(e).__name__}))
"""


def test_the_dfs_endpoint_uses_the_stores_bearer_token_and_renews_it_on_401(
        gen2: DfsDouble, blob_service: Any) -> None:
    """With Entra ID (a service principal), DFS calls carry the store's bearer token — the one
    the blob endpoint uses — and a token the service refuses as expired is renewed once.
    (In a child process: aiohttp reads SSL_CERT_FILE, the token endpoint's CA, at import.)"""
    from tests.doubles import entra

    fs = _filesystem(blob_service)
    with entra.serve(["expired-token", "good-token"]) as tokens:
        gen2.bearer_tokens = {"good-token"}
        env = {k: v for k, v in os.environ.items() if k != "AZURE_STORAGE_CONNECTION_STRING"}
        env.update({**tokens.env(), "AZURE_STORAGE_ACCOUNT": "devstoreaccount1",
                    "AZURE_STORAGE_BLOB_ENDPOINT": gen2.endpoint,
                    "AZURE_STORAGE_DFS_ENDPOINT": gen2.endpoint})

        def run(path: str) -> dict[str, str]:
            p = subprocess.run([sys.executable, "-c", _BEARER_SCRIPT, fs, path, ALICE],
                               env=env, capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stderr
            return dict(json.loads(p.stdout))

        got = run("t/one")
        assert got == {"owner": ALICE, "blob_token": "good-token"}  # one token, both endpoints
        assert gen2.bearers_seen == ["expired-token", "good-token", "good-token", "good-token"]
        assert len(tokens.requests) == 2               # renewed once, then reused

        # Refused again after renewal: the credentials' error (exit 3), one line, no token.
        tokens.tokens[:] = ["expired-token"]
        gen2.bearers_seen.clear()
        got = run("t/two")
        assert got["class"] == "AuthError" and "credentials rejected" in got["error"], got
        assert "expired-token" not in got["error"]
        assert gen2.bearers_seen == ["expired-token", "expired-token"]


def _path_delete(double: DfsDouble, fs: str, path: str, recursive: str) -> tuple[int, str, Any]:
    """Path - Delete as the REST reference has it, signed with the account key: status,
    ``x-ms-error-code`` and the JSON error body (None when empty)."""
    import base64
    import http.client
    from datetime import UTC, datetime
    from email.utils import format_datetime

    from lakeshift.stores.azure.rest import API_VERSION, shared_key_signature
    from tests import servers

    target = f"/{servers.AZURITE_ACCOUNT}/{fs}/{path}?recursive={recursive}"
    headers = {"x-ms-version": API_VERSION,
               "x-ms-date": format_datetime(datetime.now(UTC), usegmt=True)}
    headers["Authorization"] = shared_key_signature(
        servers.AZURITE_ACCOUNT, base64.b64decode(servers.AZURITE_KEY), "DELETE",
        f"http://127.0.0.1:{double.port}{target}", headers)
    conn = http.client.HTTPConnection("127.0.0.1", double.port, timeout=60)
    try:
        conn.request("DELETE", target, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, resp.getheader("x-ms-error-code") or "", \
            json.loads(body) if body else None
    finally:
        conn.close()


def test_the_double_deletes_a_directory_without_recursion_only_when_empty(
        blob_service: Any, gen2: DfsDouble) -> None:
    """The double's Path - Delete: ``recursive=false`` on a directory that holds anything is
    409 ``DirectoryNotEmpty`` (the reference's error shape) and deletes nothing; on an
    empty one it deletes it; ``recursive=true`` deletes the directory with what is below."""
    fs = _filesystem(blob_service)

    async def seed() -> None:
        async with _gen2(fs) as store:
            await store.put("full/sub/f.txt", b"x", ObjectProps(), hashlib.md5(b"x").digest())
            await store.make_directory("empty/")

    asyncio.run(seed())
    before = sorted(blobs(blob_service, fs, ""))
    assert before == ["empty", "full", "full/sub", "full/sub/f.txt"]
    for path in ("full", "full/sub"):
        status, code, body = _path_delete(gen2, fs, path, "false")
        assert (status, code) == (409, "DirectoryNotEmpty"), path
        assert body["error"]["code"] == "DirectoryNotEmpty" and body["error"]["message"]
    assert sorted(blobs(blob_service, fs, "")) == before
    assert _path_delete(gen2, fs, "empty", "false")[0] == 200
    assert _path_delete(gen2, fs, "empty", "false")[:2] == (404, "PathNotFound")
    assert _path_delete(gen2, fs, "full", "true")[0] == 200
    assert blobs(blob_service, fs, "") == {}


def test_the_store_removes_a_directory_only_while_it_is_empty_unless_told_recursive(
        blob_service: Any, gen2: DfsDouble) -> None:
    """``remove_directory`` sends Path - Delete with ``recursive=false``: a folder something
    wrote into after it was seen empty keeps what is in it, and no error is raised (it is not
    lakeshift's to remove); ``recursive=True`` takes the folder with all below it.
    (``gen2`` after ``blob_service``: the store talks to the double's account.)"""
    fs = _filesystem(blob_service)

    async def main() -> None:
        async with _gen2(fs) as store:
            await store.make_directory("made/deeper/")
            await store.put("made/deeper/run.bin", b"a run's", ObjectProps(),
                            hashlib.md5(b"a run's").digest())
            await store.make_directory("gone/")
            for key in ("made/deeper/", "made/", "gone/", "never/"):
                await store.remove_directory(key)  # type: ignore[attr-defined]
            assert sorted(blobs(blob_service, fs, "")) == ["made", "made/deeper",
                                                           "made/deeper/run.bin"]
            await store.remove_directory("made/", recursive=True)  # type: ignore[attr-defined]
            assert blobs(blob_service, fs, "") == {}

    asyncio.run(main())
    deletes = [r for r in gen2.requests if r[0] == "DELETE"]
    assert [r[2] for r in deletes] == ["made/deeper", "made", "gone", "never", "made"]
