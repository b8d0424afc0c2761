"""Open vSwitch as the OVS agent sees it and changes it: observed state and operations (pure).

The planner (``baryon.agent.plan.ovs``) reads an ``ObservedSwitch`` and returns a list of ops;
the drivers (``baryon.agent.drivers``) produce the ``ObservedSwitch`` and carry out the ops.
Both sides share these types and nothing else.

Ops are applied in list order: all OVSDB ops of one plan in one OVSDB transaction (bridges, then
ports, then tags), then the flows of each bridge whose flows differ in one atomic OpenFlow
bundle, touching only the flows that differ and only flows carrying ``AGENT_COOKIE`` (flows of
unchanged ports are never removed and re-added; flows that ``learn`` added stay). Flows are
written in ``ovs-ofctl`` syntax, spelled as an OpenFlow 1.4 switch reports them back, and may name
ports (``in_port=patch-tun``, ``output:vxlan-0a0a0a0b``): those ports exist by the time the
flows are applied, because the OVSDB transaction comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEAD_VLAN = 4095  # Neutron's DEAD_VLAN_TAG: ports of unknown or unbound ids are isolated on it
AGENT_COOKIE = 0x0B4770  # every flow the agent installs carries it ("baryon"-ish, fixed per agent kind)


@dataclass(frozen=True, order=True)
class ObservedPort:
    """A Port row with its (single) Interface, as found in the node's OVSDB."""

    name: str
    bridge: str
    type: str = ""  # "" (system), internal, patch, vxlan
    options: tuple[tuple[str, str], ...] = ()  # Interface options, sorted
    external_ids: tuple[tuple[str, str], ...] = ()  # Interface external_ids, sorted (iface-id, attached-mac ...)
    other_config: tuple[tuple[str, str], ...] = ()  # Port other_config, sorted (net_uuid, segmentation_id ...)
    tag: int | None = None
    ofport: int | None = None  # -1 or None while not (yet) attached

    @property
    def iface_id(self) -> str | None:
        return dict(self.external_ids).get("iface-id")


@dataclass(frozen=True)
class ObservedBridge:
    name: str
    datapath_type: str = ""
    fail_mode: str = ""
    flow_count: int | None = None  # flows with AGENT_COOKIE on it now; None if not read


@dataclass(frozen=True)
class ObservedSwitch:
    bridges: tuple[ObservedBridge, ...] = ()
    ports: tuple[ObservedPort, ...] = ()

    def bridge(self, name: str) -> ObservedBridge | None:
        return next((b for b in self.bridges if b.name == name), None)

    def port(self, name: str) -> ObservedPort | None:
        return next((p for p in self.ports if p.name == name), None)

    def ports_on(self, bridge: str) -> tuple[ObservedPort, ...]:
        return tuple(p for p in self.ports if p.bridge == bridge)


# ---------------------------------------------------------------- ops


@dataclass(frozen=True)
class EnsureBridge:
    """Create the bridge if missing; set ``datapath_type`` and ``fail_mode`` (may_exist)."""

    name: str
    datapath_type: str
    fail_mode: str = "secure"


@dataclass(frozen=True)
class EnsurePort:
    """Add the port (with its one Interface) if missing; set ``type`` and ``options`` either way;
    merge ``external_ids`` into the Interface's (these keys set, others kept; () touches none)."""

    bridge: str
    name: str
    type: str = ""  # patch | vxlan | internal | "" (an existing system device)
    options: tuple[tuple[str, str], ...] = ()
    external_ids: tuple[tuple[str, str], ...] = ()  # e.g. a DHCP tap's iface-id, attached-mac, iface-status


@dataclass(frozen=True)
class SetPortTag:
    """Set the Port's ``tag`` and its ``other_config`` keys (Neutron's net_uuid, network_type,
    physical_network, segmentation_id, tag: how a restarted agent recovers its local VLANs)."""

    name: str
    tag: int
    other_config: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DeletePort:
    """Remove the port from the bridge (if_exists)."""

    bridge: str
    name: str


@dataclass(frozen=True)
class ReplaceFlows:
    """Make the bridge's ``AGENT_COOKIE`` flows exactly ``flows`` (each carrying that cookie), atomically."""

    bridge: str
    flows: tuple[str, ...] = field(default=())


OvsdbOp = EnsureBridge | EnsurePort | SetPortTag | DeletePort
Op = OvsdbOp | ReplaceFlows


@dataclass(frozen=True)
class OvsAgentSettings:
    """The OVS agent's options that shape the switch (Neutron's names, from ``[ovs]`` and ``[agent]``)."""

    host: str
    integration_bridge: str = "br-int"
    tunnel_bridge: str = "br-tun"
    bridge_mappings: tuple[tuple[str, str], ...] = ()  # (physnet, bridge), e.g. (("physnet1", "br-ex"),)
    local_ip: str | None = None  # this node's tunnel endpoint; None: no tunnelling
    tunnel_types: tuple[str, ...] = ("vxlan",)
    datapath_type: str = "netdev"
    l2_population: bool = True
    arp_responder: bool = False
    vxlan_udp_port: int = 4789
