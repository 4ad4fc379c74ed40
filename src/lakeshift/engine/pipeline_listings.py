"""The pipeline's two listings, as the merge takes them: the source's objects under a
``SourceSpec`` (its prefix or key range, after its cursor, through the name filter) and the
destination's under the root, each named relative to its root, in ascending name order,
paged one page ahead (engine/listing.py).  Used by copy/run/sync (engine/pipeline.py) and
verify."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Sequence

from lakeshift.engine.events import EventBus, Listed, ListingDone
from lakeshift.engine.limiter import EndpointLimiter
from lakeshift.engine.listing import DEFAULT_POLICY, list_pages
from lakeshift.engine.retry import RetryPolicy, retry
from lakeshift.errors import UsageError
from lakeshift.model import ObjectInfo
from lakeshift.plan.filters import NameFilter
from lakeshift.plan.source import SourceSpec
from lakeshift.stores.base import FolderEntries, Store


def own_folder(prefix: str, start_after: str | None) -> bool:
    """Whether a listing of ``prefix`` (after ``start_after``) takes in the folder the
    prefix names, ``d/`` for ``d/``: a folder prefix, not resumed at or past it."""
    return prefix.endswith("/") and prefix != "/" and not prefix.endswith("//") and (
        start_after is None or start_after < prefix)


async def folder_pages(store: Store, prefix: str, start_after: str | None, policy: RetryPolicy,
                       limiter: EndpointLimiter | None, end: str | None, folder: bool
                       ) -> AsyncIterator[Sequence[ObjectInfo]]:
    """``list_pages`` one page ahead, and with ``folder`` the listed folder's own entry
    first (its name is the least of the prefix's) from a store whose listing of ``d/``
    leaves out ``d/`` itself (``FolderEntries``: Azure's folder blob ``d``; S3 lists its
    ``d/`` key anyway): so a folder partition meets its own folder, and the folder a source
    names its own marker.  One request per listing, not per page."""
    if folder and isinstance(store, FolderEntries) and own_folder(prefix, start_after):
        asked = store
        entry = await retry(lambda: asked.folder_entry(prefix), policy, limiter)
        if entry is not None:
            yield [entry]
    async for page in list_pages(store, prefix, start_after, policy, limiter, ahead=True,
                                 end=end):
        yield page


async def source_items(src: Store, spec: SourceSpec, name_filter: NameFilter,
                       events: EventBus, policy: RetryPolicy = DEFAULT_POLICY,
                       limiter: EndpointLimiter | None = None, folders: bool = False,
                       root_folder: bool = False) -> AsyncIterator[tuple[str, ObjectInfo]]:
    """``folders`` (the copy keeps folders): the listed folder's own marker is taken too
    (``folder_pages``).  ``root_folder``: the folder the names are relative to
    (``spec.rel_base``), when its own marker is listed (an S3 ``d/`` key, an Azure folder
    blob: the least key of the listing), is taken too, named ``""``: the caller makes it the
    destination root, so a folder named with --empty-dirs (an empty one too) is a folder
    there.  Otherwise a key with no name below the root is not taken."""
    prefix = spec.listing_prefix()
    pages = folder_pages(src, prefix, spec.start_after, policy, limiter, spec.range_end,
                         folders and (root_folder or prefix != spec.rel_base))
    # Every key of the prefix, no range, no filter (a copy's usual source): each key's
    # name is its tail after rel_base, taken unless empty, in one comprehension (no four
    # Python calls a key: past_end, takes, rel and the filter; same outcome).
    whole = not spec.single and spec.range_start is None and spec.range_end is None and \
        not name_filter.include and not name_filter.exclude
    cut = len(spec.rel_base)
    async for page in pages:
        if whole:
            taken = [(obj.key[cut:], obj) for obj in page if len(obj.key) > cut]
            if root_folder and page and page[0].key == spec.rel_base and page[0].is_dir_marker:
                taken.insert(0, ("", page[0]))
            if taken:
                events.emit(Listed(len(taken), sum([o.size for _, o in taken])))
            for item in taken:
                yield item
            continue
        taken = []
        ended = False
        for obj in page:
            if spec.past_end(obj.key):
                ended = True
                break
            if not spec.takes(obj.key):
                continue
            rel = spec.rel(obj.key)
            if (not rel and not (root_folder and obj.is_dir_marker)) or not name_filter(rel):
                continue
            taken.append((rel, obj))
        if taken:
            events.emit(Listed(len(taken), sum(o.size for _, o in taken)))
        for item in taken:
            yield item
        if ended:
            break
    events.emit(ListingDone())


def dest_prefix(spec: SourceSpec, root: str) -> str:
    """What to list at the destination: only the names the source spec can produce."""
    return root + spec.rel(spec.listing_prefix())


def dest_range(spec: SourceSpec, root: str) -> tuple[str | None, str | None]:
    """The destination keys ``[low, high)`` a key-range partition's names can take (None:
    unbounded).  Names keep the source's order (a fixed prefix is swapped), so the range
    maps to a range: listing the destination under the common prefix alone would show the
    neighbouring partitions' objects as having no source here."""
    def mapped(key: str | None) -> str | None:
        return root + spec.rel(key) if key is not None and key.startswith(spec.rel_base) \
            else None
    return mapped(spec.range_start), mapped(spec.range_end)


async def within(items: AsyncIterator[tuple[str, ObjectInfo]], low: str | None,
                 high: str | None) -> AsyncIterator[tuple[str, ObjectInfo]]:
    """The destination items whose keys lie in ``[low, high)`` (dest_range; None: no
    bound), ending the listing at ``high``."""
    async for rel, obj in items:
        if high is not None and obj.key >= high:
            break
        if low is None or obj.key >= low:
            yield rel, obj


async def dest_items(dst: Store, root: str, prefix: str, start_after: str | None,
                     dry_run: bool, policy: RetryPolicy = DEFAULT_POLICY,
                     limiter: EndpointLimiter | None = None, end: str | None = None,
                     folders: bool = False) -> AsyncIterator[tuple[str, ObjectInfo]]:
    """``folders``: the listed folder's own entry too (``folder_pages``), to pair with the
    source's."""
    # A folder is listed as "d/" by every store here (Azure's folder blobs too:
    # stores/azure/folders.py); one a store lists as "d" is paired with the source's "d/":
    # "d/" sorts after "d-x" and "d.csv", so it is held back until the listing passes it
    # (merge() needs ascending names).  Held: at most one per open directory name that is
    # a prefix of what follows, so bounded by the depth.  The root's own folder (its
    # marker, listed first) is named "", as source_items names the source's.
    held: list[tuple[str, ObjectInfo]] = []
    try:
        async for page in folder_pages(dst, prefix, start_after, policy, limiter, end,
                                       folders):
            for obj in page:
                rel = obj.key[len(root):]
                while held and held[0][0] < rel:
                    yield heapq.heappop(held)
                if obj.is_dir_marker and rel and not rel.endswith("/"):
                    heapq.heappush(held, (rel + "/", obj))
                else:
                    yield rel, obj
        while held:
            yield heapq.heappop(held)
    except UsageError:
        if not dry_run:
            raise  # a missing container in a dry run simply holds nothing yet
