"""The L3 agent on a real host (root): its drivers, real namespaces, a real OVS, real iptables and
real traffic through the router.

Each test gets a throwaway Open vSwitch (``ovs_node``) whose namespace acts as the network node:
its br-int (netdev, standalone: a learning switch, as no OVS agent tags ports here) carries the
routers' taps and the "hosts'" ports. Untagged, every port shares one segment; the addresses keep
the networks apart (a VM only knows its own subnet and its router), which is all the routing and
NAT under test need. ``L3Agent`` runs in the test process with ``node_netns`` naming that
namespace.

NOTE: as the DHCP agent's tests, the ``qrouter-`` namespaces are registered in the root's
/run/netns, under names unique to each test (``qrouter-<random uuid>``): new namespaces, never the
root one. The agent would remove every ``qrouter-`` namespace it does not know (as on a real
node): here it claims only the router ids its test made (``claims``), so another user's
``qrouter-`` namespaces on this machine are never touched. Hosts ("VMs", the external host) are namespaces
``bl3-<hex>``. Finalizers stop every radvd by the PID in its pidfile (after checking its command
line names that pidfile) and delete every namespace the test made.

Traffic is made from the test process itself: a socket opened inside a namespace (by a thread
that entered it, ``netlink.in_namespaces``) stays there; no server or client process is started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from baryon.agent.drivers import netlink
from baryon.agent.drivers import radvd as radvd_driver
from baryon.agent.drivers.netfilter import Netfilter
from baryon.agent.drivers.netns import Namespaces
from baryon.agent.drivers.ovsdb import Ovsdb
from baryon.agent.l3_agent import L3Agent
from baryon.agent.plan import l3_nat
from baryon.agent.plan.l3 import ROUTER_KEY, device_names, namespace_name, plan
from baryon.config.agent import AgentDefaultSection, AgentSettings, OvsSection
from baryon.lab import host
from baryon.model.l3 import FloatingIp, L3View, Route, Router, RouterPort, RouterSubnet
from baryon.model.ovs import EnsureBridge, EnsurePort
from tests.support.netns import Netns
from tests.support.ovs import OvsNode
from tests.support.wait import eventually

MTU = 1450
EXT = RouterSubnet("e0000000-0000-4000-8000-000000000000", "172.24.4.0/24", 4, "172.24.4.1")
NET1 = RouterSubnet("e1000000-0000-4000-8000-000000000000", "10.0.1.0/24", 4, "10.0.1.1")
NET2 = RouterSubnet("e2000000-0000-4000-8000-000000000000", "10.0.2.0/24", 4, "10.0.2.1")
V6 = RouterSubnet("e6000000-0000-4000-8000-000000000000", "fd00:1::/64", 6, "fd00:1::1", "slaac", "slaac")


def mac() -> str:
    return "fa:16:3e:" + ":".join(secrets.token_hex(1) for _ in range(3))


def router_port(*ips: tuple[RouterSubnet, str]) -> RouterPort:
    return RouterPort(str(uuid.uuid4()), str(uuid.uuid4()), mac(), MTU, tuple((s.id, a) for s, a in ips),
                      tuple(sorted({s for s, _ in ips}, key=lambda s: s.id)))


class Box:
    """A namespace ``bl3-<hex>`` with eth0 plugged into the node's br-int: a VM or the external host."""

    def __init__(self, node: OvsNode, address: str, gateway: str | None) -> None:
        self.netns = Netns("bl3-" + secrets.token_hex(4))
        self.node = node
        self.address = address
        self.gateway = gateway
        self.port = "bx" + secrets.token_hex(4)

    def plug(self) -> Box:
        self.netns.create()
        self.node.run(["ip", "link", "add", self.port, "type", "veth", "peer", "name", "eth0", "netns",
                       self.netns.name])
        self.node.run(["ip", "link", "set", self.port, "up"])
        with Ovsdb(self.node.connection) as db:
            db.apply([EnsurePort("br-int", self.port)])
        self.netns.run(["ip", "link", "set", "eth0", "address", mac(), "mtu", str(MTU), "up"])
        self.netns.run(["ip", "address", "add", self.address, "dev", "eth0"])
        self.netns.run(["ethtool", "-K", "eth0", "tx", "off"])
        if self.gateway:
            self.netns.run(["ip", "route", "add", "default", "via", self.gateway])
        return self

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    def socket(self) -> socket.socket:
        [sock] = netlink.in_namespaces([host.netns_path(self.netns.name)],
                                       lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        assert sock is not None
        sock.settimeout(5)
        return sock

    def listen(self, port: int) -> socket.socket:
        sock = self.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(4)
        return sock

    def remove(self) -> None:
        self.netns.remove()


def peer_seen(client: Box, server: Box, address: str, port: int) -> str:
    """Connect from ``client`` to ``address:port`` (``server`` listening): the peer address the
    server accepts (what NAT made of the client's address)."""
    listener = server.listen(port)
    sock = client.socket()
    try:
        sock.connect((address, port))
        conn, (peer, _) = listener.accept()
        conn.close()
        return peer
    finally:
        sock.close()
        listener.close()


@dataclass
class Host:
    node: OvsNode
    state: Path
    routers: list[str] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)

    def settings(self) -> AgentSettings:
        return AgentSettings(DEFAULT=AgentDefaultSection(host="network", state_path=str(self.state)),
                             ovs=OvsSection(ovsdb_connection=self.node.connection, integration_bridge="br-int"))

    def agent(self) -> L3Agent:
        return L3Agent(self.settings(), node_netns=self.node.netns, claims=self.routers.__contains__)

    def router_id(self) -> str:
        router_id = str(uuid.uuid4())
        self.routers.append(router_id)
        return router_id

    def box(self, address: str, gateway: str | None = None) -> Box:
        box = Box(self.node, address, gateway)
        self.boxes.append(box)
        return box.plug()

    def node_links(self) -> set[str]:
        return self.node.link_names()

    def ovs_ports(self) -> dict[str, dict[str, str]]:
        return self.node.bridge_ports("br-int")


