"""The DHCP agent on a real host (root): its drivers, a real dnsmasq, real DHCP clients.

Each test gets a throwaway Open vSwitch (``ovs_node``: a namespace with its own OVS) whose
namespace acts as the network node: its br-int (netdev, standalone: a learning switch, as no OVS
agent tags ports here) carries the DHCP port's tap and the "VMs'" ports. ``DhcpAgent`` runs in
the test process with ``node_netns`` naming that namespace, so its node-side commands run there.

NOTE: where the ``qdhcp-`` namespaces live. In the lab and on a real host the agent runs inside
its node's mount namespace and ``ip netns add`` registers them in the node's own /run/netns.
``ip netns add`` from inside ``ip netns exec`` does not work (DATAPLANE.md), and giving the test
process a private mount namespace would take the whole pytest run with it; so here they are
registered in the root's /run/netns, under names unique to each test (``qdhcp-<random uuid>``):
new namespaces, never the root one. The agent only ever removes namespaces of networks it has
traces of (a state directory under the test's own ``state_path``, or a port on the test's own
br-int), so tests running side by side cannot remove each other's.

"VMs" are namespaces ``bvm-<hex>`` plugged into br-int by a veth, whose DHCP client is
``busybox udhcpc`` (never dhclient: its script rewrites the host's resolv.conf) with a script that
applies the lease to eth0 and writes its fields to a file. Finalizers stop every dnsmasq by the
PID in its pidfile (after checking that its command line names that pidfile) and delete every
namespace the test made.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from baryon.agent.dhcp_agent import DhcpAgent
from baryon.agent.drivers import dnsmasq as dnsmasq_driver, pidfiles
from baryon.agent.drivers.netns import Namespaces
from baryon.agent.drivers.ovsdb import Ovsdb
from baryon.agent.plan import dhcp as plan_dhcp
from baryon.agent.plan.dhcp import (NETWORK_KEY, EnsureDevice, EnsureNamespace, ReloadDnsmasq, RestartDnsmasq,
                                    StartDnsmasq, WriteFiles, device_names, namespace_name, plan)
from baryon.config.agent import AgentDefaultSection, AgentSettings, OvsSection
from baryon.lab import host
from baryon.model.dhcp import DhcpNetwork, DhcpPort, DhcpSubnet, DhcpView, HostRoute
from baryon.model.ovs import EnsureBridge, EnsurePort
from tests.support.netns import Netns
from tests.support.ovs import OvsNode
from tests.support.wait import eventually

MTU = 1450
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip -4 address flush dev "$interface" ;;
  bound|renew)
    ip -4 address flush dev "$interface"
    ip address add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    {
      echo "ip=$ip"; echo "mask=$mask"; echo "router=$router"; echo "dns=$dns"; echo "mtu=$mtu"
      echo "domain=$domain"; echo "hostname=$hostname"; echo "staticroutes=$staticroutes"; echo "lease=$lease"
    } > "$LEASE_FILE"
    ;;
esac
exit 0
"""


def port(n: int, subnet_id: str, owner: str = "compute:nova") -> DhcpPort:
    """Port .n of the subnet, with a random id and MAC (device names come from the id)."""
    mac = "fa:16:3e:" + ":".join(secrets.token_hex(1) for _ in range(3))
    return DhcpPort(str(uuid.uuid4()), mac, ((subnet_id, f"10.0.0.{n}"),), f"host-10-0-0-{n}", owner)


@dataclass
class Net:
    """One network of the test's view: 10.0.0.0/24, DHCP port .2, VM ports as added."""

    id: str
    subnet: DhcpSubnet
    dhcp_port: DhcpPort
    ports: list[DhcpPort]
    mtu: int = MTU

    @classmethod
    def make(cls) -> Net:
        subnet = DhcpSubnet(str(uuid.uuid4()), "10.0.0.0/24", 4, True, "10.0.0.1", ("192.0.2.53",),
                            (HostRoute("192.0.2.0/24", "10.0.0.254"),))
        dhcp = port(2, subnet.id, "network:dhcp")
        return cls(str(uuid.uuid4()), subnet, dhcp, [dhcp])

    def add_port(self, n: int) -> DhcpPort:
        new = port(n, self.subnet.id)
        self.ports.append(new)
        return new

    def model(self) -> DhcpNetwork:
        return DhcpNetwork(self.id, self.mtu, (self.subnet,), tuple(sorted(self.ports, key=lambda p: p.id)),
                           self.dhcp_port)

    def view(self, *, seq: int = 1) -> DhcpView:
        return DhcpView("network", seq=seq, networks=(self.model(),))

    @property
    def namespace(self) -> str:
        return namespace_name(self.id)


