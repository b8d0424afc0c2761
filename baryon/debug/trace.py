"""``baryon debug trace``: follow a packet from a port to an address through the real system.

``main(reach, args)`` asks the API what the packet should meet (the source port, its network and
segment, the destination's port or the subnet's router interface, security groups and rules,
routers, floating IPs) and each node what it really does, read-only:

1. the source port's egress firewall: the port's groups' egress rules (``baryon.debug.secgroups``)
   and, on its host, the port's chain ``neutron-openvswi-o<id10>`` holding the allowing rule
   (``iptables-save``); a port without port security is not filtered;
2. ``ovs-appctl ofproto/trace br-int`` from the port's ``qvo`` (or ``tap``) with the next hop's MAC
   (the destination port on the same subnet, else the subnet's router interface): OVS follows
   the patch ports itself (br-int -> br-tun, br-int -> br-ex); the datapath actions say where the
   packet leaves the node (``baryon.debug.ofproto``): a local port, a VXLAN tunnel (remote node by
   its ``local_ip``, VNI), a physical network, or nowhere;
3. on the remote node, ``ofproto/trace br-tun`` from the VXLAN port whose ``remote_ip`` is the
   sending node, with the VNI: through br-int to the destination's device;
4. at a router interface, in ``qrouter-<router>`` on the L3 node: the nat table
   (``iptables-save -t nat``: DNAT of a floating address in PREROUTING, then SNAT in POSTROUTING,
   ``baryon.debug.routing``) and ``ip route get DST from SRC iif qr-...``; then the segment after
   it: ``qr-`` -> br-int (and maybe a tunnel) -> the destination port, or ``qg-`` -> br-int ->
   br-ex -> the physical network (the external world);
5. the destination port's ingress firewall, as in 1 with its chain ``neutron-openvswi-i<id10>``.

Nothing is injected: ``ofproto/trace`` runs the tables on a made-up packet; learned MACs matter
(an unknown MAC is flooded, and the trace says so). Output: ``baryon.debug.path``. Exit status:
0 when the packet is delivered to a port or leaves to an external network, 1 when it is dropped
(and, through ``baryon.cli.debug``, on errors such as an unknown port).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from baryon.agent.plan.firewall import port_chain
from baryon.debug import ofproto, routing, secgroups
from baryon.debug.path import DELIVERED, DROPPED, FORWARDED, Hop, Path, as_json, render_text
from baryon.debug.reach import DebugError, LabReach
from baryon.debug.secgroups import EGRESS, INGRESS, Packet

ROUTER_INTERFACE, ROUTER_GATEWAY, DHCP = "network:router_interface", "network:router_gateway", "network:dhcp"
BROADCAST = "ff:ff:ff:ff:ff:ff"
T = TypeVar("T")
MAX_ROUTERS = 3  # routers crossed before the trace gives up (a routing loop)


def main(reach: LabReach, args: argparse.Namespace) -> int:
    path = Tracer(reach).trace(args.source, args.destination, args.proto, args.dport, args.sport)
    print(json.dumps(as_json(path), indent=2) if args.json else render_text(path), end="" if not args.json else "\n")
    return 0 if path.verdict and path.verdict.ok else 1


def short(port_id: str) -> str:
    return port_id[:11]


def ovs_device(port: dict) -> str:
    """The port's device on br-int: ``qvo`` (a VM, hybrid plugging) or ``tap`` (a namespace's veth)."""
    return ("tap" if port.get("device_owner", "").startswith("network:") else "qvo") + short(port["id"])


@dataclass
class Frame:
    """The packet as it is at a point of the path."""

    src: str
    dst: str
    dl_src: str
    dl_dst: str


class Tracer:
    def __init__(self, reach: LabReach) -> None:
        self.reach = reach
        self.api = reach.api
        self.path: Path | None = None
        self.packet: Packet | None = None
        self.routers = 0
        self.sport: int | None = None
        self._memo: dict[tuple[str, ...], Any] = {}

    def once(self, key: tuple[str, ...], read: Callable[[], T]) -> T:
        """``read()`` once per trace: the API and the nodes are read once, then kept."""
        if key not in self._memo:
            self._memo[key] = read()
        return self._memo[key]

    # ------------------------------------------------------------ API look-ups (cached per trace)

    def ports(self) -> tuple[dict, ...]:
        return self.once(("ports",), lambda: tuple(self.api.get("/v2.0/ports")["ports"]))

    def network(self, network_id: str) -> dict:
        return self.once(("network", network_id), lambda: self.api.get(f"/v2.0/networks/{network_id}")["network"])

    def subnets(self, network_id: str) -> tuple[dict, ...]:
        return self.once(("subnets", network_id),
                         lambda: tuple(self.api.get("/v2.0/subnets", network_id=network_id)["subnets"]))

    def floating_ips(self) -> tuple[dict, ...]:
        return self.once(("fips",), lambda: tuple(self.api.get("/v2.0/floatingips")["floatingips"]))

    def group_rules(self, group_id: str) -> tuple[dict, ...]:
        return self.once(("rules", group_id), lambda: tuple(
            self.api.get("/v2.0/security-group-rules", security_group_id=group_id)["security_group_rules"]))

    def port_with_ip(self, network_id: str, address: str) -> dict | None:
        return next((p for p in self.ports() if p["network_id"] == network_id
                     and any(ip["ip_address"] == address for ip in p["fixed_ips"])), None)

    def net_label(self, network_id: str) -> str:
        net = self.network(network_id)
        return f"{net.get('name') or '-'} ({network_id})"

    def segment(self, network_id: str) -> str:
        net = self.network(network_id)
        kind, seg, phys = (net.get("provider:network_type"), net.get("provider:segmentation_id"),
                           net.get("provider:physical_network"))
        if kind == "vxlan":
            return f"vxlan VNI {seg}"
        return f"{kind} on {phys}" + (f" VLAN {seg}" if seg is not None else "")

    def port_label(self, port: dict) -> str:
        vm = self.reach.vm_of_port(port["id"])
        owner = f"VM {vm.name}" if vm else port.get("device_owner") or "no owner"
        name = f" {port['name']}" if port.get("name") else ""
        return f"{port['id']}{name} ({owner})"

    # ------------------------------------------------------------ node look-ups (cached per trace)

    def dpif(self, node: str) -> list[ofproto.DpPort]:
        return self.once(("dpif", node), lambda: ofproto.parse_dpif_show(self.appctl(node, "dpif/show")))

    def port_tags(self, node: str) -> dict[str, int]:
        def read() -> dict[str, int]:
            out = self.reach.run(node, ["ovs-vsctl", "--format=json", "--columns=name,tag", "list", "Port"])
            return {name: tag for name, tag in json.loads(out)["data"] if isinstance(tag, int)}
        return self.once(("tags", node), read)

    def iptables(self, node: str) -> dict[str, list[str]]:
        return self.once(("iptables", node),
                         lambda: routing.parse_save(self.reach.run(node, ["iptables-save", "-t", "filter"])))

    def appctl(self, node: str, *argv: str) -> str:
        return self.reach.run(node, ["ovs-appctl", *argv])  # the node's: OVS_RUNDIR names its rundir

    def node_of_ip(self, local_ip: str) -> str | None:
        return next((n.name for n in self.reach.nodes() if n.local_ip == local_ip), None)

    def lab_host_of(self, address: str) -> str | None:
        """The lab node that holds ``address`` (the external node's 203.0.113.1, 198.51.100.1)."""
        for node in self.reach.topology.nodes:
            held = [link.address.split("/")[0] for link in node.links if link.address]
            if address in held or address in node.loopback_addresses:
                return node.name
        return None

    # ------------------------------------------------------------ the trace

    def trace(self, source: str, destination: str, proto: str = "icmp", dport: int | None = None,
              sport: int | None = None) -> Path:
        port = self.reach.port(source)
        try:
            dst = str(ipaddress.ip_address(destination))
        except ValueError:
            raise DebugError(f"--to {destination!r} is not an IP address") from None
        if ipaddress.ip_address(dst).version != 4:
            raise DebugError("only IPv4 destinations are traced")
        if proto in ("tcp", "udp") and dport is None:
            raise DebugError(f"--proto {proto} needs --dport")
        src = next((ip["ip_address"] for ip in port["fixed_ips"] if ":" not in ip["ip_address"]), None)
        node = port.get("binding:host_id")
        if src is None:
            raise DebugError(f"port {port['id']} has no IPv4 address")
        self.packet = Packet(src, dst, proto, dport if proto != "icmp" else None)
        self.sport = sport
        what = proto if proto == "icmp" else f"{proto}/{dport}"
        self.path = Path(f"{what} {src} -> {dst}", {
            "port": port["id"], "name": port.get("name") or None, "vm": getattr(self.reach.vm_of_port(port["id"]), "name", None),
            "node": node, "mac": port["mac_address"], "ip": src, "network": self.net_label(port["network_id"]),
            "segment": self.segment(port["network_id"])}, dst)
        path = self.path
        hop = path.add(Hop(node or "-", f"port {short(port['id'])}", f"sends {what} to {dst}", kind="port", objects={
            "port": self.port_label(port), "network": self.net_label(port["network_id"]),
            "segment": self.segment(port["network_id"])}))
        if not node or port.get("binding:vif_type") in (None, "unbound", "binding_failed"):
            path.end(DROPPED, f"port {port['id']} is not bound to a host (binding:vif_type "
                              f"{port.get('binding:vif_type')}): nothing carries its packets")
            return path
        hop.details.append(f"MAC {port['mac_address']}, IP {src}, status {port.get('status')}")
        if not self.firewall(port, node, EGRESS, self.packet):
            return path
        frame = Frame(src, dst, port["mac_address"], "")
        self.to_next_hop(port, node, ovs_device(port), frame)
        return path

    def to_next_hop(self, port: dict, node: str, in_port: str, frame: Frame) -> None:
        """From ``port`` (on ``node``, entering br-int by ``in_port``) to the next hop in its network:
        the port that holds the destination, or the subnet's router interface."""
        network_id = port["network_id"]
        target, why = self.next_hop(port, frame.dst)
        if target is None:
            self.path.end(DROPPED, why, at_hop=False)
            return
        frame.dl_dst = target["mac_address"]
        if not self.switch(node, in_port, frame, network_id, target):
            return
        self.arrive(target, frame)

    def next_hop(self, port: dict, dst: str) -> tuple[dict | None, str]:
        address = ipaddress.ip_address(dst)
        for subnet in self.subnets(port["network_id"]):
            if subnet["ip_version"] == 4 and address in ipaddress.ip_network(subnet["cidr"]):
                found = self.port_with_ip(port["network_id"], dst)
                if found is None:
                    return None, (f"{dst} is on subnet {subnet['cidr']} of network "
                                  f"{self.net_label(port['network_id'])} but no port has it: ARP gets no answer")
                return found, ""
        mine = {ip["subnet_id"] for ip in port["fixed_ips"]}
        for subnet in self.subnets(port["network_id"]):
            if subnet["id"] in mine and subnet["ip_version"] == 4:
                gateway = subnet.get("gateway_ip")
                router_port = self.port_with_ip(port["network_id"], gateway) if gateway else None
                if router_port is None:
                    return None, (f"{dst} is off subnet {subnet['cidr']}, whose gateway "
                                  f"{gateway or '(none)'} is no router interface: no next hop")
                return router_port, ""
        return None, f"port {port['id']} has no IPv4 subnet"

    # ------------------------------------------------------------ firewalls

    def firewall(self, port: dict, node: str, direction: str, packet: Packet) -> bool:
        """The port's firewall hop; False (and the path ended) when it drops the packet."""
        device = f"qbr{short(port['id'])}"
        verb = "egress from" if direction == EGRESS else "ingress to"
        if port.get("device_owner", "").startswith("network:"):
            return True
        if not port.get("port_security_enabled", True):
            self.path.add(Hop(node, device, f"{verb} the port: not filtered (port_security_enabled false)",
                              kind="firewall", objects={"port": port["id"]}))
            return True
        groups = sorted(port.get("security_groups") or [])
        rules = [rule for group in groups for rule in self.group_rules(group)]
        members = self.group_members({r["remote_group_id"] for r in rules if r.get("remote_group_id")})
        members |= self.address_groups({r["remote_address_group_id"] for r in rules
                                        if r.get("remote_address_group_id")})
        decision = secgroups.evaluate(rules, direction, packet, members, groups)
        chain = port_chain(port["id"], "o" if direction == EGRESS else "i")
        hop = self.path.add(Hop(node, f"{device} netfilter", "", kind="firewall",
                                objects={"port": port["id"], "security_group": ", ".join(groups) or "(none)"}))
        chains = self.iptables(node)
        if not decision.allowed:
            hop.summary = f"{verb} the port: DROP ({decision.reason})"
            hop.details.append(f"{chain} ends in neutron-openvswi-sg-fallback: -j DROP")
            self.path.end(DROPPED, f"{port['id']}'s firewall on {node}: {decision.reason}")
            return False
        rule = decision.rule
        hop.summary = f"{verb} the port: allowed by rule {rule['id']} ({secgroups.describe_rule(rule)})"
        hop.objects |= {"security_group": rule["security_group_id"], "rule": rule["id"]}
        if chain not in chains:
            hop.summary = f"{verb} the port: chain {chain} is missing on {node}"
            self.path.end(DROPPED, f"the firewall of port {port['id']} is not applied on {node} (no chain {chain}): "
                                   "its port is not wired")
            return False
        if decision.iptables not in chains[chain]:
            hop.details.append(f"the chain lacks -A {chain} {decision.iptables}")
            self.path.end(DROPPED, f"rule {rule['id']} allows it in the API, but {chain} on {node} does not hold "
                                   "it yet: the OVS agent has not applied it")
            return False
        hop.details.append(f"-A {chain} {decision.iptables}")
        return True

    def group_members(self, groups: set[str]) -> dict[str, list[str]]:
        members: dict[str, list[str]] = {g: [] for g in groups}
        for port in self.ports():
            for group in set(port.get("security_groups") or []) & groups:
                members[group] += [ip["ip_address"] for ip in port["fixed_ips"]]
                members[group] += [pair["ip_address"] for pair in port.get("allowed_address_pairs") or []]
        return members

    def address_groups(self, groups: set[str]) -> dict[str, list[str]]:
        """The CIDRs of each address group (the firewall matches them as a remote group's members)."""
        return {g: list(self.once(("address_group", g), lambda g=g: tuple(
            self.api.get(f"/v2.0/address-groups/{g}")["address_group"]["addresses"]))) for g in sorted(groups)}

    # ------------------------------------------------------------ switches

    def switch(self, node: str, in_port: str, frame: Frame, network_id: str, target: dict) -> bool:
        """br-int (and whatever OVS crosses from it) on ``node`` from ``in_port``, then, across a
        tunnel, the remote node's br-tun: True when the packet reaches ``target``'s device."""
        expected_node, expected = target.get("binding:host_id"), ovs_device(target)
        spec = ofproto.flow_spec(in_port=in_port, proto=self.packet.protocol, dl_src=frame.dl_src,
                                 dl_dst=frame.dl_dst, nw_src=frame.src, nw_dst=frame.dst,
                                 dport=self.packet.dport, sport=self.sport)
        result = self.ofproto(node, "br-int", spec, network_id, in_port)
        outputs = self.classify(node, result)
        if expected_node == node and expected in outputs["ports"]:
            return True
        remote = next((t for t in outputs["tunnels"] if t[0] == expected_node), None)
        if remote is not None:
            return self.across(node, remote, frame, network_id, expected_node, expected)
        if outputs["physnets"] and target.get("device_owner") == ROUTER_GATEWAY:
            return True
        self.dropped_at_switch(node, result, outputs, f"{expected} on {expected_node}")
        return False

    def across(self, node: str, tunnel: tuple[str, int], frame: Frame, network_id: str, expected_node: str,
               expected: str) -> bool:
        remote_node, vni = tunnel
        local_ip, remote_ip = self.reach.node(node).local_ip, self.reach.node(remote_node).local_ip
        vxlan = next((p.name for p in self.dpif(remote_node)
                      if p.type == "vxlan" and p.options.get("remote_ip") == local_ip), None)
        if vxlan is None:
            self.path.add(Hop(remote_node, "br-tun", f"no VXLAN port from {node} ({local_ip})"))
            self.path.end(DROPPED, f"{remote_node} has no tunnel to {node}: l2population has not told it "
                                   f"that {node} has ports on the network")
            return False
        spec = ofproto.flow_spec(in_port=vxlan, proto=self.packet.protocol, dl_src=frame.dl_src, dl_dst=frame.dl_dst,
                                 nw_src=frame.src, nw_dst=frame.dst, dport=self.packet.dport, sport=self.sport,
                                 tun_id=vni, tun_src=local_ip, tun_dst=remote_ip)
        result = self.ofproto(remote_node, "br-tun", spec, network_id, vxlan, vni=vni, from_node=node)
        outputs = self.classify(remote_node, result)
        if remote_node == expected_node and expected in outputs["ports"]:
            return True
        self.dropped_at_switch(remote_node, result, outputs, f"{expected} on {expected_node}")
        return False

    def ofproto(self, node: str, bridge: str, spec: str, network_id: str, in_port: str, vni: int | None = None,
                from_node: str | None = None) -> ofproto.OfTrace:
        result = ofproto.parse_trace(self.appctl(node, "ofproto/trace", bridge, spec))
        outputs = self.classify(node, result)
        tags = self.port_tags(node)
        vlan = self.local_vlan(node, network_id)
        traversed = set()
        for section in result.main_sections():
            if section.bridge not in ("br-int", "br-tun") and section.bridge not in self.mapping_bridges(node):
                continue
            hop = Hop(node, section.bridge, "", details=[step.describe() for step in section.steps])
            hop.objects["network"] = self.net_label(network_id)
            if section.bridge == "br-int":
                hop.objects["local_vlan"] = vlan
                where = (f"in {in_port} (tag {tags.get(in_port)})" if in_port in tags
                         else f"from {'patch-int' if section is not result.main_sections()[0] else in_port}")
                sections = result.main_sections()
                nexts = [s.bridge for s in sections[sections.index(section) + 1:]]
                to = ", ".join([*(f"{n} ({self.device_owner_label(n)})" for n in outputs["ports"]),
                                *(f"patch to {b}" for b in nexts if b in ("br-tun", *self.mapping_bridges(node)))])
                flood = "flooded (destination MAC not learned): " if any("flooding" in n for n in section.notes) else ""
                hop.summary = f"{where} local VLAN {vlan}: {flood}NORMAL -> {to or 'nowhere'}"
            elif section.bridge == "br-tun":
                hop.objects["segment"] = self.segment(network_id)
                if from_node is not None:
                    hop.summary = (f"in {in_port} from {from_node}, VNI {vni} -> local VLAN {vlan} -> patch-int")
                    hop.objects |= {"vni": vni, "remote_node": from_node}
                else:
                    tunnels = [f"{t.name} to {rn} (remote_ip {ip}) VNI {v}" for rn, v, ip, t in outputs["tunnel_ports"]]
                    hop.summary = f"local VLAN {vlan} -> " + ("; ".join(tunnels) if tunnels else "no tunnel")
                    if outputs["tunnels"]:
                        hop.objects |= {"vni": outputs["tunnels"][0][1],
                                        "remote_node": ", ".join(t[0] for t in outputs["tunnels"])}
            else:
                self.physnet_hop(node, section.bridge, vlan, network_id, outputs, hop)
            traversed.add(section.bridge)
            self.path.add(hop)
        # NOTE: a flooded packet (next hop's MAC not learned) crosses the patch port inside br-int's
        # flood, not as a section of its own: the datapath outputs still say it left by the bridge.
        for bridge in outputs["physnet_bridges"]:
            if bridge not in traversed:
                hop = Hop(node, bridge, "", details=["(crossed inside br-int's flood)"])
                hop.objects["network"] = self.net_label(network_id)
                self.path.add(self.physnet_hop(node, bridge, vlan, network_id, outputs, hop))
        return result

    def physnet_hop(self, node: str, bridge: str, vlan: int | None, network_id: str, outputs: dict, hop: Hop) -> Hop:
        """``hop`` on the physical bridge ``bridge``: the physnet it leaves by, and its ports."""
        physnet = self.mapping_bridges(node)[bridge]
        out = ", ".join(outputs["physnets"]) or "nothing"
        hop.summary = f"from int-{bridge}, local VLAN {vlan} -> {physnet} by {out}"
        hop.objects |= {"physnet": physnet, "segment": self.segment(network_id)}
        return hop

    def classify(self, node: str, result: ofproto.OfTrace) -> dict:
        """The trace's datapath outputs, named: ports of br-int, tunnels (remote node, VNI), physnets."""
        dpif = ofproto.by_datapath_port(self.dpif(node))
        mappings = self.mapping_bridges(node)
        vxlan_by_remote = {p.options.get("remote_ip"): p for p in self.dpif(node) if p.type == "vxlan"}
        found: dict = {"ports": [], "tunnels": [], "tunnel_ports": [], "physnets": [], "physnet_bridges": []}
        for out in result.outputs:
            if out.kind == "tunnel":
                remote = self.node_of_ip(out.remote_ip) or out.remote_ip
                found["tunnels"].append((remote, out.vni))
                if out.remote_ip in vxlan_by_remote:
                    found["tunnel_ports"].append((remote, out.vni, out.remote_ip, vxlan_by_remote[out.remote_ip]))
                continue
            port = dpif.get(out.port)
            if port is None or port.name == port.bridge:
                continue
            if port.bridge == "br-int":
                found["ports"].append(port.name)
            elif port.bridge in mappings:
                found["physnets"].append(f"{port.name} ({mappings[port.bridge]})")
                if port.bridge not in found["physnet_bridges"]:
                    found["physnet_bridges"].append(port.bridge)
        return found

    def mapping_bridges(self, node: str) -> dict[str, str]:
        return {bridge: physnet for physnet, bridge in self.reach.node(node).bridge_mappings}

    def local_vlan(self, node: str, network_id: str) -> int | None:
        ports = [p for p in self.ports() if p["network_id"] == network_id and p.get("binding:host_id") == node]
        tags = self.port_tags(node)
        return next((tags[ovs_device(p)] for p in ports if ovs_device(p) in tags), None)

    def device_owner_label(self, device: str) -> str:
        port = next((p for p in self.ports() if ovs_device(p) == device), None)
        if port is None:
            return "unknown port"
        vm = self.reach.vm_of_port(port["id"])
        return f"VM {vm.name}" if vm else f"{port.get('device_owner')} {short(port['id'])}"

    def dropped_at_switch(self, node: str, result: ofproto.OfTrace, outputs: dict, expected: str) -> None:
        last = result.last_step()
        if result.dropped:
            why = f"the flows drop it ({last.describe()})" if last else "the flows drop it"
        else:
            went = [*outputs["ports"], *(f"tunnel to {t[0]}" for t in outputs["tunnels"]), *outputs["physnets"]]
            why = f"it goes to {', '.join(went)}, not to {expected}"
        self.path.end(DROPPED, f"Open vSwitch on {node}: {why}")

    # ------------------------------------------------------------ arrival

    def arrive(self, target: dict, frame: Frame) -> None:
        owner = target.get("device_owner", "")
        node = target.get("binding:host_id")
        if owner == ROUTER_INTERFACE:
            self.route(target, frame)
            return
        if owner == DHCP:
            self.path.add(Hop(node, f"qdhcp-{target['network_id']}", f"ns-{short(target['id'])}: the DHCP port",
                              kind="port", objects={"port": self.port_label(target)}))
            self.path.end(DELIVERED, f"to the DHCP port {target['id']} on {node}", port=target["id"])
            return
        packet = Packet(frame.src, frame.dst, self.packet.protocol, self.packet.dport)
        if not self.firewall(target, node, INGRESS, packet):
            return
        self.path.add(Hop(node, f"port {short(target['id'])}", f"delivered to {self.port_label(target)}", kind="port",
                          objects={"port": target["id"], "network": self.net_label(target["network_id"])}))
        self.path.end(DELIVERED, f"to port {self.port_label(target)} on {node}", port=target["id"])

    # ------------------------------------------------------------ routers

    def route(self, interface: dict, frame: Frame) -> None:
        self.routers += 1
        router_id, node = interface["device_id"], interface.get("binding:host_id")
        namespace, qr = f"qrouter-{router_id}", f"qr-{short(interface['id'])}"
        hop = self.path.add(Hop(node, namespace, "", kind="router", objects={"router": router_id}))
        if self.routers > MAX_ROUTERS:
            self.path.end(DROPPED, f"more than {MAX_ROUTERS} routers crossed: a routing loop?")
            return
        save = self.reach.in_namespace(node, namespace, ["iptables-save", "-t", "nat"], check=False)
        if "*nat" not in save:
            hop.summary = f"no namespace {namespace} on {node}"
            self.path.end(DROPPED, f"router {router_id} is not built on {node} (no {namespace})")
            return
        chains = routing.parse_save(save)
        proto = self.packet.protocol
        pre = routing.walk(chains, "PREROUTING", routing.NatPacket(frame.src, frame.dst, proto, qr, None))
        dst = pre.address if pre.target == "DNAT" else frame.dst
        notes = [f"in {qr} (router interface {interface['id']})"]
        if pre.target == "DNAT":
            fip = self.fip_by_address(frame.dst)
            hop.objects["floating_ip"] = fip["id"] if fip else frame.dst
            notes.append(f"DNAT {frame.dst} -> {dst}" + (f" (floating IP {fip['id']})" if fip else ""))
            hop.details.append(f"-A {pre.chain} {pre.rule}")
        argv = ["ip", "-j", "route", "get", dst, "from", frame.src, "iif", qr]
        got = self.reach.in_namespace(node, namespace, argv, check=False)
        route = routing.parse_route_get(got)
        if route.dev is None or route.type not in ("unicast", "local"):
            hop.summary = "; ".join([*notes, f"no route to {dst}"])
            self.path.end(DROPPED, f"router {router_id} has no route to {dst} ({route.error or route.type})")
            return
        via = f" via {route.gateway}" if route.gateway else ""
        notes.append(f"route to {dst}{via} dev {route.dev}")
        hop.details.append(f"ip route get {dst} from {frame.src} iif {qr}: {dst}{via} dev {route.dev}")
        post = routing.walk(chains, "POSTROUTING", routing.NatPacket(frame.src, dst, proto, qr, route.dev,
                                                                       dnat=pre.target == "DNAT"))
        src = frame.src
        if post.target == "SNAT":
            src = post.address
            fip = self.fip_by_address(src)
            what = f"floating IP {fip['id']}" if fip else "the router's gateway address"
            notes.append(f"SNAT {frame.src} -> {src} ({what})")
            hop.details.append(f"-A {post.chain} {post.rule}")
            hop.objects["nat"] = f"SNAT to {src}"
            if fip:
                hop.objects["floating_ip"] = fip["id"]
        elif post.target == "ACCEPT":
            notes.append("no NAT (between the router's own subnets)")
        hop.details += [f"not understood, skipped: {rule}" for rule in pre.skipped + post.skipped]
        hop.summary = "; ".join(notes)
        self.leave_router(router_id, node, route, Frame(src, dst, "", ""))

    def leave_router(self, router_id: str, node: str, route: routing.Route, frame: Frame) -> None:
        router_ports = [p for p in self.ports() if p["device_id"] == router_id]
        out = next((p for p in router_ports if route.dev in (f"qr-{short(p['id'])}", f"qg-{short(p['id'])}")), None)
        if out is None:
            self.path.end(DROPPED, f"{route.dev} is no port of router {router_id}")
            return
        frame.dl_src = out["mac_address"]
        if out["device_owner"] == ROUTER_INTERFACE:
            self.to_next_hop(out, node, ovs_device(out), frame)
            return
        namespace = f"qrouter-{router_id}"
        nexthop = route.gateway or frame.dst
        if self.port_with_ip(out["network_id"], frame.dst):  # a port of the external network itself
            self.to_next_hop(out, node, ovs_device(out), frame)
            return
        neigh = self.reach.in_namespace(node, namespace, ["ip", "-j", "neigh", "show", nexthop, "dev", route.dev],
                                        check=False)
        entries = json.loads(neigh) if neigh.strip().startswith("[") else []
        frame.dl_dst = next((e["lladdr"] for e in entries if e.get("lladdr")), BROADCAST)
        spec = ofproto.flow_spec(in_port=ovs_device(out), proto=self.packet.protocol, dl_src=frame.dl_src,
                                 dl_dst=frame.dl_dst, nw_src=frame.src, nw_dst=frame.dst,
                                 dport=self.packet.dport, sport=self.sport, ttl=63)
        first = len(self.path.hops)
        result = self.ofproto(node, "br-int", spec, out["network_id"], ovs_device(out))
        if frame.dl_dst == BROADCAST and len(self.path.hops) > first:
            self.path.hops[first].details.insert(0, f"{nexthop} is not in {route.dev}'s neighbour table yet: "
                                                 "traced as a broadcast (ARP)")
        outputs = self.classify(node, result)
        if not outputs["physnets"]:
            self.dropped_at_switch(node, result, outputs, "the physical network")
            return
        host = self.lab_host_of(frame.dst)
        physnet = self.network(out["network_id"]).get("provider:physical_network")
        world = f" (the lab's {host} node)" if host else ""
        self.path.add(Hop(physnet or "-", "external", f"leaves to {frame.dst}{world} as {frame.src} via {nexthop}",
                          kind="external", objects={"network": self.net_label(out["network_id"]),
                                                    "physnet": physnet}))
        self.path.end(FORWARDED, f"leaves by {physnet} (external network {self.net_label(out['network_id'])}) "
                                 f"toward {frame.dst}{world}, source {frame.src}", network=out["network_id"])

    def fip_by_address(self, address: str) -> dict | None:
        return next((f for f in self.floating_ips() if f["floating_ip_address"] == address), None)
