"""Routers through the API, against a running server on every database backend.

Create/show/list/update/delete, the external gateway (ext-gw-mode: enable_snat, external fixed
IPs, change and clear), interfaces by subnet and by port (Neutron's interface info, every refusal
with its code and message), IPv6 multi-prefix interfaces, extra routes (extraroute,
extraroute-atomic), the guards on the ports, subnets and networks routers use, isolation between
projects, concurrency (the same subnet, overlapping subnets, a quota: one winner, the proper error
for the rest) and the change log; with openstacksdk, the ``openstack`` CLI and httpx.
"""

from __future__ import annotations

import ipaddress
import uuid

import httpx
import openstack.exceptions
import pytest

from tests.api import l3
from tests.api.helpers import fault, http, name, sdk, timestamp
from tests.api.l3 import add_interface, create, external, interface, listed, private, show, update
from tests.api.rest import cli
from tests.api.test_concurrency import CLIENTS, all_at_once
from tests.support.server import BaryonServer

MEMBER_KEYS = {"id", "name", "description", "project_id", "tenant_id", "admin_state_up", "status", "status_reason",
               "external_gateway_info", "routes", "tags", "created_at", "updated_at", "revision_number",
               "flavor_id",  # l3-flavors
               "availability_zone_hints", "availability_zones"}
INFO_KEYS = {"id", "tenant_id", "project_id", "port_id", "network_id", "subnet_id", "subnet_ids"}


def gateway_ports(admin: httpx.Client, router_id: str) -> list[dict]:
    return [p for p in listed(admin, "ports", device_id=router_id) if p["device_owner"] == "network:router_gateway"]


# ---------------------------------------------------------------- create, show, list


def test_router_with_a_gateway_through_openstacksdk(baryon: BaryonServer, project: str, admin: httpx.Client,
                                                      member: httpx.Client):
    ext, ext_subnet = external(admin)
    conn = sdk(baryon.endpoint, project)
    router = conn.network.create_router(name="edge", description="to the world",
                                        external_gateway_info={"network_id": ext["id"]})
    # No L3 agent hosts it (none is alive on the shared server): ALLOCATING, and it says why.
    assert (router.name, router.description, router.status, router.is_admin_state_up) == (
        "edge", "to the world", "ALLOCATING", True)
    assert router.project_id == project

    body = show(member, "router", router.id)
    assert set(body) == MEMBER_KEYS  # ha and distributed are the admin's to see
    assert body["status_reason"] == "no live L3 agent to host the router"
    assert (body["tenant_id"], body["routes"], body["tags"], body["revision_number"]) == (project, [], [], 1)
    assert timestamp(body["created_at"]) == timestamp(body["updated_at"])
    gateway = body["external_gateway_info"]
    assert list(gateway) == ["network_id", "enable_snat", "external_fixed_ips"]
    assert (gateway["network_id"], gateway["enable_snat"]) == (ext["id"], True)
    [fixed] = gateway["external_fixed_ips"]
    assert fixed["subnet_id"] == ext_subnet["id"]
    assert ipaddress.ip_address(fixed["ip_address"]) in ipaddress.ip_network("203.0.113.0/24")
    assert fixed["ip_address"] != ext_subnet["gateway_ip"]

    as_admin = show(admin, "router", router.id)
    assert (as_admin["ha"], as_admin["distributed"]) == (False, False)
    assert {k: v for k, v in as_admin.items() if k not in ("ha", "distributed")} == body

    # The gateway port: the router's, without a project (hidden from the project, as in Neutron).
    [port] = gateway_ports(admin, router.id)
    assert (port["device_id"], port["project_id"], port["network_id"]) == (router.id, "", ext["id"])
    assert (port["name"], port["status"], port["admin_state_up"]) == ("", "DOWN", True)
    assert port["fixed_ips"] == [fixed]
    assert port["security_groups"] == []
    assert listed(member, "ports", device_id=router.id) == []

    assert [r.id for r in conn.network.routers()] == [router.id]
    assert conn.network.find_router("edge").id == router.id
    assert conn.network.get_router(router.id).external_gateway_info == gateway
    conn.network.delete_router(router.id)
    assert gateway_ports(admin, router.id) == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_router(router.id)


