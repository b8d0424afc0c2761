"""The Open vSwitch agent: one node's br-int, br-tun and physical bridges, from its host view.

``OvsAgent.reconcile(view)`` is the one sync path: observe the switch (one OVSDB read plus a flow
count per bridge), plan (pure, ``baryon.agent.plan.ovs``), apply (one OVSDB transaction, then one
atomic flow bundle per bridge whose flows differ), remember the flows now installed. It runs at
start-up (so an agent restart rebuilds its plan and changes only what differs: no flow of an
unchanged port is removed or re-added), on every new view, on every OVSDB change of the switch
(a VIF plugged or unplugged) and periodically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from baryon.agent.drivers.openflow import OpenFlow
from baryon.agent.drivers.ovsdb import Ovsdb
from baryon.agent.plan.ovs import plan
from baryon.agent.runtime import Outcome
from baryon.config.agent import AgentSettings
from baryon.model.host import HostView
from baryon.model.ovs import (ObservedBridge, ObservedSwitch, OvsAgentSettings, ReplaceFlows)

LOG = logging.getLogger("baryon.agent.ovs")
DEFAULT_RUNDIR = "/var/run/openvswitch"


def switch_settings(settings: AgentSettings) -> OvsAgentSettings:
    return OvsAgentSettings(
        host=settings.host, integration_bridge=settings.ovs.integration_bridge,
        tunnel_bridge=settings.ovs.tunnel_bridge, bridge_mappings=settings.ovs.bridge_mappings,
        local_ip=settings.ovs.local_ip if settings.agent.tunnel_types else None,
        tunnel_types=settings.agent.tunnel_types, datapath_type=settings.ovs.datapath_type,
        l2_population=settings.agent.l2_population, arp_responder=settings.agent.arp_responder,
        vxlan_udp_port=settings.agent.vxlan_udp_port)


class OvsAgent:
    agent_type = "Open vSwitch agent"
    binary = "neutron-openvswitch-agent"
    topic = "N/A"
    view_kind = "ovs"

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.switch = switch_settings(settings)
        self.ovsdb = Ovsdb(settings.ovs.ovsdb_connection, timeout=settings.ovs.ovsdb_timeout)
        rundir = settings.baryon.ovs_rundir or os.environ.get("OVS_RUNDIR") or DEFAULT_RUNDIR
        self.openflow = OpenFlow(rundir)
        self.applied: dict[str, tuple[str, ...]] = {}
        self.devices = 0

    def start(self, wake: Callable[[], None]) -> None:
        self.ovsdb.watch(wake)

    def stop(self) -> None:
        self.ovsdb.close()

    def configurations(self) -> dict:
        """What Neutron's OVS agent reports, so that the server binds ports as ML2 does."""
        return {
            "bridge_mappings": dict(self.switch.bridge_mappings),
            "tunnel_types": list(self.switch.tunnel_types),
            "tunneling_ip": self.switch.local_ip,
            "l2_population": self.switch.l2_population,
            "arp_responder_enabled": self.switch.arp_responder,
            "devices": self.devices,
            "datapath_type": self.switch.datapath_type,
            "integration_bridge": self.switch.integration_bridge,
            "ovs_hybrid_plug": True,
            "enable_distributed_routing": False,
            "in_distributed_mode": False,
            "firewall_driver": self.settings.securitygroup.firewall_driver,
        }

    def observe(self) -> ObservedSwitch:
        observed = self.ovsdb.observe()
        bridges = []
        for bridge in observed.bridges:
            count = None
            if bridge.name in self.applied:
                count = self.openflow.flow_count(bridge.name)
            bridges.append(ObservedBridge(bridge.name, bridge.datapath_type, bridge.fail_mode, count))
        return ObservedSwitch(tuple(bridges), observed.ports)

    def reconcile(self, view: HostView) -> Outcome:
        observed = self.observe()
        result = plan(view, self.switch, observed, self.applied)
        ovsdb_ops = [op for op in result.ops if not isinstance(op, ReplaceFlows)]
        if ovsdb_ops:
            self.ovsdb.apply(ovsdb_ops)
        changed = []
        for op in result.ops:
            if isinstance(op, ReplaceFlows):
                changes = self.openflow.replace_flows(op.bridge, op.flows)
                self.applied[op.bridge] = op.flows
                if changes.added or changes.deleted:
                    changed.append(f"{op.bridge} +{len(changes.added)}/-{len(changes.deleted)}")
        if ovsdb_ops or changed:
            LOG.info("seq %d: %d OVSDB op(s), flows %s", view.seq, len(ovsdb_ops), ", ".join(changed) or "unchanged")
        self.devices = sum(1 for status in result.port_status.values() if status == "ACTIVE")
        return Outcome(port_status=dict(result.port_status))
