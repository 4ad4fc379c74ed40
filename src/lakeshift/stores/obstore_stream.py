"""Reads through obstore (Azure sources; S3 reads go through s3/reads.py): one GET, or a
streamed ranged GET.

Neither has a limit on the whole request; each gives up when no data arrives for
``http.STALL_SECONDS`` (the response's headers, then every chunk of its body)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import obstore

from lakeshift.errors import LakeshiftError, TransientError
from lakeshift.model import ObjectProps, ReadResult
from lakeshift.stores import http
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
        """The body in chunks of at least ``min_size`` bytes (the last may be shorter).

        obstore is asked for pieces of at most _PIECE bytes, so that the stall limit
        watches the connection's progress, not the time a whole block takes; pieces are
        joined here (a chunk that arrives whole is handed on without a copy)."""
        stream = self._result.stream(min_chunk_size=min(min_size, _PIECE))
        stall = http.STALL_SECONDS
        pending: list[Any] = []
        size = 0
        while True:
            try:
                piece = await http.next_or_stall(stream, stall, self._what)
            except StopAsyncIteration:
                break
            except Exception as e:
                raise translate(e, self._what) from None
            pending.append(piece)
            size += len(piece)
            if size >= min_size:
                yield pending[0] if len(pending) == 1 else b"".join(pending)
                pending, size = [], 0
        if pending:
            yield pending[0] if len(pending) == 1 else b"".join(pending)

    def close(self) -> None:
        self._result = None  # obstore's stream is dropped with it


#: The most obstore accumulates before handing bytes over (and the stall limit looks again).
_PIECE = 1024 * 1024


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
    res = await _get(store, key, get_options(start, end, if_match), what)
    parts = [chunk async for chunk in ObstoreRange(res, what, ObjectProps()).chunks(_WHOLE)]
    # Objects read whole are at most --single-put-max (below _WHOLE): one part, a view of
    # it, hashed and sent without a further copy.
    data = memoryview(parts[0]) if len(parts) == 1 else memoryview(b"".join(parts))
    return ReadResult(data, props_from_attributes(res.attributes),
                      int(res.meta["size"]), unquote_etag(res.meta.get("e_tag")))


_WHOLE = 1 << 62  # one chunk: the whole body


async def _get(store: Any, key: str, options: Any, what: str) -> Any:
    """The GET request up to its response's headers, which must come within the stall
    limit."""
    stall = http.STALL_SECONDS
    try:
        return await asyncio.wait_for(obstore.get_async(store, key, options=options), stall)
    except TimeoutError:
        raise TransientError(f"{what}: no response for {stall:g} s (stalled)") from None
    except LakeshiftError:
        raise
    except Exception as e:  # obstore raises several unrelated classes
        raise translate(e, what) from None


async def open_range(store: Any, key: str, start: int, end: int, if_match: str | None,
                     what: str) -> ObstoreRange:
    res = await _get(store, key, get_options(start, end, if_match), what)
    return ObstoreRange(res, what, props_from_attributes(res.attributes))
