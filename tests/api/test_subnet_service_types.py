"""Subnet service types (subnet-service-types) through the API, on the shared server, every backend.

The attribute: set on create, changed and cleared on update (each a new revision), filtered on,
through httpx and the ``openstack`` CLI; Neutron's 400s for bad service types, nothing changed.
IPAM as Neutron's: a port takes its address from a subnet reserved for its device owner before a
general one, never from a subnet reserved for others (by default or when asked for one by id or
address), a DHCP port from any subnet with DHCP; a network whose subnets are all reserved for
others refuses the port (409 IpAddressGenerationFailureNoMatchingSubnet) unless it asks for no address.
"""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from tests.api.helpers import cli, fault, name
from tests.support.server import BaryonServer

GATEWAY = "network:router_gateway"
NOVA = "compute:nova"


def network(client: httpx.Client) -> str:
    response = client.post("/networks", json={"network": {"name": name("net")}})
    assert response.status_code == 201, response.text
    return response.json()["network"]["id"]


def subnet(client: httpx.Client, network_id: str, cidr: str, **attrs) -> httpx.Response:
    return client.post("/subnets", json={"subnet": {"network_id": network_id, "ip_version": 4, "cidr": cidr,
                                                    **attrs}})


def made(client: httpx.Client, network_id: str, cidr: str, **attrs) -> dict:
    response = subnet(client, network_id, cidr, **attrs)
    assert response.status_code == 201, response.text
    return response.json()["subnet"]


def port(client: httpx.Client, network_id: str, **attrs) -> httpx.Response:
    return client.post("/ports", json={"port": {"network_id": network_id, **attrs}})


def subnets_of(response: httpx.Response) -> list[str]:
    assert response.status_code == 201, response.text
    return [ip["subnet_id"] for ip in response.json()["port"]["fixed_ips"]]


