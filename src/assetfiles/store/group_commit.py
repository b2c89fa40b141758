"""Group commit: the catalog writes that arrive together are made in one transaction.

Under a fleet's small uploads every request ends with a short catalog write (the content's rows,
then its audit row). Each write alone costs a worker-thread hop, a transaction and a commit, and
on SQLite all of them queue for the one write lock, each holder waiting again for the GIL between
statements while the other requests' threads run: 16 concurrent uploads spent about 20 ms per
write waiting, for about 0.2-1.5 ms of work (bench/README.md, "Small uploads").

So writes that can be grouped are submitted here instead. While one transaction runs, the writes
that arrive queue up; the next transaction takes them all (up to :data:`MOST_PER_TRANSACTION`)
and hands each :class:`BatchWriter` the arguments of all its queued writes at once, so that, for
example, twenty contents become one multi-row insert, one usage charge and one change-log advance.
A caller's write is durable when its ``submit`` returns, exactly as before: nothing is answered
before the transaction that holds it commits.

If the grouped transaction fails, it is rolled back and each write is retried alone in its own
transaction, in the order submitted, so that one write's error (an organization over its quota, a
duplicate id) is raised to its own caller and the others are unaffected.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

A = TypeVar("A")
R = TypeVar("R")

#: A function that makes many writes of one kind within the caller's transaction, given each
#: write's argument, and returns each write's result in the same order.
BatchWriter = Callable[[Connection, Sequence[A]], Sequence[R]]

#: bounds one transaction (and so the wait of the writes queued behind it)
MOST_PER_TRANSACTION = 256


@dataclass
class _Write(Generic[A, R]):
    writer: BatchWriter[A, R]
    argument: A
    future: asyncio.Future[R]
    #: set in the thread: the result, or the error the write raised alone
    result: Any = None
    error: Exception | None = None


class GroupCommit:
    """Queues the catalog writes submitted on an event loop and makes them in shared transactions,
    one transaction at a time, on a thread of its own: outside anyio's worker threads and the
    organizations' shares of them (store/threads.py), so a write never waits for a thread behind
    reads, and no write waits behind more than one transaction of others."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queued: list[_Write[Any, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")

    async def submit(self, writer: BatchWriter[A, R], argument: A) -> R:
        """Make one write, grouped with those submitted meanwhile; its result once committed.

        A cancelled caller still waits until its write is committed or failed (one transaction,
        bounded), then sees the cancellation: it never goes on while its write is undecided."""
        loop = asyncio.get_running_loop()
        write: _Write[A, R] = _Write(writer, argument, loop.create_future())
        self._queued.append(write)
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush_queued())
        await _settled(write.future)
        return write.future.result()

    def close(self) -> None:
        """Stop the thread once the transaction in progress, if any, is done."""
        self._thread.shutdown(wait=True)

    def _write_batch(self, batch: list[_Write[Any, Any]]) -> None:
        """All of ``batch`` in one transaction; if that fails, each write in its own."""
        if len(batch) > 1:
            try:
                with self.engine.begin() as conn:
                    results = {id(write): result for write, result in _grouped_writes(conn, batch)}
            except Exception:  # noqa: S110 - each write is retried alone below and reports its own error
                pass
            else:
                for write in batch:
                    write.result = results[id(write)]
                return
        for write in batch:
            try:
                with self.engine.begin() as conn:
                    (write.result,) = write.writer(conn, [write.argument])
            except Exception as exc:
                write.error = exc

    async def _flush_queued(self) -> None:
        """Write what is queued, a transaction at a time, until nothing is; cancelled, it still
        empties the queue (its writes' callers are waiting), then sees the cancellation."""
        loop = asyncio.get_running_loop()
        while self._queued:
            batch = self._queued[:MOST_PER_TRANSACTION]
            del self._queued[:MOST_PER_TRANSACTION]
            written = loop.run_in_executor(self._thread, self._write_batch, batch)
            written.add_done_callback(functools.partial(_settle, batch))
            await _settled(written)


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done, however often the waiting task is cancelled meanwhile; then
    raise the cancellation, if there was one."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:  # noqa: S110 - the future's own outcome is read by the caller
            pass
    if cancelled:
        raise asyncio.CancelledError


def _settle(batch: list[_Write[Any, Any]], written: asyncio.Future[None]) -> None:
    """Give each write of a finished transaction its outcome."""
    failure = written.exception()  # the thread could not run the transaction at all
    for write in batch:
        if write.future.done():
            continue
        error = failure or write.error
        if error is not None:
            write.future.set_exception(error)
        else:
            write.future.set_result(write.result)


def _grouped_writes(conn: Connection, batch: list[_Write[Any, Any]]) -> list[tuple[_Write[Any, Any], Any]]:
    """Run each writer once, with the arguments of all its writes in ``batch`` (in order)."""
    by_writer: dict[BatchWriter[Any, Any], list[_Write[Any, Any]]] = {}
    for write in batch:
        by_writer.setdefault(write.writer, []).append(write)
    done: list[tuple[_Write[Any, Any], Any]] = []
    for writer, writes in by_writer.items():
        results = writer(conn, [write.argument for write in writes])
        if len(results) != len(writes):
            raise RuntimeError(f"{writer.__qualname__}: {len(results)} results for {len(writes)} writes")
        done.extend(zip(writes, results, strict=True))
    return done
