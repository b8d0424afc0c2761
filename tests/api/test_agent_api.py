"""The server side of the agents' interface, on every backend: port binding to live Open vSwitch
agents, host views, the long-poll on them, status reports and realised sequences.

Agents register through ``POST /v2.0/agents/report`` as the real ones will. The servers are
shared by every test of a backend, so each test uses host names and physnets of its own (flat
physnets are taken once per server). An agent is made dead by setting its last heartbeat back
in the database, rather than waiting out ``agent_down_time``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import fault, headers, name
from tests.api.test_concurrency import change_log
from tests.api.agentdb import addresses, silence
from tests.support.server import BaryonServer

OVS = "Open vSwitch agent"
# The configurations of the OVS agent (what Neutron's agent reports).
CONFIG = {"bridge_mappings": {"physnet1": "br-ex"}, "tunnel_types": ["vxlan"], "tunneling_ip": "10.10.10.11",
          "l2_population": True, "arp_responder_enabled": True, "devices": 0, "datapath_type": "netdev",
          "ovs_hybrid_plug": True, "integration_bridge": "br-int"}
BOUND_DETAILS = {"port_filter": True, "ovs_hybrid_plug": True, "datapath_type": "netdev", "bridge_name": "br-int",
                 "connectivity": "l2", "bound_drivers": {"0": "openvswitch"}}
VIEW_KEYS = {"host", "seq", "ports", "networks", "remote_ports", "security_groups", "group_members", "address_groups",
             "etag"}


@pytest.fixture
def agents(baryon: BaryonServer) -> Iterator[httpx.Client]:
    """A client on the server's root (the agent API is under /agent/v1), as noauth's admin."""
    with httpx.Client(base_url=baryon.endpoint, timeout=30) as client:
        yield client


def host_name() -> str:
    return f"compute-{uuid.uuid4().hex[:10]}"


def register(admin: httpx.Client, host: str, **config: Any) -> dict:
    response = admin.post("/agents/report", json={"agent": {"agent_type": OVS, "host": host,
                                                             "configurations": {**CONFIG, **config}}})
    assert response.status_code in (200, 201), response.text
    return response.json()["agent"]


def create(client: httpx.Client, resource: str, **attrs: Any) -> dict:
    response = client.post(f"/{resource.replace('_', '-')}s", json={resource: attrs})
    assert response.status_code == 201, response.text
    return response.json()[resource]


def update_port(client: httpx.Client, port_id: str, **attrs: Any) -> dict:
    response = client.put(f"/ports/{port_id}", json={"port": attrs})
    assert response.status_code == 200, response.text
    return response.json()["port"]


def network(admin: httpx.Client, cidr: str = "10.20.0.0/24", **provider: Any) -> dict:
    net = create(admin, "network", name=name("net"), **provider)
    create(admin, "subnet", network_id=net["id"], cidr=cidr, ip_version=4)
    return net


def port(admin: httpx.Client, net: dict, host: str, **attrs: Any) -> dict:
    attrs.setdefault("security_groups", [])
    return create(admin, "port", network_id=net["id"], **{"binding:host_id": host}, **attrs)


def view(agents: httpx.Client, host: str, **params: Any) -> dict:
    response = agents.get(f"/agent/v1/hosts/{host}/ovs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def kill(server: BaryonServer, host: str) -> None:
    """The OVS agent of ``host`` is dead (silent for 10 minutes)."""
    silence(server, OVS, host)


# ---------------------------------------------------------------- registration


def test_an_ovs_agent_registers_with_its_configurations(admin: httpx.Client) -> None:
    host = host_name()
    agent = register(admin, host)
    assert (agent["agent_type"], agent["host"], agent["alive"]) == (OVS, host, True)
    assert agent["configurations"] == CONFIG
    assert agent["realised_seq"] == 0
    shown = admin.get(f"/agents/{agent['id']}").json()["agent"]
    assert shown["realised_seq"] == 0 and shown["configurations"] == CONFIG
    error = fault(admin.put(f"/agents/{agent['id']}", json={"agent": {"realised_seq": 5}}), 400, "HTTPBadRequest")
    assert error["message"] == "Cannot update read-only attribute realised_seq"


# ---------------------------------------------------------------- binding


def test_ports_bind_on_vxlan_and_flat(admin: httpx.Client) -> None:
    host, physnet = host_name(), name("physnet")
    register(admin, host, bridge_mappings={"physnet1": "br-ex", physnet: "br-ex"})
    tenant = network(admin)
    flat = network(admin, "10.21.0.0/24", **{"provider:network_type": "flat", "provider:physical_network": physnet})

    on_vxlan = port(admin, tenant, host)
    assert (on_vxlan["binding:host_id"], on_vxlan["binding:vif_type"]) == (host, "ovs")
    assert on_vxlan["binding:vif_details"] == BOUND_DETAILS
    assert on_vxlan["status"] == "DOWN"  # until the agent reports it wired
    on_flat = port(admin, flat, host)
    assert (on_flat["binding:vif_type"], on_flat["binding:vif_details"]) == ("ovs", BOUND_DETAILS)

    # Bound later, by an update (as Nova does), with the agent's other settings.
    other = host_name()
    register(admin, other, datapath_type="system", ovs_hybrid_plug=False)
    late = create(admin, "port", network_id=tenant["id"])
    assert (late["binding:vif_type"], late["binding:vif_details"]) == ("unbound", {})
    late = update_port(admin, late["id"], **{"binding:host_id": other})
    assert late["binding:vif_type"] == "ovs"
    assert late["binding:vif_details"] == {**BOUND_DETAILS, "datapath_type": "system", "ovs_hybrid_plug": False}
    assert late["revision_number"] == 2


def test_binding_failures_say_why(baryon: BaryonServer, admin: httpx.Client) -> None:
    host, nowhere, physnet = host_name(), host_name(), name("physnet")
    register(admin, host, tunnel_types=[])
    tenant = network(admin)
    flat = network(admin, "10.21.0.0/24", **{"provider:network_type": "flat", "provider:physical_network": physnet})

    def failed(p: dict) -> str:
        assert p["binding:vif_type"] == "binding_failed", p
        assert set(p["binding:vif_details"]) == {"reason"}
        return p["binding:vif_details"]["reason"]

    assert failed(port(admin, tenant, nowhere)) == f"no live Open vSwitch agent on host {nowhere}"
    assert failed(port(admin, flat, host)) == (
        f"the Open vSwitch agent on {host} cannot reach a flat segment on {physnet} (bridge_mappings: physnet1)")
    assert failed(port(admin, tenant, host)) == (
        f"the Open vSwitch agent on {host} cannot reach a vxlan segment (tunnel_types: none)")

    # A dead agent binds nothing; it says since when it is silent.
    dying = host_name()
    register(admin, dying)
    bound = port(admin, tenant, dying)
    assert bound["binding:vif_type"] == "ovs"
    kill(baryon, dying)
    reason = failed(port(admin, tenant, dying))
    assert reason.startswith(f"no live Open vSwitch agent on host {dying}: its last heartbeat was at ")
    assert reason.endswith("more than agent_down_time (75 s) ago")
    assert admin.get(f"/ports/{bound['id']}").json()["port"]["binding:vif_type"] == "ovs"  # bound stays bound

    # As in Neutron, a failed binding is not retried when the agent comes back, only when the host is
    # set again.
    stranded = port(admin, tenant, dying)
    register(admin, dying)
    assert admin.get(f"/ports/{stranded['id']}").json()["port"]["binding:vif_type"] == "binding_failed"
    retried = update_port(admin, stranded["id"], **{"binding:host_id": dying})
    assert (retried["binding:vif_type"], retried["binding:vif_details"]) == ("ovs", BOUND_DETAILS)

    # Moving a bound port to a host without an agent fails it; clearing the host unbinds it.
    moved = update_port(admin, retried["id"], **{"binding:host_id": nowhere})
    assert failed(moved) == f"no live Open vSwitch agent on host {nowhere}"
    cleared = update_port(admin, retried["id"], **{"binding:host_id": ""})
    assert (cleared["binding:vif_type"], cleared["binding:vif_details"]) == ("unbound", {})


# ---------------------------------------------------------------- host views


def test_views_of_two_hosts_sharing_a_network(baryon: BaryonServer, admin: httpx.Client,
                                              agents: httpx.Client) -> None:
    a, b, c, d = (host_name() for _ in range(4))
    register(admin, a, tunneling_ip="10.10.10.11")
    register(admin, b, tunneling_ip="10.10.10.12")
    register(admin, c, tunneling_ip="10.10.10.13")
    register(admin, d, tunneling_ip="10.10.10.14")
    shared, only_a, only_c = network(admin), network(admin, "10.30.0.0/24"), network(admin, "10.40.0.0/24")

    web = create(admin, "security_group", name=name("web"))
    db = create(admin, "security_group", name=name("db"))
    rule = create(admin, "security_group_rule", security_group_id=web["id"], direction="ingress", protocol="tcp",
                  port_range_min=80, port_range_max=80, ethertype="IPv4", remote_group_id=db["id"])
    a1 = port(admin, shared, a, security_groups=[web["id"]], allowed_address_pairs=[{"ip_address": "10.99.0.0/24"}])
    a2 = port(admin, only_a, a, port_security_enabled=False)
    b1 = port(admin, shared, b, security_groups=[db["id"]], allowed_address_pairs=[{"ip_address": "10.20.0.250"}])
    c1 = port(admin, only_c, c)
    d1 = port(admin, shared, d)
    kill(baryon, d)  # a silent agent's ports stay reachable: its host's switch still forwards

    got = view(agents, a)
    assert set(got) == {"seq", "etag", "view"} and set(got["view"]) == VIEW_KEYS
    va = got["view"]
    assert (va["host"], va["seq"], va["etag"]) == (a, got["seq"], got["etag"])
    assert [p["id"] for p in va["ports"]] == sorted([a1["id"], a2["id"]])
    by_id = {p["id"]: p for p in va["ports"]}
    assert by_id[a1["id"]] == {
        "id": a1["id"], "network_id": shared["id"], "mac_address": a1["mac_address"], "fixed_ips": addresses(a1),
        "device_owner": "", "admin_state_up": True, "port_security_enabled": True,
        "security_groups": [web["id"]],
        "allowed_address_pairs": [{"ip_address": "10.99.0.0/24", "mac_address": a1["mac_address"]}]}
    assert by_id[a2["id"]]["port_security_enabled"] is False and by_id[a2["id"]]["security_groups"] == []
    listed = admin.get("/networks", params={"id": [shared["id"], only_a["id"]]}).json()["networks"]
    segments = {n["id"]: n for n in listed}
    assert va["networks"] == [
        {"id": n, "segment": {"network_type": "vxlan", "segmentation_id": segments[n]["provider:segmentation_id"],
                              "physical_network": None}, "mtu": segments[n]["mtu"]}
        for n in sorted(segments)]
    # l2population: b's and (dead) d's ports on the shared network, with their tunnel endpoints; nothing of c.
    assert va["remote_ports"] == sorted([
        {"network_id": shared["id"], "host": b, "tunnel_ip": "10.10.10.12", "mac_address": b1["mac_address"],
         "fixed_ips": addresses(b1)},
        {"network_id": shared["id"], "host": d, "tunnel_ip": "10.10.10.14", "mac_address": d1["mac_address"],
         "fixed_ips": addresses(d1)}], key=lambda r: (r["network_id"], r["host"], r["tunnel_ip"], r["mac_address"]))
    assert [g["id"] for g in va["security_groups"]] == [web["id"]]
    [web_view] = va["security_groups"]
    assert web_view["stateful"] is True
    assert {"id": rule["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 80,
            "port_range_max": 80, "remote_ip_prefix": None, "remote_group_id": db["id"],
            "remote_address_group_id": None} in web_view["rules"]
    assert [r["id"] for r in web_view["rules"]] == sorted(r["id"] for r in web_view["rules"])
    assert va["group_members"] == [{"security_group_id": db["id"],
                                    "addresses": sorted([*addresses(b1), "10.20.0.250"])}]
    everything = str(va)
    assert only_c["id"] not in everything and c1["id"] not in everything

    vb = view(agents, b)["view"]
    assert [p["id"] for p in vb["ports"]] == [b1["id"]]
    assert [n["id"] for n in vb["networks"]] == [shared["id"]]
    assert {(r["host"], r["tunnel_ip"], r["mac_address"]) for r in vb["remote_ports"]} == {
        (a, "10.10.10.11", a1["mac_address"]), (d, "10.10.10.14", d1["mac_address"])}
    assert vb["group_members"] == []  # db's rules name no remote group
    assert va["address_groups"] == vb["address_groups"] == []

    # A rule of web naming an address group: a's view gets the group's CIDRs, b's (db) nothing.
    ag = admin.post("/address-groups", json={"address_group": {"name": name("ag"), "addresses": [
        "192.0.2.9/24", "2001:db8::/64"]}}).json()["address_group"]
    ag_rule = create(admin, "security_group_rule", security_group_id=web["id"], direction="ingress",
                     ethertype="IPv6", remote_address_group_id=ag["id"])
    va = view(agents, a)["view"]
    assert va["address_groups"] == [{"id": ag["id"], "addresses": ["192.0.2.0/24", "2001:db8::/64"]}]
    assert [r["remote_address_group_id"] for g in va["security_groups"] for r in g["rules"]
            if r["id"] == ag_rule["id"]] == [ag["id"]]
    assert view(agents, b)["view"]["address_groups"] == []

    empty = view(agents, host_name())["view"]
    assert (empty["ports"], empty["networks"], empty["remote_ports"]) == ([], [], [])


def test_flat_segment_in_the_view(admin: httpx.Client, agents: httpx.Client) -> None:
    host, physnet = host_name(), name("physnet")
    register(admin, host, bridge_mappings={physnet: "br-ex"})
    flat = network(admin, "10.21.0.0/24", **{"provider:network_type": "flat", "provider:physical_network": physnet})
    port(admin, flat, host)
    [net] = view(agents, host)["view"]["networks"]
    assert net == {"id": flat["id"], "segment": {"network_type": "flat", "segmentation_id": None,
                                                 "physical_network": physnet}, "mtu": 1500}
    assert view(agents, host)["view"]["remote_ports"] == []  # l2population is for tunnels only


def test_etag_is_stable_until_something_relevant_changes(admin: httpx.Client, agents: httpx.Client) -> None:
    a, b = host_name(), host_name()
    register(admin, a, tunneling_ip="10.10.10.21")
    register(admin, b, tunneling_ip="10.10.10.22")
    net = network(admin)
    mine = port(admin, net, a)
    first = view(agents, a)

    network(admin, "10.50.0.0/24")  # elsewhere
    update_port(admin, mine["id"], name="renamed", description="not in the view")
    second = view(agents, a)
    assert second["etag"] == first["etag"] and second["view"] == {**first["view"], "seq": second["seq"]}
    assert second["seq"] > first["seq"]

    port(admin, net, b)  # a new peer on a's network
    third = view(agents, a)
    assert third["etag"] != first["etag"] and len(third["view"]["remote_ports"]) == 1
    update_port(admin, mine["id"], admin_state_up=False)
    assert view(agents, a)["etag"] != third["etag"]


# ---------------------------------------------------------------- the long-poll


def test_long_poll_answers_at_once_for_another_etag(admin: httpx.Client, agents: httpx.Client) -> None:
    host = host_name()
    register(admin, host)
    current = view(agents, host)
    started = time.monotonic()
    assert view(agents, host, etag="stale", wait=30) == current
    assert view(agents, host, wait=30) == current  # no etag: the view
    assert time.monotonic() - started < 1.0
    fault(agents.get(f"/agent/v1/hosts/{host}/ovs", params={"wait": "soon"}), 400, "HTTPBadRequest")
    fault(agents.get(f"/agent/v1/hosts/{host}/ovs", params={"wait": "-1"}), 400, "HTTPBadRequest")


def test_long_poll_wakes_promptly_on_a_relevant_change(baryon: BaryonServer, admin: httpx.Client,
                                                       agents: httpx.Client) -> None:
    a, b = host_name(), host_name()
    register(admin, a, tunneling_ip="10.10.10.31")
    register(admin, b, tunneling_ip="10.10.10.32")
    net = network(admin)
    port(admin, net, a)
    current = view(agents, a)
    changed: dict[str, Any] = {}

    def change() -> None:
        time.sleep(0.3)  # the poll is waiting by then
        with httpx.Client(base_url=baryon.endpoint + "/v2.0", timeout=30) as other:
            network(other, "10.60.0.0/24")  # irrelevant to a: the poll keeps waiting
            changed["port"] = port(other, net, b)
            changed["at"] = time.monotonic()

    writer = threading.Thread(target=change)
    started = time.monotonic()
    writer.start()
    answer = view(agents, a, etag=current["etag"], wait=20)
    answered = time.monotonic()
    writer.join()
    assert answered - started < 5.0
    assert answered - changed["at"] < 0.6  # the bell: rung by this worker or, by its socket, the other (api.siblings)
    assert answer["etag"] != current["etag"] and answer["seq"] > current["seq"]
    assert [r["mac_address"] for r in answer["view"]["remote_ports"]] == [changed["port"]["mac_address"]]


def test_long_poll_without_change_answers_after_the_wait(admin: httpx.Client, agents: httpx.Client) -> None:
    host = host_name()
    register(admin, host)
    current = view(agents, host)
    started = time.monotonic()
    network(admin, "10.70.0.0/24")  # irrelevant
    answer = view(agents, host, etag=current["etag"], wait=0.5)
    elapsed = time.monotonic() - started
    assert set(answer) == {"seq", "etag"}  # no view: unchanged up to seq
    assert answer["etag"] == current["etag"] and answer["seq"] > current["seq"]
    assert 0.5 <= elapsed < 2.0
    assert set(view(agents, host, etag=current["etag"])) == {"seq", "etag"}  # wait=0: at once


def test_an_irrelevant_change_does_not_end_a_long_wait(admin: httpx.Client, agents: httpx.Client) -> None:
    # It concerns no agent: none is answered (the server counts them current by their etag).
    host = host_name()
    register(admin, host)
    current = view(agents, host)
    timer = threading.Timer(0.2, lambda: network(admin, "10.71.0.0/24"))  # irrelevant to host
    started = time.monotonic()
    timer.start()
    try:
        answer = view(agents, host, etag=current["etag"], wait=2)
    finally:
        timer.join()
    elapsed = time.monotonic() - started
    assert set(answer) == {"seq", "etag"} and answer["seq"] > current["seq"]
    assert elapsed >= 2.0


def test_an_agent_is_current_while_its_view_keeps_the_etag_it_realised(admin: httpx.Client,
                                                                       agents: httpx.Client) -> None:
    """``realised_seq`` follows the log without reports while no change concerns the agent, and
    stops at the report when one does, until the agent reports the new view."""
    a, b = host_name(), host_name()
    agent = register(admin, a)
    register(admin, b)
    net = network(admin)
    mine = port(admin, net, a)
    theirs = port(admin, net, b)
    first = view(agents, a)
    url = f"/agent/v1/hosts/{a}/status"

    def realised() -> int:
        return admin.get(f"/agents/{agent['id']}").json()["agent"]["realised_seq"]

    def seq() -> int:
        return agents.get("/agent/v1/seq").json()["seq"]

    report = {"agent_type": OVS, "seq": first["seq"], "etag": first["etag"]}
    assert agents.post(url, json=report).status_code == 200
    assert realised() >= first["seq"]
    network(admin, "10.72.0.0/24")  # concerns nobody
    update_port(admin, theirs["id"], name="renamed")  # a cosmetic change of a remote port
    assert realised() == seq()  # no report needed
    [row] = admin.get("/agents", params={"host": a, "agent_type": OVS}).json()["agents"]
    assert row["realised_seq"] == seq()  # the list says the same

    update_port(admin, mine["id"], admin_state_up=False)  # in a's view
    behind = seq()
    network(admin, "10.73.0.0/24")
    assert realised() < behind  # a has not realised its port's new state
    newer = view(agents, a)
    assert newer["etag"] != first["etag"]
    assert agents.post(url, json={**report, "seq": newer["seq"], "etag": newer["etag"]}).status_code == 200
    assert realised() == seq()
    # Without an etag, the report alone counts (agents of earlier releases).
    other = register(admin, host_name())
    agents.post(f"/agent/v1/hosts/{other['host']}/status", json={"agent_type": OVS, "seq": 1})
    assert admin.get(f"/agents/{other['id']}").json()["agent"]["realised_seq"] == 1


def test_seq(admin: httpx.Client, agents: httpx.Client) -> None:
    before = agents.get("/agent/v1/seq").json()["seq"]
    network(admin, "10.80.0.0/24")
    after = agents.get("/agent/v1/seq").json()
    assert set(after) == {"seq"} and after["seq"] >= before + 2  # the network and its subnet


# ---------------------------------------------------------------- status reports


def test_status_reports(baryon: BaryonServer, admin: httpx.Client, agents: httpx.Client) -> None:
    a, b = host_name(), host_name()
    agent = register(admin, a)
    register(admin, b)
    net = network(admin)
    mine, theirs = port(admin, net, a), port(admin, net, b)
    unbound = create(admin, "port", network_id=net["id"])
    missing = str(uuid.uuid4())
    seq = agents.get("/agent/v1/seq").json()["seq"]
    url = f"/agent/v1/hosts/{a}/status"

    response = agents.post(url, json={"agent_type": OVS, "seq": seq, "ports": {
        mine["id"]: "ACTIVE", theirs["id"]: "ACTIVE", unbound["id"]: "ACTIVE", missing: "DOWN"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["updated"] == [mine["id"]]
    assert body["ignored"] == sorted([theirs["id"], unbound["id"], missing])
    assert body["seq"] == seq + 1  # the port's update
    shown = admin.get(f"/ports/{mine['id']}").json()["port"]
    assert (shown["status"], shown["revision_number"]) == ("ACTIVE", mine["revision_number"] + 1)
    assert admin.get(f"/ports/{theirs['id']}").json()["port"]["status"] == "DOWN"
    assert [(rid, action) for _, rtype, rid, action in change_log(baryon)
            if rtype == "port" and rid == mine["id"]] == [(mine["id"], "create"), (mine["id"], "update")]
    assert admin.get(f"/agents/{agent['id']}").json()["agent"]["realised_seq"] == seq
    [wired] = view(agents, a)["view"]["ports"]
    assert "status" not in wired  # what the agent reports is not sent back to it as a change

    # The same status again changes nothing; an older sequence does not lower realised_seq.
    again = agents.post(url, json={"agent_type": OVS, "seq": seq - 1, "ports": {mine["id"]: "ACTIVE"}}).json()
    assert (again["updated"], again["ignored"], again["seq"]) == ([], [], seq + 1)
    assert admin.get(f"/agents/{agent['id']}").json()["agent"]["realised_seq"] == seq
    down = agents.post(url, json={"agent_type": OVS, "seq": seq + 1, "ports": {mine["id"]: "DOWN"}}).json()
    assert down["updated"] == [mine["id"]]
    assert admin.get(f"/ports/{mine['id']}").json()["port"]["status"] == "DOWN"
    assert admin.get("/agents", params={"host": a}).json()["agents"][0]["realised_seq"] == seq + 1

    # Moving the port away takes it off the host: a's reports no longer touch it.
    update_port(admin, mine["id"], **{"binding:host_id": b})
    moved = agents.post(url, json={"agent_type": OVS, "seq": seq + 2, "ports": {mine["id"]: "ACTIVE"}}).json()
    assert moved["ignored"] == [mine["id"]]


def test_status_report_errors(admin: httpx.Client, agents: httpx.Client) -> None:
    host = host_name()
    url = f"/agent/v1/hosts/{host}/status"
    error = fault(agents.post(url, json={"agent_type": OVS, "seq": 1, "ports": {}}), 404, "AgentNotFoundByTypeHost")
    assert error["message"] == f"Agent with agent_type={OVS} and host={host} could not be found"
    register(admin, host)
    fault(agents.post(url, json={"agent_type": "DHCP agent", "seq": 1}), 404, "AgentNotFoundByTypeHost")
    for body in ({"agent_type": OVS}, {"agent_type": OVS, "seq": -1}, {"agent_type": OVS, "seq": 1, "ports": []},
                 {"agent_type": OVS, "seq": 1, "ports": {"x": "UP"}}, {"agent_type": OVS, "seq": 1, "extra": 1}, []):
        fault(agents.post(url, json=body), 400, "HTTPBadRequest")
    fault(agents.post(url, content=b"{not json"), 400, "HTTPBadRequest")
    assert agents.post(url, json={"agent_type": OVS, "seq": 1}).status_code == 200


# ---------------------------------------------------------------- policy


def test_the_agent_api_is_admin_only(baryon: BaryonServer, project: str) -> None:
    host = host_name()
    with httpx.Client(base_url=baryon.endpoint, headers=headers(project), timeout=30) as member:
        for response, rule in (
            (member.get(f"/agent/v1/hosts/{host}/ovs"), "get_host_view"),
            (member.get(f"/agent/v1/hosts/{host}/ovs", params={"wait": 30, "etag": "x"}), "get_host_view"),
            (member.post(f"/agent/v1/hosts/{host}/status", json={"agent_type": OVS, "seq": 1}),
             "report_port_status"),
            (member.post(f"/agent/v1/hosts/{host}/status", content=b"junk"), "report_port_status"),
            (member.get("/agent/v1/seq"), "get_change_seq"),
        ):
            assert fault(response, 403, "PolicyNotAuthorized")["message"] == f"rule:{rule} is disallowed by policy"


# ---------------------------------------------------------------- stopping


def test_stopping_the_server_ends_its_long_polls(tmp_path_factory: pytest.TempPathFactory) -> None:
    """uvicorn lets running requests finish before it stops: waiting agents must not hold it up."""
    server = BaryonServer(tmp_path_factory.mktemp("baryon-stop"), workers=2).start()
    answers: list[tuple[int, float]] = []
    host = host_name()
    try:
        with httpx.Client(base_url=server.endpoint, timeout=30) as client:
            etag = view(client, host)["etag"]

        def poll() -> None:
            with httpx.Client(base_url=server.endpoint, timeout=30) as client:
                started = time.monotonic()
                response = client.get(f"/agent/v1/hosts/{host}/ovs", params={"etag": etag, "wait": 30})
                answers.append((response.status_code, time.monotonic() - started))

        pollers = [threading.Thread(target=poll) for _ in range(4)]
        for poller in pollers:
            poller.start()
        time.sleep(0.5)  # every poll is waiting
    finally:
        started = time.monotonic()
        server.stop()
        stopped = time.monotonic() - started
    for poller in pollers:
        poller.join(timeout=10)
    assert stopped < 5.0
    assert [status for status, _ in answers] == [200] * 4
    assert max(elapsed for _, elapsed in answers) < 5.0
