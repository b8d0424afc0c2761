"""The OVS agent's planner: host view + settings + observed switch + last applied flows -> ``Plan`` (pure).

``plan(view, settings, observed, applied)`` decides everything the OVS agent does to its node;
the runtime carries out ``Plan.ops`` (drivers) and reports ``Plan.port_status``. No I/O, no clock,
no randomness, no globals: equal inputs give equal plans, whatever the order of the tuples inside
them (everything is indexed and sorted here).

Contract
- ``ops`` in apply order: ``EnsureBridge`` (br-int, br-tun when tunnelling, each mapping bridge;
  all ``fail_mode=secure`` and ``datapath_type`` from the settings, as Neutron does), ``EnsurePort``
  (patch pairs, vxlan ports), ``SetPortTag`` (VIFs' local VLANs, dead VLAN), ``DeletePort`` (our own
  stale ports only: vxlan-* on br-tun, unconfigured patch ports; never a VIF), then ``ReplaceFlows``
  per bridge. An OVSDB op appears only when the observed switch differs from what is wanted, so a
  restarted agent facing a switch that is already right emits none.
- ``ReplaceFlows(bridge)`` appears when the bridge's desired flows differ from ``applied[bridge]``
  (absent after an agent start), when the bridge's observed count of ``AGENT_COOKIE`` flows is
  known and differs from their number (ovs-vswitchd restarted, someone flushed it), or when the
  bridge is missing or about to be (re)configured by an ``EnsureBridge``.
- ``flows``: every managed bridge -> its desired flows (``baryon.agent.plan.flows``); the runtime
  stores it as the next ``applied`` once the ops succeeded.
- ``local_vlans``: network id -> local VLAN, for every network that is *active* here: it has an
  admin-up port in the view and this host can carry its segment (vxlan: ``local_ip`` set and vxlan
  in ``tunnel_types``; flat/vlan: its physnet in ``bridge_mappings``). A network keeps the VLAN its
  ports carry (Port ``tag``, else ``other_config:tag``; the network from ``other_config:net_uuid``,
  else from the port's iface-id), the claim of most ports winning; new networks take the smallest
  free VLAN in 1..4094, in network id order.
- ``port_status``: every view port -> ACTIVE when it is admin up, its network has a local VLAN
  and its VIF (a port on br-int whose Interface ``external_ids:iface-id`` is the port id, with a
  positive ofport) exists; else DOWN. ``down_reasons`` says why for each DOWN port.
- Local VLAN exhaustion (more than 4094 active networks): the networks left without a VLAN are
  not wired, their ports are DOWN with the reason "no free local VLAN" and their VIFs sit on the
  dead VLAN. Nothing is raised: the other networks keep working.
- Spoofing protection (``baryon.agent.plan.flows.SpoofGuard``): every VIF that is wired (its
  port admin up, its network with a local VLAN), has an OpenFlow port and a name ovs-ofctl
  parses, and whose port has port security and is not a ``network:*`` port, may send only from
  its port's MAC and its allowed address pairs' MACs, and claim (ARP, IPv6 neighbour
  advertisements) only its fixed IPs, its pairs' addresses and its MACs' link-local addresses,
  as Neutron's agent installs for every such port whatever the firewall driver.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from baryon.agent.plan.firewall_rules import IPV4, IPV6, is_trusted, link_local, network, printed_host, set_member
from baryon.agent.plan.flows import (PATCH_INT, PATCH_TUN, LocalNet, PhysicalLink, Remote, SpoofGuard, Wiring,
                                     desired_flows)
from baryon.model.host import FLAT, TUNNEL_TYPES, VLAN, VXLAN, HostView, Network, Port
from baryon.model.ovs import (DEAD_VLAN, DeletePort, EnsureBridge, EnsurePort, ObservedBridge, ObservedPort,
                              ObservedSwitch, Op, OvsAgentSettings, ReplaceFlows, SetPortTag)

ACTIVE, DOWN = "ACTIVE", "DOWN"
MIN_VLAN, MAX_VLAN = 1, 4094
FAIL_MODE = "secure"
IFNAMSIZ = 15  # interface names are at most 15 bytes
INTERFACE_HASH_LEN = 6  # Neutron's get_interface_name
PEER_INTEGRATION_PREFIX, PEER_PHYSICAL_PREFIX = "int-", "phy-"
VXLAN_PORT_PREFIX = f"{VXLAN}-"
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_SAFE_PORT_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")  # names ovs-ofctl parses unquoted in a flow


@dataclass(frozen=True)
class Plan:
    ops: tuple[Op, ...]
    port_status: dict[str, str]
    local_vlans: dict[str, int]
    flows: dict[str, tuple[str, ...]]
    down_reasons: dict[str, str] = field(default_factory=dict)  # DOWN port id -> why


# ---------------------------------------------------------------- names (Neutron's)


def interface_name(name: str, prefix: str) -> str:
    """``prefix + name``, shortened as Neutron does (truncated name + 6 hex of its SHA-1) past 15 bytes."""
    wanted = prefix + name
    if len(wanted.encode()) <= IFNAMSIZ:
        return wanted
    keep = IFNAMSIZ - len(prefix) - INTERFACE_HASH_LEN
    digest = hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:INTERFACE_HASH_LEN]
    return f"{prefix}{name[:keep]}{digest}"


def patch_names(bridge: str) -> tuple[str, str]:
    """(int-<bridge> on br-int, phy-<bridge> on the mapping bridge)."""
    return interface_name(bridge, PEER_INTEGRATION_PREFIX), interface_name(bridge, PEER_PHYSICAL_PREFIX)


def tunnel_port_name(remote_ip: str, network_type: str = VXLAN) -> str:
    """Neutron's name: ``vxlan-`` + the IPv4 address in 8 hex digits; IPv6: a base32 SHA-1 prefix."""
    addr = ipaddress.ip_address(remote_ip)
    if addr.version == 4:
        return f"{network_type}-{int(addr):08x}"
    hashlen = IFNAMSIZ - len(network_type) - 1
    digest = base64.b32encode(hashlib.sha1(remote_ip.encode(), usedforsecurity=False).digest())
    return f"{network_type}-{digest[:hashlen].decode().lower()}"


