"""Ports through the API, against a running server on every database backend.

MAC and fixed IP allocation, address requests and their errors, IPv6 SLAAC, binding, port
security and security groups, allowed address pairs, extra DHCP options; with plain HTTP for
exact codes and bodies, openstacksdk and the ``openstack`` CLI as real clients.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterator

import pytest

from tests.api.rest import Api, cli, fault, sdk

MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")


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


def ips(port: dict) -> list[str]:
    return [f["ip_address"] for f in port["fixed_ips"]]


def port_ids(api: Api, network_id: str) -> set[str]:
    return {p["id"] for p in api.list("ports", {"network_id": network_id})}


# ---------------------------------------------------------------- MAC addresses


def test_generated_macs_come_from_base_mac_and_are_unique(admin: Api):
    network = admin.create("network", name="macs")
    response = admin.post("/v2.0/ports", {"ports": [{"network_id": network["id"]} for _ in range(12)]})
    assert response.status_code == 201, response.text
    macs = [p["mac_address"] for p in response.json()["ports"]]
    assert all(MAC.match(mac) for mac in macs), macs
    assert len(set(macs)) == 12


def test_explicit_mac_and_a_clash_in_one_network(admin: Api):
    net_a = admin.create("network", name="mac-a")
    net_b = admin.create("network", name="mac-b")
    mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3])
    port = admin.create("port", network_id=net_a["id"], mac_address=mac.upper())
    assert port["mac_address"] == mac
    clash = admin.post("/v2.0/ports", {"port": {"network_id": net_a["id"], "mac_address": mac}})
    message = fault(clash, 409, "MacAddressInUse")
    assert mac in message and net_a["id"] in message
    assert port_ids(admin, net_a["id"]) == {port["id"]}
    # The same MAC on another network is fine.
    other = admin.create("port", network_id=net_b["id"], mac_address=mac)
    assert other["mac_address"] == mac
    # Nor may an update take a MAC in use.
    third = admin.create("port", network_id=net_a["id"])
    fault(admin.put(f"/v2.0/ports/{third['id']}", {"port": {"mac_address": mac}}), 409, "MacAddressInUse")
    assert admin.show("port", third["id"])["mac_address"] == third["mac_address"]


def test_invalid_mac_is_refused(admin: Api):
    network = admin.create("network", name="bad-mac")
    for mac in ("fa:16:3e:00:00", "01:00:5e:00:00:01", "00:00:00:00:00:00", "zz:16:3e:00:00:01"):
        fault(admin.post("/v2.0/ports", {"port": {"network_id": network["id"], "mac_address": mac}}),
              400, "HTTPBadRequest")
    assert port_ids(admin, network["id"]) == set()


# ---------------------------------------------------------------- fixed IPs


def test_default_address_comes_from_the_pool_never_the_gateway(admin: Api):
    network, subnet = admin.network_with_subnet(
        "10.1.0.0/24", allocation_pools=[{"start": "10.1.0.100", "end": "10.1.0.109"}])
    assert subnet["gateway_ip"] == "10.1.0.1"
    addresses = []
    for _ in range(10):
        port = admin.create("port", network_id=network["id"])
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [subnet["id"]]
        addresses += ips(port)
    assert sorted(addresses, key=ipaddress.ip_address) == [f"10.1.0.{i}" for i in range(100, 110)]


def test_a_port_on_a_network_without_subnets_has_no_address(admin: Api):
    network = admin.create("network", name="bare")
    assert admin.create("port", network_id=network["id"])["fixed_ips"] == []


def test_empty_fixed_ips_means_no_address(admin: Api):
    network, subnet = admin.network_with_subnet("10.11.0.0/24")
    port = admin.create("port", network_id=network["id"], fixed_ips=[])
    assert port["fixed_ips"] == []
    port = admin.update("port", port["id"], fixed_ips=[{"subnet_id": subnet["id"]}])
    assert [f["subnet_id"] for f in port["fixed_ips"]] == [subnet["id"]]
    assert admin.update("port", port["id"], fixed_ips=[])["fixed_ips"] == []


def two_subnets(admin: Api) -> tuple[dict, dict, dict]:
    network = admin.create("network", name="two")
    s1 = admin.create("subnet", network_id=network["id"], cidr="10.2.0.0/24", ip_version=4)
    s2 = admin.create("subnet", network_id=network["id"], cidr="10.3.0.0/24", ip_version=4)
    return network, s1, s2


def test_fixed_ips_by_subnet_by_address_and_both(admin: Api):
    network, s1, s2 = two_subnets(admin)
    by_subnet = admin.create("port", network_id=network["id"], fixed_ips=[{"subnet_id": s2["id"]}])
    [entry] = by_subnet["fixed_ips"]
    assert entry["subnet_id"] == s2["id"]
    assert ipaddress.ip_address(entry["ip_address"]) in ipaddress.ip_network("10.3.0.0/24")
    assert entry["ip_address"] != "10.3.0.1"

    # The first port's address is random: ask for ones it cannot hold.
    free = [a for a in ("10.3.0.50", "10.3.0.51", "10.3.0.20", "10.3.0.21") if a != entry["ip_address"]]
    by_address = admin.create("port", network_id=network["id"], fixed_ips=[{"ip_address": free[0]}])
    assert by_address["fixed_ips"] == [{"subnet_id": s2["id"], "ip_address": free[0]}]

    both = admin.create("port", network_id=network["id"],
                        fixed_ips=[{"subnet_id": s1["id"], "ip_address": "10.2.0.20"},
                                   {"subnet_id": s2["id"], "ip_address": free[2]}])
    assert sorted(ips(both)) == sorted(["10.2.0.20", free[2]])
    assert {f["subnet_id"] for f in both["fixed_ips"]} == {s1["id"], s2["id"]}
    assert admin.show("port", both["id"])["fixed_ips"] == both["fixed_ips"]


def test_taken_address_is_a_conflict(admin: Api):
    network, s1, _ = two_subnets(admin)
    first = admin.create("port", network_id=network["id"], fixed_ips=[{"ip_address": "10.2.0.30"}])
    response = admin.post("/v2.0/ports", {"port": {
        "network_id": network["id"], "fixed_ips": [{"subnet_id": s1["id"], "ip_address": "10.2.0.30"}]}})
    message = fault(response, 409, "IpAddressAlreadyAllocated")
    assert "10.2.0.30" in message and s1["id"] in message
    assert port_ids(admin, network["id"]) == {first["id"]}


@pytest.mark.parametrize("address", ["10.3.0.7", "10.2.0.0", "10.2.0.255"])
def test_address_outside_the_named_subnet_is_a_bad_request(admin: Api, address: str):
    network, s1, _ = two_subnets(admin)
    response = admin.post("/v2.0/ports", {"port": {
        "network_id": network["id"], "fixed_ips": [{"subnet_id": s1["id"], "ip_address": address}]}})
    assert address in fault(response, 400, "InvalidIpForSubnet")
    assert port_ids(admin, network["id"]) == set()


def test_address_on_no_subnet_of_the_network_is_a_bad_request(admin: Api):
    network, _, _ = two_subnets(admin)
    response = admin.post("/v2.0/ports", {"port": {
        "network_id": network["id"], "fixed_ips": [{"ip_address": "192.168.99.5"}]}})
    assert "192.168.99.5" in fault(response, 400, "InvalidIpForNetwork")
    assert port_ids(admin, network["id"]) == set()


def test_subnet_of_another_network_is_a_bad_request(admin: Api):
    network, _, _ = two_subnets(admin)
    _, foreign = admin.network_with_subnet("10.4.0.0/24")
    response = admin.post("/v2.0/ports", {"port": {
        "network_id": network["id"], "fixed_ips": [{"subnet_id": foreign["id"]}]}})
    message = fault(response, 400, "InvalidInput")
    assert foreign["id"] in message
    # A subnet that does not exist at all is a 404, as in Neutron.
    missing = str(uuid.uuid4())
    response = admin.post("/v2.0/ports", {"port": {"network_id": network["id"], "fixed_ips": [{"subnet_id": missing}]}})
    assert missing in fault(response, 404, "SubnetNotFound")
    assert port_ids(admin, network["id"]) == set()


def test_update_fixed_ips_adds_and_swaps_addresses(admin: Api):
    network, s1, s2 = two_subnets(admin)
    port = admin.create("port", network_id=network["id"], fixed_ips=[{"ip_address": "10.2.0.40"}])
    # Add a second address (from the other subnet), keeping the first.
    port = admin.update("port", port["id"], fixed_ips=[{"subnet_id": s1["id"], "ip_address": "10.2.0.40"},
                                                         {"subnet_id": s2["id"]}])
    assert [f["subnet_id"] for f in port["fixed_ips"]] == [s1["id"], s2["id"]]
    assert ips(port)[0] == "10.2.0.40"
    second = ips(port)[1]
    assert ipaddress.ip_address(second) in ipaddress.ip_network("10.3.0.0/24")
    # Swap the first address for another one: the old one is released.
    port = admin.update("port", port["id"], fixed_ips=[{"ip_address": "10.2.0.41"},
                                                         {"subnet_id": s2["id"], "ip_address": second}])
    assert sorted(ips(port)) == sorted(["10.2.0.41", second])
    assert admin.show("port", port["id"])["fixed_ips"] == port["fixed_ips"]
    taker = admin.create("port", network_id=network["id"], fixed_ips=[{"ip_address": "10.2.0.40"}])
    assert ips(taker) == ["10.2.0.40"]
    # Swapping onto a taken address fails and changes nothing.
    response = admin.put(f"/v2.0/ports/{port['id']}", {"port": {"fixed_ips": [{"ip_address": "10.2.0.40"}]}})
    fault(response, 409, "IpAddressAlreadyAllocated")
    assert sorted(ips(admin.show("port", port["id"]))) == sorted(["10.2.0.41", second])


def test_pool_exhaustion_is_a_conflict(admin: Api):
    network, subnet = admin.network_with_subnet("10.9.0.0/29")
    assert subnet["allocation_pools"] == [{"start": "10.9.0.2", "end": "10.9.0.6"}]
    taken = [ips(admin.create("port", network_id=network["id"]))[0] for _ in range(5)]
    assert sorted(taken) == [f"10.9.0.{i}" for i in range(2, 7)]
    response = admin.post("/v2.0/ports", {"port": {"network_id": network["id"]}})
    assert network["id"] in fault(response, 409, "IpAddressGenerationFailure")
    assert len(port_ids(admin, network["id"])) == 5


def test_ipv6_slaac_address_is_eui64_of_the_mac(admin: Api):
    network = admin.create("network", name="v6")
    v4 = admin.create("subnet", network_id=network["id"], cidr="10.6.0.0/24", ip_version=4)
    v6 = admin.create("subnet", network_id=network["id"], cidr="2001:db8:1::/64", ip_version=6,
                      ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    port = admin.create("port", network_id=network["id"], mac_address="fa:16:3e:12:34:56")
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    assert set(by_subnet) == {v4["id"], v6["id"]}
    assert ipaddress.ip_address(by_subnet[v6["id"]]) == ipaddress.ip_address("2001:db8:1::f816:3eff:fe12:3456")
    # A SLAAC address cannot be asked for directly.
    response = admin.post("/v2.0/ports", {"port": {
        "network_id": network["id"], "fixed_ips": [{"subnet_id": v6["id"], "ip_address": "2001:db8:1::99"}]}})
    fault(response, 400, "InvalidInput")


# ---------------------------------------------------------------- device, status, binding


def test_device_owner_device_id_and_status(admin: Api):
    network = admin.create("network", name="dev")
    device = str(uuid.uuid4())
    port = admin.create("port", network_id=network["id"], device_owner="compute:nova", device_id=device,
                        name="vm-port")
    assert (port["device_owner"], port["device_id"], port["status"]) == ("compute:nova", device, "DOWN")
    assert port["admin_state_up"] is True
    assert [p["id"] for p in admin.list("ports", {"device_id": device})] == [port["id"]]
    port = admin.update("port", port["id"], device_id="other", admin_state_up=False)
    assert (port["device_id"], port["admin_state_up"], port["status"]) == ("other", False, "DOWN")
    assert admin.list("ports", {"device_id": device}) == []


def test_binding_without_and_with_a_host(admin: Api):
    network = admin.create("network", name="bind")
    unbound = admin.create("port", network_id=network["id"])
    assert (unbound["binding:host_id"], unbound["binding:vif_type"]) == ("", "unbound")
    assert unbound["binding:vnic_type"] == "normal"
    assert unbound["binding:vif_details"] == {} and unbound["binding:profile"] == {}
    # No agent runs on the host: the binding fails, as Neutron reports it, and says why (binding to
    # live agents: tests/api/test_agent_api.py).
    bound = admin.create("port", network_id=network["id"], **{"binding:host_id": "compute-1",
                                                                "binding:vnic_type": "direct"})
    assert (bound["binding:host_id"], bound["binding:vif_type"]) == ("compute-1", "binding_failed")
    assert bound["binding:vif_details"] == {"reason": "no live Open vSwitch agent on host compute-1"}
    assert bound["binding:vnic_type"] == "direct"
    moved = admin.update("port", unbound["id"], **{"binding:host_id": "compute-2"})
    assert (moved["binding:host_id"], moved["binding:vif_type"]) == ("compute-2", "binding_failed")
    cleared = admin.update("port", unbound["id"], **{"binding:host_id": ""})
    assert (cleared["binding:host_id"], cleared["binding:vif_type"]) == ("", "unbound")
    assert cleared["binding:vif_details"] == {}
    fault(admin.post("/v2.0/ports", {"port": {"network_id": network["id"], "binding:vnic_type": "bogus"}}),
          400, "HTTPBadRequest")


def test_binding_attributes_are_hidden_from_members_and_host_is_admin_only(admin: Api, member: Api):
    network = member.create("network", name="mine")
    port = member.create("port", network_id=network["id"], **{"binding:vnic_type": "direct"})
    hidden = {"binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile"}
    assert not hidden & set(port)
    assert port["binding:vnic_type"] == "direct"
    assert not hidden & set(member.show("port", port["id"]))
    assert not hidden & set(member.list("ports", {"network_id": network["id"]})[0])
    assert hidden <= set(admin.show("port", port["id"]))

    response = member.post("/v2.0/ports", {"port": {"network_id": network["id"], "binding:host_id": "h1"}})
    fault(response, 403, "PolicyNotAuthorized")
    response = member.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "h1"}})
    fault(response, 403, "PolicyNotAuthorized")
    assert admin.show("port", port["id"])["binding:host_id"] == ""
    assert port_ids(admin, network["id"]) == {port["id"]}


# ---------------------------------------------------------------- port security, security groups


def test_port_security_is_inherited_from_the_network(admin: Api):
    open_net = admin.create("network", name="nosec", port_security_enabled=False)
    assert open_net["port_security_enabled"] is False
    port = admin.create("port", network_id=open_net["id"])
    assert (port["port_security_enabled"], port["security_groups"]) == (False, [])
    secured = admin.create("network", name="sec")
    assert secured["port_security_enabled"] is True
    port = admin.create("port", network_id=secured["id"])
    assert port["port_security_enabled"] is True and len(port["security_groups"]) == 1
    # An explicit value beats the network's.
    port = admin.create("port", network_id=secured["id"], port_security_enabled=False)
    assert (port["port_security_enabled"], port["security_groups"]) == (False, [])


def test_ports_get_their_projects_default_security_group(baryon, member: Api):
    network = member.create("network", name="sg")
    first = member.create("port", network_id=network["id"])
    second = member.create("port", network_id=network["id"])
    assert len(first["security_groups"]) == 1
    assert first["security_groups"] == second["security_groups"]
    uuid.UUID(first["security_groups"][0])
    # Another project has its own default group.
    other = Api(baryon.endpoint, uuid.uuid4().hex)
    try:
        other_port = other.create("port", network_id=other.create("network", name="sg2")["id"])
    finally:
        other.close()
    assert len(other_port["security_groups"]) == 1
    assert other_port["security_groups"] != first["security_groups"]
    # The network's own ports (network:*) get none.
    dhcp = member.create("port", network_id=network["id"], device_owner="network:dhcp")
    assert dhcp["security_groups"] == []
    # Filtering by group finds the project's ports that carry it.
    listed = member.list("ports", {"security_groups": first["security_groups"][0]})
    assert {p["id"] for p in listed} == {first["id"], second["id"]}


def test_security_groups_need_port_security(admin: Api):
    network = admin.create("network", name="psg")
    group = admin.create("port", network_id=network["id"])["security_groups"]
    response = admin.post("/v2.0/ports", {"port": {"network_id": network["id"], "port_security_enabled": False,
                                                   "security_groups": group}})
    fault(response, 400, "PortSecurityAndIPRequiredForSecurityGroups")
    assert len(port_ids(admin, network["id"])) == 1


def test_disabling_port_security_while_groups_remain_is_a_conflict(admin: Api):
    network = admin.create("network", name="dsg")
    port = admin.create("port", network_id=network["id"])
    response = admin.put(f"/v2.0/ports/{port['id']}", {"port": {"port_security_enabled": False}})
    fault(response, 409, "PortSecurityPortHasSecurityGroup")
    assert admin.show("port", port["id"])["port_security_enabled"] is True
    port = admin.update("port", port["id"], port_security_enabled=False, security_groups=[])
    assert (port["port_security_enabled"], port["security_groups"]) == (False, [])


def test_unknown_security_group_is_not_found(admin: Api):
    network = admin.create("network", name="nosg")
    missing = str(uuid.uuid4())
    response = admin.post("/v2.0/ports", {"port": {"network_id": network["id"], "security_groups": [missing]}})
    assert missing in fault(response, 404, "SecurityGroupNotFound")
    assert port_ids(admin, network["id"]) == set()


# ---------------------------------------------------------------- allowed address pairs


def test_allowed_address_pairs(admin: Api):
    network = admin.create("network", name="aap")
    pairs = [{"ip_address": "10.0.0.50"}, {"ip_address": "10.9.0.0/24", "mac_address": "fa:16:3e:00:00:01"}]
    port = admin.create("port", network_id=network["id"], allowed_address_pairs=pairs)
    assert port["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.50", "mac_address": port["mac_address"]},
        {"ip_address": "10.9.0.0/24", "mac_address": "fa:16:3e:00:00:01"},
    ]
    duplicate = [{"ip_address": "10.0.0.60"}, {"ip_address": "10.0.0.60"}]
    response = admin.put(f"/v2.0/ports/{port['id']}", {"port": {"allowed_address_pairs": duplicate}})
    fault(response, 400, "DuplicateAddressPairInRequest")
    assert admin.show("port", port["id"])["allowed_address_pairs"] == port["allowed_address_pairs"]
    assert admin.update("port", port["id"], allowed_address_pairs=[])["allowed_address_pairs"] == []
    # Without port security a port may not have address pairs.
    open_port = admin.create("port", network_id=network["id"], port_security_enabled=False)
    response = admin.put(f"/v2.0/ports/{open_port['id']}", {"port": {"allowed_address_pairs": pairs}})
    fault(response, 409, "AddressPairAndPortSecurityRequired")
    response = admin.post("/v2.0/ports", {"port": {"network_id": network["id"], "port_security_enabled": False,
                                                   "allowed_address_pairs": pairs}})
    fault(response, 409, "AddressPairAndPortSecurityRequired")
    assert port_ids(admin, network["id"]) == {port["id"], open_port["id"]}
    fault(admin.put(f"/v2.0/ports/{port['id']}", {"port": {"allowed_address_pairs": [{"ip_address": "x"}]}}),
          400, "HTTPBadRequest")


# ---------------------------------------------------------------- extra DHCP options


def test_extra_dhcp_opts_set_merge_and_remove(admin: Api):
    network = admin.create("network", name="dhcpopts")
    port = admin.create("port", network_id=network["id"], extra_dhcp_opts=[
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
        {"opt_name": "tftp-server", "opt_value": "10.0.0.9"}])

    def opts(p: dict) -> dict:
        return {(o["opt_name"], o["ip_version"]): o["opt_value"] for o in p["extra_dhcp_opts"]}

    assert opts(port) == {("bootfile-name", 4): "pxelinux.0", ("tftp-server", 4): "10.0.0.9"}
    port = admin.update("port", port["id"], extra_dhcp_opts=[
        {"opt_name": "bootfile-name", "opt_value": "grub.efi"},
        {"opt_name": "server-ip-address", "opt_value": "10.0.0.8"}])
    assert opts(port) == {("bootfile-name", 4): "grub.efi", ("tftp-server", 4): "10.0.0.9",
                          ("server-ip-address", 4): "10.0.0.8"}
    port = admin.update("port", port["id"], extra_dhcp_opts=[{"opt_name": "tftp-server", "opt_value": None}])
    assert opts(port) == {("bootfile-name", 4): "grub.efi", ("server-ip-address", 4): "10.0.0.8"}
    assert opts(admin.show("port", port["id"])) == opts(port)


# ---------------------------------------------------------------- delete


def test_deleting_a_port_frees_its_address(admin: Api):
    network, subnet = admin.network_with_subnet("10.7.0.0/24")
    port = admin.create("port", network_id=network["id"])
    [address] = ips(port)
    assert admin.delete(f"/v2.0/ports/{port['id']}").status_code == 204
    assert port["id"] in fault(admin.get(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
    fault(admin.delete(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
    again = admin.create("port", network_id=network["id"],
                         fixed_ips=[{"subnet_id": subnet["id"], "ip_address": address}])
    assert ips(again) == [address]


def test_members_see_only_their_ports(admin: Api, member: Api, baryon):
    network = member.create("network", name="iso")
    port = member.create("port", network_id=network["id"])
    stranger = Api(baryon.endpoint, uuid.uuid4().hex)
    try:
        fault(stranger.get(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
        fault(stranger.delete(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
        assert stranger.list("ports", {"network_id": network["id"]}) == []
        response = stranger.post("/v2.0/ports", {"port": {"network_id": network["id"]}})
        fault(response, 404, "NetworkNotFound")
    finally:
        stranger.close()
    assert port_ids(admin, network["id"]) == {port["id"]}


# ---------------------------------------------------------------- real clients


def test_ports_through_openstacksdk(baryon, project):
    conn = sdk(baryon.endpoint, project)
    network = conn.network.create_network(name="sdk-net")
    subnet = conn.network.create_subnet(network_id=network.id, cidr="10.8.0.0/24", ip_version=4)
    port = conn.network.create_port(network_id=network.id, name="sdk-port",
                                    fixed_ips=[{"subnet_id": subnet.id, "ip_address": "10.8.0.5"}])
    assert port.fixed_ips == [{"subnet_id": subnet.id, "ip_address": "10.8.0.5"}]
    assert MAC.match(port.mac_address) and port.status == "DOWN" and port.project_id == project
    assert port.binding_vif_type is None and port.binding_host_id is None  # hidden from a member
    assert len(port.security_group_ids) == 1 and port.is_port_security_enabled is True
    port = conn.network.update_port(port, name="renamed", allowed_address_pairs=[{"ip_address": "10.8.0.200"}])
    assert port.name == "renamed" and port.revision_number == 2
    assert port.allowed_address_pairs == [{"ip_address": "10.8.0.200", "mac_address": port.mac_address}]
    assert [p.id for p in conn.network.ports(network_id=network.id)] == [port.id]
    assert conn.network.find_port("renamed").id == port.id
    conn.network.delete_port(port)
    assert list(conn.network.ports(network_id=network.id)) == []


def test_ports_through_the_cli(baryon, admin: Api):
    network, subnet = admin.network_with_subnet("10.10.0.0/24")
    name = "cli-" + uuid.uuid4().hex[:8]
    created = cli(baryon.endpoint, "port", "create", "--network", network["id"],
                  "--fixed-ip", f"subnet={subnet['id']},ip-address=10.10.0.10",
                  "--mac-address", "fa:16:3e:aa:00:01", "--disable-port-security", "--no-security-group", name)
    assert created["name"] == name and created["mac_address"] == "fa:16:3e:aa:00:01"
    assert created["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.10.0.10"}]
    assert created["port_security_enabled"] is False and created["security_group_ids"] == []
    assert created["binding_vif_type"] == "unbound" and created["status"] == "DOWN"

    listed = cli(baryon.endpoint, "port", "list", "--network", network["id"])
    assert [(p["ID"], p["Name"], p["MAC Address"]) for p in listed] == [(created["id"], name, "fa:16:3e:aa:00:01")]

    cli(baryon.endpoint, "port", "set", created["id"], "--name", name + "-b", "--description", "via cli",
        "--fixed-ip", f"subnet={subnet['id']},ip-address=10.10.0.11",
        "--extra-dhcp-option", "name=bootfile-name,value=pxelinux.0", "--host", "compute-9")
    shown = cli(baryon.endpoint, "port", "show", created["id"])
    assert (shown["name"], shown["description"]) == (name + "-b", "via cli")
    assert sorted(f["ip_address"] for f in shown["fixed_ips"]) == ["10.10.0.10", "10.10.0.11"]
    assert shown["extra_dhcp_opts"] == [{"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}]
    assert (shown["binding_host_id"], shown["binding_vif_type"]) == ("compute-9", "binding_failed")
    assert shown["revision_number"] == 2

    cli(baryon.endpoint, "port", "unset", created["id"], "--fixed-ip", f"subnet={subnet['id']},ip-address=10.10.0.10",
        "--host")
    port = admin.show("port", created["id"])
    assert ips(port) == ["10.10.0.11"]
    assert (port["binding:host_id"], port["binding:vif_type"]) == ("", "unbound")

    cli(baryon.endpoint, "port", "delete", created["id"])
    fault(admin.get(f"/v2.0/ports/{created['id']}"), 404, "PortNotFound")
    assert admin.list("ports", {"fixed_ips": "ip_address=10.10.0.11", "network_id": network["id"]}) == []
