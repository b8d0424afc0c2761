"""L3 scheduling, router ports' hosts, router and floating IP status, the L3 view and the L3 agent's
status reports, on every backend, as an L3 agent sees them.

Agents register through ``POST /v2.0/agents/report``, as the real ones do; a "node" is an Open
vSwitch agent (vxlan) and an L3 agent on one host. L3 scheduling does not depend on the networks
an agent reaches, so a test's routers could land on any live L3 agent: these tests run on servers
of their own (``allow_automatic_l3agent_failover = true``), and each test leaves no router and no
agent behind (``cloud`` wipes them), so that every test starts with no router and no L3 agent.
Failover disabled (Neutron's default) is checked on a server with the defaults. An agent is made
dead by setting its heartbeat back in the database; the failover runs on an L3 agent's heartbeat.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.agentdb import silence
from tests.api.helpers import fault, http, name
from tests.api.l3 import add_interface, create, external, private, show, update
from tests.api.test_concurrency import change_log
from tests.conftest import BACKENDS, UNLIMITED_QUOTAS
from tests.support.server import BaryonServer

OVS, L3 = "Open vSwitch agent", "L3 agent"
GATEWAY, INTERFACE = "network:router_gateway", "network:router_interface"
UNSCHEDULED = "no live L3 agent to host the router"
WAITING = "waiting for its L3 agent to build the router"


def start(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, backend: str,
          extra: str) -> BaryonServer:
    connection = ""
    if backend != "sqlite":
        connection = request.getfixturevalue(f"{backend}_server").create_database("baryon_l3")
    server = BaryonServer(tmp_path_factory.mktemp(f"l3-{backend}"), connection, workers=2, extra=extra,
                          sections=UNLIMITED_QUOTAS)
    return server.start()


@pytest.fixture(scope="module", params=BACKENDS)
def l3server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    server = start(tmp_path_factory, request, request.param, "allow_automatic_l3agent_failover = true")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def defaults(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    """A server with Neutron's defaults (no L3 failover), SQLite."""
    server = start(tmp_path_factory, request, "sqlite", "")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Cloud:
    server: BaryonServer
    api: httpx.Client  # /v2.0, as noauth's admin
    agents: httpx.Client  # the server's root (/agent/v1)

    def node(self, host: str, *, ovs: bool = True, **l3: Any) -> dict:
        """An Open vSwitch agent (vxlan; unless ``ovs`` is false) and an L3 agent on ``host``; returns
        the L3 agent."""
        if ovs:
            report(self.api, OVS, host, configurations={"tunnel_types": ["vxlan"], "tunneling_ip": "10.10.10.1",
                                                        "bridge_mappings": {}})
        return report(self.api, L3, host, start_flag=True, **l3)

    def view(self, host: str, **params: Any) -> dict:
        response = self.agents.get(f"/agent/v1/hosts/{host}/l3", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def status(self, host: str, **body: Any) -> httpx.Response:
        seq = self.agents.get("/agent/v1/seq").json()["seq"]
        return self.agents.post(f"/agent/v1/hosts/{host}/status", json={"agent_type": L3, "seq": seq, **body})

    def hosts(self, router: dict) -> list[str]:
        response = self.api.get(f"/routers/{router['id']}/l3-agents")
        assert response.status_code == 200, response.text
        return [a["host"] for a in response.json()["agents"]]

    def router_ports(self, router: dict) -> list[dict]:
        ports = self.api.get("/ports", params={"device_id": router["id"]}).json()["ports"]
        return sorted(ports, key=lambda p: (p["device_owner"], p["id"]))

    def port_hosts(self, router: dict) -> list[tuple[str, str, str]]:
        """(device_owner, binding:host_id, binding:vif_type) of the router's ports."""
        return [(p["device_owner"], p["binding:host_id"], p["binding:vif_type"]) for p in self.router_ports(router)]

    def router(self, router: dict) -> dict:
        return show(self.api, "router", router["id"])


def wipe(api: httpx.Client) -> None:
    """Every floating IP, router and agent of the server goes: the next test starts on a clean slate."""
    for fip in api.get("/floatingips").json()["floatingips"]:
        api.delete(f"/floatingips/{fip['id']}")
    for rtr in api.get("/routers").json()["routers"]:
        api.put(f"/routers/{rtr['id']}", json={"router": {"routes": []}})
        for port in api.get("/ports", params={"device_id": rtr["id"], "device_owner": INTERFACE}).json()["ports"]:
            api.put(f"/routers/{rtr['id']}/remove_router_interface", json={"port_id": port["id"]})
        response = api.delete(f"/routers/{rtr['id']}")
        assert response.status_code == 204, response.text
    for agent in api.get("/agents").json()["agents"]:
        api.delete(f"/agents/{agent['id']}")


def make_cloud(server: BaryonServer) -> Iterator[Cloud]:
    with http(server.endpoint) as api, httpx.Client(base_url=server.endpoint, timeout=30) as agents:
        yield Cloud(server, api, agents)
        wipe(api)


@pytest.fixture
def cloud(l3server: BaryonServer) -> Iterator[Cloud]:
    yield from make_cloud(l3server)


@pytest.fixture
def plain(defaults: BaryonServer) -> Iterator[Cloud]:
    yield from make_cloud(defaults)


def report(client: httpx.Client, agent_type: str, host: str, **state: Any) -> dict:
    response = client.post("/agents/report", json={"agent": {"agent_type": agent_type, "host": host, **state}})
    assert response.status_code in (200, 201), response.text
    return response.json()["agent"]


def hosts(count: int) -> list[str]:
    """``count`` fresh host names, in sorted order (the scheduler breaks load ties by host name)."""
    return sorted(f"network-{uuid.uuid4().hex[:10]}" for _ in range(count))


def routed(api: httpx.Client, cidrs: tuple[str, ...] = ("10.1.0.0/24",)) -> tuple[dict, dict, list[dict]]:
    """A router with a gateway on a new external network and an interface on a new private subnet per
    CIDR: (router, external subnet, private subnets)."""
    public, public_subnet = external(api)
    rtr = create(api, "router", name=name("router"), external_gateway_info={"network_id": public["id"]})
    subnets = []
    for cidr in cidrs:
        _net, subnet = private(api, cidr)
        add_interface(api, rtr["id"], subnet_id=subnet["id"])
        subnets.append(subnet)
    return show(api, "router", rtr["id"]), public_subnet, subnets


# ---------------------------------------------------------------- scheduling


def test_a_new_router_goes_to_the_least_loaded_live_l3_agent(cloud: Cloud) -> None:
    a, b = hosts(2)
    first, second = cloud.node(a), cloud.node(b)
    routers = [create(cloud.api, "router", name=name("router")) for _ in range(3)]

    assert [cloud.hosts(r) for r in routers] == [[a], [b], [a]]  # a tie goes to the first host name
    listed = [sorted(r["id"] for r in cloud.api.get(f"/agents/{agent['id']}/l3-routers").json()["routers"])
              for agent in (first, second)]
    assert listed == [sorted([routers[0]["id"], routers[2]["id"]]), [routers[1]["id"]]]
    [hosting] = cloud.api.get(f"/routers/{routers[1]['id']}/l3-agents").json()["agents"]
    assert (hosting["id"], hosting["agent_type"], hosting["ha_state"]) == (second["id"], L3, None)
    # Scheduled, not built yet: ALLOCATING until its agent reports it.
    assert (routers[0]["status"], routers[0]["status_reason"]) == ("ALLOCATING", WAITING)
    log = [(rtype, action) for _, rtype, rid, action in change_log(cloud.server) if rid == routers[0]["id"]]
    assert log == [("router_l3_agent_binding", "create"), ("router", "create")]


def test_only_enabled_live_legacy_agents_are_eligible(cloud: Cloud) -> None:
    dvr, off, dead, legacy = hosts(4)
    cloud.node(dvr, configurations={"agent_mode": "dvr"})
    disabled = cloud.node(off)
    cloud.api.put(f"/agents/{disabled['id']}", json={"agent": {"admin_state_up": False}})
    cloud.node(dead)
    silence(cloud.server, L3, dead, minutes=2)  # dead: no heartbeat for more than 75 s
    rtr = create(cloud.api, "router", name=name("router"))
    assert cloud.hosts(rtr) == []
    assert (rtr["status"], rtr["status_reason"]) == ("ALLOCATING", UNSCHEDULED)

    cloud.node(legacy, configurations={"agent_mode": "dvr_snat"})  # comes up: takes what no agent hosts
    assert cloud.hosts(rtr) == [legacy]
    shown = cloud.router(rtr)
    assert (shown["status"], shown["status_reason"], shown["revision_number"]) == (
        "ALLOCATING", WAITING, rtr["revision_number"] + 1)


def test_without_an_agent_a_router_waits_and_the_first_agent_takes_it(cloud: Cloud) -> None:
    rtr, public_subnet, [subnet] = routed(cloud.api)
    assert cloud.hosts(rtr) == []
    assert (rtr["status"], rtr["status_reason"]) == ("ALLOCATING", UNSCHEDULED)
    assert cloud.port_hosts(rtr) == [(GATEWAY, "", "unbound"), (INTERFACE, "", "unbound")]

    [host] = hosts(1)
    cloud.node(host)
    assert cloud.hosts(rtr) == [host]
    assert cloud.port_hosts(rtr) == [(GATEWAY, host, "ovs"), (INTERFACE, host, "ovs")]
    assert cloud.router(rtr)["status_reason"] == WAITING

    # An interface and a new gateway added later are created on the router's host.
    _net, other = private(cloud.api, "10.9.0.0/24")
    added = add_interface(cloud.api, rtr["id"], subnet_id=other["id"])
    assert show(cloud.api, "port", added["port_id"])["binding:host_id"] == host
    public, _sub = external(cloud.api, "198.51.100.0/24")
    update(cloud.api, "router", rtr["id"], external_gateway_info={"network_id": public["id"]})
    assert cloud.port_hosts(rtr) == [(GATEWAY, host, "ovs")] + [(INTERFACE, host, "ovs")] * 2
    # A port attached by id moves to the router's host.
    net = create(cloud.api, "network", name=name("net"))
    create(cloud.api, "subnet", network_id=net["id"], cidr="10.8.0.0/24", ip_version=4)
    mine = create(cloud.api, "port", network_id=net["id"], **{"binding:host_id": "elsewhere"})
    add_interface(cloud.api, rtr["id"], port_id=mine["id"])
    assert show(cloud.api, "port", mine["id"])["binding:host_id"] == host


def test_gateway_or_interface_schedules_an_unscheduled_router(cloud: Cloud) -> None:
    rtr = create(cloud.api, "router", name=name("router"))
    [host] = hosts(1)
    agent = cloud.node(host)
    # Registered after the router, and router_auto_schedule took it; take it off to see the triggers.
    assert cloud.api.delete(f"/agents/{agent['id']}/l3-routers/{rtr['id']}").status_code == 204
    assert (cloud.hosts(rtr), cloud.router(rtr)["status_reason"]) == ([], UNSCHEDULED)
    _net, subnet = private(cloud.api)
    add_interface(cloud.api, rtr["id"], subnet_id=subnet["id"])
    assert cloud.hosts(rtr) == [host]
    assert cloud.port_hosts(rtr) == [(INTERFACE, host, "ovs")]

    other = create(cloud.api, "router", name=name("router"))
    cloud.api.delete(f"/agents/{agent['id']}/l3-routers/{other['id']}")
    public, _sub = external(cloud.api)
    update(cloud.api, "router", other["id"], external_gateway_info={"network_id": public["id"]})
    assert cloud.hosts(other) == [host]


def test_admin_moves_take_the_ports_along(cloud: Cloud) -> None:
    a, b = hosts(2)
    first, second = cloud.node(a), cloud.node(b)
    rtr, _sub, _subnets = routed(cloud.api)
    assert cloud.hosts(rtr) == [a]
    assert cloud.port_hosts(rtr) == [(GATEWAY, a, "ovs"), (INTERFACE, a, "ovs")]

    assert cloud.api.delete(f"/agents/{first['id']}/l3-routers/{rtr['id']}").status_code == 204
    assert cloud.hosts(rtr) == []  # as Neutron: not rescheduled
    assert cloud.port_hosts(rtr) == [(GATEWAY, "", "unbound"), (INTERFACE, "", "unbound")]
    assert cloud.router(rtr)["status_reason"] == UNSCHEDULED

    response = cloud.api.post(f"/agents/{second['id']}/l3-routers", json={"router_id": rtr["id"]})
    assert response.status_code == 201, response.text
    assert cloud.hosts(rtr) == [b]
    assert cloud.port_hosts(rtr) == [(GATEWAY, b, "ovs"), (INTERFACE, b, "ovs")]
    assert (cloud.router(rtr)["status"], cloud.router(rtr)["status_reason"]) == ("ALLOCATING", WAITING)
    fault(cloud.api.post(f"/agents/{first['id']}/l3-routers", json={"router_id": rtr["id"]}), 409,
          "RouterHostedByL3Agent")

    # Deleting the agent unbinds its routers and their ports.
    assert cloud.api.delete(f"/agents/{second['id']}").status_code == 204
    assert cloud.hosts(rtr) == []
    assert cloud.port_hosts(rtr) == [(GATEWAY, "", "unbound"), (INTERFACE, "", "unbound")]
    assert cloud.router(rtr)["status_reason"] == UNSCHEDULED


def test_router_ports_bind_once_the_hosts_ovs_agent_comes_up(cloud: Cloud) -> None:
    [host] = hosts(1)
    cloud.node(host, ovs=False)
    rtr, _sub, _subnets = routed(cloud.api)
    assert cloud.port_hosts(rtr) == [(GATEWAY, host, "binding_failed"), (INTERFACE, host, "binding_failed")]
    report(cloud.api, OVS, host, configurations={"tunnel_types": ["vxlan"], "tunneling_ip": "10.10.10.9"})
    assert cloud.port_hosts(rtr) == [(GATEWAY, host, "ovs"), (INTERFACE, host, "ovs")]


# ---------------------------------------------------------------- failover


def test_a_dead_agents_routers_move_to_a_live_one(cloud: Cloud) -> None:
    a, b, c = hosts(3)
    cloud.node(a)
    rtr, _sub, _subnets = routed(cloud.api)
    cloud.node(b, configurations={"agent_mode": "dvr"})  # not eligible
    silence(cloud.server, L3, a)  # silent 10 minutes: more than 2 x agent_down_time
    report(cloud.api, L3, b, configurations={"agent_mode": "dvr"})  # runs the failover: nowhere to go
    assert cloud.hosts(rtr) == [a]

    cloud.node(c)
    report(cloud.api, L3, c)
    assert cloud.hosts(rtr) == [c]
    assert cloud.port_hosts(rtr) == [(GATEWAY, c, "ovs"), (INTERFACE, c, "ovs")]
    assert (cloud.router(rtr)["status"], cloud.router(rtr)["status_reason"]) == ("ALLOCATING", WAITING)
    log = [action for _, rtype, rid, action in change_log(cloud.server)
           if rtype == "router_l3_agent_binding" and rid == rtr["id"]]
    assert log == ["create", "delete", "create"]


def test_no_failover_by_default(plain: Cloud) -> None:
    a, b = hosts(2)
    plain.node(a)
    rtr = create(plain.api, "router", name=name("router"))
    plain.node(b)
    silence(plain.server, L3, a)
    report(plain.api, L3, b)
    assert plain.hosts(rtr) == [a]  # allow_automatic_l3agent_failover is false


# ---------------------------------------------------------------- the L3 view


def port_view(port: dict, network: dict, subnets: list[dict]) -> dict:
    return {"id": port["id"], "network_id": port["network_id"], "mac_address": port["mac_address"],
            "mtu": network["mtu"], "fixed_ips": [[f["subnet_id"], f["ip_address"]] for f in port["fixed_ips"]],
            "subnets": [{"id": s["id"], "cidr": s["cidr"], "ip_version": s["ip_version"],
                         "gateway_ip": s["gateway_ip"], "ipv6_ra_mode": s["ipv6_ra_mode"],
                         "ipv6_address_mode": s["ipv6_address_mode"]} for s in sorted(subnets, key=lambda s: s["id"])]}


def test_the_l3_view(cloud: Cloud) -> None:
    [host] = hosts(1)
    cloud.node(host)
    rtr, public_subnet, subnets = routed(cloud.api, ("10.1.0.0/24", "10.2.0.0/24"))
    rtr = update(cloud.api, "router", rtr["id"], routes=[{"destination": "192.168.50.0/24", "nexthop": "10.1.0.50"}])
    vm = create(cloud.api, "port", network_id=subnets[0]["network_id"])
    fip = create(cloud.api, "floatingip", floating_network_id=public_subnet["network_id"], port_id=vm["id"])
    # Down routers are not in the view.
    down = create(cloud.api, "router", name=name("router"), admin_state_up=False)
    assert cloud.hosts(down) == [host]

    answer = cloud.view(host)
    assert set(answer) == {"seq", "etag", "view"}
    view = answer["view"]
    assert (view["host"], view["seq"], view["etag"]) == (host, answer["seq"], answer["etag"])
    router_ports = cloud.router_ports(rtr)
    [gateway] = [p for p in router_ports if p["device_owner"] == GATEWAY]
    interfaces = sorted((p for p in router_ports if p["device_owner"] == INTERFACE), key=lambda p: p["id"])
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in interfaces) == ["10.1.0.1", "10.2.0.1"]
    network = {s["id"]: show(cloud.api, "network", s["network_id"]) for s in [public_subnet, *subnets]}
    by_id = {s["id"]: s for s in [public_subnet, *subnets]}
    shown = show(cloud.api, "router", rtr["id"])
    assert shown["status"] == "ALLOCATING"  # no report from its agent yet
    assert view["routers"] == [{
        "id": rtr["id"], "enable_snat": True, "status": "ALLOCATING", "status_reason": shown["status_reason"],
        "gateway": port_view(gateway, network[public_subnet["id"]], [public_subnet]),
        "interfaces": [port_view(p, network[p["fixed_ips"][0]["subnet_id"]], [by_id[p["fixed_ips"][0]["subnet_id"]]])
                       for p in interfaces],
        "routes": [{"destination": "192.168.50.0/24", "nexthop": "10.1.0.50"}],
        "floating_ips": [{"id": fip["id"], "floating_ip_address": fip["floating_ip_address"],
                          "fixed_ip_address": vm["fixed_ips"][0]["ip_address"], "port_id": vm["id"],
                          "status": "DOWN"}],
    }]
    assert view["routers"][0]["gateway"]["subnets"][0]["gateway_ip"] == "203.0.113.1"
    assert view["routers"][0]["gateway"]["mtu"] == 1450  # vxlan
    # Another host's view has none of it; the same etag answers without a view.
    assert cloud.view(hosts(1)[0])["view"]["routers"] == []
    again = cloud.view(host, etag=answer["etag"])
    assert set(again) == {"seq", "etag"} and again["etag"] == answer["etag"]


