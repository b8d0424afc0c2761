"""Floating IPs through the API, against a running server on every database backend.

Create on an external network (an address allocated, or the subnet and address asked for), the
floating IP's own port, association with a port (the router derived; multi-address ports; every
refusal with its code and message), disassociation, what associations hold (interfaces, gateways,
the port's fixed IP), deleting the port disassociates, deleting the external network takes the
unassociated ones, visibility, filters, concurrency (one fixed IP, many floating IPs at once: one
wins; creates past the quota) and the change log; with openstacksdk, the ``openstack`` CLI and httpx.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass

import httpx
import openstack.exceptions
import pytest

from tests.api import l3
from tests.api.helpers import fault, http, name, sdk, timestamp
from tests.api.l3 import add_interface, create, external, interface, listed, private, show, update
from tests.api import helpers
from tests.api.test_concurrency import CLIENTS, all_at_once
from tests.support.server import BaryonServer

KEYS = {"id", "project_id", "tenant_id", "floating_ip_address", "floating_network_id", "router_id", "port_id",
        "fixed_ip_address", "status", "description", "port_details", "tags", "created_at", "updated_at",
        "revision_number"}
POOL = ipaddress.ip_network("203.0.113.0/24")


@dataclass
class Topology:
    ext: dict
    ext_subnet: dict
    net: dict
    subnet: dict
    router: dict


@pytest.fixture
def topology(admin: httpx.Client, member: httpx.Client) -> Topology:
    """An external network, the project's network behind its router (gateway + interface)."""
    ext, ext_subnet = external(admin)
    net, subnet = private(member)
    router = create(member, "router", name=name("r"), external_gateway_info={"network_id": ext["id"]})
    add_interface(member, router["id"], subnet_id=subnet["id"])
    return Topology(ext, ext_subnet, net, subnet, router)


def cli(endpoint: str, *args: str):
    """``openstack floating ip ...``: JSON output for create, show and list."""
    wants_json = args[2] in ("create", "show", "list")
    return helpers.cli(endpoint, *args, *(("-f", "json") if wants_json else ()))


def fip_port(admin: httpx.Client, fip: dict) -> dict:
    [port] = listed(admin, "ports", device_id=fip["id"])
    return port


# ---------------------------------------------------------------- create


