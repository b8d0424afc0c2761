"""The topology picture, as terminal text and as SVG, from a ``Scene``. Pure.

A ``Scene`` is what ``baryon.demo.scene`` observed: nodes (their OVS bridges, the namespaces the
agents made there with their devices' addresses, the VMs they host), the networks with their
segments, the routers with their ports and floating IPs. Layout, in both renderings: the external
node on physnet1 above the network node, the compute nodes below it on the tunnel network, the
controller beside, on the management network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Namespace:
    name: str  # qrouter-<id>, qdhcp-<id>
    label: str  # the Neutron object behind it: "router demo-router", "DHCP of demo-net"
    devices: tuple[str, ...] = ()  # "qg-1234abcd-56 203.0.113.101/24"


@dataclass(frozen=True)
class VmView:
    name: str
    addresses: tuple[str, ...]  # "10.0.0.5/24"
    network: str
    floating: str | None = None
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeView:
    name: str
    role: str  # controller | network | compute | external
    addresses: tuple[str, ...]  # "mgmt 10.20.0.3", "tunnel 10.10.10.1"
    processes: tuple[str, ...] = ()  # "ovs-agent", "baryon-server"
    bridges: tuple[str, ...] = ()  # the node's OVS bridges (ovs-vsctl list-br)
    namespaces: tuple[Namespace, ...] = ()
    vms: tuple[VmView, ...] = ()


@dataclass(frozen=True)
class NetworkView:
    name: str
    segment: str  # "vxlan VNI 12", "flat physnet1"
    cidrs: tuple[str, ...]
    external: bool = False


@dataclass(frozen=True)
class RouterView:
    name: str
    host: str  # the node its L3 agent runs on
    status: str
    gateway: str  # "203.0.113.101 on public" ("" without one)
    interfaces: tuple[str, ...]  # "10.0.0.1 on demo-net"
    floating_ips: tuple[str, ...] = ()  # "203.0.113.150 -> 10.0.0.5 (demo-vm1)"


@dataclass(frozen=True)
class Scene:
    nodes: tuple[NodeView, ...]
    networks: tuple[NetworkView, ...]
    routers: tuple[RouterView, ...]

    def node(self, role: str) -> list[NodeView]:
        return [n for n in self.nodes if n.role == role]


# ---------------------------------------------------------------- text


def node_lines(node: NodeView) -> list[str]:
    """The inside of a node's box: its bridges, namespaces (with devices), VMs, processes."""
    lines = ["  ".join(node.addresses)] if node.addresses else []
    if node.bridges:
        lines.append("OVS: " + " ── ".join(_bridge_order(node.bridges)))
    for ns in node.namespaces:
        lines.append(f"{ns.name}  ({ns.label})")
        lines += [f"   {device}" for device in ns.devices]
    for vm in node.vms:
        lines.append(f"VM {vm.name} {', '.join(vm.addresses)}")
        lines.append(f"   on {vm.network}" + (f", groups {', '.join(vm.groups)}" if vm.groups else ""))
        if vm.floating:
            lines.append(f"   floating IP {vm.floating}")
    if node.processes:
        lines.append("runs: " + ", ".join(node.processes))
    return lines


def _bridge_order(bridges: Sequence[str]) -> list[str]:
    """br-ex/br-phy, br-int, br-tun as the packets cross them; others after."""
    rank = {"br-ex": 0, "br-phy": 1, "br-int": 2, "br-tun": 3}
    return sorted(bridges, key=lambda b: (rank.get(b, 9), b))


def box(title: str, lines: Sequence[str], width: int = 0) -> list[str]:
    """A box drawn with Unicode lines, ``title`` in its top edge."""
    inner = max([len(title) + 2, width - 4, *(len(line) for line in lines)])
    top = f"┌─ {title} " + "─" * (inner - len(title) - 1) + "┐"
    return [top, *(f"│ {line.ljust(inner)} │" for line in lines), "└" + "─" * (inner + 2) + "┘"]


def side_by_side(boxes: Sequence[list[str]], gap: int = 2) -> list[str]:
    height = max(len(b) for b in boxes)
    widths = [max(len(line) for line in b) for b in boxes]
    rows = []
    for i in range(height):
        cells = [(b[i] if i < len(b) else "").ljust(w) for b, w in zip(boxes, widths)]
        rows.append((" " * gap).join(cells).rstrip())
    return rows


def _link(label: str) -> list[str]:
    return ["    │", f"    │ {label}", "    │"]