class Vm:
    """A namespace with eth0 plugged into the node's br-int; its DHCP client is busybox udhcpc."""

    def __init__(self, node: OvsNode, mac: str, base: Path) -> None:
        self.netns = Netns("bvm-" + secrets.token_hex(4))
        self.node = node
        self.mac = mac
        self.port = "vm" + secrets.token_hex(4)
        self.lease_file = base / f"{self.port}.lease"
        self.script = base / "udhcpc.sh"

    def plug(self) -> Vm:
        self.netns.create()
        self.node.run(["ip", "link", "add", self.port, "type", "veth", "peer", "name", "eth0", "netns",
                       self.netns.name])
        self.node.run(["ip", "link", "set", self.port, "up"])
        with Ovsdb(self.node.connection) as db:
            db.apply([EnsurePort("br-int", self.port)])
        self.netns.run(["ip", "link", "set", "eth0", "address", self.mac, "up"])
        self.netns.run(["ethtool", "-K", "eth0", "tx", "off"])
        if not self.script.exists():
            self.script.write_text(UDHCPC_SCRIPT)
            self.script.chmod(0o755)
        return self

    def dhcp(self) -> dict[str, str]:
        self.lease_file.unlink(missing_ok=True)
        self.netns.run(["env", f"LEASE_FILE={self.lease_file}", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                        "-t", "5", "-T", "1", "-O", "mtu", "-O", "staticroutes", "-O", "domain",
                        "-s", str(self.script)], timeout=30)
        return dict(line.split("=", 1) for line in self.lease_file.read_text().splitlines() if "=" in line)

    def remove(self) -> None:
        self.netns.remove()


@dataclass
class Host:
    node: OvsNode
    state: Path
    base: Path
    networks: list[Net]
    vms: list[Vm]

    def settings(self) -> AgentSettings:
        return AgentSettings(DEFAULT=AgentDefaultSection(host="network", state_path=str(self.state)),
                             ovs=OvsSection(ovsdb_connection=self.node.connection, integration_bridge="br-int"))

    def agent(self) -> DhcpAgent:
        return DhcpAgent(self.settings(), node_netns=self.node.netns)

    def network(self) -> Net:
        net = Net.make()
        self.networks.append(net)
        return net

    def vm(self, mac: str) -> Vm:
        vm = Vm(self.node, mac, self.base)
        self.vms.append(vm)
        return vm.plug()

    def directory(self, net: Net) -> Path:
        return self.state / "dhcp" / net.id

    def pid(self, net: Net) -> int | None:
        return dnsmasq_driver.Dnsmasq().running(str(self.directory(net) / "pid"))

    def node_links(self) -> set[str]:
        return self.node.link_names()

    def ovs_ports(self) -> dict[str, dict[str, str]]:
        return self.node.bridge_ports("br-int")


@pytest.fixture
def dhcp_host(ovs_node: OvsNode, tmp_path: Path) -> Iterator[Host]:
    # dnsmasq re-reads its files as nobody: the state path must be traversable (tmp_path is 0700).
    state = Path(tempfile.mkdtemp(prefix="baryon-dhcp-", dir="/tmp"))
    state.chmod(0o755)
    with Ovsdb(ovs_node.connection) as db:
        db.apply([EnsureBridge("br-int", "netdev", fail_mode="")])  # standalone: NORMAL switching
    found = Host(ovs_node, state, tmp_path, [], [])
    try:
        yield found
    finally:
        for net in found.networks:
            pidfile = str(found.directory(net) / "pid")
            pid = pidfiles.read_pid(pidfile)
            if pid is not None:
                dnsmasq_driver.Dnsmasq().stop(pid, pidfile)  # only if its command line names the pidfile
            host.remove_netns(net.namespace)
        for vm in found.vms:
            vm.remove()
        shutil.rmtree(state, ignore_errors=True)


def ops_of(agent: DhcpAgent, view: DhcpView) -> tuple:
    return plan(view, agent.observe(view), agent.dhcp).ops


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- serving


