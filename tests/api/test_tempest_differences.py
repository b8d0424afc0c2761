"""Where the Neutron developers' own API tests (tempest, neutron-tempest-plugin: ``bench/tempest.py``)
found Baryon answering otherwise than Neutron, against a running server on every database backend.

Each test names the behaviour of Neutron it holds Baryon to: the ``shared`` filter on subnets,
pagination links on an empty page, string ``ip_version``s, an address added to a port by naming only
its subnet, deleting an auto-address IPv6 subnet that ports use, a remote group that is no UUID,
the attributes only a network's owner may set on a port, wrapped items in a bulk create, another
project's ``project_id``, stateful and stateless groups on one port, a group listed twice, and the
MTU a subnet needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.rest import Api, fault


@pytest.fixture
def admin(baryon) -> Iterator[Api]:
    api = Api(baryon.endpoint)
    yield api
    api.close()


@pytest.fixture
def member(baryon, project) -> Iterator[Api]:
    api = Api(baryon.endpoint, project)
    yield api
    api.close()


def post(api: Api, resource: str, **attrs) -> dict:
    return api.post(f"/v2.0/{resource}s", {resource: attrs})


def group(api: Api, **attrs) -> dict:
    response = api.post("/v2.0/security-groups", {"security_group": attrs})
    assert response.status_code == 201, response.text
    return response.json()["security_group"]


# ---------------------------------------------------------------- listing


def test_subnets_filter_on_shared_which_is_their_networks(admin: Api, member: Api, project: str):
    shared = admin.create("network", name="shared", shared=True)
    on_shared = admin.create("subnet", network_id=shared["id"], cidr="10.91.0.0/24", ip_version=4)
    own = member.create("network", name="own")
    on_own = member.create("subnet", network_id=own["id"], cidr="10.92.0.0/24", ip_version=4)
    ids = {on_shared["id"], on_own["id"]}

    def listed(value: str) -> set[str]:
        return {s["id"] for s in member.list("subnets", {"shared": value})} & ids

    assert listed("True") == {on_shared["id"]}
    assert listed("false") == {on_own["id"]}
    assert "shared" not in on_own  # a filter only, as in Neutron (not visible)
    fault(member.get("/v2.0/subnets", params={"shared": "maybe"}), 400, "InvalidInput")
    fault(post(member, "subnet", network_id=own["id"], cidr="10.93.0.0/24", ip_version=4, shared=True),
          400, "HTTPBadRequest")


def test_an_empty_page_links_back_to_the_last_one(admin: Api, project: str):
    made = [admin.create("network", name=f"pg-{i}", project_id=project) for i in range(3)]
    params = [("project_id", project), ("sort_key", "name"), ("sort_dir", "asc"), ("limit", "1")]
    last = admin.get("/v2.0/networks", params=params + [("marker", made[-1]["id"])]).json()
    assert last["networks"] == []
    links = {link["rel"]: link["href"] for link in last["networks_links"]}
    assert set(links) == {"previous"}  # a short forward page has no "next"
    query = parse_qs(urlsplit(links["previous"]).query)
    assert "marker" not in query and query["page_reverse"] == ["True"] and query["limit"] == ["1"]
    back = admin.get(urlsplit(links["previous"]).path, params=query).json()
    assert [n["name"] for n in back["networks"]] == ["pg-2"]


# ---------------------------------------------------------------- conversions and bodies


def test_ip_version_as_a_string_is_converted(member: Api):
    network = member.create("network", name="strver")
    subnet = member.create("subnet", network_id=network["id"], cidr="10.94.0.0/24", ip_version="4")
    assert subnet["ip_version"] == 4
    port = member.create("port", network_id=network["id"],
                         extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400", "ip_version": "4"}])
    assert port["extra_dhcp_opts"][0]["ip_version"] == 4
    message = fault(post(member, "subnet", network_id=network["id"], cidr="10.95.0.0/24", ip_version="x"),
                    400, "InvalidInput")
    assert message == "Invalid input for operation: 'x' is not an integer."
    fault(post(member, "subnet", network_id=network["id"], cidr="10.95.0.0/24", ip_version="5"),
          400, "HTTPBadRequest")


def test_bulk_items_may_come_wrapped(member: Api):
    response = member.post("/v2.0/security-groups", {"security_groups": [
        {"security_group": {"name": "wrapped"}}, {"name": "plain"}]})
    assert response.status_code == 201, response.text
    assert [g["name"] for g in response.json()["security_groups"]] == ["wrapped", "plain"]


def test_another_projects_id_is_a_bad_request_for_a_member(member: Api, project: str):
    network = member.create("network", name="mine")
    message = fault(post(member, "port", network_id=network["id"], project_id=uuid.uuid4().hex),
                    400, "HTTPBadRequest")
    assert message == ("Specifying 'project_id' or 'tenant_id' other than the authenticated project in request "
                       "requires admin or advsvc privileges")
    assert member.create("port", network_id=network["id"], project_id=project)["project_id"] == project


# ---------------------------------------------------------------- addresses


def test_naming_a_subnet_again_adds_an_address(member: Api):
    network = member.create("network", name="more-ips")
    subnet = member.create("subnet", network_id=network["id"], cidr="10.96.0.0/24", ip_version=4)
    port = member.create("port", network_id=network["id"])
    [first] = port["fixed_ips"]
    more = member.update("port", port["id"], fixed_ips=port["fixed_ips"] + [{"subnet_id": subnet["id"]}])
    assert [f["subnet_id"] for f in more["fixed_ips"]] == [subnet["id"], subnet["id"]]
    assert more["fixed_ips"][0] == first and more["fixed_ips"][1]["ip_address"] != first["ip_address"]
    # A subnet-only entry keeps an address the port has there that no other entry names.
    again = member.update("port", port["id"], fixed_ips=[{"subnet_id": subnet["id"]}, more["fixed_ips"][1]])
    assert sorted(f["ip_address"] for f in again["fixed_ips"]) == sorted(f["ip_address"] for f in more["fixed_ips"])
    fewer = member.update("port", port["id"], fixed_ips=[{"subnet_id": subnet["id"]}])
    assert len(fewer["fixed_ips"]) == 1


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
def test_deleting_an_auto_address_subnet_takes_its_addresses_back(admin: Api, member: Api, mode: str):
    network = member.create("network", name="auto-" + mode)
    v4 = member.create("subnet", network_id=network["id"], cidr="10.97.0.0/24", ip_version=4)
    v6 = member.create("subnet", network_id=network["id"], cidr="2001:db8:97::/64", ip_version=6,
                       ipv6_ra_mode=mode, ipv6_address_mode=mode)
    port = member.create("port", network_id=network["id"])
    assert {f["subnet_id"] for f in port["fixed_ips"]} == {v4["id"], v6["id"]}
    assert member.delete(f"/v2.0/subnets/{v6['id']}").status_code == 204
    assert [f["subnet_id"] for f in member.show("port", port["id"])["fixed_ips"]] == [v4["id"]]
    # A stateful (or IPv4) subnet with a port's address stays in use.
    fault(member.delete(f"/v2.0/subnets/{v4['id']}"), 409, "SubnetInUse")
    # A router interface keeps an auto-address subnet in use.
    v6b = member.create("subnet", network_id=network["id"], cidr="2001:db8:98::/64", ip_version=6,
                        ipv6_ra_mode=mode, ipv6_address_mode=mode)
    router = member.create("router", name="r-" + mode)
    added = member.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": v6b["id"]})
    assert added.status_code == 200, added.text
    fault(member.delete(f"/v2.0/subnets/{v6b['id']}"), 409, "SubnetInUse")
    member.put(f"/v2.0/routers/{router['id']}/remove_router_interface", {"subnet_id": v6b["id"]})


# ---------------------------------------------------------------- security groups


def test_a_remote_group_that_is_no_uuid_is_not_found(member: Api):
    own = group(member, name="g")
    message = fault(member.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": own["id"], "direction": "ingress", "remote_group_id": "bad_group_id"}}),
        404, "SecurityGroupNotFound")
    assert message == "Security group bad_group_id does not exist"


def test_a_port_has_stateful_or_stateless_groups_each_once(member: Api):
    network = member.create("network", name="sgs")
    stateful = group(member, name="full", stateful=True)
    stateless = group(member, name="less", stateful=False)
    message = fault(post(member, "port", network_id=network["id"], security_groups=[stateful["id"], stateless["id"]]),
                    409, "SecurityGroupConflict")
    assert "stateful and stateless" in message
    port = member.create("port", network_id=network["id"], security_groups=[stateless["id"]])
    fault(member.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": [stateless["id"], stateful["id"]]}}),
          409, "SecurityGroupConflict")
    twice = member.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": [stateful["id"], stateful["id"]]}})
    assert fault(twice, 400, "HTTPBadRequest").startswith(
        "Invalid input for security_groups. Reason: Duplicate items in the list:")
    assert member.show("port", port["id"])["security_groups"] == [stateless["id"]]


# ---------------------------------------------------------------- policy on another's shared network


def test_only_the_network_owner_sets_port_security_and_address_pairs(admin: Api, member: Api):
    shared = admin.create("network", name="shared-ps", shared=True)
    admin.create("subnet", network_id=shared["id"], cidr="10.98.0.0/24", ip_version=4)
    for attrs in ({"port_security_enabled": False}, {"allowed_address_pairs": [{"ip_address": "1.1.1.1"}]}):
        message = fault(post(member, "port", network_id=shared["id"], **attrs), 403, "PolicyNotAuthorized")
        assert message == f"(rule:create_port and rule:create_port:{next(iter(attrs))}) is disallowed by policy"
    port = member.create("port", network_id=shared["id"])
    fault(member.put(f"/v2.0/ports/{port['id']}", {"port": {"allowed_address_pairs": [{"ip_address": "1.1.1.1"}]}}),
          403, "PolicyNotAuthorized")
    assert member.show("port", port["id"])["allowed_address_pairs"] == []
    # On its own network the member may.
    own = member.create("network", name="own-ps")
    mine = member.create("port", network_id=own["id"], port_security_enabled=False)
    assert mine["port_security_enabled"] is False


# ---------------------------------------------------------------- MTU


def test_a_subnet_needs_the_mtu_of_its_ip_version(member: Api):
    tiny = member.create("network", name="mtu-67", mtu=67)
    assert tiny["mtu"] == 67
    fault(post(member, "subnet", network_id=tiny["id"], cidr="10.99.0.0/24", ip_version=4), 409,
          "NetworkMTUSubnetConflict")
    small = member.create("network", name="mtu-1279", mtu=1279)
    fault(post(member, "subnet", network_id=small["id"], cidr="2001:db8:99::/64", ip_version=6), 409,
          "NetworkMTUSubnetConflict")
    member.create("subnet", network_id=small["id"], cidr="10.99.0.0/24", ip_version=4)
    fault(member.put(f"/v2.0/networks/{small['id']}", {"network": {"mtu": 67}}), 409, "NetworkMTUSubnetConflict")
    assert member.show("network", small["id"])["mtu"] == 1279
    edge = member.create("network", name="mtu-1280", mtu=1280)
    v6 = member.create("subnet", network_id=edge["id"], cidr="2001:db8:9a::/64", ip_version=6)
    fault(member.put(f"/v2.0/networks/{edge['id']}", {"network": {"mtu": 1279}}), 409, "NetworkMTUSubnetConflict")
    assert member.show("network", edge["id"])["mtu"] == 1280
    assert member.delete(f"/v2.0/subnets/{v6['id']}").status_code == 204
    assert member.update("network", edge["id"], mtu=1279)["mtu"] == 1279  # no IPv6 subnet left


# ---------------------------------------------------------------- a routed gateway


def test_a_gateway_a_router_holds_cannot_move_or_go(member: Api):
    net = member.create("network", name="gw-routed")
    subnet = member.create("subnet", network_id=net["id"], cidr="10.98.0.0/24", ip_version=4,
                           allocation_pools=[{"start": "10.98.0.100", "end": "10.98.0.104"}])
    # no router port yet: the gateway moves freely
    assert member.update("subnet", subnet["id"], gateway_ip="10.98.0.2")["gateway_ip"] == "10.98.0.2"
    router = member.create("router", name="gw-routed")
    path = f"/v2.0/routers/{router['id']}"
    added = member.put(f"{path}/add_router_interface", {"subnet_id": subnet["id"]})
    assert added.status_code == 200, added.text
    interface = member.show("port", added.json()["port_id"])
    assert interface["fixed_ips"][0]["ip_address"] == "10.98.0.2"
    for gateway in ("10.98.0.3", None):
        message = fault(member.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"gateway_ip": gateway}}),
                        409, "GatewayIpInUse")
        assert "10.98.0.2" in message and interface["id"] in message
    held = member.show("subnet", subnet["id"])
    assert (held["gateway_ip"], held["revision_number"]) == ("10.98.0.2", subnet["revision_number"] + 1)
    # the same address is no move; other attributes change as before
    assert member.update("subnet", subnet["id"], gateway_ip="10.98.0.2", name="kept")["name"] == "kept"
    removed = member.put(f"{path}/remove_router_interface", {"subnet_id": subnet["id"]})
    assert removed.status_code == 200, removed.text
    assert member.update("subnet", subnet["id"], gateway_ip=None)["gateway_ip"] is None


def test_a_gateway_moved_while_a_router_takes_it_stays_with_the_router(baryon, member: Api, project: str):
    """Concurrent gateway moves and interface adds: the interface always holds the gateway."""
    others = [Api(baryon.endpoint, project) for _ in range(2)]
    try:
        for i in range(6):
            net = member.create("network", name=f"gw-race-{i}")
            subnet = member.create("subnet", network_id=net["id"], cidr=f"10.97.{i}.0/24", ip_version=4,
                                   allocation_pools=[{"start": f"10.97.{i}.100", "end": f"10.97.{i}.110"}])
            router = member.create("router", name=f"gw-race-{i}")
            with ThreadPoolExecutor(2) as pool:
                moved = pool.submit(others[0].put, f"/v2.0/subnets/{subnet['id']}",
                                    {"subnet": {"gateway_ip": f"10.97.{i}.5"}})
                added = pool.submit(others[1].put, f"/v2.0/routers/{router['id']}/add_router_interface",
                                    {"subnet_id": subnet["id"]})
                moved, added = moved.result(), added.result()
            assert added.status_code == 200, added.text
            assert moved.status_code in (200, 409), moved.text
            gateway = member.show("subnet", subnet["id"])["gateway_ip"]
            held = member.show("port", added.json()["port_id"])["fixed_ips"][0]["ip_address"]
            assert held == gateway == (f"10.97.{i}.5" if moved.status_code == 200 else f"10.97.{i}.1")
    finally:
        for api in others:
            api.close()
