"""Quotas through the API, on every database backend.

Neutron's defaults on a server of its own (the shared servers run without limits); on the
shared servers, limits set per fresh project with ``PUT /v2.0/quotas/{project}``: show, list,
update (validation, usage check, ``force``), reset, ``/default``, ``/details``, who may do what,
409 ``OverQuota`` with nothing created (also for bulk), and concurrent creates past a limit:
exactly the limit succeeds. openstacksdk and httpx; the ``openstack quota`` commands look the
project up in Keystone, which a noauth deployment does not have, so they are not used here.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openstack.exceptions
import pytest

from tests.api.helpers import fault, http, sdk
from tests.support.server import BaryonServer

NEUTRON_DEFAULTS = {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
                    "security_group": 10, "security_group_rule": 100, "subnetpool": -1, "rbac_policy": 10}
UNLIMITED = dict.fromkeys(NEUTRON_DEFAULTS, -1)


@pytest.fixture(scope="module", params=["sqlite"])
def stock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    """A SQLite server with Neutron's default quotas (nothing in [quotas])."""
    server = BaryonServer(Path(tmp_path_factory.mktemp("baryon-quota-defaults"))).start()
    yield server
    server.stop()


def set_quota(client: httpx.Client, project: str, **limits) -> dict:
    response = client.put(f"/quotas/{project}", json={"quota": limits})
    assert response.status_code == 200, response.text
    return response.json()["quota"]


