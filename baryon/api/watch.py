"""Long-polls on the change log: waiting on the event loop, holding no thread and no connection.

``SeqWatch.wait_past(seq, timeout)`` returns once the process's ``ChangeBell`` has heard of a
sequence greater than ``seq`` (or on timeout, or when the process stops). Two sources ring it:
this process's own commits (``Env.write``), at once; and a poll of ``feed.last_seq`` every
``POLL_INTERVAL`` seconds, which is how the commits of other worker processes and other servers
are seen. There is one poll per event loop, running only while somebody waits: its cost does not
grow with the number of waiting agents.

``until_changed`` is the long-poll itself (see its doc), over any kind of view that carries the
sequence it reflects and an etag (``View``: the Open vSwitch agent's ``HostView``, the DHCP agent's
``DhcpView``); views are computed in the thread pool.
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
SEQ_ANSWER_AFTER = 1.0  # seconds: an unchanged view is answered this soon after the log moved


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


async def until_changed(compute: Callable[[], V], etag: str | None, wait: float, watch: SeqWatch,
                        disconnected: Callable[[], Awaitable[bool]], known_seq: int | None = None) -> V:
    """The view (``compute``, run in the thread pool) once its etag differs from ``etag``, or the
    view of the moment when ``wait`` seconds have passed without that.

    A view is recomputed only when the change log has moved past the sequence of the last one
    computed. When the log moved but the view did not change, the wait ends early, at
    ``SEQ_ANSWER_AFTER`` seconds after the request began, so that agents learn (and report) that
    they are current to the new sequence. The view returned at the end of the wait is computed
    then, so an answer "unchanged" is true up to that view's ``seq``. Gives up early (returning the last view) when the client
    has gone or the process is stopping.

    ``known_seq``: the sequence the client last heard of (its previous answer's). When the log has
    moved past it already, between that answer and this request, the wait ends early as well: else
    the client would learn of that move only when a later change or the whole wait ends.
    """
    view = await run_in_threadpool(compute)
    if view.etag != etag or wait <= 0:
        return view
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + wait
    seen = view.seq
    if known_seq is not None and seen > known_seq:
        deadline = min(deadline, started + SEQ_ANSWER_AFTER)
    while (remaining := deadline - loop.time()) > 0 and not watch.bell.closed:
        latest = await watch.wait_past(seen, min(remaining, CHECK_INTERVAL))
        if await disconnected():
            return view
        if latest > seen:
            view = await run_in_threadpool(compute)
            if view.etag != etag:
                return view
            seen = max(view.seq, latest)
            # NOTE: the log moved without changing this view: say so within SEQ_ANSWER_AFTER, so
            # that the agent can report the sequence as realised (a client waiting for a change to
            # reach every host then waits seconds, not a whole long-poll), at most once a second.
            deadline = min(deadline, started + SEQ_ANSWER_AFTER)
    return await run_in_threadpool(compute)


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
