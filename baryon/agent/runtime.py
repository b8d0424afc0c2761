"""The agent runtime: watch the server, reconcile the host, report back. One loop, level-triggered.

Three threads, one direction of data:

- the watcher long-polls the host's view (``ServerClient.watch``) and stores the newest one in
  ``Shared`` (the cache), then rings the bell; it retries with backoff when the server is away,
  keeping the last view (the host is left as it is, traffic flows);
- the heartbeat registers the agent and reports every ``report_interval`` seconds; when the
  server answers again after failures (a network cut, a server restart) it also fetches the view
  at once (``_catch_up``), not waiting for the watch's request that the cut left hanging;
- the reconcile loop (the caller's thread) waits for the bell (or the periodic resync), takes the
  newest view, and runs the agent's one ``reconcile`` path: start-up, changes, host events (e.g. a
  VIF plugged, seen by the OVSDB monitor) and resyncs all go through it. Bursts coalesce into one
  run. Errors are logged and retried with backoff by the loop; they are never swallowed into a
  second code path. After a successful run it reports port status changes, the change-log
  sequence it has realised and the etag of the view it realised (with which the server counts it
  current while no change concerns it, without hearing from it).

Metrics (``agent.metrics``, label ``kind``): each run's duration and outcome, heartbeats sent,
views received, the realised sequence reported.

An agent kind implements ``Reconciler``. ``stop()`` (SIGTERM) ends the loop within a second.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from baryon.agent import metrics
from baryon.agent.client import ServerClient, ServerError, Watched

LOG = logging.getLogger("baryon.agent")
WATCH_WAIT = 25.0  # seconds a watch request may wait on the server
RESYNC_INTERVAL = 30.0  # a full reconcile at least this often, even without any event
BACKOFF = (0.2, 0.5, 1.0, 2.0, 5.0)
STATUS_SEQ_INTERVAL = 1.0  # report a realised sequence alone (no port change) at most this often


REPORTED_KINDS = ("ports", "routers", "floatingips")


@dataclass(frozen=True)
class Outcome:
    """What a reconcile run achieved on this host: each port's status as wired (OVS agent), of
    which the runtime reports the changes since its last report; the routers'
    ``{"status": "ACTIVE" | "ERROR", "reason": why}`` and the floating IPs' status ("ACTIVE" |
    "ERROR") as built (L3 agent) where they differ from what its view says the server holds:
    reported as they are (level triggered: the server's answer changes the view, and the next
    run finds nothing to report). Each kind is reported as the agent API's status body names it
    (``REPORTED_KINDS``)."""

    port_status: dict[str, str]
    routers: dict[str, dict[str, str]] = field(default_factory=dict)
    floatingips: dict[str, str] = field(default_factory=dict)

    def by_kind(self) -> dict[str, dict[str, Any]]:
        return {"ports": self.port_status, "routers": self.routers, "floatingips": self.floatingips}


class Reconciler(Protocol):
    agent_type: str
    binary: str
    topic: str
    view_kind: str  # the agent API's view: "ovs" (HostView), "dhcp" (DhcpView) ...

    def parse_view(self, data: dict) -> Any:  # noqa: ANN401 - the kind's view type
        """The view from the agent API's JSON."""

    def start(self, wake: Callable[[], None]) -> None:
        """Connect to the host's switch; call ``wake()`` whenever the host changes under us."""

    def stop(self) -> None: ...

    def configurations(self) -> dict: ...

    def reconcile(self, view: Any) -> Outcome: ...  # noqa: ANN401