@pytest.fixture
def l3_host(ovs_node: OvsNode) -> Iterator[Host]:
    state = Path(tempfile.mkdtemp(prefix="baryon-l3-", dir="/tmp"))
    with Ovsdb(ovs_node.connection) as db:
        db.apply([EnsureBridge("br-int", "netdev", fail_mode="")])  # standalone: NORMAL switching
    found = Host(ovs_node, state)
    try:
        yield found
    finally:
        for router_id in found.routers:
            pidfile = str(state / "ra" / router_id / "radvd.pid")
            pid = radvd_driver.Radvd().running(pidfile)  # only if its command line names the pidfile
            if pid is not None:
                radvd_driver.Radvd().stop(pid, pidfile)
            host.remove_netns(namespace_name(router_id))
        for box in found.boxes:
            box.remove()
        shutil.rmtree(state, ignore_errors=True)


def ops_of(agent: L3Agent, view: L3View) -> tuple:
    return plan(view, agent.observe(view), agent.l3).ops


def links(namespace: str) -> dict[str, netlink.ObservedLink]:
    return {link.name: link for link in Namespaces().links([namespace])[namespace]}


def routes(namespace: str) -> set[tuple[str, str, str]]:
    [sock] = netlink.route_sockets([host.netns_path(namespace)])
    assert sock is not None
    try:
        return set(netlink.read_links_and_routes(sock)[1])
    finally:
        sock.close()


def nat_of(namespace: str) -> dict[str, tuple[str, ...]]:
    return Netfilter(namespace, scope=l3_nat.SCOPE).observe().chains[l3_nat.KEY]


@dataclass
class Topology:
    """Router R: gateway on EXT (172.24.4.3), interfaces on NET1 (10.0.1.1) and NET2 (10.0.2.1);
    vm1 10.0.1.5, vm2 10.0.2.5, the external host 172.24.4.100."""

    router: Router
    gateway: RouterPort
    qr1: RouterPort
    qr2: RouterPort

    def view(self, seq: int = 1, **changes: object) -> L3View:
        return L3View("network", seq=seq, routers=(replace(self.router, **changes),))


def topology(router_id: str) -> Topology:
    gateway = router_port((EXT, "172.24.4.3"))
    qr1, qr2 = router_port((NET1, "10.0.1.1")), router_port((NET2, "10.0.2.1"))
    router = Router(router_id, enable_snat=True, gateway=gateway, interfaces=tuple(sorted((qr1, qr2))))
    return Topology(router, gateway, qr1, qr2)


