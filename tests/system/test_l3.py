"""The L3 agent in a real lab: routers in qrouter- namespaces on the network node, SNAT to the
external network, floating IPs, routing between tenant networks, and an agent restart that drops
nothing.

One 2-compute lab with its agents for the module; tests build on each other in file order.

- ``ext``: flat on physnet1, ``router:external``, 203.0.113.0/24; the lab's external host is its
  gateway, 203.0.113.1.
- ``t1`` (10.11.0.0/24, DHCP on) and ``t2`` (10.12.0.0/24) on router ``r1``; ``t3``
  (10.13.0.0/24) on router ``r2``; both routers have their gateway on ``ext``.
- VMs: ``v1`` (compute1) and ``v2`` (compute2) on t1, ``v3`` (compute2) on t2, ``v4`` (compute1)
  on t3; their default group lets ICMP and TCP in from anywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.support.l3 import EXTERNAL_HOST, external_network, post, put, tcp_peer
from tests.support.lab import BARYON, LabCli
from tests.support.wait import eventually

pytestmark = pytest.mark.lab

@pytest.fixture(scope="module")
def lab(agents_lab: LabCli) -> LabCli:
    return agents_lab


@pytest.fixture(scope="module")
def cloud(lab: LabCli) -> dict:
    """The module's networks, routers and VMs (see the module docstring)."""
    made: dict = {}
    with lab.api() as api:
        ext = external_network(api)
        made["ext"] = ext
        for name, cidr, dhcp in (("t1", "10.11.0.0/24", True), ("t2", "10.12.0.0/24", False),
                                 ("t3", "10.13.0.0/24", False)):
            network = post(api, "/networks", "network", {"name": name})
            made[name] = network
            made[name + "-subnet"] = post(api, "/subnets", "subnet", {
                "network_id": network["id"], "cidr": cidr, "ip_version": 4, "enable_dhcp": dhcp, "name": name})
        for router_name, nets in (("r1", ("t1", "t2")), ("r2", ("t3",))):
            made[router_name] = post(api, "/routers", "router", {"name": router_name,
                                                                  "external_gateway_info": {"network_id": ext["id"]}})
            for net in nets:
                response = api.put(f"/routers/{made[router_name]['id']}/add_router_interface",
                                   json={"subnet_id": made[net + "-subnet"]["id"]})
                assert response.status_code == 200, response.text
        group = api.get("/security-groups", params={"name": "default"}).json()["security_groups"][0]
        for protocol in ("icmp", "tcp"):
            post(api, "/security-group-rules", "security_group_rule", {
                "security_group_id": group["id"], "direction": "ingress", "protocol": protocol,
                "remote_ip_prefix": "0.0.0.0/0"})
    for name, node, net in (("v1", "compute1", "t1"), ("v2", "compute2", "t1"), ("v3", "compute2", "t2"),
                            ("v4", "compute1", "t3")):
        lab.run("vm", "create", name, "--node", node, "--network", net)
    for router_name in ("r1", "r2"):
        eventually(lambda r=router_name: router(lab, made[r]["id"])["status"] == "ACTIVE", 20, f"{router_name} ACTIVE")
    return made


def router(lab: LabCli, router_id: str) -> dict:
    with lab.api() as api:
        return api.get(f"/routers/{router_id}").json()["router"]


def address(lab: LabCli, vm: str) -> str:
    return next(a.split("/")[0] for a in lab.vms()[vm]["addresses"] if ":" not in a)