def test_a_gateway_is_refused_as_neutron_refuses_it(admin: httpx.Client, member: httpx.Client):
    ext, ext_subnet = external(admin)
    net, _ = private(member)

    def refused(status: int, type_: str, **attrs) -> str:
        return fault(member.post("/routers", json={"router": {"name": "r", **attrs}}), status, type_)["message"]

    assert refused(400, "BadRequest", external_gateway_info={"network_id": net["id"]}) == (
        f"Bad router request: Network {net['id']} is not an external network.")
    missing = str(uuid.uuid4())
    assert refused(404, "NetworkNotFound", external_gateway_info={"network_id": missing}) == (
        f"Network {missing} could not be found.")
    hidden = create(admin, "network", name="hidden", project_id=uuid.uuid4().hex)
    refused(404, "NetworkNotFound", external_gateway_info={"network_id": hidden["id"]})
    # enable_snat and external_fixed_ips are the admin's (Neutron's policy).
    message = refused(403, "PolicyNotAuthorized", external_gateway_info={"network_id": ext["id"], "enable_snat": False})
    assert "rule:create_router:external_gateway_info:enable_snat" in message
    refused(403, "PolicyNotAuthorized", external_gateway_info={
        "network_id": ext["id"], "external_fixed_ips": [{"subnet_id": ext_subnet["id"]}]})
    message = refused(400, "HTTPBadRequest", external_gateway_info={"enable_snat": True})
    assert message.startswith(
        "Invalid input for external_gateway_info. Reason: Validation of dictionary's keys failed.")
    assert refused(400, "HTTPBadRequest", external_gateway_info={"network_id": ext["id"], "qos_policy_id": None}) == (
        "Invalid input for external_gateway_info. Reason: Unexpected keys supplied: qos_policy_id.")
    assert refused(400, "HTTPBadRequest", routes=[]) == "Attribute 'routes' not allowed in POST"
    refused(403, "PolicyNotAuthorized", ha=True)
    refused(403, "PolicyNotAuthorized", distributed=True)
    assert listed(member, "routers") == []

    error = fault(admin.post("/routers", json={"router": {"external_gateway_info": {
        "network_id": ext["id"], "external_fixed_ips": [{"ip_address": "203.0.113.1"}]}}}), 400, "BadRequest")
    assert error["message"] == "Bad router request: External IP 203.0.113.1 is the same as the gateway IP."
    error = fault(admin.post("/routers", json={"router": {"ha": True}}), 400, "BadRequest")
    assert "HA routers are not supported" in error["message"]
    assert create(admin, "router", name=name("legacy"), ha=False, distributed=False)["ha"] is False
    # dvr is listed for its attribute, always false (true is refused above); l3-ha is not listed
    error = fault(admin.post("/routers", json={"router": {"distributed": True}}), 400, "BadRequest")
    assert "Distributed routers are not supported" in error["message"]
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert "dvr" in aliases and "l3-ha" not in aliases


def test_the_gateway_is_set_readdressed_moved_and_cleared(baryon: BaryonServer, admin: httpx.Client, project: str):
    ext, ext_subnet = external(admin)
    other, other_subnet = external(admin, "198.51.100.0/24")
    router = create(admin, "router", name=name("r"), project_id=project)
    assert router["external_gateway_info"] is None and gateway_ports(admin, router["id"]) == []

    seq = l3.last_seq(baryon)
    wanted = [{"subnet_id": ext_subnet["id"], "ip_address": "203.0.113.50"}]
    router = update(admin, "router", router["id"], external_gateway_info={
        "network_id": ext["id"], "enable_snat": False, "external_fixed_ips": wanted})
    assert router["external_gateway_info"] == {"network_id": ext["id"], "enable_snat": False,
                                               "external_fixed_ips": wanted}
    assert router["revision_number"] == 2
    [port] = gateway_ports(admin, router["id"])
    log = [(t, rid, a) for _, t, rid, a in l3.changes_since(baryon, seq)]
    assert log == [("port", port["id"], "create"), ("router", router["id"], "update")]

    # New external fixed IPs: the same port, re-addressed.
    moved = [{"subnet_id": ext_subnet["id"], "ip_address": "203.0.113.51"}]
    router = update(admin, "router", router["id"], external_gateway_info={
        "network_id": ext["id"], "enable_snat": False, "external_fixed_ips": moved})
    assert router["external_gateway_info"]["external_fixed_ips"] == moved
    assert [p["id"] for p in gateway_ports(admin, router["id"])] == [port["id"]]
    assert show(admin, "port", port["id"])["fixed_ips"] == moved

    # The same network without enable_snat: SNAT is back to the default (ext-gw-mode).
    router = update(admin, "router", router["id"], external_gateway_info={"network_id": ext["id"]})
    assert router["external_gateway_info"] == {"network_id": ext["id"], "enable_snat": True,
                                               "external_fixed_ips": moved}
    assert router["revision_number"] == 4

    # Another network: a new gateway port there, the old one deleted.
    router = update(admin, "router", router["id"], external_gateway_info={"network_id": other["id"]})
    [new_port] = gateway_ports(admin, router["id"])
    assert new_port["network_id"] == other["id"] and new_port["id"] != port["id"]
    assert router["external_gateway_info"]["external_fixed_ips"] == new_port["fixed_ips"]
    assert new_port["fixed_ips"][0]["subnet_id"] == other_subnet["id"]
    fault(admin.get(f"/ports/{port['id']}"), 404, "PortNotFound")

    # Cleared with {} (``openstack router unset --external-gateway``) or null.
    router = update(admin, "router", router["id"], external_gateway_info={})
    assert router["external_gateway_info"] is None and gateway_ports(admin, router["id"]) == []
    router = update(admin, "router", router["id"], external_gateway_info={"network_id": ext["id"]})
    assert router["external_gateway_info"]["network_id"] == ext["id"]
    router = update(admin, "router", router["id"], external_gateway_info=None)
    assert router["external_gateway_info"] is None and gateway_ports(admin, router["id"]) == []
    # An external network without subnets: a gateway port without addresses, as Neutron.
    bare = create(admin, "network", name=name("bare"), **{"router:external": True})
    router = update(admin, "router", router["id"], external_gateway_info={"network_id": bare["id"]})
    assert router["external_gateway_info"]["external_fixed_ips"] == []


