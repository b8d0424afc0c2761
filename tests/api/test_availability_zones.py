"""Availability zones through the API (availability_zone, availability_zone_filter,
network_availability_zone, router_availability_zone), on a server of their own (SQLite): the zones
are the whole server's, made by the agents that report there.

Agents register through ``POST /v2.0/agents/report``, as the real ones do: a DHCP agent's zone is a
network zone, an L3 agent's a router zone, other agents' none. The listing (state, filters, fields,
any caller, openstacksdk), the agents showing their zone, hints on networks and routers checked
against the zones (404 and nothing made for an unknown one), and a resource's ``availability_zones``
following the agents that host it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import fault, http, name, sdk
from tests.api.l3 import create, listed, show
from tests.support.server import BaryonServer

OVS, DHCP, L3 = "Open vSwitch agent", "DHCP agent", "L3 agent"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    started = BaryonServer(tmp_path_factory.mktemp("az"), workers=1).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def api(server: BaryonServer) -> Iterator[httpx.Client]:
    with http(server.endpoint) as client:
        yield client


def report(api: httpx.Client, agent_type: str, host: str, **state: Any) -> dict:
    response = api.post("/agents/report", json={"agent": {"agent_type": agent_type, "host": host,
                                                          "start_flag": True, **state}})
    assert response.status_code in (200, 201), response.text
    return response.json()["agent"]


@pytest.fixture(scope="module")
def agents(api: httpx.Client) -> dict[str, dict]:
    """h1: OVS (vxlan, in zone az9: no zone of any resource), DHCP and L3 agents in az1; h2: a DHCP
    agent in az2, disabled; h3: an L3 agent without a zone. Before any: no zone at all."""
    assert listed(api, "availability_zones") == []
    report(api, OVS, "h1", availability_zone="az9",
           configurations={"tunnel_types": ["vxlan"], "tunneling_ip": "10.9.0.1", "bridge_mappings": {}})
    made = {"dhcp1": report(api, DHCP, "h1", availability_zone="az1"),
            "l31": report(api, L3, "h1", availability_zone="az1"),
            "dhcp2": report(api, DHCP, "h2", availability_zone="az2"),
            "l33": report(api, L3, "h3")}
    response = api.put(f"/agents/{made['dhcp2']['id']}", json={"agent": {"admin_state_up": False}})
    assert response.status_code == 200, response.text
    return made


ZONES = [{"name": "az1", "resource": "network", "state": "available"},
         {"name": "az2", "resource": "network", "state": "unavailable"},
         {"name": "az1", "resource": "router", "state": "available"}]


def test_zones_are_those_the_agents_report(server: BaryonServer, api: httpx.Client, agents: dict) -> None:
    assert agents["dhcp1"]["availability_zone"] == "az1" and agents["l33"]["availability_zone"] is None
    shown = {a["host"] + a["agent_type"]: a["availability_zone"] for a in listed(api, "agents")}
    assert shown == {"h1" + OVS: "az9", "h1" + DHCP: "az1", "h1" + L3: "az1", "h2" + DHCP: "az2", "h3" + L3: None}
    assert listed(api, "availability_zones") == ZONES
    with http(server.endpoint, "p-az") as member:  # any caller may list them
        assert listed(member, "availability_zones") == ZONES
    assert listed(api, "availability_zones", state="unavailable") == [ZONES[1]]
    assert listed(api, "availability_zones", resource="router") == [ZONES[2]]
    assert listed(api, "availability_zones", name=["az1", "az2"], resource="network") == ZONES[:2]
    assert listed(api, "availability_zones", name="az9") == []
    assert listed(api, "availability_zones", fields="name", state="available") == [{"name": "az1"}] * 2
    assert listed(api, "availability_zones", limit=1, sort_key="name") == ZONES  # no paging, as Neutron
    error = fault(api.get("/availability_zones", params={"colour": "red"}), 400, "HTTPBadRequest")
    assert error["message"] == "colour is invalid attribute for filtering"
    conn = sdk(server.endpoint)
    assert sorted((z.name, z.resource, z.state) for z in conn.network.availability_zones()) == sorted(
        (z["name"], z["resource"], z["state"]) for z in ZONES)
    extensions = {e["alias"] for e in listed(api, "extensions")}
    assert {"availability_zone", "availability_zone_filter", "network_availability_zone",
            "router_availability_zone"} <= extensions


def count(api: httpx.Client, collection: str) -> int:
    return len(listed(api, collection))


def test_hints_name_known_zones_of_their_resource(api: httpx.Client, agents: dict) -> None:
    before = (count(api, "networks"), count(api, "routers"))
    for resource, hints, zone in (("network", ["az1", "az7"], "az7"), ("network", ["az9"], "az9"),
                                  ("router", ["az2"], "az2"), ("router", ["az1", "az9"], "az9")):
        response = api.post(f"/{resource}s", json={resource: {"name": name("az"), "availability_zone_hints": hints}})
        error = fault(response, 404, "AvailabilityZoneNotFound")
        assert error["message"] == f"AvailabilityZone {zone} could not be found."
    for hints, reason in ((["az1", "az1"], "Duplicate items in the list"), ("az1", "is not a list")):
        error = fault(api.post("/networks", json={"network": {"availability_zone_hints": hints}}), 400,
                      "HTTPBadRequest")
        assert reason in error["message"]
    assert (count(api, "networks"), count(api, "routers")) == before  # nothing made
    net = create(api, "network", name=name("az"), availability_zone_hints=["az1", "az2"])  # az2: disabled, known
    assert (net["availability_zone_hints"], net["availability_zones"]) == (["az1", "az2"], [])
    fault(api.put(f"/networks/{net['id']}", json={"network": {"availability_zone_hints": []}}), 400,
          "HTTPBadRequest")
    rtr = create(api, "router", name=name("az"), availability_zone_hints=["az1"])
    assert rtr["availability_zone_hints"] == ["az1"]
    plain = create(api, "router", name=name("az"))
    assert plain["availability_zone_hints"] == []
    fault(api.put(f"/routers/{rtr['id']}", json={"router": {"availability_zone_hints": []}}), 400,
          "HTTPBadRequest")


def test_zones_of_a_resource_are_those_of_its_agents(api: httpx.Client, agents: dict) -> None:
    net = create(api, "network", name=name("az"))
    assert net["availability_zones"] == []
    create(api, "subnet", network_id=net["id"], cidr="10.61.0.0/24", ip_version=4)  # scheduled: h1's DHCP agent
    assert show(api, "network", net["id"])["availability_zones"] == ["az1"]
    [listed_net] = listed(api, "networks", id=net["id"])
    assert listed_net["availability_zones"] == ["az1"]
    hosted = {r["id"]: show(api, "router", r["id"])["availability_zones"]
              for r in [create(api, "router", name=name("az")) for _ in range(2)]}
    # the least loaded of the live L3 agents hosts each: h1's (az1), or h3's (no zone)
    bound = {r: api.get(f"/routers/{r}/l3-agents").json()["agents"][0]["host"] for r in hosted}
    assert all(hosted[r] == (["az1"] if bound[r] == "h1" else []) for r in hosted), (hosted, bound)
    assert sorted(bound.values()) == ["h1", "h3"]