FIP = FloatingIp("f1000000-0000-4000-8000-000000000001", "172.24.4.10", "10.0.1.5", "p-vm1")


# ---------------------------------------------------------------- building and converging


def test_a_router_is_built_as_neutron_lays_it_out_and_a_rerun_or_restart_changes_nothing(l3_host: Host) -> None:
    topo = topology(l3_host.router_id())
    view = topo.view(floating_ips=(FIP,), routes=(Route("192.0.2.0/24", "10.0.1.254"),))
    agent = l3_host.agent()
    outcome = agent.reconcile(view)
    assert outcome.routers == {topo.router.id: {"status": "ACTIVE", "reason": ""}}
    assert outcome.floatingips == {FIP.id: "ACTIVE"}

    ns = namespace_name(topo.router.id)
    tap_g, qg = device_names(topo.gateway.id, gateway=True)
    tap1, qr1 = device_names(topo.qr1.id)
    tap2, qr2 = device_names(topo.qr2.id)
    found = links(ns)
    assert set(found) == {"lo", qg, qr1, qr2}
    assert (found[qg].mac, found[qg].mtu, found[qg].up, found[qg].addresses) == (
        topo.gateway.mac_address, MTU, True, ("172.24.4.10/32", "172.24.4.3/24"))
    assert found[qr1].addresses == ("10.0.1.1/24",) and found[qr2].addresses == ("10.0.2.1/24",)
    assert routes(ns) == {("0.0.0.0/0", "172.24.4.1", qg), ("192.0.2.0/24", "10.0.1.254", qr1)}
    sysctls = host.run(["nsenter", f"--net={host.netns_path(ns)}", "--", "sysctl", "-n", "net.ipv4.ip_forward",
                        "net.ipv6.conf.all.forwarding"]).stdout.split()
    assert sysctls == ["1", "1"]
    offload = host.run(["nsenter", f"--net={host.netns_path(ns)}", "--", "ethtool", "-k", qg]).stdout
    assert "tx-checksumming: off" in offload
    assert nat_of(ns) == {
        "neutron-l3-agent-PREROUTING": ("-d 172.24.4.10/32 -j DNAT --to-destination 10.0.1.5",),
        "neutron-l3-agent-OUTPUT": ("-d 172.24.4.10/32 -j DNAT --to-destination 10.0.1.5",),
        "neutron-l3-agent-POSTROUTING": (f"! -i {qg} ! -o {qg} -m conntrack ! --ctstate DNAT -j ACCEPT",),
        "neutron-l3-agent-float-snat": ("-s 10.0.1.5/32 -j SNAT --to-source 172.24.4.10 --random-fully",),
        "neutron-l3-agent-snat": ("-j neutron-l3-agent-float-snat",
                                  f"-o {qg} -j SNAT --to-source 172.24.4.3 --random-fully",
                                  f"! -i {qg} -m conntrack --ctstate DNAT -j SNAT --to-source 172.24.4.3"
                                  " --random-fully"),
        "neutron-postrouting-bottom": ('-m comment --comment "Perform source NAT on outgoing traffic." '
                                       "-j neutron-l3-agent-snat",)}
    ports = l3_host.ovs_ports()
    assert ports[tap_g] == {"iface-id": topo.gateway.id, "attached-mac": topo.gateway.mac_address,
                            "iface-status": "active", ROUTER_KEY: topo.router.id}
    assert {tap1, tap2} <= set(ports) and {tap_g, tap1, tap2} <= l3_host.node_links()

    assert ops_of(agent, view) == ()  # converged
    again = l3_host.agent()  # a restart: reads everything afresh, changes nothing
    assert ops_of(again, view) == ()
    assert again.reconcile(view).routers[topo.router.id]["status"] == "ACTIVE"
    assert agent.configurations() == {"agent_mode": "legacy", "routers": 1, "ex_gw_ports": 1, "interfaces": 2,
                                      "floating_ips": 1, "interface_driver": "openvswitch",
                                      "handle_internal_only_routers": True, "log_agent_heartbeats": False}


