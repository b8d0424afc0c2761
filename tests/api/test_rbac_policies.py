"""RBAC policies through the API, against a running server on every database backend.

Networks shared with one project (visibility of the network and its subnets, ports on it, ``shared``
per caller and as a filter, the wildcard entry behind ``shared``), external access granted to one
project (the network turns external, a router gateway on it), subnet pools, address scopes,
security groups and address groups shared with one project; who may create, see, retarget and
delete a policy; the 409 while the target project still uses the object; bad input refused with
nothing changed; the quota; concurrent duplicate creates; a policy's delete racing a rule that
needs it.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import fault, http, name
from tests.api.l3 import create, listed, show, update
from tests.support.server import BaryonServer

KEYS = {"id", "project_id", "tenant_id", "object_type", "object_id", "action", "target_tenant"}


@pytest.fixture
def other(baryon: BaryonServer) -> Iterator[httpx.Client]:
    """A second project's member."""
    with http(baryon.endpoint, uuid.uuid4().hex) as client:
        yield client


def project_of(client: httpx.Client) -> str:
    return client.headers["X-Project-Id"]


def policy(client: httpx.Client, object_type: str, object_id: str, target: str,
           action: str = "access_as_shared") -> dict:
    response = client.post("/rbac-policies", json={"rbac_policy": {
        "object_type": object_type, "object_id": object_id, "action": action, "target_tenant": target}})
    assert response.status_code == 201, response.text
    return response.json()["rbac_policy"]


def policies(client: httpx.Client, **params: Any) -> list[dict]:
    response = client.get("/rbac-policies", params=params)
    assert response.status_code == 200, response.text
    return response.json()["rbac_policies"]


def wildcards(admin: httpx.Client, object_id: str, action: str) -> list[dict]:
    return policies(admin, object_id=object_id, action=action, target_tenant="*")


def made(client: httpx.Client, path: str, key: str, **attrs: Any) -> dict:
    response = client.post(path, json={key: attrs})
    assert response.status_code == 201, response.text
    return response.json()[key]


