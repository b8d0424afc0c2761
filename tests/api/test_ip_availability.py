"""Network IP availability (network-ip-availability, -details) through the API, on every backend.

Totals from allocation pools (or the CIDR), used addresses from ports (inside a pool or not), the
per-subnet entries and their details, IPv6 totals past 64 bits, list and show, the filters, and
Neutron's admin-only policy; with httpx for exact bodies, openstacksdk and the ``openstack`` CLI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api import helpers
from tests.api.rest import Api, fault, sdk

PATH = "/v2.0/network-ip-availabilities"
KEYS = {"network_id", "network_name", "tenant_id", "project_id", "subnet_ip_availability", "used_ips", "total_ips",
        "ip_availability_details"}
SUBNET_KEYS = {"subnet_id", "subnet_name", "ip_version", "cidr", "used_ips", "total_ips", "ip_availability_details"}


@pytest.fixture
def admin(baryon) -> Iterator[Api]:
    api = Api(baryon.endpoint)
    yield api
    api.close()


def listed(api: Api, **params: object) -> list[dict]:
    response = api.get(PATH, params=params)
    assert response.status_code == 200, response.text
    return response.json()["network_ip_availabilities"]


def shown(api: Api, network_id: str, **params: object) -> dict:
    response = api.get(f"{PATH}/{network_id}", params=params or None)
    assert response.status_code == 200, response.text
    return response.json()["network_ip_availability"]


def details(total_subnet: int, total_pool: int, used_subnet: int, used_pool: int) -> dict:
    return {"total_ips_in_subnet": total_subnet, "total_ips_in_allocation_pool": total_pool,
            "used_ips_in_subnet": used_subnet, "used_ips_in_allocation_pool": used_pool}


def test_totals_and_used_addresses_follow_subnets_and_ports(admin: Api, project: str):
    network = admin.create("network", name="avail", project_id=project)
    empty = shown(admin, network["id"])
    assert set(empty) == KEYS
    assert (empty["network_name"], empty["tenant_id"], empty["project_id"]) == ("avail", project, project)
    assert (empty["total_ips"], empty["used_ips"], empty["subnet_ip_availability"]) == (0, 0, [])
    assert empty["ip_availability_details"] == details(0, 0, 0, 0)

    # A /24 with its default pool: 256 less the network, gateway and broadcast addresses.
    v4 = admin.create("subnet", network_id=network["id"], cidr="10.1.0.0/24", ip_version=4, name="v4",
                      enable_dhcp=False)
    # A pool of ten, and an address outside it: used on the subnet, not in the pool.
    small = admin.create("subnet", network_id=network["id"], cidr="10.2.0.0/24", ip_version=4, enable_dhcp=False,
                         allocation_pools=[{"start": "10.2.0.100", "end": "10.2.0.109"}])
    ports = [admin.create("port", network_id=network["id"], fixed_ips=[{"subnet_id": v4["id"]}]) for _ in range(2)]
    admin.create("port", network_id=network["id"], fixed_ips=[{"subnet_id": small["id"], "ip_address": "10.2.0.5"},
                                                               {"subnet_id": small["id"]}])
    body = shown(admin, network["id"])
    by_cidr = {s["cidr"]: s for s in body["subnet_ip_availability"]}
    assert all(set(s) == SUBNET_KEYS for s in by_cidr.values())
    assert by_cidr["10.1.0.0/24"] == {
        "subnet_id": v4["id"], "subnet_name": "v4", "ip_version": 4, "cidr": "10.1.0.0/24", "used_ips": 2,
        "total_ips": 253, "ip_availability_details": details(254, 253, 2, 2)}
    assert (by_cidr["10.2.0.0/24"]["total_ips"], by_cidr["10.2.0.0/24"]["used_ips"]) == (10, 2)
    assert by_cidr["10.2.0.0/24"]["ip_availability_details"] == details(254, 10, 2, 1)
    assert (body["total_ips"], body["used_ips"]) == (263, 4)
    assert body["ip_availability_details"] == details(508, 263, 4, 3)

    # An IPv6 /64: its pool alone passes 2**63; two of them pass 64 bits, and still come whole.
    for prefix in ("2001:db8:1::/64", "2001:db8:2::/64"):
        admin.create("subnet", network_id=network["id"], cidr=prefix, ip_version=6, enable_dhcp=False)
    body = shown(admin, network["id"])
    assert body["total_ips"] == 263 + 2 * (2**64 - 2)  # the pool leaves out the router anycast and the gateway
    assert body["used_ips"] == 4
    assert body["ip_availability_details"]["total_ips_in_subnet"] == 508 + 2 * 2**64

    # A port deleted frees its address at once.
    assert admin.delete(f"/v2.0/ports/{ports[0]['id']}").status_code == 204
    [again] = listed(admin, network_id=network["id"], ip_version=4)
    assert [(s["cidr"], s["used_ips"]) for s in sorted(again["subnet_ip_availability"], key=lambda s: s["cidr"])] == [
        ("10.1.0.0/24", 1), ("10.2.0.0/24", 2)]
    assert (again["total_ips"], again["used_ips"]) == (263, 3)


def test_filters_and_fields(admin: Api, project: str):
    v4_net, _ = admin.network_with_subnet("10.3.0.0/28", enable_dhcp=False)
    v6_net = admin.create("network", name="v6-only", project_id=project)
    admin.create("subnet", network_id=v6_net["id"], cidr="2001:db8:3::/120", ip_version=6, enable_dhcp=False)
    bare = admin.create("network", name="bare", project_id=project)
    both = [v4_net["id"], v6_net["id"], bare["id"]]

    assert {a["network_id"] for a in listed(admin, network_id=both)} == set(both)
    assert {a["network_id"] for a in listed(admin, project_id=project)} == {v6_net["id"], bare["id"]}
    assert {a["network_id"] for a in listed(admin, tenant_id=project)} == {v6_net["id"], bare["id"]}
    assert [a["network_id"] for a in listed(admin, network_id=both, network_name="bare")] == [bare["id"]]
    # ip_version keeps that version's subnets and drops networks without one.
    [only_v6] = listed(admin, network_id=both, ip_version=6)
    assert only_v6["network_id"] == v6_net["id"] and only_v6["total_ips"] == 254
    assert [a["network_id"] for a in listed(admin, network_id=both, ip_version=4)] == [v4_net["id"]]
    [small] = listed(admin, network_id=v4_net["id"], fields=["network_id", "total_ips"])
    assert small == {"network_id": v4_net["id"], "total_ips": 13}
    assert shown(admin, v4_net["id"], fields="used_ips") == {"used_ips": 0}
    # No pagination nor sorting on this resource (Neutron's neither): the parameters are ignored.
    assert len(listed(admin, network_id=both, limit=1, sort_key="network_id", sort_dir="asc")) == 3

    assert "shared" in fault(admin.get(PATH, params={"shared": "true"}), 400, "HTTPBadRequest")
    assert "ip_version" in fault(admin.get(PATH, params={"ip_version": "5"}), 400, "HTTPBadRequest")


def test_admin_only_unknown_networks_and_read_only(baryon, admin: Api, project: str):
    mine = admin.create("network", name="members", project_id=project)
    member = Api(baryon.endpoint, project)
    try:
        # Neutron's policy: admin only. A listing is empty; a show is "not found" for a network
        # that exists, to give nothing away, and NetworkNotFound for one that does not.
        assert listed(member, network_id=mine["id"]) == []
        fault(member.get(f"{PATH}/{mine['id']}"), 404, "HTTPNotFound")
    finally:
        member.close()
    missing = "0d9f9dc4-5a2b-4f6c-9d53-2f1f0e6ab001"
    assert missing in fault(admin.get(f"{PATH}/{missing}"), 404, "NetworkNotFound")
    assert admin.post(PATH, {"network_ip_availability": {}}).status_code == 405
    assert admin.put(f"{PATH}/{mine['id']}", {"network_ip_availability": {}}).status_code == 405
    aliases = {e["alias"] for e in admin.get("/v2.0/extensions").json()["extensions"]}
    assert {"network-ip-availability", "network-ip-availability-details"} <= aliases


def test_openstacksdk_and_cli(baryon, admin: Api):
    network, subnet = admin.network_with_subnet("10.4.0.0/29", enable_dhcp=False)
    admin.create("port", network_id=network["id"])
    conn = sdk(baryon.endpoint)
    found = conn.network.get_network_ip_availability(network["id"])
    assert (found.network_name, found.total_ips, found.used_ips) == (network["name"], 5, 1)
    assert found.subnet_ip_availability[0]["subnet_id"] == subnet["id"]
    assert network["id"] in {a.network_id for a in conn.network.network_ip_availabilities(network_id=network["id"])}
    out = helpers.cli(baryon.endpoint, "ip", "availability", "show", network["id"], "-f", "json")
    assert (out["network_id"], out["total_ips"], out["used_ips"]) == (network["id"], 5, 1)