@dataclass
class Shared:
    """State the threads share, under one lock: the newest view and the sequence it is current to."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    bell: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)
    view: Any = None  # the newest view (its kind's type), None until the first arrives
    seq: int = 0  # the change-log sequence the view is known current to
    etag: str = ""  # the etag of the newest answer: what the next watch asks from
    version: int = 0  # answers published so far

    def publish(self, view: Any, seq: int, etag: str = "", asked_at: int | None = None) -> None:  # noqa: ANN401
        """Store an answer of the server. ``asked_at``: ``version`` when its request was made; an
        answer overtaken by a newer one published since (a catch-up after a reconnection, while the
        watch's own request was still on its way) is dropped, so the view never goes back in time."""
        with self.lock:
            overtaken = asked_at is not None and asked_at != self.version
            if overtaken and seq < self.seq:
                return
            if view is not None:
                self.view = view
            if etag and (view is not None or not overtaken):  # "unchanged since" an etag no longer ours
                self.etag = etag
            self.seq = max(self.seq, seq)
            self.version += 1
        self.bell.set()

    def asking(self) -> tuple[str, int]:
        """The etag to watch from, and the ``version`` to give back to ``publish`` with the answer."""
        with self.lock:
            return self.etag, self.version

    def take(self) -> tuple[Any, int]:
        with self.lock:
            return self.view, self.seq


@dataclass
class Reported:
    """What the server has been told: statuses by kind and the realised sequence (reconcile loop only)."""

    status: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> id -> status
    seq: int = 0
    etag: str = ""
    at: float = 0.0


class AgentRuntime:
    def __init__(self, reconciler: Reconciler, client: ServerClient, host: str, report_interval: int,
                 resync_interval: float = RESYNC_INTERVAL, availability_zone: str | None = None) -> None:
        """``availability_zone``: reported with every heartbeat when given (DHCP and L3 agents)."""
        self.reconciler = reconciler
        self.availability_zone = availability_zone
        self.client = client
        self.host = host
        self.report_interval = report_interval
        self.resync_interval = resync_interval
        self.shared = Shared()
        self.reported = Reported()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle

    def run(self) -> None:
        """Run until ``stop()``: start the threads, then reconcile in this thread."""
        self.reconciler.start(self.shared.bell.set)
        for target, name in ((self._heartbeat, "heartbeat"), (self._watch, "watch")):
            thread = threading.Thread(target=target, name=f"{self.reconciler.view_kind}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            self._loop()
        finally:
            self.reconciler.stop()
            self.client.close()

    def stop(self) -> None:
        self.shared.stopping.set()
        self.shared.bell.set()

    # ------------------------------------------------------------ threads

    def state(self, start_flag: bool) -> dict:
        """The heartbeat's body: Neutron's ``agent_state``."""
        state = {"agent_type": self.reconciler.agent_type, "binary": self.reconciler.binary,
                 "topic": self.reconciler.topic, "host": self.host, "start_flag": start_flag,
                 "configurations": self.reconciler.configurations()}
        if self.availability_zone is not None:
            state["availability_zone"] = self.availability_zone
        return state

    def _heartbeat(self) -> None:
        start_flag, failing = True, False
        while not self.shared.stopping.is_set():
            try:
                self.client.report_state(self.state(start_flag))
                metrics.HEARTBEATS_SENT.labels(self.reconciler.view_kind).inc()
                start_flag = False
                wait = self.report_interval
                if failing:
                    LOG.info("the server answers again")
                    self._catch_up()
                failing = False
            except ServerError as exc:
                LOG.warning("heartbeat failed: %s", exc)
                wait = min(self.report_interval, 2.0)
                failing = True
            self.shared.stopping.wait(wait)

    def _catch_up(self) -> None:
        """The server answers again after a failure (a cut network, a server restart): ask for the
        view now, without waiting. NOTE: the watch's own request, sent before the cut, may still
        wait for an answer lost in it (up to WATCH_WAIT + the client's timeout, 35 s); this one
        brings what changed meanwhile at once, and ``publish`` drops that late answer if older."""
        etag, asked_at = self.shared.asking()
        try:
            watched = self.client.watch(self.host, self.reconciler.view_kind, etag, 0, self.reconciler.parse_view)
        except ServerError as exc:
            LOG.warning("catch-up after reconnecting failed (the watch will retry): %s", exc)
            return
        self._publish(watched, asked_at)

    def _watch(self) -> None:
        failures = 0
        while not self.shared.stopping.is_set():
            etag, asked_at = self.shared.asking()
            try:
                watched = self.client.watch(self.host, self.reconciler.view_kind, etag, WATCH_WAIT,
                                            self.reconciler.parse_view)
            except ServerError as exc:
                delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
                failures += 1
                LOG.warning("watch failed (retry in %.1f s): %s", delay, exc)
                self.shared.stopping.wait(delay)
                continue
            failures = 0
            self._publish(watched, asked_at)

    def _publish(self, watched: Watched, asked_at: int) -> None:
        if watched.view is not None:
            metrics.VIEW_UPDATES.labels(self.reconciler.view_kind).inc()
        self.shared.publish(watched.view, watched.seq, watched.etag, asked_at)

    def _loop(self) -> None:
        failures = 0
        while not self.shared.stopping.is_set():
            self.shared.bell.wait(self._timeout(failures))
            self.shared.bell.clear()
            if self.shared.stopping.is_set():
                return
            view, seq = self.shared.take()
            if view is None:
                continue  # nothing known yet: the watcher rings when the first view arrives
            kind = self.reconciler.view_kind
            started = time.monotonic()
            try:
                outcome = self.reconciler.reconcile(view)
                LOG.debug("reconciled seq %d in %.1f ms", seq, (time.monotonic() - started) * 1000)
                failures = 0
            except Exception:  # noqa: BLE001 - any failure of a run is retried by the loop, with backoff
                failures += 1
                LOG.exception("reconcile failed (attempt %d); retrying", failures)
                metrics.RECONCILE_SECONDS.labels(kind).observe(time.monotonic() - started)
                metrics.RECONCILE_RUNS.labels(kind, "failed").inc()
                continue
            metrics.RECONCILE_SECONDS.labels(kind).observe(time.monotonic() - started)
            metrics.RECONCILE_RUNS.labels(kind, "ok").inc()
            self._report(outcome, seq, getattr(view, "etag", ""))

    def _timeout(self, failures: int) -> float:
        """How long to sleep without a bell: the resync interval, shorter after a failure or while a
        realised sequence waits to be reported."""
        if failures:
            return BACKOFF[min(failures, len(BACKOFF)) - 1]
        timeout = self.resync_interval
        _view, seq = self.shared.take()
        if seq > self.reported.seq:
            timeout = min(timeout, max(0.0, STATUS_SEQ_INTERVAL - (time.monotonic() - self.reported.at)))
        return timeout

    def _report(self, outcome: Outcome, seq: int, etag: str = "") -> None:
        """Tell the server what changed: statuses at once; the realised sequence alone at most
        once per STATUS_SEQ_INTERVAL (a burst of changes costs one report, not one each)."""
        # The first report after a start says every status (the server ignores the unchanged).
        current = outcome.by_kind()
        changed = {kind: {key: value for key, value in statuses.items()
                          if kind != "ports" or value != self.reported.status.get(kind, {}).get(key)}
                   for kind, statuses in current.items()}
        changed = {kind: statuses for kind, statuses in changed.items() if statuses}
        now = time.monotonic()
        if not changed and etag and etag == self.reported.etag:
            # The same view at a later sequence: the server counts us current by the etag. Nothing
            # to send, and nothing left to report (else _timeout would wake the loop again at once).
            self.reported.seq = max(self.reported.seq, seq)
            return
        if not changed and (seq <= self.reported.seq or now - self.reported.at < STATUS_SEQ_INTERVAL):
            return
        try:
            self.client.report_status(self.host, self.reconciler.agent_type, seq, changed.get("ports", {}), etag,
                                      **{kind: changed[kind] for kind in changed if kind != "ports"})
        except ServerError as exc:
            LOG.warning("status report failed (will retry): %s", exc)
            self.shared.stopping.wait(0.5)
            self.shared.bell.set()
            return
        self.reported.status = {kind: {key: value for key, value in
                                       {**self.reported.status.get(kind, {}), **changed.get(kind, {})}.items()
                                       if key in statuses}
                                for kind, statuses in current.items()}
        self.reported.seq, self.reported.at = max(self.reported.seq, seq), now
        self.reported.etag = etag or self.reported.etag
        metrics.REPORTED_SEQ.labels(self.reconciler.view_kind).set(self.reported.seq)
