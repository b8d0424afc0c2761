"""Address groups and security group rules naming them, through the API, against a running server
on every database backend.

The group (Neutron's representation; addresses normalised, merged, changed only by the actions;
``add_addresses`` of a present address: 400, ``remove_addresses`` of an absent one: 404, both
changing nothing; filters, sorting, paging, fields; visibility: another project's group is 404),
the rules (``remote_address_group_id`` set, shown, filtered; exclusive with the other remotes; a
group the caller cannot see: 404; a group a rule uses cannot be deleted: 409), the change log, and
concurrent requests (one of several adds of one address; a delete racing a rule naming the group).
With httpx, openstacksdk and the ``openstack`` CLI.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import cli, fault, headers, http, name, sdk, timestamp
from tests.api.l3 import changes_since, last_seq
from tests.api.test_concurrency import CLIENTS, all_at_once
from tests.support.server import BaryonServer

KEYS = {"id", "name", "description", "project_id", "tenant_id", "addresses", "created_at", "updated_at",
        "revision_number"}


def group(client: httpx.Client, addresses: list[str] | None = None, **attrs: Any) -> dict:
    body = {"name": attrs.pop("name", name("ag")), **attrs}
    if addresses is not None:
        body["addresses"] = addresses
    response = client.post("/address-groups", json={"address_group": body})
    assert response.status_code == 201, response.text
    return response.json()["address_group"]


def act(client: httpx.Client, group_id: str, action: str, addresses: Any) -> httpx.Response:
    return client.put(f"/address-groups/{group_id}/{action}_addresses", json={"addresses": addresses})


def listed(client: httpx.Client, path: str, **params: Any) -> list[dict]:
    response = client.get(f"/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()[path.replace("-", "_")]


def shown(client: httpx.Client, group_id: str) -> dict:
    response = client.get(f"/address-groups/{group_id}")
    assert response.status_code == 200, response.text
    return response.json()["address_group"]


def renamed(client: httpx.Client, group_id: str, **attrs: Any) -> dict:
    response = client.put(f"/address-groups/{group_id}", json={"address_group": attrs})
    assert response.status_code == 200, response.text
    return response.json()["address_group"]


def sg_rule(client: httpx.Client, sg_id: str, **attrs: Any) -> httpx.Response:
    return client.post("/security-group-rules", json={"security_group_rule": {
        "security_group_id": sg_id, "direction": "ingress", **attrs}})


def test_group_lifecycle(member: httpx.Client, project: str):
    made = group(member, ["10.10.10.3/32", "192.168.0.10/24", "2001:db8::f00/64", "192.168.0.0/24"],
                 description="d1")
    assert set(made) == KEYS and made["project_id"] == made["tenant_id"] == project
    assert made["addresses"] == ["10.10.10.3/32", "192.168.0.0/24", "2001:db8::/64"]  # normalised, merged
    assert (made["description"], made["revision_number"]) == ("d1", 1)
    timestamp(made["created_at"])
    assert shown(member, made["id"]) == made
    assert group(member)["addresses"] == []
    nulled = member.post("/address-groups", json={"address_group": {"name": "n", "addresses": None}})
    assert nulled.status_code == 201 and nulled.json()["address_group"]["addresses"] == []

    changed = renamed(member, made["id"], name="renamed", description="d2")
    assert (changed["name"], changed["description"], changed["revision_number"]) == ("renamed", "d2", 2)
    assert changed["addresses"] == made["addresses"]
    for attrs, type_ in [({"addresses": ["10.0.0.0/8"]}, "HTTPBadRequest"), ({"id": made["id"]}, "HTTPBadRequest"),
                         ({"name": "x" * 256}, "HTTPBadRequest")]:
        fault(member.put(f"/address-groups/{made['id']}", json={"address_group": attrs}), 400, type_)

    added = act(member, made["id"], "add", ["10.20.30.40", "10.20.30.40/32", "172.16.5.5/16"])
    assert added.status_code == 200, added.text
    body = added.json()["address_group"]
    assert body["addresses"] == ["10.10.10.3/32", "10.20.30.40/32", "172.16.0.0/16", "192.168.0.0/24",
                                 "2001:db8::/64"]
    assert body["revision_number"] == 3 and shown(member, made["id"]) == body
    removed = act(member, made["id"], "remove", ["10.10.10.3", "2001:db8::1/64"]).json()["address_group"]
    assert removed["addresses"] == ["10.20.30.40/32", "172.16.0.0/16", "192.168.0.0/24"]

    # Refusals: Neutron's errors, and the group unchanged.
    error = fault(act(member, made["id"], "add", ["192.168.0.99/24", "10.99.0.0/16"]), 400, "AddressesAlreadyExist")
    assert error["message"] == (f"Addresses ['192.168.0.0/24'] already exist in the address group {made['id']}.")
    error = fault(act(member, made["id"], "remove", ["10.200.200.200", "192.168.0.0/24"]), 404, "AddressesNotFound")
    assert error["message"] == f"Addresses ['10.200.200.200/32'] not found in the address group {made['id']}."
    for action in ("add", "remove"):
        fault(act(member, made["id"], action, ["this is bad IP address"]), 400, "HTTPBadRequest")
        fault(act(member, made["id"], action, "10.0.0.0/8"), 400, "HTTPBadRequest")
        fault(member.put(f"/address-groups/{made['id']}/{action}_addresses", json={"address": []}), 400,
              "HTTPBadRequest")
        fault(act(member, "0" * 8 + "-0000-4000-8000-" + "0" * 12, action, ["10.0.0.0/8"]), 404,
              "AddressGroupNotFound")
    assert shown(member, made["id"]) == removed

    for addresses in (["10.20.30.40"], ["this is bad IP address"], ["10.0.0.0/8", "10.0.0.0/8"], "10.0.0.0/8",
                      ["10.0.0.0/33"]):
        fault(member.post("/address-groups", json={"address_group": {"name": "x", "addresses": addresses}}), 400,
              "HTTPBadRequest")

    assert member.delete(f"/address-groups/{made['id']}").status_code == 204
    fault(member.get(f"/address-groups/{made['id']}"), 404, "AddressGroupNotFound")
    fault(member.delete(f"/address-groups/{made['id']}"), 404, "AddressGroupNotFound")


def test_listing_and_visibility(baryon: BaryonServer, admin: httpx.Client, member: httpx.Client, project: str):
    tag = name("list")
    made = [group(member, [f"10.{i}.0.0/16"], name=f"{tag}-{i}", description=f"{tag}-d{i % 2}") for i in range(3)]
    ids = [g["id"] for g in made]
    assert [g["id"] for g in listed(member, "address-groups", name=f"{tag}-1")] == [ids[1]]
    by_name = {"sort_key": "name", "sort_dir": "asc"}
    assert [g["id"] for g in listed(member, "address-groups", description=f"{tag}-d0", **by_name)] == [ids[0], ids[2]]
    names = [g["name"] for g in listed(member, "address-groups", sort_key="name", sort_dir="desc")
             if g["name"].startswith(tag)]
    assert names == [f"{tag}-2", f"{tag}-1", f"{tag}-0"]
    page = member.get("/address-groups", params={"limit": 2, "sort_key": "id", "sort_dir": "asc"}).json()
    assert len(page["address_groups"]) == 2 and page["address_groups_links"][0]["rel"] == "next"
    only = listed(member, "address-groups", fields=["id", "addresses"], id=ids[0])
    assert only == [{"id": ids[0], "addresses": ["10.0.0.0/16"]}]
    fault(member.get("/address-groups", params={"addresses": "10.0.0.0/16"}), 400, "HTTPBadRequest")

    with http(baryon.endpoint, name("other")) as other:
        assert listed(other, "address-groups", name=f"{tag}-1") == []
        fault(other.get(f"/address-groups/{ids[0]}"), 404, "AddressGroupNotFound")
        fault(other.put(f"/address-groups/{ids[0]}", json={"address_group": {"name": "x"}}), 404,
              "AddressGroupNotFound")
        fault(act(other, ids[0], "add", ["192.0.2.0/24"]), 404, "AddressGroupNotFound")
        fault(act(other, ids[0], "remove", ["10.0.0.0/16"]), 404, "AddressGroupNotFound")
        fault(other.delete(f"/address-groups/{ids[0]}"), 404, "AddressGroupNotFound")
    assert shown(member, ids[0]) == made[0]
    assert [g["id"] for g in listed(admin, "address-groups", project_id=project, **by_name)] == ids
    owned = group(admin, ["192.0.2.0/24"], project_id=project)  # the admin makes one for the project
    assert owned["project_id"] == project and shown(member, owned["id"]) == owned


def test_rules_naming_a_group(baryon: BaryonServer, admin: httpx.Client, member: httpx.Client):
    ag = group(member, ["192.0.2.0/24", "2001:db8::/64"])
    sg = member.post("/security-groups", json={"security_group": {"name": name("sg")}}).json()["security_group"]
    assert all(r["remote_address_group_id"] is None for r in sg["security_group_rules"])  # null when unset
    response = sg_rule(member, sg["id"], protocol="tcp", port_range_min=22, port_range_max=22,
                       remote_address_group_id=ag["id"])
    assert response.status_code == 201, response.text
    made = response.json()["security_group_rule"]
    assert (made["remote_address_group_id"], made["remote_group_id"], made["remote_ip_prefix"]) == (ag["id"], None,
                                                                                                    None)
    got = member.get(f"/security-group-rules/{made['id']}").json()["security_group_rule"]
    assert got["remote_address_group_id"] == ag["id"]
    assert [r["id"] for r in listed(member, "security-group-rules", remote_address_group_id=ag["id"])] == [made["id"]]
    in_group = member.get(f"/security-groups/{sg['id']}").json()["security_group"]["security_group_rules"]
    assert [r["remote_address_group_id"] for r in in_group if r["id"] == made["id"]] == [ag["id"]]
    v6 = sg_rule(member, sg["id"], ethertype="IPv6", remote_address_group_id=ag["id"])
    assert v6.status_code == 201, v6.text

    fault(sg_rule(member, sg["id"], protocol="tcp", port_range_min=22, port_range_max=22,
                  remote_address_group_id=ag["id"]), 409, "SecurityGroupRuleExists")
    for other in ({"remote_ip_prefix": "10.0.0.0/8"}, {"remote_group_id": sg["id"]}):
        error = fault(sg_rule(member, sg["id"], remote_address_group_id=ag["id"], **other), 400,
                      "SecurityGroupMultipleRemoteEntites")
        assert error["message"] == ("Only one of remote_ip_prefix or remote_group_id or remote_address_group_id "
                                    "may be provided.")
    missing = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    fault(sg_rule(member, sg["id"], remote_address_group_id=missing), 404, "AddressGroupNotFound")
    fault(sg_rule(member, sg["id"], remote_address_group_id="not-a-uuid"), 400, "HTTPBadRequest")
    with http(baryon.endpoint, name("other")) as other:  # another project's group cannot be named
        theirs = other.post("/security-groups", json={"security_group": {"name": "x"}}).json()["security_group"]
        fault(sg_rule(other, theirs["id"], remote_address_group_id=ag["id"]), 404, "AddressGroupNotFound")

    error = fault(member.delete(f"/address-groups/{ag['id']}"), 409, "AddressGroupInUse")
    assert error["message"] == f"Address group {ag['id']} is in use on one or more security group rules."
    assert shown(member, ag["id"]) == ag
    for rule in (made, v6.json()["security_group_rule"]):
        assert member.delete(f"/security-group-rules/{rule['id']}").status_code == 204
    assert member.delete(f"/address-groups/{ag['id']}").status_code == 204


def test_the_change_log_gets_every_change_of_a_group(baryon: BaryonServer, member: httpx.Client):
    seq = last_seq(baryon)
    ag = group(member, ["10.0.0.0/8"])
    act(member, ag["id"], "add", ["192.0.2.1"])
    fault(act(member, ag["id"], "add", ["192.0.2.1"]), 400, "AddressesAlreadyExist")  # logs nothing
    act(member, ag["id"], "remove", ["10.0.0.0/8"])
    renamed(member, ag["id"], name="x")
    member.delete(f"/address-groups/{ag['id']}")
    mine = [(kind, action) for _, kind, rid, action in changes_since(baryon, seq) if rid == ag["id"]]
    assert mine == [("address_group", "create")] + [("address_group", "update")] * 3 + [("address_group", "delete")]


def test_concurrent_changes_keep_the_invariants(baryon: BaryonServer, member: httpx.Client, project: str):
    ag = group(member, [])

    def add(client: httpx.Client, index: int) -> list[Any]:
        return [client.put(f"/v2.0/address-groups/{ag['id']}/add_addresses",
                           json={"addresses": ["198.51.100.0/24", f"10.{index}.0.0/16"]})]

    statuses = sorted(r.status_code for r in all_at_once(baryon.endpoint, add, headers(project)))
    assert statuses == [200] + [400] * (CLIENTS - 1)  # one got the shared address; the others changed nothing
    assert len(shown(member, ag["id"])["addresses"]) == 2

    # A group deleted while rules naming it are made: either the rules came first (409) or the group did (404).
    sg = member.post("/security-groups", json={"security_group": {"name": name("sg")}}).json()["security_group"]

    def race(client: httpx.Client, index: int) -> list[Any]:
        if index == 0:
            return [client.delete(f"/v2.0/address-groups/{ag['id']}")]
        return [client.post("/v2.0/security-group-rules", json={"security_group_rule": {
            "security_group_id": sg["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": index,
            "port_range_max": index, "remote_address_group_id": ag["id"]}})]

    [deleted, *rules] = all_at_once(baryon.endpoint, race, headers(project))
    made = [r for r in rules if r.status_code == 201]
    assert all(r.status_code in (201, 404) for r in rules), [r.text for r in rules]
    named = listed(member, "security-group-rules", remote_address_group_id=ag["id"])
    assert sorted(r["id"] for r in named) == sorted(r.json()["security_group_rule"]["id"] for r in made)
    if deleted.status_code == 204:  # no rule may name a group that is gone
        assert named == [] and member.get(f"/address-groups/{ag['id']}").status_code == 404
    else:
        assert deleted.status_code == 409 and named and shown(member, ag["id"])["id"] == ag["id"]


def test_clients(baryon: BaryonServer, admin: httpx.Client, project: str):
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert {"address-group", "security-groups-remote-address-group"} <= aliases
    conn = sdk(baryon.endpoint, project)
    made = conn.network.create_address_group(name=name("sdk"), addresses=["10.80.0.1/24"])
    assert made.addresses == ["10.80.0.0/24"]
    conn.network.add_addresses_to_address_group(made, ["10.81.0.0/16"])
    assert conn.network.get_address_group(made.id).addresses == ["10.80.0.0/24", "10.81.0.0/16"]
    via_cli = cli(baryon.endpoint, "address", "group", "create", "--address", "192.0.2.7", name("cli"), "-f", "json")
    assert via_cli["addresses"] in (["192.0.2.7/32"], "192.0.2.7/32")
