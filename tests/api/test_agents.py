"""Agents and the scheduler views through the real clients: openstacksdk, the ``openstack`` CLI, HTTP.

Agents come from Baryon's registration endpoint (``POST /v2.0/agents/report``, what the agents
will call), so every test registers its own agents on host names of its own: the server is
shared by all the tests of a backend. What needs a fresh database or a short ``agent_down_time``
runs on a dedicated SQLite server.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api.helpers import cli, fault, http, name, sdk
from tests.api.test_concurrency import change_log
from tests.support.server import BaryonServer

AGENT_TIME = "%Y-%m-%d %H:%M:%S"  # Neutron shows agent times so, unlike the standard attributes
FIELDS = {"id", "agent_type", "binary", "topic", "host", "admin_state_up", "alive", "availability_zone",
          "description", "created_at", "started_at", "heartbeat_timestamp", "configurations",
          "resource_versions", "resources_synced", "realised_seq"}
OVS, DHCP, L3 = "Open vSwitch agent", "DHCP agent", "L3 agent"


@pytest.fixture
def host(baryon: BaryonServer) -> Iterator[str]:
    """A host name of the test's own; the DHCP and L3 agents registered on it (or on ``host + "-b"``)
    are deleted afterwards: a live DHCP agent would schedule every later test's DHCP subnets on the
    shared server and give their networks DHCP ports, a live L3 agent would host every later
    test's routers and bind their ports."""
    value = name("host")
    yield value
    with http(baryon.endpoint) as admin:
        for agent in admin.get("/agents", params={"agent_type": [DHCP, L3]}).json()["agents"]:
            if agent["host"].startswith(value):
                admin.delete(f"/agents/{agent['id']}")


def report(client: httpx.Client, agent_type: str, host: str, status: int | None = None, **state) -> dict:
    response = client.post("/agents/report", json={"agent": {"agent_type": agent_type, "host": host, **state}})
    assert response.status_code in ((status,) if status else (200, 201)), response.text
    return response.json()["agent"]


def agent_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, AGENT_TIME)


def network(client: httpx.Client) -> dict:
    response = client.post("/networks", json={"network": {"name": name("net")}})
    assert response.status_code == 201, response.text
    return response.json()["network"]


def router(client: httpx.Client) -> dict:
    response = client.post("/routers", json={"router": {"name": name("router")}})
    assert response.status_code == 201, response.text
    return response.json()["router"]


def ids(response: httpx.Response, key: str) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()[key]]


# ---------------------------------------------------------------- registration and heartbeats


def test_registration_creates_and_reports_update(admin: httpx.Client, host: str) -> None:
    configurations = {"bridge_mappings": {"physnet1": "br-ex"}, "tunnel_types": ["vxlan"],
                      "tunneling_ip": "192.0.2.11", "l2_population": True, "devices": 0}
    created = report(admin, OVS, host, 201, configurations=configurations, start_flag=True)

    assert set(created) == FIELDS
    uuid.UUID(created["id"])
    assert (created["agent_type"], created["binary"], created["topic"], created["host"]) == (
        OVS, "neutron-openvswitch-agent", "N/A", host)
    assert (created["admin_state_up"], created["alive"], created["description"]) == (True, True, None)
    assert (created["availability_zone"], created["resources_synced"], created["resource_versions"]) == (None, None, {})
    assert created["configurations"] == configurations
    assert created["created_at"] == created["started_at"] == created["heartbeat_timestamp"]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert abs((agent_time(created["created_at"]) - now).total_seconds()) < 60  # UTC

    # The next report is a heartbeat of the same agent: 200, same id, creation time kept.
    again = report(admin, OVS, host, 200, configurations={**configurations, "devices": 2})
    assert again["id"] == created["id"]
    assert again["created_at"] == created["created_at"]
    assert agent_time(again["heartbeat_timestamp"]) >= agent_time(created["heartbeat_timestamp"])
    assert again["configurations"]["devices"] == 2
    assert admin.get(f"/agents/{created['id']}").json()["agent"] == again

    # Another type on the same host is another agent, with Neutron's binary and topic.
    dhcp = report(admin, DHCP, host, 201, availability_zone="nova", configurations={"networks": 0})
    l3 = report(admin, L3, host, 201, availability_zone="nova")
    assert (dhcp["binary"], dhcp["topic"], dhcp["availability_zone"]) == ("neutron-dhcp-agent", "dhcp_agent", "nova")
    assert (l3["binary"], l3["topic"]) == ("neutron-l3-agent", "l3_agent")
    assert len({created["id"], dhcp["id"], l3["id"]}) == 3


