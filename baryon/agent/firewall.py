"""Security groups on the wire: the firewall part of the OVS agent's one reconcile path.

``[securitygroup] firewall_driver`` selects it, with Neutron's names: the hybrid iptables
firewall (``iptables_hybrid``, ``neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver``)
filters each VM port on its ``qbr`` bridge; ``noop`` (``neutron.agent.firewall.NoopFirewallDriver``)
filters nothing, as in Neutron, and so does ``enable_security_group = false``. Any other driver
stops the agent at start (``FirewallConfigError``).

``HybridFirewall.sync(view, zones)`` renders the node's rules (pure,
``baryon.agent.plan.firewall``) and, when they differ from what it last applied, writes only the
chains and sets that differ, atomically per table. Netfilter itself is read (iptables-save: ~0.1 s
with 200 ports) on the first run and every ``OBSERVE_INTERVAL``, to repair what someone else
changed; in between, what the agent last wrote is the baseline, so a membership change costs one
set swap. The conntrack entries that a removed rule or a departed group member allowed are
deleted afterwards in a worker thread, as Neutron's agent does, so other changes never wait on
them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping

from baryon.agent.drivers.netfilter import Netfilter
from baryon.agent.plan.firewall import conntrack_deletes, render
from baryon.config.agent import AgentSettings
from baryon.model.firewall import ConntrackDelete, Ruleset
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

    def __init__(self, netfilter: Netfilter | None = None) -> None:
        self.netfilter = netfilter or Netfilter()
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
        desired = render(view, zones)
        now = time.monotonic()
        repair = self.applied is None or now - self.observed_at >= OBSERVE_INTERVAL
        if desired != self.applied or repair:
            # NOTE: netfilter is read (iptables-save: ~0.1 s with 200 ports) only on the first run
            # and the periodic repair pass; otherwise what this agent last wrote is the baseline.
            baseline = self.netfilter.observe() if repair else self.applied
            if repair:
                self.observed_at = now
            try:
                changes = self.netfilter.apply(desired, baseline)  # type: ignore[arg-type]
            except Exception:
                self.applied = None  # unknown state now: read netfilter again on the retry
                raise
            if changes:
                LOG.info("firewall: chains written %d, deleted %d; sets created %d, swapped %d, destroyed %d",
                         len(changes.chains_written), len(changes.chains_deleted), len(changes.sets_created),
                         len(changes.sets_swapped), len(changes.sets_destroyed))
            self.applied = desired
        deletes = conntrack_deletes(self.previous, view, zones) if self._changed(view) else ()
        if deletes:
            self._deletes.put(deletes)  # as Neutron: off the loop, so other changes do not wait
        self.previous = view

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
