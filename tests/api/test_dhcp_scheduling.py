"""DHCP scheduling, DHCP ports and DHCP views on every backend, as a DHCP agent sees them.

Agents register through ``POST /v2.0/agents/report``, as the real ones do; a "node" is an Open
vSwitch agent and a DHCP agent on one host. The servers are shared by every test of a backend, so
each test has host names and physnets of its own, and its networks are flat networks on those
physnets: the scheduler only places a network on a DHCP agent whose host's Open vSwitch agent
reaches it (as Neutron's), so a test's agents take only its own networks, and nobody else's agents
take them. Its DHCP agents are deleted at the end (with their DHCP ports). An agent is made dead by
setting its heartbeat back in the database, and the failover runs on a live DHCP agent's heartbeat,
so nothing here waits on a timer.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.api.helpers import fault, headers, name
from tests.api.test_concurrency import change_log
from tests.api.agentdb import addresses, silence
from tests.support.server import BaryonServer

OVS, DHCP = "Open vSwitch agent", "DHCP agent"
VIEW_KEYS = {"host", "seq", "lease_duration", "networks", "etag"}


@pytest.fixture
def agents(baryon: BaryonServer) -> Iterator[httpx.Client]:
    """A client on the server's root (the agent API is under /agent/v1), as noauth's admin."""
    with httpx.Client(base_url=baryon.endpoint, timeout=30) as client:
        yield client


Node = Callable[..., dict]


@pytest.fixture
def node(admin: httpx.Client) -> Iterator[Node]:
    """``node(host, physnets)``: an Open vSwitch agent mapping ``physnets`` (no tunnels) and a
    DHCP agent on ``host``; returns the DHCP agent. Deleted after the test."""
    made: list[str] = []

    def make(host: str, physnets: list[str]) -> dict:
        report(admin, OVS, host, configurations={"bridge_mappings": {p: "br-ex" for p in physnets},
                                                 "tunnel_types": [], "tunneling_ip": "10.10.10.1",
                                                 "integration_bridge": "br-int"})
        agent = report(admin, DHCP, host, start_flag=True, configurations={"networks": 0})
        made.append(agent["id"])
        return agent

    yield make
    for agent_id in made:
        admin.delete(f"/agents/{agent_id}")


def report(client: httpx.Client, agent_type: str, host: str, **state: Any) -> dict:
    response = client.post("/agents/report", json={"agent": {"agent_type": agent_type, "host": host, **state}})
    assert response.status_code in (200, 201), response.text
    return response.json()["agent"]


def host_name() -> str:
    return f"net-{uuid.uuid4().hex[:10]}"


def create(client: httpx.Client, resource: str, **attrs: Any) -> dict:
    response = client.post(f"/{resource}s", json={resource: attrs})
    assert response.status_code == 201, response.text
    return response.json()[resource]


def update(client: httpx.Client, resource: str, rid: str, **attrs: Any) -> dict:
    response = client.put(f"/{resource}s/{rid}", json={resource: attrs})
    assert response.status_code == 200, response.text
    return response.json()[resource]


def flat(admin: httpx.Client, physnet: str, cidr: str | None = None, **attrs: Any) -> dict:
    """A flat network on ``physnet`` (with an IPv4 subnet on ``cidr``, DHCP on)."""
    net = create(admin, "network", name=name("net"), **{"provider:network_type": "flat",
                                                        "provider:physical_network": physnet}, **attrs)
    if cidr:
        net["subnet"] = create(admin, "subnet", network_id=net["id"], cidr=cidr, ip_version=4)
    return net


def dhcp_hosts(admin: httpx.Client, net: dict) -> list[str]:
    response = admin.get(f"/networks/{net['id']}/dhcp-agents")
    assert response.status_code == 200, response.text
    return [a["host"] for a in response.json()["agents"]]


def served(admin: httpx.Client, agent: dict) -> list[str]:
    response = admin.get(f"/agents/{agent['id']}/dhcp-networks")
    assert response.status_code == 200, response.text
    return sorted(n["id"] for n in response.json()["networks"])


def dhcp_ports(admin: httpx.Client, net: dict) -> list[dict]:
    ports = admin.get("/ports", params={"network_id": net["id"], "device_owner": "network:dhcp"}).json()["ports"]
    return sorted(ports, key=lambda p: p["binding:host_id"])


def device_id(host: str, network_id: str) -> str:
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


def kill(server: BaryonServer, host: str) -> None:
    """The DHCP agent of ``host`` is dead for long (silent 10 minutes > 2 x 75 s)."""
    silence(server, DHCP, host)


def view(agents: httpx.Client, host: str, **params: Any) -> dict:
    response = agents.get(f"/agent/v1/hosts/{host}/dhcp", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------- scheduling and the DHCP port


def test_a_dhcp_subnet_schedules_its_network_and_makes_the_dhcp_port(baryon: BaryonServer, admin: httpx.Client,
                                                                     node: Node, project: str) -> None:
    host, physnet = host_name(), name("physnet")
    agent = node(host, [physnet])
    net = flat(admin, physnet, "10.31.0.0/24", project_id=project)

    assert dhcp_hosts(admin, net) == [host]
    assert served(admin, agent) == [net["id"]]
    [port] = dhcp_ports(admin, net)
    assert (port["device_owner"], port["device_id"]) == ("network:dhcp", device_id(host, net["id"]))
    assert (port["binding:host_id"], port["binding:vif_type"]) == (host, "ovs")  # its OVS agent is alive
    assert port["fixed_ips"] == [{"subnet_id": net["subnet"]["id"], "ip_address": "10.31.0.2"}]  # gateway .1
    assert (port["project_id"], port["admin_state_up"], port["security_groups"]) == (project, True, [])
    assert port["status"] == "DOWN"  # until the OVS agent there wires it
    log = [(rtype, rid, action) for _, rtype, rid, action in change_log(baryon) if rid in (net["id"], port["id"])]
    assert log[-3:] == [("network", net["id"], "update"), ("network_dhcp_agent_binding", net["id"], "create"),
                        ("port", port["id"], "create")]

    # A second DHCP subnet: one more address, the first kept; a subnet without DHCP: none.
    second = create(admin, "subnet", network_id=net["id"], cidr="10.32.0.0/24", ip_version=4)
    create(admin, "subnet", network_id=net["id"], cidr="10.33.0.0/24", ip_version=4, enable_dhcp=False)
    [port] = dhcp_ports(admin, net)
    assert sorted((f["subnet_id"], f["ip_address"]) for f in port["fixed_ips"]) == sorted([
        (net["subnet"]["id"], "10.31.0.2"), (second["id"], "10.32.0.2")])
    assert port["revision_number"] == 2

    # DHCP off on one subnet: its address goes; off on the last: unscheduled, the port deleted.
    update(admin, "subnet", net["subnet"]["id"], enable_dhcp=False)
    [port] = dhcp_ports(admin, net)
    assert addresses(port) == ["10.32.0.2"]
    update(admin, "subnet", second["id"], enable_dhcp=False)
    assert (dhcp_hosts(admin, net), dhcp_ports(admin, net), served(admin, agent)) == ([], [], [])
    assert admin.get(f"/ports/{port['id']}").status_code == 404

    # On again: scheduled again, a new port with the first free address.
    update(admin, "subnet", second["id"], enable_dhcp=True)
    assert dhcp_hosts(admin, net) == [host]
    [again] = dhcp_ports(admin, net)
    assert again["id"] != port["id"] and addresses(again) == ["10.32.0.2"]

    # Deleting the subnet unschedules the network; deleting the network takes everything.
    assert admin.delete(f"/subnets/{second['id']}").status_code == 204
    assert (dhcp_hosts(admin, net), dhcp_ports(admin, net)) == ([], [])
    update(admin, "subnet", net["subnet"]["id"], enable_dhcp=True)
    assert dhcp_hosts(admin, net) == [host]
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    assert served(admin, agent) == []


def test_one_agent_per_network_least_loaded_first(admin: httpx.Client, node: Node) -> None:
    a, b = sorted([host_name(), host_name()])
    physnets = [name("physnet") for _ in range(4)]
    first_agent = node(a, physnets)
    first = flat(admin, physnets[0], "10.41.0.0/24")
    assert dhcp_hosts(admin, first) == [a]
    second_agent = node(b, physnets)  # nothing lacks an agent: it takes nothing
    assert served(admin, second_agent) == []

    second = flat(admin, physnets[1], "10.42.0.0/24")
    assert dhcp_hosts(admin, second) == [b]  # b serves none, a one
    third = flat(admin, physnets[2], "10.43.0.0/24")
    assert dhcp_hosts(admin, third) == [a]  # a tie: the first host by name
    assert served(admin, first_agent) == sorted([first["id"], third["id"]])
    assert served(admin, second_agent) == [second["id"]]
    for net in (first, second, third):
        assert len(dhcp_ports(admin, net)) == 1

    # A network whose physnet only one host reaches goes there, however loaded.
    lonely = name("physnet")
    node(a, [*physnets, lonely])  # a's OVS agent reports one more mapping (a restart)
    assert dhcp_hosts(admin, flat(admin, lonely, "10.44.0.0/24")) == [a]


def test_a_new_agent_takes_the_networks_lacking_one(admin: httpx.Client, node: Node) -> None:
    host, physnet = host_name(), name("physnet")
    net = flat(admin, physnet, "10.51.0.0/24")
    assert (dhcp_hosts(admin, net), dhcp_ports(admin, net)) == ([], [])
    node(host, [physnet])  # network_auto_schedule
    assert dhcp_hosts(admin, net) == [host]
    [port] = dhcp_ports(admin, net)
    assert (port["binding:host_id"], port["binding:vif_type"], addresses(port)) == (host, "ovs", ["10.51.0.2"])


def test_a_dead_agent_loses_its_networks_to_a_live_one(baryon: BaryonServer, admin: httpx.Client,
                                                       node: Node) -> None:
    a, b = sorted([host_name(), host_name()])
    physnet = name("physnet")
    first = node(a, [physnet])
    net = flat(admin, physnet, "10.61.0.0/24")
    second = node(b, [physnet])
    [old] = dhcp_ports(admin, net)
    assert dhcp_hosts(admin, net) == [a]

    kill(baryon, a)
    assert dhcp_hosts(admin, net) == [a]  # nothing moves until a live DHCP agent reports
    report(admin, DHCP, b)  # b's heartbeat: the failover
    assert dhcp_hosts(admin, net) == [b]
    assert (served(admin, first), served(admin, second)) == ([], [net["id"]])
    [new] = dhcp_ports(admin, net)
    assert (new["binding:host_id"], new["device_id"], addresses(new)) == (b, device_id(b, net["id"]), ["10.61.0.2"])
    assert admin.get(f"/ports/{old['id']}").status_code == 404
    log = [(rtype, action) for _, rtype, rid, action in change_log(baryon)
           if rid == net["id"] and rtype == "network_dhcp_agent_binding"]
    assert log == [("network_dhcp_agent_binding", "create"), ("network_dhcp_agent_binding", "delete"),
                   ("network_dhcp_agent_binding", "create")]

    # a comes back: the network has its agent, it stays on b.
    report(admin, DHCP, a, start_flag=True)
    assert dhcp_hosts(admin, net) == [b]


def test_concurrent_failovers_bind_each_network_once(baryon: BaryonServer, admin: httpx.Client,
                                                     node: Node) -> None:
    """Both API workers (and any other server) may run the failover at once: each network still
    ends with one DHCP agent and one DHCP port."""
    dead, *live = (host_name() for _ in range(3))
    physnets = [name("physnet") for _ in range(4)]
    node(dead, physnets)
    nets = [flat(admin, p, f"10.7{i}.0.0/24") for i, p in enumerate(physnets)]
    for host in live:
        node(host, physnets)
    kill(baryon, dead)
    barrier = threading.Barrier(8)

    def heartbeat(index: int) -> int:
        with httpx.Client(base_url=baryon.endpoint + "/v2.0", timeout=60) as client:
            client.get("/")
            barrier.wait(timeout=60)
            return client.post("/agents/report", json={"agent": {"agent_type": DHCP,
                                                                 "host": live[index % 2]}}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(heartbeat, range(8))) == [200] * 8
    for net in nets:
        [host] = dhcp_hosts(admin, net)
        assert host in live
        [port] = dhcp_ports(admin, net)
        assert port["device_id"] == device_id(host, net["id"])


def test_admin_placement_brings_and_takes_the_dhcp_port(admin: httpx.Client, node: Node) -> None:
    a, b = sorted([host_name(), host_name()])
    physnet = name("physnet")
    first, second = node(a, [physnet]), node(b, [physnet])
    net = flat(admin, physnet, "10.81.0.0/24")
    assert dhcp_hosts(admin, net) == [a]

    response = admin.post(f"/agents/{second['id']}/dhcp-networks", json={"network_id": net["id"]})
    assert (response.status_code, response.json()) == (201, None)
    assert dhcp_hosts(admin, net) == [a, b]
    assert [(p["binding:host_id"], addresses(p)) for p in dhcp_ports(admin, net)] == [
        (a, ["10.81.0.2"]), (b, ["10.81.0.3"])]
    assert admin.delete(f"/agents/{first['id']}/dhcp-networks/{net['id']}").status_code == 204
    assert dhcp_hosts(admin, net) == [b]  # as Neutron: not rescheduled
    assert [p["binding:host_id"] for p in dhcp_ports(admin, net)] == [b]

    # A network without subnets may be placed: its port comes with its first DHCP subnet.
    bare = flat(admin, name("physnet"))
    assert admin.post(f"/agents/{first['id']}/dhcp-networks", json={"network_id": bare["id"]}).status_code == 201
    assert dhcp_ports(admin, bare) == []
    create(admin, "subnet", network_id=bare["id"], cidr="10.82.0.0/24", ip_version=4)
    [port] = dhcp_ports(admin, bare)
    assert (port["binding:host_id"], addresses(port)) == (a, ["10.82.0.2"])
    assert port["binding:vif_type"] == "binding_failed"  # a's OVS agent does not reach that physnet

    # Deleting an agent takes its DHCP ports.
    assert admin.delete(f"/agents/{second['id']}").status_code == 204
    assert (dhcp_hosts(admin, net), dhcp_ports(admin, net)) == ([], [])


# ---------------------------------------------------------------- the DHCP view


def test_the_dhcp_view_of_a_host(admin: httpx.Client, agents: httpx.Client, node: Node) -> None:
    host, other, physnet = host_name(), host_name(), name("physnet")
    node(host, [physnet])
    net = flat(admin, physnet)
    v4 = create(admin, "subnet", network_id=net["id"], cidr="10.91.0.0/24", ip_version=4,
                dns_nameservers=["192.0.2.53", "192.0.2.52"],
                host_routes=[{"destination": "192.0.2.0/24", "nexthop": "10.91.0.254"},
                             {"destination": "198.51.100.0/24", "nexthop": "10.91.0.253"}])
    off = create(admin, "subnet", network_id=net["id"], cidr="10.92.0.0/24", ip_version=4, enable_dhcp=False,
                 gateway_ip=None)
    vm = create(admin, "port", network_id=net["id"], name="vm", extra_dhcp_opts=[
        {"opt_name": "tftp-server", "opt_value": "192.0.2.10"}, {"opt_name": "bootfile-name", "opt_value": "pxe"}])
    bare = create(admin, "port", network_id=net["id"], fixed_ips=[])  # no address: not in the view
    [dhcp_port] = dhcp_ports(admin, net)
    elsewhere = flat(admin, name("physnet"), "10.93.0.0/24")  # on no agent of this host

    got = view(agents, host)
    assert set(got) == {"seq", "etag", "view"} and set(got["view"]) == VIEW_KEYS
    dv = got["view"]
    assert (dv["host"], dv["seq"], dv["etag"], dv["lease_duration"]) == (host, got["seq"], got["etag"], 86400)
    [served_net] = dv["networks"]
    assert (served_net["id"], served_net["mtu"], served_net["dns_domain"]) == (net["id"], 1500, "openstacklocal")
    assert served_net["subnets"] == sorted([
        {"id": v4["id"], "cidr": "10.91.0.0/24", "ip_version": 4, "enable_dhcp": True, "gateway_ip": "10.91.0.1",
         "dns_nameservers": ["192.0.2.53", "192.0.2.52"],
         "host_routes": [{"destination": "192.0.2.0/24", "nexthop": "10.91.0.254"},
                         {"destination": "198.51.100.0/24", "nexthop": "10.91.0.253"}],
         "ipv6_address_mode": None, "ipv6_ra_mode": None},
        {"id": off["id"], "cidr": "10.92.0.0/24", "ip_version": 4, "enable_dhcp": False, "gateway_ip": None,
         "dns_nameservers": [], "host_routes": [], "ipv6_address_mode": None, "ipv6_ra_mode": None},
    ], key=lambda s: s["id"])
    [vm_ip] = vm["fixed_ips"]  # on either subnet
    dhcp_entry = {"id": dhcp_port["id"], "mac_address": dhcp_port["mac_address"],
                  "fixed_ips": [[v4["id"], "10.91.0.2"]], "hostname": "host-10-91-0-2",
                  "device_owner": "network:dhcp", "extra_dhcp_opts": []}
    assert served_net["dhcp_port"] == dhcp_entry
    assert served_net["ports"] == sorted([
        dhcp_entry,
        {"id": vm["id"], "mac_address": vm["mac_address"], "fixed_ips": [[vm_ip["subnet_id"], vm_ip["ip_address"]]],
         "hostname": "host-" + vm_ip["ip_address"].replace(".", "-"), "device_owner": "",
         "extra_dhcp_opts": [{"opt_name": "tftp-server", "opt_value": "192.0.2.10", "ip_version": 4},
                             {"opt_name": "bootfile-name", "opt_value": "pxe", "ip_version": 4}]},
    ], key=lambda p: p["id"])
    assert bare["id"] not in str(dv) and elsewhere["id"] not in str(dv)

    # An admin sets the network down: still scheduled, but not served (as Neutron's DHCP agent).
    update(admin, "network", net["id"], admin_state_up=False)
    assert (view(agents, host)["view"]["networks"], dhcp_hosts(admin, net)) == ([], [host])
    update(admin, "network", net["id"], admin_state_up=True)
    assert view(agents, host)["view"] == {**dv, "seq": view(agents, host)["seq"]}

    node(other, [physnet])  # another DHCP agent reaching the network, but not serving it
    for empty in (view(agents, other), view(agents, host_name())):
        assert (empty["view"]["networks"], empty["view"]["lease_duration"]) == ([], 86400)


def test_the_dhcp_view_etag_and_long_poll(baryon: BaryonServer, admin: httpx.Client, agents: httpx.Client,
                                          node: Node) -> None:
    host, physnet = host_name(), name("physnet")
    node(host, [physnet])
    net = flat(admin, physnet, "10.95.0.0/24")
    vm = create(admin, "port", network_id=net["id"])
    first = view(agents, host)

    flat(admin, name("physnet"), "10.96.0.0/24")  # elsewhere
    update(admin, "port", vm["id"], name="renamed")  # not in the view
    second = view(agents, host)
    assert second["etag"] == first["etag"] and second["seq"] > first["seq"]
    assert set(view(agents, host, etag=first["etag"])) == {"seq", "etag"}  # unchanged: no view
    update(admin, "port", vm["id"], extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"}])
    third = view(agents, host)
    assert third["etag"] != first["etag"]

    changed: dict[str, Any] = {}

    def change() -> None:
        time.sleep(0.3)  # the poll is waiting by then
        with httpx.Client(base_url=baryon.endpoint + "/v2.0", timeout=30) as other:
            flat(other, name("physnet"), "10.97.0.0/24")  # irrelevant: the poll keeps waiting
            changed["port"] = create(other, "port", network_id=net["id"])
            changed["at"] = time.monotonic()

    writer = threading.Thread(target=change)
    started = time.monotonic()
    writer.start()
    answer = view(agents, host, etag=third["etag"], wait=20)
    answered = time.monotonic()
    writer.join()
    assert answered - started < 5.0
    assert answered - changed["at"] < 1.0  # the bell (same worker) or the 0.25 s poll (the other worker)
    assert answer["etag"] != third["etag"] and answer["seq"] > third["seq"]
    [served_net] = answer["view"]["networks"]
    assert changed["port"]["id"] in {p["id"] for p in served_net["ports"]}


def test_the_dhcp_view_is_admin_only_and_kinds_are_known(baryon: BaryonServer, agents: httpx.Client,
                                                         project: str) -> None:
    host = host_name()
    with httpx.Client(base_url=baryon.endpoint, headers=headers(project), timeout=30) as member:
        error = fault(member.get(f"/agent/v1/hosts/{host}/dhcp", params={"wait": 30, "etag": "x"}),
                      403, "PolicyNotAuthorized")
        assert error["message"] == "rule:get_host_view is disallowed by policy"
    assert agents.get(f"/agent/v1/hosts/{host}/metering").status_code == 404  # no such agent here
    fault(agents.get(f"/agent/v1/hosts/{host}/dhcp", params={"wait": "soon"}), 400, "HTTPBadRequest")