def gateway_address(lab: LabCli, router_id: str) -> str:
    return router(lab, router_id)["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]


def vm_ping(lab: LabCli, vm: str, target: str, count: int = 1) -> bool:
    return lab.vm_exec(vm, "ping", "-c", str(count), "-W", "1", target, check=False).returncode == 0


def external_ping(lab: LabCli, target: str) -> bool:
    return lab.exec("external", "ping", "-c", "1", "-W", "1", target, check=False).returncode == 0


def fip_status(lab: LabCli, fip_id: str) -> str:
    with lab.api() as api:
        return api.get(f"/floatingips/{fip_id}").json()["floatingip"]["status"]


# ---------------------------------------------------------------- the routers as on a real node


def test_routers_are_scheduled_to_the_network_node_and_built_there(lab: LabCli, cloud: dict) -> None:
    with lab.api() as api:
        for name in ("r1", "r2"):
            agents = api.get(f"/routers/{cloud[name]['id']}/l3-agents").json()["agents"]
            assert [(a["host"], a["agent_type"]) for a in agents] == [("network", "L3 agent")]
        ports = api.get("/ports", params={"device_id": cloud["r1"]["id"]}).json()["ports"]
    assert {p["binding:host_id"] for p in ports} == {"network"}
    assert {p["status"] for p in ports} == {"ACTIVE"}
    listing = lab.exec("network", "ip", "netns", "ls").stdout
    assert f"qrouter-{cloud['r1']['id']}" in listing and f"qrouter-{cloud['r2']['id']}" in listing
    assert f"qdhcp-{cloud['t1']['id']}" in listing
    for node in ("compute1", "compute2"):
        assert "qrouter-" not in lab.exec(node, "ip", "netns", "ls").stdout
    addr = lab.exec("network", "ip", "netns", "exec", f"qrouter-{cloud['r1']['id']}", "ip", "-o", "addr").stdout
    by_owner = {p["device_owner"]: p for p in ports if p["device_owner"] != "network:router_interface"}
    gateway = by_owner["network:router_gateway"]
    assert f"qg-{gateway['id'][:11]}" in addr and f"{gateway['fixed_ips'][0]['ip_address']}/24" in addr
    for interface in (p for p in ports if p["device_owner"] == "network:router_interface"):
        assert f"qr-{interface['id'][:11]}" in addr
    assert "10.11.0.1/24" in addr and "10.12.0.1/24" in addr
    routes = lab.exec("network", "ip", "netns", "exec", f"qrouter-{cloud['r1']['id']}", "ip", "route").stdout
    assert f"default via {EXTERNAL_HOST} dev qg-{gateway['id'][:11]}" in routes


# ---------------------------------------------------------------- SNAT


def test_a_vm_reaches_the_external_host_through_snat(lab: LabCli, cloud: dict) -> None:
    assert eventually(lambda: vm_ping(lab, "v1", EXTERNAL_HOST), 10, "v1 -> external host")
    assert tcp_peer(lab, "vm:v1", "external", EXTERNAL_HOST, 7001) == gateway_address(lab, cloud["r1"]["id"])
    assert tcp_peer(lab, "vm:v4", "external", EXTERNAL_HOST, 7002) == gateway_address(lab, cloud["r2"]["id"])


def test_without_snat_the_external_host_is_not_reached(lab: LabCli, cloud: dict) -> None:
    r2 = cloud["r2"]["id"]
    with lab.api() as api:
        put(api, f"/routers/{r2}", "router", {"external_gateway_info": {
            "network_id": cloud["ext"]["id"], "enable_snat": False}})
    namespace = f"qrouter-{r2}"
    eventually(lambda: "SNAT" not in lab.exec("network", "ip", "netns", "exec", namespace, "iptables-save", "-t",
                                              "nat").stdout, 10, "r2's SNAT rule gone")
    # The external host sees the VM's own address, has no route back to it: no reply.
    assert not vm_ping(lab, "v4", EXTERNAL_HOST, count=2)
    with lab.api() as api:
        put(api, f"/routers/{r2}", "router", {"external_gateway_info": {
            "network_id": cloud["ext"]["id"], "enable_snat": True}})
    assert eventually(lambda: vm_ping(lab, "v4", EXTERNAL_HOST), 10, "v4 -> external host with SNAT again")


# ---------------------------------------------------------------- floating IPs


def test_a_floating_ip_reaches_the_vm_and_its_traffic_leaves_with_it(lab: LabCli, cloud: dict) -> None:
    v1_port = lab.vms()["v1"]["port_id"]
    with lab.api() as api:
        fip = post(api, "/floatingips", "floatingip", {"floating_network_id": cloud["ext"]["id"], "port_id": v1_port})
    cloud["fip"] = fip
    assert fip["router_id"] == cloud["r1"]["id"] and fip["fixed_ip_address"] == address(lab, "v1")
    eventually(lambda: fip_status(lab, fip["id"]) == "ACTIVE", 10, "floating IP ACTIVE")
    floating = fip["floating_ip_address"]
    assert eventually(lambda: external_ping(lab, floating), 10, "external host -> floating IP")
    assert tcp_peer(lab, "external", "vm:v1", floating, 7003) == EXTERNAL_HOST
    assert tcp_peer(lab, "vm:v1", "external", EXTERNAL_HOST, 7004) == floating
    qg = lab.exec("network", "ip", "netns", "exec", f"qrouter-{cloud['r1']['id']}", "ip", "-o", "addr").stdout
    assert f"{floating}/32" in qg


def test_disassociating_cuts_the_floating_ip_and_reassociating_moves_it(lab: LabCli, cloud: dict) -> None:
    fip = cloud["fip"]
    floating = fip["floating_ip_address"]
    with lab.api() as api:
        assert put(api, f"/floatingips/{fip['id']}", "floatingip", {"port_id": None})["status"] == "DOWN"
    eventually(lambda: not external_ping(lab, floating), 10, "floating IP unreachable once disassociated")
    # v1 still goes out, through the router's SNAT again.
    assert tcp_peer(lab, "vm:v1", "external", EXTERNAL_HOST, 7005) == gateway_address(lab, cloud["r1"]["id"])
    with lab.api() as api:
        put(api, f"/floatingips/{fip['id']}", "floatingip", {"port_id": lab.vms()["v2"]["port_id"]})
    eventually(lambda: fip_status(lab, fip["id"]) == "ACTIVE", 10, "floating IP ACTIVE on v2")
    assert eventually(lambda: external_ping(lab, floating), 10, "external host -> floating IP on v2")
    assert tcp_peer(lab, "external", "vm:v2", floating, 7006) == EXTERNAL_HOST
    # Moved straight from one port to another: DOWN until the agent has rewired it, then ACTIVE.
    with lab.api() as api:
        moved = put(api, f"/floatingips/{fip['id']}", "floatingip", {"port_id": lab.vms()["v1"]["port_id"]})
    assert moved["status"] == "DOWN" and moved["fixed_ip_address"] == address(lab, "v1")
    eventually(lambda: fip_status(lab, fip["id"]) == "ACTIVE", 10, "floating IP ACTIVE on v1 again")
    assert tcp_peer(lab, "external", "vm:v1", floating, 7009) == EXTERNAL_HOST


# ---------------------------------------------------------------- routing between tenant networks


def test_networks_on_one_router_reach_each_other_without_nat_and_not_across_routers(lab: LabCli,
                                                                                    cloud: dict) -> None:
    v1, v3 = address(lab, "v1"), address(lab, "v3")
    assert eventually(lambda: vm_ping(lab, "v1", v3), 10, "v1 (t1) -> v3 (t2)")
    assert tcp_peer(lab, "vm:v1", "vm:v3", v3, 7007) == v1
    assert tcp_peer(lab, "vm:v3", "vm:v1", v1, 7008) == v3
    assert not vm_ping(lab, "v4", v1, count=2)
    assert not vm_ping(lab, "v1", address(lab, "v4"), count=2)


# ---------------------------------------------------------------- agent restarts


def test_killing_and_restarting_the_l3_agent_loses_no_packet(lab: LabCli, cloud: dict) -> None:
    namespace = f"qrouter-{cloud['r1']['id']}"
    before = lab.exec("network", "stat", "-L", "-c", "%i", f"/run/netns/{namespace}").stdout.strip()
    pinger = subprocess.Popen([*BARYON, "lab", "--state-dir", str(lab.state_dir), "vm", "exec", "v1", "--", "ping", "-i", "0.05", "-w", "12", "-W", "1", EXTERNAL_HOST],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.5)
        pid = lab.pids()[("network", "l3-agent")]
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(2)
        assert lab.pids()[("network", "l3-agent")] is None
        lab.up()  # starts the missing agent; it reconciles a host that is already right
        time.sleep(2)
        out, _ = pinger.communicate(timeout=30)
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait()
    assert " 0% packet loss" in out, out[-400:]
    after = lab.exec("network", "stat", "-L", "-c", "%i", f"/run/netns/{namespace}").stdout.strip()
    assert after == before  # the namespace was not rebuilt
    assert router(lab, cloud["r1"]["id"])["status"] == "ACTIVE"
