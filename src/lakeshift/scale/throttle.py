"""Fleet-wide throttling: when one worker is throttled (429, 503 SlowDown, ServerBusy), every
worker of the run backs off.

Throttling is the storage account's answer to the fleet as a whole, not to one process:
when only the worker that met it halved its in-flight requests, the others would go on at
full speed into the same limit.  A Dask ``Variable`` per run (``lakeshift-throttle-RUN``,
made by the driver) carries the latest throttling: which endpoint, which worker, a
sequence number.  Each worker's :class:`FleetThrottle` publishes its own (at most once per
``poll_s``: a burst is one signal) and polls the variable every ``poll_s``; throttling met
by another worker halves this worker's limiter for that endpoint
(``Pacing.throttled_elsewhere``, AIMD's cut, once per cooldown).  Dask calls happen on the
relay's own thread: never on a worker's event loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from lakeshift.engine.events import Event, Throttled
from lakeshift.engine.limiter import Pacing
from lakeshift.scale.cluster import distributed_module

#: How often a worker looks for (and sends) throttling signals, in seconds.
POLL_S = 0.25


def variable_name(run_id: int) -> str:
    return f"lakeshift-throttle-{run_id}"


def create_channel(client: Any, run_id: int) -> Any:
    """The driver's side: the run's variable, empty (deleted at the run's end)."""
    var = distributed_module().Variable(variable_name(run_id), client=client)
    var.set(None)
    return var


class FleetThrottle:
    """One worker's relay between its ``Pacing`` and the run's variable."""

    def __init__(self, channel: Any, owner: str, poll_s: float = POLL_S) -> None:
        self.channel = channel
        self.owner = owner
        self.poll_s = poll_s
        self.sent = 0
        self.heard = 0
        self._outbox: str | None = None  # the endpoint last throttled here, not sent yet
        self._seen: Any = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def for_run(run_id: int, owner: str, poll_s: float = POLL_S) -> FleetThrottle:
        """In a Dask task: the relay of the run's variable."""
        distributed = distributed_module()
        return FleetThrottle(distributed.Variable(variable_name(run_id),
                                                  client=distributed.get_client()),
                             owner, poll_s)

    def throttled_here(self, event: Event) -> None:
        """An EventBus subscriber: this worker's Throttled events, to be sent."""
        if isinstance(event, Throttled):
            with self._lock:
                self._outbox = event.endpoint

    def start(self, pacing: Pacing, loop: asyncio.AbstractEventLoop) -> None:
        def apply(endpoint: str) -> None:
            pacing.throttled_elsewhere(endpoint)

        def relay() -> None:
            # Throttling signalled before this worker started is heard too: the variable
            # is the run's, so the account is still busy with this fleet.
            while not self._stop.wait(self.poll_s):
                try:
                    self._exchange(lambda ep: loop.call_soon_threadsafe(apply, ep))
                except Exception:  # a scheduler out of reach: the run notices it itself
                    continue

        self._thread = threading.Thread(target=relay, name="lakeshift-throttle",
                                        daemon=True)
        self._thread.start()

    def _exchange(self, back_off: Any) -> None:
        with self._lock:
            endpoint, self._outbox = self._outbox, None
        if endpoint is not None:
            self.sent += 1
            value = (self.owner, self.sent, endpoint)
            self.channel.set(value)
            self._seen = value
        value = self.channel.get(timeout=5)
        if value is not None and value != self._seen:
            self._seen = value
            owner, _, endpoint = value
            if owner != self.owner:
                self.heard += 1
                back_off(endpoint)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