def test_attribute_set_updated_cleared_and_filtered(baryon: BaryonServer, member: httpx.Client):
    net = network(member)
    plain = made(member, net, "10.1.0.0/24")
    typed = made(member, net, "10.1.1.0/24", service_types=[GATEWAY, NOVA])
    assert plain["service_types"] == [] and typed["service_types"] == [GATEWAY, NOVA]
    changed = member.put(f"/subnets/{plain['id']}", json={"subnet": {"service_types": ["compute:"]}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["subnet"]["service_types"] == ["compute:"]
    assert changed.json()["subnet"]["revision_number"] > plain["revision_number"]
    listed = member.get("/subnets", params={"network_id": net, "service_types": NOVA}).json()["subnets"]
    assert [s["id"] for s in listed] == [typed["id"]]
    cleared = member.put(f"/subnets/{plain['id']}", json={"subnet": {"service_types": []}}).json()["subnet"]
    assert cleared["service_types"] == [] and cleared["revision_number"] > changed.json()["subnet"]["revision_number"]
    assert member.get(f"/subnets/{typed['id']}").json()["subnet"]["service_types"] == [GATEWAY, NOVA]
    shown = cli(baryon.endpoint, "subnet", "show", typed["id"], "-f", "json")
    assert shown["service_types"] == [GATEWAY, NOVA]


@pytest.mark.parametrize("value, type_", [
    (["foo:bar"], "InvalidSubnetServiceType"),
    ([7], "InvalidInputSubnetServiceType"),
    ([NOVA, NOVA], "InvalidInput"),
    ("compute:nova", "HTTPBadRequest"),
])
def test_bad_service_types_are_refused_and_change_nothing(member: httpx.Client, value, type_):
    net = network(member)
    fault(subnet(member, net, "10.2.0.0/24", service_types=value), 400, type_)
    assert member.get("/subnets", params={"network_id": net}).json()["subnets"] == []
    existing = made(member, net, "10.2.1.0/24", service_types=[GATEWAY])
    fault(member.put(f"/subnets/{existing['id']}", json={"subnet": {"service_types": value}}), 400, type_)
    assert member.get(f"/subnets/{existing['id']}").json()["subnet"] == existing


def test_ports_take_addresses_from_the_subnets_for_their_device_owner(member: httpx.Client, admin: httpx.Client):
    net = network(member)
    general = made(member, net, "10.3.0.0/24")
    gateway = made(member, net, "10.3.1.0/24", service_types=[GATEWAY])
    nova = made(member, net, "10.3.2.0/24", service_types=[NOVA], enable_dhcp=False)
    first = port(member, net, device_owner=NOVA)
    assert subnets_of(first) == [nova["id"]]
    held = first.json()["port"]["fixed_ips"][0]["ip_address"]  # at random in the subnet: not to be asked for
    wanted = "10.3.2.50" if held != "10.3.2.50" else "10.3.2.51"
    assert subnets_of(port(member, net)) == [general["id"]]
    assert subnets_of(port(member, net, device_owner="compute:other")) == [general["id"]]
    assert subnets_of(port(admin, net, device_owner=GATEWAY)) == [gateway["id"]]
    # DHCP: any subnet with DHCP on (the reserved one first), not the one with DHCP off
    assert subnets_of(port(admin, net, device_owner="network:dhcp")) == [gateway["id"]]
    # asked for by id or by address, a subnet reserved for others is refused, as in Neutron
    fault(port(member, net, fixed_ips=[{"subnet_id": gateway["id"]}]), 400, "InvalidInput")
    fault(port(member, net, fixed_ips=[{"ip_address": wanted}]), 400, "InvalidIpForNetwork")
    asked = port(member, net, device_owner=NOVA, fixed_ips=[{"ip_address": wanted}])
    assert asked.status_code == 201 and asked.json()["port"]["fixed_ips"] == [
        {"subnet_id": nova["id"], "ip_address": wanted}]
    assert ipaddress.ip_address(asked.json()["port"]["fixed_ips"][0]["ip_address"]) in ipaddress.ip_network(
        nova["cidr"])


def test_no_subnet_for_the_device_owner_refuses_the_port(member: httpx.Client):
    net = network(member)
    made(member, net, "10.4.0.0/24", service_types=[GATEWAY])
    before = member.get("/ports", params={"network_id": net}).json()["ports"]
    error = fault(port(member, net, device_owner=NOVA), 409, "IpAddressGenerationFailureNoMatchingSubnet")
    assert net in error["message"] and NOVA in error["message"]
    assert member.get("/ports", params={"network_id": net}).json()["ports"] == before
    unaddressed = port(member, net, fixed_ips=[])
    assert unaddressed.status_code == 201 and unaddressed.json()["port"]["fixed_ips"] == []


def test_several_pools_and_service_types_on_one_subnet(member: httpx.Client, admin: httpx.Client):
    """IPAM reads a subnet's pools and service types in one statement (a row per pair): each pool
    and each type counts once, and the pools keep their order (a DHCP port takes the lowest free
    address of the first pool)."""
    net = network(member)
    pools = [{"start": "10.5.0.200", "end": "10.5.0.201"}, {"start": "10.5.0.10", "end": "10.5.0.11"}]
    typed = made(member, net, "10.5.0.0/24", allocation_pools=pools, service_types=[NOVA, "network:dhcp"])
    assert typed["allocation_pools"] == pools
    dhcp = port(admin, net, device_owner="network:dhcp")
    assert dhcp.status_code == 201, dhcp.text
    assert dhcp.json()["port"]["fixed_ips"] == [{"subnet_id": typed["id"], "ip_address": "10.5.0.200"}]
    taken = {"10.5.0.200"}
    for _ in range(3):
        made_port = port(member, net, device_owner=NOVA)
        assert subnets_of(made_port) == [typed["id"]]
        taken.add(made_port.json()["port"]["fixed_ips"][0]["ip_address"])
    assert taken == {"10.5.0.200", "10.5.0.201", "10.5.0.10", "10.5.0.11"}
    fault(port(member, net, device_owner=NOVA), 409, "IpAddressGenerationFailure")
    fault(port(member, net), 409, "IpAddressGenerationFailureNoMatchingSubnet")
