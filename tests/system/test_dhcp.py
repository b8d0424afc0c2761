"""The DHCP agent in a real lab: one dnsmasq per network in its qdhcp namespace on the network
node, serving VMs on other nodes through the tunnels; reloads without restarts; supervision;
rescheduling.

One 2-compute lab with its agents for the module; tests build on each other in file order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.lab import BARYON, LabCli
from tests.support.wait import eventually

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(agents_lab: LabCli) -> LabCli:
    return agents_lab


@pytest.fixture(scope="module")
def net(lab: LabCli) -> dict:
    with lab.api() as api:
        network = api.post("/networks", json={"network": {"name": "dhcpnet"}}).json()["network"]
        subnet = api.post("/subnets", json={"subnet": {
            "network_id": network["id"], "cidr": "10.5.0.0/24", "ip_version": 4, "name": "dhcp-v4",
            "dns_nameservers": ["192.0.2.53"],
            "host_routes": [{"destination": "192.0.2.0/24", "nexthop": "10.5.0.254"}]}}).json()["subnet"]
    network["subnet"] = subnet
    return network


def dnsmasq_pids(lab: LabCli, network_id: str) -> list[int]:
    """PIDs of the lab's dnsmasq processes serving ``network_id`` (their command line names it)."""
    found = []
    for pid in lab.processes():
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if line.startswith("dnsmasq") and network_id in line:
            found.append(pid)
    return found


def the_dnsmasq(lab: LabCli, network_id: str) -> int:
    pids = eventually(lambda: dnsmasq_pids(lab, network_id), 20, "dnsmasq serving the network")
    assert len(pids) == 1, pids
    return pids[0]


def lease(lab: LabCli, vm: str) -> dict:
    return json.loads(lab.run("vm", "dhcp", vm, "--json").stdout)


def qdhcp(lab: LabCli, network_id: str) -> bool:
    return f"qdhcp-{network_id}" in lab.exec("network", "ip", "netns", "ls").stdout


def test_the_network_is_scheduled_and_gets_its_dhcp_port_and_namespace(lab: LabCli, net: dict) -> None:
    with lab.api() as api:
        agents = eventually(lambda: api.get(f"/networks/{net['id']}/dhcp-agents").json()["agents"], 10,
                            "the network scheduled to a DHCP agent")
        dhcp_ports = api.get("/ports", params={"network_id": net["id"], "device_owner": "network:dhcp"}).json()["ports"]
    assert [a["host"] for a in agents] == ["network"]
    [port] = dhcp_ports
    assert port["binding:host_id"] == "network" and port["fixed_ips"][0]["ip_address"] == "10.5.0.2"
    eventually(lambda: qdhcp(lab, net["id"]), 10, "qdhcp namespace on the network node")
    assert not qdhcp_on(lab, "compute1", net["id"])
    the_dnsmasq(lab, net["id"])


def qdhcp_on(lab: LabCli, node: str, network_id: str) -> bool:
    return f"qdhcp-{network_id}" in lab.exec(node, "ip", "netns", "ls").stdout


def test_a_vm_on_another_node_gets_its_lease_through_the_tunnel(lab: LabCli, net: dict) -> None:
    lab.run("vm", "create", "d1", "--node", "compute2", "--network", "dhcpnet")
    vm = lab.vms()["d1"]
    assert vm["dhcp"] is True
    got = lease(lab, "d1")  # a renewal: the same answers as at boot
    assert got["ip"] == vm["addresses"][0].split("/")[0]
    assert got["router"] == "10.5.0.1"
    assert got["dns"].split() == ["192.0.2.53"]
    assert got["mtu"] == "1450"
    assert "192.0.2.0/24" in got["staticroutes"]
    assert vm["addresses"][0] in lab.vm_exec("d1", "ip", "-o", "-4", "address", "show", "dev", "eth0").stdout


def test_hostnames_resolve_through_dnsmasq(lab: LabCli, net: dict) -> None:
    lab.run("vm", "create", "d2", "--node", "compute1", "--network", "dhcpnet")
    d1 = lab.vms()["d1"]["addresses"][0].split("/")[0]
    name = "host-" + d1.replace(".", "-")
    out = lab.vm_exec("d2", "busybox", "nslookup", name, "10.5.0.2", check=False).stdout
    assert d1 in out, out


def test_a_new_port_is_served_without_restarting_dnsmasq(lab: LabCli, net: dict) -> None:
    pid = the_dnsmasq(lab, net["id"])
    lab.run("vm", "create", "d3", "--node", "compute2", "--network", "dhcpnet")
    assert lease(lab, "d3")["ip"] == lab.vms()["d3"]["addresses"][0].split("/")[0]
    assert the_dnsmasq(lab, net["id"]) == pid


