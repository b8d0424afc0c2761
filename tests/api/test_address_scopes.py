"""Address scopes through the API, against a running server on every database backend.

The scope (Neutron's representation: no standard attributes; ``shared`` the admin's, never undone;
visibility; in use by a pool: 409) and what it means for subnet pools: one IP version, no two pools
of a scope sharing an address (on create, update and add_prefixes), only a scope the caller may
use, a pool in another's shared scope changed by the admin only, and a network's subnets of one IP
version all in one scope.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import fault, name
from tests.api.l3 import listed, show, update
from tests.api.test_subnetpools import allocated, network, pool, subnet_from

KEYS = {"id", "name", "project_id", "tenant_id", "shared", "ip_version"}


def scope(client: httpx.Client, version: int = 4, **attrs: Any) -> dict:
    response = client.post("/address-scopes", json={"address_scope": {"name": name("as"), "ip_version": version,
                                                                       **attrs}})
    assert response.status_code == 201, response.text
    return response.json()["address_scope"]


def test_scope_lifecycle(admin: httpx.Client, member: httpx.Client, project: str):
    made = scope(member)
    assert set(made) == KEYS and made["project_id"] == project
    assert (made["ip_version"], made["shared"]) == (4, False)
    got = member.get(f"/address-scopes/{made['id']}").json()["address_scope"]
    assert got == made
    body = member.get("/address-scopes", params={"name": made["name"]}).json()
    assert [s["id"] for s in body["address_scopes"]] == [made["id"]]
    renamed = member.put(f"/address-scopes/{made['id']}", json={"address_scope": {"name": "new_name"}})
    assert renamed.json()["address_scope"]["name"] == "new_name"
    for attrs, status, type_ in [({"shared": True}, 403, "PolicyNotAuthorized"),
                                 ({"shared": False}, 403, "PolicyNotAuthorized"),  # any value: the admin's
                                 ({"ip_version": 6}, 400, "HTTPBadRequest"),
                                 ({"description": "d"}, 400, "HTTPBadRequest")]:
        fault(member.put(f"/address-scopes/{made['id']}", json={"address_scope": attrs}), status, type_)
    fault(member.post("/address-scopes", json={"address_scope": {"name": "s", "ip_version": 4, "shared": True}}),
          403, "PolicyNotAuthorized")
    fault(member.post("/address-scopes", json={"address_scope": {"name": "s", "ip_version": 5}}),
          400, "HTTPBadRequest")

    private = scope(admin)
    fault(member.get(f"/address-scopes/{private['id']}"), 404, "AddressScopeNotFound")
    shared = scope(admin, shared=True)
    assert member.get(f"/address-scopes/{shared['id']}").json()["address_scope"]["shared"] is True
    fault(member.put(f"/address-scopes/{shared['id']}", json={"address_scope": {"name": "x"}}),
          403, "PolicyNotAuthorized")
    error = fault(admin.put(f"/address-scopes/{shared['id']}", json={"address_scope": {"shared": False}}),
                  400, "AddressScopeUpdateError")
    assert "Shared address scope can't be unshared" in error["message"]
    for scope_id in (made["id"], private["id"], shared["id"]):
        client = member if scope_id == made["id"] else admin
        assert client.delete(f"/address-scopes/{scope_id}").status_code == 204
    fault(member.get(f"/address-scopes/{made['id']}"), 404, "AddressScopeNotFound")


def test_pools_in_a_scope(admin: httpx.Client, member: httpx.Client):
    s4, s6 = scope(member), scope(member, 6)
    first = pool(member, ["20.0.0.0/18", "30.0.0.0/18"], address_scope_id=s4["id"], min_prefixlen=24)
    assert first["address_scope_id"] == s4["id"]
    for attrs, status, type_ in [
        ({"prefixes": ["40.0.0.0/18", "30.0.0.0/12"]}, 409, "AddressScopePrefixConflict"),
        ({"prefixes": ["2001:db8::/48"]}, 400, "IllegalSubnetPoolIpVersionAssociationToAddressScope"),
        ({"prefixes": ["50.0.0.0/18"], "address_scope_id": "6a0d4f4c-7a8e-4b52-9a38-4a9c3e1b7f00"},
         404, "AddressScopeNotFound"),
        ({"prefixes": ["50.0.0.0/18"], "address_scope_id": "foo-addr-scope"}, 400, "HTTPBadRequest"),
    ]:
        body = {"name": name("sp"), "address_scope_id": s4["id"], **attrs}
        fault(member.post("/subnetpools", json={"subnetpool": body}), status, type_)
        assert listed(member, "subnetpools", name=body["name"]) == []
    second = pool(member, ["20.10.0.0/24", "40.0.0.0/18"], address_scope_id=s4["id"], min_prefixlen=24)
    fault(member.put(f"/subnetpools/{first['id']}", json={"subnetpool": {"prefixes": ["20.0.0.0/12", "30.0.0.0/18"]}}),
          409, "AddressScopePrefixConflict")
    fault(member.put(f"/subnetpools/{first['id']}/add_prefixes", json={"prefixes": ["40.0.0.0/24"]}),
          409, "AddressScopePrefixConflict")
    fault(member.put(f"/subnetpools/{first['id']}", json={"subnetpool": {"address_scope_id": s6["id"]}}),
          400, "IllegalSubnetPoolIpVersionAssociationToAddressScope")
    assert show(member, "subnetpool", first["id"])["revision_number"] == 1
    fault(member.delete(f"/address-scopes/{s4['id']}"), 409, "AddressScopeInUse")

    # a network's IPv4 subnets come from pools of one scope: two pools of s4 are fine, another is not
    net = network(member)
    assert show(member, "network", net["id"])["ipv4_address_scope"] is None
    assert allocated(member, net, first["id"])["cidr"] == "20.0.0.0/24"
    # the network takes the scope of its IPv4 subnets' pools (the address-scope extension's attributes)
    shown = show(member, "network", net["id"])
    assert (shown["ipv4_address_scope"], shown["ipv6_address_scope"]) == (s4["id"], None)
    assert [n["ipv4_address_scope"] for n in listed(member, "networks", id=net["id"])] == [s4["id"]]
    assert allocated(member, net, second["id"])["cidr"] == "20.10.0.0/24"
    outside = pool(member, ["60.0.0.0/16"], min_prefixlen=24)
    fault(subnet_from(member, net, outside["id"]), 400, "NetworkAddressScopeAffinityError")
    # moving one pool to another scope would split the network's IPv4 subnets between two scopes
    other = scope(member)
    fault(member.put(f"/subnetpools/{first['id']}", json={"subnetpool": {"address_scope_id": other["id"]}}),
          400, "NetworkAddressScopeAffinityError")

    # the admin's private scope is not found; its shared one may be used, then only the admin changes the pool
    private = scope(admin)
    fault(member.put(f"/subnetpools/{outside['id']}", json={"subnetpool": {"address_scope_id": private["id"]}}),
          404, "AddressScopeNotFound")
    shared = scope(admin, shared=True)
    joined = update(member, "subnetpool", outside["id"], address_scope_id=shared["id"])
    assert joined["address_scope_id"] == shared["id"]
    fault(member.put(f"/subnetpools/{outside['id']}", json={"subnetpool": {"prefixes": ["60.0.0.0/15"]}}),
          400, "IllegalSubnetPoolUpdate")
    assert update(admin, "subnetpool", outside["id"], prefixes=["60.0.0.0/15"])["prefixes"] == ["60.0.0.0/15"]
    assert update(admin, "subnetpool", outside["id"], address_scope_id=None)["address_scope_id"] is None
    for sub in listed(member, "subnets", network_id=net["id"]):
        assert member.delete(f"/subnets/{sub['id']}").status_code == 204
    for pool_id in (first["id"], second["id"], outside["id"]):
        assert admin.delete(f"/subnetpools/{pool_id}").status_code == 204
    for scope_id in (s4["id"], s6["id"], other["id"], private["id"], shared["id"]):
        assert admin.delete(f"/address-scopes/{scope_id}").status_code == 204