def test_floating_ip_removal_and_router_removal_leave_nothing(l3_host: Host) -> None:
    topo = topology(l3_host.router_id())
    agent = l3_host.agent()
    agent.reconcile(topo.view(floating_ips=(FIP,)))
    ns = namespace_name(topo.router.id)
    _, qg = device_names(topo.gateway.id, gateway=True)

    ops = ops_of(agent, topo.view(seq=2))
    assert [type(op).__name__ for _, op in ops] == ["EnsureAddresses", "ApplyNat", "DeleteConntrack"]
    agent.reconcile(topo.view(seq=2))
    assert links(ns)[qg].addresses == ("172.24.4.3/24",)
    nat = nat_of(ns)
    assert nat["neutron-l3-agent-PREROUTING"] == () and nat["neutron-l3-agent-float-snat"] == ()
    assert ops_of(agent, topo.view(seq=2)) == ()

    empty = L3View("network", seq=3)
    agent.reconcile(empty)
    assert ns not in Namespaces().existing("qrouter-")
    taps = {device_names(p.id)[0] for p in (topo.gateway, topo.qr1, topo.qr2)}
    assert not taps & set(l3_host.ovs_ports()) and not taps & l3_host.node_links()
    assert ops_of(agent, empty) == ()


def test_unknown_qrouter_namespaces_go_but_qdhcp_ones_and_foreign_ports_stay(l3_host: Host) -> None:
    stray_router = l3_host.router_id()
    stray = Netns(namespace_name(stray_router)).create()
    dhcp = Netns("qdhcp-" + str(uuid.uuid4())).create()
    l3_host.node.run(["ip", "link", "add", "tapforeign", "type", "veth", "peer", "name", "tapforeignp"])
    with Ovsdb(l3_host.node.connection) as db:
        db.apply([EnsurePort("br-int", "tapforeign", external_ids=(("baryon-dhcp-network", "n1"),))])
    try:
        l3_host.agent().reconcile(L3View("network"))
        assert stray.name not in Namespaces().existing("qrouter-")
        assert dhcp.name in Namespaces().existing("qdhcp-")
        assert "tapforeign" in l3_host.ovs_ports()
    finally:
        dhcp.remove()


def test_an_op_that_fails_marks_its_router_error_and_the_others_are_built(l3_host: Host) -> None:
    good, bad = topology(l3_host.router_id()), topology(l3_host.router_id())
    broken = replace(bad.router, routes=(Route("192.0.2.0/24", "203.0.113.1"),))  # an unreachable next hop
    view = L3View("network", routers=tuple(sorted((good.router, broken))))
    outcome = l3_host.agent().reconcile(view)
    assert outcome.routers[good.router.id] == {"status": "ACTIVE", "reason": ""}
    assert outcome.routers[bad.router.id]["status"] == "ERROR"
    assert "EnsureRoutes failed" in outcome.routers[bad.router.id]["reason"]


def test_radvd_advertises_for_a_slaac_subnet_and_goes_when_no_longer_needed(l3_host: Host) -> None:
    if shutil.which("radvd") is None:
        pytest.skip("radvd is not installed (the lab installs it: apt-get install radvd)")
    router_id = l3_host.router_id()
    qr = router_port((NET1, "10.0.1.1"), (V6, "fd00:1::1"))
    view = L3View("network", routers=(Router(router_id, interfaces=(qr,)),))
    agent = l3_host.agent()
    assert agent.reconcile(view).routers[router_id]["status"] == "ACTIVE"
    pidfile = str(l3_host.state / "ra" / router_id / "radvd.pid")
    pid = radvd_driver.Radvd().running(pidfile)
    assert pid is not None
    conf = (l3_host.state / "ra" / router_id / "radvd.conf").read_text()
    assert f"interface {device_names(qr.id)[1]}" in conf and "prefix fd00:1::/64" in conf

    # A host on the segment learns the prefix from the router's advertisements (SLAAC).
    vm = l3_host.box("10.0.1.9/24", "10.0.1.1")
    vm.netns.run(["sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_ra=2"])
    vm.netns.run(["ip", "link", "set", "eth0", "down"])
    vm.netns.run(["ip", "link", "set", "eth0", "up"])
    eventually(lambda: "fd00:1:" in vm.netns.run(["ip", "-6", "address", "show", "dev", "eth0"]).stdout,
               timeout=20, what="an address from the advertised prefix")

    assert ops_of(l3_host.agent(), view) == ()  # a restart keeps radvd
    assert radvd_driver.Radvd().running(pidfile) == pid

    plain = L3View("network", seq=2, routers=(Router(router_id, interfaces=(router_port((NET1, "10.0.1.1")),)),))
    agent.reconcile(plain)
    assert radvd_driver.ours(pid, pidfile) is None
    assert not (l3_host.state / "ra" / router_id).exists()