def test_changed_dns_servers_reach_a_renewing_client(lab: LabCli, net: dict) -> None:
    pid = the_dnsmasq(lab, net["id"])
    with lab.api() as api:
        api.put(f"/subnets/{net['subnet']['id']}",
                json={"subnet": {"dns_nameservers": ["192.0.2.54", "192.0.2.55"]}}).raise_for_status()
    eventually(lambda: lease(lab, "d1")["dns"].split() == ["192.0.2.54", "192.0.2.55"], 10, "the new DNS servers")
    assert the_dnsmasq(lab, net["id"]) == pid


def test_a_killed_dnsmasq_is_restarted_by_the_agent(lab: LabCli, net: dict) -> None:
    pid = the_dnsmasq(lab, net["id"])
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: [p for p in dnsmasq_pids(lab, net["id"]) if p != pid], 15, "a new dnsmasq")
    assert lease(lab, "d3")["ip"] == lab.vms()["d3"]["addresses"][0].split("/")[0]


def test_leases_outlive_the_agent_and_its_restart_keeps_dnsmasq(lab: LabCli, net: dict) -> None:
    pid = the_dnsmasq(lab, net["id"])
    agent = lab.pids()[("network", "dhcp-agent")]
    os.kill(agent, signal.SIGKILL)
    eventually(lambda: lab.pids()[("network", "dhcp-agent")] is None, 5, "the DHCP agent gone")
    assert lease(lab, "d1")["ip"] == lab.vms()["d1"]["addresses"][0].split("/")[0]  # dnsmasq serves on
    lab.up()
    assert lab.pids()[("network", "dhcp-agent")] not in (None, agent)
    lab.run("vm", "create", "d4", "--node", "compute1", "--network", "dhcpnet")  # the agent works again
    assert the_dnsmasq(lab, net["id"]) == pid


def test_disabling_dhcp_or_deleting_the_network_removes_namespace_and_process(lab: LabCli, net: dict) -> None:
    with lab.api() as api:
        other = api.post("/networks", json={"network": {"name": "short-lived"}}).json()["network"]
        sub = api.post("/subnets", json={"subnet": {"network_id": other["id"], "cidr": "10.6.0.0/24",
                                                    "ip_version": 4}}).json()["subnet"]
        eventually(lambda: qdhcp(lab, other["id"]) and dnsmasq_pids(lab, other["id"]), 15, "served")
        api.put(f"/subnets/{sub['id']}", json={"subnet": {"enable_dhcp": False}}).raise_for_status()
        eventually(lambda: not qdhcp(lab, other["id"]) and not dnsmasq_pids(lab, other["id"]), 15, "gone")
        api.put(f"/subnets/{sub['id']}", json={"subnet": {"enable_dhcp": True}}).raise_for_status()
        eventually(lambda: qdhcp(lab, other["id"]) and dnsmasq_pids(lab, other["id"]), 15, "served again")
        assert api.delete(f"/networks/{other['id']}").status_code == 204
    eventually(lambda: not qdhcp(lab, other["id"]) and not dnsmasq_pids(lab, other["id"]), 15, "gone with the network")


@pytest.fixture
def second_dhcp_agent(lab: LabCli) -> Iterator[subprocess.Popen]:
    """A DHCP agent on compute1 too (the lab runs one, on the network node), stopped by its PID."""
    etc = lab.state_dir / "nodes"
    conf = etc / "compute1" / "etc" / "dhcp_agent.ini"
    conf.write_text((etc / "network" / "etc" / "dhcp_agent.ini").read_text())
    log = open(etc / "compute1" / "log" / "dhcp-agent-extra.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([*BARYON, "lab", "--state-dir", str(lab.state_dir), "exec", "compute1", "--",
                             *BARYON, "agent", "dhcp", "--config-file", str(etc / "compute1" / "etc" / "neutron.conf"),
                             "--config-file", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_a_dead_dhcp_agent_loses_its_networks_to_a_live_one(lab: LabCli, net: dict,
                                                            second_dhcp_agent: subprocess.Popen) -> None:
    with lab.api() as api:
        eventually(lambda: any(a["host"] == "compute1" and a["alive"] for a in api.get(
            "/agents", params={"agent_type": "DHCP agent"}).json()["agents"]), 15, "compute1's DHCP agent alive")
    os.kill(lab.pids()[("network", "dhcp-agent")], signal.SIGKILL)

    def hosts() -> list[str]:
        with lab.api() as api:
            return [a["host"] for a in api.get(f"/networks/{net['id']}/dhcp-agents").json()["agents"]]

    eventually(lambda: hosts() == ["compute1"], 45, "the network rescheduled to compute1 (agent_down_time 15 s)")
    eventually(lambda: qdhcp_on(lab, "compute1", net["id"]), 15, "qdhcp namespace on compute1")
    assert lease(lab, "d3")["ip"] == lab.vms()["d3"]["addresses"][0].split("/")[0]
    lab.up()  # the network node's agent back
