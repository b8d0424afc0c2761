"""One scenario: a whole tenant topology built with the ``openstack`` CLI, exactly as a user would.

An external flat network on physnet1 with a subnet without DHCP; a tenant network and subnet; a
router with its gateway on the external network and an interface on the tenant subnet; a security
group allowing ICMP and SSH; a port in that group; a floating IP associated with the port. Every
field each command prints is checked: the values the command determines exactly, the generated
ones (ids, times, addresses, MACs) by their form and by how they tie the resources together.

It runs on a server of its own per backend (a flat network takes physnet1 for itself).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api.helpers import OPENSTACK, cli as run_cli, timestamp
from tests.conftest import BACKENDS
from tests.support.server import BaryonServer

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")
PROJECT = "4a5f2e7c9a0d5b1e8c3f6d2a7b9e0c14"  # the noauth admin's project (baryon.api.deps)


@pytest.fixture(scope="module", params=BACKENDS)
def cloud(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    backend = request.param
    connection = ""
    if backend != "sqlite":
        connection = request.getfixturevalue(f"{backend}_server").create_database("baryon_topology")
    server = BaryonServer(tmp_path_factory.mktemp(f"topology-{backend}"), connection, workers=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def uuid_(value: Any) -> bool:
    return isinstance(value, str) and bool(UUID.match(value))


def time_(value: Any) -> bool:
    return isinstance(value, str) and timestamp(value) is not None


def check(shown: dict, exact: dict, generated: dict[str, Callable[[Any], bool]]) -> None:
    """Every field printed is either ``exact`` (equal) or ``generated`` (its predicate holds)."""
    assert set(shown) == set(exact) | set(generated), set(shown) ^ (set(exact) | set(generated))
    assert {k: shown[k] for k in exact} == exact
    wrong = {k: shown[k] for k, ok in generated.items() if not ok(shown[k])}
    assert wrong == {}


STAMPS = {"id": uuid_, "created_at": time_, "updated_at": time_}

NETWORK_NULLS = dict.fromkeys(("dns_domain", "ipv4_address_scope", "ipv6_address_scope", "is_vlan_qinq",
                               "is_vlan_transparent", "pvlan", "qos_policy_id", "segments"))


def test_tenant_topology_with_the_cli(cloud: BaryonServer) -> None:
    def cli(*args: str) -> Any:
        json_out = any(verb in args[:4] for verb in ("create", "show", "list"))
        return run_cli(cloud.endpoint, *args, *(("-f", "json") if json_out else ()))

    assert OPENSTACK  # the real python-openstackclient, nothing else

    # ------------------------------------------------ the external network
    public = cli("network", "create", "--external", "--provider-network-type", "flat",
                 "--provider-physical-network", "physnet1", "public")
    check(public, {
        "name": "public", "description": "", "admin_state_up": True, "status": "ACTIVE", "shared": False,
        "router:external": True, "is_default": False, "mtu": 1500, "port_security_enabled": True,
        "provider:network_type": "flat", "provider:physical_network": "physnet1",
        "provider:segmentation_id": None, "availability_zone_hints": [], "availability_zones": [],
        "l2_adjacency": True, "project_id": PROJECT, "revision_number": 1, "subnets": [], "tags": [],
        **NETWORK_NULLS,
    }, STAMPS)

    public_subnet = cli("subnet", "create", "--no-dhcp", "--network", "public", "--subnet-range", "203.0.113.0/24",
                        "--gateway", "203.0.113.1", "--allocation-pool", "start=203.0.113.100,end=203.0.113.200",
                        "public-subnet")
    subnet_nulls = {"dns_publish_fixed_ip": None, "ipv6_address_mode": None, "ipv6_ra_mode": None,
                    "segment_id": None, "subnetpool_id": None}
    check(public_subnet, {
        "name": "public-subnet", "description": "", "network_id": public["id"], "ip_version": 4,
        "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1", "enable_dhcp": False,
        "allocation_pools": [{"start": "203.0.113.100", "end": "203.0.113.200"}], "dns_nameservers": [],
        "host_routes": [], "service_types": [], "project_id": PROJECT, "revision_number": 1, "tags": [],
        **subnet_nulls,
    }, STAMPS)

    # ------------------------------------------------ the tenant network
    private = cli("network", "create", "private")
    check(private, {
        "name": "private", "description": "", "admin_state_up": True, "status": "ACTIVE", "shared": False,
        "router:external": False, "is_default": False, "mtu": 1450, "port_security_enabled": True,
        "provider:network_type": "vxlan", "provider:physical_network": None, "availability_zone_hints": [],
        "availability_zones": [], "l2_adjacency": True, "project_id": PROJECT, "revision_number": 1,
        "subnets": [], "tags": [], **NETWORK_NULLS,
    }, {**STAMPS, "provider:segmentation_id": lambda v: isinstance(v, int) and 1 <= v <= 1000})

    private_subnet = cli("subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24",
                         "--dns-nameserver", "192.0.2.53", "private-subnet")
    check(private_subnet, {
        "name": "private-subnet", "description": "", "network_id": private["id"], "ip_version": 4,
        "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "enable_dhcp": True,
        "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}], "dns_nameservers": ["192.0.2.53"],
        "host_routes": [], "service_types": [], "project_id": PROJECT, "revision_number": 1, "tags": [],
        **subnet_nulls,
    }, STAMPS)

    # ------------------------------------------------ the router
    router = cli("router", "create", "router1")
    router_exact = {
        # No L3 agent on this server: the router waits for one, and says so (Baryon's status_reason).
        "name": "router1", "description": "", "admin_state_up": True, "status": "ALLOCATING",
        "status_reason": "no live L3 agent to host the router",
        "external_gateway_info": None, "routes": [], "ha": False, "distributed": False,
        "availability_zone_hints": [], "availability_zones": [], "enable_ndp_proxy": None, "flavor_id": None,
        "project_id": PROJECT, "revision_number": 1, "tags": [],
    }
    check(router, router_exact, STAMPS)

    assert cli("router", "set", "--external-gateway", "public", "router1") == ""
    assert cli("router", "add", "subnet", "router1", "private-subnet") == ""
    router = cli("router", "show", "router1")
    gateway = router["external_gateway_info"]
    assert (gateway["network_id"], gateway["enable_snat"]) == (public["id"], True)
    [gateway_ip] = gateway["external_fixed_ips"]
    assert gateway_ip["subnet_id"] == public_subnet["id"]
    assert ipaddress.ip_address("203.0.113.100") <= ipaddress.ip_address(gateway_ip["ip_address"]) <= (
        ipaddress.ip_address("203.0.113.200"))
    check(router, {**router_exact, "external_gateway_info": gateway, "revision_number": 3}, {
        **STAMPS, "interfaces_info": lambda v: len(v) == 1 and v[0]["ip_address"] == "10.0.0.1"
        and v[0]["subnet_id"] == private_subnet["id"] and uuid_(v[0]["port_id"])})
    assert timestamp(router["updated_at"]) >= timestamp(router["created_at"])

    # ------------------------------------------------ the security group
    web = cli("security", "group", "create", "--description", "web servers", "web")
    check(web, {"name": "web", "description": "web servers", "is_shared": False, "stateful": True,
                "project_id": PROJECT, "revision_number": 1, "tags": []}, {
        **STAMPS, "rules": lambda rules: sorted((r["direction"], r["ethertype"]) for r in rules) == [
            ("egress", "IPv4"), ("egress", "IPv6")] and all(r["security_group_id"] == web["id"] for r in rules)})

    rule_common = {"direction": "ingress", "ether_type": "IPv4", "description": "", "security_group_id": web["id"],
                   "remote_group_id": None, "remote_address_group_id": None, "project_id": PROJECT,
                   "remote_ip_prefix": "0.0.0.0/0", "normalized_cidr": "0.0.0.0/0"}
    rule_stamps = {**STAMPS, "revision_number": lambda v: isinstance(v, int)}
    icmp = cli("security", "group", "rule", "create", "--protocol", "icmp", "web")
    check(icmp, {**rule_common, "protocol": "icmp", "port_range_min": None, "port_range_max": None}, rule_stamps)
    ssh = cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
              "--remote-ip", "0.0.0.0/0", "web")
    check(ssh, {**rule_common, "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, rule_stamps)

    # ------------------------------------------------ the VM's port
    port = cli("port", "create", "--network", "private", "--security-group", "web", "vm1-port")
    check(port, {
        "name": "vm1-port", "description": "", "network_id": private["id"], "admin_state_up": True,
        "status": "DOWN", "device_id": "", "device_owner": "", "project_id": PROJECT, "revision_number": 1,
        "security_group_ids": [web["id"]], "port_security_enabled": True, "allowed_address_pairs": [],
        "extra_dhcp_opts": [], "binding_host_id": "", "binding_profile": {}, "binding_vif_details": {},
        "binding_vif_type": "unbound", "binding_vnic_type": "normal", "ip_allocation": "immediate", "tags": [],
        "dns_assignment": [], "hints": "",
        **dict.fromkeys(("data_plane_status", "device_profile", "dns_domain", "dns_name", "hardware_offload_type",
                         "numa_affinity_policy", "propagate_uplink_status", "pvlan_type", "pvlan_community",
                         "resource_request", "qos_network_policy_id", "qos_policy_id", "trunk_details",
                         "trusted")),
    }, {**STAMPS, "mac_address": lambda v: bool(MAC.match(v)),
        "fixed_ips": lambda v: len(v) == 1 and v[0]["subnet_id"] == private_subnet["id"]
        and ipaddress.ip_address(v[0]["ip_address"]) in ipaddress.ip_network("10.0.0.0/24")
        and v[0]["ip_address"] != "10.0.0.1"})
    fixed_ip = port["fixed_ips"][0]["ip_address"]

    # ------------------------------------------------ the floating IP
    fip = cli("floating", "ip", "create", "public")
    fip_exact = {
        "floating_network_id": public["id"], "status": "DOWN", "description": "", "port_id": None,
        "fixed_ip_address": None, "router_id": None, "port_details": None, "project_id": PROJECT,
        "revision_number": 1, "tags": [], "dns_domain": None, "dns_name": None, "qos_policy_id": None,
        "subnet_id": None,
    }
    address = fip["floating_ip_address"]
    check(fip, fip_exact, {**STAMPS, "floating_ip_address": lambda v: 100 <= int(v.rsplit(".", 1)[1]) <= 200
                           and v.startswith("203.0.113.") and v != gateway_ip["ip_address"],
                           "name": lambda v: v == address})

    assert cli("floating", "ip", "set", "--port", "vm1-port", address) == ""
    shown = cli("floating", "ip", "show", address)
    check(shown, {
        **fip_exact, "id": fip["id"], "floating_ip_address": address, "name": address,
        "port_id": port["id"], "fixed_ip_address": fixed_ip, "router_id": router["id"], "revision_number": 2,
        "created_at": fip["created_at"],
        "port_details": {"name": "vm1-port", "network_id": private["id"], "mac_address": port["mac_address"],
                         "admin_state_up": True, "status": "DOWN", "device_id": "", "device_owner": ""},
    }, {"updated_at": time_})

    listed = cli("floating", "ip", "list")
    assert listed == [{"ID": fip["id"], "Floating IP Address": address, "Fixed IP Address": fixed_ip,
                       "Port": port["id"], "Floating Network": public["id"], "Project": PROJECT}]
    routers = cli("router", "list")
    assert routers == [{"ID": router["id"], "Name": "router1", "Status": "ALLOCATING", "State": True,
                        "Project": PROJECT, "Distributed": False, "HA": False}]
    ports = {p["ID"]: p for p in cli("port", "list", "--network", "public")}
    assert sorted(p["Fixed IP Addresses"][0]["ip_address"] for p in ports.values()) == sorted(
        [gateway_ip["ip_address"], address])
