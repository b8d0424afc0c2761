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
first run and, to repair what someone else changed, every ``OBSERVE_INTERVAL`` in a run that has
nothing to write (in any run once twice that has passed); in between, what the agent last wrote
is the baseline, so a membership change costs one set swap. The conntrack entries that a removed
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
    """Whether a run reads netfilter rather than trust what it last wrote (``applied``: it knows
    that): on the first run or after a failed apply, and once ``OBSERVE_INTERVAL`` has passed
    since the last read (``waited``), in a run with no change to write (``changed``), or in any
    run once twice that has passed (a node whose changes never pause is repaired too).

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

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def sync(self, view: HostView, zones: Mapping[str, int]) -> None:
        pass


class HybridFirewall:
    name = "iptables_hybrid"
    hybrid_plug = True

    def __init__(self, netfilter: Netfilter | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.netfilter = netfilter or Netfilter()
        self.clock = clock
        self.rendered: Rendering | None = None  # the last rendering: its ports' rules are reused
        self.applied: Ruleset | None = None
        self.observed_at = float("-inf")
        self.previous: HostView | None = None
        self._deletes: queue.Queue[tuple[ConntrackDelete, ...] | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        """br_netfilter must pass bridged traffic to iptables in this namespace (Neutron checks it too)."""
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
        if repair_due(self.applied is not None, changed, now - self.observed_at):
            # NOTE: netfilter is read (iptables-save: ~0.5 s with 1,000 ports) only on the first run
            # and by the periodic repair pass; otherwise what this agent last wrote is the baseline.
            self.observed_at = now
            self._apply(desired, self.netfilter.observe())
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
            LOG.info("firewall: chains written %d (%d rule by rule), deleted %d; sets created %d, swapped %d, "
                     "destroyed %d", len(changes.chains_written), len(changes.chains_edited),
                     len(changes.chains_deleted), len(changes.sets_created), len(changes.sets_swapped),
                     len(changes.sets_destroyed))
        self.applied = desired

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
