"""The change bell: this process's "the change log has moved" signal, for long-polls.

``Env.write`` rings it with the last sequence a committed transaction flushed (``committed``,
which also tells the server's other API workers, ``api.siblings``); anything else
that learns the log's sequence (the agent API's poll of ``feed.last_seq``, which sees other
workers and other servers) rings it too. ``wait(after, timeout)`` is awaited on an asyncio
loop: it holds no thread and no database connection, and returns as soon as the bell has heard
of a sequence greater than ``after`` (at once if it already has), or when ``timeout`` expires,
or when the bell is closed (the process is stopping). It returns the highest sequence heard.

Thread-safe: ``ring`` and ``close`` may be called from any thread (writes run in the thread
pool) and from signal handlers; waiters are woken on their own loop (``call_soon_threadsafe``).
The bell only says "something may have changed": a waiter re-reads what it cares about.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class ChangeBell:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = set()
        self.on_commit: Callable[[int], None] | None = None

    @property
    def seq(self) -> int:
        """The highest sequence heard so far (0 before any)."""
        return self._seq

    @property
    def closed(self) -> bool:
        return self._closed

    def committed(self, seq: int) -> None:
        """This process committed ``seq``: ring, and tell ``on_commit`` (the other API workers of
        this server, ``api.siblings``), if set."""
        self.ring(seq)
        tell = self.on_commit
        if tell is not None:
            tell(seq)

    def ring(self, seq: int) -> None:
        with self._lock:
            if seq <= self._seq:
                return
            self._seq = seq
            waiters, self._waiters = self._waiters, set()
        self._wake_all(waiters)

    def close(self) -> None:
        """Wake every waiter, now and from now on: the process is stopping."""
        with self._lock:
            self._closed = True
            waiters, self._waiters = self._waiters, set()
        self._wake_all(waiters)

    async def wait(self, after: int, timeout: float) -> int:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        entry = (loop, future)
        with self._lock:
            if self._seq > after or self._closed:
                return self._seq
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(future, max(timeout, 0.0))
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(entry)
        return self._seq

    @staticmethod
    def _wake_all(waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future]]) -> None:
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:  # that loop is closed: nobody is waiting on it any more
                pass
