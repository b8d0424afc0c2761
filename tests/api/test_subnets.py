"""Subnets through the real clients: openstacksdk, the ``openstack`` CLI and plain HTTP.

Every test runs once per database backend on a shared server, in its own fresh ``project`` and
on networks it creates, so CIDRs may repeat between tests (overlapping IPs are allowed across
networks by default).
"""

from __future__ import annotations

import uuid

import httpx
import openstack.exceptions
import pytest

from tests.api.helpers import cli, fault, http, name, sdk, timestamp
from tests.support.server import BaryonServer


@pytest.fixture
def network(member: httpx.Client) -> str:
    """A fresh network of the test's project."""
    response = member.post("/networks", json={"network": {"name": name("net")}})
    assert response.status_code == 201, response.text
    return response.json()["network"]["id"]


def post(client: httpx.Client, network_id: str, cidr: str, ip_version: int = 4, **attrs) -> httpx.Response:
    body = {"network_id": network_id, "ip_version": ip_version, "cidr": cidr, **attrs}
    return client.post("/subnets", json={"subnet": body})


def create(client: httpx.Client, network_id: str, cidr: str, ip_version: int = 4, **attrs) -> dict:
    response = post(client, network_id, cidr, ip_version, **attrs)
    assert response.status_code == 201, response.text
    return response.json()["subnet"]


def update(client: httpx.Client, subnet_id: str, **attrs) -> dict:
    response = client.put(f"/subnets/{subnet_id}", json={"subnet": attrs})
    assert response.status_code == 200, response.text
    return response.json()["subnet"]


def show(client: httpx.Client, subnet_id: str) -> dict:
    response = client.get(f"/subnets/{subnet_id}")
    assert response.status_code == 200, response.text
    return response.json()["subnet"]


def subnets_of(client: httpx.Client, network_id: str) -> list[str]:
    response = client.get("/subnets", params={"network_id": network_id})
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["subnets"]]


def pools(*ranges: tuple[str, str]) -> list[dict]:
    return [{"start": start, "end": end} for start, end in ranges]


def port_on(client: httpx.Client, network_id: str, owner: str = "compute:nova", **attrs) -> dict:
    response = client.post("/ports", json={"port": {"network_id": network_id, "device_owner": owner,
                                                    "device_id": str(uuid.uuid4()), **attrs}})
    assert response.status_code == 201, response.text
    return response.json()["port"]


# ---------------------------------------------------------------- IPv4: defaults and pools


def test_ipv4_defaults(baryon: BaryonServer, project: str) -> None:
    conn = sdk(baryon.endpoint, project)
    net = conn.network.create_network(name="web")
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.0.0.0/24", name="web-v4")

    assert (subnet.name, subnet.network_id, subnet.project_id) == ("web-v4", net.id, project)
    assert (subnet.ip_version, subnet.cidr, subnet.gateway_ip) == (4, "10.0.0.0/24", "10.0.0.1")
    assert subnet.allocation_pools == pools(("10.0.0.2", "10.0.0.254"))
    assert subnet.is_dhcp_enabled is True
    assert (subnet.dns_nameservers, subnet.host_routes) == ([], [])
    assert (subnet.ipv6_ra_mode, subnet.ipv6_address_mode, subnet.subnet_pool_id) == (None, None, None)
    assert subnet.revision_number == 1
    assert timestamp(subnet.created_at) == timestamp(subnet.updated_at)

    got = conn.network.get_subnet(subnet.id)
    assert (got.cidr, got.allocation_pools, got.gateway_ip) == (subnet.cidr, subnet.allocation_pools, "10.0.0.1")
    assert [s.id for s in conn.network.subnets(network_id=net.id)] == [subnet.id]

    # The network lists its subnet, and the change is a new revision of the network.
    after = conn.network.get_network(net.id)
    assert after.subnet_ids == [subnet.id]
    assert after.revision_number == net.revision_number + 1


def test_no_gateway(member: httpx.Client, network: str) -> None:
    subnet = create(member, network, "10.1.0.0/24", gateway_ip=None)
    assert subnet["gateway_ip"] is None
    assert subnet["allocation_pools"] == pools(("10.1.0.1", "10.1.0.254"))


