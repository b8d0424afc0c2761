"""The Open vSwitch agent: one node's br-int, br-tun and physical bridges, from its host view.

``OvsAgent.reconcile(view)`` is the one sync path (security groups included: ``firewall``): observe
the switch (Bridge, Port and Interface; flows are counted only after the canary check, every 2 s,
found br-int short of its flows), plan (pure, ``baryon.agent.plan.ovs``), apply (one OVSDB
transaction, then one atomic flow bundle per bridge whose flows differ), remember the flows now
installed. It runs at start-up (so an agent restart rebuilds its plan and changes only what
differs: no flow of an unchanged port is removed or re-added), on every new view, on every OVSDB
change of the switch (a VIF plugged or unplugged) and periodically.

NOTE: the switch is observed from the replica that the OVSDB watch keeps (``Ovsdb.watch(...,
replicate=True)``), not read again on each run: with 1,000 ports on a node a read of the three
tables took 35-70 ms of the run on a quiet machine and 270-315 ms on a loaded one, and the
transaction that applies the ops read every Port row again; the replica answers in about a
millisecond (a barrier round trip makes it current, the agent's own last transaction included)
and rebuilds only the ports an update touched. Without a monitor (connecting, reconnecting)
both read the tables as before.

NOTE: the plan is a pure function of the view's ports, networks and remote ports, the settings, the
switch observed and the flows installed; a run whose inputs equal the last run's reuses its result
(``LastPlan``) instead of planning again: a change of security group rules or members, which
reaches the firewall only, skips what was two thirds of such a run's CPU with 1,000 ports on the
node (every port's flows rendered). The inputs are compared by value (the view's sections are the
previous view's objects when they came unchanged, ``HostView.from_json``: then at once).

Each run that changed something logs one line: "seq N: K OVSDB op(s), flows ...; T ms (observe
and plan A, firewall B, switch C)", where "switch" is the OVSDB transaction, the wait for
ovs-vswitchd to apply it (``cur_cfg``: ACTIVE means wired) and the flow bundles.

Metrics (``agent.metrics``): after each run, the ports wired, the flows installed per bridge and
the firewall's rules; the port-to-wire latency of each port wired for the first time, from the
moment its first view arrived (``parse_view``, in the watcher thread) to the end of the run.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from baryon.agent import firewall, metrics
from baryon.agent.drivers.openflow import OpenFlow
from baryon.agent.drivers.ovsdb import Ovsdb
from baryon.agent.plan.ovs import Plan, plan
from baryon.agent.runtime import Outcome
from baryon.config.agent import AgentSettings
from baryon.model.host import HostView
from baryon.model.ovs import (ObservedBridge, ObservedSwitch, OvsAgentSettings, ReplaceFlows)

LOG = logging.getLogger("baryon.agent.ovs")
DEFAULT_RUNDIR = "/var/run/openvswitch"
FLOW_CHECK_INTERVAL = 2.0  # seconds; Neutron's polling_interval, at which it checks its canary flow
RECOUNT_INTERVAL = 30.0  # seconds: every bridge's flows are counted by a run at least this often


def switch_settings(settings: AgentSettings) -> OvsAgentSettings:
    return OvsAgentSettings(
        host=settings.host, integration_bridge=settings.ovs.integration_bridge,
        tunnel_bridge=settings.ovs.tunnel_bridge, bridge_mappings=settings.ovs.bridge_mappings,
        local_ip=settings.ovs.local_ip if settings.agent.tunnel_types else None,
        tunnel_types=settings.agent.tunnel_types, datapath_type=settings.ovs.datapath_type,
        l2_population=settings.agent.l2_population, arp_responder=settings.agent.arp_responder,
        vxlan_udp_port=settings.agent.vxlan_udp_port)


@dataclass(frozen=True)
class LastPlan:
    """The last run's plan and what it was made from (the inputs ``plan`` reads, nothing else)."""

    inputs: tuple
    result: Plan

    @staticmethod
    def inputs_of(view: HostView, observed: ObservedSwitch, applied: dict[str, tuple[str, ...]]) -> tuple:
        return (view.ports, view.networks, view.remote_ports, observed, dict(applied))