def test_update_fields_revision_and_tags(admin: httpx.Client, member: httpx.Client):
    router = create(member, "router", name="before")
    updated = update(member, "router", router["id"], name="after", description="d", admin_state_up=False)
    assert (updated["name"], updated["description"], updated["admin_state_up"]) == ("after", "d", False)
    assert updated["revision_number"] == 2
    assert update(member, "router", router["id"], name="after")["revision_number"] == 2  # nothing changed
    stale = member.put(f"/routers/{router['id']}", json={"router": {"name": "x"}},
                       headers={"If-Match": "revision_number=1"})
    fault(stale, 412, "RevisionNumberConstraintFailed")
    fault(member.put(f"/routers/{router['id']}", json={"router": {"status": "DOWN"}}), 400, "HTTPBadRequest")
    assert member.put(f"/routers/{router['id']}/tags", json={"tags": ["blue", "edge"]}).status_code == 200
    assert show(member, "router", router["id"])["tags"] == ["blue", "edge"]
    assert [r["id"] for r in listed(member, "routers", tags="edge")] == [router["id"]]
    assert listed(member, "routers", **{"not-tags": "edge"}) == []
    assert [r["id"] for r in listed(member, "routers", name="after", admin_state_up="false")] == [router["id"]]
    fault(member.get("/routers", params={"status": "ACTIVE"}), 400, "HTTPBadRequest")
    tagged = create(member, "router", name=name("tagged"), tags=["x"])
    assert tagged["tags"] == ["x"]
    names = [r["name"] for r in listed(member, "routers", sort_key="name", sort_dir="asc")]
    assert names == sorted(names)


# ---------------------------------------------------------------- interfaces