def test_explicit_gateway_and_pools(member: httpx.Client, network: str) -> None:
    subnet = create(member, network, "10.2.0.0/24", gateway_ip="10.2.0.254",
                    allocation_pools=pools(("10.2.0.100", "10.2.0.199"), ("10.2.0.10", "10.2.0.19")))
    assert subnet["gateway_ip"] == "10.2.0.254"
    assert subnet["allocation_pools"] == pools(("10.2.0.100", "10.2.0.199"), ("10.2.0.10", "10.2.0.19"))
    # A gateway outside the pools but not the default: the default pools leave it out.
    other = create(member, network, "10.3.0.0/24", gateway_ip="10.3.0.100")
    assert other["allocation_pools"] == pools(("10.3.0.1", "10.3.0.99"), ("10.3.0.101", "10.3.0.254"))


def test_invalid_pools(member: httpx.Client, network: str) -> None:
    def refused(status: int, type_: str, gateway: str | None = "10.4.0.1", *ranges: tuple[str, str]) -> str:
        response = post(member, network, "10.4.0.0/24", gateway_ip=gateway, allocation_pools=pools(*ranges))
        return fault(response, status, type_)["message"]

    assert refused(400, "OutOfBoundsAllocationPool", "10.4.0.1", ("10.5.0.2", "10.5.0.9")) == (
        "The allocation pool 10.5.0.2-10.5.0.9 spans beyond the subnet cidr 10.4.0.0/24.")
    refused(400, "OutOfBoundsAllocationPool", None, ("10.4.0.0", "10.4.0.9"))  # the network address
    refused(400, "OutOfBoundsAllocationPool", None, ("10.4.0.200", "10.4.0.255"))  # the broadcast address
    assert refused(409, "OverlappingAllocationPools", "10.4.0.1",
                   ("10.4.0.2", "10.4.0.9"), ("10.4.0.5", "10.4.0.20")) == (
        "Found overlapping allocation pools: 10.4.0.2-10.4.0.9 10.4.0.5-10.4.0.20 for subnet 10.4.0.0/24.")
    assert refused(409, "GatewayConflictWithAllocationPools", "10.4.0.5", ("10.4.0.2", "10.4.0.9")) == (
        "Gateway ip 10.4.0.5 conflicts with allocation pool 10.4.0.2-10.4.0.9.")
    refused(400, "InvalidAllocationPool", "10.4.0.1", ("10.4.0.9", "10.4.0.2"))  # start after end
    refused(400, "InvalidAllocationPool", "10.4.0.1", ("10.4.0.2", "2001:db8::9"))  # mixed versions
    fault(post(member, network, "10.4.0.0/24", allocation_pools=[{"start": "10.4.0.2"}]), 400, "HTTPBadRequest")

    assert subnets_of(member, network) == []


def test_cidr_and_version_errors(member: httpx.Client, network: str) -> None:
    def message(response: httpx.Response, type_: str) -> str:
        return fault(response, 400, type_)["message"]

    assert message(post(member, network, "10.6.0.1/255.255.255.0"), "HTTPBadRequest") == (
        "Invalid input for cidr. Reason: '10.6.0.1/255.255.255.0' isn't a recognized IP subnet cidr, "
        "'10.6.0.0/24' is recommended.")
    message(post(member, network, "10.6.0.0"), "HTTPBadRequest")  # no prefix length
    message(post(member, network, "10.6.0.300/24"), "HTTPBadRequest")
    message(post(member, network, "not-a-cidr"), "HTTPBadRequest")
    assert message(post(member, network, "2001:db8::/64"), "InvalidInput") == (
        "Invalid input for operation: cidr '2001:db8::/64' does not match the ip_version '4'.")
    message(post(member, network, "10.6.0.0/24", 6), "InvalidInput")
    message(post(member, network, "10.6.0.0/24", 5), "HTTPBadRequest")
    assert message(post(member, network, "10.6.0.0/24", gateway_ip="2001:db8::1"), "InvalidInput") == (
        "Invalid input for operation: gateway_ip '2001:db8::1' does not match the ip_version '4'.")
    assert message(post(member, network, "10.6.0.0/24", gateway_ip="10.6.0.0"), "InvalidInput") == (
        "Invalid input for operation: Gateway is not valid on subnet.")
    message(post(member, network, "10.6.0.0/24", gateway_ip="10.6.0.255"), "InvalidInput")
    message(member.post("/subnets", json={"subnet": {"network_id": network, "cidr": "10.6.0.0/24"}}),
            "HTTPBadRequest")  # ip_version is required
    message(member.post("/subnets", json={"subnet": {"ip_version": 4, "cidr": "10.6.0.0/24"}}),
            "HTTPBadRequest")  # network_id is required
    message(member.post("/subnets", json={"subnet": {"network_id": network, "ip_version": 4}}),
            "BadRequest")  # no cidr and no subnet pool
    message(post(member, network, "10.6.0.0/24", enable_dhcp="maybe"), "InvalidInput")
    message(post(member, network, "10.6.0.0/24", colour="blue"), "HTTPBadRequest")
    fault(post(member, str(uuid.uuid4()), "10.6.0.0/24"), 404, "NetworkNotFound")

    assert subnets_of(member, network) == []


