"""The agents' ``/metrics`` in a real lab, scraped from inside their node (the management address,
``[baryon] metrics_host``, and one port per kind: ``baryon.lab.configs.METRICS_PORTS``).

One VM on compute1: its OVS agent ran more reconciles, timed exactly one more port-to-wire, and
wires one more port; the network node's DHCP and L3 agents count the network and the router.
"""

from __future__ import annotations

import configparser
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from baryon.lab.configs import METRICS_PORTS
from tests.support.lab import LabCli
from tests.support.wait import eventually

pytestmark = pytest.mark.lab

FETCH = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(lab: LabCli, node: str, kind: str) -> Samples:
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(lab.state_dir / "nodes" / node / "etc" / "neutron.conf")
    url = f"http://{conf.get('baryon', 'metrics_host')}:{METRICS_PORTS[kind]}/metrics"
    text = lab.exec(node, sys.executable, "-c", FETCH, url).stdout
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def port_status(lab: LabCli, port_id: str) -> str:
    with lab.api() as api:
        return api.get(f"/ports/{port_id}").json()["port"]["status"]


def test_a_vm_moves_the_ovs_agents_numbers_and_the_dhcp_and_l3_agents_count_theirs(agents_lab: LabCli) -> None:
    lab = agents_lab
    before = scrape(lab, "compute1", "ovs")
    assert value(before, "baryon_agent_heartbeats_sent_total", kind="ovs") >= 1
    assert value(before, "baryon_agent_view_updates_total", kind="ovs") >= 1
    with lab.api() as api:
        net = api.post("/networks", json={"network": {"name": "metrics"}}).json()["network"]
        subnet = api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.61.0.0/24",
                                                       "ip_version": 4}}).json()["subnet"]
        router = api.post("/routers", json={"router": {"name": "metrics"}}).json()["router"]
        api.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]}).raise_for_status()
    lab.run("vm", "create", "m1", "--node", "compute1", "--network", "metrics")
    with lab.api() as api:
        port = api.get("/ports", params={"device_id": lab.vms()["m1"]["id"]}).json()["ports"][0]
    eventually(lambda: port_status(lab, port["id"]) == "ACTIVE", 20, "the VM's port ACTIVE")

    def wired() -> Samples | None:
        found = scrape(lab, "compute1", "ovs")
        moved = value(found, "baryon_ovs_port_wire_seconds_count") > value(before, "baryon_ovs_port_wire_seconds_count")
        return found if moved else None

    after = eventually(wired, 10, "the port-to-wire histogram to move")

    def rise(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert rise("baryon_ovs_port_wire_seconds_count") == 1
    assert 0 < rise("baryon_ovs_port_wire_seconds_sum") < 20
    assert rise("baryon_ovs_ports") == 1
    assert rise("baryon_agent_reconcile_runs_total", kind="ovs", outcome="ok") >= 1
    assert rise("baryon_agent_reconcile_seconds_count", kind="ovs") >= 1
    assert rise("baryon_agent_view_updates_total", kind="ovs") >= 1
    assert value(after, "baryon_agent_reconcile_runs_total", kind="ovs", outcome="failed") == 0
    assert value(after, "baryon_ovs_flows", bridge="br-int") > 0
    assert value(after, "baryon_ovs_flows", bridge="br-tun") > 0
    assert value(after, "baryon_ovs_firewall_rules") > value(before, "baryon_ovs_firewall_rules")
    assert value(after, "baryon_agent_reported_seq", kind="ovs") >= value(before, "baryon_agent_reported_seq",
                                                                          kind="ovs")

    def dhcp() -> Samples | None:
        found = scrape(lab, "network", "dhcp")
        counted = value(found, "baryon_dhcp_networks") >= 1 and value(found, "baryon_dhcp_dnsmasq_processes") >= 1
        return found if counted else None

    served = eventually(dhcp, 10, "the DHCP agent to count the network and its dnsmasq")
    assert value(served, "baryon_dhcp_networks") == value(served, "baryon_dhcp_dnsmasq_processes")
    assert value(served, "baryon_agent_reconcile_runs_total", kind="dhcp", outcome="ok") >= 1

    def l3() -> Samples | None:
        found = scrape(lab, "network", "l3")
        return found if value(found, "baryon_l3_namespaces") == 1 else None

    routed = eventually(l3, 10, "the L3 agent to count the router's namespace")
    assert value(routed, "baryon_l3_routers") == 1
    assert value(routed, "baryon_l3_floating_ips") == 0
    assert value(routed, "baryon_agent_heartbeats_sent_total", kind="l3") >= 1
