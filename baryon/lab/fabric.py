"""The lab's wiring: the fabric namespace's bridges, each node's links and addresses.

``ensure_fabric`` and ``ensure_node_links`` converge to what ``topology`` describes: a missing
link (e.g. after a node namespace was lost) is made again, a present one is left alone. Every
veth is created from inside the fabric namespace with its peer placed directly in the node's
namespace, so nothing ever appears in the root namespace, even for an instant.
"""

from __future__ import annotations

from baryon.lab import host
from baryon.lab.ovs import NodeOvs
from baryon.lab.topology import Node, Topology


def _links_present(netns: str) -> set[str]:
    out = host.run(["ip", "-n", netns, "-o", "link", "show"]).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line}


def ensure_fabric(topology: Topology) -> None:
    fabric = topology.fabric_netns
    host.ensure_netns(fabric)
    present = _links_present(fabric)
    host.Place(fabric).batch_ip(
        line
        for bridge in topology.fabric_bridges if bridge not in present
        for line in (f"link add {bridge} type bridge forward_delay 0 stp_state 0", f"link set {bridge} up"))


def ensure_node_links(topology: Topology, node: Node) -> None:
    """The node's veths to the fabric, their addresses (on the node end, or later on its OVS bridge)."""
    fabric = topology.fabric_netns
    present_node = _links_present(node.netns)
    present_fabric = _links_present(fabric)
    fabric_lines: list[str] = []
    node_lines: list[str] = []
    for link in node.links:
        if link.node_if in present_node:
            continue
        if link.fabric_if in present_fabric:  # half a pair from an interrupted run
            fabric_lines.append(f"link delete {link.fabric_if}")
        fabric_lines += [f"link add {link.fabric_if} type veth peer name {link.node_if} netns {node.netns}",
                         f"link set {link.fabric_if} master {link.bridge} up"]
        node_lines.append(f"link set {link.node_if} up")
        if link.address and not link.ovs_bridge:
            node_lines.append(f"address add {link.address} dev {link.node_if}")
    for address in node.loopback_addresses:
        node_lines.append(f"address replace {address} dev lo")
    host.Place(fabric).batch_ip(fabric_lines)
    host.Place(node.netns).batch_ip(node_lines)
    if node.role == "external":
        # The external host originates TCP/UDP into OVS's userspace datapath: full checksums.
        for link in node.links:
            host.Place(node.netns).run(["ethtool", "-K", link.node_if, "tx", "off"])


def ensure_node_bridges(node: Node, ovs: NodeOvs) -> None:
    """The OVS bridges a host provides before any agent runs: br-phy (the tunnel endpoint) and br-ex.

    The ``local_ip`` sits on br-phy's internal port, not on eth1: OVS's native tunnels route
    through it (DATAPLANE.md). br-int and br-tun belong to the OVS agent (and os-vif creates
    br-int when it plugs a VM first).
    """
    for link in node.links:
        if link.ovs_bridge:
            ovs.ensure_bridge(link.ovs_bridge, (link.node_if,))
    place = host.Place(node.netns)
    lines = []
    for link in node.links:
        if link.ovs_bridge:
            lines.append(f"link set {link.ovs_bridge} up")
            if link.address:
                lines.append(f"address replace {link.address} dev {link.ovs_bridge}")
    place.batch_ip(lines)


def set_node_links(topology: Topology, node: Node, up: bool, bridges: tuple[str, ...] | None = None) -> None:
    """Pull (``up=False``) or plug back the node's cables: the fabric's end of each of its links
    to ``bridges`` (all of them by default) goes down or up, in the fabric namespace only. The
    node keeps its own interfaces and addresses (it sees its carrier drop, as a host whose switch
    port died), so plugging back needs nothing else. A fault to inject: a node cut off the
    management network and the underlay."""
    state = "up" if up else "down"
    host.Place(topology.fabric_netns).batch_ip(
        f"link set {link.fabric_if} {state}" for link in node.links if bridges is None or link.bridge in bridges)