# ---------------------------------------------------------------- the inputs, indexed


@dataclass(frozen=True)
class _Host:
    """The planner's indexes over its inputs (built once: no linear look-ups per port)."""

    settings: OvsAgentSettings
    ports: dict[str, Port]  # view port id -> port
    networks: dict[str, Network]
    vifs: dict[str, tuple[ObservedPort, ...]]  # iface-id -> its ports on br-int, by name
    observed_ports: dict[str, ObservedPort]
    observed_bridges: dict[str, ObservedBridge]
    links: tuple[PhysicalLink, ...]

    @property
    def tunnelling(self) -> bool:
        return bool(self.settings.local_ip) and VXLAN in self.settings.tunnel_types

    @property
    def bridges(self) -> tuple[str, ...]:
        """Managed bridges in the order their ops are emitted."""
        tun = (self.settings.tunnel_bridge,) if self.tunnelling else ()
        return (self.settings.integration_bridge, *tun, *(link.bridge for link in self.links))


def _index(view: HostView, settings: OvsAgentSettings, observed: ObservedSwitch) -> _Host:
    int_br = settings.integration_bridge
    vifs: dict[str, list[ObservedPort]] = {}
    for port in sorted(observed.ports, key=lambda p: p.name):
        if port.bridge == int_br and port.iface_id:
            vifs.setdefault(port.iface_id, []).append(port)
    return _Host(
        settings=settings,
        ports={p.id: p for p in sorted(view.ports, key=lambda p: p.id)},
        networks={n.id: n for n in sorted(view.networks, key=lambda n: n.id)},
        vifs={iface: tuple(ports) for iface, ports in sorted(vifs.items())},
        observed_ports={p.name: p for p in sorted(observed.ports, key=lambda p: p.name)},
        observed_bridges={b.name: b for b in sorted(observed.bridges, key=lambda b: b.name)},
        links=_links(settings),
    )


