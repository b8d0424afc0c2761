"""Subnet pools and subnet allocation through the API, against a running server on every backend.

The pool itself (its representation, with the prefix lengths as strings as Neutron shows them;
prefixes compacted; bounds; prefixes that may grow but not shrink; the admin's ``shared`` and
``is_default``; visibility; tags, filters and sorting; delete refused while subnets use it), the
prefix operations (subnetpool-prefix-ops), and subnets allocated from it (Neutron's best fit, a
given CIDR, the bounds, the per-project ``default_quota``, one pool per network and IP version, the
default pool, and concurrent allocations that never overlap). Every refusal: its code, its type, and
nothing changed. With httpx, openstacksdk and the ``openstack`` CLI.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import cli, fault, headers, name, sdk, timestamp
from tests.api.l3 import create, listed, show, update
from tests.api.test_concurrency import CLIENTS, all_at_once
from tests.support.server import BaryonServer

KEYS = {"id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number",
        "tags", "ip_version", "default_prefixlen", "min_prefixlen", "max_prefixlen", "is_default", "shared",
        "prefixes", "default_quota", "address_scope_id"}


def pool(client: httpx.Client, prefixes: list[str], **attrs: Any) -> dict:
    return create(client, "subnetpool", name=attrs.pop("name", name("sp")), prefixes=prefixes, **attrs)


def network(client: httpx.Client) -> dict:
    return create(client, "network", name=name("net"))


def subnet_from(client: httpx.Client, net: dict, pool_id: str | None, version: int = 4, **attrs: Any) -> httpx.Response:
    body = {"network_id": net["id"], "ip_version": version, **attrs}
    if pool_id:
        body["subnetpool_id"] = pool_id
    return client.post("/subnets", json={"subnet": body})


def allocated(client: httpx.Client, net: dict, pool_id: str, **attrs: Any) -> dict:
    response = subnet_from(client, net, pool_id, **attrs)
    assert response.status_code == 201, response.text
    return response.json()["subnet"]


def test_pool_lifecycle(member: httpx.Client, admin: httpx.Client):
    created = pool(member, ["10.11.12.0/24", "10.11.13.0/24", "10.11.12.128/25"], min_prefixlen="29",
                   description="d1")
    assert set(created) == KEYS
    assert created["prefixes"] == ["10.11.12.0/23"]  # compacted, as Neutron stores them
    assert (created["min_prefixlen"], created["default_prefixlen"], created["max_prefixlen"]) == ("29", "29", "32")
    assert (created["ip_version"], created["shared"], created["is_default"]) == (4, False, False)
    assert created["default_quota"] is None and created["address_scope_id"] is None
    assert created["revision_number"] == 1 and created["tags"] == [] and created["description"] == "d1"
    timestamp(created["created_at"])
    assert show(member, "subnetpool", created["id"]) == created
    assert [p["id"] for p in listed(member, "subnetpools", name=created["name"])] == [created["id"]]
    assert created["id"] in [p["id"] for p in listed(member, "subnetpools", min_prefixlen=29, ip_version=4)]
    assert created["id"] not in [p["id"] for p in listed(member, "subnetpools", ip_version=6)]

    changed = update(member, "subnetpool", created["id"], name="renamed", min_prefixlen=28, max_prefixlen="30",
                     prefixes=["10.11.0.0/16"])
    assert (changed["name"], changed["min_prefixlen"], changed["max_prefixlen"]) == ("renamed", "28", "30")
    assert changed["prefixes"] == ["10.11.0.0/16"] and changed["revision_number"] == 2
    assert show(member, "subnetpool", created["id"]) == changed

    pid = created["id"]
    for attrs, status, type_ in [
        ({"prefixes": ["10.11.12.0/26"]}, 400, "IllegalSubnetPoolPrefixUpdate"),  # may not shrink
        ({"prefixes": ["2001:db8::/32"]}, 400, "IllegalSubnetPoolPrefixUpdate"),
        ({"shared": True}, 400, "HTTPBadRequest"),  # set at creation only
        ({"project_id": "another"}, 400, "HTTPBadRequest"),
        ({"min_prefixlen": 31}, 400, "IllegalSubnetPoolPrefixBounds"),  # above max_prefixlen 30
        ({"default_prefixlen": 8}, 400, "IllegalSubnetPoolPrefixBounds"),
        ({"is_default": False}, 403, "PolicyNotAuthorized"),  # the admin's, whatever the value
    ]:
        fault(member.put(f"/subnetpools/{pid}", json={"subnetpool": attrs}), status, type_)
    assert show(member, "subnetpool", pid) == changed
    assert member.delete(f"/subnetpools/{pid}").status_code == 204
    fault(member.get(f"/subnetpools/{pid}"), 404, "SubnetPoolNotFound")
    fault(member.delete(f"/subnetpools/{pid}"), 404, "SubnetPoolNotFound")


@pytest.mark.parametrize(("attrs", "status", "type_", "message"), [
    ({"prefixes": []}, 400, "EmptySubnetPoolPrefixList", "Empty subnet pool prefix list."),
    ({"prefixes": ["10.0.0.0/8", "2001:db8::/32"]}, 400, "PrefixVersionMismatch",
     "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."),
    ({"min_prefixlen": 24, "max_prefixlen": 16}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: min_prefixlen=24, max_prefixlen=16."),
    ({"max_prefixlen": 33}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: max_prefixlen=33, ip_version_max=32."),
    ({"min_prefixlen": 16, "default_prefixlen": 12}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: default_prefixlen=12, min_prefixlen=16."),
    ({"prefixes": ["10.0.0.0/33"]}, 400, "HTTPBadRequest", None),
    ({"name": ""}, 400, "HTTPBadRequest", None),
    ({"shared": True}, 403, "PolicyNotAuthorized", None),
    ({"is_default": True}, 403, "PolicyNotAuthorized", None),
])
def test_bad_pools_are_refused(member: httpx.Client, attrs: dict, status: int, type_: str, message: str | None):
    body = {"name": name("bad"), "prefixes": ["10.0.0.0/8"], **attrs}
    error = fault(member.post("/subnetpools", json={"subnetpool": body}), status, type_)
    if message:
        assert error["message"] == message
    assert listed(member, "subnetpools", name=body["name"] or "x") == []


def test_visibility_and_sharing(admin: httpx.Client, member: httpx.Client):
    private = pool(admin, ["10.40.0.0/16"])
    fault(member.get(f"/subnetpools/{private['id']}"), 404, "SubnetPoolNotFound")
    assert private["id"] not in [p["id"] for p in listed(member, "subnetpools")]
    fault(subnet_from(member, network(member), private["id"], prefixlen=24), 404, "SubnetPoolNotFound")
    shared = pool(admin, ["10.41.0.0/16"], shared=True, min_prefixlen=24)
    assert show(member, "subnetpool", shared["id"])["shared"] is True
    fault(member.put(f"/subnetpools/{shared['id']}", json={"subnetpool": {"name": "x"}}), 403, "PolicyNotAuthorized")
    fault(member.delete(f"/subnetpools/{shared['id']}"), 403, "PolicyNotAuthorized")
    sub = allocated(member, network(member), shared["id"])  # a project allocates from a shared pool
    assert sub["cidr"] == "10.41.0.0/24" and sub["subnetpool_id"] == shared["id"]
    assert member.delete(f"/subnets/{sub['id']}").status_code == 204
    for pool_id in (private["id"], shared["id"]):
        assert admin.delete(f"/subnetpools/{pool_id}").status_code == 204


def test_allocation(member: httpx.Client):
    sp = pool(member, ["10.30.0.0/24", "10.31.0.0/16"], min_prefixlen=24, max_prefixlen=28)
    net = network(member)
    first = allocated(member, net, sp["id"])  # default_prefixlen: min_prefixlen
    assert first["cidr"] == "10.30.0.0/24"  # the smallest free block that fits (Neutron's best fit)
    assert first["gateway_ip"] == "10.30.0.1"
    assert first["allocation_pools"] == [{"start": "10.30.0.2", "end": "10.30.0.254"}]
    small = allocated(member, network(member), sp["id"], prefixlen=28)
    assert small["cidr"] == "10.31.0.0/28"
    # what the /28 left: .16/28 .32/27 .64/26 .128/25, then 10.31.1.0/24: the first /24
    assert allocated(member, network(member), sp["id"], prefixlen="24")["cidr"] == "10.31.1.0/24"
    given = allocated(member, network(member), sp["id"], cidr="10.31.9.0/25", gateway_ip="10.31.9.126",
                      allocation_pools=[{"start": "10.31.9.10", "end": "10.31.9.20"}])
    assert (given["cidr"], given["gateway_ip"]) == ("10.31.9.0/25", "10.31.9.126")
    assert given["allocation_pools"] == [{"start": "10.31.9.10", "end": "10.31.9.20"}]

    other = network(member)
    for attrs, status, type_, message in [
        ({"cidr": "10.31.9.0/26"}, 409, "SubnetAllocationError",
         "Failed to allocate subnet: Cannot allocate requested subnet from the available set of prefixes."),
        ({"cidr": "192.168.0.0/24"}, 409, "SubnetAllocationError", None),
        ({"prefixlen": 30}, 400, "MaxPrefixSubnetAllocationError",
         "Unable to allocate subnet with prefix length 30, maximum allowed prefix is 28."),
        ({"prefixlen": 20}, 400, "MinPrefixSubnetAllocationError", None),
        ({"cidr": "10.31.20.0/24", "prefixlen": 24}, 400, "BadRequest",
         "Bad subnets request: cidr and prefixlen must not be supplied together."),
        ({"allocation_pools": [{"start": "10.31.0.2", "end": "10.31.0.9"}]}, 400, "BadRequest",
         "Bad subnets request: allocation_pools allowed only for specific subnet requests.."),  # sic, as Neutron
        ({"ip_version": 6}, 400, "BadRequest",
         "Bad subnets request: Cannot allocate IPv6 subnet from IPv4 subnet pool."),
    ]:
        error = fault(subnet_from(member, other, sp["id"], **attrs), status, type_)
        assert message is None or error["message"] == message
    fault(subnet_from(member, other, "6a0d4f4c-7a8e-4b52-9a38-4a9c3e1b7f00"), 404, "SubnetPoolNotFound")
    fault(subnet_from(member, other, None), 400, "BadRequest")  # no cidr and no pool
    assert listed(member, "subnets", network_id=other["id"]) == []

    # one pool per network and IP version
    mixed = network(member)
    allocated(member, mixed, None, cidr="172.16.0.0/24")
    fault(subnet_from(member, mixed, sp["id"]), 400, "NetworkSubnetPoolAffinityError")
    fault(subnet_from(member, net, None, cidr="172.16.1.0/24"), 400, "NetworkSubnetPoolAffinityError")
    assert allocated(member, net, sp["id"], prefixlen=26)["cidr"] == "10.31.0.64/26"  # same pool: fine
    assert allocated(member, net, None, ip_version=6, cidr="2001:db8:9::/64")["subnetpool_id"] is None

    fault(member.delete(f"/subnetpools/{sp['id']}"), 400, "SubnetPoolDeleteError")
    assert show(member, "subnetpool", sp["id"])["revision_number"] == 1


def test_quotas(admin: httpx.Client, member: httpx.Client, project: str):
    assert admin.get(f"/quotas/{project}").json()["quota"]["subnetpool"] == -1  # Neutron: default_quota
    assert admin.put(f"/quotas/{project}", json={"quota": {"subnetpool": 1}}).status_code == 200
    sp = pool(member, ["10.50.0.0/24"], min_prefixlen=28, default_quota=24)  # 24 addresses: one /28 + one /29
    fault(member.post("/subnetpools", json={"subnetpool": {"name": "two", "prefixes": ["10.51.0.0/24"]}}),
          409, "OverQuota")
    assert sp["default_quota"] == 24
    allocated(member, network(member), sp["id"])
    allocated(member, network(member), sp["id"], prefixlen=29)
    error = fault(subnet_from(member, network(member), sp["id"], prefixlen=29), 409, "SubnetPoolQuotaExceeded")
    assert error["message"] == "Per-tenant subnet pool prefix quota exceeded."


def test_exhaustion_and_prefix_ops(member: httpx.Client):
    sp = pool(member, ["192.168.1.0/24", "10.10.10.0/24"], min_prefixlen=16, default_prefixlen=24)
    assert sp["prefixes"] == ["10.10.10.0/24", "192.168.1.0/24"]
    pid = sp["id"]
    added = member.put(f"/subnetpools/{pid}/add_prefixes", json={"prefixes": ["192.168.2.0/24", "10.10.0.0/16"]})
    assert added.status_code == 200, added.text
    after = ["10.10.0.0/16", "192.168.1.0/24", "192.168.2.0/24"]  # .1 and .2 make no /23
    assert added.json() == {"prefixes": after}
    shown = show(member, "subnetpool", pid)
    assert shown["prefixes"] == after and shown["revision_number"] == 2
    used = allocated(member, network(member), pid, cidr="192.168.2.0/24")
    fault(member.put(f"/subnetpools/{pid}/remove_prefixes", json={"prefixes": ["192.168.2.0/24"]}),
          400, "IllegalSubnetPoolPrefixUpdate")
    removed = member.put(f"/subnetpools/{pid}/remove_prefixes", json={"prefixes": ["10.10.0.0/16", "192.168.1.0/24"]})
    assert removed.json() == {"prefixes": ["192.168.2.0/24"]}
    fault(subnet_from(member, network(member), pid), 409, "SubnetAllocationError")  # every prefix in use
    untouched = member.put(f"/subnetpools/{pid}/remove_prefixes", json={"prefixes": ["172.16.0.0/12"]})
    assert untouched.json() == {"prefixes": ["192.168.2.0/24"]}
    fault(member.put(f"/subnetpools/{pid}/add_prefixes", json={"prefixes": "10.0.0.0/8"}), 400, "HTTPBadRequest")
    fault(member.put(f"/subnetpools/{pid}/add_prefixes", json={"pools": []}), 400, "HTTPBadRequest")
    assert member.delete(f"/subnets/{used['id']}").status_code == 204
    assert member.delete(f"/subnetpools/{pid}").status_code == 204  # no subnet left


def test_tags_sorting_and_pages(member: httpx.Client):
    tag = name("tag")
    made = [pool(member, [f"10.{60 + i}.0.0/16"], name=f"{tag}-{i}", tags=[tag]) for i in range(3)]
    assert member.put(f"/subnetpools/{made[0]['id']}/tags/extra").status_code == 201
    assert show(member, "subnetpool", made[0]["id"])["tags"] == ["extra", tag]
    assert [p["name"] for p in listed(member, "subnetpools", tags=tag, sort_key="name", sort_dir="desc")] == \
        [f"{tag}-2", f"{tag}-1", f"{tag}-0"]
    response = member.get("/subnetpools", params={"tags": tag, "sort_key": "name", "sort_dir": "asc", "limit": 2})
    assert response.status_code == 200, response.text
    page = response.json()
    assert [p["name"] for p in page["subnetpools"]] == [f"{tag}-0", f"{tag}-1"]
    assert [link["rel"] for link in page["subnetpools_links"]] == ["next", "previous"]
    fault(member.get("/subnetpools", params={"prefixes": "10.0.0.0/8"}), 400, "HTTPBadRequest")


@pytest.fixture
def default_v6(admin: httpx.Client) -> Iterator[dict]:
    """The server's default IPv6 pool for one test (one default per IP version, server-wide)."""
    made = pool(admin, ["2001:db8:3::/48"], is_default=True, shared=True, min_prefixlen=64)
    yield made
    for sub in listed(admin, "subnets", subnetpool_id=made["id"]):
        admin.delete(f"/subnets/{sub['id']}")
    assert admin.delete(f"/subnetpools/{made['id']}").status_code == 204


