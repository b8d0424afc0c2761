"""Security groups on the wire: the firewall part of the OVS agent's one reconcile path.

``[securitygroup] firewall_driver`` selects it, with Neutron's names: the hybrid iptables
firewall (``iptables_hybrid``, ``neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver``)
filters each VM port on its ``qbr`` bridge; ``noop`` (``neutron.agent.firewall.NoopFirewallDriver``)
filters nothing, as in Neutron, and so does ``enable_security_group = false``. Any other driver
stops the agent at start (``FirewallConfigError``).

``HybridFirewall.sync(view, zones)`` renders the node's rules (pure,
``baryon.agent.plan.firewall.render_from``: the rules of a port whose inputs are those of the
last run are reused, not rendered again) and, when they differ from what it last applied, writes
only the chains and sets that differ, atomically per table; the long chains that list every port
are edited rule by rule. Netfilter itself is read (iptables-save: ~0.5 s with 1,000 ports) on the
first run and, to repair what someone else changed, every ``OBSERVE_INTERVAL``: a run that has
nothing to write starts the read in a worker thread and the run after it ends repairs against it,
so a change that comes meanwhile never waits for it (a read during which the agent wrote is
dropped); a node whose changes never pause is read in the run once twice the interval has passed.
In between, what the agent last wrote is the baseline, so a membership change costs one set swap. The conntrack entries that a removed
rule or a departed group member allowed are deleted afterwards in a worker thread, as Neutron's
agent does, so other changes never wait on them (one ctnetlink dump and one batch of deletes for
a change, however many filters it makes).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping

from baryon.agent.drivers.netfilter import Netfilter
from baryon.agent.plan.firewall import Rendering, conntrack_deletes, render_from
from baryon.config.agent import AgentSettings
from baryon.model.firewall import ConntrackDelete, Ruleset
from baryon.model.host import HostView

LOG = logging.getLogger("baryon.agent.firewall")
HYBRID_NAMES = frozenset(["iptables_hybrid", "neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver"])
NOOP_NAMES = frozenset(["noop", "neutron.agent.firewall.NoopFirewallDriver"])
OBSERVE_INTERVAL = 30.0  # seconds: netfilter is read at least this often even when nothing changed


def repair_due(applied: bool, changed: bool, waited: float) -> bool:
    """Whether netfilter is to be read rather than what the agent last wrote trusted (``applied``:
    it knows that): on the first run or after a failed apply, and once ``OBSERVE_INTERVAL`` has
    passed since the last read (``waited``), in a run with no change to write (``changed``: the
    read then goes beside the loop), or in any run once twice that has passed (a node whose changes
    never pause is repaired too).

    NOTE: so a change never waits for the read when it need not: with 1,000 ports the read takes
    ~1 s, and the changes that met it were the p99 of a membership change."""
    if not applied:
        return True
    return waited >= 2 * OBSERVE_INTERVAL or (waited >= OBSERVE_INTERVAL and not changed)


class FirewallConfigError(ValueError):
    """The configured firewall driver is not one Baryon has."""


class NoopFirewall:
    """Filters nothing (Neutron's NoopFirewallDriver): every port is open."""

    name = "noop"
    hybrid_plug = False
    rule_count = 0

    def start(self, wake: Callable[[], None] | None = None) -> None:
        pass

    def stop(self) -> None:
        pass

    def sync(self, view: HostView, zones: Mapping[str, int]) -> None:
        pass


class Read:
    """One read of netfilter in a worker thread, begun after the agent's ``writes``-th write.

    ``wake`` is called when it ends, so the agent's loop runs again and repairs against it."""

    def __init__(self, observe: Callable[[], Ruleset], writes: int, started_at: float,
                 wake: Callable[[], None]) -> None:
        self.writes = writes
        self.started_at = started_at
        self.result: Ruleset | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(observe, wake), name="netfilter-read", daemon=True).start()

    def _run(self, observe: Callable[[], Ruleset], wake: Callable[[], None]) -> None:
        try:
            self.result = observe()
        except Exception:  # noqa: BLE001 - a failed read is dropped and made again; it is logged
            LOG.exception("firewall: reading netfilter failed")
        finally:
            self.done.set()
            wake()