class OvsAgent:
    agent_type = "Open vSwitch agent"
    binary = "neutron-openvswitch-agent"
    topic = "N/A"
    view_kind = "ovs"

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.firewall = firewall.from_settings(settings)  # FirewallConfigError: an unknown driver, at start
        self.switch = switch_settings(settings)
        self.ovsdb = Ovsdb(settings.ovs.ovsdb_connection, timeout=settings.ovs.ovsdb_timeout)
        rundir = settings.baryon.ovs_rundir or os.environ.get("OVS_RUNDIR") or DEFAULT_RUNDIR
        self.openflow = OpenFlow(rundir)
        self.applied: dict[str, tuple[str, ...]] = {}
        self.devices = 0
        self.recount = False  # set by the canary check: count every bridge's flows on the next run
        self.counted_at = time.monotonic()  # when a run last counted every bridge's flows
        self._stopping = threading.Event()
        self._canary: threading.Thread | None = None
        self.wire_clock = metrics.WireClock()
        self.last_plan: LastPlan | None = None
        self.previous_data: tuple[dict, HostView] | None = None  # the last view received, raw and parsed

    def parse_view(self, data: dict) -> HostView:
        view = HostView.from_json(data, self.previous_data)
        self.previous_data = (data, view)
        # NOTE: the watcher parses each new view as it arrives: the moment a port first appears.
        self.wire_clock.saw((port.id for port in view.ports), time.monotonic())
        return view

    def start(self, wake: Callable[[], None]) -> None:
        self.firewall.start(wake)
        self.ovsdb.watch(wake, replicate=True)  # wakes the loop, and keeps the replica observe() reads
        self._stopping.clear()
        self._canary = threading.Thread(target=self._check_canary, args=(wake,), name="ovs-canary", daemon=True)
        self._canary.start()

    def stop(self) -> None:
        self._stopping.set()
        self.firewall.stop()
        self.ovsdb.close()

    def _check_canary(self, wake: Callable[[], None]) -> None:
        """Every FLOW_CHECK_INTERVAL, count br-int's flows: fewer than installed means ovs-vswitchd
        restarted (flows are not persistent) or someone flushed them: wake the loop to reinstall.
        One ovs-ofctl call, as Neutron checks its canary flow every polling interval."""
        bridge = self.switch.integration_bridge
        while not self._stopping.wait(FLOW_CHECK_INTERVAL):
            installed = self.applied.get(bridge)
            if not installed:
                continue
            try:
                count = self.openflow.flow_count(bridge)
            except Exception as exc:  # noqa: BLE001 - ovs-vswitchd down: the loop's run will say why
                LOG.warning("canary check of %s failed: %s", bridge, exc)
                wake()
                continue
            if count != len(installed):
                LOG.warning("%s has %d of the agent's %d flows (ovs-vswitchd restarted?): reinstalling",
                            bridge, count, len(installed))
                self.recount = True
                wake()

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
            "ovs_hybrid_plug": self.firewall.hybrid_plug,
            "enable_distributed_routing": False,
            "in_distributed_mode": False,
            "firewall_driver": self.firewall.name,
        }

    def observe(self) -> ObservedSwitch:
        """The switch as it is. Flows are counted (one ovs-ofctl call per bridge, slow while
        ovs-vswitchd is busy plugging) only when the canary check found some missing, or by the
        first run RECOUNT_INTERVAL after the last count (so that a flow deleted by hand from
        br-tun or a physical bridge, which the canary does not watch, comes back within about
        30 s), not on every run: each VIF plugged wakes the loop two or three times."""
        observed = self.ovsdb.observe()
        now = time.monotonic()
        count_flows = self.recount or now - self.counted_at >= RECOUNT_INTERVAL
        self.recount = False
        if count_flows:
            self.counted_at = now
        bridges = []
        for bridge in observed.bridges:
            count = None
            if count_flows and bridge.name in self.applied:
                count = self.openflow.flow_count(bridge.name)
            bridges.append(ObservedBridge(bridge.name, bridge.datapath_type, bridge.fail_mode, count))
        return ObservedSwitch(tuple(bridges), observed.ports)

    def reconcile(self, view: HostView) -> Outcome:
        started = time.monotonic()
        observed = self.observe()
        inputs = LastPlan.inputs_of(view, observed, self.applied)
        if self.last_plan is not None and self.last_plan.inputs == inputs:
            result = self.last_plan.result
        else:
            result = plan(view, self.switch, observed, self.applied)
            self.last_plan = LastPlan(inputs, result)
        # Filters first: a port is never forwarding (tagged) before its security groups hold.
        filtering = time.monotonic()
        self.firewall.sync(view, result.local_vlans)
        switching = time.monotonic()
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
            done = time.monotonic()
            LOG.info("seq %d: %d OVSDB op(s), flows %s; %.0f ms (observe and plan %.0f, firewall %.0f, switch %.0f)",
                     view.seq, len(ovsdb_ops), ", ".join(changed) or "unchanged", (done - started) * 1000,
                     (filtering - started) * 1000, (switching - filtering) * 1000, (done - switching) * 1000)
        self.devices = sum(1 for status in result.port_status.values() if status == "ACTIVE")
        self._measure(result.port_status)
        return Outcome(port_status=dict(result.port_status))

    def _measure(self, port_status: dict[str, str]) -> None:
        for latency in self.wire_clock.wired(port_status, time.monotonic()):
            metrics.PORT_WIRE_SECONDS.observe(latency)
        metrics.OVS_PORTS.set(self.devices)
        for bridge, flows in self.applied.items():
            metrics.OVS_FLOWS.labels(bridge).set(len(flows))
        metrics.OVS_FIREWALL_RULES.set(self.firewall.rule_count)