def test_default_pool(admin: httpx.Client, member: httpx.Client, default_v6: dict):
    assert default_v6["is_default"] is True and default_v6["ip_version"] == 6
    fault(admin.post("/subnetpools", json={"subnetpool": {"name": "d2", "prefixes": ["2001:db8:4::/48"],
                                                            "is_default": True}}), 400, "InvalidInput")
    net = network(member)
    sub = allocated(member, net, None, ip_version=6, use_default_subnetpool=True, ipv6_address_mode="slaac",
                    ipv6_ra_mode="slaac")
    assert sub["subnetpool_id"] == default_v6["id"] and sub["cidr"] == "2001:db8:3::/64"
    assert "use_default_subnetpool" not in sub and "prefixlen" not in sub
    fault(subnet_from(member, net, default_v6["id"], ip_version=6, use_default_subnetpool=True), 400, "BadRequest")
    if not listed(admin, "subnetpools", is_default=True, ip_version=4):
        error = fault(subnet_from(member, network(member), None, use_default_subnetpool=True), 400, "BadRequest")
        assert error["message"] == "Bad subnets request: No default subnetpool found for IPv4."


def test_concurrent_allocations_never_overlap(baryon: BaryonServer, member: httpx.Client, project: str):
    sp = pool(member, ["10.70.0.0/20"], min_prefixlen=24)  # room for exactly 16 /24s
    nets = [network(member)["id"] for _ in range(CLIENTS * 2)]

    def work(client: httpx.Client, index: int) -> list[Any]:
        return [client.post("/v2.0/subnets", json={"subnet": {
            "network_id": nets[2 * index + k], "ip_version": 4, "subnetpool_id": sp["id"]}}) for k in range(2)]

    responses = all_at_once(baryon.endpoint, work, headers(project))
    assert [r.status_code for r in responses] == [201] * len(nets), [r.text for r in responses if r.status_code != 201]
    cidrs = sorted(ipaddress.ip_network(r.json()["subnet"]["cidr"]) for r in responses)
    assert cidrs == list(ipaddress.ip_network("10.70.0.0/20").subnets(new_prefix=24))
    fault(subnet_from(member, network(member), sp["id"]), 409, "SubnetAllocationError")


def test_clients(baryon: BaryonServer, admin: httpx.Client, project: str):
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert {"subnet_allocation", "default-subnetpools", "subnetpool-prefix-ops", "address-scope"} <= aliases
    conn = sdk(baryon.endpoint, project)
    made = conn.network.create_subnet_pool(name=name("sdk"), prefixes=["10.80.0.0/16"], default_prefix_length=26)
    assert made.default_prefix_length in (26, "26") and made.prefixes == ["10.80.0.0/16"]
    net = conn.network.create_network(name=name("net"))
    sub = conn.network.create_subnet(network_id=net.id, ip_version=4, subnet_pool_id=made.id, prefix_length=27)
    assert sub.cidr == "10.80.0.0/27"
    shown = cli(baryon.endpoint, "subnet", "pool", "show", made.id, "-f", "json")  # as the admin
    assert shown["prefixes"] in (["10.80.0.0/16"], "10.80.0.0/16") and str(shown["default_prefixlen"]) == "26"