def test_cidr_host_bits_are_normalised(member: httpx.Client, network: str) -> None:
    # neutron-lib's validate_subnet accepts host bits ("192.168.1.7/24 is ok"); the subnet gets the network.
    subnet = create(member, network, "10.5.0.77/24")
    assert (subnet["cidr"], subnet["gateway_ip"]) == ("10.5.0.0/24", "10.5.0.1")
    assert subnet["allocation_pools"] == pools(("10.5.0.2", "10.5.0.254"))
    v6 = create(member, network, "2001:db8:6::1/64", 6)
    assert (v6["cidr"], v6["gateway_ip"]) == ("2001:db8:6::/64", "2001:db8:6::1")
    fault(post(member, network, "10.5.0.0/24"), 400, "InvalidInput")  # the same CIDR, so an overlap


def test_dhcp_needs_room(member: httpx.Client, network: str) -> None:
    # Neutron: a DHCP-enabled IPv4 subnet must be /30 or larger (and IPv6 /126 or larger).
    assert fault(post(member, network, "10.7.0.0/31"), 400, "InvalidInput")["message"] == (
        "Invalid input for operation: Subnet has a prefix length that is incompatible with DHCP service enabled.")
    fault(post(member, network, "2001:db8:7::/127", 6), 400, "InvalidInput")
    small = create(member, network, "10.7.0.0/30")
    assert (small["gateway_ip"], small["allocation_pools"]) == ("10.7.0.1", pools(("10.7.0.2", "10.7.0.2")))
    point = create(member, network, "10.7.1.0/31", enable_dhcp=False, gateway_ip=None)
    fault(member.put(f"/subnets/{point['id']}", json={"subnet": {"enable_dhcp": True}}), 400, "InvalidInput")
    assert show(member, point["id"])["enable_dhcp"] is False


# ---------------------------------------------------------------- IPv6


