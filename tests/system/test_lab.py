"""A running lab without agents: nodes, their OVS, what a node sees, VMs plugged as os-vif plugs them."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.api.helpers import OPENSTACK
from tests.support.lab import BARYON, LabCli

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(hosts_lab: LabCli) -> LabCli:
    return hosts_lab


def test_every_node_and_process_is_up(lab: LabCli) -> None:
    status = lab.status()
    assert status["up"] is True
    assert [n["name"] for n in status["nodes"]] == ["controller", "network", "compute1", "compute2", "external"]
    assert all(n["up"] for n in status["nodes"])
    pids = lab.pids()
    for node in ("network", "compute1", "compute2"):
        assert pids[(node, "ovsdb-server")] and pids[(node, "ovs-vswitchd")]
    assert pids[("controller", "baryon-server")]
    assert status["api_url"] == lab.api_url
    text = lab.run("status").stdout
    assert "compute2" in text and "10.10.10.1" in text and "ovs-vswitchd[" in text


def test_the_api_answers_on_loopback_and_on_the_management_network(lab: LabCli) -> None:
    with lab.api() as api:
        assert api.get("/networks").json() == {"networks": []}
    # The openstack CLI on the machine, as the README says.
    out = subprocess.run([OPENSTACK, "--os-auth-type", "none", "--os-endpoint", lab.api_url, "network", "list",
                          "-f", "json"], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == []
    # An agent's view: from inside compute1, over the management network.
    versions = lab.exec("compute1", "busybox", "wget", "-q", "-O", "-", "http://10.20.0.2:9696/").stdout
    assert json.loads(versions)["versions"][0]["id"] == "v2.0"


def test_each_node_sees_itself_alone(lab: LabCli) -> None:
    assert lab.exec("network", "ip", "netns", "ls").stdout == ""
    lab.exec("network", "ip", "netns", "add", "qdhcp-lab-test")
    try:
        assert lab.exec("network", "ip", "netns", "ls").stdout.split() == ["qdhcp-lab-test"]
        assert lab.exec("compute1", "ip", "netns", "ls").stdout == ""
        assert not Path("/run/netns/qdhcp-lab-test").exists()  # not in the machine's root either
    finally:
        lab.exec("network", "ip", "netns", "delete", "qdhcp-lab-test")
    links = lab.exec("compute1", "ip", "-o", "link", "show").stdout
    assert "eth0" in links and "eth1" in links and "eth2" not in links
    assert sorted(lab.exec("network", "ls", "/sys/class/net").stdout.split()) == sorted(
        ["lo", "eth0", "eth1", "eth2", "ovs-netdev", "br-phy", "br-ex"])
    # OVS as the node's own, by default paths inside the node and by the seed's ovsdb_connection.
    assert lab.exec("network", "ovs-vsctl", "list-br").stdout.split() == ["br-ex", "br-phy"]
    assert lab.exec("compute1", "ovs-vsctl", "--db=tcp:127.0.0.1:6640", "list-br").stdout.split() == ["br-phy"]
    # A bare ovs-appctl reaches the node's own ovs-vswitchd, and ovs-ofctl its bridges.
    assert "br-phy" in lab.exec("compute1", "ovs-appctl", "dpif/show").stdout
    assert "br-ex" not in lab.exec("compute1", "ovs-appctl", "dpif/show").stdout
    assert "NXST_FLOW" in lab.exec("network", "ovs-ofctl", "dump-flows", "br-ex").stdout
    assert "actions=NORMAL" in lab.exec("compute1", "ovs-ofctl", "dump-flows", "br-phy").stdout
    addr = lab.exec("compute2", "ip", "-o", "-4", "address", "show", "dev", "br-phy").stdout
    assert "10.10.10.12/24" in addr
    ml2 = lab.exec("network", "cat", str(lab.state_dir / "nodes/network/etc/ml2_conf.ini")).stdout
    assert "local_ip = 10.10.10.1" in ml2.splitlines() and "bridge_mappings = physnet1:br-ex" in ml2.splitlines()
    # The underlay carries traffic between the tunnel endpoints.
    lab.exec("compute1", "ping", "-c", "1", "-W", "2", "10.10.10.1")


def test_external_world(lab: LabCli) -> None:
    addrs = lab.exec("external", "ip", "-o", "-4", "address", "show").stdout
    assert "203.0.113.1/24" in addrs and "198.51.100.1/32" in addrs
    assert "eth2" in lab.exec("network", "ovs-vsctl", "list-ports", "br-ex").stdout.split()


@pytest.fixture(scope="module")
def network(lab: LabCli) -> dict:
    with lab.api() as api:
        net = api.post("/networks", json={"network": {"name": "lab-net"}}).json()["network"]
        api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4,
                                              "name": "lab-subnet"}}).raise_for_status()
    return net


def _ping(lab: LabCli, vm: str, address: str, count: int = 1) -> bool:
    return lab.vm_exec(vm, "ping", "-c", str(count), "-W", "1", address, check=False).returncode == 0


def _set_tag(lab: LabCli, node: str, port_id: str, tag: int) -> None:
    lab.exec(node, "ovs-vsctl", "set", "Port", f"qvo{port_id[:11]}", f"tag={tag}")


def test_two_vms_with_the_same_local_vlan_on_one_node_reach_each_other(lab: LabCli, network: dict) -> None:
    # Fixed addresses for every VM of this module: a random one could take another's (a 409).
    lab.run("vm", "create", "a", "--node", "compute1", "--network", "lab-net", "--ip", "10.0.0.40")
    lab.run("vm", "create", "b", "--node", "compute1", "--network", network["id"], "--subnet", "lab-subnet",
            "--ip", "10.0.0.50")
    vms = lab.vms()
    a, b = vms["a"], vms["b"]
    assert b["addresses"] == ["10.0.0.50/24"]
    # What an agent would do: the same local VLAN for both ports of the network.
    _set_tag(lab, "compute1", a["port_id"], 5)
    _set_tag(lab, "compute1", b["port_id"], 5)
    assert _ping(lab, "a", "10.0.0.50", count=2)
    # TCP too: the checksum trap (DATAPLANE.md) would let ping through and drop this.
    listener = subprocess.Popen([*BARYON, "lab", "--state-dir", str(lab.state_dir), "vm", "exec",
                                 "b", "--", "busybox", "nc", "-l", "-p", "5001", "-w", "5"],
                                stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 5
        while "5001" not in lab.vm_exec("b", "ss", "-ltn").stdout and time.monotonic() < deadline:
            time.sleep(0.05)
        sent = subprocess.run([*BARYON, "lab", "--state-dir", str(lab.state_dir), "vm", "exec", "a",
                               "--", "busybox", "nc", "-w", "3", "10.0.0.50", "5001"], input="over-tcp\n",
                              text=True, capture_output=True, timeout=15)
        assert sent.returncode == 0, sent.stderr
        out, _ = listener.communicate(timeout=10)
    finally:
        listener.kill()
        listener.wait()
    assert out == "over-tcp\n"


def test_a_different_local_vlan_is_another_network(lab: LabCli, network: dict) -> None:
    lab.run("vm", "create", "c", "--node", "compute1", "--network", "lab-net", "--ip", "10.0.0.55")
    _set_tag(lab, "compute1", lab.vms()["c"]["port_id"], 6)
    assert not _ping(lab, "c", "10.0.0.50")


def test_nodes_are_isolated_without_agents(lab: LabCli, network: dict) -> None:
    lab.run("vm", "create", "d", "--node", "compute2", "--network", "lab-net", "--ip", "10.0.0.60")
    _set_tag(lab, "compute2", lab.vms()["d"]["port_id"], 5)
    # Tunnels are the OVS agent's job: without it compute1's br-int leads nowhere.
    assert not _ping(lab, "a", "10.0.0.60")


def test_the_plug_is_os_vifs_hybrid_plug(lab: LabCli, network: dict) -> None:
    vm = lab.vms()["a"]
    port_id, short = vm["port_id"], vm["port_id"][:11]
    with lab.api() as api:
        port = api.get(f"/ports/{port_id}").json()["port"]
    assert port["device_owner"] == "compute:nova"
    assert port["device_id"] == vm["id"]
    assert port["binding:host_id"] == "compute1"
    assert port["mac_address"] == vm["mac"]
    ids = lab.exec("compute1", "ovs-vsctl", "get", "Interface", f"qvo{short}", "external_ids").stdout
    for item in (f'iface-id="{port_id}"', f'attached-mac="{vm["mac"]}"', 'iface-status=active',
                 f'vm-uuid="{vm["id"]}"'):
        assert item in ids
    for kind in ("tap", "qbr", "qvb", "qvo"):  # as os-vif: no IPv6 on the host-side devices
        assert lab.exec("compute1", "sysctl", "-n", f"net.ipv6.conf.{kind}{short}.disable_ipv6").stdout.strip() == "1"
    bridge_ports = lab.exec("compute1", "ip", "-o", "link", "show", "master", f"qbr{short}").stdout
    assert f"tap{short}" in bridge_ports and f"qvb{short}" in bridge_ports
    eth0 = lab.vm_exec("a", "ip", "-o", "link", "show", "eth0").stdout
    assert vm["mac"] in eth0 and "mtu 1450" in eth0  # the VXLAN network's MTU
    assert "tx-checksumming: off" in lab.vm_exec("a", "ethtool", "-k", "eth0").stdout
    listed = lab.run("vm", "list").stdout
    assert "a" in listed.split() and port_id in listed


def test_vm_delete_unplugs_and_deletes_the_port(lab: LabCli, network: dict) -> None:
    vm = lab.vms()["c"]
    short = vm["port_id"][:11]
    lab.run("vm", "delete", "c")
    assert "c" not in lab.vms()
    assert f"qvo{short}" not in lab.exec("compute1", "ovs-vsctl", "list-ports", "br-int").stdout
    assert lab.exec("compute1", "ip", "link", "show", f"qbr{short}", check=False).returncode != 0
    assert vm["netns"] not in lab.namespaces()
    with lab.api() as api:
        assert api.get(f"/ports/{vm['port_id']}").status_code == 404


@pytest.mark.parametrize("args, message", [
    (["x1", "--node", "nowhere", "--network", "lab-net"], "no node 'nowhere'"),
    (["x2", "--node", "controller", "--network", "lab-net"], "hosts no VMs"),
    (["x3", "--node", "compute1", "--network", "no-such-net"], "no network named or with id 'no-such-net'"),
    (["x4", "--node", "compute1", "--network", "lab-net", "--ip", "10.9.9.9"], "10.9.9.9"),
    (["a", "--node", "compute1", "--network", "lab-net"], "exists already"),
    (["bad/name", "--node", "compute1", "--network", "lab-net"], "VM name"),
])
def test_vm_create_refuses_bad_requests_and_leaves_nothing(lab: LabCli, network: dict, args: list[str],
                                                           message: str) -> None:
    with lab.api() as api:
        before = api.get("/ports").json()["ports"]
    namespaces = lab.namespaces()
    proc = lab.run("vm", "create", *args, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert proc.stderr.startswith("baryon lab: error:")
    with lab.api() as api:
        assert api.get("/ports").json()["ports"] == before
    assert lab.namespaces() == namespaces


def test_a_second_up_keeps_what_runs_and_repairs_what_is_missing(lab: LabCli, network: dict) -> None:
    pids = lab.pids()
    lab.up()
    assert lab.pids() == pids
    # A crashed ovs-vswitchd (our own process: its PID from the lab's status) comes back.
    victim = pids[("compute2", "ovs-vswitchd")]
    assert victim is not None
    subprocess.run(["kill", "-9", str(victim)], check=True)
    deadline = time.monotonic() + 5
    while lab.pids()[("compute2", "ovs-vswitchd")] is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    out = lab.up().stdout
    assert "[" in out and "The lab is up" in out
    after = lab.pids()
    assert after[("compute2", "ovs-vswitchd")] not in (None, victim)
    assert {k: v for k, v in after.items() if k != ("compute2", "ovs-vswitchd")} == {
        k: v for k, v in pids.items() if k != ("compute2", "ovs-vswitchd")}
    assert lab.exec("compute2", "ovs-vsctl", "list-br").stdout.split() == ["br-int", "br-phy"]


def test_exec_refuses_an_unknown_node(lab: LabCli) -> None:
    proc = lab.run("exec", "compute9", "--", "true", check=False)
    assert proc.returncode != 0 and "no node 'compute9'" in proc.stderr
