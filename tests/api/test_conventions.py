"""The API's conventions, on networks and ports, against a running server on every backend.

``fields=``, filters, sorting, pagination (``limit``/``marker``/``page_reverse`` and
``<collection>_links``), bulk create (all or nothing), tags and their filters, ``If-Match``,
revision numbers, input errors that change nothing, the version/resource/extension documents and
Neutron's error bodies. Each test works in a fresh project (admins create for it), so the
shared server's other resources never show up in what a test lists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.rest import Api, cli, fault, sdk


@pytest.fixture
def admin(baryon) -> Iterator[Api]:
    api = Api(baryon.endpoint)
    yield api
    api.close()


def names(items: list[dict]) -> list[str]:
    return [i["name"] for i in items]


def make_networks(admin: Api, project: str, specs: list[dict]) -> list[dict]:
    return [admin.create("network", project_id=project, **spec) for spec in specs]


# ---------------------------------------------------------------- documents


def test_versions_resources_and_extensions(admin: Api, baryon):
    versions = admin.get("/").json()["versions"]
    assert [(v["id"], v["status"]) for v in versions] == [("v2.0", "CURRENT")]
    assert versions[0]["links"][0]["rel"] == "self"
    assert versions[0]["links"][0]["href"].rstrip("/").endswith("/v2.0")

    resources = admin.get("/v2.0/").json()["resources"]
    by_collection = {r["collection"]: r for r in resources}
    assert {"networks", "subnets", "ports"} <= set(by_collection)
    assert by_collection["ports"]["name"] == "port"
    assert by_collection["networks"]["links"][0]["href"].endswith("/v2.0/networks")

    extensions = admin.get("/v2.0/extensions").json()["extensions"]
    for extension in extensions:
        assert {"alias", "name", "description", "updated", "links"} <= set(extension)
    aliases = {e["alias"] for e in extensions}
    assert {"binding", "port-security", "allowed-address-pairs", "extra_dhcp_opt", "provider", "external-net",
            "standard-attr-tag", "standard-attr-revisions", "revision-if-match", "pagination", "sorting",
            "filter-validation"} <= aliases
    one = admin.get("/v2.0/extensions/binding")
    assert one.status_code == 200 and one.json()["extension"]["alias"] == "binding"
    assert admin.get("/v2.0/extensions/no-such-extension").status_code == 404


@pytest.mark.parametrize("collection,error", [
    ("networks", "NetworkNotFound"), ("subnets", "SubnetNotFound"), ("ports", "PortNotFound")])
def test_unknown_ids_are_404_with_the_resource_error(admin: Api, collection: str, error: str):
    missing = str(uuid.uuid4())
    resource = collection[:-1]
    assert missing in fault(admin.get(f"/v2.0/{collection}/{missing}"), 404, error)
    fault(admin.put(f"/v2.0/{collection}/{missing}", {resource: {"name": "x"}}), 404, error)
    fault(admin.delete(f"/v2.0/{collection}/{missing}"), 404, error)


def test_malformed_json_is_a_bad_request(admin: Api, project):
    for body in (b'{"network": {"name": ', b"not json", b'["network"]'):
        response = admin.http.post("/v2.0/networks", content=body, headers={"Content-Type": "application/json"})
        fault(response, 400, "HTTPBadRequest")
    network = admin.create("network", project_id=project, name="keep")
    response = admin.http.put(f"/v2.0/networks/{network['id']}", content=b"{",
                              headers={"Content-Type": "application/json"})
    fault(response, 400, "HTTPBadRequest")
    assert admin.show("network", network["id"])["revision_number"] == network["revision_number"]


# ---------------------------------------------------------------- fields


def test_fields_select_the_keys_returned(admin: Api, project):
    network = admin.create("network", project_id=project, name="f")
    port = admin.create("port", network_id=network["id"], project_id=project)
    shown = admin.get(f"/v2.0/networks/{network['id']}", params=[("fields", "id"), ("fields", "name")]).json()
    assert shown == {"network": {"id": network["id"], "name": "f"}}
    listed = admin.list("ports", [("fields", "mac_address"), ("fields", "status"), ("network_id", network["id"])])
    assert listed == [{"mac_address": port["mac_address"], "status": "DOWN"}]
    listed = admin.list("networks", [("fields", "name"), ("project_id", project)])
    assert listed == [{"name": "f"}]


# ---------------------------------------------------------------- filters


def test_filters_on_attributes(admin: Api, project):
    make_networks(admin, project, [{"name": "a"}, {"name": "b", "admin_state_up": False},
                                   {"name": "c", "admin_state_up": False}, {"name": "d"}])
    scope = [("project_id", project)]
    assert sorted(names(admin.list("networks", scope + [("name", "a"), ("name", "c")]))) == ["a", "c"]
    assert sorted(names(admin.list("networks", scope + [("admin_state_up", "False")]))) == ["b", "c"]
    assert sorted(names(admin.list("networks", scope + [("admin_state_up", "true")]))) == ["a", "d"]
    assert names(admin.list("networks", scope + [("admin_state_up", "False"), ("name", "b")])) == ["b"]
    assert admin.list("networks", scope + [("name", "zzz")]) == []
    assert len(admin.list("networks", scope)) == 4
    assert len(admin.list("networks", [("tenant_id", project)])) == 4


def test_unknown_or_invalid_filters_are_bad_requests(admin: Api):
    fault(admin.get("/v2.0/networks", params={"no_such_attribute": "x"}), 400, "HTTPBadRequest")
    fault(admin.get("/v2.0/ports", params={"bogus": "1"}), 400, "HTTPBadRequest")
    fault(admin.get("/v2.0/networks", params={"admin_state_up": "maybe"}), 400, "InvalidInput")


def test_port_filters_on_fixed_ips_and_more(admin: Api, project):
    network = admin.create("network", project_id=project, name="pf")
    s1 = admin.create("subnet", network_id=network["id"], cidr="10.20.0.0/24", ip_version=4, project_id=project)
    s2 = admin.create("subnet", network_id=network["id"], cidr="10.21.0.0/24", ip_version=4, project_id=project)
    p1 = admin.create("port", network_id=network["id"], project_id=project, name="p1",
                      fixed_ips=[{"ip_address": "10.20.0.5"}], device_owner="compute:nova")
    p2 = admin.create("port", network_id=network["id"], project_id=project, name="p2",
                      fixed_ips=[{"ip_address": "10.20.0.6"}, {"subnet_id": s2["id"]}])
    p3 = admin.create("port", network_id=network["id"], project_id=project, name="p3",
                      fixed_ips=[{"subnet_id": s2["id"]}], admin_state_up=False)

    def ids(params: list) -> set[str]:
        return {p["id"] for p in admin.list("ports", [("network_id", network["id"])] + params)}

    assert ids([("fixed_ips", "ip_address=10.20.0.5")]) == {p1["id"]}
    assert ids([("fixed_ips", "ip_address=10.20.0.5"), ("fixed_ips", "ip_address=10.20.0.6")]) == {p1["id"], p2["id"]}
    assert ids([("fixed_ips", f"subnet_id={s1['id']}")]) == {p1["id"], p2["id"]}
    assert ids([("fixed_ips", f"subnet_id={s2['id']}")]) == {p2["id"], p3["id"]}
    assert ids([("fixed_ips", "ip_address=10.20.0.99")]) == set()
    assert ids([("fixed_ips", "ip_address_substr=20.0.5")]) == {p1["id"]}
    assert ids([("mac_address", p3["mac_address"])]) == {p3["id"]}
    assert ids([("device_owner", "compute:nova")]) == {p1["id"]}
    assert ids([("admin_state_up", "False")]) == {p3["id"]}
    assert ids([("name", "p1"), ("name", "p3")]) == {p1["id"], p3["id"]}
    assert ids([("id", p2["id"])]) == {p2["id"]}


# ---------------------------------------------------------------- sorting


def test_sorting_on_one_and_several_keys(admin: Api, project):
    specs = [{"name": "n2", "admin_state_up": True}, {"name": "n1", "admin_state_up": False},
             {"name": "n4", "admin_state_up": False}, {"name": "n3", "admin_state_up": True}]
    make_networks(admin, project, specs)
    scope = [("project_id", project)]
    assert names(admin.list("networks", scope + [("sort_key", "name"), ("sort_dir", "asc")])) == [
        "n1", "n2", "n3", "n4"]
    assert names(admin.list("networks", scope + [("sort_key", "name"), ("sort_dir", "desc")])) == [
        "n4", "n3", "n2", "n1"]
    both = scope + [("sort_key", "admin_state_up"), ("sort_dir", "asc"), ("sort_key", "name"), ("sort_dir", "desc")]
    assert names(admin.list("networks", both)) == ["n4", "n1", "n3", "n2"]
    fault(admin.get("/v2.0/networks", params=[("sort_key", "no_such_key"), ("sort_dir", "asc")]),
          400, "HTTPBadRequest")
    fault(admin.get("/v2.0/networks", params=[("sort_key", "name"), ("sort_dir", "sideways")]),
          400, "HTTPBadRequest")
    # As Neutron: every sort_key needs its sort_dir.
    fault(admin.get("/v2.0/networks", params=[("sort_key", "name")]), 400, "HTTPBadRequest")


# ---------------------------------------------------------------- pagination


def link(body: dict, collection: str, rel: str) -> str | None:
    hrefs = [lk["href"] for lk in body.get(f"{collection}_links", []) if lk["rel"] == rel]
    assert len(hrefs) <= 1
    return hrefs[0] if hrefs else None


def follow(admin: Api, href: str) -> dict:
    parts = urlsplit(href)
    assert f"{parts.scheme}://{parts.netloc}" == admin.endpoint
    response = admin.get(parts.path, params=parse_qs(parts.query))
    assert response.status_code == 200, response.text
    return response.json()


def test_pagination_walks_every_item_once_both_ways(admin: Api, project):
    created = make_networks(admin, project, [{"name": f"page-{i:02d}"} for i in range(7)])
    expected = sorted(n["name"] for n in created)
    first = admin.get("/v2.0/networks", params=[("project_id", project), ("sort_key", "name"),
                                                ("sort_dir", "asc"), ("limit", "3")]).json()
    assert names(first["networks"]) == expected[:3]
    # Forward: follow "next" until it disappears.
    seen, body, pages = names(first["networks"]), first, 1
    while (href := link(body, "networks", "next")) is not None:
        query = parse_qs(urlsplit(href).query)
        assert query["limit"] == ["3"] and query["project_id"] == [project] and "page_reverse" not in query
        body = follow(admin, href)
        seen += names(body["networks"])
        pages += 1
        assert pages < 10
    assert seen == expected and pages == 3
    assert len(body["networks"]) == 1 and link(body, "networks", "previous") is not None
    # Backward from the last page: follow "previous" until it disappears.
    back = list(names(body["networks"]))
    while (href := link(body, "networks", "previous")) is not None:
        assert parse_qs(urlsplit(href).query)["page_reverse"] == ["True"]
        body = follow(admin, href)
        back = names(body["networks"]) + back
        pages += 1
        assert pages < 20
    assert back == expected
    # A marker that does not exist is a 404.
    response = admin.get("/v2.0/networks", params={"limit": 2, "marker": str(uuid.uuid4())})
    fault(response, 404, "NetworkNotFound")
    fault(admin.get("/v2.0/networks", params={"limit": "-1"}), 400, "HTTPBadRequest")


def test_pagination_with_page_reverse_and_marker(admin: Api, project):
    created = make_networks(admin, project, [{"name": f"rev-{i}"} for i in range(5)])
    by_name = {n["name"]: n["id"] for n in created}
    params = [("project_id", project), ("sort_key", "name"), ("sort_dir", "asc"), ("limit", "2")]
    after = admin.list("networks", params + [("marker", by_name["rev-1"])])
    assert names(after) == ["rev-2", "rev-3"]
    before = admin.list("networks", params + [("marker", by_name["rev-3"]), ("page_reverse", "True")])
    assert names(before) == ["rev-1", "rev-2"]
    # Links still carry the ids when ``fields`` leaves the id out.
    body = admin.get("/v2.0/networks", params=params + [("fields", "name")]).json()
    assert body["networks"] == [{"name": "rev-0"}, {"name": "rev-1"}]
    assert parse_qs(urlsplit(link(body, "networks", "next")).query)["marker"] == [by_name["rev-1"]]


def test_openstacksdk_pagination(baryon, admin: Api, project):
    make_networks(admin, project, [{"name": f"sdk-{i}"} for i in range(7)])
    conn = sdk(baryon.endpoint)
    listed = [n.name for n in conn.network.networks(project_id=project, limit=2, sort_key="name", sort_dir="asc")]
    assert listed == [f"sdk-{i}" for i in range(7)]
    member = sdk(baryon.endpoint, project)
    listed = [n.name for n in member.network.networks(limit=3, project_id=project)]
    assert sorted(listed) == [f"sdk-{i}" for i in range(7)]


# ---------------------------------------------------------------- bulk


def test_bulk_create_networks(admin: Api, project):
    response = admin.post("/v2.0/networks", {"networks": [{"name": "bulk-1", "project_id": project},
                                                          {"name": "bulk-2", "project_id": project}]})
    assert response.status_code == 201, response.text
    created = response.json()["networks"]
    assert names(created) == ["bulk-1", "bulk-2"]
    assert {n["id"] for n in admin.list("networks", {"project_id": project})} == {n["id"] for n in created}


def test_bulk_create_is_all_or_nothing(admin: Api, project):
    response = admin.post("/v2.0/networks", {"networks": [{"name": "ok", "project_id": project},
                                                          {"name": "bad", "project_id": project, "mtu": "big"}]})
    fault(response, 400, "InvalidInput")
    assert admin.list("networks", {"project_id": project}) == []
    # A failure found only while creating (an address already taken) undoes the whole bulk too.
    network = admin.create("network", project_id=project, name="bulk-ports")
    admin.create("subnet", network_id=network["id"], cidr="10.30.0.0/24", ip_version=4)
    taken = admin.create("port", network_id=network["id"], fixed_ips=[{"ip_address": "10.30.0.9"}])
    response = admin.post("/v2.0/ports", {"ports": [
        {"network_id": network["id"], "fixed_ips": [{"ip_address": "10.30.0.8"}]},
        {"network_id": network["id"], "fixed_ips": [{"ip_address": "10.30.0.9"}]}]})
    fault(response, 409, "IpAddressAlreadyAllocated")
    assert [p["id"] for p in admin.list("ports", {"network_id": network["id"]})] == [taken["id"]]
    # ... and the address the undone port had asked for is still free.
    assert admin.create("port", network_id=network["id"], fixed_ips=[{"ip_address": "10.30.0.8"}])["fixed_ips"]


def test_bulk_ports_never_draw_the_same_address_or_mac(admin: Api, project):
    # 100 ports at once in a /24: each picks among the free addresses after the ones before it.
    network = admin.create("network", project_id=project, name="bulk-many")
    admin.create("subnet", network_id=network["id"], cidr="10.31.0.0/24", ip_version=4)
    response = admin.post("/v2.0/ports", {"ports": [{"network_id": network["id"]} for _ in range(100)]})
    assert response.status_code == 201, response.text
    ports = response.json()["ports"]
    addresses = [p["fixed_ips"][0]["ip_address"] for p in ports]
    assert len(set(addresses)) == 100 and len({p["mac_address"] for p in ports}) == 100


# ---------------------------------------------------------------- tags


def test_tag_subresource_status_codes_and_revisions(admin: Api, project):
    network = admin.create("network", project_id=project, name="tagged")
    base = f"/v2.0/networks/{network['id']}/tags"
    revision = network["revision_number"]

    def current_revision() -> int:
        return admin.show("network", network["id"])["revision_number"]

    response = admin.put(base, {"tags": ["red", "blue"]})
    assert response.status_code == 200 and sorted(response.json()["tags"]) == ["blue", "red"]
    assert current_revision() == revision + 1
    response = admin.get(base)
    assert response.status_code == 200 and sorted(response.json()["tags"]) == ["blue", "red"]
    assert admin.put(f"{base}/green").status_code == 201
    assert current_revision() == revision + 2
    assert admin.get(f"{base}/green").status_code == 204
    assert fault(admin.get(f"{base}/purple"), 404, "TagNotFound") == "Tag purple could not be found."
    assert admin.delete(f"{base}/green").status_code == 204
    assert current_revision() == revision + 3
    fault(admin.delete(f"{base}/green"), 404, "TagNotFound")
    assert sorted(admin.show("network", network["id"])["tags"]) == ["blue", "red"]
    assert admin.delete(base).status_code == 204
    assert admin.get(base).json() == {"tags": []}
    assert current_revision() == revision + 4
    # Bad bodies are InvalidInput, as Neutron's tagging extension; a repeated tag is refused.
    fault(admin.put(base, {"tags": "not-a-list"}), 400, "InvalidInput")
    fault(admin.put(base, {"labels": ["x"]}), 400, "InvalidInput")
    assert "Duplicate" in fault(admin.put(base, {"tags": ["x", "x"]}), 400, "InvalidInput")
    fault(admin.put(f"{base}/{'x' * 256}"), 400, "InvalidInput")
    fault(admin.post("/v2.0/networks", {"network": {"name": "dup", "project_id": project, "tags": ["y", "y"]}}),
          400, "HTTPBadRequest")
    assert admin.get(base).json() == {"tags": []}
    assert current_revision() == revision + 4
    response = admin.get(f"/v2.0/networks/{uuid.uuid4()}/tags")
    assert response.status_code == 404 and "NeutronError" in response.json()
    # Ports have tags too.
    port = admin.create("port", network_id=network["id"], tags=["vm"])
    assert port["tags"] == ["vm"]
    assert admin.put(f"/v2.0/ports/{port['id']}/tags/web").status_code == 201
    updated = admin.show("port", port["id"])
    assert sorted(updated["tags"]) == ["vm", "web"] and updated["revision_number"] == port["revision_number"] + 1


def test_tag_filters(admin: Api, project):
    specs = [{"name": "t1", "tags": ["a"]}, {"name": "t2", "tags": ["a", "b"]},
             {"name": "t3", "tags": ["b", "c"]}, {"name": "t4"}]
    make_networks(admin, project, specs)

    def filtered(key: str, value: str) -> list[str]:
        return sorted(names(admin.list("networks", [("project_id", project), (key, value)])))

    assert filtered("tags", "a") == ["t1", "t2"]
    assert filtered("tags", "a,b") == ["t2"]
    assert filtered("tags-any", "a,c") == ["t1", "t2", "t3"]
    assert filtered("not-tags", "a,b") == ["t1", "t3", "t4"]
    assert filtered("not-tags-any", "a,c") == ["t4"]
    assert sorted(names(admin.list("networks", [("project_id", project), ("tags", "a"), ("tags", "b")]))) == ["t2"]


def test_tags_through_the_cli(baryon, admin: Api):
    # NOTE: no ``--project``: the CLI resolves it through Keystone, which a noauth cloud lacks.
    unique = uuid.uuid4().hex[:8]
    name, alpha, gamma = f"cli-tags-{unique}", f"alpha-{unique}", f"gamma-{unique}"
    created = cli(baryon.endpoint, "network", "create", "--tag", alpha, "--tag", "beta", name)
    assert sorted(created["tags"]) == [alpha, "beta"]
    cli(baryon.endpoint, "network", "set", created["id"], "--tag", gamma)
    assert sorted(admin.show("network", created["id"])["tags"]) == [alpha, "beta", gamma]
    listed = cli(baryon.endpoint, "network", "list", "--tags", f"{alpha},{gamma}")
    assert [n["ID"] for n in listed] == [created["id"]]
    assert cli(baryon.endpoint, "network", "list", "--tags", f"{alpha},nope-{unique}") == []


# ---------------------------------------------------------------- revisions and If-Match


def test_revision_number_bumps_on_every_change(admin: Api, project):
    network = admin.create("network", project_id=project, name="rev")
    assert network["revision_number"] == 1
    network = admin.update("network", network["id"], name="rev-2")
    assert network["revision_number"] == 2
    network = admin.update("network", network["id"], admin_state_up=False)
    assert network["revision_number"] == 3
    port = admin.create("port", network_id=network["id"])
    assert port["revision_number"] == 1
    for expected, attrs in enumerate([{"name": "one"}, {"description": "two"},
                                      {"allowed_address_pairs": [{"ip_address": "10.1.1.1"}]},
                                      {"extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1400"}]}], start=2):
        port = admin.update("port", port["id"], **attrs)
        assert port["revision_number"] == expected
    assert admin.show("port", port["id"])["revision_number"] == 5
    assert port["updated_at"] >= port["created_at"]


def test_if_match_on_update_and_delete(admin: Api, project):
    network = admin.create("network", project_id=project, name="im")
    path = f"/v2.0/networks/{network['id']}"
    response = admin.put(path, {"network": {"name": "im-2"}}, headers={"If-Match": "revision_number=1"})
    assert response.status_code == 200 and response.json()["network"]["revision_number"] == 2
    response = admin.put(path, {"network": {"name": "stale"}}, headers={"If-Match": "revision_number=1"})
    fault(response, 412, "RevisionNumberConstraintFailed")
    assert admin.show("network", network["id"])["name"] == "im-2"
    fault(admin.delete(path, headers={"If-Match": "revision_number=1"}), 412, "RevisionNumberConstraintFailed")
    assert admin.show("network", network["id"])["name"] == "im-2"
    assert admin.delete(path, headers={"If-Match": "revision_number=2"}).status_code == 204
    fault(admin.get(path), 404, "NetworkNotFound")
    # Ports too.
    other = admin.create("network", project_id=project, name="im-ports")
    port = admin.create("port", network_id=other["id"])
    ppath = f"/v2.0/ports/{port['id']}"
    fault(admin.put(ppath, {"port": {"name": "x"}}, headers={"If-Match": "revision_number=7"}),
          412, "RevisionNumberConstraintFailed")
    assert admin.put(ppath, {"port": {"name": "x"}}, headers={"If-Match": "revision_number=1"}).status_code == 200
    assert admin.delete(ppath, headers={"If-Match": "revision_number=2"}).status_code == 204


# ---------------------------------------------------------------- input errors change nothing


def test_unknown_attributes_and_wrong_types_change_nothing(admin: Api, project):
    bad_creates = [
        {"name": "x1", "project_id": project, "no_such_attribute": 1},
        {"name": "x2", "project_id": project, "admin_state_up": "maybe"},
        {"name": "x3", "project_id": project, "mtu": "big"},
        {"name": ["x4"], "project_id": project},
        {"name": "x5", "project_id": project, "status": "ACTIVE"},
    ]
    for body in bad_creates:
        response = admin.post("/v2.0/networks", {"network": body})
        assert response.status_code == 400, (body, response.text)
        assert set(response.json()["NeutronError"]) == {"type", "message", "detail"}
    fault(admin.post("/v2.0/networks", {"netwerk": {"name": "x6"}}), 400, "HTTPBadRequest")
    assert admin.list("networks", {"project_id": project}) == []

    network = admin.create("network", project_id=project, name="stable")
    port = admin.create("port", network_id=network["id"], name="stable-port")
    bad_updates = [
        ("networks", network["id"], {"network": {"name": "changed", "no_such_attribute": 1}}),
        ("networks", network["id"], {"network": {"name": "changed", "admin_state_up": "maybe"}}),
        ("networks", network["id"], {"network": {"name": "changed", "id": str(uuid.uuid4())}}),
        ("ports", port["id"], {"port": {"name": "changed", "network_id": str(uuid.uuid4())}}),
        ("ports", port["id"], {"port": {"name": "changed", "fixed_ips": "10.0.0.1"}}),
        ("ports", port["id"], {"port": {"name": "changed", "mac_address": "not-a-mac"}}),
        ("ports", port["id"], {"port": {"name": "changed", "bogus": True}}),
    ]
    for collection, rid, body in bad_updates:
        response = admin.put(f"/v2.0/{collection}/{rid}", body)
        assert response.status_code == 400, (body, response.text)
    assert [(n["name"], n["revision_number"]) for n in admin.list("networks", {"project_id": project})] == [
        ("stable", 1)]
    assert [(p["name"], p["revision_number"]) for p in admin.list("ports", {"network_id": network["id"]})] == [
        ("stable-port", 1)]