class HybridFirewall:
    name = "iptables_hybrid"
    hybrid_plug = True

    def __init__(self, netfilter: Netfilter | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.netfilter = netfilter or Netfilter()
        self.clock = clock
        self.rendered: Rendering | None = None  # the last rendering: its ports' rules are reused
        self.applied: Ruleset | None = None
        self.observed_at = float("-inf")  # when the last read that was used began
        self.previous: HostView | None = None
        self.reading: Read | None = None  # the periodic read in flight, if any
        self._writes = 0  # how many applies wrote something: a read that saw fewer is stale
        self._wake: Callable[[], None] = lambda: None
        self._deletes: queue.Queue[tuple[ConntrackDelete, ...] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def start(self, wake: Callable[[], None] | None = None) -> None:
        """br_netfilter must pass bridged traffic to iptables in this namespace (Neutron checks it too).
        ``wake`` runs the agent's loop again: called when a periodic read of netfilter ends."""
        if wake is not None:
            self._wake = wake
        self.netfilter.ensure_bridge_netfilter()
        self._worker = threading.Thread(target=self._delete_conntrack, name="conntrack-deletes", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._deletes.put(None)

    def sync(self, view: HostView, zones: Mapping[str, int]) -> None:
        self.rendered = render_from(view, zones, self.rendered)
        desired = self.rendered.ruleset
        now = self.clock()
        changed = desired != self.applied
        read = self._finished_read()
        if read is not None and self.applied is not None:
            self.observed_at = read.started_at
            self._apply(desired, read.result)  # type: ignore[arg-type]  # a finished read has a result
        elif repair_due(self.applied is not None, changed, now - self.observed_at):
            if self.applied is None or changed:
                # NOTE: netfilter is read (iptables-save: ~1 s at 1,000 ports) in the run itself only on
                # the first run, after a failed apply, or when overdue on a node that never pauses.
                self.observed_at = now
                self._apply(desired, self.netfilter.observe())
            elif self.reading is None:  # a quiet run: read beside the loop, repair in the run after
                self.reading = Read(self.netfilter.observe, self._writes, now, self._wake)
        elif changed:
            self._apply(desired, self.applied)  # type: ignore[arg-type]  # not None: else a repair is due
        deletes = conntrack_deletes(self.previous, view, zones) if self._changed(view) else ()
        if deletes:
            self._deletes.put(deletes)  # as Neutron: off the loop, so other changes do not wait
        self.previous = view

    def _apply(self, desired: Ruleset, baseline: Ruleset) -> None:
        try:
            changes = self.netfilter.apply(desired, baseline)
        except Exception:
            self.applied = None  # unknown state now: read netfilter again on the retry
            raise
        if changes:
            self._writes += 1
            LOG.info("firewall: chains written %d (%d rule by rule), deleted %d; sets created %d, swapped %d, "
                     "destroyed %d", len(changes.chains_written), len(changes.chains_edited),
                     len(changes.chains_deleted), len(changes.sets_created), len(changes.sets_swapped),
                     len(changes.sets_destroyed))
        self.applied = desired

    def _finished_read(self) -> Read | None:
        """The periodic read, once it has ended with a result and the agent has written nothing
        since it began (else what it saw may predate the agent's own write: it is dropped, and a
        later quiet run reads again)."""
        read = self.reading
        if read is None or not read.done.is_set():
            return None
        self.reading = None
        return read if read.result is not None and read.writes == self._writes else None

    @property
    def rule_count(self) -> int:
        """The rules of the chains it last applied, and its hooks into the built-in chains."""
        if self.applied is None:
            return 0
        return (sum(len(rules) for chains in self.applied.chains.values() for rules in chains.values())
                + sum(len(hooks) for hooks in self.applied.hooks.values()))

    def _changed(self, view: HostView) -> bool:
        return self.previous is not None and (self.previous.etag != view.etag or not view.etag)

    def _delete_conntrack(self) -> None:
        while (batch := self._deletes.get()) is not None:
            try:
                deleted = self.netfilter.delete_conntrack(batch)
                LOG.info("firewall: %d conntrack entr%s deleted (%d filters)", deleted,
                         "y" if deleted == 1 else "ies", len(batch))
            except Exception:  # noqa: BLE001 - a failed delete must not stop later ones; it is logged
                LOG.exception("firewall: conntrack delete failed")


def from_settings(settings: AgentSettings) -> HybridFirewall | NoopFirewall:
    driver = settings.securitygroup.firewall_driver.strip()
    if not settings.securitygroup.enable_security_group or driver in NOOP_NAMES:
        return NoopFirewall()
    if driver in HYBRID_NAMES:
        return HybridFirewall()
    raise FirewallConfigError(
        f"[securitygroup] firewall_driver = {driver!r} is not supported: use iptables_hybrid "
        "(neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver) or noop")
