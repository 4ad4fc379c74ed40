"""A lean HTTP/1.1 client on asyncio Protocols, for the per-object requests.

Measured (docs/performance.md): aiohttp spent ~0.3 ms of client CPU per small request, a
bare asyncio Protocol ~0.08 ms; on small objects client CPU decides throughput.  This
client does only what lakeshift sends: keep-alive connections to one origin (LIFO reuse, a
limit on open connections), Content-Length request bodies (bytes or an async iterator),
Content-Length / chunked / read-to-EOF response bodies, and a stall watch (one timer per
connection, checking a last-progress time) instead of a timeout per read.  No redirects,
cookies, proxies, compression or ``Expect: 100-continue``.  Its framing is tested against
aiohttp (tests/unit/test_wire.py).

Errors are ``WireError`` (an OSError: the request failed on the wire, retryable) with a short
message that names the peer, never the request target or headers (they may hold a SAS or a
signature).

The package: ``errors`` (the exceptions), ``connection`` (one connection, an asyncio
Protocol: request sending, response head parsing with its per-pool memo of header lines,
body framing and buffering, the stall watch), ``response`` (``Response``: status, headers,
body reading) and ``pool`` (``Pool``: connections to one origin, ``request``).  Every name
is importable from ``lakeshift.stores.wire``.
"""

from lakeshift.stores.wire.connection import _CHUNKED as _CHUNKED
from lakeshift.stores.wire.connection import _DATA as _DATA
from lakeshift.stores.wire.connection import _DATA_END as _DATA_END
from lakeshift.stores.wire.connection import _EOF as _EOF
from lakeshift.stores.wire.connection import _LENGTH as _LENGTH
from lakeshift.stores.wire.connection import _LINE_MEMO as _LINE_MEMO
from lakeshift.stores.wire.connection import _LINES_MEMO as _LINES_MEMO
from lakeshift.stores.wire.connection import _NONE as _NONE
from lakeshift.stores.wire.connection import _SIZE as _SIZE
from lakeshift.stores.wire.connection import _TRAILER as _TRAILER
from lakeshift.stores.wire.connection import MAX_BUFFERED as MAX_BUFFERED
from lakeshift.stores.wire.connection import MAX_HEAD as MAX_HEAD
from lakeshift.stores.wire.connection import SLICE as SLICE
from lakeshift.stores.wire.connection import SMALL_BODY as SMALL_BODY
from lakeshift.stores.wire.connection import _Body as _Body
from lakeshift.stores.wire.connection import _Connection as _Connection
from lakeshift.stores.wire.errors import ConnectFailed as ConnectFailed
from lakeshift.stores.wire.errors import Disconnected as Disconnected
from lakeshift.stores.wire.errors import Stalled as Stalled
from lakeshift.stores.wire.errors import WireError as WireError
from lakeshift.stores.wire.errors import _DeadIdle as _DeadIdle
from lakeshift.stores.wire.errors import connect_reason as connect_reason
from lakeshift.stores.wire.errors import tls_stalled as tls_stalled
from lakeshift.stores.wire.pool import _IDEMPOTENT as _IDEMPOTENT
from lakeshift.stores.wire.pool import Pool as Pool
from lakeshift.stores.wire.pool import _proxy_note as _proxy_note
from lakeshift.stores.wire.response import Response as Response