def test_the_long_poll_wakes_on_a_floating_ip_association(cloud: Cloud) -> None:
    [host] = hosts(1)
    cloud.node(host)
    rtr, public_subnet, [subnet] = routed(cloud.api)
    vm = create(cloud.api, "port", network_id=subnet["network_id"])
    fip = create(cloud.api, "floatingip", floating_network_id=public_subnet["network_id"])
    current = cloud.view(host)
    assert current["view"]["routers"][0]["floating_ips"] == []

    timer = threading.Timer(0.5, lambda: update(cloud.api, "floatingip", fip["id"], port_id=vm["id"]))
    started = time.monotonic()
    timer.start()
    try:
        answer = cloud.view(host, etag=current["etag"], wait=20)
    finally:
        timer.join()
    assert time.monotonic() - started < 5
    assert answer["etag"] != current["etag"]
    assert [f["id"] for f in answer["view"]["routers"][0]["floating_ips"]] == [fip["id"]]


# ---------------------------------------------------------------- status reports


def test_status_reports_of_routers_and_floating_ips(cloud: Cloud) -> None:
    a, b = hosts(2)
    cloud.node(a)
    rtr, public_subnet, [subnet] = routed(cloud.api)
    cloud.node(b)
    theirs = create(cloud.api, "router", name=name("router"))
    assert (cloud.hosts(rtr), cloud.hosts(theirs)) == ([a], [b])
    vm, other_vm = (create(cloud.api, "port", network_id=subnet["network_id"]) for _ in range(2))
    fip = create(cloud.api, "floatingip", floating_network_id=public_subnet["network_id"], port_id=vm["id"])
    loose = create(cloud.api, "floatingip", floating_network_id=public_subnet["network_id"])
    assert (fip["status"], loose["status"]) == ("DOWN", "DOWN")
    missing = str(uuid.uuid4())
    before = cloud.router(rtr)

    response = cloud.status(a, routers={rtr["id"]: {"status": "ACTIVE"}, theirs["id"]: {"status": "ACTIVE"},
                                        missing: {"status": "ACTIVE"}},
                            floatingips={fip["id"]: "ACTIVE", loose["id"]: "ACTIVE"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["updated"] == sorted([rtr["id"], fip["id"]])
    assert body["ignored"] == sorted([theirs["id"], missing, loose["id"]])
    shown = cloud.router(rtr)
    assert (shown["status"], shown["status_reason"], shown["revision_number"]) == (
        "ACTIVE", None, before["revision_number"] + 1)
    assert cloud.router(theirs)["status"] == "ALLOCATING"  # another host's router
    assert show(cloud.api, "floatingip", fip["id"])["status"] == "ACTIVE"
    assert show(cloud.api, "floatingip", loose["id"])["status"] == "DOWN"  # not associated through a's router
    log = [(rtype, action) for _, rtype, rid, action in change_log(cloud.server)[-2:]]
    assert sorted(log) == [("floatingip", "update"), ("router", "update")]

    # The same again changes nothing; an error says why.
    again = cloud.status(a, routers={rtr["id"]: {"status": "ACTIVE"}}, floatingips={fip["id"]: "ACTIVE"}).json()
    assert (again["updated"], again["ignored"]) == ([], [])
    failed = cloud.status(a, routers={rtr["id"]: {"status": "ERROR", "reason": "qg- device missing"}}).json()
    assert failed["updated"] == [rtr["id"]]
    shown = cloud.router(rtr)
    assert (shown["status"], shown["status_reason"]) == ("ERROR", "qg- device missing")
    cloud.status(a, routers={rtr["id"]: {"status": "ACTIVE", "reason": ""}})
    assert (cloud.router(rtr)["status"], cloud.router(rtr)["status_reason"]) == ("ACTIVE", None)
    # Set down, it leaves the view; set up again, it is to be built again.
    update(cloud.api, "router", rtr["id"], admin_state_up=False)
    assert cloud.view(a)["view"]["routers"] == []
    back = update(cloud.api, "router", rtr["id"], admin_state_up=True)
    assert (back["status"], back["status_reason"]) == ("ALLOCATING", WAITING)
    assert [r["id"] for r in cloud.view(a)["view"]["routers"]] == [rtr["id"]]

    # Moved to another port: DOWN until reported again; disassociated: DOWN.
    moved = update(cloud.api, "floatingip", fip["id"], port_id=other_vm["id"])
    assert moved["status"] == "DOWN"
    cloud.status(a, floatingips={fip["id"]: "ACTIVE"})
    assert update(cloud.api, "floatingip", fip["id"], port_id=None)["status"] == "DOWN"
    # Deleting the fixed port disassociates it too: DOWN.
    update(cloud.api, "floatingip", fip["id"], port_id=vm["id"])
    cloud.status(a, floatingips={fip["id"]: "ACTIVE"})
    assert cloud.api.delete(f"/ports/{vm['id']}").status_code == 204
    shown_fip = show(cloud.api, "floatingip", fip["id"])
    assert (shown_fip["port_id"], shown_fip["status"]) == (None, "DOWN")


def test_malformed_status_reports(cloud: Cloud) -> None:
    [host] = hosts(1)
    cloud.node(host)
    for body in ({"routers": []}, {"routers": {"r": "ACTIVE"}}, {"routers": {"r": {"status": "BUILD"}}},
                 {"routers": {"r": {"status": "ERROR", "reason": 3}}}, {"floatingips": {"f": "UP"}},
                 {"floatingips": ["f"]}):
        error = fault(cloud.status(host, **body), 400, "HTTPBadRequest")
        assert error["message"].startswith("Invalid input for "), error
    fault(cloud.status(hosts(1)[0], routers={}), 404, "AgentNotFoundByTypeHost")