def get(client: httpx.Client, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def create_network(client: httpx.Client, name: str = "n") -> httpx.Response:
    return client.post("/networks", json={"network": {"name": name}})


def network_count(admin: httpx.Client, project: str) -> int:
    return len(get(admin, f"/networks?project_id={project}")["networks"])


# ---------------------------------------------------------------- Neutron's defaults


def test_neutron_default_quotas(stock: BaryonServer):
    project = uuid.uuid4().hex
    with http(stock.endpoint) as admin, http(stock.endpoint, project) as member:
        assert get(admin, f"/quotas/{project}/default") == {"quota": NEUTRON_DEFAULTS}
        assert get(admin, f"/quotas/{project}") == {"quota": NEUTRON_DEFAULTS}
        assert get(member, f"/quotas/{project}") == {"quota": NEUTRON_DEFAULTS}
        assert get(member, f"/quotas/{project}/default.json") == {"quota": NEUTRON_DEFAULTS}
        details = get(member, f"/quotas/{project}/details")["quota"]
        assert details == {r: {"limit": limit, "used": 0, "reserved": 0} for r, limit in NEUTRON_DEFAULTS.items()}
        # No project has limits of its own yet.
        assert get(admin, "/quotas") == {"quotas": []}
    conn = sdk(stock.endpoint)
    default = conn.network.get_quota_default(project)
    assert (default.networks, default.subnets, default.ports, default.routers, default.floating_ips,
            default.security_groups, default.security_group_rules) == (100, 100, 500, 10, 50, 10, 100)


def test_defaults_apply_to_creates(stock: BaryonServer):
    """10 security groups per project by default, the default group among them."""
    project = uuid.uuid4().hex
    with http(stock.endpoint, project) as member:
        codes = [member.post("/security-groups", json={"security_group": {"name": f"g{i}"}}).status_code
                 for i in range(10)]
        assert codes == [201] * 9 + [409]
        assert len(get(member, "/security-groups")["security_groups"]) == 10
        used = get(member, f"/quotas/{project}/details")["quota"]["security_group"]
        assert used == {"limit": 10, "used": 10, "reserved": 0}


# ---------------------------------------------------------------- show, update, reset


def test_show_update_reset(admin: httpx.Client, member: httpx.Client, project: str):
    assert get(member, f"/quotas/{project}") == {"quota": UNLIMITED}
    updated = set_quota(admin, project, network=5, port=0, subnet=-1)
    assert updated == {**UNLIMITED, "network": 5, "port": 0}
    assert get(member, f"/quotas/{project}.json") == {"quota": updated}
    listed = {q["project_id"]: q for q in get(admin, "/quotas")["quotas"]}
    assert listed[project] == {**updated, "project_id": project, "tenant_id": project}
    assert get(admin, f"/quotas/{project}/default") == {"quota": UNLIMITED}
    assert set_quota(admin, project, network=7)["network"] == 7
    assert admin.delete(f"/quotas/{project}").status_code == 204
    assert get(member, f"/quotas/{project}") == {"quota": UNLIMITED}
    assert project not in {q["project_id"] for q in get(admin, "/quotas")["quotas"]}
    error = fault(admin.delete(f"/quotas/{project}"), 404, "TenantQuotaNotFound")
    assert error["message"] == f"Quota for tenant {project} could not be found."


def test_own_project(member: httpx.Client, project: str):
    assert get(member, "/quotas/project") == {"project": {"project_id": project}}
    assert get(member, "/quotas/tenant") == {"tenant": {"tenant_id": project}}


@pytest.mark.parametrize(("body", "message"), [
    ({"network": -2}, "Invalid input for network. Reason: '-2' is too small - must be at least '-1'."),
    ({"port": 2**31}, f"Invalid input for port. Reason: '{2**31}' is too large - must be no more than '{2**31 - 1}'."),
    ({"address_scope": 3}, "Unrecognized attribute(s) 'address_scope'"),
    ({"floatingips": 3}, "Unrecognized attribute(s) 'floatingips'"),
])
def test_invalid_limits(admin: httpx.Client, project: str, body: dict, message: str):
    error = fault(admin.put(f"/quotas/{project}", json={"quota": body}), 400, "HTTPBadRequest")
    assert error["message"] == message
    fault(admin.put(f"/quotas/{project}", json={"quota": {"network": "many"}}), 400, "InvalidInput")
    fault(admin.put(f"/quotas/{project}", json={"quotas": {"network": 1}}), 400, "HTTPBadRequest")
    assert get(admin, f"/quotas/{project}") == {"quota": UNLIMITED}
    fault(admin.delete(f"/quotas/{project}"), 404, "TenantQuotaNotFound")


def test_a_limit_below_usage_needs_force(admin: httpx.Client, member: httpx.Client, project: str):
    for i in range(3):
        assert create_network(member, f"n{i}").status_code == 201
    error = fault(admin.put(f"/quotas/{project}", json={"quota": {"network": 2}}), 400, "HTTPBadRequest")
    assert error["message"] == "Quota limit 2 for network must be greater than or equal to already used 3"
    fault(admin.put(f"/quotas/{project}", json={"quota": {"network": 2, "check_limit": True}}),
          400, "HTTPBadRequest")
    assert set_quota(admin, project, network=3)["network"] == 3
    assert set_quota(admin, project, network=1, force=True)["network"] == 1
    error = fault(create_network(member), 409, "OverQuota")
    assert error["message"] == "Quota exceeded for resources: ['network']."
    details = get(member, f"/quotas/{project}/details")["quota"]
    assert details["network"] == {"limit": 1, "used": 3, "reserved": 0}


def test_who_may_do_what(baryon: BaryonServer, member: httpx.Client, project: str):
    other = uuid.uuid4().hex
    error = fault(member.get("/quotas"), 403, "PolicyNotAuthorized")
    assert error["message"] == "rule:get_quota is disallowed by policy"
    fault(member.get(f"/quotas/{other}"), 403, "PolicyNotAuthorized")
    fault(member.get(f"/quotas/{other}/default"), 403, "PolicyNotAuthorized")
    error = fault(member.get(f"/quotas/{other}/details"), 403, "AdminRequired")
    assert error["message"] == ("User does not have admin privileges: "
                                "Only admin is authorized to access quotas for another tenant.")
    error = fault(member.put(f"/quotas/{project}", json={"quota": {"network": 50}}), 403, "PolicyNotAuthorized")
    assert error["message"] == "rule:update_quota is disallowed by policy"
    fault(member.put(f"/quotas/{project}", json={"quota": {"network": "not even valid"}}), 403, "PolicyNotAuthorized")
    error = fault(member.delete(f"/quotas/{project}"), 403, "PolicyNotAuthorized")
    assert error["message"] == "rule:delete_quota is disallowed by policy"
    with http(baryon.endpoint, project, roles="reader") as reader:
        assert get(reader, f"/quotas/{project}") == {"quota": UNLIMITED}
        fault(reader.put(f"/quotas/{project}", json={"quota": {"network": 50}}), 403, "PolicyNotAuthorized")
    assert get(member, f"/quotas/{project}") == {"quota": UNLIMITED}


def test_quotas_through_openstacksdk(baryon: BaryonServer, project: str):
    admin = sdk(baryon.endpoint)
    quota = admin.network.update_quota(project, networks=4, security_group_rules=40)
    assert (quota.networks, quota.security_group_rules, quota.ports) == (4, 40, -1)
    assert admin.network.get_quota(project).networks == 4
    member = sdk(baryon.endpoint, project)
    member.network.create_network(name="one")
    details = member.network.get_quota(project, details=True)
    assert details.networks == {"limit": 4, "used": 1, "reserved": 0}
    assert project in {q.project_id for q in admin.network.quotas()}
    with pytest.raises(openstack.exceptions.ForbiddenException):
        member.network.update_quota(project, networks=100)
    admin.network.delete_quota(project)
    assert admin.network.get_quota(project).networks == -1


# ---------------------------------------------------------------- OverQuota: nothing created


def test_over_quota_creates_nothing(admin: httpx.Client, member: httpx.Client, project: str):
    set_quota(admin, project, network=2, subnet=1, port=2)
    assert create_network(member, "a").status_code == 201
    response = member.post("/networks", json={"networks": [{"name": "b"}, {"name": "c"}]})
    fault(response, 409, "OverQuota")
    assert network_count(admin, project) == 1
    network = create_network(member, "b").json()["network"]
    fault(create_network(member, "c"), 409, "OverQuota")
    subnet = member.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.0.0.0/24",
                                                      "ip_version": 4}})
    assert subnet.status_code == 201
    fault(member.post("/subnets", json={"subnet": {"network_id": network["id"], "cidr": "10.0.1.0/24",
                                                   "ip_version": 4}}), 409, "OverQuota")
    response = member.post("/ports", json={"ports": [{"network_id": network["id"]} for _ in range(3)]})
    error = fault(response, 409, "OverQuota")
    assert error["message"] == "Quota exceeded for resources: ['port']."
    assert get(admin, f"/ports?network_id={network['id']}")["ports"] == []
    # An admin creating in the project counts against the project's quota too.
    response = admin.post("/networks", json={"network": {"name": "d", "project_id": project}})
    fault(response, 409, "OverQuota")
    assert network_count(admin, project) == 2
    # Deleting frees the room.
    assert member.delete(f"/networks/{network['id']}").status_code == 204
    assert create_network(member, "e").status_code == 201


