"""The default security group rules template (security-groups-default-rules) through the API.

On servers of their own (one per backend): the template is the deployment's, and changing it
changes every group made afterwards, which the shared server's other tests must not see. The
template's initial contents (Neutron's legacy rules); creating, showing, listing with filters,
deleting; admin-only writes; Neutron's errors for bad and duplicate rules, the same rule allowed
once per kind of group, and concurrent creates of one rule (one 201, the rest 409); and the
groups made afterwards: a project's default group and other groups get their rules from the
template, "PARENT" being the group itself, with the rule quota counting them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import cli, fault, headers, http
from tests.api.test_concurrency import CLIENTS, all_at_once
from tests.conftest import BACKENDS
from tests.support.server import BaryonServer

PATH = "/default-security-group-rules"
KEYS = {"id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
        "remote_group_id", "remote_address_group_id", "description", "used_in_default_sg", "used_in_non_default_sg"}
RULE_KEYS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
             "remote_group_id")


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaryonServer]:
    backend = request.param
    connection = "" if backend == "sqlite" else request.getfixturevalue(f"{backend}_server").create_database(
        "baryon_sg_template")
    server = BaryonServer(Path(tmp_path_factory.mktemp(f"sg-template-{backend}")), connection, workers=2).start()
    yield server
    server.stop()


@pytest.fixture
def admin(server: BaryonServer) -> Iterator[httpx.Client]:
    with http(server.endpoint) as client:
        yield client


@pytest.fixture
def member(server: BaryonServer, project: str) -> Iterator[httpx.Client]:
    with http(server.endpoint, project) as client:
        yield client


def add(client: httpx.Client, **attrs) -> httpx.Response:
    return client.post(PATH, json={"default_security_group_rule": attrs})


def added(client: httpx.Client, **attrs) -> dict:
    response = add(client, **attrs)
    assert response.status_code == 201, response.text
    return response.json()["default_security_group_rule"]


def template(client: httpx.Client, **params) -> list[dict]:
    response = client.get(PATH, params=params)
    assert response.status_code == 200, response.text
    return response.json()["default_security_group_rules"]


def shape(rules: list[dict]) -> list[tuple]:
    return sorted(tuple(str(r[k]) for k in RULE_KEYS) for r in rules)


def test_initial_template_is_neutrons_legacy_rules(admin: httpx.Client, member: httpx.Client):
    rules = template(member)  # everyone may read it
    legacy = [r for r in rules if r["description"].startswith("Legacy default SG rule")]
    assert len(legacy) == 4 and all(set(r) == KEYS for r in legacy)
    assert sorted((r["direction"], r["ethertype"], r["remote_group_id"], r["used_in_default_sg"],
                   r["used_in_non_default_sg"]) for r in legacy) == [
        ("egress", "IPv4", None, True, True), ("egress", "IPv6", None, True, True),
        ("ingress", "IPv4", "PARENT", True, False), ("ingress", "IPv6", "PARENT", True, False)]
    assert {r["id"] for r in template(admin, used_in_non_default_sg="True", direction="egress")} >= {
        r["id"] for r in legacy if r["direction"] == "egress"}
    assert all(r["used_in_default_sg"] for r in template(admin, used_in_default_sg=True))


def test_lifecycle_and_admin_only_writes(server: BaryonServer, admin: httpx.Client, member: httpx.Client):
    fault(add(member, direction="ingress"), 403, "PolicyNotAuthorized")
    created = added(admin, direction="ingress", protocol="TCP", port_range_min=8080, port_range_max=8081,
                    remote_ip_prefix="192.0.2.7/24", used_in_non_default_sg=True, description="web")
    assert set(created) == KEYS
    assert (created["protocol"], created["remote_ip_prefix"], created["remote_group_id"]) == ("tcp", "192.0.2.7/24",
                                                                                              None)
    assert (created["used_in_default_sg"], created["used_in_non_default_sg"]) == (True, True)
    shown = member.get(f"{PATH}/{created['id']}")
    assert shown.status_code == 200 and shown.json()["default_security_group_rule"] == created
    assert [r["id"] for r in template(member, protocol="tcp", port_range_min=8080)] == [created["id"]]
    assert admin.put(f"{PATH}/{created['id']}", json={"default_security_group_rule": {}}).status_code == 405
    fault(member.delete(f"{PATH}/{created['id']}"), 403, "PolicyNotAuthorized")
    assert admin.delete(f"{PATH}/{created['id']}").status_code == 204
    fault(admin.get(f"{PATH}/{created['id']}"), 404, "DefaultSecurityGroupRuleNotFound")
    fault(admin.delete(f"{PATH}/{created['id']}"), 404, "DefaultSecurityGroupRuleNotFound")
    # the openstack CLI's own command
    listed = cli(server.endpoint, "default", "security", "group", "rule", "list", "-f", "json")
    assert len(listed) == len(template(admin))


@pytest.mark.parametrize("attrs, status, type_", [
    ({"direction": "sideways"}, 400, "HTTPBadRequest"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_min": 90, "port_range_max": 80}, 400,
     "SecurityGroupInvalidPortRange"),
    ({"direction": "ingress", "port_range_min": 22}, 400, "SecurityGroupProtocolRequiredWithPorts"),
    ({"direction": "ingress", "protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol"),
    ({"direction": "ingress", "remote_group_id": "PARENT", "remote_ip_prefix": "10.0.0.0/8"}, 400,
     "SecurityGroupRemoteGroupAndRemoteIpPrefix"),
    ({"direction": "ingress", "remote_group_id": "nonsense"}, 400, "InvalidInput"),
    ({"direction": "ingress", "used_in_default_sg": "maybe"}, 400, "InvalidInput"),
    ({"direction": "ingress", "remote_address_group_id": "6a0c3b5e-2f0e-4f4e-9a43-0f7a5d1c2b11"}, 400,
     "HTTPBadRequest"),
])
def test_bad_rules_are_refused_and_change_nothing(admin: httpx.Client, attrs: dict, status: int, type_: str):
    before = template(admin)
    error = fault(add(admin, **attrs), status, type_)
    assert error["message"]
    assert template(admin) == before


def test_duplicates_per_kind_of_group(admin: httpx.Client):
    rule = {"direction": "ingress", "protocol": "udp", "port_range_min": 5353, "port_range_max": 5353}
    first = added(admin, **rule, used_in_default_sg=True, used_in_non_default_sg=False)
    second = added(admin, **rule, used_in_default_sg=False, used_in_non_default_sg=True)  # the other kind
    for flags in ((True, True), (True, False), (False, True)):
        error = fault(add(admin, **{**rule, "protocol": "17"}, used_in_default_sg=flags[0],
                          used_in_non_default_sg=flags[1]), 409, "DefaultSecurityGroupRuleExists")
        assert first["id"] in error["message"] or second["id"] in error["message"]
    bulk = admin.post(PATH, json={"default_security_group_rules": [{"direction": "egress", "protocol": "gre"}] * 2})
    fault(bulk, 409, "DuplicateDefaultSgRuleInPost")
    for created in (first, second):
        assert admin.delete(f"{PATH}/{created['id']}").status_code == 204


def test_concurrent_creates_of_one_rule_one_wins(server: BaryonServer, admin: httpx.Client):
    body = {"default_security_group_rule": {"direction": "ingress", "protocol": "tcp", "port_range_min": 4444,
                                            "port_range_max": 4444}}
    codes = all_at_once(server.endpoint + "/v2.0", lambda c, i: [c.post(PATH, json=body).status_code], headers(None))
    assert sorted(codes) == [201] + [409] * (CLIENTS - 1)
    mine = template(admin, port_range_min=4444)
    assert len(mine) == 1
    assert admin.delete(f"{PATH}/{mine[0]['id']}").status_code == 204


def test_new_groups_get_their_rules_from_the_template(server: BaryonServer, admin: httpx.Client, project: str):
    extra = [added(admin, direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22,
                   used_in_default_sg=True, used_in_non_default_sg=False),
             added(admin, direction="ingress", protocol="icmp", remote_group_id="PARENT",
                   used_in_default_sg=False, used_in_non_default_sg=True)]
    try:
        with http(server.endpoint, project) as member:
            groups = member.get("/security-groups").json()["security_groups"]  # makes the default group
            default = next(g for g in groups if g["name"] == "default")
            created = member.post("/security-groups", json={"security_group": {"name": "web"}})
            assert created.status_code == 201, created.text
            other = created.json()["security_group"]
        for group, flag in ((default, "used_in_default_sg"), (other, "used_in_non_default_sg")):
            expected = [{**t, "remote_group_id": group["id"] if t["remote_group_id"] == "PARENT"
                         else t["remote_group_id"]} for t in template(admin, **{flag: True})]
            assert shape(group["security_group_rules"]) == shape(expected)
            assert all(r["security_group_id"] == group["id"] and r["project_id"] == project
                       for r in group["security_group_rules"])
        assert ("ingress", "IPv4", "tcp", "22", "22", "None", "None") in shape(default["security_group_rules"])
        assert ("ingress", "IPv4", "icmp", "None", "None", "None", other["id"]) in shape(other["security_group_rules"])
    finally:
        for created in extra:
            assert admin.delete(f"{PATH}/{created['id']}").status_code == 204


def test_rule_quota_counts_the_template(server: BaryonServer, admin: httpx.Client, project: str):
    with http(server.endpoint, project) as member:
        member.get("/security-groups")  # the default group: 4 rules, not counted against the quota
        used = len(member.get("/security-group-rules").json()["security_group_rules"])
        per_group = len(template(admin, used_in_non_default_sg=True))
        assert admin.put(f"/quotas/{project}", json={"quota": {"security_group_rule": used + per_group}}
                         ).status_code == 200
        assert member.post("/security-groups", json={"security_group": {"name": "a"}}).status_code == 201
        fault(member.post("/security-groups", json={"security_group": {"name": "b"}}), 409, "OverQuota")
