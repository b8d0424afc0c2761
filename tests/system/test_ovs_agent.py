"""The Open vSwitch agent in a real lab: VXLAN between nodes, flat networks on br-ex, port status,
liveness, restarts without a lost packet, and flows that follow the ports.

One 2-compute lab with its agents for the module; the tests build on each other in file order
(networks and VMs made by earlier tests are used by later ones).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from tests.support.lab import BARYON, LabCli
from tests.support.wait import eventually

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(agents_lab: LabCli) -> LabCli:
    return agents_lab


def port_status(lab: LabCli, port_id: str) -> str:
    with lab.api() as api:
        return api.get(f"/ports/{port_id}").json()["port"]["status"]


def ping(lab: LabCli, vm: str, address: str, count: int = 1, wait: int = 1) -> bool:
    return lab.vm_exec(vm, "ping", "-c", str(count), "-W", str(wait), address, check=False).returncode == 0


def flows(lab: LabCli, node: str, bridge: str) -> str:
    """The agent's own flows (its cookie), not those ``learn`` added (they expire by themselves)."""
    return lab.exec(node, "ovs-ofctl", "dump-flows", bridge, "cookie=0xb4770/-1").stdout


def address(lab: LabCli, vm: str) -> str:
    return lab.vms()[vm]["addresses"][0].split("/")[0]


@pytest.fixture(scope="module")
def nets(lab: LabCli) -> dict[str, dict]:
    made = {}
    with lab.api() as api:
        for name in ("red", "blue"):
            net = api.post("/networks", json={"network": {"name": name}}).json()["network"]
            api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24",
                                                  "ip_version": 4, "name": f"{name}-v4"}}).raise_for_status()
            made[name] = net
        flat = api.post("/networks", json={"network": {
            "name": "public", "provider:network_type": "flat", "provider:physical_network": "physnet1",
            "router:external": True}}).json()["network"]
        api.post("/subnets", json={"subnet": {"network_id": flat["id"], "cidr": "203.0.113.0/24", "ip_version": 4,
                                              "gateway_ip": "203.0.113.1", "enable_dhcp": False,
                                              "allocation_pools": [{"start": "203.0.113.100",
                                                                    "end": "203.0.113.200"}]}}).raise_for_status()
        made["public"] = flat
    return made


def test_every_node_runs_an_alive_ovs_agent_with_neutrons_configurations(lab: LabCli) -> None:
    with lab.api() as api:
        found = api.get("/agents", params={"agent_type": "Open vSwitch agent"}).json()["agents"]
    by_host = {a["host"]: a for a in found}
    assert sorted(by_host) == ["compute1", "compute2", "network"]
    for host, agent in by_host.items():
        assert agent["alive"] is True and agent["binary"] == "neutron-openvswitch-agent"
        conf = agent["configurations"]
        assert conf["tunnel_types"] == ["vxlan"]
        assert conf["l2_population"] is True and conf["arp_responder_enabled"] is True
        assert conf["tunneling_ip"] == {"network": "10.10.10.1", "compute1": "10.10.10.11",
                                        "compute2": "10.10.10.12"}[host]
        assert conf["bridge_mappings"] == ({"physnet1": "br-ex"} if host == "network" else {})
        assert "devices" in conf
    for node in ("network", "compute1", "compute2"):
        bridges = lab.exec(node, "ovs-vsctl", "list-br").stdout.split()
        assert {"br-int", "br-tun"} <= set(bridges)
        assert {"patch-tun"} <= set(lab.exec(node, "ovs-vsctl", "list-ports", "br-int").stdout.split())
    assert "int-br-ex" in lab.exec("network", "ovs-vsctl", "list-ports", "br-int").stdout.split()
    assert "phy-br-ex" in lab.exec("network", "ovs-vsctl", "list-ports", "br-ex").stdout.split()
    assert "table=23" in flows(lab, "compute1", "br-int")  # Neutron's canary table


def test_vms_on_two_nodes_talk_over_vxlan_and_ports_go_active(lab: LabCli, nets: dict) -> None:
    lab.run("vm", "create", "r1", "--node", "compute1", "--network", "red")
    lab.run("vm", "create", "r2", "--node", "compute2", "--network", "red")
    lab.run("vm", "create", "r3", "--node", "compute1", "--network", "red")
    vms = lab.vms()
    for name in ("r1", "r2", "r3"):
        eventually(lambda n=name: port_status(lab, vms[n]["port_id"]) == "ACTIVE", 10, f"{name} ACTIVE")
    with lab.api() as api:
        port = api.get(f"/ports/{vms['r1']['port_id']}").json()["port"]
    assert port["binding:vif_type"] == "ovs"
    assert port["binding:vif_details"]["ovs_hybrid_plug"] is True
    assert ping(lab, "r1", address(lab, "r2"), count=3)
    assert ping(lab, "r2", address(lab, "r1"))
    vni = nets["red"]["provider:segmentation_id"]
    tun = flows(lab, "compute1", "br-tun")
    assert f"tun_id={hex(vni)}" in tun
    assert f"arp_tpa={address(lab, 'r2')}" in tun  # the ARP responder answers for r2 on compute1
    assert vms["r2"]["mac"] in tun  # and l2population's unicast entry leads to compute2
    assert "vxlan-0a0a0a0c" in lab.exec("compute1", "ovs-vsctl", "list-ports", "br-tun").stdout.split()


