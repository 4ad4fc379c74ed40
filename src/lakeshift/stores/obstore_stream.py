"""Reads through obstore (S3 and Azure sources): one GET, or a streamed ranged GET."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import obstore

from lakeshift.model import ObjectProps, ReadResult
from lakeshift.stores.obstore_common import translate
from lakeshift.stores.props import props_from_attributes, unquote_etag


class ObstoreRange:
    def __init__(self, result: Any, what: str, props: ObjectProps) -> None:
        self._result = result
        self._what = what
        self.props = props
        self.size = int(result.meta["size"])
        self.etag = unquote_etag(result.meta.get("e_tag"))

    async def chunks(self, min_size: int) -> AsyncIterator[bytes]:
        # obstore's Bytes supports the buffer protocol: hashed and sent without a copy.
        stream = self._result.stream(min_chunk_size=min_size)
        while True:
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return
            except Exception as e:
                raise translate(e, self._what) from None
            yield chunk


def get_options(start: int | None, end: int | None, if_match: str | None) -> Any:
    opts: Any = {}
    if start is not None:
        opts["range"] = (start, end) if end is not None else {"offset": start}
    if if_match:
        opts["if_match"] = f'"{if_match}"'
    return opts or None


async def read(store: Any, key: str, start: int | None, end: int | None,
               if_match: str | None, what: str) -> ReadResult:
    """One GET: bytes [start, end) (the whole object when both are None)."""
    try:
        res = await obstore.get_async(store, key, options=get_options(start, end, if_match))
        data = await res.bytes_async()
    except Exception as e:  # obstore raises several unrelated classes
        raise translate(e, what) from None
    # A view of obstore's buffer: hashed and sent without a copy.
    return ReadResult(memoryview(data), props_from_attributes(res.attributes),
                      int(res.meta["size"]), unquote_etag(res.meta.get("e_tag")))


async def open_range(store: Any, key: str, start: int, end: int, if_match: str | None,
                     what: str) -> ObstoreRange:
    opts = get_options(start, end, if_match)
    try:
        res = await obstore.get_async(store, key, options=opts)
    except Exception as e:
        raise translate(e, what) from None
    return ObstoreRange(res, what, props_from_attributes(res.attributes))