def test_interface_by_subnet(baryon: BaryonServer, project: str, admin: httpx.Client, member: httpx.Client):
    ext, ext_subnet = external(admin)
    net, subnet = private(member)
    router = create(member, "router", name=name("r"), external_gateway_info={"network_id": ext["id"]})
    seq = l3.last_seq(baryon)
    info = add_interface(member, router["id"], subnet_id=subnet["id"])
    assert set(info) == INFO_KEYS
    assert (info["id"], info["tenant_id"], info["project_id"]) == (router["id"], project, project)
    assert (info["network_id"], info["subnet_id"], info["subnet_ids"]) == (net["id"], subnet["id"], [subnet["id"]])
    port = show(member, "port", info["port_id"])
    assert (port["device_owner"], port["device_id"], port["project_id"]) == (
        "network:router_interface", router["id"], project)
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.0.0.1"}]
    assert (port["name"], port["status"], port["security_groups"]) == ("", "DOWN", [])
    assert show(member, "router", router["id"])["revision_number"] == router["revision_number"] + 1
    log = [(t, rid, a) for _, t, rid, a in l3.changes_since(baryon, seq)]
    assert log == [("port", port["id"], "create"), ("router", router["id"], "update")]

    def refused(status: int, type_: str, **info) -> str:
        return fault(interface(member, router["id"], **info), status, type_)["message"]

    assert refused(400, "BadRequest", subnet_id=subnet["id"]) == (
        f"Bad router request: Router already has a port on subnet {subnet['id']}.")
    _, overlapping = private(member, "10.0.0.128/25")
    assert refused(400, "BadRequest", subnet_id=overlapping["id"]) == (
        f"Bad router request: Cidr 10.0.0.128/25 of subnet {overlapping['id']} overlaps with cidr 10.0.0.0/24 "
        f"of subnet {subnet['id']}.")
    _, like_external = private(member, "203.0.113.0/25")  # the gateway's subnets count too
    assert refused(400, "BadRequest", subnet_id=like_external["id"]) == (
        f"Bad router request: Cidr 203.0.113.0/25 of subnet {like_external['id']} overlaps with cidr "
        f"203.0.113.0/24 of subnet {ext_subnet['id']}.")
    _, no_gateway = private(member, "10.1.0.0/24", gateway_ip=None)
    assert refused(400, "BadRequest", subnet_id=no_gateway["id"]) == (
        "Bad router request: Subnet for router interface must have a gateway IP.")
    foreign = create(admin, "network", name="foreign", project_id=uuid.uuid4().hex)
    foreign_subnet = create(admin, "subnet", network_id=foreign["id"], cidr="10.2.0.0/24", ip_version=4)
    refused(404, "SubnetNotFound", subnet_id=foreign_subnet["id"])
    shared = create(admin, "network", name="shared", shared=True)
    shared_subnet = create(admin, "subnet", network_id=shared["id"], cidr="10.3.0.0/24", ip_version=4)
    assert refused(400, "BadRequest", subnet_id=shared_subnet["id"]) == (
        f"Bad router request: Cannot add interface to router because subnet {shared_subnet['id']} is not owned "
        f"by project making the request.")
    assert [p["id"] for p in listed(member, "ports", device_id=router["id"])] == [port["id"]]

    # What the interface holds stays: its port, subnet and network.
    error = fault(member.delete(f"/ports/{port['id']}"), 409, "ServicePortInUse")
    assert error["message"] == (f"Port {port['id']} cannot be deleted directly via the port API: has device "
                                f"owner network:router_interface.")
    fault(member.delete(f"/subnets/{subnet['id']}"), 409, "SubnetInUse")
    fault(member.delete(f"/networks/{net['id']}"), 409, "NetworkInUse")

    seq = l3.last_seq(baryon)
    removed = interface(member, router["id"], "remove", subnet_id=subnet["id"])
    assert removed.status_code == 200, removed.text
    assert removed.json() == info
    fault(member.get(f"/ports/{port['id']}"), 404, "PortNotFound")
    log = [(t, rid, a) for _, t, rid, a in l3.changes_since(baryon, seq)]
    assert log == [("port", port["id"], "delete"), ("router", router["id"], "update")]
    error = fault(interface(member, router["id"], "remove", subnet_id=subnet["id"]), 404,
                  "RouterInterfaceNotFoundForSubnet")
    assert error["message"] == f"Router {router['id']} has no interface on subnet {subnet['id']}"
    assert member.delete(f"/subnets/{subnet['id']}").status_code == 204