def test_heartbeats_are_logged_only_when_something_changes(baryon: BaryonServer, admin: httpx.Client,
                                                           host: str) -> None:
    agent = report(admin, DHCP, host, 201, configurations={"networks": 1})

    def entries() -> list[str]:
        return [action for _, rtype, rid, action in change_log(baryon) if rtype == "agent" and rid == agent["id"]]

    assert entries() == ["create"]
    for _ in range(3):
        report(admin, DHCP, host, 200, configurations={"networks": 1})
    assert entries() == ["create"]
    report(admin, DHCP, host, 200, configurations={"networks": 2})
    assert entries() == ["create", "update"]
    report(admin, DHCP, host, 200, configurations={"networks": 2}, start_flag=True)  # a restart
    assert entries() == ["create", "update", "update"]
    assert admin.put(f"/agents/{agent['id']}", json={"agent": {"description": "rack 4"}}).status_code == 200
    assert admin.delete(f"/agents/{agent['id']}").status_code == 204
    assert entries() == ["create", "update", "update", "update", "delete"]


def test_invalid_reports(admin: httpx.Client, member: httpx.Client, host: str) -> None:
    error = fault(admin.post("/agents/report", json={"agent": {"agent_type": DHCP}}), 400, "HTTPBadRequest")
    assert error["message"] == "Failed to parse request. Required attribute 'host' not specified"
    fault(admin.post("/agents/report", json={"agent": {"agent_type": DHCP, "host": " "}}), 400, "HTTPBadRequest")
    fault(admin.post("/agents/report", json={"agent": {"agent_type": DHCP, "host": host, "configurations": []}}),
          400, "HTTPBadRequest")
    fault(admin.post("/agents/report", json={"agent": {"agent_type": DHCP, "host": host, "colour": "red"}}),
          400, "HTTPBadRequest")
    error = fault(admin.post("/agents/report", json={"agent": {"agent_type": "Metering agent", "host": host}}),
                  400, "InvalidInput")
    assert "binary" in error["message"]
    assert report(admin, "Metering agent", host, 201, binary="neutron-metering-agent")["topic"] == "N/A"

    error = fault(member.post("/agents/report", json={"agent": {"agent_type": DHCP, "host": host}}),
                  403, "PolicyNotAuthorized")
    assert error["message"] == "rule:report_state is disallowed by policy"
    assert admin.get("/agents", params={"host": host, "agent_type": DHCP}).json()["agents"] == []


def test_concurrent_first_reports_register_one_agent(baryon: BaryonServer, host: str) -> None:
    barrier = threading.Barrier(8)

    def register(_index: int) -> httpx.Response:
        with http(baryon.endpoint) as client:
            client.get("/")
            barrier.wait(timeout=60)
            return client.post("/agents/report", json={"agent": {"agent_type": L3, "host": host}})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(register, range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201], [r.text for r in responses]
    assert len({r.json()["agent"]["id"] for r in responses}) == 1
    with http(baryon.endpoint) as admin:
        assert len(ids(admin.get("/agents", params={"host": host}), "agents")) == 1


# ---------------------------------------------------------------- list, show, update, delete