def render_text(scene: Scene) -> str:
    """The whole picture for a terminal: networks and routers first, then the nodes as boxes."""
    out = ["Networks"]
    out += [f"  {n.name:<12} {n.segment:<16} {', '.join(n.cidrs)}{'  (external)' if n.external else ''}"
            for n in scene.networks]
    for r in scene.routers:
        out.append(f"Router {r.name} on {r.host} ({r.status})")
        if r.gateway:
            out.append(f"  gateway   {r.gateway} (SNAT)")
        out += [f"  interface {i}" for i in r.interfaces]
        out += [f"  floating  {f}" for f in r.floating_ips]
    out.append("")
    external = [n for n in scene.networks if n.external]
    physnet_label = "physnet1 (flat)" + (f": {', '.join(n.name for n in external)}" if external else "")
    tenant = [f"{n.name} {n.segment.split(' ', 1)[1]}" for n in scene.networks if n.segment.startswith("vxlan")]
    tunnel_label = "tunnel network (VXLAN underlay)" + (f": {', '.join(tenant)}" if tenant else "")
    for node in scene.node("external"):
        out += box(node.name + " (upstream router, internet host)", node_lines(node))
        out += _link(physnet_label)
    for node in scene.node("network"):
        out += box(node.name, node_lines(node))
        out += _link(tunnel_label)
    computes = [box(n.name, node_lines(n)) for n in scene.node("compute")]
    for i in range(0, len(computes), 2):  # two a row: 80 columns
        out += side_by_side(computes[i:i + 2])
    for node in scene.node("controller"):
        out.append("")
        out += box(node.name + " (on the management network with every node)", node_lines(node))
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- SVG

CHAR_W = 7.2  # monospace 12 px
LINE_H = 16
PAD = 10


def _text(x: float, y: float, text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.0f}" y="{y:.0f}"{attr}>{escape(text)}</text>'


def _rect(x: float, y: float, w: float, h: float, cls: str) -> str:
    return f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="6" class="{cls}"/>'


@dataclass
class _Block:
    """A node's SVG group at the origin, with its size; placed later."""

    svg: list[str]
    width: float
    height: float


def _item(kind: str, ident: str, lines: Sequence[str], width: float, y: float) -> tuple[list[str], float]:
    """A sub-box (bridge row, namespace, router, VM) of ``lines`` at ``y`` inside a node box."""
    h = LINE_H * len(lines) + 8
    parts = [f'<g class="{kind}" data-name="{escape(ident)}">', _rect(PAD, y, width - 2 * PAD, h, kind)]
    parts += [_text(PAD + 8, y + 4 + LINE_H * (i + 1) - 4, line, "title" if i == 0 else "")
              for i, line in enumerate(lines)]
    parts.append("</g>")
    return parts, y + h + 6


def _node_block(node: NodeView, routers: dict[str, RouterView]) -> _Block:
    items: list[tuple[str, str, list[str]]] = []
    if node.bridges:
        items.append(("bridges", node.name, ["OVS: " + " ── ".join(_bridge_order(node.bridges))]))
    for ns in node.namespaces:
        router = routers.get(ns.name.removeprefix("qrouter-")) if ns.name.startswith("qrouter-") else None
        kind = "router" if router else "namespace"
        head = f"router {router.name} ({router.status})" if router else ns.label
        items.append((kind, router.name if router else ns.name, [head, ns.name, *ns.devices]))
    for vm in node.vms:
        lines = [f"VM {vm.name}", *(f"{a} on {vm.network}" for a in vm.addresses)]
        if vm.floating:
            lines.append(f"floating IP {vm.floating}")
        if vm.groups:
            lines.append(f"groups: {', '.join(vm.groups)}")
        items.append(("vm", vm.name, lines))
    if node.processes:
        items.append(("processes", node.name, ["runs: " + ", ".join(node.processes)]))
    title = [node.name, *node.addresses]
    longest = max([len("  ".join(title)), *(len(line) + 2 for _, _, lines in items for line in lines)])
    width = max(220.0, longest * CHAR_W + 4 * PAD)
    svg = [_text(PAD, 20, "  ".join(title), "title")]
    y = 30.0
    for kind, ident, lines in items:
        part, y = _item(kind, ident, lines, width, y)
        svg += part
    height = y + 4
    group = [f'<g class="node" data-name="{escape(node.name)}" data-role="{node.role}">',
             _rect(0, 0, width, height, f"node {node.role}"), *svg, "</g>"]
    return _Block(group, width, height)


def _placed(block: _Block, x: float, y: float) -> str:
    return f'<g transform="translate({x:.0f},{y:.0f})">' + "".join(block.svg) + "</g>"


def _wire(x1: float, y1: float, x2: float, y2: float, label: str) -> str:
    return (f'<g class="wire"><line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}"/>'
            + _text(x1 + 8, (y1 + y2) / 2 + 4, label, "wire-label") + "</g>")


