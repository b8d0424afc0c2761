"""The demo's topology picture, as text and as SVG, from a given scene; and the parsing of what
the scene is read from (``ip netns ls``, ``ip -o addr``)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from baryon.demo.picture import Namespace, NetworkView, NodeView, RouterView, Scene, VmView, render_svg, render_text
from baryon.demo.scene import device_lines, netns_names

ROUTER = "244ac749-d224-4d62-a76f-2a7cc072f123"
NET = "778cbb80-2791-4759-b640-a31c37979e96"
SVG = "{http://www.w3.org/2000/svg}"

SCENE = Scene(
    nodes=(
        NodeView("controller", "controller", ("mgmt 10.20.0.2",), ("baryon-server",)),
        NodeView("network", "network", ("mgmt 10.20.0.3", "vtep 10.10.10.1"), ("ovs-agent", "dhcp-agent", "l3-agent"),
                 ("br-tun", "br-int", "br-ex", "br-phy"),
                 (Namespace(f"qrouter-{ROUTER}", "router demo-router",
                            ("qr-5c1b657b-01 10.0.0.1/24", "qg-e8c0a761-4b 203.0.113.192/24 203.0.113.181/32")),
                  Namespace(f"qdhcp-{NET}", "DHCP of demo-net", ("ns-9165558a-e3 10.0.0.2/24",)))),
        NodeView("compute1", "compute", ("mgmt 10.20.0.11", "vtep 10.10.10.11"), ("ovs-agent",),
                 ("br-int", "br-phy", "br-tun"), (),
                 (VmView("demo-vm1", ("10.0.0.63/24",), "demo-net", "203.0.113.181", ("demo-sg",)),)),
        NodeView("compute2", "compute", ("mgmt 10.20.0.12", "vtep 10.10.10.12"), ("ovs-agent",),
                 ("br-int", "br-phy", "br-tun"), (), (VmView("demo-vm2", ("10.0.0.40/24",), "demo-net"),)),
        NodeView("external", "external", ("203.0.113.1/24", "198.51.100.1/32")),
    ),
    networks=(NetworkView("public", "flat physnet1", ("203.0.113.0/24",), True),
              NetworkView("demo-net", "vxlan VNI 1", ("10.0.0.0/24",))),
    routers=(RouterView("demo-router", "network", "ACTIVE", "203.0.113.192 on public", ("10.0.0.1 on demo-net",),
                        ("203.0.113.181 -> 10.0.0.63 (demo-vm1)",)),),
)


def test_text_picture_shows_networks_router_and_each_node() -> None:
    text = render_text(SCENE)
    lines = text.splitlines()
    assert lines[:7] == [
        "Networks",
        "  public       flat physnet1    203.0.113.0/24  (external)",
        "  demo-net     vxlan VNI 1      10.0.0.0/24",
        "Router demo-router on network (ACTIVE)",
        "  gateway   203.0.113.192 on public (SNAT)",
        "  interface 10.0.0.1 on demo-net",
        "  floating  203.0.113.181 -> 10.0.0.63 (demo-vm1)",
    ]
    # Bridges in the order packets cross them; namespaces with their devices; the fabric between boxes.
    assert "│ OVS: br-ex ── br-phy ── br-int ── br-tun" in text
    assert f"│ qrouter-{ROUTER}  (router demo-router) │" in text
    assert "│    qg-e8c0a761-4b 203.0.113.192/24 203.0.113.181/32" in text
    assert "    │ physnet1 (flat): public" in lines
    assert "    │ tunnel network (VXLAN underlay): demo-net VNI 1" in lines
    # The compute nodes side by side, each VM in its node's box.
    row = next(line for line in lines if "compute1" in line)
    assert row.startswith("┌─ compute1 ") and "┌─ compute2 " in row
    assert any("│ VM demo-vm1 10.0.0.63/24" in line and "│ VM demo-vm2 10.0.0.40/24" in line for line in lines)
    assert any("│    on demo-net, groups demo-sg" in line for line in lines)
    assert max(len(line) for line in lines) <= 80  # fits a terminal
    # Boxes are closed: every box line of the network node has the same width.
    box = [line for line in lines[lines.index(next(li for li in lines if li.startswith("┌─ network"))):]]
    box = box[:box.index(next(li for li in box if li.startswith("└"))) + 1]
    assert len({len(line) for line in box}) == 1


def test_svg_parses_and_has_an_element_per_node_vm_router_and_network() -> None:
    root = ET.fromstring(render_svg(SCENE))
    assert root.tag == f"{SVG}svg"
    groups = list(root.iter(f"{SVG}g"))

    def named(kind: str) -> list[str]:
        return sorted(g.get("data-name", "") for g in groups if g.get("class") == kind)

    assert named("node") == ["compute1", "compute2", "controller", "external", "network"]
    assert named("vm") == ["demo-vm1", "demo-vm2"]
    assert named("router") == ["demo-router"]
    assert named("network") == ["demo-net", "public"]
    assert named("namespace") == [f"qdhcp-{NET}"]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert f"qrouter-{ROUTER}" in texts and "floating IP 203.0.113.181" in texts
    # Everything inside the drawing.
    width, height = float(root.get("width")), float(root.get("height"))
    assert width > 0 and height > 0


def test_svg_escapes_names() -> None:
    scene = Scene(nodes=(NodeView("compute1", "compute", (), (), (), (), (VmView("a<b&c", ("10.0.0.5/24",), "n"),)),),
                  networks=(NetworkView("x&y", "vxlan VNI 2", ()),), routers=())
    root = ET.fromstring(render_svg(scene))
    assert [g.get("data-name") for g in root.iter(f"{SVG}g") if g.get("class") == "vm"] == ["a<b&c"]


def test_parsing_what_the_nodes_say() -> None:
    assert netns_names(f"qrouter-{ROUTER} (id: 2)\nqdhcp-{NET} (id: 1)\n\n") == [f"qrouter-{ROUTER}", f"qdhcp-{NET}"]
    addr = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
            "2: qr-5c1b657b-01@if9    inet 10.0.0.1/24 brd 10.0.0.255 scope global qr-5c1b657b-01\n"
            "2: qr-5c1b657b-01@if9    inet6 fe80::1/64 scope link\n"
            "3: qg-e8c0a761-4b    inet 203.0.113.192/24 scope global qg-e8c0a761-4b\n"
            "3: qg-e8c0a761-4b    inet 203.0.113.181/32 scope global qg-e8c0a761-4b\n")
    assert device_lines(addr) == ["qr-5c1b657b-01 10.0.0.1/24", "qg-e8c0a761-4b 203.0.113.192/24 203.0.113.181/32"]
