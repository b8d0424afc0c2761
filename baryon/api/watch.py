"""Long-polls on the change log: waiting on the event loop, holding no thread and no connection.

``SeqWatch.wait_past(seq, timeout)`` returns once the process's ``ChangeBell`` has heard of a
sequence greater than ``seq`` (or on timeout, or when the process stops). Two sources ring it:
this process's own commits (``Env.write``), at once; and a poll of ``feed.last_seq`` every
``POLL_INTERVAL`` seconds, which is how the commits of other worker processes and other servers
are seen. There is one poll per event loop, running only while somebody waits: its cost does not
grow with the number of waiting agents.

``until_changed`` is the long-poll itself (see its doc), over any kind of view that carries the
sequence it reflects and an etag (``View``: the Open vSwitch agent's ``HostView``, the DHCP agent's
``DhcpView``, the L3 agent's ``L3View``); views are asked for in the thread pool, from the
process's ``service.viewcache``, which computes one only when a change concerns it.
``stop_waits_on_exit_signals`` makes SIGTERM/SIGINT end every long-poll at once, so that a server
with agents watching it stops in well under a second instead of waiting out their polls
(uvicorn lets running requests finish before it stops).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool

from baryon.service.bell import ChangeBell

LOG = logging.getLogger(__name__)

POLL_INTERVAL = 0.25  # seconds between two reads of the change log's sequence, while anybody waits
CHECK_INTERVAL = 1.0  # seconds between two checks that a long-polling client is still connected
MAX_WAIT = 60.0


class View(Protocol):
    @property
    def seq(self) -> int: ...  # the change-log sequence the view reflects at least

    @property
    def etag(self) -> str: ...  # equal etags: equal views


V = TypeVar("V", bound=View)


class SeqWatch:
    def __init__(self, bell: ChangeBell, read_seq: Callable[[], int], interval: float = POLL_INTERVAL):
        self.bell = bell
        self.read_seq = read_seq
        self.interval = interval
        self._waiting = 0
        self._poller: asyncio.Task | None = None

    async def wait_past(self, seq: int, timeout: float) -> int:
        """The highest sequence heard, once it is greater than ``seq`` or after ``timeout`` seconds."""
        self._waiting += 1
        try:
            self._ensure_poller()
            return await self.bell.wait(seq, timeout)
        finally:
            self._waiting -= 1

    def _ensure_poller(self) -> None:
        loop = asyncio.get_running_loop()
        if self._poller is None or self._poller.done() or self._poller.get_loop() is not loop:
            self._poller = loop.create_task(self._poll())

    async def _poll(self) -> None:
        while self._waiting > 0 and not self.bell.closed:
            try:
                self.bell.ring(await run_in_threadpool(self.read_seq))
            except Exception:  # noqa: BLE001 - the database may be briefly away: keep polling
                LOG.warning("cannot read the change log's sequence", exc_info=True)
            await asyncio.sleep(self.interval)


async def until_changed(compute: Callable[[int], V], etag: str | None, wait: float, watch: SeqWatch,
                        disconnected: Callable[[], Awaitable[bool]]) -> V:
    """The view (``compute(latest)``, run in the thread pool: the view as of change-log sequence
    ``latest`` at least) once its etag differs from ``etag``, or the view of the moment when
    ``wait`` seconds have passed without that.

    The log's sequence is read once at the start (and rung on the bell); then the view is asked
    for again only when the log has moved past the sequence of the last one. ``compute`` decides
    what that costs (``service.viewcache``: nothing, unless a change concerns the view). A move of
    the log that leaves the view as it was does not end the wait: the agent has nothing to do and
    nothing to report (the server counts it current while its view keeps the etag it realised,
    ``HostViews.realised``), so a change costs nothing for the agents it does not concern. The
    view returned at the end of the wait is asked for then, as of the latest sequence heard, so
    an answer "unchanged" is true up to that view's ``seq``. Gives up early (returning the last
    view) when the client has gone or the process is stopping.
    """
    latest = await run_in_threadpool(watch.read_seq)
    watch.bell.ring(latest)
    view = await run_in_threadpool(compute, latest)
    if view.etag != etag or wait <= 0:
        return view
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    seen = view.seq
    while (remaining := deadline - loop.time()) > 0 and not watch.bell.closed:
        latest = await watch.wait_past(seen, min(remaining, CHECK_INTERVAL))
        if await disconnected():
            return view
        if latest > seen:
            view = await run_in_threadpool(compute, latest)
            if view.etag != etag:
                return view
            seen = max(view.seq, latest)
    return await run_in_threadpool(compute, max(watch.bell.seq, seen))


def stop_waits_on_exit_signals(bell: ChangeBell) -> Callable[[], None]:
    """On SIGTERM and SIGINT, close ``bell`` (on the running loop), then call the handlers installed
    before (uvicorn's). Returns the undo. Called on the loop; only the main thread may set signal
    handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()

    def close_soon() -> None:
        # NOTE: not bell.close() here: the handler may interrupt the loop thread inside the bell's lock.
        try:
            loop.call_soon_threadsafe(bell.close)
        except RuntimeError:  # the loop is closed: nothing waits any more
            pass

    installed: dict[int, tuple[Any, Any]] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def chained(signum: int, frame: Any, _previous: Any = previous) -> None:
            close_soon()
            _previous(signum, frame)

        signal.signal(sig, chained)
        installed[sig] = (chained, previous)

    def undo() -> None:
        for sig, (chained, previous) in installed.items():
            if signal.getsignal(sig) is chained:
                signal.signal(sig, previous)

    return undo