def test_a_vm_gets_its_lease_dns_answers_and_a_new_host_is_served_after_sighup(dhcp_host: Host) -> None:
    net = dhcp_host.network()
    vm1_port = net.add_port(5)
    agent = dhcp_host.agent()
    view = net.view()
    assert [type(op) for op in ops_of(agent, view)] == [EnsureNamespace, EnsureDevice, WriteFiles, StartDnsmasq,
                                                        EnsurePort]
    agent.reconcile(view)

    tap, device = device_names(net.dhcp_port.id)
    assert net.namespace in Namespaces().existing("qdhcp-")
    [ns_link] = Namespaces().links([net.namespace])[net.namespace][1:]  # after lo
    assert (ns_link.name, ns_link.mac, ns_link.mtu, ns_link.up, ns_link.addresses, ns_link.gateways) == (
        device, net.dhcp_port.mac_address, MTU, True, ("10.0.0.2/24",), ("10.0.0.1",))
    offload = host.run(["nsenter", f"--net=/run/netns/{net.namespace}", "--", "ethtool", "-k", device]).stdout
    assert "tx-checksumming: off" in offload
    assert tap in dhcp_host.node_links()
    assert dhcp_host.ovs_ports()[tap] == {"iface-id": net.dhcp_port.id, "attached-mac": net.dhcp_port.mac_address,
                                          "iface-status": "active", NETWORK_KEY: net.id}
    want = plan_dhcp.desired(net.model(), view, agent.dhcp)
    directory = dhcp_host.directory(net)
    assert {name: (directory / name).read_text() for name in ("host", "addn_hosts", "opts")} == dict(want.files)
    assert all((directory / name).stat().st_mode & 0o777 == 0o644 for name in ("host", "addn_hosts", "opts"))
    assert directory.stat().st_mode & 0o777 == 0o755
    pid = dhcp_host.pid(net)
    assert pid is not None and dnsmasq_driver.cmdline(pid) == want.argv

    vm1 = dhcp_host.vm(vm1_port.mac_address)
    lease = vm1.dhcp()
    assert (lease["ip"], lease["mask"], lease["router"], lease["dns"], lease["mtu"], lease["domain"]) == (
        "10.0.0.5", "24", "10.0.0.1", "192.0.2.53", str(MTU), "openstacklocal")
    assert lease["staticroutes"].split() == ["192.0.2.0/24", "10.0.0.254", "0.0.0.0/0", "10.0.0.1"]
    assert lease["lease"] == "86400"

    assert ops_of(agent, view) == ()  # converged: the next run changes nothing

    # A port created while dnsmasq runs: files rewritten, SIGHUP, served with the PID unchanged.
    vm2_port = net.add_port(6)
    view = net.view(seq=2)
    ops = ops_of(agent, view)
    assert [type(op) for op in ops] == [WriteFiles, ReloadDnsmasq]
    assert [name for name, _ in ops[0].files] == ["host", "addn_hosts"]
    agent.reconcile(view)
    vm2 = dhcp_host.vm(vm2_port.mac_address)
    assert vm2.dhcp()["ip"] == "10.0.0.6"
    assert dhcp_host.pid(net) == pid

    # DNS: the names of the network's ports, short and qualified, through the DHCP port's address;
    # the one added since the start answers too (addn_hosts re-read on SIGHUP).
    for name, address in (("host-10-0-0-5", "10.0.0.5"), ("host-10-0-0-5.openstacklocal", "10.0.0.5"),
                          ("host-10-0-0-6", "10.0.0.6")):
        out = vm2.netns.run(["busybox", "nslookup", name, "10.0.0.2"], check=False).stdout
        assert f"Address: {address}" in out, out

    # An agent restart: a new agent finds the host as it wants it and touches nothing.
    again = dhcp_host.agent()
    assert ops_of(again, view) == ()
    again.reconcile(view)
    assert dhcp_host.pid(net) == pid


def test_changed_dns_servers_reach_a_renewing_client_without_a_restart(dhcp_host: Host) -> None:
    net = dhcp_host.network()
    vm_port = net.add_port(7)
    agent = dhcp_host.agent()
    agent.reconcile(net.view())
    pid = dhcp_host.pid(net)
    vm = dhcp_host.vm(vm_port.mac_address)
    assert vm.dhcp()["dns"] == "192.0.2.53"

    net.subnet = replace(net.subnet, dns_nameservers=("192.0.2.54", "192.0.2.55"))
    view = net.view(seq=2)
    assert [type(op) for op in ops_of(agent, view)] == [WriteFiles, ReloadDnsmasq]
    agent.reconcile(view)
    assert vm.dhcp()["dns"].split() == ["192.0.2.54", "192.0.2.55"]
    assert dhcp_host.pid(net) == pid


def test_an_mtu_change_converges_the_device_and_restarts_dnsmasq(dhcp_host: Host) -> None:
    net = dhcp_host.network()
    vm_port = net.add_port(8)
    agent = dhcp_host.agent()
    agent.reconcile(net.view())
    pid = dhcp_host.pid(net)

    net.mtu = 1400
    view = net.view(seq=2)
    ops = ops_of(agent, view)
    assert [type(op) for op in ops] == [EnsureDevice, RestartDnsmasq]
    assert not ops[0].create
    agent.reconcile(view)
    assert dhcp_host.pid(net) not in (None, pid)
    _lo, link = Namespaces().links([net.namespace])[net.namespace]
    assert link.mtu == 1400
    assert dhcp_host.vm(vm_port.mac_address).dhcp()["mtu"] == "1400"
    assert ops_of(agent, view) == ()