def test_create_through_openstacksdk(baryon: BaryonServer, project: str, admin: httpx.Client,
                                     member: httpx.Client, topology: Topology):
    conn = sdk(baryon.endpoint, project)
    made = conn.network.create_ip(floating_network_id=topology.ext["id"], description="web")
    assert (made.status, made.port_id, made.router_id, made.project_id) == ("DOWN", None, None, project)
    body = show(member, "floatingip", made.id)
    assert set(body) == KEYS
    assert ipaddress.ip_address(body["floating_ip_address"]) in POOL
    assert body["floating_ip_address"] != topology.ext_subnet["gateway_ip"]
    assert (body["floating_network_id"], body["tenant_id"], body["description"]) == (
        topology.ext["id"], project, "web")
    assert (body["fixed_ip_address"], body["port_details"], body["tags"], body["revision_number"]) == (
        None, None, [], 1)
    assert timestamp(body["created_at"]) == timestamp(body["updated_at"])

    # Its port: on the external network, no project (never shown to the project), status N/A.
    port = fip_port(admin, body)
    assert (port["device_owner"], port["project_id"], port["network_id"], port["status"]) == (
        "network:floatingip", "", topology.ext["id"], "N/A")
    assert port["fixed_ips"] == [{"subnet_id": topology.ext_subnet["id"], "ip_address": body["floating_ip_address"]}]
    assert listed(member, "ports", device_id=body["id"]) == []
    error = fault(admin.delete(f"/ports/{port['id']}"), 409, "ServicePortInUse")
    assert error["message"] == (f"Port {port['id']} cannot be deleted directly via the port API: has device "
                                f"owner network:floatingip.")

    assert [f.id for f in conn.network.ips()] == [made.id]
    assert conn.network.find_ip(body["floating_ip_address"]).id == made.id
    conn.network.delete_ip(made.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_ip(made.id)
    fault(admin.get(f"/ports/{port['id']}"), 404, "PortNotFound")  # the port went with it


def test_create_is_refused_as_neutron_refuses_it(admin: httpx.Client, member: httpx.Client, topology: Topology):
    def refused(client: httpx.Client, status: int, type_: str, **attrs) -> str:
        return fault(client.post("/floatingips", json={"floatingip": attrs}), status, type_)["message"]

    assert refused(member, 400, "BadRequest", floating_network_id=topology.net["id"]) == (
        f"Bad floatingip request: Network {topology.net['id']} is not a valid external network.")
    missing = str(uuid.uuid4())
    assert refused(member, 404, "NetworkNotFound", floating_network_id=missing) == (
        f"Network {missing} could not be found.")
    v6_only = create(admin, "network", name=name("v6ext"), **{"router:external": True})
    create(admin, "subnet", network_id=v6_only["id"], cidr="2001:db8:99::/64", ip_version=6)
    assert refused(member, 400, "BadRequest", floating_network_id=v6_only["id"]) == (
        f"Bad floatingip request: Network {v6_only['id']} does not contain any IPv4 subnet.")
    message = refused(member, 403, "PolicyNotAuthorized", floating_network_id=topology.ext["id"],
                      floating_ip_address="203.0.113.250")
    assert "rule:create_floatingip:floating_ip_address" in message
    assert refused(member, 400, "BadRequest", floating_network_id=topology.ext["id"],
                   fixed_ip_address="10.0.0.5") == (
        "Bad floatingip request: fixed_ip_address cannot be specified without a port_id.")
    refused(member, 400, "HTTPBadRequest", floating_network_id=topology.ext["id"], router_id=topology.router["id"])
    refused(member, 400, "HTTPBadRequest", floating_network_id="not-a-uuid")
    refused(member, 400, "HTTPBadRequest")
    assert listed(member, "floatingips") == []

    # The admin may ask for the address; a taken one is a 409, one off the subnet a 400.
    asked = create(admin, "floatingip", floating_network_id=topology.ext["id"], floating_ip_address="203.0.113.250")
    assert asked["floating_ip_address"] == "203.0.113.250"
    refused(admin, 409, "IpAddressAlreadyAllocated", floating_network_id=topology.ext["id"],
            floating_ip_address="203.0.113.250")
    refused(admin, 400, "InvalidIpForNetwork", floating_network_id=topology.ext["id"],
            floating_ip_address="198.51.100.9")
    # A subnet may be chosen (an external network with two).
    second = create(admin, "subnet", network_id=topology.ext["id"], cidr="198.51.100.0/24", ip_version=4,
                    enable_dhcp=False)
    chosen = create(member, "floatingip", floating_network_id=topology.ext["id"], subnet_id=second["id"])
    assert ipaddress.ip_address(chosen["floating_ip_address"]) in ipaddress.ip_network("198.51.100.0/24")
    assert "subnet_id" not in chosen  # input only


def test_association_derives_the_router(baryon: BaryonServer, project: str, admin: httpx.Client,
                                        member: httpx.Client, topology: Topology):
    port = create(member, "port", network_id=topology.net["id"], name="vm1")
    fip = create(member, "floatingip", floating_network_id=topology.ext["id"])
    seq = l3.last_seq(baryon)
    associated = update(member, "floatingip", fip["id"], port_id=port["id"])
    address = port["fixed_ips"][0]["ip_address"]
    assert (associated["port_id"], associated["fixed_ip_address"], associated["router_id"]) == (
        port["id"], address, topology.router["id"])
    assert associated["port_details"] == {
        "name": "vm1", "network_id": topology.net["id"], "mac_address": port["mac_address"],
        "admin_state_up": True, "status": "DOWN", "device_id": "", "device_owner": ""}
    assert (associated["status"], associated["revision_number"]) == ("DOWN", 2)
    assert [(t, rid, a) for _, t, rid, a in l3.changes_since(baryon, seq)] == [("floatingip", fip["id"], "update")]
    assert [f["id"] for f in listed(member, "floatingips", port_id=port["id"])] == [fip["id"]]
    assert [f["id"] for f in listed(member, "floatingips", router_id=topology.router["id"])] == [fip["id"]]
    assert [f["id"] for f in listed(member, "floatingips", fixed_ip_address=address)] == [fip["id"]]
    assert [f["id"] for f in listed(member, "floatingips", status="DOWN",
                                    floating_ip_address=fip["floating_ip_address"])] == [fip["id"]]

    # An update without port_id keeps the association; the same port again changes nothing.
    assert update(member, "floatingip", fip["id"], description="web")["port_id"] == port["id"]
    assert update(member, "floatingip", fip["id"], port_id=port["id"])["revision_number"] == 3

    # One floating IP per fixed IP.
    other = create(member, "floatingip", floating_network_id=topology.ext["id"])
    error = fault(member.put(f"/floatingips/{other['id']}", json={"floatingip": {"port_id": port["id"]}}),
                  409, "FloatingIPPortAlreadyAssociated")
    assert error["message"] == (
        f"Cannot associate floating IP {other['floating_ip_address']} ({other['id']}) with port {port['id']} "
        f"using fixed IP {address}, as that fixed IP already has a floating IP on external network "
        f"{topology.ext['id']}.")
    fault(member.post("/floatingips", json={"floatingip": {"floating_network_id": topology.ext["id"],
                                                           "port_id": port["id"]}}),
          409, "FloatingIPPortAlreadyAssociated")

    # What the association holds: the interface, the gateway, the port's fixed IP.
    error = fault(interface(member, topology.router["id"], "remove", subnet_id=topology.subnet["id"]), 409,
                  "RouterInterfaceInUseByFloatingIP")
    assert error["message"] == (f"Router interface for subnet {topology.subnet['id']} on router "
                                f"{topology.router['id']} cannot be deleted, as it is required by one or more "
                                f"floating IPs.")
    error = fault(member.put(f"/routers/{topology.router['id']}", json={"router": {"external_gateway_info": {}}}),
                  409, "RouterExternalGatewayInUseByFloatingIp")
    assert error["message"] == (f"Gateway cannot be updated for router {topology.router['id']}, since a gateway "
                                f"to external network {topology.ext['id']} is required by one or more floating IPs.")
    fault(member.delete(f"/routers/{topology.router['id']}"), 409, "RouterInUse")
    moved = member.put(f"/ports/{port['id']}", json={"port": {"fixed_ips": [{"subnet_id": topology.subnet["id"],
                                                                              "ip_address": "10.0.0.200"}]}})
    assert fault(moved, 400, "BadRequest")["message"] == (
        f"Bad port request: Cannot update the fixed_ips of the port {port['id']}, because its original fixed_ip "
        f"has been associated to a floating ip.")
    assert show(member, "port", port["id"])["fixed_ips"] == port["fixed_ips"]

    # Disassociation: port_id null (``openstack floating ip unset --port``).
    cleared = update(member, "floatingip", fip["id"], port_id=None)
    assert (cleared["port_id"], cleared["fixed_ip_address"], cleared["router_id"], cleared["port_details"]) == (
        None, None, None, None)
    assert update(member, "floatingip", other["id"], port_id=port["id"])["fixed_ip_address"] == address
    update(member, "floatingip", other["id"], port_id=None)
    assert interface(member, topology.router["id"], "remove", subnet_id=topology.subnet["id"]).status_code == 200
    error = fault(member.put(f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": port["id"]}}), 404,
                  "ExternalGatewayForFloatingIPNotFound")
    assert error["message"] == (f"External network {topology.ext['id']} is not reachable from subnet "
                                f"{topology.subnet['id']}.  Therefore, cannot associate Port {port['id']} with a "
                                f"Floating IP.")


def test_an_empty_update_disassociates_and_a_description_update_does_not(member: httpx.Client, topology: Topology):
    """As Neutron (tempest's test_blank_update_clears_association): ``{"floatingip": {}}`` clears the
    association, which once was a floating IP's only updatable attribute."""
    port = create(member, "port", network_id=topology.net["id"])
    fip = create(member, "floatingip", floating_network_id=topology.ext["id"], port_id=port["id"])
    described = update(member, "floatingip", fip["id"], description="kept")
    assert (described["port_id"], described["description"]) == (port["id"], "kept")
    cleared = update(member, "floatingip", fip["id"])
    assert (cleared["port_id"], cleared["fixed_ip_address"], cleared["router_id"], cleared["description"]) == (
        None, None, None, "kept")
    # The fixed address is free for another floating IP.
    other = create(member, "floatingip", floating_network_id=topology.ext["id"], port_id=port["id"])
    assert other["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    update(member, "floatingip", other["id"], port_id=None)


def test_association_is_refused_as_neutron_refuses_it(admin: httpx.Client, member: httpx.Client,
                                                      topology: Topology):
    fip = create(member, "floatingip", floating_network_id=topology.ext["id"])

    def refused(status: int, type_: str, **attrs) -> str:
        response = member.put(f"/floatingips/{fip['id']}", json={"floatingip": attrs})
        return fault(response, status, type_)["message"]

    # Several IPv4 addresses: the one to use must be named, and be the port's.
    second = create(member, "subnet", network_id=topology.net["id"], cidr="10.5.0.0/24", ip_version=4)
    multi = create(member, "port", network_id=topology.net["id"], fixed_ips=[
        {"subnet_id": topology.subnet["id"], "ip_address": "10.0.0.10"},
        {"subnet_id": second["id"], "ip_address": "10.5.0.10"}])
    assert refused(400, "BadRequest", port_id=multi["id"]) == (
        f"Bad floatingip request: Port {multi['id']} has multiple fixed IPv4 addresses.  Must provide a specific "
        f"IPv4 address when assigning a floating IP.")
    assert refused(400, "BadRequest", port_id=multi["id"], fixed_ip_address="10.0.0.11") == (
        f"Bad floatingip request: Port {multi['id']} does not have fixed ip 10.0.0.11.")
    assert refused(400, "BadRequest", port_id=multi["id"], fixed_ip_address="2001:db8::1") == (
        "Bad floatingip request: Cannot process floating IP association with 2001:db8::1, since that is not an "
        "IPv4 address.")
    # 10.5.0.0/24 has no router interface: not reachable.
    refused(404, "ExternalGatewayForFloatingIPNotFound", port_id=multi["id"], fixed_ip_address="10.5.0.10")
    chosen = update(member, "floatingip", fip["id"], port_id=multi["id"], fixed_ip_address="10.0.0.10")
    assert (chosen["fixed_ip_address"], chosen["router_id"]) == ("10.0.0.10", topology.router["id"])
    update(member, "floatingip", fip["id"], port_id=None)

    v6_net, _ = private(member, "2001:db8:7::/64")
    v6_port = create(member, "port", network_id=v6_net["id"])
    assert refused(400, "BadRequest", port_id=v6_port["id"]) == (
        f"Bad floatingip request: Cannot add floating IP to port {v6_port['id']} that has no fixed IPv4 addresses.")
    missing = str(uuid.uuid4())
    refused(404, "PortNotFound", port_id=missing)
    foreign = create(admin, "network", name="foreign", project_id=uuid.uuid4().hex)
    create(admin, "subnet", network_id=foreign["id"], cidr="10.9.0.0/24", ip_version=4)
    refused(404, "PortNotFound", port_id=create(admin, "port", network_id=foreign["id"])["id"])
    # A port the project sees on its network but that is another project's: refused, as Neutron.
    theirs = create(admin, "port", network_id=topology.net["id"], project_id=uuid.uuid4().hex,
                    fixed_ips=[{"subnet_id": topology.subnet["id"]}])
    assert refused(400, "BadRequest", port_id=theirs["id"]) == (
        f"Bad floatingip request: Cannot process floating IP association with Port {theirs['id']}, since that "
        f"port is owned by a different tenant.")
    dhcp = create(admin, "port", network_id=topology.net["id"], device_owner="network:dhcp",
                  project_id=member.headers["X-Project-Id"])
    assert refused(400, "BadRequest", port_id=dhcp["id"]) == (
        f"Bad floatingip request: Port {dhcp['id']} is unable to be assigned a floating IP.")
    assert refused(400, "HTTPBadRequest", floating_ip_address="203.0.113.99") == (
        "Cannot update read-only attribute floating_ip_address")
    assert show(member, "floatingip", fip["id"])["revision_number"] == 3
    # The admin may associate another project's port.
    assert update(admin, "floatingip", fip["id"], port_id=theirs["id"])["port_id"] == theirs["id"]


def test_deleting_the_port_disassociates(baryon: BaryonServer, member: httpx.Client, topology: Topology):
    port = create(member, "port", network_id=topology.net["id"])
    fip = create(member, "floatingip", floating_network_id=topology.ext["id"], port_id=port["id"])
    assert (fip["port_id"], fip["router_id"], fip["revision_number"]) == (port["id"], topology.router["id"], 1)
    seq = l3.last_seq(baryon)
    assert member.delete(f"/ports/{port['id']}").status_code == 204
    after = show(member, "floatingip", fip["id"])
    assert (after["port_id"], after["fixed_ip_address"], after["router_id"], after["revision_number"]) == (
        None, None, None, 2)
    log = [(t, rid, a) for _, t, rid, a in l3.changes_since(baryon, seq)]
    assert log == [("floatingip", fip["id"], "update"), ("port", port["id"], "delete")]
    # The router may go now.
    assert interface(member, topology.router["id"], "remove", subnet_id=topology.subnet["id"]).status_code == 200
    update(member, "router", topology.router["id"], external_gateway_info={})


def test_a_member_may_not_undo_an_admins_association_by_deleting_the_port(admin: httpx.Client,
                                                                           member: httpx.Client,
                                                                           topology: Topology):
    port = create(member, "port", network_id=topology.net["id"])
    admins = create(admin, "floatingip", floating_network_id=topology.ext["id"], port_id=port["id"])
    assert admins["port_id"] == port["id"]
    error = fault(member.delete(f"/ports/{port['id']}"), 409, "FipAssociated")
    assert error["message"] == (f'Unable to complete the operation on port "{port["id"]}" because the port still '
                                f'has an associated floating IP.')
    assert admin.delete(f"/ports/{port['id']}").status_code == 204
    assert show(admin, "floatingip", admins["id"])["port_id"] is None


def test_visibility_and_deletion(baryon: BaryonServer, admin: httpx.Client, member: httpx.Client,
                                 topology: Topology):
    mine = create(member, "floatingip", floating_network_id=topology.ext["id"])
    with http(baryon.endpoint, uuid.uuid4().hex) as stranger:
        theirs = create(stranger, "floatingip", floating_network_id=topology.ext["id"])
        assert [f["id"] for f in listed(stranger, "floatingips")] == [theirs["id"]]
        error = fault(stranger.get(f"/floatingips/{mine['id']}"), 404, "FloatingIPNotFound")
        assert error["message"] == f"Floating IP {mine['id']} could not be found"
        fault(stranger.put(f"/floatingips/{mine['id']}", json={"floatingip": {"port_id": None}}), 404,
              "FloatingIPNotFound")
        fault(stranger.delete(f"/floatingips/{mine['id']}"), 404, "FloatingIPNotFound")
    assert [f["id"] for f in listed(member, "floatingips")] == [mine["id"]]
    with http(baryon.endpoint, member.headers["X-Project-Id"], roles="reader") as reader:
        assert [f["id"] for f in listed(reader, "floatingips")] == [mine["id"]]
        fault(reader.post("/floatingips", json={"floatingip": {"floating_network_id": topology.ext["id"]}}),
              403, "PolicyNotAuthorized")
        fault(reader.delete(f"/floatingips/{mine['id']}"), 403, "PolicyNotAuthorized")
    everyone = {f["id"] for f in listed(admin, "floatingips", floating_network_id=topology.ext["id"])}
    assert everyone == {mine["id"], theirs["id"]}
    assert member.put(f"/floatingips/{mine['id']}/tags", json={"tags": ["prod"]}).status_code == 200
    assert [f["id"] for f in listed(member, "floatingips", tags="prod")] == [mine["id"]]
    seq = l3.last_seq(baryon)
    port = fip_port(admin, mine)
    assert member.delete(f"/floatingips/{mine['id']}").status_code == 204
    fault(member.get(f"/floatingips/{mine['id']}"), 404, "FloatingIPNotFound")
    log = [(t, rid, a) for _, t, rid, a in l3.changes_since(baryon, seq)]
    assert log == [("floatingip", mine["id"], "delete"), ("port", port["id"], "delete")]


def test_deleting_an_external_network_takes_its_unassociated_floating_ips(admin: httpx.Client,
                                                                         member: httpx.Client):
    ext, _ = external(admin)
    net, subnet = private(member)
    router = create(member, "router", name=name("r"), external_gateway_info={"network_id": ext["id"]})
    add_interface(member, router["id"], subnet_id=subnet["id"])
    port = create(member, "port", network_id=net["id"])
    loose = create(member, "floatingip", floating_network_id=ext["id"])
    held = create(member, "floatingip", floating_network_id=ext["id"], port_id=port["id"])
    fault(admin.delete(f"/networks/{ext['id']}"), 409, "NetworkInUse")
    assert show(member, "floatingip", loose["id"])["id"] == loose["id"]  # nothing happened
    update(member, "floatingip", held["id"], port_id=None)
    interface(member, router["id"], "remove", subnet_id=subnet["id"])
    update(member, "router", router["id"], external_gateway_info={})
    assert admin.delete(f"/networks/{ext['id']}").status_code == 204
    assert listed(member, "floatingips") == []


# ---------------------------------------------------------------- concurrency


def test_concurrent_associations_of_one_fixed_ip(baryon: BaryonServer, project: str, member: httpx.Client,
                                                 topology: Topology):
    port = create(member, "port", network_id=topology.net["id"])
    fips = [create(member, "floatingip", floating_network_id=topology.ext["id"]) for _ in range(CLIENTS)]

    def associate(client: httpx.Client, index: int) -> list[httpx.Response]:
        return [client.put(f"/v2.0/floatingips/{fips[index]['id']}", json={"floatingip": {"port_id": port["id"]}})]

    responses = all_at_once(baryon.endpoint, associate, {"X-Project-Id": project, "X-Roles": "member"})
    assert sorted(r.status_code for r in responses) == [200] + [409] * (CLIENTS - 1), [r.text for r in responses]
    assert {r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409} == {
        "FloatingIPPortAlreadyAssociated"}
    winners = listed(member, "floatingips", port_id=port["id"])
    assert len(winners) == 1 and winners[0]["router_id"] == topology.router["id"]
    assert sum(1 for f in listed(member, "floatingips") if f["port_id"]) == 1


def test_concurrent_association_and_port_delete(baryon: BaryonServer, project: str, member: httpx.Client,
                                                topology: Topology):
    """Whatever the order, no floating IP is left pointing at a deleted port."""
    ports = [create(member, "port", network_id=topology.net["id"]) for _ in range(CLIENTS // 2)]
    fips = [create(member, "floatingip", floating_network_id=topology.ext["id"]) for _ in ports]

    def race(client: httpx.Client, index: int) -> list[httpx.Response]:
        pair = index // 2
        if index % 2:
            return [client.delete(f"/v2.0/ports/{ports[pair]['id']}")]
        body = {"floatingip": {"port_id": ports[pair]["id"]}}
        return [client.put(f"/v2.0/floatingips/{fips[pair]['id']}", json=body)]

    responses = all_at_once(baryon.endpoint, race, {"X-Project-Id": project, "X-Roles": "member"})
    assert all(r.status_code in (200, 204, 404) for r in responses), [r.text for r in responses]
    assert listed(member, "ports", device_owner="") == []
    for fip in listed(member, "floatingips"):
        assert (fip["port_id"], fip["fixed_ip_address"], fip["router_id"]) == (None, None, None)


def test_concurrent_creates_past_the_floating_ip_quota(baryon: BaryonServer, project: str, admin: httpx.Client,
                                                       member: httpx.Client, topology: Topology):
    assert admin.put(f"/quotas/{project}", json={"quota": {"floatingip": 3}}).status_code == 200

    def make(client: httpx.Client, _index: int) -> list[httpx.Response]:
        return [client.post("/v2.0/floatingips", json={"floatingip": {"floating_network_id": topology.ext["id"]}})]

    responses = all_at_once(baryon.endpoint, make, {"X-Project-Id": project, "X-Roles": "member"})
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * (CLIENTS - 3)
    assert {r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409} == {"OverQuota"}
    made = listed(member, "floatingips")
    assert len(made) == 3 and len({f["floating_ip_address"] for f in made}) == 3
    floating_ports = [p for p in listed(admin, "ports", network_id=topology.ext["id"])
                      if p["device_owner"] == "network:floatingip"]
    assert sorted(p["device_id"] for p in floating_ports) == sorted(f["id"] for f in made)  # none left behind


# ---------------------------------------------------------------- the openstack CLI


def test_floating_ip_lifecycle_with_the_cli(baryon: BaryonServer, admin: httpx.Client):
    ext, ext_subnet = external(admin)
    net, subnet = private(admin, "10.70.0.0/24")
    router = create(admin, "router", name=name("r"), external_gateway_info={"network_id": ext["id"]})
    add_interface(admin, router["id"], subnet_id=subnet["id"])
    port_name = name("vm")
    port = create(admin, "port", network_id=net["id"], name=port_name)
    endpoint = baryon.endpoint
    made = cli(endpoint, "floating", "ip", "create", ext["id"], "--subnet", ext_subnet["id"],
               "--floating-ip-address", "203.0.113.123", "--description", "cli")
    assert (made["floating_ip_address"], made["status"], made["description"], made["port_id"]) == (
        "203.0.113.123", "DOWN", "cli", None)
    cli(endpoint, "floating", "ip", "set", "--port", port_name, "203.0.113.123")
    shown = cli(endpoint, "floating", "ip", "show", "203.0.113.123")
    assert (shown["port_id"], shown["fixed_ip_address"], shown["router_id"]) == (
        port["id"], port["fixed_ips"][0]["ip_address"], router["id"])
    assert shown["port_details"]["name"] == port_name
    rows = cli(endpoint, "floating", "ip", "list", "--port", port["id"])
    assert [(r["ID"], r["Floating IP Address"], r["Fixed IP Address"]) for r in rows] == [
        (made["id"], "203.0.113.123", port["fixed_ips"][0]["ip_address"])]
    cli(endpoint, "floating", "ip", "unset", "--port", made["id"])
    assert cli(endpoint, "floating", "ip", "show", made["id"])["port_id"] is None
    cli(endpoint, "floating", "ip", "delete", "203.0.113.123")
    fault(admin.get(f"/floatingips/{made['id']}"), 404, "FloatingIPNotFound")