def _links(settings: OvsAgentSettings) -> tuple[PhysicalLink, ...]:
    """One link per mapping bridge (first physnet wins a bridge named twice); never br-int/br-tun."""
    links: dict[str, PhysicalLink] = {}
    for physnet, bridge in sorted(settings.bridge_mappings):
        if bridge in (settings.integration_bridge, settings.tunnel_bridge) or bridge in links:
            continue
        if any(link.physnet == physnet for link in links.values()):
            continue
        links[bridge] = PhysicalLink(physnet, bridge, *patch_names(bridge))
    return tuple(sorted(links.values(), key=lambda link: link.bridge))


# ---------------------------------------------------------------- the plan


def plan(view: HostView, settings: OvsAgentSettings, observed: ObservedSwitch,
         applied: dict[str, tuple[str, ...]]) -> Plan:
    """What to do so that this node's Open vSwitch carries ``view`` (see the module docstring)."""
    host = _index(view, settings, observed)
    unwired = _unwireable_networks(host)
    active = sorted({p.network_id for p in host.ports.values()
                     if p.admin_state_up and p.network_id in host.networks and p.network_id not in unwired})
    vlans = allocate_vlans(active, _vlan_claims(host, set(active)))
    status, reasons = _port_status(host, vlans, unwired)
    tags, dead = _tag_ops(host, vlans)
    tunnels, remotes = _tunnels(view, host, vlans)
    wanted_ports = _desired_ports(host, tunnels)
    ensure_bridges = _ensure_bridge_ops(host)
    wiring = Wiring(
        integration_bridge=settings.integration_bridge,
        tunnel_bridge=settings.tunnel_bridge if host.tunnelling else None,
        links=host.links,
        nets=tuple(LocalNet(n, vlans[n], host.networks[n].segment) for n in sorted(vlans)),
        tunnel_ports=tuple(sorted(tunnels.values())),
        remotes=remotes,
        dead_ports=dead,
        l2_population=settings.l2_population,
        arp_responder=settings.arp_responder and settings.l2_population,  # as Neutron: needs l2pop
        guards=_guards(host, vlans),
    )
    flows = desired_flows(wiring)
    ops = (
        *ensure_bridges,
        *_ensure_port_ops(host, wanted_ports),
        *tags,
        *_delete_port_ops(host, {(p.bridge, p.name) for p in wanted_ports}),
        *_replace_flow_ops(host, flows, applied, reset={op.name for op in ensure_bridges}),
    )
    return Plan(ops=ops, port_status=status, local_vlans=dict(sorted(vlans.items())), flows=flows,
                down_reasons=reasons)


def _unwireable_networks(host: _Host) -> dict[str, str]:
    """Network id -> why this host cannot carry its segment."""
    physnets = {link.physnet for link in host.links}
    reasons = {}
    for net in host.networks.values():
        seg = net.segment
        if seg.network_type in TUNNEL_TYPES:
            if not host.tunnelling:
                reasons[net.id] = f"{seg.network_type} network but tunnelling is off here (local_ip, tunnel_types)"
            elif seg.segmentation_id is None:
                reasons[net.id] = f"{seg.network_type} network without a VNI"
        elif seg.network_type in (FLAT, VLAN):
            if seg.physical_network not in physnets:
                reasons[net.id] = f"no bridge_mappings entry for physical network {seg.physical_network}"
            elif seg.network_type == VLAN and not (seg.segmentation_id and MIN_VLAN <= seg.segmentation_id <= MAX_VLAN):
                reasons[net.id] = f"vlan network with segmentation id {seg.segmentation_id}"
        else:
            reasons[net.id] = f"network type {seg.network_type} is not supported by this agent"
    return reasons


# ---------------------------------------------------------------- local VLANs