def test_interface_by_port(admin: httpx.Client, member: httpx.Client):
    net, subnet = private(member)
    router = create(member, "router", name=name("r"))
    busy = create(member, "port", network_id=net["id"], device_id="some-vm")
    error = fault(interface(member, router["id"], port_id=busy["id"]), 409, "PortInUse")
    assert error["message"] == (f"Unable to complete operation on port {busy['id']} for network {net['id']}. "
                                f"Port already has an attached device some-vm.")
    bare_net = create(member, "network", name=name("bare"))
    bare = create(member, "port", network_id=bare_net["id"])
    assert fault(interface(member, router["id"], port_id=bare["id"]), 400, "BadRequest")["message"] == (
        "Bad router request: Router port must have at least one fixed IP.")
    net2 = create(member, "network", name=name("two"))
    first = create(member, "subnet", network_id=net2["id"], cidr="10.20.0.0/24", ip_version=4)
    second = create(member, "subnet", network_id=net2["id"], cidr="10.21.0.0/24", ip_version=4)
    double = create(member, "port", network_id=net2["id"], fixed_ips=[{"subnet_id": first["id"]},
                                                                        {"subnet_id": second["id"]}])
    assert fault(interface(member, router["id"], port_id=double["id"]), 400, "BadRequest")["message"] == (
        "Bad router request: Cannot have multiple IPv4 subnets on router port.")
    assert show(member, "port", double["id"])["device_owner"] == ""  # nothing changed

    port = create(member, "port", network_id=net["id"], fixed_ips=[{"subnet_id": subnet["id"],
                                                                    "ip_address": "10.0.0.254"}])
    info = add_interface(member, router["id"], port_id=port["id"])
    assert info == {"id": router["id"], "tenant_id": port["project_id"], "project_id": port["project_id"],
                    "port_id": port["id"], "network_id": net["id"], "subnet_id": subnet["id"],
                    "subnet_ids": [subnet["id"]]}
    attached = show(member, "port", port["id"])
    assert (attached["device_owner"], attached["device_id"]) == ("network:router_interface", router["id"])
    assert attached["revision_number"] == port["revision_number"] + 1
    # The port is the router's now: a second interface on its subnet is refused.
    fault(interface(member, router["id"], subnet_id=subnet["id"]), 400, "BadRequest")

    missing = str(uuid.uuid4())
    assert fault(interface(member, router["id"], "remove", port_id=missing), 404, "RouterInterfaceNotFound")[
        "message"] == f"Router {router['id']} does not have an interface with id {missing}"
    fault(interface(member, router["id"], "remove", port_id=busy["id"]), 404, "RouterInterfaceNotFound")
    other = str(uuid.uuid4())
    assert fault(interface(member, router["id"], "remove", port_id=port["id"], subnet_id=other), 400,
                 "SubnetMismatchForPort")["message"] == (
        f"Subnet on port {port['id']} does not match the requested subnet {other}.")
    removed = interface(member, router["id"], "remove", port_id=port["id"], subnet_id=subnet["id"])
    assert removed.status_code == 200 and removed.json() == info
    fault(member.get(f"/ports/{port['id']}"), 404, "PortNotFound")  # as Neutron: the port goes with it

    # The request body, as Neutron's _validate_interface_info.
    def body_refused(action: str, body) -> str:
        response = member.put(f"/routers/{router['id']}/{action}_router_interface", json=body)
        return fault(response, 400, "BadRequest")["message"]

    assert body_refused("add", {}) == "Bad router request: Either subnet_id or port_id must be specified."
    assert body_refused("remove", {"name": "x"}) == "Bad router request: Either subnet_id or port_id must be specified."
    assert body_refused("add", {"subnet_id": subnet["id"], "port_id": busy["id"]}) == (
        "Bad router request: Cannot specify both subnet-id and port-id.")
    assert body_refused("add", {"port_id": "nope"}) == "Bad router request: 'nope' is not a valid UUID."
    missing_router = str(uuid.uuid4())
    assert fault(interface(member, missing_router, subnet_id=subnet["id"]), 404, "RouterNotFound")["message"] == (
        f"Router {missing_router} could not be found")


def test_ipv6_subnets_of_one_network_share_one_interface(member: httpx.Client):
    net = create(member, "network", name=name("v6"))
    modes = {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}
    first = create(member, "subnet", network_id=net["id"], cidr="2001:db8:1::/64", ip_version=6, **modes)
    second = create(member, "subnet", network_id=net["id"], cidr="2001:db8:2::/64", ip_version=6, **modes)
    ra_only = create(member, "subnet", network_id=net["id"], cidr="2001:db8:3::/64", ip_version=6,
                     ipv6_address_mode="slaac")
    router = create(member, "router", name=name("r6"))
    one = add_interface(member, router["id"], subnet_id=first["id"])
    two = add_interface(member, router["id"], subnet_id=second["id"])
    assert two["port_id"] == one["port_id"] and two["subnet_ids"] == [second["id"]]
    port = show(member, "port", one["port_id"])
    assert port["fixed_ips"] == [{"subnet_id": first["id"], "ip_address": "2001:db8:1::1"},
                                 {"subnet_id": second["id"], "ip_address": "2001:db8:2::1"}]
    assert fault(interface(member, router["id"], subnet_id=ra_only["id"]), 400, "BadRequest")["message"] == (
        f"Bad router request: IPv6 subnet {ra_only['id']} configured to receive RAs from an external router "
        f"cannot be added to Neutron Router..")  # sic: Neutron's message ends with a period too
    removed = interface(member, router["id"], "remove", subnet_id=first["id"])
    assert removed.status_code == 200 and removed.json()["subnet_ids"] == [first["id"]]
    assert show(member, "port", one["port_id"])["fixed_ips"] == [
        {"subnet_id": second["id"], "ip_address": "2001:db8:2::1"}]
    assert interface(member, router["id"], "remove", subnet_id=second["id"]).status_code == 200
    fault(member.get(f"/ports/{one['port_id']}"), 404, "PortNotFound")


# ---------------------------------------------------------------- delete and the guards around a router


