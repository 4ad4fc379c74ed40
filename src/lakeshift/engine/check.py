"""`lakeshift check SRC DST`: can a copy between these two work?  Each step is one line,
ok or the fix: credentials, reachability, list and read on the source, write and delete of
a probe object on the destination, and clock skew (signed requests fail past ~15 min)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from lakeshift.engine.listing import list_pages
from lakeshift.engine.pipeline import check_reachable
from lakeshift.engine.retry import RetryPolicy
from lakeshift.errors import (
    AuthError,
    DanglingLinkError,
    DestinationFolderError,
    LakeshiftError,
    MissingContainerError,
    ObjectError,
    SpecialFileError,
    SymlinkLoopError,
    UsageError,
)
from lakeshift.model import CheckLine, ObjectInfo, ObjectProps
from lakeshift.plan.source import destination_root
from lakeshift.stores.base import Store, StoreConfig
from lakeshift.stores.registry import open_store
from lakeshift.urls import StoreURL

MAX_SKEW_S = 300


async def check_pair(source: StoreConfig, destination: StoreConfig) -> list[CheckLine]:
    lines: list[CheckLine] = []
    lines += await _side("source", source, _source_steps)
    lines += await _side("destination", destination, _dest_steps)
    return lines


Steps = Callable[[str, Store], AsyncIterator[CheckLine]]


async def _side(side: str, cfg: StoreConfig, steps: Steps) -> list[CheckLine]:
    out: list[CheckLine] = []
    try:
        store = open_store(cfg)
    except LakeshiftError as e:
        return [_fail(side, "credentials", e)]
    out.append(CheckLine(side, "credentials", True, _credentials_found(cfg.url)))
    try:
        async for line in steps(side, store):
            out.append(line)
            if not line.ok:
                break
    finally:
        await store.close()
    return out


def _credentials_found(url: StoreURL) -> str:
    """The credentials line: a local folder needs none (what this user may read and write
    is the next steps' question)."""
    if url.scheme == "file":
        return (f"none needed for a local folder ({url.display()}); what this user may read "
                "and write is tried next")
    return f"found for {url.display()}"


def _place(url: StoreURL, key: str) -> str:
    """Where ``key`` of the store at ``url`` is, as ``url.display()`` spells places (the form
    the user typed: ``az://c/dst/.lakeshift-check-…``, a local path), not its bare key."""
    if url.scheme == "file":
        return os.path.join(url.bucket, key)
    return replace(url, path=key).display()


def _missing(url: StoreURL, e: MissingContainerError) -> str:
    """The line for a destination whose bucket or container the copy cannot create with
    these credentials (``_creatable``): how to create it."""
    if url.scheme == "azure":
        what, how = "container", f"az storage container create --name {url.bucket}"
    elif url.scheme == "s3":
        what, how = "bucket", f"aws s3 mb s3://{url.bucket}"
    else:
        return f"{e}: `lakeshift copy` and `run` create it; check creates nothing"
    return f"{url.display()}: the {what} does not exist: create it ({how})"


def _creatable(store: Store) -> tuple[bool, str]:
    """Whether the credentials given may create the missing bucket or container, as the
    copy's ``prepare_destination`` does (CreateBucket, Create Container), and how that is
    known: from the kind of credential alone, since check creates nothing to find out.
    Anonymous S3 requests and an Azure SAS that is not an account SAS allowing containers
    to be created (``srt`` with ``c``, ``sp`` with ``c`` or ``w``) cannot; an account key
    can; AWS keys and an Entra ID identity can when their policy or role allows it."""
    settings: Any = getattr(store, "settings", None)
    if store.url.scheme == "s3":
        if settings is None or settings.credentials is None:
            return False, "anonymous requests (--s3-anonymous) cannot create a bucket"
        return True, "CreateBucket, which these credentials must be allowed (s3:CreateBucket)"
    kind = getattr(settings, "kind", None)
    if kind == "key":
        return True, "Create Container, with the account key"
    if kind == "sas":
        query = parse_qs((settings.sas or "").lstrip("?"))
        srt, sp = query.get("srt", [""])[0], query.get("sp", [""])[0]
        if "c" in srt and ("c" in sp or "w" in sp):
            return True, "Create Container, which this account SAS allows"
        return False, ("this SAS cannot create a container (only an account SAS with "
                       "srt=…c… and sp=…c… can)")
    return True, ("Create Container, which the identity must be allowed (a role such as "
                  "Storage Blob Data Contributor)")


def _not_yet(side: str, store: Store, e: MissingContainerError) -> list[CheckLine]:
    """A bucket or container that does not exist yet: fine when the copy may create it
    (nothing written to find out, so no probe either), else the one failed line naming
    what is missing and how to create it."""
    may, how = _creatable(store)
    if not may:
        return [CheckLine(side, "reach and list", False,
                          f"{_missing(store.url, e)}: {how}", e.exit_code)]
    return [CheckLine(side, "reach and list", True,
                      f"{store.url.display()} does not exist yet; the copy creates it ({how})"),
            CheckLine(side, "write and delete", True, "not tried: nothing to write into "
                      "until the copy creates it (check creates nothing)")]


async def _new_local_folder(side: str, store: Store) -> AsyncIterator[CheckLine]:
    """A local destination folder that does not exist yet: fine when the nearest existing
    folder above it takes a (probe) file, as the copy creates it there; a file in the way
    or a folder that cannot be written is the failed step, naming the fix.  Nothing is
    created (the probe has no name: stores/local ``new_folder_parent``)."""
    from lakeshift.stores.local.folders import new_folder_parent

    root = store.url.bucket
    try:
        parent, how = await asyncio.to_thread(new_folder_parent, root)
    except UsageError as e:
        yield _fail(side, "reach and list", e)
        return
    yield CheckLine(side, "reach and list", True, f"{store.url.display()} does not exist yet; "
                    f"the copy creates it (in {parent})")
    yield CheckLine(side, "write and delete", True, f"{parent} takes new files and folders "
                    f"({how})")
    yield await _skew(side, store)


def _fail(side: str, step: str, e: LakeshiftError) -> CheckLine:
    code = e.exit_code if isinstance(e, AuthError | UsageError) else 2
    return CheckLine(side, step, False, str(e), code)


async def _step(side: str, step: str, fn: Callable[[], Awaitable[None]],
                ok: str) -> CheckLine:
    try:
        await check_reachable(fn, side, RetryPolicy(attempts=2))
    except LakeshiftError as e:
        return _fail(side, step, e)
    return CheckLine(side, step, True, ok)


async def _skew(side: str, store: Store) -> CheckLine:
    try:
        server = await store.server_time()
    except LakeshiftError as e:
        return _fail(side, "clock", e)
    if server is None:
        return CheckLine(side, "clock", True, "local disk: no remote clock")
    skew = (datetime.now(UTC) - server).total_seconds()
    if abs(skew) > MAX_SKEW_S:
        return CheckLine(side, "clock", False, f"this machine's clock is {skew:+.0f} s off the "
                         "service's: fix it (NTP) or signed requests will be refused", 2)
    return CheckLine(side, "clock", True, f"skew {skew:+.1f} s")


async def _first_object(store: Store) -> ObjectInfo | None:
    """The first object listed under the store's path, None when there is nothing."""
    async for page in list_pages(store, store.url.path):
        return page[0]
    return None


async def _reach(side: str, store: Store, fn: Callable[[], Awaitable[None]]) -> CheckLine:
    """The reach-and-list step: a path with nothing under it is not said to exist (on a
    flat namespace a folder is only its objects' common prefix)."""
    line = await _step(side, "reach and list", fn, "")
    if not line.ok:
        return line
    try:
        first = await _first_object(store)
    except LakeshiftError as e:
        return _fail(side, "reach and list", e)
    said = ("exists and can be listed" if first is not None
            else "can be listed; nothing under it yet")
    return CheckLine(side, "reach and list", True, f"{store.url.display()} {said}")


#: How many listed entries the source read tries past ones that are not files (a dangling
#: or looping link, a FIFO) before it says so instead of reading one.
READ_TRIES = 100

#: What the copy never reads as a file's content: a link to nothing, a link that loops, a
#: FIFO, socket or device, a link into the destination folder.  The read step passes over
#: these to a file it can read, as the copy fails or skips them one by one.
_NOT_FILES = (DanglingLinkError, SymlinkLoopError, SpecialFileError, DestinationFolderError)


async def _read_one(side: str, store: Store) -> CheckLine:
    """The source read step: the first listed entry that is a file, read (its first KiB;
    a 0-byte object read whole, so a link to nothing fails as the copy's read does).
    Entries that are not files are passed over and named; when no file is found among
    the first READ_TRIES entries, the step says so, failed when the copy would fail them
    (a dangling link) and ok when it always skips them (a FIFO, a looping link)."""
    passed: list[ObjectError] = []
    tried = 0
    async for page in list_pages(store, store.url.path):
        for obj in page:
            tried += 1
            try:
                r = await (store.read(obj.key, 0, min(obj.size, 1024)) if obj.size
                           else store.read(obj.key))
            except _NOT_FILES as e:
                passed.append(e)
                if tried >= READ_TRIES:
                    break
                continue
            said = f"read {len(r.data)} bytes of {_place(store.url, obj.key)}"
            if passed:
                said += f" (passed over {_not_files(passed)})"
            return CheckLine(side, "read", True, said)
        if tried >= READ_TRIES:
            break
    if not passed:
        return CheckLine(side, "read", True, "nothing under this path yet (nothing to read)")
    first = next((e for e in passed if not e.skipped_always), None)
    if first is not None:
        return CheckLine(side, "read", False, f"no file to read ({_entries(tried)} tried): "
                         f"{first} (the copy fails it; --skip-errors {first.kind} "
                         "skips it)", first.exit_code)
    return CheckLine(side, "read", True, "nothing to read: the copy skips all "
                     f"{_entries(tried)} listed ({_not_files(passed)})")


def _not_files(passed: list[ObjectError]) -> str:
    """How many entries were passed over, and why: ``1 entry that is not a file:
    dangling-link``, ``2 entries that are not files: dangling-link, not-a-file``."""
    kinds = ", ".join(sorted({e.kind for e in passed}))
    n = len(passed)
    return f"{_entries(n)} that {'is not a file' if n == 1 else 'are not files'}: {kinds}"


def _entries(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"


async def _source_steps(side: str, store: Store) -> AsyncIterator[CheckLine]:
    yield await _reach(side, store, store.check_source)
    try:
        line = await _read_one(side, store)
    except LakeshiftError as e:
        yield _fail(side, "read", e)
        return
    yield line
    if not line.ok:
        return
    yield await _skew(side, store)


async def _dest_steps(side: str, store: Store) -> AsyncIterator[CheckLine]:
    # Listed first, and never created here: check changes nothing (but its probe object).
    try:
        await check_reachable(store.check_source, side, RetryPolicy(attempts=2))
    except MissingContainerError as e:
        if store.url.scheme == "file":
            async for line in _new_local_folder(side, store):
                yield line
            return
        for line in _not_yet(side, store, e):
            yield line
        return
    except LakeshiftError as e:
        yield _fail(side, "reach and list", e)
        return
    yield await _reach(side, store, store.prepare_destination)
    probe = destination_root(store) + f".lakeshift-check-{uuid.uuid4().hex[:12]}"
    data = b"lakeshift check probe\n"
    try:
        await store.put(probe, data, ObjectProps(content_type="text/plain"),
                        hashlib.md5(data).digest())
        await store.delete(probe)
        yield CheckLine(side, "write and delete", True,
                        f"wrote and deleted {_place(store.url, probe)}")
    except LakeshiftError as e:
        yield _fail(side, "write and delete", e)
        return
    yield await _skew(side, store)
