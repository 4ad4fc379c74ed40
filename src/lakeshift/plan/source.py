"""Which keys a source URL names, and how they map to destination names.

destination name = destination root + (source key − source root).  The source root is a
folder when the path ends in ``/`` or names a folder, a string prefix otherwise (like the
ADF templates' PartitionPrefix: ``logs/2024-0`` takes ``logs/2024-01/…`` and
``logs/2024-02.csv``, named relative to ``logs/``).  A path naming one object copies that
object into the destination root under its own name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from lakeshift.errors import DestinationFolderError, UsageError
from lakeshift.stores.base import Store, StoreConfig, StoreOptions
from lakeshift.urls import parse_url


@dataclass(frozen=True, slots=True)
class SourceSpec:
    #: String prefix to list.
    list_prefix: str
    #: Removed from each key to get its name relative to the root.
    rel_base: str
    #: The path named one object (only the key equal to list_prefix is taken).
    single: bool = False
    #: List only keys after this one (a partition's cursor).
    start_after: str | None = None
    #: Key range [range_start, range_end) inside the prefix (a split partition).
    range_start: str | None = None
    range_end: str | None = None

    def rel(self, key: str) -> str:
        return key[len(self.rel_base):]

    def listing_prefix(self) -> str:
        """The narrowest prefix holding every key of the range: any key between two
        strings starts with their common prefix.  (Stores without start-after — Azure —
        then list only that far, not the whole prefix, for each range partition.)"""
        if self.range_start is None or self.range_end is None:
            return self.list_prefix
        common = os.path.commonprefix([self.range_start, self.range_end])  # noqa: RUF071
        return common if common.startswith(self.list_prefix) else self.list_prefix

    def takes(self, key: str) -> bool:
        if self.single:
            return key == self.list_prefix
        return self.range_start is None or key >= self.range_start

    def past_end(self, key: str) -> bool:
        return self.range_end is not None and key >= self.range_end


async def resolve_source(store: Store) -> SourceSpec:
    path = store.url.path
    if path == "" or path.endswith("/"):
        return SourceSpec(path, path)
    if await store.is_folder(path):
        return SourceSpec(path + "/", path + "/")
    parent = path[: path.rfind("/") + 1]
    try:
        found = await store.exists(path) is not None
    except DestinationFolderError:
        # A local source's link to its destination folder, or into it: one entry, which
        # the walk lists (and the copy skips) as it lists it in its folder.
        found = True
    if found:
        return SourceSpec(path, parent, single=True)
    return SourceSpec(path, parent)


def destination_root(store: Store) -> str:
    path = store.url.path
    return path if path == "" or path.endswith("/") else path + "/"


def source_config(url: str, options: StoreOptions | None = None) -> StoreConfig:
    """A source URL; a local path that is not a directory is split into its directory and
    the name (one file, or a string prefix of names) inside it."""
    parsed = parse_url(url)
    if parsed.scheme == "file" and not os.path.isdir(parsed.bucket):
        parent, name = os.path.split(parsed.bucket)
        if not os.path.lexists(parsed.bucket):
            from lakeshift.stores.local.folders import unreadable_source

            if (why := unreadable_source(parsed.bucket)) is not None:
                raise UsageError(why)  # not "does not exist": it may, out of sight
            try:
                any_match = any(n.startswith(name) for n in os.listdir(parent or "/"))
            except OSError:
                any_match = False
            if not any_match:  # a typo, not a name prefix: nothing would be copied
                raise UsageError(f"local source {parsed.bucket} does not exist (and no name "
                                 f"in {parent or '/'} starts with {name!r}): check the path")
        parsed = replace(parsed, bucket=parent or "/", path=name)
    return StoreConfig(parsed, options or StoreOptions())


def source_shown(config: StoreConfig) -> str:
    """The source as a summary names it: a local path that ``source_config`` split into its
    folder and a name (one file, or a prefix of names) is shown whole, as resolved, not as
    the folder that holds it."""
    url = config.url
    if url.scheme == "file" and url.path:
        return os.path.join(url.bucket, url.path)
    return url.display()


def destination_config(url: str, options: StoreOptions | None = None) -> StoreConfig:
    return StoreConfig(parse_url(url), options or StoreOptions())


def source_avoiding_destination(source: StoreConfig, destination: StoreConfig) -> StoreConfig:
    """``source``, told the folder of a local ``destination`` when it is local too: its
    walk never enters that folder nor anything inside it
    (``StoreConfig.destination_folder``).  A symlink in the source to the destination, or
    into it, would otherwise copy each run's copy again, one level deeper
    (``refuse_destination_inside_source`` refuses what the paths alone show)."""
    if source.url.scheme != "file" or destination.url.scheme != "file":
        return source
    d = destination.url
    return replace(source, destination_folder=os.path.join(d.bucket, *d.path.split("/"))
                   if d.path else d.bucket)


async def refuse_listing_into_destination(source: StoreConfig, store: Store,
                                          list_prefix: str) -> None:
    """UsageError when a partition of the local ``source`` (open as ``store``), told its
    local destination (``source_avoiding_destination``), would list from below a symlink
    (or mount) leading to that folder or into it (``plan --prefix link/``): the local
    store refuses such a listing (its destination-folder rule, which ``exists`` applies to
    each folder on the way), so every run would fail the partition with that line; the
    plan says it once, before anything is written.  Other stores, and a prefix in the
    source's top folder (the walk lists such a link as one skipped entry), are not asked."""
    folder = list_prefix.rpartition("/")[0]
    if not folder or source.destination_folder is None:
        return
    try:
        await store.exists(folder)
    except DestinationFolderError as e:
        raise UsageError(f"partition {list_prefix}: {e}; a run would fail it every time: "
                         "leave that prefix out of the plan") from None


