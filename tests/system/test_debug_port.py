"""``baryon debug port`` on a real lab: a healthy port shows no difference and a complete
timeline; things broken on purpose on the nodes are reported, and gone again once the agents'
next reconcile has repaired them.

One 2-compute lab with its agents for the module; tests build on each other in file order:
``ext`` (flat on physnet1, external, 203.0.113.0/24), ``t1`` (vxlan, 10.41.0.0/24, DHCP on),
router ``r1`` (gateway on ext, interface on t1), VM ``v1`` on compute1 on t1 with a floating IP.
The CLI runs as a user runs it (``python -m baryon debug --state-dir D port ... --json``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.l3 import external_network, post
from tests.support.lab import BARYON, LabCli
from tests.support.wait import eventually

pytestmark = pytest.mark.lab

EXIT_DIFFERENCES = 3
STEPS = ["created", "bound", "firewall applied", "wired", "DHCP entry served", "ACTIVE"]


@pytest.fixture(scope="module")
def lab(agents_lab: LabCli) -> LabCli:
    return agents_lab


@pytest.fixture(scope="module")
def cloud(lab: LabCli) -> dict:
    made: dict = {}
    with lab.api() as api:
        ext = external_network(api)
        made["t1"] = post(api, "/networks", "network", {"name": "t1"})
        subnet = post(api, "/subnets", "subnet", {"network_id": made["t1"]["id"], "cidr": "10.41.0.0/24",
                                                   "ip_version": 4, "name": "t1"})
        made["r1"] = post(api, "/routers", "router", {"name": "r1", "external_gateway_info": {"network_id": ext["id"]}})
        response = api.put(f"/routers/{made['r1']['id']}/add_router_interface", json={"subnet_id": subnet["id"]})
        assert response.status_code == 200, response.text
    lab.run("vm", "create", "v1", "--node", "compute1", "--network", "t1")
    with lab.api() as api:
        made["port"] = api.get("/ports", params={"device_id": lab.vms()["v1"]["id"]}).json()["ports"][0]
        made["fip"] = post(api, "/floatingips", "floatingip", {"floating_network_id": ext["id"],
                                                                "port_id": made["port"]["id"]})
        made["gateway"] = api.get("/ports", params={"device_owner": "network:router_gateway"}).json()["ports"][0]
    eventually(lambda: _fip_status(lab, made["fip"]["id"]) == "ACTIVE", 20, "the floating IP ACTIVE")
    return made


def _fip_status(lab: LabCli, fip_id: str) -> str:
    with lab.api() as api:
        return api.get(f"/floatingips/{fip_id}").json()["floatingip"]["status"]


def debug_port(lab: LabCli, ref: str, *, json_output: bool = True) -> tuple[int, dict | str]:
    argv = [*BARYON, "debug", "--state-dir", str(lab.state_dir), "port", ref, *(["--json"] if json_output else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode in (0, EXIT_DIFFERENCES), f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout) if json_output else proc.stdout


def clean(lab: LabCli, ref: str) -> dict | None:
    """The report once it shows no difference (the agents may still be settling), else None."""
    code, report = debug_port(lab, ref)
    return report if code == 0 and not report["differences"] else None


def differences(report: dict) -> list[tuple[str, str, str, str]]:
    return [(d["status"], d["area"], d["node"], d["what"]) for d in report["differences"]]


def test_a_healthy_port_has_no_difference_and_a_complete_timeline(lab: LabCli, cloud: dict) -> None:
    report = eventually(lambda: clean(lab, "v1"), 15, "v1's port without difference")
    port = cloud["port"]
    assert report["intent"]["id"] == port["id"] and report["intent"]["vm"] == "v1"
    assert report["intent"]["host"] == "compute1" and report["intent"]["status"] == "ACTIVE"
    assert report["intent"]["network"]["segment"]["network_type"] == "vxlan"
    assert report["intent"]["dhcp_agents"] == ["network"]
    assert [f["floating_ip_address"] for f in report["intent"]["floating_ips"]] == [cloud["fip"]["floating_ip_address"]]
    areas = {(f["area"], f["node"]) for f in report["findings"]}
    # Every kind of thing was checked where it lives.
    assert {("device", "compute1"), ("ovs-port", "compute1"), ("flow", "compute1"), ("firewall", "compute1"),
            ("flow", "network"), ("dhcp", "network"), ("nat", "network")} <= areas
    assert report["exit_status"] == 0
    steps = {s["step"]: s for s in report["timeline"]}
    assert list(steps) == STEPS
    assert all(s["at"] is not None for s in steps.values()), steps
    offsets = [steps[name]["after_created_s"] for name in STEPS]
    assert offsets[0] == 0 and all(o >= -1 for o in offsets), offsets  # whole seconds in the change log
    assert steps["firewall applied"]["at"] <= steps["wired"]["at"]
    assert steps["wired"]["source"] == "compute1: OVS agent log"
    assert steps["DHCP entry served"]["source"] == "network: DHCP agent log"
    # The agents report the sequence they realised at most once a second: it catches up.
    realised = eventually(lambda: (lambda r: r if r and all(x["realised_port"] for x in r["realised"]) else None)(
        clean(lab, "v1")), 10, "every agent of the port realising its last change")
    assert {(r["agent_type"], r["host"]) for r in realised["realised"]} == {
        ("DHCP agent", "network"), ("Open vSwitch agent", "compute1")}
    # The text a person reads says the same.
    code, text = debug_port(lab, port["id"], json_output=False)
    assert code == 0
    for heading in ("Intent (API)", "Host (", "Differences: none", "Timeline ("):
        assert heading in text, text


def test_the_topology_pages_link_runs_it_on_the_lab(lab: LabCli, cloud: dict) -> None:
    """The lab's server has ``[baryon] lab_state_dir``: GET /topology/debug/port/{id} (what the
    topology page's link shows) runs ``baryon debug port`` on the lab, from the controller."""
    port_id = cloud["port"]["id"]
    with httpx.Client(base_url=lab.api_url, timeout=60) as client:
        response = client.get(f"/topology/debug/port/{port_id}")
    assert response.status_code == 200, response.text
    result = response.json()["debug_port"]
    assert result["exit_status"] == 0, result["output"]
    assert "Intent (API)" in result["output"] and "Differences: none" in result["output"]
    assert port_id in result["output"]