def test_ipv6_slaac(member: httpx.Client, network: str) -> None:
    subnet = create(member, network, "2001:db8:1::/64", 6, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert (subnet["ip_version"], subnet["gateway_ip"]) == (6, "2001:db8:1::1")
    assert subnet["allocation_pools"] == pools(("2001:db8:1::2", "2001:db8:1:0:ffff:ffff:ffff:ffff"))  # RFC 5952 text
    assert (subnet["ipv6_ra_mode"], subnet["ipv6_address_mode"]) == ("slaac", "slaac")

    # SLAAC (and DHCPv6-stateless) addresses are EUI-64: the prefix must be a /64.
    error = fault(post(member, network, "2001:db8:2::/80", 6, ipv6_address_mode="slaac"), 400, "InvalidInput")
    assert error["message"] == ("Invalid input for operation: Invalid CIDR 2001:db8:2::/80 for IPv6 address mode. "
                                "OpenStack uses the EUI-64 address format, which requires the prefix to be /64.")
    fault(post(member, network, "2001:db8:2::/80", 6, ipv6_ra_mode="dhcpv6-stateless"), 400, "InvalidInput")


def test_ipv6_dhcpv6_stateful(member: httpx.Client, network: str) -> None:
    subnet = create(member, network, "2001:db8:3::/80", 6, ipv6_ra_mode="dhcpv6-stateful",
                    ipv6_address_mode="dhcpv6-stateful")
    assert (subnet["cidr"], subnet["gateway_ip"]) == ("2001:db8:3::/80", "2001:db8:3::1")
    assert (subnet["ipv6_ra_mode"], subnet["ipv6_address_mode"]) == ("dhcpv6-stateful", "dhcpv6-stateful")
    only_address = create(member, network, "2001:db8:4::/64", 6, ipv6_address_mode="dhcpv6-stateful")
    assert (only_address["ipv6_ra_mode"], only_address["ipv6_address_mode"]) == (None, "dhcpv6-stateful")


def test_ipv6_mode_errors(member: httpx.Client, network: str) -> None:
    error = fault(post(member, network, "2001:db8:5::/64", 6, ipv6_ra_mode="slaac",
                       ipv6_address_mode="dhcpv6-stateful"), 400, "InvalidInput")
    assert error["message"] == (
        "Invalid input for operation: ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to "
        "'dhcpv6-stateful' is not valid. If both attributes are set, they must be the same value.")
    error = fault(post(member, network, "10.8.0.0/24", ipv6_ra_mode="slaac"), 400, "InvalidInput")
    assert error["message"] == "Invalid input for operation: ipv6_ra_mode is not valid when ip_version is 4."
    fault(post(member, network, "10.8.0.0/24", ipv6_address_mode="slaac"), 400, "InvalidInput")
    fault(post(member, network, "2001:db8:5::/64", 6, ipv6_ra_mode="eui64"), 400, "HTTPBadRequest")
    error = fault(post(member, network, "2001:db8:5::/64", 6, ipv6_ra_mode="slaac", enable_dhcp=False),
                  400, "InvalidInput")
    assert error["message"] == ("Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set "
                                "when enable_dhcp is set to False.")
    assert subnets_of(member, network) == []

    subnet = create(member, network, "2001:db8:5::/64", 6, ipv6_address_mode="slaac")
    error = fault(member.put(f"/subnets/{subnet['id']}", json={"subnet": {"enable_dhcp": False}}),
                  400, "InvalidInput")
    assert error["message"] == "Invalid input for operation: Cannot disable enable_dhcp with ipv6 attributes set."
    fault(member.put(f"/subnets/{subnet['id']}", json={"subnet": {"ipv6_address_mode": "dhcpv6-stateful"}}),
          400, "HTTPBadRequest")  # not updatable
    assert show(member, subnet["id"]) == subnet


# ---------------------------------------------------------------- CIDR overlap


def test_overlapping_cidrs(member: httpx.Client, network: str) -> None:
    first = create(member, network, "10.10.0.0/16")
    for cidr in ("10.10.0.0/16", "10.10.5.0/24", "10.0.0.0/8"):
        error = fault(post(member, network, cidr), 400, "InvalidInput")
        assert error["message"] == (f"Invalid input for operation: Requested subnet with cidr: {cidr} for network: "
                                    f"{network} overlaps with another subnet.")
    beside = create(member, network, "10.11.0.0/16")
    v6 = create(member, network, "2001:db8:10::/64", 6)

    # allow_overlapping_ips (the default): the same CIDR in another network is fine.
    other = member.post("/networks", json={"network": {}}).json()["network"]["id"]
    again = create(member, other, "10.10.0.0/16")
    assert again["cidr"] == first["cidr"] and again["id"] != first["id"]
    assert sorted(subnets_of(member, network)) == sorted([first["id"], beside["id"], v6["id"]])


# ---------------------------------------------------------------- update


def test_dns_nameservers_and_host_routes(baryon: BaryonServer, project: str, network: str,
                                         member: httpx.Client) -> None:
    conn = sdk(baryon.endpoint, project)
    routes = [{"destination": "192.168.0.0/24", "nexthop": "10.12.0.5"},
              {"destination": "0.0.0.0/0", "nexthop": "10.12.0.1"}]
    subnet = conn.network.create_subnet(network_id=network, ip_version=4, cidr="10.12.0.0/24",
                                        dns_nameservers=["9.9.9.9", "1.1.1.1"], host_routes=routes)
    assert subnet.dns_nameservers == ["9.9.9.9", "1.1.1.1"]  # order kept
    assert subnet.host_routes == routes

    subnet = conn.network.update_subnet(subnet, dns_nameservers=["8.8.8.8"],
                                        host_routes=[{"destination": "172.16.0.0/12", "nexthop": "10.12.0.6"}])
    assert subnet.dns_nameservers == ["8.8.8.8"]
    assert subnet.host_routes == [{"destination": "172.16.0.0/12", "nexthop": "10.12.0.6"}]
    assert subnet.revision_number == 2
    subnet = conn.network.update_subnet(subnet, dns_nameservers=[], host_routes=[])
    assert (subnet.dns_nameservers, subnet.host_routes, subnet.revision_number) == ([], [], 3)

    url = f"/subnets/{subnet.id}"
    fault(member.put(url, json={"subnet": {"dns_nameservers": ["1.1.1.1"] * 2}}), 400, "InvalidInput")
    error = fault(member.put(url, json={"subnet": {"dns_nameservers": [f"10.0.0.{i}" for i in range(1, 7)]}}),
                  400, "DNSNameServersExhausted")
    assert error["message"].endswith("The number of DNS nameservers exceeds the limit 5.")
    fault(member.put(url, json={"subnet": {"dns_nameservers": ["dns.example"]}}), 400, "HTTPBadRequest")
    fault(member.put(url, json={"subnet": {"host_routes": [{"destination": "2001:db8::/64",
                                                            "nexthop": "10.12.0.1"}]}}), 400, "InvalidInput")
    fault(member.put(url, json={"subnet": {"host_routes": [{"destination": "10.0.0.0/8"}]}}), 400, "HTTPBadRequest")
    assert show(member, subnet.id)["revision_number"] == 3


def test_update_pools_and_gateway(member: httpx.Client, network: str) -> None:
    subnet = create(member, network, "10.13.0.0/24", name="s")
    url = f"/subnets/{subnet['id']}"

    subnet = update(member, subnet["id"], allocation_pools=pools(("10.13.0.10", "10.13.0.99")))
    assert subnet["allocation_pools"] == pools(("10.13.0.10", "10.13.0.99"))
    assert (subnet["gateway_ip"], subnet["revision_number"]) == ("10.13.0.1", 2)

    subnet = update(member, subnet["id"], gateway_ip="10.13.0.254", name="renamed")
    assert (subnet["gateway_ip"], subnet["name"], subnet["revision_number"]) == ("10.13.0.254", "renamed", 3)
    assert subnet["allocation_pools"] == pools(("10.13.0.10", "10.13.0.99"))  # pools do not follow the gateway

    fault(member.put(url, json={"subnet": {"gateway_ip": "10.13.0.50"}}), 409, "GatewayConflictWithAllocationPools")
    fault(member.put(url, json={"subnet": {"allocation_pools": pools(("10.13.0.200", "10.13.0.254"))}}),
          409, "GatewayConflictWithAllocationPools")
    fault(member.put(url, json={"subnet": {"allocation_pools": pools(("10.14.0.2", "10.14.0.9"))}}),
          400, "OutOfBoundsAllocationPool")
    fault(member.put(url, json={"subnet": {"gateway_ip": "10.13.0.0"}}), 400, "InvalidInput")
    fault(member.put(url, json={"subnet": {"cidr": "10.13.0.0/16"}}), 400, "HTTPBadRequest")
    fault(member.put(url, json={"subnet": {"ip_version": 6}}), 400, "HTTPBadRequest")
    fault(member.put(url, json={"subnet": {"network_id": network}}), 400, "HTTPBadRequest")
    assert show(member, subnet["id"]) == subnet

    subnet = update(member, subnet["id"], gateway_ip=None)
    assert (subnet["gateway_ip"], subnet["revision_number"]) == (None, 4)
    assert subnet["allocation_pools"] == pools(("10.13.0.10", "10.13.0.99"))


def test_enable_dhcp_toggle(baryon: BaryonServer, project: str, network: str) -> None:
    conn = sdk(baryon.endpoint, project)
    subnet = conn.network.create_subnet(network_id=network, ip_version=4, cidr="10.15.0.0/24", is_dhcp_enabled=False)
    assert subnet.is_dhcp_enabled is False
    subnet = conn.network.update_subnet(subnet, is_dhcp_enabled=True)
    assert (subnet.is_dhcp_enabled, subnet.revision_number) == (True, 2)
    subnet = conn.network.update_subnet(subnet, is_dhcp_enabled=False)
    assert (subnet.is_dhcp_enabled, subnet.revision_number) == (False, 3)
    assert conn.network.get_subnet(subnet.id).is_dhcp_enabled is False


# ---------------------------------------------------------------- delete


def test_delete_updates_the_network(member: httpx.Client, network: str) -> None:
    first, second = create(member, network, "10.16.0.0/24"), create(member, network, "10.16.1.0/24")
    before = member.get(f"/networks/{network}").json()["network"]
    assert sorted(before["subnets"]) == sorted([first["id"], second["id"]])

    assert member.delete(f"/subnets/{first['id']}").status_code == 204
    after = member.get(f"/networks/{network}").json()["network"]
    assert after["subnets"] == [second["id"]]
    assert after["revision_number"] == before["revision_number"] + 1
    error = fault(member.get(f"/subnets/{first['id']}"), 404, "SubnetNotFound")
    assert error["message"] == f"Subnet {first['id']} could not be found."
    fault(member.delete(f"/subnets/{first['id']}"), 404, "SubnetNotFound")


def test_subnet_in_use(admin: httpx.Client, member: httpx.Client, network: str) -> None:
    subnet = create(member, network, "10.17.0.0/24")
    port = port_on(member, network)
    assert [ip["subnet_id"] for ip in port["fixed_ips"]] == [subnet["id"]]

    error = fault(member.delete(f"/subnets/{subnet['id']}"), 409, "SubnetInUse")
    assert error["message"].startswith(f"Unable to complete operation on subnet {subnet['id']}")
    fault(admin.delete(f"/subnets/{subnet['id']}"), 409, "SubnetInUse")  # also for an admin
    assert show(member, subnet["id"]) == subnet

    assert member.delete(f"/ports/{port['id']}").status_code == 204
    assert member.delete(f"/subnets/{subnet['id']}").status_code == 204
    assert subnets_of(member, network) == []


def test_dhcp_port_does_not_hold_a_subnet(admin: httpx.Client, project: str, member: httpx.Client,
                                          network: str) -> None:
    subnet = create(member, network, "10.18.0.0/24")
    dhcp = port_on(admin, network, "network:dhcp", project_id=project)
    assert [ip["subnet_id"] for ip in dhcp["fixed_ips"]] == [subnet["id"]]

    assert member.delete(f"/subnets/{subnet['id']}").status_code == 204
    kept = admin.get(f"/ports/{dhcp['id']}").json()["port"]
    assert kept["fixed_ips"] == []  # the network's DHCP port stays and loses its address


# ---------------------------------------------------------------- the openstack CLI


def test_cli_lifecycle(baryon: BaryonServer, admin: httpx.Client) -> None:
    network = admin.post("/networks", json={"network": {"name": name("cli")}}).json()["network"]["id"]
    subnet_name = name("cli-sub")
    created = cli(baryon.endpoint, "subnet", "create", "--network", network, "--subnet-range", "10.19.0.0/24",
                  "--allocation-pool", "start=10.19.0.10,end=10.19.0.99", "--dns-nameserver", "9.9.9.9",
                  "--host-route", "destination=192.168.9.0/24,gateway=10.19.0.3", subnet_name, "-f", "json")
    assert (created["name"], created["cidr"], created["gateway_ip"]) == (subnet_name, "10.19.0.0/24", "10.19.0.1")
    assert created["allocation_pools"] == pools(("10.19.0.10", "10.19.0.99"))
    assert created["dns_nameservers"] == ["9.9.9.9"]
    assert created["host_routes"] == [{"destination": "192.168.9.0/24", "nexthop": "10.19.0.3"}]
    assert (created["ip_version"], created["enable_dhcp"], created["revision_number"]) == (4, True, 1)

    rows = cli(baryon.endpoint, "subnet", "list", "--network", network, "-f", "json")
    assert rows == [{"ID": created["id"], "Name": subnet_name, "Network": network, "Subnet": "10.19.0.0/24"}]

    cli(baryon.endpoint, "subnet", "set", "--name", subnet_name + "-2", "--gateway", "10.19.0.254",
        "--dns-nameserver", "1.1.1.1", "--no-dhcp", created["id"])
    shown = cli(baryon.endpoint, "subnet", "show", created["id"], "-f", "json")
    assert (shown["name"], shown["gateway_ip"], shown["enable_dhcp"]) == (subnet_name + "-2", "10.19.0.254", False)
    assert shown["dns_nameservers"] == ["1.1.1.1", "9.9.9.9"]  # the CLI adds to the old list (new ones first)
    assert shown["revision_number"] == 2

    cli(baryon.endpoint, "subnet", "delete", created["id"])
    fault(admin.get(f"/subnets/{created['id']}"), 404, "SubnetNotFound")
    assert admin.get(f"/networks/{network}").json()["network"]["subnets"] == []


# ---------------------------------------------------------------- members and other projects


def test_project_isolation(baryon: BaryonServer, member: httpx.Client, network: str) -> None:
    mine = create(member, network, "10.20.0.0/24")
    other = uuid.uuid4().hex
    with http(baryon.endpoint, other) as stranger:
        fault(stranger.get(f"/subnets/{mine['id']}"), 404, "SubnetNotFound")
        fault(stranger.put(f"/subnets/{mine['id']}", json={"subnet": {"name": "x"}}), 404, "SubnetNotFound")
        fault(stranger.delete(f"/subnets/{mine['id']}"), 404, "SubnetNotFound")
        assert mine["id"] not in {s["id"] for s in stranger.get("/subnets").json()["subnets"]}
        # Nor may it add a subnet to a network it cannot see.
        fault(post(stranger, network, "10.21.0.0/24"), 404, "NetworkNotFound")
    with pytest.raises(openstack.exceptions.NotFoundException):
        sdk(baryon.endpoint, other).network.get_subnet(mine["id"])
    assert show(member, mine["id"]) == mine
    assert subnets_of(member, network) == [mine["id"]]


def test_member_and_others_shared_network(project: str, admin: httpx.Client, member: httpx.Client) -> None:
    other = uuid.uuid4().hex
    shared = admin.post("/networks", json={"network": {"project_id": other, "shared": True}}).json()["network"]
    theirs = create(admin, shared["id"], "10.22.0.0/24", project_id=other)

    # A shared network's subnets are visible to every project ...
    assert show(member, theirs["id"])["cidr"] == "10.22.0.0/24"
    assert subnets_of(member, shared["id"]) == [theirs["id"]]
    # ... but only its owner may add subnets to it (Neutron: policy create_subnet, 403), or change them.
    fault(post(member, shared["id"], "10.23.0.0/24"), 403, "PolicyNotAuthorized")
    fault(member.put(f"/subnets/{theirs['id']}", json={"subnet": {"name": "mine"}}), 403, "PolicyNotAuthorized")
    fault(member.delete(f"/subnets/{theirs['id']}"), 403, "PolicyNotAuthorized")
    assert subnets_of(admin, shared["id"]) == [theirs["id"]]
    assert show(admin, theirs["id"]) == theirs

    # An external (not shared) network is visible too; Neutron's ownership check answers 403.
    external = admin.post("/networks", json={"network": {"project_id": other, "router:external": True}})
    error = fault(post(member, external.json()["network"]["id"], "10.24.0.0/24"), 403, "HTTPForbidden")
    assert error["message"] == f"Tenant {project} not allowed to create subnet on this network"
