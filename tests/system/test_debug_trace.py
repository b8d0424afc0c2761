"""``baryon debug trace`` on a real lab: its verdicts name the Neutron objects, and agree with
the packets that really pass or do not.

One 2-compute lab with its agents for the module:

- ``ext``: flat on physnet1, ``router:external``, 203.0.113.0/24 (the lab's external host is
  its gateway, 203.0.113.1); ``tenant`` (vxlan) 10.40.0.0/24 on router ``r1`` (gateway on ext);
- group ``web``: ICMP and TCP 22 in from anywhere (and the usual egress rules);
- ``vm1`` on compute1 (with a floating IP) and ``vm2`` on compute2, both in ``web``.

Traces run through the CLI (``python -m baryon debug --state-dir LAB trace ... --json``).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.l3 import EXTERNAL_HOST, external_network, post, tcp_peer
from tests.support.lab import BARYON, LabCli
from tests.support.wait import eventually

pytestmark = pytest.mark.lab

@pytest.fixture(scope="module")
def cloud(agents_lab: LabCli) -> dict:
    lab = agents_lab
    made: dict = {}
    with lab.api() as api:
        ext = external_network(api)
        tenant = post(api, "/networks", "network", {"name": "tenant"})
        subnet = post(api, "/subnets", "subnet", {"network_id": tenant["id"], "cidr": "10.40.0.0/24",
                                                   "ip_version": 4, "name": "tenant-v4"})
        router = post(api, "/routers", "router", {"name": "r1", "external_gateway_info": {"network_id": ext["id"]}})
        response = api.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})
        assert response.status_code == 200, response.text
        group = post(api, "/security-groups", "security_group", {"name": "web"})
        for protocol, port in (("icmp", None), ("tcp", 22)):
            made[f"rule-{protocol}"] = post(api, "/security-group-rules", "security_group_rule", {
                "security_group_id": group["id"], "direction": "ingress", "protocol": protocol,
                "port_range_min": port, "port_range_max": port, "remote_ip_prefix": "0.0.0.0/0"})
        made |= {"ext": ext, "tenant": tenant, "router": router, "group": group}
    for name, node in (("vm1", "compute1"), ("vm2", "compute2")):
        lab.run("vm", "create", name, "--node", node, "--network", "tenant", "--security-group", group["id"])
    vms = lab.vms()
    made |= {name: vms[name] for name in ("vm1", "vm2")}
    with lab.api() as api:
        made["fip"] = post(api, "/floatingips", "floatingip", {"floating_network_id": ext["id"],
                                                                "port_id": vms["vm1"]["port_id"]})

        def ready() -> bool:
            fip = api.get(f"/floatingips/{made['fip']['id']}").json()["floatingip"]
            r1 = api.get(f"/routers/{router['id']}").json()["router"]
            made["router"] = r1
            return fip["status"] == "ACTIVE" and r1["status"] == "ACTIVE"

        eventually(ready, 20, "router and floating IP ACTIVE")
    eventually(lambda: ping(lab, "vm1", address(made, "vm2")), 15, "vm1 -> vm2 ping")
    return made


def address(cloud: dict, vm: str) -> str:
    return next(a.split("/")[0] for a in cloud[vm]["addresses"] if ":" not in a)


def ping(lab: LabCli, vm: str, target: str) -> bool:
    return lab.vm_exec(vm, "ping", "-c", "1", "-W", "1", target, check=False).returncode == 0


def trace(lab: LabCli, *args: str) -> tuple[int, dict]:
    proc = subprocess.run([*BARYON, "debug", "--state-dir", str(lab.state_dir), "trace", *args, "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def hop_with(result: dict, place: str, node: str | None = None) -> list[dict]:
    return [h for h in result["hops"] if place in h["place"] and (node is None or h["node"] == node)]


def test_an_allowed_path_across_two_nodes(agents_lab: LabCli, cloud: dict) -> None:
    status, result = trace(agents_lab, "--from", "vm1", "--to", address(cloud, "vm2"))
    assert status == 0
    assert result["verdict"]["status"] == "delivered" and result["verdict"]["port"] == cloud["vm2"]["port_id"]
    assert {h["node"] for h in result["hops"]} >= {"compute1", "compute2"}
    (out,) = hop_with(result, "br-tun", "compute1")
    vni = cloud["tenant"]["provider:segmentation_id"]
    assert out["objects"]["vni"] == vni and out["objects"]["remote_node"] == "compute2"
    assert "vxlan-0a0a0a0c" in out["summary"]  # compute2's local_ip 10.10.10.12
    (arrive,) = hop_with(result, "br-tun", "compute2")
    assert arrive["objects"]["remote_node"] == "compute1"
    (ingress,) = hop_with(result, "netfilter", "compute2")
    assert ingress["objects"]["rule"] == cloud["rule-icmp"]["id"]
    assert f"-A neutron-openvswi-i{cloud['vm2']['port_id'][:10]} -p icmp -j RETURN" in ingress["details"]
    assert isinstance(hop_with(result, "br-int", "compute1")[0]["objects"]["local_vlan"], int)
    assert ping(agents_lab, "vm1", address(cloud, "vm2"))  # reality agrees


def test_a_path_dropped_by_a_security_group(agents_lab: LabCli, cloud: dict) -> None:
    status, result = trace(agents_lab, "--from", "vm1", "--to", address(cloud, "vm2"), "--proto", "tcp",
                           "--dport", "8080")
    assert status == 1
    verdict = result["verdict"]
    assert verdict["status"] == "dropped"
    assert result["hops"][verdict["hop"] - 1]["node"] == "compute2"
    assert "netfilter" in result["hops"][verdict["hop"] - 1]["place"]
    assert f"no ingress rule of group {cloud['group']['id']} allows tcp/8080 from {address(cloud, 'vm1')}" \
        in verdict["reason"]
    status, allowed = trace(agents_lab, "--from", "vm1", "--to", address(cloud, "vm2"), "--proto", "tcp",
                            "--dport", "22")
    assert status == 0 and hop_with(allowed, "netfilter", "compute2")[0]["objects"]["rule"] == cloud["rule-tcp"]["id"]
    # Reality agrees: 22 arrives, 8080 does not.
    assert tcp_peer(agents_lab, "vm:vm1", "vm:vm2", address(cloud, "vm2"), 22) == address(cloud, "vm1")
    assert tcp_peer(agents_lab, "vm:vm1", "vm:vm2", address(cloud, "vm2"), 8080) is None


@pytest.mark.parametrize("learned", [False, True], ids=["next-hop-unknown", "next-hop-learned"])
def test_a_path_through_snat(agents_lab: LabCli, cloud: dict, learned: bool) -> None:
    """Whether the router knows the external gateway's MAC (then br-int forwards to it) or not
    (then the packet is traced as the ARP broadcast it would first be: br-int floods it, and it
    crosses br-ex inside that flood), the path leaves by br-ex to physnet1."""
    namespace = f"qrouter-{cloud['router']['id']}"
    if learned:
        assert ping(agents_lab, "vm2", EXTERNAL_HOST)
    else:
        agents_lab.exec("network", "ip", "netns", "exec", namespace, "ip", "neigh", "flush", "all")
    status, result = trace(agents_lab, "--from", "vm2", "--to", EXTERNAL_HOST)
    assert status == 0
    gateway = cloud["router"]["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    (router,) = hop_with(result, namespace, "network")
    assert f"SNAT {address(cloud, 'vm2')} -> {gateway} (the router's gateway address)" in router["summary"]
    assert "dev qg-" in router["summary"]
    assert hop_with(result, "br-ex", "network")[0]["objects"]["physnet"] == "physnet1"
    verdict = result["verdict"]
    assert verdict["status"] == "forwarded" and verdict["network"] == cloud["ext"]["id"]
    assert "physnet1" in verdict["reason"] and f"source {gateway}" in verdict["reason"]
    assert ping(agents_lab, "vm2", EXTERNAL_HOST)


def test_a_path_through_a_floating_ip(agents_lab: LabCli, cloud: dict) -> None:
    fip = cloud["fip"]
    status, result = trace(agents_lab, "--from", "vm1", "--to", EXTERNAL_HOST)
    assert status == 0
    (router,) = hop_with(result, "qrouter-", "network")
    assert router["objects"]["floating_ip"] == fip["id"]
    assert f"SNAT {address(cloud, 'vm1')} -> {fip['floating_ip_address']} (floating IP {fip['id']})" \
        in router["summary"]
    assert result["verdict"]["status"] == "forwarded"
    # To the floating address from the other VM: DNAT in the router (hairpin), then vm1's firewall.
    status, hairpin = trace(agents_lab, "--from", "vm2", "--to", fip["floating_ip_address"])
    assert status == 0
    (router,) = hop_with(hairpin, "qrouter-", "network")
    assert f"DNAT {fip['floating_ip_address']} -> {address(cloud, 'vm1')} (floating IP {fip['id']})" \
        in router["summary"]
    assert hairpin["verdict"]["port"] == cloud["vm1"]["port_id"]
    assert ping(agents_lab, "vm1", EXTERNAL_HOST) and ping(agents_lab, "vm2", fip["floating_ip_address"])


def test_the_human_output_and_errors(agents_lab: LabCli, cloud: dict) -> None:
    proc = subprocess.run([*BARYON, "debug", "--state-dir", str(agents_lab.state_dir), "trace", "--from", "vm1",
                           "--to", address(cloud, "vm2"), "--proto", "tcp", "--dport", "8080"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "verdict: DROPPED at hop" in proc.stdout and "tcp/8080" in proc.stdout
    assert "compute1 br-tun" in proc.stdout and "compute2 br-int" in proc.stdout
    proc = subprocess.run([*BARYON, "debug", "--state-dir", str(agents_lab.state_dir), "trace", "--from", "nosuch",
                           "--to", "10.40.0.9"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "no port, port name or lab VM named 'nosuch'" in proc.stderr
