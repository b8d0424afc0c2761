"""Security groups on the wire: the firewall part of the OVS agent's one reconcile path.

``[securitygroup] firewall_driver`` selects it, with Neutron's names: the hybrid iptables
firewall (``iptables_hybrid``, ``neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver``)
filters each VM port on its ``qbr`` bridge; ``noop`` (``neutron.agent.firewall.NoopFirewallDriver``)
filters nothing, as in Neutron, and so does ``enable_security_group = false``. Any other driver
stops the agent at start (``FirewallConfigError``).

``HybridFirewall.sync(view, zones)`` renders the node's rules (pure,
``baryon.agent.plan.firewall``), and when they differ from what it last applied (or at least every
``OBSERVE_INTERVAL``, to repair what someone else changed) reads netfilter and writes only the
chains and sets that differ, atomically per table; then it deletes the conntrack entries that a
removed rule or a departed group member allowed (as Neutron does). Reading netfilter costs ~0.1 s
with 200 ports (iptables-save), which is why a run whose rules did not change does not read it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from baryon.agent.drivers.netfilter import Netfilter
from baryon.agent.plan.firewall import conntrack_deletes, render
from baryon.config.agent import AgentSettings
from baryon.model.firewall import Ruleset
from baryon.model.host import HostView

LOG = logging.getLogger("baryon.agent.firewall")
HYBRID_NAMES = frozenset(["iptables_hybrid", "neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver"])
NOOP_NAMES = frozenset(["noop", "neutron.agent.firewall.NoopFirewallDriver"])
OBSERVE_INTERVAL = 30.0  # seconds: netfilter is read at least this often even when nothing changed


class FirewallConfigError(ValueError):
    """The configured firewall driver is not one Baryon has."""


class NoopFirewall:
    """Filters nothing (Neutron's NoopFirewallDriver): every port is open."""

    name = "noop"
    hybrid_plug = False

    def start(self) -> None:
        pass

    def sync(self, view: HostView, zones: Mapping[str, int]) -> None:
        pass


class HybridFirewall:
    name = "iptables_hybrid"
    hybrid_plug = True

    def __init__(self, netfilter: Netfilter | None = None) -> None:
        self.netfilter = netfilter or Netfilter()
        self.applied: Ruleset | None = None
        self.observed_at = float("-inf")
        self.previous: HostView | None = None

    def start(self) -> None:
        """br_netfilter must pass bridged traffic to iptables in this namespace (Neutron checks it too)."""
        self.netfilter.ensure_bridge_netfilter()

    def sync(self, view: HostView, zones: Mapping[str, int]) -> None:
        desired = render(view, zones)
        now = time.monotonic()
        if desired != self.applied or now - self.observed_at >= OBSERVE_INTERVAL:
            observed = self.netfilter.observe()
            self.observed_at = now
            changes = self.netfilter.apply(desired, observed)
            if changes:
                LOG.info("firewall: chains written %d, deleted %d; sets created %d, swapped %d, destroyed %d",
                         len(changes.chains_written), len(changes.chains_deleted), len(changes.sets_created),
                         len(changes.sets_swapped), len(changes.sets_destroyed))
            self.applied = desired
        deletes = conntrack_deletes(self.previous, view, zones) if self._changed(view) else ()
        if deletes:
            deleted = self.netfilter.delete_conntrack(deletes)
            LOG.info("firewall: %d conntrack entr%s deleted (%d filters)", deleted, "y" if deleted == 1 else "ies",
                     len(deletes))
        self.previous = view

    def _changed(self, view: HostView) -> bool:
        return self.previous is not None and (self.previous.etag != view.etag or not view.etag)


def from_settings(settings: AgentSettings) -> HybridFirewall | NoopFirewall:
    driver = settings.securitygroup.firewall_driver.strip()
    if not settings.securitygroup.enable_security_group or driver in NOOP_NAMES:
        return NoopFirewall()
    if driver in HYBRID_NAMES:
        return HybridFirewall()
    raise FirewallConfigError(
        f"[securitygroup] firewall_driver = {driver!r} is not supported: use iptables_hybrid "
        "(neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver) or noop")
