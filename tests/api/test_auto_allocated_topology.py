"""The auto-allocated topology ("get me a network") and the default external network (``is_default``),
on servers of their own, one per backend: both defaults (external network, subnet pools) are the
whole server's.

The requirements (dry-run, and Neutron's errors when a default is missing), the topology made once
for a project (network, a subnet from each default pool, a router with its gateway on the default
external network and an interface on each subnet) and removed by DELETE, who may ask for which
project, concurrent first calls making one topology, and a failure half-way that leaves nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api.helpers import fault, headers, http, name
from tests.api.l3 import create, listed, show, update
from tests.api.test_concurrency import CLIENTS, all_at_once
from tests.conftest import BACKENDS, UNLIMITED_QUOTAS
from tests.support.server import BaryonServer

PATH = "/auto-allocated-topology/"
AUTO = ("auto_allocated_network", "auto_allocated_subnet_v4", "auto_allocated_subnet_v6", "auto_allocated_router")


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    connection = ""
    if request.param != "sqlite":
        connection = request.getfixturevalue(f"{request.param}_server").create_database("baryon_auto")
    started = BaryonServer(tmp_path_factory.mktemp(f"auto-{request.param}"), connection, workers=2,
                           sections=UNLIMITED_QUOTAS).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def api(server: BaryonServer) -> Iterator[httpx.Client]:
    with http(server.endpoint) as client:
        yield client


@pytest.fixture(scope="module")
def defaults(server: BaryonServer, api: httpx.Client) -> dict:
    """Without defaults, Neutron's errors; then the default external network (``public``) and a
    default pool of each IP version, shared."""
    project = uuid.uuid4().hex
    with http(server.endpoint, project) as member:
        for fields, reason in (({"fields": "dry-run"}, "No default router:external network"),
                               ({}, "No default router:external network")):
            error = fault(member.get(PATH + project, params=fields), 409, "AutoAllocationFailure")
            assert error["message"] == f"Deployment error: {reason}."
        public = create(api, "network", name="public", is_default=True, **{"router:external": True})
        create(api, "subnet", network_id=public["id"], cidr="203.0.113.0/24", ip_version=4, enable_dhcp=False)
        for fields, reason in (({"fields": "dry-run"}, "No default subnetpools defined"),
                               ({}, "Unable to provide tenant private network")):
            error = fault(member.get(PATH + project, params=fields), 409, "AutoAllocationFailure")
            assert error["message"] == f"Deployment error: {reason}."
        assert [n["id"] for n in listed(member, "networks")] == [public["id"]]  # nothing made
    pools = [create(api, "subnetpool", name=name("v4"), prefixes=["10.200.0.0/16"], default_prefixlen=26,
                    is_default=True, shared=True),
             create(api, "subnetpool", name=name("v6"), prefixes=["2001:db8:8000::/48"], default_prefixlen=64,
                    is_default=True, shared=True)]
    return {"public": public, "pools": pools}


@pytest.fixture
def member(server: BaryonServer, project: str) -> Iterator[httpx.Client]:
    with http(server.endpoint, project) as client:
        yield client


def made(client: httpx.Client) -> dict[str, list[dict]]:
    """The project's auto-allocated resources, by name."""
    found: dict[str, list[dict]] = {n: [] for n in AUTO}
    for collection in ("networks", "subnets", "routers"):
        for item in listed(client, collection):
            if item["name"] in found:
                found[item["name"]].append(item)
    return found


def test_only_one_default_external_network(api: httpx.Client, defaults: dict, member: httpx.Client) -> None:
    public = defaults["public"]
    assert show(api, "network", public["id"])["is_default"] is True
    before = len(listed(api, "networks"))
    error = fault(api.post("/networks", json={"network": {"name": name("ext"), "is_default": True,
                                                          "router:external": True}}), 409,
                  "DefaultExternalNetworkExists")
    assert error["message"] == f"A default external network already exists: {public['id']}."
    assert len(listed(api, "networks")) == before
    other = create(api, "network", name=name("ext"), **{"router:external": True})
    fault(api.put(f"/networks/{other['id']}", json={"network": {"is_default": True}}), 409,
          "DefaultExternalNetworkExists")
    assert show(api, "network", other["id"])["revision_number"] == other["revision_number"]
    # an update without is_default keeps it; only an external network is a default one
    assert update(api, "network", public["id"], description="gman")["is_default"] is True
    assert create(api, "network", name=name("int"), is_default=True)["is_default"] is False
    for network_id in (other["id"], create(member, "network", name=name("mine"))["id"]):  # admin only
        fault(member.put(f"/networks/{network_id}", json={"network": {"is_default": True}}), 403,
              "PolicyNotAuthorized")
    # the default moves: unset it, set another, and back; turning router:external off drops it
    assert update(api, "network", public["id"], is_default=False)["is_default"] is False
    assert update(api, "network", other["id"], is_default=True)["is_default"] is True
    assert update(api, "network", other["id"], **{"router:external": False})["is_default"] is False
    assert update(api, "network", public["id"], is_default=True)["is_default"] is True
    assert api.delete(f"/networks/{other['id']}").status_code == 204


