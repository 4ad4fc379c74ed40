"""Progress display: a rich bar on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from lakeshift.cli.sizes import human_bytes
from lakeshift.cli.text import count
from lakeshift.engine.events import (
    BytesMoved,
    Event,
    Listed,
    ListingDone,
    ObjectDone,
    ObjectStarted,
    Subscriber,
)
from lakeshift.errors import UsageError


class PlainProgress:
    """One line every ``interval`` seconds, for logs and CI."""

    #: (EventBus.ignored: the engine need not build an ObjectStarted per object for it.)
    ignores = frozenset({ObjectStarted})

    def __init__(self, stream: TextIO = sys.stderr, interval: float = 5.0) -> None:
        self.stream = stream
        self.interval = interval
        self.started = time.monotonic()
        self.last = self.started
        self.listed = self.done = self.failed = 0
        self.bytes = 0
        self.listing_done = False
        self.next_pass = False
        self.holding = False

    def new_pass(self) -> None:
        """A pass of a schedule ended: the next event starts the next pass's own counts
        (until then the line stands as the pass left it)."""
        self.next_pass = True

    def __call__(self, event: Event) -> None:
        if self.next_pass:
            self.next_pass = False
            self.started = time.monotonic()
            self.listed = self.done = self.failed = self.bytes = 0
            self.listing_done = False
        if isinstance(event, Listed):
            self.listed += event.count
        elif isinstance(event, ListingDone):
            self.listing_done = True
        elif isinstance(event, BytesMoved):
            self.bytes += event.nbytes
        elif isinstance(event, ObjectDone):
            self.done += 1
            self.failed += event.outcome == "failed"
        if not self.holding:
            self.maybe_line()

    def maybe_line(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.line(now)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Events that arrive together (a Dask run's progress, read from the control DB
        every second): the line, when one is due, shows them all, not the first few."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            self.maybe_line()

    def line(self, now: float) -> None:
        rate = self.bytes / max(now - self.started, 1e-9)
        # While the listing goes on the total is a lower bound: "12/40+ objects".  A pass
        # given its keys (--files-from, --inventory) lists nothing: no total ("1/0+").
        if self.listed < self.done:
            done = count(self.done, "object")
        else:
            done = f"{self.done}/" + (count(self.listed, "object") if self.listing_done
                                      else f"{self.listed}+ objects")
        print(f"progress: {done}, {human_bytes(self.bytes)} "
              f"({human_bytes(rate)}/s), {self.failed} failed", file=self.stream, flush=True)

    def close(self) -> None:
        return None


def _done_of_total(task: Any) -> str:
    """``12/40 objects`` on the objects row, ``1.2 MiB/3.4 MiB`` on the bytes row: the
    summary's units (binary), never a raw byte count."""
    total = task.total
    if task.fields.get("unit") == "bytes":
        return human_bytes(task.completed) + (f"/{human_bytes(total)}" if total else "")
    done = int(task.completed)
    return (f"{done}/{count(int(total), 'object')}" if total is not None
            else count(done, "object"))


def _rate(task: Any) -> str:
    """MiB/s like the summary's throughput; objects per second on the objects row."""
    speed = task.finished_speed or task.speed
    if speed is None:
        return "?"
    if task.fields.get("unit") == "bytes":
        return f"{human_bytes(speed)}/s"
    return f"{speed:.1f} objects/s"


class RichProgress:
    """A live bar: objects and bytes, rate and ETA (once the listing is complete)."""

    ignores = frozenset({ObjectStarted})  # (as PlainProgress)

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Computed(ProgressColumn):
            """A column whose text is a function of the task (rich is imported late)."""

            def __init__(self, render: Any) -> None:
                super().__init__()
                self.render_task = render

            def render(self, task: Any) -> Text:
                return Text(self.render_task(task))

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), Computed(_done_of_total),
            Computed(_rate), TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False)
        self.files: Any = self.progress.add_task("objects", total=None, unit="objects")
        self.data: Any = self.progress.add_task("bytes  ", total=None, unit="bytes")
        self.listed = 0
        self.listed_bytes = 0
        self.listing_done = False
        self.next_pass = False
        self.progress.start()

    def new_pass(self) -> None:
        """A pass of a schedule ended: the next event starts the next pass's own bars (until
        then they stand as the pass left them)."""
        self.next_pass = True

    def __call__(self, event: Event) -> None:
        p = self.progress
        if self.next_pass:
            self.next_pass = False
            self.listed = self.listed_bytes = 0
            self.listing_done = False
            p.reset(self.files, total=None)
            p.reset(self.data, total=None)
        if isinstance(event, Listed):
            self.listed += event.count
            self.listed_bytes += event.nbytes
            if self.listing_done:
                # A listing done, another going on (a run's next partition, a fleet's
                # counts read later): the totals grow with it.
                p.update(self.files, total=self.listed)
                p.update(self.data, total=self.listed_bytes)
        elif isinstance(event, ListingDone):
            self.listing_done = True
            p.update(self.files, total=self.listed)
            p.update(self.data, total=self.listed_bytes)
        elif isinstance(event, BytesMoved):
            p.advance(self.data, event.nbytes)
        elif isinstance(event, ObjectDone):
            p.advance(self.files, 1)
            if event.outcome != "copied":
                # Skipped and failed objects move no bytes: take them off the byte total.
                self.listed_bytes -= event.size
                if self.listing_done:
                    p.update(self.data, total=self.listed_bytes)

    def close(self) -> None:
        self.progress.stop()


def make_progress(mode: str) -> PlainProgress | RichProgress | None:
    if mode == "none":
        return None
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return RichProgress()
    return PlainProgress()


def check_progress_mode(mode: str) -> None:
    if mode not in ("auto", "bar", "plain", "none"):
        raise UsageError(f"--progress {mode!r}: use auto, bar, plain or none")


def new_pass(subscribers: list[Subscriber]) -> None:
    """``sync --every`` / ``--cron``: each pass's progress is its own, not the sum of all
    passes so far."""
    for s in subscribers:
        if isinstance(s, PlainProgress | RichProgress):
            s.new_pass()


@contextmanager
def progress_subscribers(mode: str, as_json: bool) -> Iterator[list[Subscriber]]:
    """The display for ``--progress`` as event subscribers (none under ``--json`` unless
    asked for), closed when the command's work ends."""
    display = make_progress("none" if as_json and mode == "auto" else mode)
    try:
        yield [display] if display is not None else []
    finally:
        if display is not None:
            display.close()