def test_router_delete(baryon: BaryonServer, admin: httpx.Client, member: httpx.Client):
    ext, _ = external(admin)
    _, subnet = private(member)
    router = create(member, "router", name=name("r"), external_gateway_info={"network_id": ext["id"]})
    info = add_interface(member, router["id"], subnet_id=subnet["id"])
    error = fault(member.delete(f"/routers/{router['id']}"), 409, "RouterInUse")
    assert error["message"] == f"Router {router['id']} has ports still attached: {info['port_id']}"
    assert interface(member, router["id"], "remove", port_id=info["port_id"]).status_code == 200
    [gateway] = gateway_ports(admin, router["id"])
    seq = l3.last_seq(baryon)
    assert member.delete(f"/routers/{router['id']}").status_code == 204
    assert gateway_ports(admin, router["id"]) == []
    error = fault(member.get(f"/routers/{router['id']}"), 404, "RouterNotFound")
    assert error["message"] == f"Router {router['id']} could not be found"
    log = [(t, rid, a) for _, t, rid, a in l3.changes_since(baryon, seq)]
    assert log == [("port", gateway["id"], "delete"), ("router", router["id"], "delete")]


def test_a_gateway_keeps_its_port_and_network(admin: httpx.Client, member: httpx.Client):
    ext, ext_subnet = external(admin)
    router = create(member, "router", name=name("r"), external_gateway_info={"network_id": ext["id"]})
    [gateway] = gateway_ports(admin, router["id"])
    error = fault(admin.delete(f"/ports/{gateway['id']}"), 409, "ServicePortInUse")
    assert error["message"].endswith("has device owner network:router_gateway.")
    fault(admin.delete(f"/subnets/{ext_subnet['id']}"), 409, "SubnetInUse")
    fault(admin.delete(f"/networks/{ext['id']}"), 409, "NetworkInUse")
    error = fault(admin.put(f"/networks/{ext['id']}", json={"network": {"router:external": False}}),
                  409, "ExternalNetworkInUse")
    assert error["message"] == (f"External network {ext['id']} cannot be updated to be made non-external, since "
                                f"it has existing gateway ports.")
    assert show(admin, "network", ext["id"])["router:external"] is True
    update(member, "router", router["id"], external_gateway_info={})
    assert update(admin, "network", ext["id"], **{"router:external": False})["router:external"] is False
    fault(member.put(f"/routers/{router['id']}", json={"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}), 404, "NetworkNotFound")  # no longer external: no longer visible
    fault(admin.put(f"/routers/{router['id']}", json={"router": {"external_gateway_info": {
        "network_id": ext["id"]}}}), 400, "BadRequest")
    assert admin.delete(f"/networks/{ext['id']}").status_code == 204


# ---------------------------------------------------------------- routes


def test_extra_routes(baryon: BaryonServer, admin: httpx.Client, member: httpx.Client):
    ext, _ = external(admin)
    _, subnet = private(member)
    router = create(member, "router", name=name("r"), external_gateway_info={"network_id": ext["id"]})
    info = add_interface(member, router["id"], subnet_id=subnet["id"])
    routes = [{"destination": "192.168.0.0/16", "nexthop": "203.0.113.254"},
              {"destination": "10.9.0.0/24", "nexthop": "10.0.0.50"}]
    updated = update(member, "router", router["id"], routes=routes)
    assert updated["routes"] == sorted(routes, key=lambda r: (r["destination"], r["nexthop"]))
    assert updated["revision_number"] == router["revision_number"] + 2  # the interface, then the routes

    def refused(status: int, type_: str, routes_) -> str:
        response = member.put(f"/routers/{router['id']}", json={"router": {"routes": routes_}})
        return fault(response, status, type_)["message"]

    away = [{"destination": "10.8.0.0/24", "nexthop": "192.168.9.1"}]
    assert refused(400, "InvalidRoutes", away) == (
        "Invalid format for routes: [{'destination': '10.8.0.0/24', 'nexthop': '192.168.9.1'}], "
        "the nexthop is not connected with router")
    assert refused(400, "InvalidRoutes", [{"destination": "10.8.0.0/24", "nexthop": "10.0.0.1"}]).endswith(
        "the nexthop is used by router")
    assert "Duplicate hostroute" in refused(400, "HTTPBadRequest", routes + routes[:1])
    refused(400, "HTTPBadRequest", [{"destination": "10.8.0.0", "nexthop": "10.0.0.9"}])
    many = [{"destination": f"10.{i}.0.0/24", "nexthop": "10.0.0.9"} for i in range(31)]
    assert refused(400, "RoutesExhausted", many) == (
        f"Unable to complete operation for {router['id']}. The number of routes exceeds the maximum 30.")
    assert show(member, "router", router["id"])["routes"] == updated["routes"]

    # A route holds the interface (and the gateway) its nexthop is on.
    error = fault(interface(member, router["id"], "remove", subnet_id=subnet["id"]), 409,
                  "RouterInterfaceInUseByRoute")
    assert error["message"] == (f"Router interface for subnet {subnet['id']} on router {router['id']} cannot be "
                                f"deleted, as it is required by one or more routes.")
    refused_gw = member.put(f"/routers/{router['id']}", json={"router": {"external_gateway_info": {}}})
    fault(refused_gw, 400, "InvalidRoutes")
    assert show(member, "router", router["id"])["external_gateway_info"]["network_id"] == ext["id"]

    # extraroute-atomic: add (a duplicate once) and remove (an absent one is no error).
    extra = {"destination": "10.7.0.0/24", "nexthop": "10.0.0.70"}
    added = member.put(f"/routers/{router['id']}/add_extraroutes",
                       json={"router": {"routes": [extra, routes[1]]}})
    assert added.status_code == 200, added.text
    assert sorted(map(str, added.json()["router"]["routes"])) == sorted(map(str, routes + [extra]))
    removed = member.put(f"/routers/{router['id']}/remove_extraroutes",
                         json={"router": {"routes": [routes[0], {"destination": "1.0.0.0/8", "nexthop": "10.0.0.9"}]}})
    assert removed.status_code == 200, removed.text
    assert sorted(map(str, removed.json()["router"]["routes"])) == sorted(map(str, [routes[1], extra]))
    bad = member.put(f"/routers/{router['id']}/add_extraroutes", json={"router": {"routes": away}})
    fault(bad, 400, "InvalidRoutes")

    # The CLI: ``router set --route`` appends, ``router unset --route`` removes, ``--no-route`` clears.
    endpoint = baryon.endpoint
    cli(endpoint, "router", "set", "--route", "destination=172.16.0.0/12,gateway=10.0.0.99", router["id"])
    assert {"destination": "172.16.0.0/12", "nexthop": "10.0.0.99"} in show(member, "router", router["id"])["routes"]
    cli(endpoint, "router", "unset", "--route", "destination=172.16.0.0/12,gateway=10.0.0.99", router["id"])
    assert len(show(member, "router", router["id"])["routes"]) == 2
    cli(endpoint, "router", "set", "--no-route", router["id"])
    assert show(member, "router", router["id"])["routes"] == []
    assert interface(member, router["id"], "remove", port_id=info["port_id"]).status_code == 200


# ---------------------------------------------------------------- projects and roles


def test_a_router_is_its_projects_only(baryon: BaryonServer, project: str, admin: httpx.Client,
                                       member: httpx.Client):
    _, subnet = private(member)
    router = create(member, "router", name=name("mine"))
    with http(baryon.endpoint, uuid.uuid4().hex) as stranger:
        fault(stranger.get(f"/routers/{router['id']}"), 404, "RouterNotFound")
        fault(stranger.put(f"/routers/{router['id']}", json={"router": {"name": "x"}}), 404, "RouterNotFound")
        fault(stranger.delete(f"/routers/{router['id']}"), 404, "RouterNotFound")
        fault(interface(stranger, router["id"], subnet_id=subnet["id"]), 404, "RouterNotFound")
        assert listed(stranger, "routers") == []
    with http(baryon.endpoint, project, roles="reader") as reader:
        assert [r["id"] for r in listed(reader, "routers")] == [router["id"]]
        fault(reader.post("/routers", json={"router": {"name": "r"}}), 403, "PolicyNotAuthorized")
        fault(interface(reader, router["id"], subnet_id=subnet["id"]), 403, "PolicyNotAuthorized")
    assert router["id"] in {r["id"] for r in listed(admin, "routers")}
    # An admin may create a router for a project, and add that project's subnet to it.
    theirs = create(admin, "router", name=name("theirs"), project_id=project)
    assert add_interface(admin, theirs["id"], subnet_id=subnet["id"])["project_id"] == project
    assert {r["id"] for r in listed(member, "routers")} == {router["id"], theirs["id"]}


# ---------------------------------------------------------------- concurrency


def test_concurrent_adds_of_one_subnet_give_one_interface(baryon: BaryonServer, project: str,
                                                          member: httpx.Client):
    _, subnet = private(member)
    router = create(member, "router", name=name("race"))

    def add(client: httpx.Client, _index: int) -> list[httpx.Response]:
        return [client.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})]

    responses = all_at_once(baryon.endpoint, add, {"X-Project-Id": project, "X-Roles": "member"})
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * (CLIENTS - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 400:
            assert "Router already has a port on subnet" in response.json()["NeutronError"]["message"]
    ports = listed(member, "ports", device_id=router["id"])
    assert len(ports) == 1 and ports[0]["fixed_ips"][0]["ip_address"] == "10.0.0.1"
    assert show(member, "router", router["id"])["revision_number"] == 2


def test_concurrent_adds_of_overlapping_subnets_give_one_interface(baryon: BaryonServer, project: str,
                                                                   member: httpx.Client):
    subnets = [private(member, "10.50.0.0/24")[1] for _ in range(CLIENTS)]
    router = create(member, "router", name=name("race"))

    def add(client: httpx.Client, index: int) -> list[httpx.Response]:
        return [client.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                           json={"subnet_id": subnets[index]["id"]})]

    responses = all_at_once(baryon.endpoint, add, {"X-Project-Id": project, "X-Roles": "member"})
    assert sorted(r.status_code for r in responses) == [200] + [400] * (CLIENTS - 1), [r.text for r in responses]
    assert all("overlaps with cidr 10.50.0.0/24" in r.json()["NeutronError"]["message"]
               for r in responses if r.status_code == 400)
    assert len(listed(member, "ports", device_id=router["id"])) == 1


def test_concurrent_creates_past_the_router_quota(baryon: BaryonServer, project: str, admin: httpx.Client,
                                                  member: httpx.Client):
    assert admin.put(f"/quotas/{project}", json={"quota": {"router": 2}}).status_code == 200

    def make(client: httpx.Client, index: int) -> list[httpx.Response]:
        return [client.post("/v2.0/routers", json={"router": {"name": f"q{index}"}})]

    responses = all_at_once(baryon.endpoint, make, {"X-Project-Id": project, "X-Roles": "member"})
    assert sorted(r.status_code for r in responses) == [201, 201] + [409] * (CLIENTS - 2)
    assert {r.json()["NeutronError"]["type"] for r in responses if r.status_code == 409} == {"OverQuota"}
    assert len(listed(member, "routers")) == 2


# ---------------------------------------------------------------- the openstack CLI


def test_router_lifecycle_with_the_cli(baryon: BaryonServer, admin: httpx.Client):
    ext, ext_subnet = external(admin)
    net, subnet = private(admin, "10.60.0.0/24")
    port = create(admin, "port", network_id=net["id"], name=name("p"))
    other_net, _ = private(admin, "10.61.0.0/24")
    other_port = create(admin, "port", network_id=other_net["id"])
    endpoint, router_name = baryon.endpoint, name("router")
    made = cli(endpoint, "router", "create", router_name, "--description", "by the CLI")
    assert (made["name"], made["description"], made["status"], made["admin_state_up"]) == (
        router_name, "by the CLI", "ALLOCATING", True)
    assert (made["external_gateway_info"], made["routes"], made["ha"], made["distributed"]) == (None, [], False, False)
    cli(endpoint, "router", "set", "--external-gateway", ext["id"], "--disable-snat",
        "--fixed-ip", f"subnet={ext_subnet['id']},ip-address=203.0.113.77", router_name)
    cli(endpoint, "router", "add", "subnet", router_name, subnet["id"])
    cli(endpoint, "router", "add", "port", router_name, other_port["id"])
    shown = cli(endpoint, "router", "show", router_name)
    assert shown["external_gateway_info"] == {"network_id": ext["id"], "enable_snat": False, "external_fixed_ips": [
        {"subnet_id": ext_subnet["id"], "ip_address": "203.0.113.77"}]}
    assert sorted(i["ip_address"] for i in shown["interfaces_info"]) == ["10.60.0.1", other_port["fixed_ips"][0][
        "ip_address"]]
    assert shown["revision_number"] == 4
    listed_ = cli(endpoint, "router", "list", "--name", router_name)
    assert [(r["Name"], r["Status"], r["State"]) for r in listed_] == [(router_name, "ALLOCATING", True)]
    cli(endpoint, "router", "remove", "subnet", router_name, subnet["id"])
    cli(endpoint, "router", "remove", "port", router_name, other_port["id"])
    cli(endpoint, "router", "unset", "--external-gateway", router_name)
    assert cli(endpoint, "router", "show", router_name)["external_gateway_info"] is None
    cli(endpoint, "router", "delete", router_name)
    assert listed(admin, "routers", name=router_name) == []
    assert show(admin, "port", port["id"])["device_owner"] == ""