def test_topology_made_once_and_deleted(server: BaryonServer, api: httpx.Client, defaults: dict,
                                        member: httpx.Client, project: str) -> None:
    dry = member.get(PATH + project, params={"fields": "dry-run"})
    assert dry.status_code == 200 and dry.json() == {"auto_allocated_topology": {
        "id": "dry-run=pass", "project_id": project, "tenant_id": project}}
    assert made(member) == {n: [] for n in AUTO}
    first = member.get(PATH + project)
    assert first.status_code == 200, first.text
    topology = first.json()["auto_allocated_topology"]
    assert set(topology) == {"id", "project_id", "tenant_id"} and topology["project_id"] == project
    found = made(member)
    assert {n: len(v) for n, v in found.items()} == dict.fromkeys(AUTO, 1)
    [network], [router] = found["auto_allocated_network"], found["auto_allocated_router"]
    subnets = found["auto_allocated_subnet_v4"] + found["auto_allocated_subnet_v6"]
    assert network["id"] == topology["id"] and network["admin_state_up"] is True
    assert (network["project_id"], network["shared"], network["router:external"]) == (project, False, False)
    assert sorted(network["subnets"]) == sorted(s["id"] for s in subnets)
    assert [(s["subnetpool_id"], s["cidr"][-3:]) for s in subnets] == [
        (defaults["pools"][0]["id"], "/26"), (defaults["pools"][1]["id"], "/64")]
    assert router["external_gateway_info"]["network_id"] == defaults["public"]["id"]
    interfaces = listed(member, "ports", device_id=router["id"], device_owner="network:router_interface")
    assert sorted(ip["subnet_id"] for p in interfaces for ip in p["fixed_ips"]) == sorted(s["id"] for s in subnets)
    # idempotent: the same network, nothing more; "None" is the caller's project; an admin asks for any
    again = member.get(PATH + project).json()["auto_allocated_topology"]
    assert again == topology and member.get(PATH + "None").json()["auto_allocated_topology"] == topology
    assert api.get(PATH + project).json()["auto_allocated_topology"] == topology
    assert {n: len(v) for n, v in made(member).items()} == dict.fromkeys(AUTO, 1)
    fault(member.get(PATH + project, params={"fields": "id"}), 400, "BadRequest")
    with http(server.endpoint, uuid.uuid4().hex) as stranger:
        fault(stranger.get(PATH + project), 403, "NotAuthorized")
        fault(stranger.delete(PATH + project), 403, "NotAuthorized")
    with http(server.endpoint, project, roles="reader") as reader:
        assert reader.get(PATH + project).json()["auto_allocated_topology"] == topology
        fault(reader.delete(PATH + project), 403, "PolicyNotAuthorized")
    fault(api.get(PATH + "x" * 256), 400, "HTTPBadRequest")
    # DELETE removes all of it, and again is no error; the next GET makes a new one
    assert member.delete(PATH + project).status_code == 204
    assert made(member) == {n: [] for n in AUTO} and listed(member, "ports") == []
    assert member.delete(PATH + project).status_code == 204
    renewed = member.get(PATH + project).json()["auto_allocated_topology"]
    assert renewed["id"] != topology["id"]
    assert api.delete(PATH + project).status_code == 204  # an admin deletes any project's
    assert made(member) == {n: [] for n in AUTO}


def test_concurrent_first_calls_make_one_topology(server: BaryonServer, defaults: dict, member: httpx.Client,
                                                  project: str) -> None:
    responses = all_at_once(server.endpoint, lambda client, _i: [client.get("/v2.0" + PATH + project)],
                            headers(project))
    assert [r.status_code for r in responses] == [200] * CLIENTS, [r.text for r in responses]
    assert len({r.json()["auto_allocated_topology"]["id"] for r in responses}) == 1
    assert {n: len(v) for n, v in made(member).items()} == dict.fromkeys(AUTO, 1)
    assert member.delete(PATH + project).status_code == 204


def test_a_failure_half_way_leaves_nothing(api: httpx.Client, defaults: dict, member: httpx.Client,
                                           project: str) -> None:
    """The default external network has no address left for the router's gateway: 409, and neither
    the network nor the subnets made before it remain."""
    full = create(api, "network", name=name("full"), **{"router:external": True})
    create(api, "subnet", network_id=full["id"], cidr="198.51.100.0/29", ip_version=4, enable_dhcp=False,
           allocation_pools=[{"start": "198.51.100.2", "end": "198.51.100.2"}])
    create(api, "port", network_id=full["id"])  # takes the only address
    update(api, "network", defaults["public"]["id"], is_default=False)
    try:
        update(api, "network", full["id"], is_default=True)
        fault(member.get(PATH + project), 409, "IpAddressGenerationFailure")
        assert made(member) == {n: [] for n in AUTO} and listed(member, "ports") == []
    finally:
        update(api, "network", full["id"], is_default=False)
        update(api, "network", defaults["public"]["id"], is_default=True)
    assert member.get(PATH + project).status_code == 200
    assert member.delete(PATH + project).status_code == 204
