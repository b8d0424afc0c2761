"""Flavors, service profiles and service providers (flavors, service-type), and routers made with a
flavor (l3-flavors), through the API against a running server on every database backend.

Flavors (everybody reads, the admin writes; a service type the server loads), service profiles
(the admin's alone; a known provider's driver or metainfo), their bindings (once each; a bound
profile is neither changed nor deleted), the providers' list (filters and fields), and a router's
flavor (recorded; a disabled, wrong-type, unbound or unknown flavor refused with nothing made; a
flavor in use not deleted, also when the delete races router creates). Every refusal: its code,
its Neutron type. With httpx, openstacksdk and the ``openstack`` CLI.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import cli, fault, headers, name, sdk
from tests.api.l3 import create, listed, show, update
from tests.api.test_concurrency import all_at_once
from tests.support.server import BaryonServer

L3 = "L3_ROUTER_NAT"
SINGLE_NODE = "neutron.services.l3_router.service_providers.single_node.SingleNodeDriver"
DVR = "neutron.services.l3_router.service_providers.dvr.DvrDriver"
FLAVOR_KEYS = {"id", "name", "description", "service_type", "enabled", "service_profiles"}
PROFILE_KEYS = {"id", "description", "driver", "enabled", "metainfo"}


def flavor(admin: httpx.Client, service_type: str = L3, **attrs: Any) -> dict:
    return create(admin, "flavor", name=attrs.pop("name", name("fl")), service_type=service_type, **attrs)


def profile(admin: httpx.Client, **attrs: Any) -> dict:
    return create(admin, "service_profile", **attrs)


def bind(admin: httpx.Client, flavor_id: str, sp_id: str) -> httpx.Response:
    return admin.post(f"/flavors/{flavor_id}/service_profiles", json={"service_profile": {"id": sp_id}})


def providers(client: httpx.Client, **params: Any) -> list[dict]:
    response = client.get("/service-providers", params=params)
    assert response.status_code == 200, response.text
    return response.json()["service_providers"]


@pytest.fixture
def reader(baryon: BaryonServer, project: str) -> httpx.Client:
    with httpx.Client(base_url=baryon.endpoint + "/v2.0", headers=headers(project, "reader"), timeout=30) as c:
        yield c


def test_flavors(admin: httpx.Client, member: httpx.Client, reader: httpx.Client):
    made = flavor(admin, description="economy")
    assert set(made) == FLAVOR_KEYS
    assert (made["service_type"], made["enabled"], made["service_profiles"]) == (L3, True, [])
    for client in (member, reader):  # everybody reads flavors
        assert show(client, "flavor", made["id"]) == made
        assert [f["id"] for f in listed(client, "flavors", name=made["name"])] == [made["id"]]
    assert listed(admin, "flavors", id="33") == []  # as Neutron: a filter value is not validated
    assert made["id"] in [f["id"] for f in listed(admin, "flavors", service_type=L3, enabled="true")]
    assert made["id"] not in [f["id"] for f in listed(admin, "flavors", enabled="false")]
    fields = admin.get("/flavors", params={"id": made["id"], "fields": ["name"]}).json()["flavors"]
    assert fields == [{"name": made["name"]}]
    assert update(admin, "flavor", made["id"], enabled=False, description=None) == {
        **made, "enabled": False, "description": None}

    # refusals, with nothing changed
    before = listed(admin, "flavors")
    fault(member.post("/flavors", json={"flavor": {"name": "x", "service_type": L3}}), 403, "PolicyNotAuthorized")
    fault(member.put(f"/flavors/{made['id']}", json={"flavor": {"name": "x"}}), 403, "PolicyNotAuthorized")
    fault(member.delete(f"/flavors/{made['id']}"), 403, "PolicyNotAuthorized")
    fault(admin.post("/flavors", json={"flavor": {"name": "x", "service_type": "VPN"}}), 400, "InvalidServiceType")
    fault(admin.post("/flavors", json={"flavor": {"name": "x"}}), 400, "HTTPBadRequest")
    fault(admin.put(f"/flavors/{made['id']}", json={"flavor": {"service_type": "FLAVORS"}}), 400, "HTTPBadRequest")
    fault(admin.post("/flavors", json={"flavor": {"service_type": L3, "service_profiles": [made["id"]]}}),
          404, "ServiceProfileNotFound")  # (no profile has this id)
    assert listed(admin, "flavors") == before

    assert admin.delete(f"/flavors/{made['id']}").status_code == 204
    fault(admin.get(f"/flavors/{made['id']}"), 404, "FlavorNotFound")
    fault(admin.delete(f"/flavors/{made['id']}"), 404, "FlavorNotFound")


def test_service_profiles(admin: httpx.Client, member: httpx.Client):
    made = profile(admin, description="sp", driver="", metainfo='{"data": "value"}')
    assert made == {"id": made["id"], "description": "sp", "driver": "", "enabled": True,
                    "metainfo": '{"data": "value"}'}
    l3 = profile(admin, driver=SINGLE_NODE)
    assert (l3["driver"], l3["metainfo"], l3["description"]) == (SINGLE_NODE, "", "")
    assert listed(admin, "service_profiles", id="33") == []
    assert [p["id"] for p in listed(admin, "service_profiles", driver=SINGLE_NODE, id=l3["id"])] == [l3["id"]]
    assert update(admin, "service_profile", made["id"], enabled=False)["enabled"] is False

    # the admin's alone: a member lists none, sees none, changes none
    assert listed(member, "service_profiles") == []
    fault(member.get(f"/service_profiles/{made['id']}"), 404, "ServiceProfileNotFound")
    fault(member.put(f"/service_profiles/{made['id']}", json={"service_profile": {"enabled": True}}),
          404, "ServiceProfileNotFound")
    fault(member.delete(f"/service_profiles/{made['id']}"), 404, "ServiceProfileNotFound")
    fault(member.post("/service_profiles", json={"service_profile": {"metainfo": "m"}}), 403, "PolicyNotAuthorized")
    # a driver no provider of this server has (Baryon builds no DVR router), or nothing at all
    error = fault(admin.post("/service_profiles", json={"service_profile": {"driver": DVR}}),
                  404, "ServiceProfileDriverNotFound")
    assert DVR in error["message"]
    fault(admin.post("/service_profiles", json={"service_profile": {"driver": ""}}), 400, "ServiceProfileEmpty")
    fault(admin.put(f"/service_profiles/{made['id']}", json={"service_profile": {"driver": DVR}}),
          404, "ServiceProfileDriverNotFound")
    assert show(admin, "service_profile", made["id"])["driver"] == ""

    assert admin.delete(f"/service_profiles/{made['id']}").status_code == 204
    fault(admin.get(f"/service_profiles/{made['id']}"), 404, "ServiceProfileNotFound")


def test_bindings(admin: httpx.Client, member: httpx.Client):
    fl, sp = flavor(admin), profile(admin, driver=SINGLE_NODE)
    response = bind(admin, fl["id"], sp["id"])
    assert (response.status_code, response.json()) == (201, {"service_profile": {"id": sp["id"]}})
    assert show(admin, "flavor", fl["id"])["service_profiles"] == [sp["id"]]
    binding = admin.get(f"/flavors/{fl['id']}/service_profiles/{sp['id']}").json()
    assert binding == {"service_profile": {"service_profile_id": sp["id"], "flavor_id": fl["id"]}}

    fault(bind(admin, fl["id"], sp["id"]), 409, "FlavorServiceProfileBindingExists")
    fault(bind(member, fl["id"], sp["id"]), 403, "PolicyNotAuthorized")
    fault(member.delete(f"/flavors/{fl['id']}/service_profiles/{sp['id']}"), 403, "PolicyNotAuthorized")
    fault(bind(admin, fl["id"], fl["id"]), 404, "ServiceProfileNotFound")
    fault(bind(admin, sp["id"], sp["id"]), 404, "FlavorNotFound")
    fault(admin.post(f"/flavors/{fl['id']}/service_profiles", json={"service_profile": {"id": "x"}}),
          400, "HTTPBadRequest")
    fault(admin.post(f"/flavors/{fl['id']}/service_profiles", json={"id": sp["id"]}), 400, "HTTPBadRequest")
    # a bound profile is neither changed nor deleted
    fault(admin.put(f"/service_profiles/{sp['id']}", json={"service_profile": {"enabled": False}}),
          409, "ServiceProfileInUse")
    fault(admin.delete(f"/service_profiles/{sp['id']}"), 409, "ServiceProfileInUse")
    assert show(admin, "service_profile", sp["id"])["enabled"] is True

    assert admin.delete(f"/flavors/{fl['id']}/service_profiles/{sp['id']}").status_code == 204
    fault(admin.delete(f"/flavors/{fl['id']}/service_profiles/{sp['id']}"), 404,
          "FlavorServiceProfileBindingNotFound")
    assert show(admin, "flavor", fl["id"])["service_profiles"] == []

    # bound on create and replaced on update; a flavor's delete unbinds its profiles
    other = profile(admin, metainfo="m")
    both = flavor(admin, service_profiles=[sp["id"], other["id"]])
    assert sorted(both["service_profiles"]) == sorted([sp["id"], other["id"]])
    assert update(admin, "flavor", both["id"], service_profiles=[other["id"]])["service_profiles"] == [other["id"]]
    assert admin.delete(f"/flavors/{both['id']}").status_code == 204
    for row in (sp, other):
        assert admin.delete(f"/service_profiles/{row['id']}").status_code == 204


def test_service_providers(baryon: BaryonServer, member: httpx.Client, reader: httpx.Client):
    expected = [{"service_type": L3, "name": "single_node", "default": True}]
    for client in (member, reader):
        assert providers(client) == expected
    assert member.get("/service-providers", params={"service_type": L3, "default": "True"}).json() == {
        "service_providers": expected}
    assert providers(member, service_type="VPN") == []
    assert providers(member, default="false") == []
    assert providers(member, fields="name") == [{"name": "single_node"}]
    fault(member.get("/service-providers", params={"driver": SINGLE_NODE}), 400, "HTTPBadRequest")
    fault(member.get("/service-providers", params={"default": "maybe"}), 400, "InvalidInput")
    aliases = {e["alias"] for e in member.get("/extensions").json()["extensions"]}
    assert {"flavors", "service-type", "l3-flavors"} <= aliases
    conn = sdk(baryon.endpoint)
    assert [(p.service_type, p.name, p.is_default) for p in conn.network.service_providers()] == [
        (L3, "single_node", True)]


@pytest.fixture
def l3_flavor(admin: httpx.Client) -> dict:
    fl, sp = flavor(admin, name=name("gold")), profile(admin, driver=SINGLE_NODE)
    assert bind(admin, fl["id"], sp["id"]).status_code == 201
    return {**fl, "service_profiles": [sp["id"]]}


def test_router_flavor(admin: httpx.Client, member: httpx.Client, project: str, l3_flavor: dict):
    router = create(member, "router", name=name("r"), flavor_id=l3_flavor["id"])
    assert router["flavor_id"] == l3_flavor["id"]
    assert show(member, "router", router["id"])["flavor_id"] == l3_flavor["id"]
    plain = create(member, "router", name=name("r"))
    assert plain["flavor_id"] is None
    fault(member.put(f"/routers/{router['id']}", json={"router": {"flavor_id": None}}), 400, "HTTPBadRequest")
    error = fault(admin.delete(f"/flavors/{l3_flavor['id']}"), 409, "FlavorInUse")
    assert l3_flavor["id"] in error["message"]

    # refused, and no router made
    disabled = flavor(admin, enabled=False)
    assert bind(admin, disabled["id"], l3_flavor["service_profiles"][0]).status_code == 201
    other_type = flavor(admin, service_type="FLAVORS")
    unbound = flavor(admin)
    off = flavor(admin)
    off_profile = profile(admin, driver=SINGLE_NODE, enabled=False)
    assert bind(admin, off["id"], off_profile["id"]).status_code == 201
    metainfo_only = flavor(admin)
    assert bind(admin, metainfo_only["id"], profile(admin, metainfo="m")["id"]).status_code == 201
    before = listed(member, "routers")
    for flavor_id, status, type_ in [
            (disabled["id"], 503, "FlavorDisabled"), (other_type["id"], 400, "BadRequest"),
            (unbound["id"], 404, "FlavorServiceProfileBindingNotFound"), (off["id"], 503, "ServiceProfileDisabled"),
            (metainfo_only["id"], 404, "ServiceProfileDriverNotFound"),
            (router["id"], 404, "FlavorNotFound"), ("33", 400, "HTTPBadRequest")]:
        fault(member.post("/routers", json={"router": {"name": "x", "flavor_id": flavor_id}}), status, type_)
    # Baryon's provider builds legacy routers: a flavor with distributed (or ha) is a 400
    fault(admin.post("/routers", json={"router": {"name": "x", "flavor_id": l3_flavor["id"], "distributed": True}}),
          400, "BadRequest")
    assert listed(member, "routers") == before

    assert member.delete(f"/routers/{router['id']}").status_code == 204
    assert admin.delete(f"/flavors/{l3_flavor['id']}").status_code == 204
    assert show(member, "router", plain["id"])["flavor_id"] is None


def test_flavor_delete_racing_router_creates(baryon: BaryonServer, l3_flavor: dict):
    """A delete and router creates at once: either the delete is refused (409) and every router
    holds the flavor, or it went first and the creates after it are 404s; never a router whose
    flavor is gone."""
    def work(client: httpx.Client, index: int) -> list[tuple[str, int]]:
        if index == 0:
            return [("delete", client.delete(f"/v2.0/flavors/{l3_flavor['id']}").status_code)]
        return [("create", client.post("/v2.0/routers", json={"router": {
            "name": f"race-{index}-{i}", "flavor_id": l3_flavor["id"]}}).status_code) for i in range(2)]

    results = all_at_once(baryon.endpoint, work, {})  # as the admin
    deleted = ("delete", 204) in results
    assert deleted or ("delete", 409) in results, results
    created = [status for kind, status in results if kind == "create"]
    assert set(created) <= {201, 404} and (not deleted or 201 not in created), results
    with httpx.Client(base_url=baryon.endpoint + "/v2.0", timeout=30) as client:
        holding = listed(client, "routers", name=[f"race-{n}-{i}" for n in range(8) for i in range(2)])
        holding = [r for r in holding if r["flavor_id"] == l3_flavor["id"]]
        exists = client.get(f"/flavors/{l3_flavor['id']}").status_code == 200
        assert exists == (not deleted) and len(holding) == created.count(201)
        for router in holding:
            assert client.delete(f"/routers/{router['id']}").status_code == 204


@pytest.mark.parametrize("baryon", ["sqlite"], indirect=True)  # the clients' side: one backend is enough
def test_cli_and_sdk(baryon: BaryonServer):
    flavor_name, endpoint = name("cli"), baryon.endpoint
    made = cli(endpoint, "network", "flavor", "create", "--service-type", L3, "--description", "d", flavor_name,
               "-f", "json")
    assert (made["name"], made["service_type"], made["enabled"]) == (flavor_name, L3, True)
    sp = cli(endpoint, "network", "flavor", "profile", "create", "--driver", SINGLE_NODE, "-f", "json")
    assert sp["driver"] == SINGLE_NODE
    cli(endpoint, "network", "flavor", "add", "profile", flavor_name, sp["id"])
    providers = cli(endpoint, "network", "service", "provider", "list", "-f", "json")
    assert {"Service Type": L3, "Name": "single_node", "Default": True} in providers
    conn = sdk(endpoint)
    found = conn.network.find_flavor(flavor_name)
    assert found.service_profile_ids == [sp["id"]]
    conn.network.disassociate_flavor_from_service_profile(found, sp["id"])
    cli(endpoint, "network", "flavor", "delete", flavor_name)
    conn.network.delete_service_profile(sp["id"])
    assert conn.network.find_flavor(flavor_name) is None
    assert sp["id"] not in [p.id for p in conn.network.service_profiles()]