def test_sdk_list_filter_sort_and_show(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    agents = {t: report(admin, t, host, 201) for t in (OVS, DHCP, L3)}
    conn = sdk(baryon.endpoint)

    listed = list(conn.network.agents(host=host))
    assert sorted(a.id for a in listed) == sorted(a["id"] for a in agents.values())
    [dhcp] = conn.network.agents(host=host, agent_type=DHCP)
    assert (dhcp.id, dhcp.binary, dhcp.is_alive, dhcp.is_admin_state_up) == (
        agents[DHCP]["id"], "neutron-dhcp-agent", True, True)
    assert [a.id for a in conn.network.agents(host=host, binary="neutron-l3-agent")] == [agents[L3]["id"]]
    # agent_type ignores case on every database, as Neutron's on MySQL (tempest asks for "DHCP Agent")
    assert ids(admin.get("/agents", params={"host": host, "agent_type": "DHCP Agent"}), "agents") == [
        agents[DHCP]["id"]]
    assert sorted(ids(admin.get("/agents", params={"host": host, "agent_type": ["dhcp AGENT", "l3 agent"]}),
                      "agents")) == sorted([agents[DHCP]["id"], agents[L3]["id"]])
    assert ids(admin.get("/agents", params={"host": host, "agent_type": "DHCP"}), "agents") == []
    assert len(list(conn.network.agents(host=host, is_alive=True))) == 3
    assert list(conn.network.agents(host=host, is_alive=False)) == []

    got = conn.network.get_agent(agents[OVS]["id"])
    assert (got.agent_type, got.host, got.topic, got.last_heartbeat_at) == (
        OVS, host, "N/A", agents[OVS]["heartbeat_timestamp"])

    # Sorting and pagination through the generic collection.
    by_type = admin.get("/agents", params={"host": host, "sort_key": "agent_type", "sort_dir": "desc"})
    assert [a["agent_type"] for a in by_type.json()["agents"]] == [OVS, L3, DHCP]
    page = admin.get("/agents", params={"host": host, "sort_key": "agent_type", "sort_dir": "asc", "limit": 2})
    assert [a["agent_type"] for a in page.json()["agents"]] == [DHCP, L3]
    [link] = [link for link in page.json()["agents_links"] if link["rel"] == "next"]
    rest = httpx.get(link["href"], timeout=30).json()["agents"]
    assert [a["agent_type"] for a in rest] == [OVS]
    assert [a["id"] for a in admin.get("/agents", params={"host": host, "fields": "id"}).json()["agents"]]
    assert set(admin.get("/agents", params={"host": host, "fields": ["id", "alive"]}).json()["agents"][0]) == {
        "id", "alive"}

    fault(admin.get("/agents", params={"configurations": "x"}), 400, "HTTPBadRequest")
    fault(admin.get("/agents", params={"alive": "sometimes"}), 400, "InvalidInput")
    fault(admin.get("/agents", params={"sort_key": "configurations", "sort_dir": "asc"}), 400, "HTTPBadRequest")


def test_update_and_read_only_fields(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    agent = report(admin, DHCP, host, 201)
    conn = sdk(baryon.endpoint)

    updated = conn.network.update_agent(agent["id"], is_admin_state_up=False, description="maintenance")
    assert (updated.is_admin_state_up, updated.description) == (False, "maintenance")
    shown = admin.get(f"/agents/{agent['id']}").json()["agent"]
    assert (shown["admin_state_up"], shown["description"]) == (False, "maintenance")
    assert {k: v for k, v in shown.items() if k not in ("admin_state_up", "description")} == {
        k: v for k, v in agent.items() if k not in ("admin_state_up", "description")}
    # A report changes neither: they are the operator's.
    assert report(admin, DHCP, host, 200)["admin_state_up"] is False
    cleared = admin.put(f"/agents/{agent['id']}", json={"agent": {"description": None, "admin_state_up": True}})
    assert (cleared.json()["agent"]["description"], cleared.json()["agent"]["admin_state_up"]) == (None, True)

    url = f"/agents/{agent['id']}"
    for field, value in (("host", "elsewhere"), ("agent_type", L3), ("alive", False), ("binary", "x"),
                         ("configurations", {}), ("heartbeat_timestamp", "2020-01-01 00:00:00"), ("id", agent["id"])):
        error = fault(admin.put(url, json={"agent": {field: value}}), 400, "HTTPBadRequest")
        assert error["message"] == f"Cannot update read-only attribute {field}"
    error = fault(admin.put(url, json={"agent": {"colour": "blue"}}), 400, "HTTPBadRequest")
    assert error["message"] == "Unrecognized attribute(s) 'colour'"
    fault(admin.put(url, json={"agent": {"admin_state_up": "maybe"}}), 400, "InvalidInput")
    fault(admin.put(url, json={"agent": {"description": "x" * 256}}), 400, "HTTPBadRequest")

    # Agents register themselves: no POST on the collection.
    error = fault(admin.post("/agents", json={"agent": {}}), 400, "BadRequest")
    assert error["message"] == "Bad agent request: agents cannot be created through the API."
    error = fault(admin.post("/agents", json={"agent": {"host": host}}), 400, "HTTPBadRequest")
    assert error["message"] == "Attribute 'host' not allowed in POST"
    # Agents have no tags (no standard attributes).
    fault(admin.get(f"/agents/{agent['id']}/tags"), 404, "HTTPNotFound")


def test_delete(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    agent = report(admin, OVS, host, 201)
    conn = sdk(baryon.endpoint)
    assert conn.network.delete_agent(agent["id"], ignore_missing=False) is None
    error = fault(admin.get(f"/agents/{agent['id']}"), 404, "AgentNotFound")
    assert error["message"] == f"Agent {agent['id']} could not be found."
    fault(admin.put(f"/agents/{agent['id']}", json={"agent": {"admin_state_up": False}}), 404, "AgentNotFound")
    fault(admin.delete(f"/agents/{agent['id']}"), 404, "AgentNotFound")
    # The agent's next report registers it anew.
    assert report(admin, OVS, host, 201)["id"] != agent["id"]


def test_members_see_no_agents(admin: httpx.Client, member: httpx.Client, host: str) -> None:
    agent = report(admin, DHCP, host, 201)
    net = network(admin)
    url = f"/agents/{agent['id']}"

    assert member.get("/agents").json() == {"agents": []}
    assert member.get("/agents", params={"host": host}).json() == {"agents": []}
    fault(member.get(url), 404, "AgentNotFound")
    fault(member.put(url, json={"agent": {"admin_state_up": False}}), 404, "AgentNotFound")
    fault(member.delete(url), 404, "AgentNotFound")
    # The scheduler views are admin-only too: 403 before anything is looked up.
    for response, rule in (
        (member.get(f"{url}/dhcp-networks"), "get_dhcp-networks"),
        (member.post(f"{url}/dhcp-networks", json={"network_id": net["id"]}), "create_dhcp-network"),
        (member.delete(f"{url}/dhcp-networks/{net['id']}"), "delete_dhcp-network"),
        (member.get(f"/networks/{net['id']}/dhcp-agents"), "get_dhcp-agents"),
        (member.get(f"{url}/l3-routers"), "get_l3-routers"),
        (member.post(f"{url}/l3-routers", json={"router_id": net["id"]}), "create_l3-router"),
        (member.delete(f"{url}/l3-routers/{net['id']}"), "delete_l3-router"),
        (member.get(f"/routers/{net['id']}/l3-agents"), "get_l3-agents"),
    ):
        assert fault(response, 403, "PolicyNotAuthorized")["message"] == f"rule:{rule} is disallowed by policy"
    assert admin.get(url).json()["agent"] == agent
    assert ids(admin.get(f"{url}/dhcp-networks"), "networks") == []


def test_cli_list_show_set_delete(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    agents = {t: report(admin, t, host, 201) for t in (OVS, DHCP, L3)}

    rows = cli(baryon.endpoint, "network", "agent", "list", "--host", host, "-f", "json")
    assert sorted(rows, key=lambda r: r["Agent Type"]) == [
        {"ID": agents[t]["id"], "Agent Type": t, "Host": host, "Availability Zone": None, "Alive": True,
         "State": True, "Binary": agents[t]["binary"]} for t in (DHCP, L3, OVS)]
    rows = cli(baryon.endpoint, "network", "agent", "list", "--host", host, "--agent-type", "l3", "-f", "json")
    assert [r["ID"] for r in rows] == [agents[L3]["id"]]

    agent_id = agents[DHCP]["id"]
    cli(baryon.endpoint, "network", "agent", "set", "--disable", "--description", "draining", agent_id)
    shown = cli(baryon.endpoint, "network", "agent", "show", agent_id, "-f", "json")
    assert (shown["id"], shown["agent_type"], shown["host"], shown["binary"], shown["topic"]) == (
        agent_id, DHCP, host, "neutron-dhcp-agent", "dhcp_agent")
    assert (shown["admin_state_up"], shown["alive"], shown["description"]) == (False, True, "draining")
    assert shown["last_heartbeat_at"] == agents[DHCP]["heartbeat_timestamp"]

    cli(baryon.endpoint, "network", "agent", "delete", agent_id)
    fault(admin.get(f"/agents/{agent_id}"), 404, "AgentNotFound")
    rows = cli(baryon.endpoint, "network", "agent", "list", "--host", host, "-f", "json")
    assert sorted(r["ID"] for r in rows) == sorted([agents[OVS]["id"], agents[L3]["id"]])


def test_extensions_and_resources(admin: httpx.Client) -> None:
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert {"agent", "dhcp_agent_scheduler", "l3_agent_scheduler"} <= aliases
    assert admin.get("/extensions/agent").json()["extension"]["name"] == "agent"
    collections = {r["collection"] for r in admin.get("/").json()["resources"]}
    assert "agents" in collections


# ---------------------------------------------------------------- DHCP scheduling


def test_dhcp_networks_of_an_agent(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    agent = report(admin, DHCP, host, 201)
    first, second = network(admin), network(admin)
    conn = sdk(baryon.endpoint)

    assert list(conn.network.dhcp_agent_hosting_networks(agent["id"])) == []
    assert list(conn.network.network_hosting_dhcp_agents(first["id"])) == []
    conn.network.add_dhcp_agent_to_network(agent["id"], first["id"])
    response = admin.post(f"/agents/{agent['id']}/dhcp-networks", json={"network_id": second["id"]})
    assert (response.status_code, response.json()) == (201, None)  # as Neutron: a null body

    hosted = list(conn.network.dhcp_agent_hosting_networks(agent["id"]))
    assert sorted(n.id for n in hosted) == sorted([first["id"], second["id"]])
    shown = admin.get(f"/agents/{agent['id']}/dhcp-networks").json()["networks"]
    assert {n["id"]: n for n in shown}[first["id"]] == admin.get(f"/networks/{first['id']}").json()["network"]
    [hosting] = conn.network.network_hosting_dhcp_agents(first["id"])
    assert (hosting.id, hosting.agent_type, hosting.host) == (agent["id"], DHCP, host)
    assert admin.get(f"/networks/{first['id']}/dhcp-agents").json()["agents"] == [
        admin.get(f"/agents/{agent['id']}").json()["agent"]]

    conn.network.remove_dhcp_agent_from_network(agent["id"], first["id"])
    assert ids(admin.get(f"/agents/{agent['id']}/dhcp-networks"), "networks") == [second["id"]]
    assert ids(admin.get(f"/networks/{first['id']}/dhcp-agents"), "agents") == []
    log = [(rtype, rid, action) for _, rtype, rid, action in change_log(baryon)
           if rtype == "network_dhcp_agent_binding" and rid in (first["id"], second["id"])]
    assert log == [("network_dhcp_agent_binding", first["id"], "create"),
                   ("network_dhcp_agent_binding", second["id"], "create"),
                   ("network_dhcp_agent_binding", first["id"], "delete")]


def test_dhcp_scheduling_errors(admin: httpx.Client, host: str) -> None:
    dhcp = report(admin, DHCP, host, 201)
    ovs = report(admin, OVS, host, 201)
    net = network(admin)
    missing = str(uuid.uuid4())
    add = f"/agents/{dhcp['id']}/dhcp-networks"

    assert admin.post(add, json={"network_id": net["id"]}).status_code == 201
    error = fault(admin.post(add, json={"network_id": net["id"]}), 409, "NetworkHostedByDHCPAgent")
    assert error["message"] == (f"The network {net['id']} has been already hosted by the DHCP Agent {dhcp['id']}.")
    error = fault(admin.post(f"/agents/{ovs['id']}/dhcp-networks", json={"network_id": net["id"]}),
                  404, "InvalidDHCPAgent")
    assert error["message"] == f"Agent {ovs['id']} is not a valid DHCP Agent or has been disabled."
    fault(admin.post(add, json={"network_id": missing}), 404, "NetworkNotFound")
    fault(admin.post(f"/agents/{missing}/dhcp-networks", json={"network_id": net["id"]}), 404, "AgentNotFound")
    fault(admin.get(f"/agents/{missing}/dhcp-networks"), 404, "AgentNotFound")
    fault(admin.post(add, json={}), 400, "HTTPBadRequest")
    fault(admin.post(add, json={"network_id": 7}), 400, "HTTPBadRequest")
    # As in Neutron: an unknown network is hosted by no agent.
    assert ids(admin.get(f"/networks/{missing}/dhcp-agents"), "agents") == []

    # A disabled DHCP agent takes no network.
    other = network(admin)
    admin.put(f"/agents/{dhcp['id']}", json={"agent": {"admin_state_up": False}})
    fault(admin.post(add, json={"network_id": other["id"]}), 404, "InvalidDHCPAgent")

    assert admin.delete(f"{add}/{net['id']}").status_code == 204
    error = fault(admin.delete(f"{add}/{net['id']}"), 409, "NetworkNotHostedByDhcpAgent")
    assert error["message"] == f"The network {net['id']} is not hosted by the DHCP Agent {dhcp['id']}."
    fault(admin.delete(f"/agents/{missing}/dhcp-networks/{net['id']}"), 404, "AgentNotFound")


def test_cli_dhcp_placement(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    agent = report(admin, DHCP, host, 201)
    net = network(admin)

    cli(baryon.endpoint, "network", "agent", "add", "network", "--dhcp", agent["id"], net["name"])
    rows = cli(baryon.endpoint, "network", "agent", "list", "--network", net["id"], "-f", "json")
    assert [(r["ID"], r["Agent Type"], r["Host"], r["Alive"]) for r in rows] == [(agent["id"], DHCP, host, True)]
    cli(baryon.endpoint, "network", "agent", "remove", "network", "--dhcp", agent["id"], net["id"])
    assert cli(baryon.endpoint, "network", "agent", "list", "--network", net["id"], "-f", "json") == []


def test_deleting_a_network_or_an_agent_removes_its_bindings(baryon: BaryonServer, admin: httpx.Client,
                                                              host: str) -> None:
    first = report(admin, DHCP, host, 201)
    second = report(admin, DHCP, host + "-b", 201)
    gone, kept = network(admin), network(admin)
    for agent in (first, second):
        for net in (gone, kept):
            assert admin.post(f"/agents/{agent['id']}/dhcp-networks", json={"network_id": net["id"]}).status_code == 201

    assert admin.delete(f"/networks/{gone['id']}").status_code == 204
    assert ids(admin.get(f"/agents/{first['id']}/dhcp-networks"), "networks") == [kept["id"]]
    assert ids(admin.get(f"/agents/{second['id']}/dhcp-networks"), "networks") == [kept["id"]]
    assert ids(admin.get(f"/networks/{gone['id']}/dhcp-agents"), "agents") == []

    assert admin.delete(f"/agents/{first['id']}").status_code == 204
    assert ids(admin.get(f"/networks/{kept['id']}/dhcp-agents"), "agents") == [second["id"]]

    # Each removal is in the change log, the bindings before the network itself.
    log = [(rtype, rid, action) for _, rtype, rid, action in change_log(baryon) if rid in (gone["id"], kept["id"])]
    assert log[-4:] == [("network_dhcp_agent_binding", gone["id"], "delete")] * 2 + [
        ("network", gone["id"], "delete"), ("network_dhcp_agent_binding", kept["id"], "delete")]


# ---------------------------------------------------------------- L3 scheduling


# NOTE: routers are made before the L3 agents: a router created while an L3 agent is alive is
# scheduled to it at once (test_l3_scheduling.py); these tests place them by hand.


def test_l3_routers_of_an_agent(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    first, second = router(admin), router(admin)
    agent = report(admin, L3, host, 201)
    other = report(admin, L3, host + "-b", 201)
    conn = sdk(baryon.endpoint)

    assert list(conn.network.agent_hosted_routers(agent["id"])) == []
    assert list(conn.network.routers_hosting_l3_agents(first["id"])) == []
    conn.network.add_router_to_agent(agent["id"], first["id"])
    response = admin.post(f"/agents/{agent['id']}/l3-routers", json={"router_id": second["id"]})
    assert (response.status_code, response.json()) == (201, None)
    # Again on the same agent: nothing to do (Neutron's answer too).
    assert admin.post(f"/agents/{agent['id']}/l3-routers", json={"router_id": second["id"]}).status_code == 201

    assert sorted(r.id for r in conn.network.agent_hosted_routers(agent["id"])) == sorted(
        [first["id"], second["id"]])
    shown = {r["id"]: r for r in admin.get(f"/agents/{agent['id']}/l3-routers").json()["routers"]}
    assert shown[first["id"]]["name"] == first["name"]
    [hosting] = conn.network.routers_hosting_l3_agents(first["id"])
    assert (hosting.id, hosting.agent_type, hosting.ha_state) == (agent["id"], L3, None)
    [body] = admin.get(f"/routers/{first['id']}/l3-agents").json()["agents"]
    assert body == {**admin.get(f"/agents/{agent['id']}").json()["agent"], "ha_state": None}

    # A router is hosted by one L3 agent.
    error = fault(admin.post(f"/agents/{other['id']}/l3-routers", json={"router_id": first["id"]}),
                  409, "RouterHostedByL3Agent")
    assert error["message"] == f"The router {first['id']} has been already hosted by the L3 Agent {agent['id']}."

    conn.network.remove_router_from_agent(agent["id"], first["id"])
    assert ids(admin.get(f"/agents/{agent['id']}/l3-routers"), "routers") == [second["id"]]
    assert ids(admin.get(f"/routers/{first['id']}/l3-agents"), "agents") == []
    # Not hosted there: nothing to do, as in Neutron.
    assert admin.delete(f"/agents/{agent['id']}/l3-routers/{first['id']}").status_code == 204
    conn.network.add_router_to_agent(other["id"], first["id"])
    assert ids(admin.get(f"/routers/{first['id']}/l3-agents"), "agents") == [other["id"]]

    log = [action for _, rtype, rid, action in change_log(baryon)
           if rtype == "router_l3_agent_binding" and rid == first["id"]]
    assert log == ["create", "delete", "create"]


def test_l3_scheduling_errors(admin: httpx.Client, host: str) -> None:
    rtr = router(admin)
    l3 = report(admin, L3, host, 201)
    dhcp = report(admin, DHCP, host, 201)
    missing = str(uuid.uuid4())
    add = f"/agents/{l3['id']}/l3-routers"

    error = fault(admin.post(f"/agents/{dhcp['id']}/l3-routers", json={"router_id": rtr["id"]}), 404, "InvalidL3Agent")
    assert error["message"] == f"Agent {dhcp['id']} is not a L3 Agent or has been disabled"
    error = fault(admin.post(add, json={"router_id": missing}), 404, "RouterNotFound")
    assert missing in error["message"]
    fault(admin.post(f"/agents/{missing}/l3-routers", json={"router_id": rtr["id"]}), 404, "AgentNotFound")
    fault(admin.get(f"/agents/{missing}/l3-routers"), 404, "AgentNotFound")
    fault(admin.get(f"/routers/{missing}/l3-agents"), 404, "RouterNotFound")
    fault(admin.delete(f"{add}/{missing}"), 404, "RouterNotFound")
    fault(admin.post(add, json={"network_id": rtr["id"]}), 400, "HTTPBadRequest")
    admin.put(f"/agents/{l3['id']}", json={"agent": {"admin_state_up": False}})
    fault(admin.post(add, json={"router_id": rtr["id"]}), 404, "InvalidL3Agent")


def test_deleting_a_router_removes_its_binding(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    gone, kept = router(admin), router(admin)
    agent = report(admin, L3, host, 201)
    for rtr in (gone, kept):
        assert admin.post(f"/agents/{agent['id']}/l3-routers", json={"router_id": rtr["id"]}).status_code == 201

    assert admin.delete(f"/routers/{gone['id']}").status_code == 204
    assert ids(admin.get(f"/agents/{agent['id']}/l3-routers"), "routers") == [kept["id"]]
    log = [(rtype, action) for _, rtype, rid, action in change_log(baryon) if rid == gone["id"]]
    assert log[-2:] == [("router_l3_agent_binding", "delete"), ("router", "delete")]

    assert admin.delete(f"/agents/{agent['id']}").status_code == 204
    assert ids(admin.get(f"/routers/{kept['id']}/l3-agents"), "agents") == []


def test_cli_l3_placement(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    rtr = router(admin)
    agent = report(admin, L3, host, 201)

    cli(baryon.endpoint, "network", "agent", "add", "router", "--l3", agent["id"], rtr["name"])
    rows = cli(baryon.endpoint, "network", "agent", "list", "--router", rtr["id"], "--long", "-f", "json")
    assert [(r["ID"], r["Agent Type"], r["Host"], r["HA State"]) for r in rows] == [(agent["id"], L3, host, None)]
    cli(baryon.endpoint, "network", "agent", "remove", "router", "--l3", agent["id"], rtr["id"])
    assert cli(baryon.endpoint, "network", "agent", "list", "--router", rtr["id"], "-f", "json") == []


def test_concurrent_placements_of_one_router(baryon: BaryonServer, admin: httpx.Client, host: str) -> None:
    rtr = router(admin)
    agents = [report(admin, L3, f"{host}-{i}", 201) for i in range(4)]
    barrier = threading.Barrier(len(agents))

    def place(agent: dict) -> httpx.Response:
        with http(baryon.endpoint) as client:
            client.get("/")
            barrier.wait(timeout=60)
            return client.post(f"/agents/{agent['id']}/l3-routers", json={"router_id": rtr["id"]})

    with ThreadPoolExecutor(len(agents)) as pool:
        responses = list(pool.map(place, agents))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409], [r.text for r in responses]
    [winner] = [a["id"] for a, r in zip(agents, responses) if r.status_code == 201]
    assert ids(admin.get(f"/routers/{rtr['id']}/l3-agents"), "agents") == [winner]


# ---------------------------------------------------------------- liveness (a server of its own)


@pytest.fixture(scope="module", params=["sqlite"])
def quick(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    """A fresh server where agents die after 3 s without a heartbeat, and start disabled."""
    server = BaryonServer(tmp_path_factory.mktemp("baryon-agents"),
                          extra="agent_down_time = 3\nenable_new_agents = false")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate, timeout: float = 15.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_agents_die_without_heartbeats_and_revive(quick: BaryonServer) -> None:
    with http(quick.endpoint) as admin:
        assert admin.get("/agents").json() == {"agents": []}  # a fresh server has none
        agent = report(admin, OVS, "compute1", 201)
        assert (agent["alive"], agent["admin_state_up"]) == (True, False)  # enable_new_agents = false
        url = f"/agents/{agent['id']}"

        wait_for(lambda: admin.get(url).json()["agent"]["alive"] is False)
        assert ids(admin.get("/agents", params={"alive": "false"}), "agents") == [agent["id"]]
        assert ids(admin.get("/agents", params={"alive": "true"}), "agents") == []
        [row] = cli(quick.endpoint, "network", "agent", "list", "-f", "json")
        assert (row["Alive"], row["State"]) == (False, False)

        revived = report(admin, OVS, "compute1", 200)
        assert (revived["id"], revived["alive"]) == (agent["id"], True)
        assert ids(admin.get("/agents", params={"alive": "true"}), "agents") == [agent["id"]]
        # Coming back from the dead is a change (the log says so); a heartbeat after it is not.
        report(admin, OVS, "compute1", 200)
    actions = [action for _, rtype, rid, action in change_log(quick) if rtype == "agent" and rid == agent["id"]]
    assert actions == ["create", "update"]