def test_zero_means_none_and_minus_one_unlimited(admin: httpx.Client, member: httpx.Client, project: str):
    set_quota(admin, project, network=0)
    fault(create_network(member), 409, "OverQuota")
    set_quota(admin, project, network=-1)
    response = member.post("/networks", json={"networks": [{"name": f"n{i}"} for i in range(12)]})
    assert response.status_code == 201


# ---------------------------------------------------------------- concurrency


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_concurrent_creates_past_the_limit(baryon: BaryonServer, admin: httpx.Client, project: str, bulk: bool):
    """10 clients at once, quota 5: exactly 5 networks exist afterwards, every refusal a 409."""
    limit, clients = 5, 10
    set_quota(admin, project, network=limit)
    barrier = threading.Barrier(clients)

    def create(index: int) -> httpx.Response:
        with http(baryon.endpoint, project) as client:
            client.get("/networks")  # connected before the start line
            barrier.wait(timeout=30)
            if bulk and index % 2:
                return client.post("/networks", json={"networks": [{"name": f"b{index}-{i}"} for i in range(2)]})
            return create_network(client, f"n{index}")

    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(create, range(clients)))
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    made = sum(len(r.json().get("networks", [r.json().get("network")])) for r in responses if r.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            fault(response, 409, "OverQuota")
    assert made == network_count(admin, project)
    if bulk:
        assert limit - 1 <= made <= limit  # a bulk of two may not fit in the last free place
    else:
        assert made == limit
        assert sorted(r.status_code for r in responses) == [201] * limit + [409] * (clients - limit)