# ---------------------------------------------------------------- traffic


def test_snat_floating_ip_east_west_and_a_session_that_survives_a_restart(l3_host: Host) -> None:
    topo = topology(l3_host.router_id())
    vm1 = l3_host.box("10.0.1.5/24", "10.0.1.1")
    vm2 = l3_host.box("10.0.2.5/24", "10.0.2.1")
    ext = l3_host.box("172.24.4.100/24")  # knows no route to the tenant networks
    agent = l3_host.agent()
    agent.reconcile(topo.view())

    # SNAT: the external host sees the router's gateway address; east-west is not NATed.
    assert peer_seen(vm1, ext, ext.ip, 5001) == "172.24.4.3"
    assert peer_seen(vm2, vm1, vm1.ip, 5002) == vm2.ip

    # Without SNAT the external host cannot answer 10.0.1.5: no connection.
    agent.reconcile(topo.view(seq=2, enable_snat=False))
    with pytest.raises(OSError):
        peer_seen(vm1, ext, ext.ip, 5003)

    # A floating IP: reached from outside at its address (no SNAT of the external host), and the
    # VM leaves with it.
    agent.reconcile(topo.view(seq=3, floating_ips=(FIP,)))
    assert peer_seen(ext, vm1, FIP.floating_ip_address, 5004) == ext.ip
    assert peer_seen(vm1, ext, ext.ip, 5005) == FIP.floating_ip_address

    # A session through the DNAT survives an agent restart (nothing rewritten).
    listener = vm1.listen(5006)
    client = ext.socket()
    client.connect((FIP.floating_ip_address, 5006))
    conn, _ = listener.accept()
    conn.settimeout(5)
    try:
        restarted = l3_host.agent()
        assert ops_of(restarted, topo.view(seq=3, floating_ips=(FIP,))) == ()
        restarted.reconcile(topo.view(seq=3, floating_ips=(FIP,)))
        client.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.sendall(b"pong")
        assert client.recv(4) == b"pong"
    finally:
        client.close()
        conn.close()
        listener.close()

    # Disassociated: the floating address no longer reaches the VM.
    restarted.reconcile(topo.view(seq=4))
    with pytest.raises(OSError):
        peer_seen(ext, vm1, FIP.floating_ip_address, 5007)


# ---------------------------------------------------------------- timings


def test_timings_with_many_routers(l3_host: Host) -> None:
    """Not a benchmark: a guard against order-of-magnitude regressions (printed with -s;
    BARYON_L3_TIMING_ROUTERS sets how many routers, 20 by default)."""
    count = int(os.environ.get("BARYON_L3_TIMING_ROUTERS", "20"))
    routers = []
    for n in range(count):
        router_id = l3_host.router_id()
        gateway = router_port((EXT, f"172.24.4.{10 + n}"))
        qr = router_port((NET1, "10.0.1.1"))
        fip = FloatingIp(str(uuid.uuid4()), f"172.24.4.{100 + n}", "10.0.1.5", "p")
        routers.append(Router(router_id, True, gateway, (qr,), (), (fip,)))
    view = L3View("network", routers=tuple(sorted(routers)))
    agent = l3_host.agent()
    start = time.perf_counter()
    outcome = agent.reconcile(view)
    built = time.perf_counter() - start
    assert {s["status"] for s in outcome.routers.values()} == {"ACTIVE"}
    start = time.perf_counter()
    agent.reconcile(view)
    same = time.perf_counter() - start
    fresh = l3_host.agent()
    start = time.perf_counter()
    assert ops_of(fresh, view) == ()
    restart = time.perf_counter() - start
    print(f"\n{count} routers: built {built * 1000:.0f} ms, unchanged {same * 1000:.1f} ms, "
          f"restart (first observe + plan) {restart * 1000:.0f} ms")
    assert same < 0.1 * count / 10 and restart < 2