def test_network_shared_with_one_project(admin: httpx.Client, member: httpx.Client, other: httpx.Client,
                                         project: str):
    net = create(member, "network", name=name("rbac"))
    sub = create(member, "subnet", network_id=net["id"], cidr="10.7.0.0/24", ip_version=4)
    fault(other.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    fault(other.post("/rbac-policies", json={"rbac_policy": {  # another's invisible network
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": project_of(other)}}), 404, "NetworkNotFound")

    pol = policy(member, "network", net["id"], project_of(other))
    assert set(pol) == KEYS and pol["project_id"] == project and pol["target_tenant"] == project_of(other)
    assert member.get(f"/rbac-policies/{pol['id']}").json()["rbac_policy"] == pol
    seen = show(other, "network", net["id"])
    assert seen["shared"] is True and show(member, "network", net["id"])["shared"] is False
    assert seen["revision_number"] > net["revision_number"]  # a policy change bumps the network
    assert show(other, "subnet", sub["id"])["id"] == sub["id"]
    assert [n["id"] for n in listed(other, "networks", shared=True, id=net["id"])] == [net["id"]]
    assert listed(other, "networks", shared=False, id=net["id"]) == []
    assert [n["id"] for n in listed(member, "networks", shared=False, id=net["id"])] == [net["id"]]
    assert [s["id"] for s in listed(other, "subnets", shared=True, network_id=net["id"])] == [sub["id"]]
    assert listed(other, "subnets", shared=False, network_id=net["id"]) == []
    # The target sees the network but not the policy, and may not grant on it.
    fault(other.get(f"/rbac-policies/{pol['id']}"), 404, "RbacPolicyNotFound")
    assert policies(other) == []
    fault(other.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": uuid.uuid4().hex}}), 400, "InvalidInput")
    fault(other.put(f"/networks/{net['id']}", json={"network": {"name": "x"}}), 403, "PolicyNotAuthorized")

    fault(member.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": project_of(other)}}), 409, "DuplicateRbacPolicy")
    fault(member.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": "*"}}), 403, "PolicyNotAuthorized")
    fault(member.put(f"/rbac-policies/{pol['id']}", json={"rbac_policy": {"target_tenant": "*"}}),
          403, "PolicyNotAuthorized")

    # A port of the target's holds the policy, unless another entry (the wildcard) grants access.
    port = create(other, "port", network_id=net["id"])
    fault(member.delete(f"/rbac-policies/{pol['id']}"), 409, "RbacPolicyInUse")
    fault(member.put(f"/rbac-policies/{pol['id']}", json={"rbac_policy": {"target_tenant": project}}),
          409, "RbacPolicyInUse")
    assert show(other, "port", port["id"])["network_id"] == net["id"]
    update(admin, "network", net["id"], shared=True)
    assert len(wildcards(admin, net["id"], "access_as_shared")) == 1
    assert member.delete(f"/rbac-policies/{pol['id']}").status_code == 204
    fault(admin.put(f"/networks/{net['id']}", json={"network": {"shared": False}}), 409, "InvalidSharedSetting")
    assert show(member, "network", net["id"])["shared"] is True
    assert other.delete(f"/ports/{port['id']}").status_code == 204
    assert update(admin, "network", net["id"], shared=False)["shared"] is False
    assert wildcards(admin, net["id"], "access_as_shared") == []
    fault(other.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")

    # Retargeting; the network's deletion takes its policies with it.
    pol = policy(member, "network", net["id"], project_of(other))
    moved = member.put(f"/rbac-policies/{pol['id']}", json={"rbac_policy": {"target_tenant": project}})
    moved = moved.json()["rbac_policy"]
    assert moved == {**pol, "target_tenant": project}
    fault(other.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    assert show(member, "network", net["id"])["shared"] is True  # shared with its own project
    assert member.delete(f"/networks/{net['id']}").status_code == 204
    fault(member.get(f"/rbac-policies/{pol['id']}"), 404, "RbacPolicyNotFound")


def test_external_access_for_one_project(admin: httpx.Client, member: httpx.Client, project: str):
    net = create(admin, "network", name=name("ext"))
    create(admin, "subnet", network_id=net["id"], cidr="198.51.100.0/24", ip_version=4, enable_dhcp=False)
    pol = policy(admin, "network", net["id"], project, action="access_as_external")
    assert show(admin, "network", net["id"])["router:external"] is True  # converted to external
    assert wildcards(admin, net["id"], "access_as_external") == []
    seen = show(member, "network", net["id"])
    assert (seen["router:external"], seen["shared"]) == (True, False)
    router = create(member, "router", name=name("r"), external_gateway_info={"network_id": net["id"]})
    fault(admin.delete(f"/rbac-policies/{pol['id']}"), 409, "RbacPolicyInUse")
    wild = policy(admin, "network", net["id"], "*", action="access_as_external")
    assert admin.delete(f"/rbac-policies/{pol['id']}").status_code == 204
    fault(admin.delete(f"/rbac-policies/{wild['id']}"), 409, "RbacPolicyInUse")
    assert member.delete(f"/routers/{router['id']}").status_code == 204
    assert admin.delete(f"/rbac-policies/{wild['id']}").status_code == 204
    assert show(admin, "network", net["id"])["router:external"] is False  # the last entry gone
    fault(member.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    # The attribute makes (and its removal takes) the wildcard entry.
    update(admin, "network", net["id"], **{"router:external": True})
    assert len(wildcards(admin, net["id"], "access_as_external")) == 1
    pol = policy(admin, "network", net["id"], project, action="access_as_external")
    assert admin.delete(f"/rbac-policies/{wildcards(admin, net['id'], 'access_as_external')[0]['id']}").status_code \
        == 204
    # The last external entry turns the network internal: not under a router gateway, the owner's too.
    own = create(admin, "router", name=name("r"), external_gateway_info={"network_id": net["id"]})
    fault(admin.delete(f"/rbac-policies/{pol['id']}"), 409, "ExternalNetworkInUse")
    assert admin.delete(f"/routers/{own['id']}").status_code == 204
    policy(admin, "network", net["id"], "*", action="access_as_external")
    update(admin, "network", net["id"], **{"router:external": False})
    assert policies(admin, object_id=net["id"]) == []
    assert admin.delete(f"/networks/{net['id']}").status_code == 204


def test_pools_scopes_and_groups_shared(admin: httpx.Client, member: httpx.Client, other: httpx.Client,
                                        project: str):
    scope = made(admin, "/address-scopes", "address_scope", name=name("as"), ip_version=4)
    fault(member.get(f"/address-scopes/{scope['id']}"), 404, "AddressScopeNotFound")
    scope_pol = policy(admin, "address_scope", scope["id"], project)
    assert member.get(f"/address-scopes/{scope['id']}").json()["address_scope"]["shared"] is True
    mine = create(member, "subnetpool", name=name("sp"), prefixes=["10.90.0.0/16"], address_scope_id=scope["id"])
    fault(admin.delete(f"/rbac-policies/{scope_pol['id']}"), 409, "RbacPolicyInUse")
    # The member's pool is in a scope not shared with the other project: it can't be shared there.
    fault(member.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "subnetpool", "object_id": mine["id"], "action": "access_as_shared",
        "target_tenant": project_of(other)}}), 400, "InvalidInput")
    assert member.delete(f"/subnetpools/{mine['id']}").status_code == 204

    pool = create(admin, "subnetpool", name=name("sp"), prefixes=["10.91.0.0/16"], default_prefixlen=24)
    fault(member.get(f"/subnetpools/{pool['id']}"), 404, "SubnetPoolNotFound")
    pool_pol = policy(admin, "subnetpool", pool["id"], project)
    assert show(member, "subnetpool", pool["id"])["shared"] is True
    assert show(admin, "subnetpool", pool["id"])["shared"] is False
    net = create(member, "network", name=name("n"))
    create(member, "subnet", network_id=net["id"], ip_version=4, subnetpool_id=pool["id"])
    fault(admin.delete(f"/rbac-policies/{pool_pol['id']}"), 409, "RbacPolicyInUse")
    assert member.delete(f"/networks/{net['id']}").status_code == 204
    assert admin.delete(f"/rbac-policies/{pool_pol['id']}").status_code == 204
    fault(member.get(f"/subnetpools/{pool['id']}"), 404, "SubnetPoolNotFound")

    group = made(admin, "/security-groups", "security_group", name=name("sg"))
    fault(member.get(f"/security-groups/{group['id']}"), 404, "SecurityGroupNotFound")
    group_pol = policy(admin, "security_group", group["id"], project)
    seen = member.get(f"/security-groups/{group['id']}").json()["security_group"]
    assert seen["shared"] is True and len(seen["security_group_rules"]) == 2
    fault(member.put(f"/security-groups/{group['id']}", json={"security_group": {"name": "x"}}),
          403, "PolicyNotAuthorized")
    net = create(member, "network", name=name("n"))
    port = create(member, "port", network_id=net["id"], security_groups=[group["id"]])
    fault(admin.delete(f"/rbac-policies/{group_pol['id']}"), 409, "RbacPolicyInUse")
    assert member.delete(f"/networks/{net['id']}").status_code == 409  # (the port is there)
    assert member.delete(f"/ports/{port['id']}").status_code == 204
    assert admin.delete(f"/rbac-policies/{group_pol['id']}").status_code == 204
    for path in (f"/security-groups/{group['id']}", f"/subnetpools/{pool['id']}",
                 f"/address-scopes/{scope['id']}"):
        assert admin.delete(path).status_code == 204, path
    assert policies(admin, object_id=scope["id"]) == []  # gone with their object
    assert member.delete(f"/networks/{net['id']}").status_code == 204


@pytest.mark.parametrize("attrs, type_", [
    ({"object_type": "router"}, "InvalidInput"),
    ({"action": "access_as_external", "object_type": "subnetpool"}, "InvalidActionForType"),
    ({"action": "access_as_nothing"}, "InvalidActionForType"),
    ({"target_tenant": None}, "HTTPBadRequest"),
    ({"target_tenant": "1234" * 100}, "HTTPBadRequest"),
    ({"target_tenant": "a", "target_project": "b"}, "HTTPBadRequest"),
    ({"object_id": "not-a-uuid"}, "HTTPBadRequest"),
    ({"unknown": 1}, "HTTPBadRequest"),
])
def test_bad_policies_are_refused(admin: httpx.Client, attrs: dict, type_: str):
    net = create(admin, "network", name=name("bad"))
    body: dict[str, Any] = {"object_type": "network", "object_id": net["id"], "action": "access_as_shared",
                            "target_tenant": uuid.uuid4().hex, **attrs}
    fault(admin.post("/rbac-policies", json={"rbac_policy": body}), 400, type_)
    missing = {k: v for k, v in body.items() if k != "target_tenant" and k not in attrs}
    fault(admin.post("/rbac-policies", json={"rbac_policy": missing}), 400, "HTTPBadRequest")
    assert policies(admin, object_id=net["id"]) == []
    assert show(admin, "network", net["id"])["revision_number"] == net["revision_number"]
    assert admin.delete(f"/networks/{net['id']}").status_code == 204


def test_listing_quota_and_concurrent_duplicates(admin: httpx.Client, member: httpx.Client, project: str):
    net = create(member, "network", name=name("list"))
    targets = sorted(uuid.uuid4().hex for _ in range(3))
    mine = [policy(member, "network", net["id"], t) for t in targets]
    page = member.get("/rbac-policies", params={"limit": 2, "sort_key": "target_tenant", "sort_dir": "desc"}).json()
    assert [p["target_tenant"] for p in page["rbac_policies"]] == targets[::-1][:2]
    assert [link["rel"] for link in page["rbac_policies_links"]] == ["next", "previous"]
    fields = member.get("/rbac-policies", params={"fields": ["project_id", "target_tenant"]}).json()
    assert all(set(p) == {"project_id", "target_tenant"} for p in fields["rbac_policies"])
    assert [p["id"] for p in policies(member, target_project=targets[1])] == [mine[1]["id"]]
    assert policies(member, object_type="subnetpool") == []

    assert admin.put(f"/quotas/{project}", json={"quota": {"rbac_policy": 4}}).status_code == 200
    policy(member, "network", net["id"], uuid.uuid4().hex)
    fault(member.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
        "target_tenant": uuid.uuid4().hex}}), 409, "OverQuota")

    # Concurrent creates of one entry: one is made, the others are 409s.
    target = uuid.uuid4().hex
    body = {"rbac_policy": {"object_type": "network", "object_id": net["id"], "action": "access_as_shared",
                            "target_tenant": target}}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: admin.post("/rbac-policies", json=body).status_code, range(4)))
    assert codes == [201, 409, 409, 409]
    assert len(policies(admin, object_id=net["id"], target_tenant=target)) == 1
    assert member.delete(f"/networks/{net['id']}").status_code == 204
    assert policies(admin, object_id=net["id"]) == []


def test_a_policy_removed_while_its_target_makes_ports_leaves_no_port_behind(admin: httpx.Client, member: httpx.Client,
                                                                              other: httpx.Client):
    """Ports made by the target project race the removal of the entry that lets it: either the
    removal is refused (409, the ports stay) or it succeeds and no port of the target is left on
    the network (its creates got 404)."""
    net = create(member, "network", name=name("rbac-race"))
    create(member, "subnet", network_id=net["id"], cidr="10.9.0.0/24", ip_version=4)
    for _ in range(4):
        pol = policy(member, "network", net["id"], project_of(other))
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            creates = [pool.submit(other.post, "/ports", json={"port": {"network_id": net["id"]}}) for _ in range(3)]
            removal = pool.submit(member.delete, f"/rbac-policies/{pol['id']}")
            codes = sorted(f.result().status_code for f in creates)
            removed = removal.result()
        assert set(codes) <= {201, 404}, codes
        mine = [p for p in listed(admin, "ports", network_id=net["id"]) if p["project_id"] == project_of(other)]
        if removed.status_code == 204:
            assert mine == [], "a port of the target outlived the entry that let it be made"
        else:
            assert removed.status_code == 409 and removed.json()["NeutronError"]["type"] == "RbacPolicyInUse"
            assert len(mine) == codes.count(201) > 0
            for port in mine:
                assert admin.delete(f"/ports/{port['id']}").status_code == 204
            assert member.delete(f"/rbac-policies/{pol['id']}").status_code == 204


def dashed(client: httpx.Client, path: str, **params: Any) -> list[dict]:
    """A list of a collection whose path has dashes (``address-groups``)."""
    response = client.get(f"/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()[path.replace("-", "_")]


def test_address_group_shared(admin: httpx.Client, member: httpx.Client, other: httpx.Client, project: str):
    ag = made(admin, "/address-groups", "address_group", name=name("ag"), addresses=["10.5.0.0/16"])
    fault(member.get(f"/address-groups/{ag['id']}"), 404, "AddressGroupNotFound")
    pol = policy(admin, "address_group", ag["id"], project)
    seen = member.get(f"/address-groups/{ag['id']}").json()["address_group"]
    assert seen == {**ag, "revision_number": ag["revision_number"] + 1, "updated_at": seen["updated_at"]}
    assert "shared" not in seen  # as Neutron: the attribute exists but is not shown
    assert [g["id"] for g in dashed(member, "address-groups", id=ag["id"])] == [ag["id"]]
    assert dashed(other, "address-groups", id=ag["id"]) == []
    # Seen, not changed (Neutron: 404), nor granted on.
    fault(member.put(f"/address-groups/{ag['id']}", json={"address_group": {"name": "x"}}),
          404, "AddressGroupNotFound")
    fault(member.put(f"/address-groups/{ag['id']}/add_addresses", json={"addresses": ["10.6.0.0/16"]}),
          404, "AddressGroupNotFound")
    fault(member.delete(f"/address-groups/{ag['id']}"), 404, "AddressGroupNotFound")
    fault(member.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "address_group", "object_id": ag["id"], "action": "access_as_shared",
        "target_tenant": project_of(other)}}), 400, "InvalidInput")
    fault(admin.post("/rbac-policies", json={"rbac_policy": {
        "object_type": "address_group", "object_id": ag["id"], "action": "access_as_external",
        "target_tenant": project}}), 400, "InvalidActionForType")
    assert admin.get(f"/address-groups/{ag['id']}").json()["address_group"]["addresses"] == ["10.5.0.0/16"]

    # Usable in the target's rules only; a rule holds the entry unless the wildcard grants it.
    rule = {"direction": "ingress", "protocol": "tcp", "remote_address_group_id": ag["id"]}
    sg, other_sg = made(member, "/security-groups", "security_group", name=name("sg")), \
        made(other, "/security-groups", "security_group", name=name("sg"))
    used = made(member, "/security-group-rules", "security_group_rule", security_group_id=sg["id"], **rule)
    fault(other.post("/security-group-rules", json={"security_group_rule": {
        **rule, "security_group_id": other_sg["id"]}}), 404, "AddressGroupNotFound")
    fault(admin.delete(f"/rbac-policies/{pol['id']}"), 409, "RbacPolicyInUse")
    fault(admin.put(f"/rbac-policies/{pol['id']}", json={"rbac_policy": {"target_tenant": project_of(other)}}),
          409, "RbacPolicyInUse")
    wild = policy(admin, "address_group", ag["id"], "*")
    made(other, "/security-group-rules", "security_group_rule", security_group_id=other_sg["id"], **rule)
    assert admin.delete(f"/rbac-policies/{pol['id']}").status_code == 204
    fault(admin.delete(f"/rbac-policies/{wild['id']}"), 409, "RbacPolicyInUse")
    assert member.get(f"/address-groups/{ag['id']}").status_code == 200
    assert member.delete(f"/security-group-rules/{used['id']}").status_code == 204
    assert admin.delete(f"/security-groups/{other_sg['id']}").status_code == 204
    assert admin.delete(f"/rbac-policies/{wild['id']}").status_code == 204
    fault(member.get(f"/address-groups/{ag['id']}"), 404, "AddressGroupNotFound")

    # Retargeting moves the access; a policy's delete racing a rule that needs it: one of them loses.
    pol = policy(admin, "address_group", ag["id"], project_of(other))
    moved = admin.put(f"/rbac-policies/{pol['id']}", json={"rbac_policy": {"target_tenant": project}})
    assert moved.json()["rbac_policy"] == {**pol, "target_tenant": project}
    fault(other.get(f"/address-groups/{ag['id']}"), 404, "AddressGroupNotFound")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        dropped = pool.submit(admin.delete, f"/rbac-policies/{pol['id']}")
        added = pool.submit(member.post, "/security-group-rules", json={"security_group_rule": {
            **rule, "security_group_id": sg["id"]}})
        codes = (dropped.result().status_code, added.result().status_code)
    assert codes in ((204, 404), (409, 201)), codes
    rules = [r for r in dashed(admin, "security-group-rules", security_group_id=sg["id"])
             if r["remote_address_group_id"] == ag["id"]]
    assert len(rules) == (codes[1] == 201) and len(policies(admin, object_id=ag["id"])) == (codes[0] == 409)

    # The group's entries go with it.
    assert member.delete(f"/security-groups/{sg['id']}").status_code == 204
    policy(admin, "address_group", ag["id"], project_of(other))
    assert admin.delete(f"/address-groups/{ag['id']}").status_code == 204
    assert policies(admin, object_id=ag["id"]) == []