STYLE = """
text { font-family: monospace; font-size: 12px; fill: #222; }
text.title { font-weight: bold; }
text.wire-label { fill: #555; }
rect.node { fill: #f7f7f7; stroke: #444; }
rect.network.node { fill: #eef4ff; }
rect.external { fill: #fff4e6; }
rect.bridges { fill: #e8f0e8; stroke: #6a6; }
rect.namespace { fill: #fffbe6; stroke: #aa8; }
rect.router { fill: #ffe9e0; stroke: #c63; }
rect.vm { fill: #e6f2ff; stroke: #36c; }
rect.processes { fill: #f0f0f0; stroke: #bbb; }
rect.net { fill: #ffffff; stroke: #888; }
line { stroke: #666; stroke-width: 2; }
"""


def render_svg(scene: Scene) -> str:
    """The picture as a standalone SVG document: a legend of networks and routers, then the
    nodes (one ``<g class="node">`` each, holding ``bridges``, ``namespace``, ``router`` and ``vm``
    groups), joined by the fabric's wires."""
    routers = {r_id: r for r_id, r in _router_index(scene)}
    gap = 40.0
    body: list[str] = []
    y = PAD
    legend = [(f"network {n.name}", f"{n.segment}  {', '.join(n.cidrs)}" + ("  external" if n.external else ""))
              for n in scene.networks]
    x = PAD
    for (title, detail), net in zip(legend, scene.networks):
        w = max(len(title), len(detail)) * CHAR_W + 2 * PAD
        body.append(f'<g class="network" data-name="{escape(net.name)}">' + _rect(x, y, w, 2 * LINE_H + 10, "net")
                    + _text(x + PAD, y + LINE_H + 2, title, "title") + _text(x + PAD, y + 2 * LINE_H + 4, detail)
                    + "</g>")
        x += w + PAD
    y += 2 * LINE_H + 10 + gap / 2

    external = [_node_block(n, routers) for n in scene.node("external")]
    controller = [_node_block(n, routers) for n in scene.node("controller")]
    network = [_node_block(n, routers) for n in scene.node("network")]
    computes = [_node_block(n, routers) for n in scene.node("compute")]
    width = x

    row_x = PAD
    row_h = 0.0
    for block in external + controller:
        body.append(_placed(block, row_x, y))
        row_x += block.width + gap
        row_h = max(row_h, block.height)
    width = max(width, row_x)
    net_top = y + row_h + (gap * 1.5 if row_h else 0)
    if external:
        names = ", ".join(n.name for n in scene.networks if n.external)
        body.append(_wire(PAD + 30, y + external[0].height, PAD + 30, net_top,
                          "physnet1 (flat)" + (f": {names}" if names else "")))
    y = net_top
    for block in network:
        body.append(_placed(block, PAD, y))
        width = max(width, PAD + block.width + gap)
        y += block.height
    compute_top = y + gap * 1.5
    bus = y + gap * 0.75
    tenant = [f"{n.name} {n.segment.split(' ', 1)[1]}" for n in scene.networks if n.segment.startswith("vxlan")]
    row_x = PAD
    row_h = 0.0
    drops = []
    for block in computes:
        drops.append(row_x + 30)
        body.append(f'<line x1="{row_x + 30:.0f}" y1="{bus:.0f}" x2="{row_x + 30:.0f}" y2="{compute_top:.0f}"/>')
        body.append(_placed(block, row_x, compute_top))
        row_x += block.width + gap
        row_h = max(row_h, block.height)
    if drops:
        label = "tunnel (VXLAN)" + (f": {', '.join(tenant)}" if tenant else "")
        body.append(_wire(PAD + 30, y, PAD + 30, bus, ""))
        body.append(f'<g class="wire"><line x1="{PAD + 30:.0f}" y1="{bus:.0f}" x2="{drops[-1]:.0f}" y2="{bus:.0f}"/>'
                    + _text(PAD + 40, bus - 6, label, "wire-label") + "</g>")
    width = max(width, row_x)
    height = compute_top + row_h + PAD
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}">\n<style>{STYLE}</style>\n'
            + "\n".join(body) + "\n</svg>\n")


def _router_index(scene: Scene) -> list[tuple[str, RouterView]]:
    """Routers by the id their qrouter- namespace names (found on the node that hosts them)."""
    found = []
    for node in scene.nodes:
        for ns in node.namespaces:
            if ns.name.startswith("qrouter-"):
                name = ns.label.removeprefix("router ")
                found += [(ns.name.removeprefix("qrouter-"), r) for r in scene.routers if r.name == name]
    return found