def _vlan_claims(host: _Host, active: set[str]) -> Counter[tuple[str, int]]:
    """(network id, VLAN) -> how many ports on br-int carry that VLAN for that network (Neutron's
    ``_restore_local_vlan_map``: the network from other_config's net_uuid, the VLAN from the tag)."""
    claims: Counter[tuple[str, int]] = Counter()
    for port in host.observed_ports.values():
        if port.bridge != host.settings.integration_bridge or port.tag == DEAD_VLAN:
            continue
        other = dict(port.other_config)
        network_id = other.get("net_uuid")
        if network_id is None and port.iface_id in host.ports:
            network_id = host.ports[port.iface_id].network_id
        vlan = port.tag if port.tag is not None else _as_int(other.get("tag"))
        if network_id in active and vlan is not None and MIN_VLAN <= vlan <= MAX_VLAN:
            claims[(network_id, vlan)] += 1
    return claims


def allocate_vlans(networks: list[str], claims: Mapping[tuple[str, int], int]) -> dict[str, int]:
    """Stable local VLANs: claimed VLANs first (most ports first, then lowest VLAN, then network id),
    then the smallest free VLAN for each remaining network in id order; none left: not in the result."""
    wanted = set(networks)
    vlans: dict[str, int] = {}
    used: set[int] = set()
    for (network_id, vlan), _ in sorted(claims.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0])):
        if network_id in wanted and network_id not in vlans and vlan not in used:
            vlans[network_id] = vlan
            used.add(vlan)
    free = (vlan for vlan in range(MIN_VLAN, MAX_VLAN + 1) if vlan not in used)
    for network_id in sorted(networks):
        if network_id in vlans:
            continue
        vlan = next(free, None)
        if vlan is None:
            break
        vlans[network_id] = vlan
    return vlans


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------- ports on br-int