def test_same_node_same_network_stays_on_br_int(lab: LabCli, nets: dict) -> None:
    target = address(lab, "r3")
    assert ping(lab, "r1", target)  # warms the ARP caches
    # Capture, on compute1's underlay, any VXLAN packet carrying ICMP (udp[39]: the inner IP
    # protocol, after UDP 8 + VXLAN 8 + Ethernet 14 + 9 bytes).
    capture = subprocess.Popen([*BARYON, "lab", "--state-dir", str(lab.state_dir), "exec", "compute1", "--",
                                "tcpdump", "-n", "-l", "-i", "eth1", "udp port 4789 and udp[39] = 1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: capture.poll() is None and "listening" in (capture.stderr.readline() or ""), 10,
                   "tcpdump to listen")
        assert ping(lab, "r1", target, count=5)
        assert ping(lab, "r1", address(lab, "r2"))  # the capture does see tunnelled ICMP
    finally:
        time.sleep(0.3)
        capture.send_signal(signal.SIGINT)
        out, _ = capture.communicate(timeout=10)
    inner = [line for line in out.splitlines() if "ICMP echo" in line]
    assert any(f"> {address(lab, 'r2')}: ICMP echo request" in line for line in inner), out  # r2's crossed ...
    assert not any(f"> {target}: " in line or f"IP {target} > " in line for line in inner), out  # ... r3's did not


def test_another_network_is_isolated_even_with_the_same_addresses(lab: LabCli, nets: dict) -> None:
    r2 = address(lab, "r2")
    red = {address(lab, name) for name in ("r1", "r2", "r3")}
    own = next(f"10.0.0.{i}" for i in range(240, 254) if f"10.0.0.{i}" not in red)  # b1 must not hold a red address
    lab.run("vm", "create", "b1", "--node", "compute1", "--network", "blue", "--ip", own)
    lab.run("vm", "create", "b2", "--node", "compute2", "--network", "blue", "--ip", r2)
    eventually(lambda: port_status(lab, lab.vms()["b2"]["port_id"]) == "ACTIVE", 10, "b2 ACTIVE")
    assert ping(lab, "b1", r2)  # reaches b2, its own network's holder of that address
    assert not ping(lab, "b1", address(lab, "r1"))
    assert not ping(lab, "b1", address(lab, "r3"))
    # and red's r1 still reaches red's r2, not blue's b2 (both hold that address)
    assert ping(lab, "r1", r2)
    neighbour = lab.vm_exec("r1", "ip", "neigh", "show", r2).stdout
    assert lab.vms()["r2"]["mac"] in neighbour and lab.vms()["b2"]["mac"] not in neighbour


def test_a_flat_network_reaches_the_external_world_through_br_ex(lab: LabCli, nets: dict) -> None:
    lab.run("vm", "create", "pub1", "--node", "network", "--network", "public")
    eventually(lambda: port_status(lab, lab.vms()["pub1"]["port_id"]) == "ACTIVE", 10, "pub1 ACTIVE")
    assert ping(lab, "pub1", "203.0.113.1", count=2)
    # compute1 has no bridge for physnet1: binding fails, with the reason, and nothing is plugged
    proc = lab.run("vm", "create", "pub2", "--node", "compute1", "--network", "public", check=False)
    assert proc.returncode == 1 and "binding to compute1 failed" in proc.stderr
    assert "pub2" not in lab.vms()


def test_port_status_follows_the_vif(lab: LabCli, nets: dict) -> None:
    with lab.api() as api:
        port = api.post("/ports", json={"port": {"network_id": nets["red"]["id"]}}).json()["port"]
    assert port["status"] == "DOWN"
    lab.run("vm", "create", "p1", "--node", "compute2", "--port", port["id"])
    eventually(lambda: port_status(lab, port["id"]) == "ACTIVE", 10, "ACTIVE once plugged")
    qvo = f"qvo{port['id'][:11]}"
    lab.exec("compute2", "ovs-vsctl", "del-port", "br-int", qvo)  # unplugged under the agent
    eventually(lambda: port_status(lab, port["id"]) == "DOWN", 10, "DOWN once unplugged")
    lab.run("vm", "delete", "p1")
    with lab.api() as api:
        kept = api.get(f"/ports/{port['id']}").json()["port"]
    assert kept["device_id"] == "" and kept["binding:host_id"] == ""  # as Nova leaves a port it was given


def test_deleting_ports_removes_their_flows_everywhere(lab: LabCli, nets: dict) -> None:
    r3_mac = lab.vms()["r3"]["mac"]
    assert r3_mac in flows(lab, "compute2", "br-tun")  # l2population unicast entry for r3 on compute1
    lab.run("vm", "delete", "r3")
    eventually(lambda: r3_mac not in flows(lab, "compute2", "br-tun"), 10, "r3's flows gone from compute2")
    # compute1 keeps red (r1); blue's b1 is the last port of blue on compute1: delete it
    blue_vni = hex(nets["blue"]["provider:segmentation_id"])
    assert f"tun_id={blue_vni}" in flows(lab, "compute1", "br-tun")
    lab.run("vm", "delete", "b1")
    eventually(lambda: f"tun_id={blue_vni}" not in flows(lab, "compute1", "br-tun"), 10, "blue gone from compute1")
    # and compute2 no longer floods blue to compute1
    eventually(lambda: not any(blue_vni in line and "vxlan-0a0a0a0b" in line
                               for line in flows(lab, "compute2", "br-tun").splitlines()), 10,
               "compute2 no longer floods blue to compute1")


def test_a_killed_agent_is_dead_within_agent_down_time_and_comes_back(lab: LabCli, nets: dict) -> None:
    pid = lab.pids()[("compute2", "ovs-agent")]
    assert pid
    subprocess.run(["kill", "-9", str(pid)], check=True)

    def alive() -> bool:
        with lab.api() as api:
            return api.get("/agents", params={"host": "compute2"}).json()["agents"][0]["alive"]

    eventually(lambda: not alive(), 25, "compute2's agent alive: false (lab agent_down_time 15 s)")
    lab.up()
    assert alive()


def test_restarting_an_agent_loses_no_packet(lab: LabCli, nets: dict) -> None:
    target = address(lab, "r2")
    assert ping(lab, "r1", target)
    pinger = subprocess.Popen([*BARYON, "lab", "--state-dir", str(lab.state_dir), "vm", "exec", "r1", "--",
                               "ping", "-i", "0.01", "-c", "500", "-W", "1", target],
                              stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        for node in ("compute1", "compute2"):
            pid = lab.pids()[(node, "ovs-agent")]
            subprocess.run(["kill", "-9", str(pid)], check=True)
        lab.up()  # restarts both agents: each rebuilds its plan from the switch as it is
        out, _ = pinger.communicate(timeout=30)
    finally:
        if pinger.poll() is None:
            pinger.send_signal(signal.SIGINT)
            pinger.wait()
    summary = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert summary, out
    assert summary.group(1) == summary.group(2) == "500", out.splitlines()[-3:]


def test_stale_flows_of_ports_deleted_while_the_agent_was_down_are_swept(lab: LabCli, nets: dict) -> None:
    lab.run("vm", "create", "s1", "--node", "compute1", "--network", "red")
    mac = lab.vms()["s1"]["mac"]
    eventually(lambda: mac in flows(lab, "compute2", "br-tun"), 10, "s1 known on compute2")
    pid = lab.pids()[("compute2", "ovs-agent")]
    subprocess.run(["kill", "-9", str(pid)], check=True)
    lab.run("vm", "delete", "s1")
    assert mac in flows(lab, "compute2", "br-tun")  # nobody there to remove it yet
    lab.up()
    eventually(lambda: mac not in flows(lab, "compute2", "br-tun"), 10, "s1's stale flows swept")
    assert ping(lab, "r2", address(lab, "r1"))


def test_a_restarted_ovs_vswitchd_gets_its_flows_back(lab: LabCli, nets: dict) -> None:
    before = len(flows(lab, "compute1", "br-tun").splitlines())
    pid = lab.pids()[("compute1", "ovs-vswitchd")]
    subprocess.run(["kill", "-9", str(pid)], check=True)
    eventually(lambda: lab.pids()[("compute1", "ovs-vswitchd")] is None, 5, "ovs-vswitchd gone")
    lab.up()  # starts it again: an empty flow table (flows are not persistent)
    # The agent's canary check (every 2 s) sees br-int short of its flows and reinstalls them all.
    eventually(lambda: len(flows(lab, "compute1", "br-tun").splitlines()) == before, 10, "br-tun's flows back")
    assert ping(lab, "r1", address(lab, "r2"), count=2)
