"""Folders in an Azure listing, named as every other store names them: ``d/``.

List Blobs shows a folder — an ADLS Gen2 directory, an ``hdi_isfolder`` marker blob on a
flat account — as a zero-length blob named ``d``, in name order: before ``d-x`` and
``d.csv``.  S3 (``d/`` keys), WebHDFS and local disk list a folder as the marker ``d/``,
which sorts after them, and the engine pairs, skips and verifies folders by that name: a
source's ``d`` met no destination's ``d/`` (a Gen2 source asked the destination about each
directory, one request each; an S3 destination's ``d/`` was copied again by every run).

So a listing page names each folder blob ``d/`` (``is_dir_marker``) and moves it to its
place in key order: held until the listing passes ``d/``.  One not passed by the end of a
page goes on to the next in the continuation token (``held_token``): ``list_page`` stays
stateless, a page asked for again (a retry, the engine's page ahead) gets the same, and
what is held is bounded by the depth of the names (each held folder's name is a prefix of
the page's last name).  A delimiter listing is left as the service gives it.

List Blobs of the prefix ``d/`` does not show the folder blob ``d`` itself (S3 lists its
``d/`` key under ``d/``): the store's ``folder_entry`` gives it, named ``d/``, to the
pipeline's listings that ask for it (engine/pipeline_listings.py), by one List Blobs of
the one name ``d`` (the list right is enough, where a HEAD would need read).
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from lakeshift.model import ObjectInfo

#: A continuation token that carries held folders starts with this (a service marker never
#: holds a line feed).
_HELD = "lakeshift-held\n"


def named_folders(objects: Sequence[ObjectInfo], held: list[ObjectInfo],
                  last_page: bool) -> tuple[list[ObjectInfo], list[ObjectInfo]]:
    """One page's objects in key order with each folder blob named ``d/``, after the
    folders ``held`` from the page before; returns them and the folders still held (none
    on the last page)."""
    if not held and not any([o.is_dir_marker for o in objects]):
        return list(objects), []  # (most pages: no folder, no Python step per object)
    heap = [(o.key, i, o) for i, o in enumerate(held)]
    heapq.heapify(heap)
    n = len(heap)
    out: list[ObjectInfo] = []
    for obj in objects:
        while heap and heap[0][0] < obj.key:
            out.append(heapq.heappop(heap)[2])
        if obj.is_dir_marker and not obj.key.endswith("/"):
            n += 1
            folder = replace(obj, key=obj.key + "/")
            heapq.heappush(heap, (folder.key, n, folder))
        else:
            out.append(obj)
    rest = [heapq.heappop(heap)[2] for _ in range(len(heap))]
    if last_page:
        return out + rest, []
    return out, rest


def held_token(marker: str, held: list[ObjectInfo]) -> str:
    """The continuation token for the next page: the service's marker, with the folders
    still held when there are any."""
    if not held:
        return marker
    return _HELD + json.dumps({"marker": marker, "held": [
        [o.key, o.last_modified.isoformat() if o.last_modified else None, o.etag,
         base64.b64encode(o.md5).decode() if o.md5 is not None else None,
         dict(o.metadata or {}), o.storage_class] for o in held]})


def from_token(token: str | None) -> tuple[str | None, list[ObjectInfo]]:
    """The service's marker and the held folders of a token ``held_token`` made."""
    if token is None or not token.startswith(_HELD):
        return token, []
    data = json.loads(token[len(_HELD):])
    return data["marker"], [
        ObjectInfo(key, 0, datetime.fromisoformat(when) if when else None, etag,
                   base64.b64decode(md5) if md5 is not None else None, True, meta, tier)
        for key, when, etag, md5, meta, tier in data["held"]]