def test_a_dual_stack_network_with_stateful_dhcpv6_and_slaac(dhcp_host: Host) -> None:
    net = dhcp_host.network()
    stateful = DhcpSubnet(str(uuid.uuid4()), "fd00:1::/64", 6, True, "fd00:1::1", ("fd00::53",), (),
                          "dhcpv6-stateful", "dhcpv6-stateful")
    slaac = DhcpSubnet(str(uuid.uuid4()), "fd00:2::/64", 6, True, "fd00:2::1", (), (), "slaac", "slaac")
    net.dhcp_port = replace(net.dhcp_port, fixed_ips=(*net.dhcp_port.fixed_ips, (stateful.id, "fd00:1::2"),
                                                      (slaac.id, "fd00:2::2")))
    vm_port = net.add_port(12)
    vm_port = replace(vm_port, fixed_ips=(*vm_port.fixed_ips, (stateful.id, "fd00:1::c")))
    net.ports = [net.dhcp_port, vm_port]
    view = DhcpView("network", networks=(replace(net.model(), subnets=(net.subnet, stateful, slaac)),))
    agent = dhcp_host.agent()
    agent.reconcile(view)
    pid = dhcp_host.pid(net)
    assert pid is not None and f"--dhcp-range=set:subnet-{stateful.id},fd00:1::,static,64,86400s" in \
        dnsmasq_driver.cmdline(pid)
    _lo, link = Namespaces().links([net.namespace])[net.namespace]
    assert link.addresses == ("10.0.0.2/24", "fd00:1::2/64", "fd00:2::2/64")
    assert link.gateways == ("10.0.0.1", "fd00:1::1")
    assert "tag:dhcpv6,host-fd00-1--c.openstacklocal.,[fd00:1::c]" in (dhcp_host.directory(net) / "host").read_text()
    assert dhcp_host.vm(vm_port.mac_address).dhcp()["ip"] == "10.0.0.12"  # the IPv6 line is not taken for DHCPv4
    assert ops_of(agent, view) == ()
    assert dhcp_host.pid(net) == pid


# ---------------------------------------------------------------- supervision


def test_a_killed_dnsmasq_wakes_the_agent_and_the_next_run_starts_it(dhcp_host: Host) -> None:
    net = dhcp_host.network()
    vm_port = net.add_port(9)
    agent = dhcp_host.agent()
    view = net.view()
    agent.reconcile(view)
    pid = dhcp_host.pid(net)
    woken = threading.Event()
    agent.start(woken.set)
    try:
        os.kill(pid, signal.SIGKILL)  # the PID of the pidfile, whose command line names it
        eventually(woken.is_set, timeout=5, what="the supervision thread to wake the loop")
        assert [type(op) for op in ops_of(agent, view)] == [StartDnsmasq]
        agent.reconcile(view)
    finally:
        agent.stop()
    assert dhcp_host.pid(net) not in (None, pid)
    assert dhcp_host.vm(vm_port.mac_address).dhcp()["ip"] == "10.0.0.9"
    assert agent.configurations() == {"dhcp_driver": "neutron.agent.linux.dhcp.Dnsmasq", "dhcp_lease_duration": 86400,
                                      "log_agent_heartbeats": False, "networks": 1, "subnets": 1, "ports": 2}


def test_a_deleted_namespace_is_rebuilt_with_its_device_port_and_dnsmasq(dhcp_host: Host) -> None:
    net = dhcp_host.network()
    vm_port = net.add_port(10)
    agent = dhcp_host.agent()
    agent.reconcile(net.view())
    pid = dhcp_host.pid(net)
    host.run(["ip", "netns", "delete", net.namespace])  # dnsmasq lives on in the unnamed namespace
    ops = ops_of(agent, net.view())
    assert [type(op).__name__ for op in ops] == ["DeletePort", "EnsureNamespace", "DeleteLink", "EnsureDevice",
                                                 "RestartDnsmasq", "EnsurePort"]
    agent.reconcile(net.view())
    assert dhcp_host.pid(net) not in (None, pid)
    assert dhcp_host.vm(vm_port.mac_address).dhcp()["ip"] == "10.0.0.10"
    assert ops_of(agent, net.view()) == ()


# ---------------------------------------------------------------- removal