def test_a_deleted_flow_is_missing_until_the_agent_puts_it_back(lab: LabCli, cloud: dict) -> None:
    """The router gateway's flow on br-int (flat external network: local VLAN for untagged
    frames from br-ex): the OVS agent's canary check (every 2 s) sees br-int short and reinstalls."""
    gateway = cloud["gateway"]["id"]
    eventually(lambda: clean(lab, gateway), 15, "the gateway port without difference")
    lab.exec("network", "ovs-ofctl", "del-flows", "br-int", "in_port=int-br-ex,vlan_tci=0x0000/0x1fff")
    code, report = debug_port(lab, gateway)
    # NOTE: the agent may already have repaired it; the 2 s check makes that unlikely in ~0.5 s.
    if code == EXIT_DIFFERENCES:
        assert differences(report) == [("missing", "flow", "network",
                                        "br-int table=0,priority=3,in_port=int-br-ex,vlan_tci=0x0000/0x1fff")]
        assert report["differences"][0]["expected"].startswith("actions=push_vlan:0x8100,set_field:")
    eventually(lambda: clean(lab, gateway), 10, "the flow reinstalled by the OVS agent")


def test_a_deleted_tunnel_flow_is_reported_then_put_back_by_the_periodic_recount(lab: LabCli, cloud: dict) -> None:
    """br-tun's VNI -> local VLAN flow of v1's network on compute1. The agent's 2 s canary counts
    br-int only; every bridge's flows are counted by a run at least every 30 s
    (``ovs_agent.RECOUNT_INTERVAL``), and the runtime's resync runs one at least every 30 s: the
    flow is back within about a minute at worst."""
    vni = cloud["t1"]["provider:segmentation_id"]
    lab.exec("compute1", "ovs-ofctl", "del-flows", "br-tun", f"table=4,tun_id={vni:#x}")
    code, report = debug_port(lab, "v1")
    assert code == EXIT_DIFFERENCES
    assert differences(report) == [("missing", "flow", "compute1", f"br-tun table=4,priority=1,tun_id={vni:#x}")]
    eventually(lambda: clean(lab, "v1"), 65, "br-tun's flow reinstalled by the agent's recount", interval=1.0)


def test_a_removed_dhcp_host_entry_is_reported_then_rewritten(lab: LabCli, cloud: dict) -> None:
    port = cloud["port"]
    host_file = Path(lab.state_dir) / "nodes/network/lib/dhcp" / port["network_id"] / "host"
    lines = host_file.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(port["mac_address"] + ",")]
    assert len(kept) == len(lines) - 1
    host_file.write_text("".join(kept))
    code, report = debug_port(lab, port["name"] or port["id"])
    assert code == EXIT_DIFFERENCES
    [(status, area, node, what)] = differences(report)
    assert (status, area, node) == ("missing", "dhcp", "network")
    assert what.endswith(f"{port['mac_address']},host-{port['fixed_ips'][0]['ip_address'].replace('.', '-')}"
                         f".openstacklocal.,{port['fixed_ips'][0]['ip_address']}")
    # A change of the DHCP agent's view (a port more on the network) wakes it: its run reads its
    # files again and rewrites the one that differs. (A change that concerns no agent of the
    # network's would wake none: the file would come back with the next resync, within 30 s.)
    with lab.api() as api:
        poke = post(api, "/ports", "port", {"network_id": port["network_id"], "name": "poke"})
    try:
        eventually(lambda: clean(lab, "v1"), 10, "the host entry rewritten by the DHCP agent")
    finally:
        with lab.api() as api:
            assert api.delete(f"/ports/{poke['id']}").status_code == 204


def test_a_vm_unplugged_behind_the_agents_back_is_reported(lab: LabCli, cloud: dict) -> None:
    port_id = cloud["port"]["id"]
    qvo, qbr = "qvo" + port_id[:11], "qbr" + port_id[:11]
    lab.exec("compute1", "ovs-vsctl", "del-port", "br-int", qvo)
    lab.exec("compute1", "ip", "link", "del", qvo)  # its qvb peer goes with it
    lab.exec("compute1", "ip", "link", "del", qbr)

    def reported() -> list | None:
        code, report = debug_port(lab, "v1")
        found = differences(report)
        return found if code == EXIT_DIFFERENCES and ("missing", "ovs-port", "compute1", f"br-int port {qvo}") in found \
            else None

    found = eventually(reported, 10, "the unplugged VIF reported")
    assert ("missing", "device", "compute1", qvo) in found
    assert ("missing", "device", "compute1", qbr) in found
    assert ("missing", "device", "compute1", "qvb" + port_id[:11]) in found
    # The OVS agent notices the VIF gone and reports the port DOWN: status then agrees with the
    # host's plan, the devices stay missing.
    eventually(lambda: debug_port(lab, "v1")[1]["intent"]["status"] == "DOWN", 10, "the port DOWN")
    code, report = debug_port(lab, "v1")
    assert code == EXIT_DIFFERENCES
    assert not any(d["area"] == "status" for d in report["differences"])