def refuse_destination_inside_source(source: StoreConfig, destination: StoreConfig,
                                     spec: SourceSpec | None = None) -> None:
    """UsageError when the destination lies inside what the source names: every run would
    then list the previous run's copy as source and nest it one level deeper.

    The two must be one store, whatever their spellings (plan/places.py: one Azure
    container by ``az://``, ``abfss://`` or ``https://`` of the account the credentials
    resolve to; one S3 bucket at one endpoint; local disk).  Local (symlinks resolved,
    relative paths from the working folder): the destination directory is the source's
    directory, or is below it where the source names it (a source path naming a file or a
    name prefix in its directory, see ``source_config``, takes only names starting with
    it).  Object stores: the destination root starts with the prefix the source lists,
    ``spec`` (``resolve_source``'s; a string prefix, ``logs/2024-0`` also takes
    ``logs/2024-05-copy/``, but a folder ``raw`` takes ``raw/``, not ``raw2/``).  Without
    ``spec`` (before the source is asked) only the path as a folder is refused: a string
    prefix of the destination that is not a folder of it (``raw`` → ``raw2/``) is checked
    again with ``spec`` once the source is resolved.  Asks no server."""
    src, dst = source.url, destination.url
    if src.scheme != dst.scheme:
        return
    if src.scheme != "file":  # (local disk is one store: a copy imports no more for it)
        from lakeshift.plan.places import store_place

        if store_place(src, source.options) != store_place(dst, destination.options):
            return
    if src.scheme == "file":
        src_dir = os.path.realpath(src.bucket)
        dst_dir = os.path.realpath(os.path.join(dst.bucket, *dst.path.split("/")))
        under = dst_dir.startswith(src_dir.rstrip(os.sep) + os.sep)
        inside = dst_dir == src_dir or (
            under and _root(os.path.relpath(dst_dir, src_dir).replace(os.sep, "/"))
            .startswith(src.path))
    elif spec is None:
        inside = _root(dst.path).startswith(_root(src.path))
    else:  # (one object names only its own key)
        inside = not spec.single and _root(dst.path).startswith(spec.list_prefix)
    if inside:
        # Named as the user wrote them (az:// and abfss:// of one container would read
        # as two places); a URL holds no secret (parse_url refuses a query string).
        raise UsageError(f"destination {dst.written()} is inside the source {src.written()}: "
                         "each run would copy the last copy again, one level deeper; choose a "
                         "destination outside the source")


def _root(path: str) -> str:
    return path if path == "" or path.endswith("/") else path + "/"
