"""A helper process for local → local copies of many files: the per-file disk work
(``reads._copy_file``: read, MD5, check, write, time, record, link) runs in a child
process with its own interpreter lock, beside the event loop, instead of in worker threads
that take the lock from it around every system call; in the child two threads copy
(``THREADS``), so one file's system calls run while the other's Python does.

Measured on 20,000 × 64 B files: with worker threads the loop and the disk work took
turns (the worker got the lock back only when the loop went idle), so the wall time was
their sum; in a child they run at the same time on two cores.

Requests go to the child's stdin and results come back on its stdout as length-prefixed
pickled batches (of plain tuples, between two processes of this same program).  The loop
never blocks on the child: writes are non-blocking (buffered, then finished when the pipe
is writable again) and results are read when the pipe is readable; a disk that stalls
holds back the copies sent to the child, not the loop.  Each file is still written whole
to an unnamed (or hidden) temporary file and linked or renamed into place by the child,
with the same record, mtime and errors (rebuilt here from their kind and text) as in a
worker thread.  If the child ends, what it had not answered fails as a TransientError
(retried) and the store goes on with its worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import subprocess
import sys
from typing import Any

from lakeshift import errors
from lakeshift.errors import LakeshiftError, TransientError

_HEAD = 4
#: The child's program.  ``lakeshift`` stands in there as a bare package (its path only):
#: its ``__init__`` imports the whole public API (the engine, the CLI's typer, ...), 0.25 s
#: of CPU of which the child needs none (it imports what reads.py does: ~0.08 s here, where
#: store.py's imports took ~0.12 s).
_CHILD = """\
import sys, types
package = types.ModuleType("lakeshift")
package.__path__ = {path!r}
sys.modules["lakeshift"] = package
from lakeshift.stores.local.helper import main
main()
"""
#: Results are sent back every this many files (sooner results keep the loop busy while
#: the child works on the rest of a batch).
_ANSWER_EVERY = 8


class Helper:
    """The parent's side: one child process, for one event loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._proc = subprocess.Popen(
            [sys.executable, "-c",
             _CHILD.format(path=list(sys.modules["lakeshift"].__path__))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in = self._proc.stdin.fileno()
        self._out = self._proc.stdout.fileno()
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._next = 0
        self._batch: list[tuple[int, tuple[Any, ...]]] = []
        self._unsent = bytearray()
        self._received = bytearray()
        self._writing = False
        #: The child ended (or was closed): the store uses its worker threads again.
        self.broken = False
        #: The child has started (its first, empty, answer): until then the store goes on
        #: with its worker threads (a child takes ~0.2 s to import; copies sent to it
        #: would wait that long, and with them every engine worker).
        self.ready = False
        try:
            os.set_blocking(self._in, False)
            os.set_blocking(self._out, False)
            self._loop.add_reader(self._out, self._readable)
        except BaseException:  # (a loop without add_reader for pipes): no helper after all
            self._proc.kill()
            self._proc.wait()
            raise

    def copy(self, args: tuple[Any, ...]) -> asyncio.Future[bytes]:
        """``reads._copy_file(*args)`` in the child; its MD5 or its error."""
        fut: asyncio.Future[bytes] = self._loop.create_future()
        if self.broken:
            fut.set_exception(TransientError("the local copy helper process ended"))
            return fut
        rid = self._next
        self._next += 1
        self._pending[rid] = fut
        if not self._batch:
            self._loop.call_soon(self._flush)
        self._batch.append((rid, args))
        return fut

    def _flush(self) -> None:
        if not self._batch or self.broken:
            return
        body = pickle.dumps(self._batch, protocol=pickle.HIGHEST_PROTOCOL)
        self._batch = []
        self._unsent += len(body).to_bytes(_HEAD, "big") + body
        if not self._writing:
            self._writable()

    def _writable(self) -> None:
        try:
            while self._unsent:
                n = os.write(self._in, self._unsent)
                del self._unsent[:n]
        except BlockingIOError:
            if not self._writing:
                self._writing = True
                self._loop.add_writer(self._in, self._writable)
            return
        except OSError:
            self._end()
            return
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._in)

    def _readable(self) -> None:
        try:
            data = os.read(self._out, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end()
            return
        self._received += data
        try:
            self._answered()
        except Exception:  # a garbled answer: nothing more from this child is trusted
            self._proc.kill()
            self._end()

    def _answered(self) -> None:
        while len(self._received) >= _HEAD:
            n = int.from_bytes(self._received[:_HEAD], "big")
            if len(self._received) < _HEAD + n:
                break
            results = pickle.loads(self._received[_HEAD:_HEAD + n])
            del self._received[:_HEAD + n]
            self.ready = True
            for rid, ok, value in results:
                fut = self._pending[rid]
                if not fut.cancelled():
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(_rebuilt(value))
                # Only once answered: an answer that cannot be rebuilt leaves it to _end.
                del self._pending[rid]

    def _end(self) -> None:
        """The child is gone: what it did not answer fails (TransientError: retried)."""
        if self.broken:
            return
        self.broken = True
        self._loop.remove_reader(self._out)
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self._in)
        code = self._proc.poll()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(TransientError(
                    "the local copy helper process ended"
                    + (f" (exit code {code})" if code is not None else "")))
        self._pending.clear()

    async def close(self) -> None:
        """Closes the child's input (it finishes what it was sent, then ends) and waits for
        it; one that does not end within 10 s is killed.  A child that has not started yet
        was sent nothing: it is killed at once (a copy that ends while its helper still
        imports does not wait ~0.2 s, or more on a busy machine, for it)."""
        unused = not self.ready and not self._pending and not self._unsent
        self._end()
        if unused:
            self._proc.kill()
        with contextlib.suppress(OSError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        try:
            await asyncio.to_thread(self._proc.wait, 10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            await asyncio.to_thread(self._proc.wait)
        assert self._proc.stdout is not None
        self._proc.stdout.close()


def _failure(e: Exception) -> tuple[Any, ...]:
    """A file's error in the child, as sent to the parent (``_rebuilt`` makes it again)."""
    if isinstance(e, LakeshiftError):
        return (type(e).__name__, str(e))
    if isinstance(e, OSError):
        return ("OSError", e)  # (pickled whole: its class, errno, both file names)
    return ("Exception", repr(e))


def _rebuilt(value: tuple[Any, ...]) -> BaseException:
    """An error the child sent (``_failure``), as the exception the worker thread raises."""
    if value[0] == "OSError" and isinstance(value[1], OSError):
        return value[1]
    cls = getattr(errors, value[0], None)
    if isinstance(cls, type) and issubclass(cls, LakeshiftError):
        try:
            return cls(value[1])
        except TypeError:  # a class made with more than its message
            pass
    return errors.InternalError(f"local copy helper: {value[0]}: {value[1]}")


def _read_exact(fd: int, n: int) -> bytes:
    parts = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return b""
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _send(fd: int, results: list[tuple[int, bool, Any]]) -> None:
    body = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(len(body).to_bytes(_HEAD, "big") + body)
    while data:
        data = data[os.write(fd, data):]


def main() -> None:
    """The child: copies what stdin asks for, answers on stdout, ends at end of input."""
    from lakeshift.stores.local.reads import _copy_file

    # Ctrl-C reaches the whole process group: the parent decides when this child ends
    # (it closes our input).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Answers go to the stdout we were given, anything else printed goes to stderr: a
    # stray print must not garble the answers.
    answers = os.dup(1)
    os.dup2(2, 1)
    _serve(0, answers, _copy_file)


#: The child's copying threads.  Its files' system calls (create, write, xattr, time,
#: link: ~2/3 of its CPU on 64 B files) release the interpreter lock, so with two threads
#: one file's kernel work runs beside the other's Python, on the second core: with one
#: the child was the copy's critical path (20,000 x 64 B: child 1.5-1.7 s of CPU in one
#: thread, the parent's loop 0.6-0.9 s); 0.77 s + 0.75 s in two.
THREADS = 2


def _serve(inp: int, answers: int, copy: Any, threads: int = THREADS) -> None:
    """Batches of (id, args) from ``inp`` copied by ``copy(*args)`` in ``threads`` threads,
    in the order they came, (id, ok, MD5 or error) sent back on ``answers`` every
    ``_ANSWER_EVERY`` files of a thread, or when no file waits; ends at end of input once
    every file sent has been answered."""
    import queue
    import threading

    _send(answers, [])  # started
    todo: queue.SimpleQueue[tuple[int, tuple[Any, ...]] | None] = queue.SimpleQueue()
    sending = threading.Lock()

    def send(done: list[tuple[int, bool, Any]]) -> None:
        with sending:
            _send(answers, done)

    def work() -> None:
        done: list[tuple[int, bool, Any]] = []
        while True:
            if done and todo.empty():
                send(done)
                done = []
            item = todo.get()
            if item is None:
                break
            rid, args = item
            try:
                done.append((rid, True, copy(*args)))
            except Exception as e:  # the file's error: the child goes on
                done.append((rid, False, _failure(e)))
            if len(done) >= _ANSWER_EVERY:
                send(done)
                done = []
        if done:
            send(done)

    workers = [threading.Thread(target=work, name="lakeshift-copy", daemon=True)
               for _ in range(threads)]
    for t in workers:
        t.start()
    while True:
        head = _read_exact(inp, _HEAD)
        if not head:
            break
        body = _read_exact(inp, int.from_bytes(head, "big"))
        if not body:
            break
        for item in pickle.loads(body):
            todo.put(item)
    for _ in workers:
        todo.put(None)
    for t in workers:
        t.join()


if __name__ == "__main__":
    main()
