"""Networks through the real clients: openstacksdk, the ``openstack`` CLI and plain HTTP.

Every test that takes ``baryon`` runs once per database backend on a shared server, so it works
in its own fresh ``project`` and never assumes the server is empty. What needs an exact, empty
segment space (lowest free VNI, exhaustion, physnet1) runs on a dedicated small SQLite server.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator

import httpx
import openstack.exceptions
import pytest

from tests.api.helpers import cli, fault, http, name, sdk, timestamp
from tests.support.server import BaryonServer

PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def create(client: httpx.Client, **attrs) -> dict:
    response = client.post("/networks", json={"network": attrs})
    assert response.status_code == 201, response.text
    return response.json()["network"]


def show(client: httpx.Client, network_id: str) -> dict:
    response = client.get(f"/networks/{network_id}")
    assert response.status_code == 200, response.text
    return response.json()["network"]


def listed(client: httpx.Client, **params) -> set[str]:
    response = client.get("/networks", params=params)
    assert response.status_code == 200, response.text
    return {n["id"] for n in response.json()["networks"]}


def vni(network: dict) -> int:
    return network["provider:segmentation_id"]


# ---------------------------------------------------------------- create, show, list (openstacksdk)


def test_create_defaults(baryon: BaryonServer, project: str, member: httpx.Client, admin: httpx.Client) -> None:
    conn = sdk(baryon.endpoint, project)
    net = conn.network.create_network(name="web")

    assert net.name == "web"
    assert net.project_id == project
    assert net.status == "ACTIVE"
    assert net.is_admin_state_up is True
    assert net.is_shared is False
    assert net.is_router_external is False
    assert net.is_port_security_enabled is True
    assert net.mtu == 1450
    assert net.subnet_ids == []
    assert net.revision_number == 1
    assert timestamp(net.created_at) == timestamp(net.updated_at)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert abs((timestamp(net.created_at) - now).total_seconds()) < 60  # UTC, as Neutron's

    # The raw body: Neutron's attribute names, tenant_id mirrors project_id, no provider:* for members.
    body = show(member, net.id)
    assert body["tenant_id"] == body["project_id"] == project
    assert body["router:external"] is False and body["tags"] == [] and body["description"] == ""
    assert not set(PROVIDER) & set(body)

    # The admin sees the segment: VXLAN, a VNI from the default vni_ranges (1:1000).
    seen = show(admin, net.id)
    assert seen["provider:network_type"] == "vxlan"
    assert seen["provider:physical_network"] is None
    assert 1 <= vni(seen) <= 1000
    assert {k: v for k, v in seen.items() if k not in PROVIDER} == body


def test_show_and_list(baryon: BaryonServer, project: str) -> None:
    conn = sdk(baryon.endpoint, project)
    first = conn.network.create_network(name=name("a"))
    second = conn.network.create_network(name=name("b"), is_admin_state_up=False)

    got = conn.network.get_network(first.id)
    assert (got.id, got.name, got.revision_number) == (first.id, first.name, 1)
    assert {n.id for n in conn.network.networks()} >= {first.id, second.id}
    assert [n.id for n in conn.network.networks(name=second.name)] == [second.id]
    assert [n.id for n in conn.network.networks(is_admin_state_up=False, project_id=project)] == [second.id]
    assert conn.network.find_network(first.name).id == first.id


def test_create_with_attributes(member: httpx.Client, project: str) -> None:
    net = create(member, name="db", description="backend", admin_state_up=False, mtu=1400,
                 port_security_enabled=False, tags=["blue", "red"])
    assert (net["name"], net["description"], net["admin_state_up"], net["mtu"]) == ("db", "backend", False, 1400)
    assert net["port_security_enabled"] is False
    assert net["tags"] == ["blue", "red"]
    assert show(member, net["id"]) == net


# ---------------------------------------------------------------- update and delete


def test_update(baryon: BaryonServer, project: str) -> None:
    conn = sdk(baryon.endpoint, project)
    net = conn.network.create_network(name="before")
    time.sleep(1.02 - time.time() % 1)  # timestamps have a one-second resolution: cross into the next

    net = conn.network.update_network(net, name="after", is_admin_state_up=False)
    assert (net.name, net.is_admin_state_up, net.revision_number) == ("after", False, 2)
    assert timestamp(net.updated_at) > timestamp(net.created_at)

    net = conn.network.update_network(net, mtu=1400)
    assert (net.mtu, net.revision_number) == (1400, 3)
    net = conn.network.update_network(net, mtu=1450)  # the VXLAN maximum itself is allowed
    assert (net.mtu, net.revision_number) == (1450, 4)

    stored = conn.network.get_network(net.id)
    assert (stored.name, stored.is_admin_state_up, stored.mtu, stored.revision_number) == ("after", False, 1450, 4)


def test_update_refused_changes_nothing(member: httpx.Client) -> None:
    net = create(member, name="keep", mtu=1400)
    url = f"/networks/{net['id']}"

    error = fault(member.put(url, json={"network": {"mtu": 1451}}), 400, "InvalidInput")
    assert error["message"] == "Invalid input for operation: Requested MTU is too big, maximum is 1450."
    fault(member.put(url, json={"network": {"name": "x", "admin_state_up": "maybe"}}), 400, "InvalidInput")
    error = fault(member.put(url, json={"network": {"name": "x", "colour": "blue"}}), 400, "HTTPBadRequest")
    assert error["message"] == "Unrecognized attribute(s) 'colour'"
    fault(member.put(url, json={"network": {"status": "DOWN"}}), 400, "HTTPBadRequest")
    fault(member.put(url, json={"network": {"provider:segmentation_id": 7}}), 400, "HTTPBadRequest")

    assert show(member, net["id"]) == net


def test_delete(baryon: BaryonServer, project: str, member: httpx.Client) -> None:
    conn = sdk(baryon.endpoint, project)
    net = conn.network.create_network(name="gone")
    assert conn.network.delete_network(net, ignore_missing=False) is None

    error = fault(member.get(f"/networks/{net.id}"), 404, "NetworkNotFound")
    assert error["message"] == f"Network {net.id} could not be found."
    fault(member.delete(f"/networks/{net.id}"), 404, "NetworkNotFound")
    assert net.id not in listed(member)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_network(net.id)


def test_deleting_a_network_frees_its_vni(admin: httpx.Client, project: str) -> None:
    # Nothing else runs on this server while a test runs, so ids below `first` stay taken.
    first = create(admin, project_id=project)
    second = create(admin, project_id=project)
    assert vni(second) > vni(first)
    assert admin.delete(f"/networks/{first['id']}").status_code == 204
    third = create(admin, project_id=project)
    assert vni(third) == vni(first)


# ---------------------------------------------------------------- the openstack CLI


def test_cli_lifecycle(baryon: BaryonServer) -> None:
    net_name = name("cli")
    created = cli(baryon.endpoint, "network", "create", "--description", "made by the CLI", "--mtu", "1400",
                  net_name, "-f", "json")
    assert (created["name"], created["description"], created["mtu"]) == (net_name, "made by the CLI", 1400)
    assert (created["status"], created["admin_state_up"], created["shared"]) == ("ACTIVE", True, False)
    assert created["provider:network_type"] == "vxlan" and 1 <= created["provider:segmentation_id"] <= 1000
    assert created["revision_number"] == 1

    rows = cli(baryon.endpoint, "network", "list", "--name", net_name, "-f", "json")
    assert rows == [{"ID": created["id"], "Name": net_name, "Subnets": []}]

    cli(baryon.endpoint, "network", "set", "--name", net_name + "-2", "--disable", "--mtu", "1300", created["id"])
    shown = cli(baryon.endpoint, "network", "show", created["id"], "-f", "json")
    assert (shown["name"], shown["admin_state_up"], shown["mtu"]) == (net_name + "-2", False, 1300)
    assert shown["revision_number"] == 2

    cli(baryon.endpoint, "network", "delete", created["id"])
    with http(baryon.endpoint) as admin:
        fault(admin.get(f"/networks/{created['id']}"), 404, "NetworkNotFound")


# ---------------------------------------------------------------- admin: provider networks


def test_flat_provider_network(admin: httpx.Client, project: str) -> None:
    physnet = name("physnet")  # flat_networks = '*' by default; a physnet of its own on a shared server
    flat = create(admin, name="ext", project_id=project, **{
        "provider:network_type": "flat", "provider:physical_network": physnet})
    assert (flat["provider:network_type"], flat["provider:physical_network"]) == ("flat", physnet)
    assert flat["provider:segmentation_id"] is None
    assert flat["mtu"] == 1500

    again = {"network": {"provider:network_type": "flat", "provider:physical_network": physnet}}
    error = fault(admin.post("/networks", json=again), 409, "FlatNetworkInUse")
    assert error["message"] == f"Unable to create the flat network. Physical network {physnet} is in use."

    assert admin.delete(f"/networks/{flat['id']}").status_code == 204
    assert admin.post("/networks", json=again).status_code == 201


def test_provider_requests_refused(admin: httpx.Client) -> None:
    def refused(status: int, type_: str, **provider) -> str:
        body = {"network": {f"provider:{k}": v for k, v in provider.items()}}
        return fault(admin.post("/networks", json=body), status, type_)["message"]

    # No network_vlan_ranges in the default configuration: no physnet is known for VLAN.
    assert refused(400, "InvalidInput", network_type="vlan", physical_network="physnet1") == (
        "Invalid input for operation: physical_network 'physnet1' unknown for VLAN provider network.")
    assert "unknown for VLAN" in refused(400, "InvalidInput", network_type="vlan", physical_network="physnet1",
                                         segmentation_id=100)
    # ... and no VLAN range to allocate from (Neutron: NoNetworkAvailable from the partial segment).
    refused(503, "NoNetworkAvailable", network_type="vlan")
    refused(400, "InvalidInput", network_type="flat")  # a flat network needs its physnet
    refused(400, "InvalidInput", network_type="flat", physical_network="physnet9", segmentation_id=3)
    refused(400, "InvalidInput", network_type="vxlan", physical_network="physnet1")
    refused(400, "HTTPBadRequest", network_type="vxlan", segmentation_id=2**24)  # beyond 24 bits
    refused(400, "HTTPBadRequest", network_type="token-ring")


def test_explicit_vni(admin: httpx.Client, project: str) -> None:
    wanted = 4000 + uuid.uuid4().int % 1000  # outside the project range: admins may take any valid VNI
    net = create(admin, project_id=project, **{"provider:network_type": "vxlan",
                                               "provider:segmentation_id": wanted})
    assert (net["provider:network_type"], vni(net), net["mtu"]) == ("vxlan", wanted, 1450)

    body = {"network": {"provider:network_type": "vxlan", "provider:segmentation_id": wanted}}
    error = fault(admin.post("/networks", json=body), 409, "TunnelIdInUse")
    assert error["message"] == f"Unable to create the network. The tunnel ID {wanted} is in use."
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    assert vni(create(admin, **body["network"])) == wanted


def test_admin_creates_for_a_project(baryon: BaryonServer, project: str, member: httpx.Client) -> None:
    conn = sdk(baryon.endpoint)
    net = conn.network.create_network(name="given", project_id=project)
    assert net.project_id == project
    assert net.provider_network_type == "vxlan"
    assert net.id in listed(member)


# ---------------------------------------------------------------- members: isolation and policy


def test_project_isolation(baryon: BaryonServer, project: str, member: httpx.Client, admin: httpx.Client) -> None:
    other = uuid.uuid4().hex
    theirs = sdk(baryon.endpoint, other).network.create_network(name="theirs")
    mine = sdk(baryon.endpoint, project).network.create_network(name="mine")

    # (a member also sees every shared and external network on this shared server)
    assert mine.id in listed(member) and theirs.id not in listed(member)
    assert listed(member, project_id=[project, other]) == {mine.id}
    assert theirs.id not in {n.id for n in sdk(baryon.endpoint, project).network.networks()}
    fault(member.get(f"/networks/{theirs.id}"), 404, "NetworkNotFound")
    fault(member.put(f"/networks/{theirs.id}", json={"network": {"name": "stolen"}}), 404, "NetworkNotFound")
    fault(member.delete(f"/networks/{theirs.id}"), 404, "NetworkNotFound")
    with pytest.raises(openstack.exceptions.NotFoundException):
        sdk(baryon.endpoint, project).network.delete_network(theirs.id, ignore_missing=False)

    still = show(admin, theirs.id)
    assert (still["name"], still["revision_number"]) == ("theirs", 1)
    assert listed(admin, project_id=[project, other]) == {mine.id, theirs.id}


def test_member_sees_shared_and_external_networks(project: str, member: httpx.Client, admin: httpx.Client) -> None:
    other = uuid.uuid4().hex
    shared = create(admin, name="shared", project_id=other, shared=True)
    external = create(admin, name="public", project_id=other, **{"router:external": True})
    private = create(admin, name="private", project_id=other)

    visible = listed(member)
    assert {shared["id"], external["id"]} <= visible
    assert private["id"] not in visible
    assert listed(member, shared="true") >= {shared["id"]}
    assert external["id"] not in listed(member, shared="true")
    assert listed(member, **{"router:external": "true"}) >= {external["id"]}

    for net in (shared, external):
        body = show(member, net["id"])
        assert not set(PROVIDER) & set(body)
        assert body["project_id"] == other
    assert (show(member, shared["id"])["shared"], show(member, external["id"])["router:external"]) == (True, True)
    for body in member.get("/networks").json()["networks"]:
        assert not set(PROVIDER) & set(body)


def test_member_may_not_change_others_visible_networks(project: str, member: httpx.Client,
                                                       admin: httpx.Client) -> None:
    # Neutron: the network is visible (shared/external), so a refused change is a 403, not a 404.
    other = uuid.uuid4().hex
    shared = create(admin, project_id=other, shared=True)
    external = create(admin, project_id=other, **{"router:external": True})
    for net in (shared, external):
        fault(member.put(f"/networks/{net['id']}", json={"network": {"name": "mine"}}), 403, "PolicyNotAuthorized")
        fault(member.delete(f"/networks/{net['id']}"), 403, "PolicyNotAuthorized")
        assert show(admin, net["id"]) == net


def test_member_may_not_set_admin_attributes(baryon: BaryonServer, project: str, member: httpx.Client) -> None:
    for attrs in ({"shared": True}, {"router:external": True}, {"provider:network_type": "vxlan"},
                  {"provider:network_type": "flat", "provider:physical_network": "physnet1"},
                  {"provider:segmentation_id": 77}):
        error = fault(member.post("/networks", json={"network": {"name": "sneaky", **attrs}}),
                      403, "PolicyNotAuthorized")
        assert error["message"].startswith("(rule:create_network and rule:create_network:")
        assert error["message"].endswith(") is disallowed by policy")
    error = fault(member.post("/networks", json={"network": {"project_id": uuid.uuid4().hex}}), 400, "HTTPBadRequest")
    assert error["message"].startswith("Specifying 'project_id' or 'tenant_id' other than the authenticated project")

    with pytest.raises(openstack.exceptions.ForbiddenException):
        sdk(baryon.endpoint, project).network.create_network(name="sneaky", is_shared=True)
    net = create(member, name="mine")
    fault(member.put(f"/networks/{net['id']}", json={"network": {"shared": True}}), 403, "PolicyNotAuthorized")
    assert listed(member, name="sneaky") == set()
    assert show(member, net["id"]) == net


def test_a_reader_may_not_write(baryon: BaryonServer, project: str, member: httpx.Client) -> None:
    net = create(member, name="mine")
    with http(baryon.endpoint, project, roles="reader") as reader:
        assert show(reader, net["id"]) == net
        fault(reader.post("/networks", json={"network": {"name": "r"}}), 403, "PolicyNotAuthorized")
        fault(reader.put(f"/networks/{net['id']}", json={"network": {"name": "r"}}), 403, "PolicyNotAuthorized")
        fault(reader.delete(f"/networks/{net['id']}"), 403, "PolicyNotAuthorized")
    assert show(member, net["id"]) == net


def test_invalid_create_bodies(member: httpx.Client) -> None:
    label = name("bad")

    def refused(body: object, status: int, type_: str) -> str:
        return fault(member.post("/networks", json=body), status, type_)["message"]

    assert refused({"network": {"name": label, "foo": 1}}, 400, "HTTPBadRequest") == "Unrecognized attribute(s) 'foo'"
    assert refused({"network": {"name": label, "admin_state_up": "maybe"}}, 400, "InvalidInput") == (
        "Invalid input for operation: 'maybe' cannot be converted to boolean.")
    assert refused({"network": {"name": label, "mtu": 9000}}, 400, "InvalidInput") == (
        "Invalid input for operation: Requested MTU is too big, maximum is 1450.")
    refused({"network": {"name": label, "mtu": 70000}}, 400, "HTTPBadRequest")
    refused({"network": {"name": label, "mtu": "big"}}, 400, "InvalidInput")
    refused({"network": {"name": 5}}, 400, "HTTPBadRequest")
    refused({"network": {"name": label, "status": "DOWN"}}, 400, "HTTPBadRequest")
    refused({"network": {"name": label, "id": "x", "subnets": []}}, 400, "HTTPBadRequest")
    refused({"netwerk": {"name": label}}, 400, "HTTPBadRequest")
    refused({"networks": [{"name": label}, {"name": label, "mtu": 9000}]}, 400, "InvalidInput")  # all or nothing
    response = member.post("/networks", content=b"{not json", headers={"Content-Type": "application/json"})
    fault(response, 400, "HTTPBadRequest")

    assert listed(member, name=label) == set()


# ---------------------------------------------------------------- deletion with ports


def test_network_with_a_compute_port_is_in_use(admin: httpx.Client, project: str) -> None:
    net = create(admin, project_id=project)
    subnet = admin.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                     "cidr": "10.20.0.0/24"}})
    assert subnet.status_code == 201, subnet.text
    port = admin.post("/ports", json={"port": {"network_id": net["id"], "device_owner": "compute:nova",
                                               "device_id": str(uuid.uuid4())}})
    assert port.status_code == 201, port.text
    port_id = port.json()["port"]["id"]

    error = fault(admin.delete(f"/networks/{net['id']}"), 409, "NetworkInUse")
    assert error["message"].startswith(f"Unable to complete operation on network {net['id']}.")
    assert show(admin, net["id"])["subnets"] == [subnet.json()["subnet"]["id"]]
    assert admin.get(f"/ports/{port_id}").status_code == 200

    assert admin.delete(f"/ports/{port_id}").status_code == 204
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    fault(admin.get(f"/subnets/{subnet.json()['subnet']['id']}"), 404, "SubnetNotFound")


def test_network_with_only_a_dhcp_port_is_deleted_with_it(admin: httpx.Client, project: str) -> None:
    net = create(admin, project_id=project)
    subnet = admin.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                     "cidr": "10.21.0.0/24"}}).json()["subnet"]
    port = admin.post("/ports", json={"port": {"network_id": net["id"], "device_owner": "network:dhcp",
                                               "device_id": "dhcp-host-1", "project_id": project}})
    assert port.status_code == 201, port.text
    port_id = port.json()["port"]["id"]
    assert [ip["subnet_id"] for ip in port.json()["port"]["fixed_ips"]] == [subnet["id"]]

    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    fault(admin.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    fault(admin.get(f"/ports/{port_id}"), 404, "PortNotFound")
    fault(admin.get(f"/subnets/{subnet['id']}"), 404, "SubnetNotFound")
    assert admin.get("/ports", params={"network_id": net["id"]}).json()["ports"] == []


# ---------------------------------------------------------------- a small segment space (SQLite only)


@pytest.fixture(scope="module", params=["sqlite"])
def small(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    """A server of its own with two VNIs and two VLANs, on an empty database."""
    server = BaryonServer(tmp_path_factory.mktemp("baryon-small"))
    with open(server.config, "a") as config:
        config.write("[ml2_type_vxlan]\nvni_ranges = 5:6\n"
                     "[ml2_type_vlan]\nnetwork_vlan_ranges = physnet2:100:101\n")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_project_networks_take_the_lowest_free_vni_until_none_is_left(small: BaryonServer) -> None:
    project = uuid.uuid4().hex
    with http(small.endpoint, project) as member, http(small.endpoint) as admin:
        first, second = create(member, name="one"), create(member, name="two")
        assert (vni(show(admin, first["id"])), vni(show(admin, second["id"]))) == (5, 6)

        error = fault(member.post("/networks", json={"network": {"name": "three"}}), 503, "NoNetworkAvailable")
        assert error["message"] == "Unable to create the network. No tenant network is available for allocation."
        assert listed(member) == {first["id"], second["id"]}

        assert member.delete(f"/networks/{first['id']}").status_code == 204
        third = create(member, name="three")
        assert vni(show(admin, third["id"])) == 5
        fault(member.post("/networks", json={"network": {"name": "four"}}), 503, "NoNetworkAvailable")

        # An admin's explicit VNI outside the range does not use the project range up.
        outside = create(admin, **{"provider:network_type": "vxlan", "provider:segmentation_id": 7})
        assert vni(outside) == 7
        for net in (second, third, outside):
            assert admin.delete(f"/networks/{net['id']}").status_code == 204
        assert vni(show(admin, create(member)["id"])) == 5


def test_flat_on_physnet1_and_vlan_ranges(small: BaryonServer) -> None:
    with http(small.endpoint) as admin:
        flat = {"provider:network_type": "flat", "provider:physical_network": "physnet1"}
        first = create(admin, name="public", **flat)
        assert (first["provider:physical_network"], first["mtu"]) == ("physnet1", 1500)
        fault(admin.post("/networks", json={"network": flat}), 409, "FlatNetworkInUse")

        vlan = {"provider:network_type": "vlan", "provider:physical_network": "physnet2"}
        a = create(admin, **vlan)
        assert (a["provider:segmentation_id"], a["mtu"]) == (100, 1500)
        b = create(admin, **{"provider:network_type": "vlan"})  # physnet chosen from the ranges
        assert (b["provider:physical_network"], b["provider:segmentation_id"]) == ("physnet2", 101)
        fault(admin.post("/networks", json={"network": vlan}), 503, "NoNetworkAvailable")
        error = fault(admin.post("/networks", json={"network": {**vlan, "provider:segmentation_id": 101}}),
                      409, "VlanIdInUse")
        assert error["message"] == ("Unable to create the network. The VLAN 101 on physical network physnet2 "
                                    "is in use.")
        # Outside the project range but a valid VLAN id on a known physnet: allowed for an admin.
        assert create(admin, **vlan, **{"provider:segmentation_id": 3000})["provider:segmentation_id"] == 3000
        fault(admin.post("/networks", json={"network": {**vlan, "provider:segmentation_id": 4095}}),
              400, "InvalidInput")

        for net in (first, a, b):
            assert admin.delete(f"/networks/{net['id']}").status_code == 204
        assert create(admin, **flat)["provider:physical_network"] == "physnet1"