def test_a_network_gone_from_the_view_leaves_nothing(dhcp_host: Host) -> None:
    net = dhcp_host.network()
    agent = dhcp_host.agent()
    agent.reconcile(net.view())
    pid = dhcp_host.pid(net)
    tap, _ = device_names(net.dhcp_port.id)

    agent.reconcile(DhcpView("network", seq=2))
    assert net.namespace not in Namespaces().existing("qdhcp-")
    assert tap not in dhcp_host.node_links() and tap not in dhcp_host.ovs_ports()
    assert dnsmasq_driver.ours(pid, str(dhcp_host.directory(net) / "pid")) is None
    assert not dhcp_host.directory(net).exists()
    assert ops_of(agent, DhcpView("network", seq=2)) == ()


def test_a_starting_agent_cleans_leftovers_of_networks_not_in_its_view_and_only_those(dhcp_host: Host) -> None:
    kept, gone = dhcp_host.network(), dhcp_host.network()
    view = DhcpView("network", networks=(kept.model(), gone.model()))
    dhcp_host.agent().reconcile(view)
    stray = Netns(namespace_name(str(uuid.uuid4()))).create()  # another agent's, say: no traces of ours
    try:
        restarted = dhcp_host.agent()  # its view no longer has ``gone``
        restarted.reconcile(kept.view(seq=3))
        assert gone.namespace not in Namespaces().existing("qdhcp-")
        assert not dhcp_host.directory(gone).exists() and dhcp_host.pid(gone) is None
        assert device_names(gone.dhcp_port.id)[0] not in dhcp_host.ovs_ports()
        assert kept.namespace in Namespaces().existing("qdhcp-") and dhcp_host.pid(kept) is not None
        assert stray.name in Namespaces().existing("qdhcp-")
    finally:
        stray.remove()


# ---------------------------------------------------------------- driver details


def test_dnsmasq_driver_stops_only_its_own_process_and_keeps_ipv6_leases(dhcp_host: Host, tmp_path: Path) -> None:
    driver = dnsmasq_driver.Dnsmasq(timeout=1)
    sleeper = host.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"]).stdout.strip()
    try:
        pidfile = str(tmp_path / "pid")
        Path(pidfile).write_text(sleeper)
        assert driver.running(pidfile) is None  # alive, but its command line does not name the pidfile
        driver.stop(int(sleeper), pidfile)
        assert dnsmasq_driver.cmdline(int(sleeper))  # untouched
    finally:
        os.kill(int(sleeper), signal.SIGTERM)
    leases = tmp_path / "leases"
    leases.write_text("duid 00:01:00:01\n1700000000 fa:16:3e:00:00:05 10.0.0.5 host-10-0-0-5 *\n"
                      "1700000000 1234 fd00::5 host-fd00--5 00:01:00:01\n")
    driver._write_leases(str(leases), "0 fa:16:3e:00:00:06 10.0.0.6 * *\n")
    assert leases.read_text() == ("duid 00:01:00:01\n1700000000 1234 fd00::5 host-fd00--5 00:01:00:01\n"
                                  "0 fa:16:3e:00:00:06 10.0.0.6 * *\n")


def test_ensure_port_merges_external_ids(dhcp_host: Host) -> None:
    node = dhcp_host.node
    node.run(["ip", "link", "add", "tapx", "type", "veth", "peer", "name", "tapy"])
    with Ovsdb(node.connection) as db:
        db.apply([EnsurePort("br-int", "tapx", external_ids=(("iface-id", "p1"), ("attached-mac", "m1")))])
        node.vsctl("set", "Interface", "tapx", "external_ids:vm-uuid=keep")
        db.apply([EnsurePort("br-int", "tapx", external_ids=(("iface-id", "p2"),))])
        db.apply([EnsurePort("br-int", "tapx")])  # () touches none
        assert dict(db.observe(["br-int"]).port("tapx").external_ids) == {
            "iface-id": "p2", "attached-mac": "m1", "vm-uuid": "keep"}


def test_timings(dhcp_host: Host) -> None:
    """Not a benchmark: a guard against order-of-magnitude regressions (printed with -s)."""
    net = dhcp_host.network()
    agent = dhcp_host.agent()
    new = timed(lambda: agent.reconcile(net.view()))
    net.add_port(11)
    added = timed(lambda: agent.reconcile(net.view(seq=2)))
    same = timed(lambda: agent.reconcile(net.view(seq=2)))
    print(f"\nreconcile: new network {new * 1000:.0f} ms, port added {added * 1000:.0f} ms, "
          f"unchanged {same * 1000:.1f} ms")
    assert new < 2 and added < 0.5 and same < 0.2