def _port_status(host: _Host, vlans: dict[str, int],
                 unwired: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    status: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for port in host.ports.values():
        if not port.admin_state_up:
            reason = "admin_state_up is false"
        elif port.network_id not in host.networks:
            reason = f"network {port.network_id} is not in the host view"
        elif port.network_id in unwired:
            reason = unwired[port.network_id]
        elif port.network_id not in vlans:
            reason = f"no free local VLAN on {host.settings.integration_bridge} ({MIN_VLAN}-{MAX_VLAN} all in use)"
        elif not any(_attached(vif) for vif in host.vifs.get(port.id, ())):
            reason = f"no VIF with iface-id {port.id} on {host.settings.integration_bridge}"
        else:
            status[port.id] = ACTIVE
            continue
        status[port.id] = DOWN
        reasons[port.id] = reason
    return status, reasons


def _attached(port: ObservedPort) -> bool:
    return isinstance(port.ofport, int) and port.ofport > 0


def _tag_ops(host: _Host, vlans: dict[str, int]) -> tuple[list[SetPortTag], tuple[str, ...]]:
    """Tags for every port on br-int that has an iface-id, and the dead VIFs that need a drop flow.

    NOTE: a VIF is tagged whatever its ofport (a tag set before the device appears costs nothing
    and saves a round when it does); only dead VIFs with an OpenFlow port get a drop flow, since a
    flow naming a port the switch does not have would make the whole bundle fail.
    """
    ops: list[SetPortTag] = []
    dead: list[str] = []
    for vifs in host.vifs.values():
        for vif in vifs:
            port = host.ports.get(vif.iface_id or "")
            vlan = vlans.get(port.network_id) if port is not None and port.admin_state_up else None
            if port is not None and vlan is not None:
                wanted = _local_vlan_config(port, host.networks[port.network_id], vlan)
                current = dict(vif.other_config)
                if vif.tag != vlan or any(current.get(k) != v for k, v in wanted):
                    ops.append(SetPortTag(vif.name, vlan, wanted))
                continue
            if vif.tag != DEAD_VLAN:
                ops.append(SetPortTag(vif.name, DEAD_VLAN))
            if _attached(vif) and _SAFE_PORT_NAME_RE.match(vif.name):
                dead.append(vif.name)
    return sorted(ops, key=lambda op: op.name), tuple(sorted(dead))


def _guards(host: _Host, vlans: dict[str, int]) -> tuple[SpoofGuard, ...]:
    """The spoofing checks of the wired VIFs whose ports have port security (module docstring)."""
    guards = []
    for vifs in host.vifs.values():
        for vif in vifs:
            port = host.ports.get(vif.iface_id or "")
            if (port is None or not port.admin_state_up or port.network_id not in vlans
                    or not port.port_security_enabled or is_trusted(port)
                    or not _attached(vif) or not _SAFE_PORT_NAME_RE.match(vif.name)):
                continue
            guards.append(spoof_guard(vif.name, port))
    return tuple(sorted(guards))


def spoof_guard(name: str, port: Port) -> SpoofGuard:
    """What the VIF ``name`` of ``port`` may send as: Neutron's ``setup_arp_spoofing_protection``.

    NOTE: a MAC or an address that does not parse is left out (it would fail the whole flow
    bundle); with no valid MAC left the VIF may send nothing, which is what its port allows.
    Plain addresses are read with ``printed_host`` (socket, not ``ipaddress``): the planner runs
    this for every guarded port on every run, ~10 times faster so at 1,000 ports."""
    macs = {mac for mac in (m.lower() for m in (port.mac_address, *(p.mac_address for p in
                                                                        port.allowed_address_pairs)) if m)
            if _MAC_RE.match(mac)}
    claims: dict[str, set[str]] = {IPV4: set(), IPV6: {lla for lla in map(_link_local, macs) if lla}}
    anything: set[str] = set()  # the families with a /0 among their addresses
    for text in (*port.fixed_ips, *(p.ip_address for p in port.allowed_address_pairs)):
        host = printed_host(text)
        if host is not None:
            claims[host[0]].add(host[1])
            continue
        net = network(text)
        if net is None:
            continue
        family = IPV4 if net.version == 4 else IPV6
        claims[family].add(set_member(net))  # as ovs-ofctl prints a match: a host without its prefix
        if net.prefixlen == 0:
            anything.add(family)
    ipv4, ipv6 = (None if family in anything else tuple(sorted(claims[family])) for family in (IPV4, IPV6))
    return SpoofGuard(name, tuple(sorted(macs)), ipv4, ipv6)


@functools.lru_cache(maxsize=4096)
def _link_local(mac: str) -> str | None:
    address = link_local(mac)
    return None if address is None else str(address)


def _local_vlan_config(port: Port, network: Network, vlan: int) -> tuple[tuple[str, str], ...]:
    """Neutron's Port other_config: how a restarted agent finds its local VLANs again."""
    seg = network.segment
    return (
        ("net_uuid", port.network_id),
        ("network_type", seg.network_type),
        ("physical_network", seg.physical_network or "None"),
        ("segmentation_id", str(seg.segmentation_id) if seg.segmentation_id is not None else "None"),
        ("tag", str(vlan)),
    )


# ---------------------------------------------------------------- tunnels


def _tunnels(view: HostView, host: _Host, vlans: dict[str, int]) -> tuple[dict[str, str], tuple[Remote, ...]]:
    """(remote tunnel IP -> vxlan port name, the l2population entries to install), for the remote
    ports of this host's active vxlan networks; the local_ip itself and unparsable IPs are ignored."""
    if not host.tunnelling:
        return {}, ()
    local = _ip(host.settings.local_ip or "")
    tunnels: dict[str, str] = {}
    remotes: set[Remote] = set()
    for entry in view.remote_ports:
        net = host.networks.get(entry.network_id)
        ip = _ip(entry.tunnel_ip)
        if net is None or net.segment.network_type != VXLAN or entry.network_id not in vlans:
            continue
        if ip is None or ip == local:
            continue
        name = tunnels.setdefault(ip, tunnel_port_name(ip))
        mac = entry.mac_address.lower()
        ipv4 = tuple(sorted({a for a in (_ip(f) for f in entry.fixed_ips) if a and ":" not in a}))
        remotes.add(Remote(entry.network_id, name, mac if _MAC_RE.match(mac) else None, ipv4))
    ordered = sorted(remotes, key=lambda r: (r.network_id, r.port, r.mac or "", r.ipv4))
    return dict(sorted(tunnels.items())), tuple(ordered)


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _tunnel_options(settings: OvsAgentSettings, remote_ip: str) -> tuple[tuple[str, str], ...]:
    """Neutron's vxlan Interface options (``ovs_lib.add_tunnel_port``), dst_port always explicit."""
    return (
        ("df_default", "true"),
        ("dst_port", str(settings.vxlan_udp_port)),
        ("egress_pkt_mark", "0"),
        ("in_key", "flow"),
        ("local_ip", settings.local_ip or ""),
        ("out_key", "flow"),
        ("remote_ip", remote_ip),
    )


# ---------------------------------------------------------------- OVSDB ops


def _ensure_bridge_ops(host: _Host) -> list[EnsureBridge]:
    wanted_dp = host.settings.datapath_type or "system"
    ops = []
    for name in host.bridges:
        seen = host.observed_bridges.get(name)
        if seen is None or (seen.datapath_type or "system") != wanted_dp or seen.fail_mode != FAIL_MODE:
            ops.append(EnsureBridge(name, host.settings.datapath_type, FAIL_MODE))
    return ops


def _desired_ports(host: _Host, tunnels: dict[str, str]) -> list[EnsurePort]:
    settings = host.settings
    int_br, tun_br = settings.integration_bridge, settings.tunnel_bridge
    ports = []
    if host.tunnelling:
        ports += [EnsurePort(int_br, PATCH_TUN, "patch", (("peer", PATCH_INT),)),
                  EnsurePort(tun_br, PATCH_INT, "patch", (("peer", PATCH_TUN),))]
    for link in host.links:
        ports += [EnsurePort(int_br, link.int_port, "patch", (("peer", link.phy_port),)),
                  EnsurePort(link.bridge, link.phy_port, "patch", (("peer", link.int_port),))]
    for ip, name in sorted(tunnels.items(), key=lambda item: item[1]):
        ports.append(EnsurePort(tun_br, name, VXLAN, _tunnel_options(settings, ip)))
    return ports


def _ensure_port_ops(host: _Host, wanted: list[EnsurePort]) -> list[EnsurePort]:
    ops = []
    for want in wanted:
        seen = host.observed_ports.get(want.name)
        if (seen is None or seen.bridge != want.bridge or seen.type != want.type
                or dict(seen.options) != dict(want.options)):
            ops.append(want)
    return ops


def _delete_port_ops(host: _Host, wanted: set[tuple[str, str]]) -> list[DeletePort]:
    """Our own ports that are no longer wanted: vxlan-* on br-tun, patch-tun/patch-int, int-*/phy-* pairs."""
    int_br, tun_br = host.settings.integration_bridge, host.settings.tunnel_bridge
    ops = []
    for port in host.observed_ports.values():
        if (port.bridge, port.name) in wanted:
            continue
        peer = dict(port.options).get("peer", "")
        ours = (
            (port.bridge == tun_br and port.type == VXLAN and port.name.startswith(VXLAN_PORT_PREFIX))
            or (port.type == "patch" and (
                (port.bridge == int_br and port.name == PATCH_TUN)
                or (port.bridge == tun_br and port.name == PATCH_INT)
                or (port.bridge == int_br and port.name.startswith(PEER_INTEGRATION_PREFIX)
                    and peer.startswith(PEER_PHYSICAL_PREFIX))
                or (port.bridge not in (int_br, tun_br) and port.name.startswith(PEER_PHYSICAL_PREFIX)
                    and peer.startswith(PEER_INTEGRATION_PREFIX))))
        )
        if ours:
            ops.append(DeletePort(port.bridge, port.name))
    return sorted(ops, key=lambda op: (op.bridge, op.name))


# ---------------------------------------------------------------- flows


def _replace_flow_ops(host: _Host, flows: dict[str, tuple[str, ...]], applied: dict[str, tuple[str, ...]],
                      reset: set[str]) -> list[ReplaceFlows]:
    ops = []
    for bridge in host.bridges:
        want = flows[bridge]
        seen = host.observed_bridges.get(bridge)
        stale = (
            bridge not in applied or tuple(applied[bridge]) != want
            or seen is None or bridge in reset
            or (seen.flow_count is not None and seen.flow_count != len(want))
        )
        if stale:
            ops.append(ReplaceFlows(bridge, want))
    return ops
