"""In-memory stand-ins for a source store and its ranged GETs, for unit tests of the block
copy path (engine/transfer_blocks.py): a source whose every ``open_range`` is recorded, and a
body that hands over its chunks one loop turn apart, as a socket's arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from lakeshift.model import ObjectProps
from lakeshift.stores.s3.store import CAPABILITIES as S3
from lakeshift.urls import parse_url


class MemStream:
    """A ranged GET's body: ``data`` from offset ``start`` of the object."""

    def __init__(self, data: bytes, start: int = 0) -> None:
        self.data, self.start = data, start
        self.props, self.size, self.etag = ObjectProps(), len(data), None
        self.closed = False

    async def chunks(self, n: int) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), n):
            await asyncio.sleep(0)  # (a chunk arrives in a later turn of the loop)
            self.handed()
            yield self.data[i:i + n]

    def handed(self) -> None:
        """Called as each chunk is handed over (for a subclass to count)."""

    def close(self) -> None:
        self.closed = True


class MemSource:
    """An S3-like source holding one object's ``data``; ``streams`` lists every ranged GET
    opened, in order (each a ``stream_type``)."""

    url = parse_url("s3://bkt/")
    capabilities = S3
    stream_type: type[MemStream] = MemStream

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.streams: list[MemStream] = []

    async def open_range(self, key: str, start: int, end: int,
                         if_match: str | None = None) -> MemStream:
        self.streams.append(self.stream_type(self.data[start:end], start))
        return self.streams[-1]
