"""The OVS agent's OpenFlow tables, rendered as ``ovs-ofctl`` flow text (pure).

Input: a ``Wiring`` the planner (``baryon.agent.plan.ovs``) has already resolved — local VLANs,
tunnel port names, validated l2population entries, dead VIFs. Output: ``desired_flows`` maps each
bridge the agent manages to the exact tuple of flows it must hold, sorted by (table, priority
descending, match, actions), without two flows of the same table, priority and match (OVS would
keep only one, and the bridge's flow count would never equal the tuple's length).

Every flow carries ``cookie=AGENT_COOKIE``; flows learned by table 10 carry ``LEARNED_COOKIE``
instead, so that counting the agent's cookie on a bridge counts exactly the flows listed here, and
so that replacing the agent's flows (which only touches ``AGENT_COOKIE`` flows) never flushes
learned MACs: like Neutron's, they leave by their ``hard_timeout`` only.
Ports are named, never numbered (``in_port=patch-int``, ``output:vxlan-0a0a0a0b``), and only in
those two positions: the driver resolves names against the bridge, and the ports exist before the
flows are applied.

Spelling: every flow is written the way an OpenFlow 1.4 switch reports it back (``ovs-ofctl -O
OpenFlow14 dump-flows``, port names aside), because the driver compares flows as parsed and
re-adds (restarting counters and durations) any flow whose actions parse differently from what the
switch returns. Hence ``pop_vlan`` (not ``strip_vlan``), ``push_vlan:0x8100,set_field:<4096+vid>->vlan_vid``
on untagged packets and ``set_field:<4096+vid>->vlan_vid`` on tagged ones (not ``mod_vlan_vid``),
``set_field:<vni hex>->tun_id`` (not ``set_tunnel``), ``set_field:...->eth_src|arp_op|arp_sha|arp_spa``
(not ``mod_dl_src`` or ``load:...->NXM_...``), ``IN_PORT`` (not ``in_port``), ``learn(...)`` with
its arguments in the switch's order; matches as the switch prints them (``dl_vlan=``,
``vlan_tci=0x0000/0x1fff``, ``tun_id=0x<hex>``, ``arp_tpa=``). ``tests/functional/test_plan_flows_on_ovs.py``
checks on a real switch that re-applying these flows changes none of them.

Neutron's ML2/OVS layout, table numbers included (``ovs_neutron_agent``, ``br_int``, ``br_tun``,
``br_phys``):

- br-int: 0 local switching (dead VLAN drop, provider-network VLAN translation from ``int-<br>``,
  drops for untranslated physical traffic and for dead VIFs, spoofing checks of guarded VIFs, then
  60), 23 canary, 24 ARP/neighbour-advertisement spoofing, 25 MAC spoofing, 60 NORMAL;
- br-tun: 0 classify by in_port, 2 from br-int (unicast 20, flood 22, ARP requests 21), 4 VNI ->
  local VLAN, 10 learn then to br-int, 20 unicast to a tunnel (l2population), 21 ARP responder,
  22 flood to the tunnels of the hosts that have the network;
- a mapping bridge (br-ex): local VLAN -> untagged (flat) or segmentation id (vlan), drop what
  br-int has not translated, NORMAL for the rest.

Spoofing protection (Neutron's ``setup_arp_spoofing_protection`` with ``br_int``'s
``install_arp_spoofing_protection``, ``install_icmpv6_na_spoofing_protection`` and
``set_allowed_macs_for_port``): for each ``SpoofGuard`` (a wired VIF whose port has port security
and is not a ``network:*`` port), table 0 sends the VIF's ARP (priority 10) and ICMPv6 neighbour
advertisements (priority 10) to table 24, everything else it sends (priority 9) to table 25;
table 24 lets through ARP whose sender address (``arp_spa``) is one of the port's IPv4 addresses
and advertisements whose target (``nd_target``) is one of its IPv6 ones (link-local of its MACs
included), on to table 25, and drops the rest; table 25 lets through frames whose source MAC is
one of the port's, to table 60, and drops the rest. The hybrid firewall's ``s<id>`` chains check
IP packets' source MAC and address too, but only IP: ARP, and any other ethertype, never meet
netfilter, so without these flows a VM answers ARP for another VM's address or floods frames
from a forged MAC unhindered. A ``/0`` among a family's addresses (an allowed address pair) means
any: that family is not checked (ARP/NA matches need a prefix of at least 1).

NOTE: where Baryon departs from Neutron: a guarded advertisement goes on to the MAC check (table
25) rather than straight to 60, so a VM cannot advertise its own address from a forged MAC; and
table 25 has an explicit drop (Neutron relies on the table miss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from baryon.model.host import FLAT, VLAN, VXLAN, Segment
from baryon.model.ovs import AGENT_COOKIE, DEAD_VLAN

# NOTE: learned flows must not carry AGENT_COOKIE: the planner compares the bridge's count of
# AGENT_COOKIE flows with the number of flows it wants, learned flows come and go on their own,
# and the driver deletes any AGENT_COOKIE flow it was not asked for.
LEARNED_COOKIE = AGENT_COOKIE + 1
LEARNED_HARD_TIMEOUT = 300

# br-int tables
LOCAL_SWITCHING = 0
CANARY_TABLE = 23
ARP_SPOOF_TABLE = 24
MAC_SPOOF_TABLE = 25
TRANSIENT_TABLE = 60
# br-tun tables
PATCH_LV_TO_TUN = 2
VXLAN_TUN_TO_LV = 4
LEARN_FROM_TUN = 10
UCAST_TO_TUN = 20
ARP_RESPONDER = 21
FLOOD_TO_TUN = 22

# Neutron's patch ports between br-int and br-tun (int_peer_patch_port, tun_peer_patch_port)
PATCH_TUN = "patch-tun"  # on br-int
PATCH_INT = "patch-int"  # on br-tun

OPENFLOW_MAX_PRIORITY = 65535
ETH_TYPE_8021Q = 0x8100
VLAN_CFI = 0x1000  # OpenFlow's "VLAN present" bit: set_field:<VLAN_CFI + vid>->vlan_vid
UNTAGGED = "vlan_tci=0x0000/0x1fff"
UNICAST = "dl_dst=00:00:00:00:00:00/01:00:00:00:00:00"
MULTICAST = "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"
ICMPV6_NEIGHBOUR_ADVERT = 136


@dataclass(frozen=True, order=True)
class LocalNet:
    """A network this host carries, with its local VLAN on br-int."""

    network_id: str
    vlan: int
    segment: Segment


@dataclass(frozen=True, order=True)
class PhysicalLink:
    """A ``bridge_mappings`` entry and the patch pair that joins its bridge to br-int."""

    physnet: str
    bridge: str
    int_port: str  # int-<bridge>, on br-int
    phy_port: str  # phy-<bridge>, on the mapping bridge


@dataclass(frozen=True, order=True)
class Remote:
    """One l2population entry, validated: a port of ``network_id`` behind tunnel port ``port``."""

    network_id: str
    port: str  # the vxlan port on br-tun that reaches the port's host
    mac: str | None  # lower case; None if the server sent something that is not a MAC
    ipv4: tuple[str, ...] = ()  # the port's IPv4 addresses (the ARP responder's answers)


@dataclass(frozen=True, order=True)
class SpoofGuard:
    """A VIF on br-int that may only send as its port: from its MACs, ARP for its IPv4 addresses,
    neighbour advertisements for its IPv6 ones. ``ipv4``/``ipv6`` None: that family unchecked (a
    ``/0`` allowed); empty: it may claim no address of that family."""

    port: str  # the VIF's name on br-int (hybrid: qvo<id>)
    macs: tuple[str, ...]  # lower case, sorted
    ipv4: tuple[str, ...] | None = ()  # addresses or networks as OVS prints them (no /32), sorted
    ipv6: tuple[str, ...] | None = ()  # likewise (no /128), link-local addresses of ``macs`` included


@dataclass(frozen=True)
class Wiring:
    """What the flows depend on, resolved by the planner; every tuple sorted."""

    integration_bridge: str
    tunnel_bridge: str | None  # None: no tunnelling on this host
    links: tuple[PhysicalLink, ...] = ()
    nets: tuple[LocalNet, ...] = ()
    tunnel_ports: tuple[str, ...] = ()
    remotes: tuple[Remote, ...] = ()
    dead_ports: tuple[str, ...] = ()  # VIFs on the dead VLAN that have an OpenFlow port
    l2_population: bool = True
    arp_responder: bool = False
    guards: tuple[SpoofGuard, ...] = ()  # VIFs with port security, by name


class Flow(NamedTuple):
    table: int
    priority: int
    match: str
    actions: str

    def render(self, cookie: int = AGENT_COOKIE) -> str:
        match = f"{self.match}," if self.match else ""
        return f"cookie={cookie:#x},table={self.table},priority={self.priority},{match}actions={self.actions}"


def desired_flows(wiring: Wiring) -> dict[str, tuple[str, ...]]:
    """Every managed bridge -> its flows, rendered and sorted."""
    flows = {wiring.integration_bridge: _render(integration_flows(wiring))}
    if wiring.tunnel_bridge is not None:
        flows[wiring.tunnel_bridge] = _render(tunnel_flows(wiring))
    for link in wiring.links:
        flows[link.bridge] = _render(physical_flows(wiring, link))
    return flows


def _render(flows: list[Flow]) -> tuple[str, ...]:
    unique: dict[tuple[int, int, str], Flow] = {}
    for flow in sorted(flows, key=lambda f: (f.table, -f.priority, f.match, f.actions)):
        unique.setdefault((flow.table, flow.priority, flow.match), flow)
    return tuple(flow.render() for flow in unique.values())


# ---------------------------------------------------------------- br-int


def integration_flows(wiring: Wiring) -> list[Flow]:
    flows = [
        Flow(LOCAL_SWITCHING, OPENFLOW_MAX_PRIORITY, f"dl_vlan={DEAD_VLAN}", "drop"),
        Flow(LOCAL_SWITCHING, 0, "", f"resubmit(,{TRANSIENT_TABLE})"),
        Flow(CANARY_TABLE, 0, "", "drop"),
        Flow(ARP_SPOOF_TABLE, 0, "", "drop"),
        Flow(MAC_SPOOF_TABLE, 0, "", "drop"),
        Flow(TRANSIENT_TABLE, 3, "", "NORMAL"),
    ]
    flows += [Flow(LOCAL_SWITCHING, 2, f"in_port={name}", "drop") for name in wiring.dead_ports]
    for guard in wiring.guards:
        flows += spoof_flows(guard)
    for link in wiring.links:
        # Drop what no provider network claims: a stray frame must not reach another physnet.
        flows.append(Flow(LOCAL_SWITCHING, 2, f"in_port={link.int_port}", "drop"))
        for net in _nets_on(wiring, link.physnet):
            tagged = net.segment.network_type == VLAN
            match = f"dl_vlan={net.segment.segmentation_id}" if tagged else UNTAGGED
            actions = set_vlan(net.vlan) if tagged else push_vlan(net.vlan)
            flows.append(Flow(LOCAL_SWITCHING, 3, f"in_port={link.int_port},{match}",
                              f"{actions},resubmit(,{TRANSIENT_TABLE})"))
    return flows


def spoof_flows(guard: SpoofGuard) -> list[Flow]:
    """The VIF's spoofing checks (see the module docstring): its MACs in table 25, its addresses
    in table 24, and the table 0 flows that send its traffic through them."""
    port = f"in_port={guard.port}"
    flows = [Flow(LOCAL_SWITCHING, 9, port, f"resubmit(,{MAC_SPOOF_TABLE})")]
    flows += [Flow(MAC_SPOOF_TABLE, 2, f"{port},dl_src={mac}", f"resubmit(,{TRANSIENT_TABLE})") for mac in guard.macs]
    if guard.ipv4 is not None:
        flows.append(Flow(LOCAL_SWITCHING, 10, f"arp,{port}", f"resubmit(,{ARP_SPOOF_TABLE})"))
        flows += [Flow(ARP_SPOOF_TABLE, 2, f"arp,{port},arp_spa={ip}", f"resubmit(,{MAC_SPOOF_TABLE})")
                  for ip in guard.ipv4]
    if guard.ipv6 is not None:
        advert = f"icmp6,{port},icmp_type={ICMPV6_NEIGHBOUR_ADVERT}"
        flows.append(Flow(LOCAL_SWITCHING, 10, advert, f"resubmit(,{ARP_SPOOF_TABLE})"))
        flows += [Flow(ARP_SPOOF_TABLE, 2, f"{advert},nd_target={ip}", f"resubmit(,{MAC_SPOOF_TABLE})")
                  for ip in guard.ipv6]
    return flows


def _nets_on(wiring: Wiring, physnet: str) -> list[LocalNet]:
    return [n for n in wiring.nets
            if n.segment.physical_network == physnet and n.segment.network_type in (FLAT, VLAN)]


# ---------------------------------------------------------------- mapping bridges


def physical_flows(wiring: Wiring, link: PhysicalLink) -> list[Flow]:
    flows = [Flow(0, 2, f"in_port={link.phy_port}", "drop"), Flow(0, 0, "", "NORMAL")]
    for net in _nets_on(wiring, link.physnet):
        if net.segment.network_type == VLAN:
            actions = f"{set_vlan(net.segment.segmentation_id)},NORMAL"
        else:
            actions = "pop_vlan,NORMAL"
        flows.append(Flow(0, 4, f"in_port={link.phy_port},dl_vlan={net.vlan}", actions))
    return flows


# ---------------------------------------------------------------- br-tun


def tunnel_flows(wiring: Wiring) -> list[Flow]:
    flows = _tunnel_defaults(wiring)
    flows += [Flow(0, 1, f"in_port={port}", f"resubmit(,{VXLAN_TUN_TO_LV})") for port in wiring.tunnel_ports]
    remotes: dict[str, list[Remote]] = {}
    for remote in wiring.remotes:
        remotes.setdefault(remote.network_id, []).append(remote)
    for net in wiring.nets:
        if net.segment.network_type != VXLAN:
            continue
        vni = net.segment.segmentation_id
        flows.append(Flow(VXLAN_TUN_TO_LV, 1, f"tun_id={vni:#x}",
                          f"{push_vlan(net.vlan)},resubmit(,{LEARN_FROM_TUN})"))
        flood = _flood_ports(wiring, remotes.get(net.network_id, []))
        if flood:
            outputs = ",".join(f"output:{port}" for port in flood)
            flows.append(Flow(FLOOD_TO_TUN, 1, f"dl_vlan={net.vlan}", f"pop_vlan,{set_tunnel(vni)},{outputs}"))
        if wiring.l2_population:
            flows += _l2pop_flows(wiring, net, remotes.get(net.network_id, []))
    return flows


def _tunnel_defaults(wiring: Wiring) -> list[Flow]:
    learn = ",".join((
        f"learn(table={UCAST_TO_TUN}", f"hard_timeout={LEARNED_HARD_TIMEOUT}", "priority=1",
        f"cookie={LEARNED_COOKIE:#x}", "NXM_OF_VLAN_TCI[0..11]", "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[]",
        "load:0->NXM_OF_VLAN_TCI[]", "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[]", "output:NXM_OF_IN_PORT[])",
    ))
    flows = [
        Flow(0, 1, f"in_port={PATCH_INT}", f"resubmit(,{PATCH_LV_TO_TUN})"),
        Flow(0, 0, "", "drop"),
        Flow(PATCH_LV_TO_TUN, 0, UNICAST, f"resubmit(,{UCAST_TO_TUN})"),
        Flow(PATCH_LV_TO_TUN, 0, MULTICAST, f"resubmit(,{FLOOD_TO_TUN})"),
        Flow(VXLAN_TUN_TO_LV, 0, "", "drop"),
        Flow(LEARN_FROM_TUN, 1, "", f"{learn},output:{PATCH_INT}"),
        Flow(UCAST_TO_TUN, 0, "", f"resubmit(,{FLOOD_TO_TUN})"),
        Flow(FLOOD_TO_TUN, 0, "", "drop"),
    ]
    if wiring.arp_responder:
        flows += [
            Flow(PATCH_LV_TO_TUN, 1, "arp,dl_dst=ff:ff:ff:ff:ff:ff", f"resubmit(,{ARP_RESPONDER})"),
            Flow(ARP_RESPONDER, 0, "", f"resubmit(,{FLOOD_TO_TUN})"),
        ]
    return flows


def _flood_ports(wiring: Wiring, remotes: list[Remote]) -> list[str]:
    """l2population floods only to the hosts that have the network; without it, to every tunnel."""
    if not wiring.l2_population:
        return list(wiring.tunnel_ports)
    return sorted({remote.port for remote in remotes})


def _l2pop_flows(wiring: Wiring, net: LocalNet, remotes: list[Remote]) -> list[Flow]:
    """Unicast to the remote ports' tunnels and, with the ARP responder, answers for their IPv4s."""
    vni = net.segment.segmentation_id
    flows = []
    for remote in remotes:
        if remote.mac is None:
            continue
        flows.append(Flow(UCAST_TO_TUN, 2, f"dl_vlan={net.vlan},dl_dst={remote.mac}",
                          f"pop_vlan,{set_tunnel(vni)},output:{remote.port}"))
        if wiring.arp_responder:
            flows += [Flow(ARP_RESPONDER, 1, f"arp,dl_vlan={net.vlan},arp_tpa={ip}", arp_reply_actions(remote.mac, ip))
                      for ip in remote.ipv4]
    return flows


def arp_reply_actions(mac: str, ip: str) -> str:
    """Neutron's ARP responder: turn the request into the reply for (``ip``, ``mac``), send it back."""
    return ",".join((
        "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]", f"set_field:{mac}->eth_src", "set_field:2->arp_op",
        "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]", "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[]",
        f"set_field:{mac}->arp_sha", f"set_field:{ip}->arp_spa", "IN_PORT",
    ))


def push_vlan(vid: int) -> str:
    """Tag an untagged packet with ``vid``."""
    return f"push_vlan:{ETH_TYPE_8021Q:#x},{set_vlan(vid)}"


def set_vlan(vid: int) -> str:
    """Rewrite a tagged packet's VLAN id to ``vid``."""
    return f"set_field:{VLAN_CFI + vid}->vlan_vid"


def set_tunnel(vni: int) -> str:
    return f"set_field:{vni:#x}->tun_id"
