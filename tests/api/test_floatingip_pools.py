"""Floating IP pools (floatingip-pools) through the API, on every backend.

Every IPv4 subnet of an external network is a pool, seen by every project with the caller's
project id; an IPv6 subnet or a non-external network's subnet is none; filters, fields, refusals;
a floating IP taken from a pool's subnet; with httpx and openstacksdk.
"""

from __future__ import annotations

import ipaddress

import httpx

from tests.api.helpers import fault, sdk
from tests.api.l3 import create, external, private
from tests.support.server import BaryonServer


def pools(client: httpx.Client, **params: object) -> list[dict]:
    response = client.get("/floatingip-pools", params=params)
    assert response.status_code == 200, response.text
    return response.json()["floatingip_pools"]


def test_pools_are_the_ipv4_subnets_of_external_networks(baryon: BaryonServer, project: str, admin: httpx.Client,
                                                          member: httpx.Client):
    ext, first = external(admin, "198.18.10.0/24")
    second = create(admin, "subnet", network_id=ext["id"], cidr="198.18.11.0/24", ip_version=4, enable_dhcp=False)
    create(admin, "subnet", network_id=ext["id"], cidr="2001:db8:18::/64", ip_version=6, enable_dhcp=False)
    _net, inner = private(member, "10.18.0.0/24")

    mine = pools(member, network_id=ext["id"])
    assert sorted(mine, key=lambda p: p["cidr"]) == [
        {"subnet_id": s["id"], "subnet_name": s["name"], "network_id": ext["id"], "cidr": s["cidr"],
         "tenant_id": project, "project_id": project} for s in (first, second)]
    everything = {p["subnet_id"] for p in pools(member)}
    assert {first["id"], second["id"]} <= everything and inner["id"] not in everything
    assert [p["subnet_id"] for p in pools(member, subnet_id=second["id"])] == [second["id"]]
    assert pools(member, network_id=ext["id"], cidr="198.18.10.0/24", fields="cidr") == [{"cidr": "198.18.10.0/24"}]
    assert "shared" in fault(member.get("/floatingip-pools", params={"shared": "1"}), 400, "HTTPBadRequest")["message"]
    assert member.post("/floatingip-pools", json={"floatingip_pool": {}}).status_code == 405

    # A floating IP from one pool's subnet (openstacksdk, as a project member).
    conn = sdk(baryon.endpoint, project)
    [pool] = [p for p in conn.network.get("/floatingip-pools").json()["floatingip_pools"]
              if p["subnet_id"] == second["id"]]
    fip = conn.network.create_ip(floating_network_id=pool["network_id"], subnet_id=pool["subnet_id"])
    assert ipaddress.ip_address(fip.floating_ip_address) in ipaddress.ip_network(pool["cidr"])
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert "floatingip-pools" in aliases
