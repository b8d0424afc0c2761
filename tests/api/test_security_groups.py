"""Security groups and rules through the API, on every database backend.

The project's default group (made on first use, Neutron's four rules), groups (create, show,
list, update, delete, stateful, tags), rules (validation per protocol, remote group or prefix,
duplicates, revision bumps), isolation between projects, ports and their groups, concurrency
(identical rules at once: one 201, the rest 409) and the change log; with openstacksdk, the
``openstack`` CLI, and httpx for exact codes and Neutron's fault bodies.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api.helpers import cli, fault, http, name, sdk
from tests.api.test_concurrency import change_log
from tests.support.server import BaryonServer

GROUPS, RULES = "/security-groups", "/security-group-rules"


def create_group(client: httpx.Client, **attrs) -> dict:
    response = client.post(GROUPS, json={"security_group": {"name": name("sg"), **attrs}})
    assert response.status_code == 201, response.text
    return response.json()["security_group"]


def show_group(client: httpx.Client, group_id: str) -> dict:
    response = client.get(f"{GROUPS}/{group_id}")
    assert response.status_code == 200, response.text
    return response.json()["security_group"]


def add_rule(client: httpx.Client, group_id: str, **attrs) -> dict:
    response = client.post(RULES, json={"security_group_rule": {
        "security_group_id": group_id, "direction": "ingress", **attrs}})
    assert response.status_code == 201, response.text
    return response.json()["security_group_rule"]


def rule_post(client: httpx.Client, group_id: str, **attrs) -> httpx.Response:
    return client.post(RULES, json={"security_group_rule": {
        "security_group_id": group_id, "direction": "ingress", **attrs}})


def groups_of(client: httpx.Client, **params) -> list[dict]:
    response = client.get(GROUPS, params=params)
    assert response.status_code == 200, response.text
    return response.json()["security_groups"]


def rules_of(client: httpx.Client, **params) -> list[dict]:
    response = client.get(RULES, params=params)
    assert response.status_code == 200, response.text
    return response.json()["security_group_rules"]


def default_group(client: httpx.Client) -> dict:
    [group] = [g for g in groups_of(client) if g["name"] == "default"]
    return group


def shape(rule: dict) -> tuple:
    return (rule["direction"], rule["ethertype"], rule["protocol"], rule["port_range_min"], rule["port_range_max"],
            rule["remote_ip_prefix"], rule["remote_group_id"])


RULE_FIELDS = {"id", "project_id", "tenant_id", "security_group_id", "remote_group_id", "remote_address_group_id",
               "direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
               "normalized_cidr", "description", "created_at", "updated_at", "revision_number"}
GROUP_FIELDS = {"id", "name", "description", "project_id", "tenant_id", "stateful", "security_group_rules", "tags",
                "created_at", "updated_at", "revision_number", "shared"}


# ---------------------------------------------------------------- the default group


def test_listing_as_a_new_project_shows_its_default_group(member: httpx.Client, project: str):
    [group] = groups_of(member)
    assert set(group) == GROUP_FIELDS
    assert (group["name"], group["description"], group["project_id"], group["stateful"]) == (
        "default", "Default security group", project, True)
    assert sorted(shape(r) for r in group["security_group_rules"]) == [
        ("egress", "IPv4", None, None, None, None, None),
        ("egress", "IPv6", None, None, None, None, None),
        ("ingress", "IPv4", None, None, None, None, group["id"]),
        ("ingress", "IPv6", None, None, None, None, group["id"]),
    ]
    for rule in group["security_group_rules"]:
        assert set(rule) == RULE_FIELDS
        assert (rule["security_group_id"], rule["project_id"], rule["remote_address_group_id"],
                rule["normalized_cidr"]) == (group["id"], project, None, None)
    # Once only; the rules list shows the same four.
    assert [g["id"] for g in groups_of(member)] == [group["id"]]
    assert sorted(r["id"] for r in rules_of(member)) == sorted(r["id"] for r in group["security_group_rules"])


def test_first_use_by_rules_list_network_or_group_create(baryon: BaryonServer):
    for first_use in ("rules", "network", "group"):
        with http(baryon.endpoint, uuid.uuid4().hex) as client:
            if first_use == "rules":
                assert len(rules_of(client)) == 4
            elif first_use == "network":
                assert client.post("/networks", json={"network": {"name": "n"}}).status_code == 201
            else:
                create_group(client)
            assert [g["name"] for g in groups_of(client)].count("default") == 1, first_use


def test_racing_first_lists_share_one_default_group(baryon: BaryonServer, project: str):
    barrier = threading.Barrier(8)

    def first_list(_: int) -> list[str]:
        with http(baryon.endpoint, project) as client:
            client.get("/networks")  # connected before the start line
            barrier.wait(timeout=30)
            return [g["id"] for g in groups_of(client)]

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(first_list, range(8)))
    assert len({tuple(ids) for ids in seen}) == 1 and len(seen[0]) == 1


def test_default_group_cannot_be_renamed_or_deleted_by_its_project(member: httpx.Client, admin: httpx.Client):
    group = default_group(member)
    error = fault(member.put(f"{GROUPS}/{group['id']}", json={"security_group": {"name": "mine"}}),
                  409, "SecurityGroupCannotUpdateDefault")
    assert error["message"] == "Updating default security group not allowed."
    fault(admin.put(f"{GROUPS}/{group['id']}", json={"security_group": {"name": "x"}}),
          409, "SecurityGroupCannotUpdateDefault")
    updated = member.put(f"{GROUPS}/{group['id']}", json={"security_group": {"description": "ours"}})
    assert updated.status_code == 200 and updated.json()["security_group"]["description"] == "ours"
    error = fault(member.delete(f"{GROUPS}/{group['id']}"), 409, "SecurityGroupCannotRemoveDefault")
    assert error["message"] == "Insufficient rights for removing default security group."
    assert show_group(member, group["id"])["name"] == "default"
    # Neutron lets an admin delete it (project clean-up); the next use makes a new one.
    assert admin.delete(f"{GROUPS}/{group['id']}").status_code == 204
    fault(member.get(f"{GROUPS}/{group['id']}"), 404, "SecurityGroupNotFound")
    again = default_group(member)
    assert again["id"] != group["id"] and len(again["security_group_rules"]) == 4


def test_no_other_group_may_be_called_default(member: httpx.Client):
    for spelling in ("default", "Default", "DEFAULT"):
        error = fault(member.post(GROUPS, json={"security_group": {"name": spelling}}),
                      409, "SecurityGroupDefaultAlreadyExists")
        assert error["message"] == "Default security group already exists."
    group = create_group(member)
    fault(member.put(f"{GROUPS}/{group['id']}", json={"security_group": {"name": "default"}}),
          409, "SecurityGroupDefaultAlreadyExists")
    assert [g["name"] for g in groups_of(member)].count("default") == 1
    assert [g["id"] for g in groups_of(member, name="default")] == [default_group(member)["id"]]


# ---------------------------------------------------------------- groups (openstacksdk)


def test_groups_through_openstacksdk(baryon: BaryonServer, project: str):
    conn = sdk(baryon.endpoint, project)
    group = conn.network.create_security_group(name="web", description="front", tags=["b", "a"])
    assert (group.name, group.description, group.project_id, group.stateful) == ("web", "front", project, True)
    assert group.tags == ["a", "b"] and group.revision_number == 1
    assert sorted((r["direction"], r["ethertype"], r["remote_ip_prefix"], r["remote_group_id"])
                  for r in group.security_group_rules) == [("egress", "IPv4", None, None), ("egress", "IPv6", None, None)]
    assert conn.network.get_security_group(group.id).name == "web"
    assert conn.network.find_security_group("web").id == group.id
    assert sorted(g.name for g in conn.network.security_groups()) == ["default", "web"]
    assert [g.id for g in conn.network.security_groups(tags="a")] == [group.id]
    group = conn.network.update_security_group(group, name="web2", description="", stateful=False)
    assert (group.name, group.description, group.stateful, group.revision_number) == ("web2", "", False, 2)
    rule = conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", protocol="tcp",
                                                   port_range_min=443, port_range_max=443, ethertype="IPv4",
                                                   remote_ip_prefix="192.0.2.0/24", description="https")
    assert (rule.protocol, rule.port_range_min, rule.port_range_max, rule.remote_ip_prefix, rule.description) == (
        "tcp", 443, 443, "192.0.2.0/24", "https")
    assert conn.network.get_security_group_rule(rule.id).security_group_id == group.id
    assert rule.id in {r.id for r in conn.network.security_group_rules(security_group_id=group.id)}
    conn.network.delete_security_group_rule(rule)
    conn.network.delete_security_group(group)
    assert [g.name for g in conn.network.security_groups()] == ["default"]


def test_group_fields_filters_and_sorting(member: httpx.Client, project: str):
    a = create_group(member, name="alpha", description="first", stateful=False)
    b = create_group(member, name="beta")
    assert set(a) == GROUP_FIELDS and a["stateful"] is False and b["stateful"] is True
    assert [g["id"] for g in groups_of(member, stateful="False")] == [a["id"]]
    assert [g["name"] for g in groups_of(member, sort_key="name", sort_dir="desc")] == ["default", "beta", "alpha"]
    assert {g["id"] for g in groups_of(member, project_id=project)} >= {a["id"], b["id"]}
    assert [g["name"] for g in groups_of(member, fields="name", name="beta")] == ["beta"]
    assert groups_of(member, fields="name", name="beta")[0] == {"name": "beta"}
    fault(member.get(GROUPS, params={"colour": "red"}), 400, "HTTPBadRequest")


def test_group_tags(member: httpx.Client):
    group = create_group(member)
    assert member.put(f"{GROUPS}/{group['id']}/tags/red").status_code == 201
    response = member.put(f"{GROUPS}/{group['id']}/tags", json={"tags": ["blue", "red"]})
    assert response.status_code == 200 and response.json()["tags"] == ["blue", "red"]
    shown = show_group(member, group["id"])
    assert shown["tags"] == ["blue", "red"] and shown["revision_number"] > group["revision_number"]
    assert [g["id"] for g in groups_of(member, tags="blue,red")] == [group["id"]]
    assert member.delete(f"{GROUPS}/{group['id']}/tags/red").status_code == 204
    assert show_group(member, group["id"])["tags"] == ["blue"]


def test_stateful_cannot_change_while_a_port_uses_the_group(member: httpx.Client):
    group = create_group(member)
    network = member.post("/networks", json={"network": {"name": "n"}}).json()["network"]
    port = member.post("/ports", json={"port": {"network_id": network["id"], "security_groups": [group["id"]]}})
    assert port.status_code == 201 and port.json()["port"]["security_groups"] == [group["id"]]
    error = fault(member.put(f"{GROUPS}/{group['id']}", json={"security_group": {"stateful": False}}),
                  409, "SecurityGroupInUse")
    assert error["message"] == f"Security Group {group['id']} in use."
    # Other changes, and the same value, are fine.
    response = member.put(f"{GROUPS}/{group['id']}", json={"security_group": {"stateful": True, "name": "x"}})
    assert response.status_code == 200 and response.json()["security_group"]["stateful"] is True


def test_a_group_in_use_cannot_be_deleted(member: httpx.Client):
    group = create_group(member)
    network = member.post("/networks", json={"network": {"name": "n"}}).json()["network"]
    port = member.post("/ports", json={"port": {"network_id": network["id"], "security_groups": [group["id"]]}})
    port_id = port.json()["port"]["id"]
    error = fault(member.delete(f"{GROUPS}/{group['id']}"), 409, "SecurityGroupInUse")
    assert error["message"] == f"Security Group {group['id']} in use."
    assert show_group(member, group["id"])["id"] == group["id"]
    assert member.delete(f"/ports/{port_id}").status_code == 204
    assert member.delete(f"{GROUPS}/{group['id']}").status_code == 204
    fault(member.get(f"{GROUPS}/{group['id']}"), 404, "SecurityGroupNotFound")
    fault(member.delete(f"{GROUPS}/{group['id']}"), 404, "SecurityGroupNotFound")


def test_projects_do_not_see_each_others_groups(baryon: BaryonServer, member: httpx.Client, admin: httpx.Client):
    group = create_group(member)
    rule = add_rule(member, group["id"], protocol="tcp", port_range_min=80, port_range_max=80)
    with http(baryon.endpoint, uuid.uuid4().hex) as other:
        assert group["id"] not in {g["id"] for g in groups_of(other)}
        assert rule["id"] not in {r["id"] for r in rules_of(other)}
        error = fault(other.get(f"{GROUPS}/{group['id']}"), 404, "SecurityGroupNotFound")
        assert error["message"] == f"Security group {group['id']} does not exist"
        fault(other.put(f"{GROUPS}/{group['id']}", json={"security_group": {"name": "x"}}), 404, "SecurityGroupNotFound")
        fault(other.delete(f"{GROUPS}/{group['id']}"), 404, "SecurityGroupNotFound")
        fault(rule_post(other, group["id"], protocol="udp"), 404, "SecurityGroupNotFound")
        error = fault(other.get(f"{RULES}/{rule['id']}"), 404, "SecurityGroupRuleNotFound")
        assert error["message"] == f"Security group rule {rule['id']} does not exist"
        fault(other.delete(f"{RULES}/{rule['id']}"), 404, "SecurityGroupRuleNotFound")
        # Nor use them as a remote group, nor on a port.
        own = create_group(other)
        fault(rule_post(other, own["id"], remote_group_id=group["id"]), 404, "SecurityGroupNotFound")
        network = other.post("/networks", json={"network": {"name": "n"}}).json()["network"]
        fault(other.post("/ports", json={"port": {"network_id": network["id"], "security_groups": [group["id"]]}}),
              404, "SecurityGroupNotFound")
        # A reader may look but not change.
    with http(baryon.endpoint, group["project_id"], roles="reader") as reader:
        assert show_group(reader, group["id"])["id"] == group["id"]
        fault(reader.post(GROUPS, json={"security_group": {"name": "r"}}), 403, "PolicyNotAuthorized")
        fault(rule_post(reader, group["id"], protocol="udp"), 403, "PolicyNotAuthorized")
    # The admin sees and may change every project's groups.
    assert show_group(admin, group["id"])["id"] == group["id"]
    assert add_rule(admin, group["id"], protocol="udp")["project_id"] == group["project_id"]


# ---------------------------------------------------------------- rules


def test_rule_create_normalises_and_bumps_the_group(member: httpx.Client, project: str):
    group = create_group(member)
    rule = add_rule(member, group["id"], protocol="TCP", port_range_min="22", port_range_max=22,
                    remote_ip_prefix="10.1.2.3/16", ethertype="ipv4", description="ssh")
    assert set(rule) == RULE_FIELDS
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"], rule["ethertype"]) == ("tcp", 22, 22, "IPv4")
    assert (rule["remote_ip_prefix"], rule["normalized_cidr"]) == ("10.1.2.3/16", "10.1.0.0/16")
    assert (rule["project_id"], rule["tenant_id"], rule["description"]) == (project, project, "ssh")
    shown = show_group(member, group["id"])
    assert shown["revision_number"] == group["revision_number"] + 1
    assert rule["id"] in {r["id"] for r in shown["security_group_rules"]}
    response = member.get(f"{RULES}/{rule['id']}")
    assert response.status_code == 200 and response.json()["security_group_rule"] == rule
    assert member.delete(f"{RULES}/{rule['id']}").status_code == 204
    after = show_group(member, group["id"])
    assert after["revision_number"] == shown["revision_number"] + 1
    assert rule["id"] not in {r["id"] for r in after["security_group_rules"]}
    fault(member.get(f"{RULES}/{rule['id']}"), 404, "SecurityGroupRuleNotFound")


@pytest.mark.parametrize(("attrs", "stored"), [
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0}, ("icmp", 8, 0, None)),
    ({"protocol": "icmp", "ethertype": "IPv6"}, ("ipv6-icmp", None, None, None)),
    ({"protocol": "icmpv6", "ethertype": "IPv6", "port_range_min": 128}, ("ipv6-icmp", 128, None, None)),
    ({"protocol": "1", "ethertype": "IPv6"}, ("58", None, None, None)),
    ({"protocol": 132, "port_range_min": 1, "port_range_max": 65535}, ("132", 1, 65535, None)),
    ({"protocol": "gre"}, ("gre", None, None, None)),
    ({"protocol": "ipv6-route", "ethertype": "IPv6"}, ("ipv6-route", None, None, None)),
    ({"ethertype": "IPv6", "remote_ip_prefix": "2001:DB8::1/64"}, (None, None, None, "2001:db8::1/64")),
    ({"remote_ip_prefix": "203.0.113.9"}, (None, None, None, "203.0.113.9/32")),
    ({"protocol": None, "remote_ip_prefix": ""}, (None, None, None, None)),
])
def test_valid_rules(member: httpx.Client, attrs: dict, stored: tuple):
    group = create_group(member)
    rule = add_rule(member, group["id"], **attrs)
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"], rule["remote_ip_prefix"]) == stored


@pytest.mark.parametrize(("attrs", "status", "type_", "message"), [
    ({"protocol": "tcp", "port_range_min": 100, "port_range_max": 90}, 400, "SecurityGroupInvalidPortRange",
     "For TCP/UDP protocols, port_range_min must be <= port_range_max"),
    ({"protocol": "udp", "port_range_min": 0, "port_range_max": 90}, 400, "SecurityGroupInvalidPortValue",
     "Invalid value for port 0"),
    ({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}, 400, "SecurityGroupInvalidPortValue",
     "Invalid value for port 70000"),
    ({"protocol": "tcp", "port_range_min": "x"}, 400, "SecurityGroupInvalidPortValue", "Invalid value for port x"),
    ({"protocol": "icmp", "port_range_min": 300}, 400, "SecurityGroupInvalidIcmpValue",
     "Invalid value for ICMP type (port_range_min) 300. It must be 0 to 255."),
    ({"protocol": "icmp", "port_range_max": 3}, 400, "SecurityGroupMissingIcmpType",
     "ICMP code (port-range-max) 3 is provided but ICMP type (port-range-min) is missing."),
    ({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}, 400, "SecurityGroupInvalidProtocolForPort",
     "Ports cannot be specified for protocol 47. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE."),
    ({"port_range_min": 22, "port_range_max": 22}, 400, "SecurityGroupProtocolRequiredWithPorts",
     "Must also specify protocol if port range is given."),
    ({"protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol", None),
    ({"protocol": 256}, 400, "SecurityGroupRuleInvalidProtocol", None),
    ({"protocol": "ipv6-icmp"}, 400, "SecurityGroupEthertypeConflictWithProtocol",
     "Invalid ethertype IPv4 for protocol ipv6-icmp."),
    ({"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType",
     "Security group rule for ethertype 'IPv5' not supported. Allowed values are ['IPv4', 'IPv6']."),
    ({"remote_ip_prefix": "2001:db8::/64"}, 400, "SecurityGroupRuleParameterConflict",
     "Conflicting value ethertype IPv4 for CIDR 2001:db8::/64"),
    ({"remote_ip_prefix": "10.0.0.0/33"}, 400, "InvalidCIDR", "Invalid CIDR 10.0.0.0/33 given as IP prefix."),
    ({"direction": "sideways"}, 400, "HTTPBadRequest",
     "Invalid input for direction. Reason: 'sideways' is not in ['ingress', 'egress']."),
    ({"colour": "red"}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'colour'"),
    ({"remote_address_group_id": str(uuid.UUID(int=1))}, 404, "AddressGroupNotFound",
     f"Address group {uuid.UUID(int=1)} could not be found."),
    ({"remote_group_id": str(uuid.UUID(int=7))}, 404, "SecurityGroupNotFound",
     f"Security group {uuid.UUID(int=7)} does not exist"),
])
def test_invalid_rules(member: httpx.Client, attrs: dict, status: int, type_: str, message: str | None):
    group = create_group(member)
    error = fault(rule_post(member, group["id"], **attrs), status, type_)
    if message is not None:
        assert error["message"] == message
    assert len(show_group(member, group["id"])["security_group_rules"]) == 2


def test_rule_requires_group_and_direction(member: httpx.Client):
    group = create_group(member)
    error = fault(member.post(RULES, json={"security_group_rule": {"security_group_id": group["id"]}}),
                  400, "HTTPBadRequest")
    assert error["message"] == "Failed to parse request. Required attribute 'direction' not specified"
    fault(member.post(RULES, json={"security_group_rule": {"direction": "egress"}}), 400, "HTTPBadRequest")
    missing = str(uuid.uuid4())
    error = fault(rule_post(member, missing), 404, "SecurityGroupNotFound")
    assert missing in error["message"]


def test_remote_group_xor_remote_prefix(member: httpx.Client):
    group, peer = create_group(member), create_group(member)
    error = fault(rule_post(member, group["id"], remote_group_id=peer["id"], remote_ip_prefix="10.0.0.0/8"),
                  400, "SecurityGroupRemoteGroupAndRemoteIpPrefix")
    assert error["message"] == "Only remote_ip_prefix or remote_group_id may be provided."
    rule = add_rule(member, group["id"], remote_group_id=peer["id"], protocol="tcp")
    assert (rule["remote_group_id"], rule["remote_ip_prefix"], rule["normalized_cidr"]) == (peer["id"], None, None)


def test_duplicate_rules(member: httpx.Client):
    group = create_group(member)
    first = add_rule(member, group["id"], protocol="tcp", port_range_min=22, port_range_max=22)
    for same in ({"protocol": "tcp"}, {"protocol": "6"}, {"protocol": "TCP", "remote_ip_prefix": "0.0.0.0/0"}):
        error = fault(rule_post(member, group["id"], port_range_min=22, port_range_max=22, **same),
                      409, "SecurityGroupRuleExists")
        assert error["message"] == f"Security group rule already exists. Rule id is {first['id']}."
    # The default egress rules exist already: "egress to anywhere" again is a duplicate.
    error = fault(rule_post(member, group["id"], direction="egress", ethertype="IPv6", remote_ip_prefix="::/0"),
                  409, "SecurityGroupRuleExists")
    egress_v6 = [r["id"] for r in group["security_group_rules"] if r["ethertype"] == "IPv6"]
    assert error["message"].endswith(f"Rule id is {egress_v6[0]}.")
    # Same CIDR network, other host bits: the same rule to a firewall.
    add_rule(member, group["id"], remote_ip_prefix="10.9.0.0/16")
    fault(rule_post(member, group["id"], remote_ip_prefix="10.9.8.7/16"), 409, "SecurityGroupRuleExists")
    assert len(show_group(member, group["id"])["security_group_rules"]) == 4


def test_bulk_rules_all_or_nothing(member: httpx.Client):
    group, other = create_group(member), create_group(member)
    rule = {"security_group_id": group["id"], "direction": "ingress", "protocol": "udp",
            "port_range_min": 53, "port_range_max": 53}
    response = member.post(RULES, json={"security_group_rules": [rule, {**rule, "protocol": "17"}]})
    error = fault(response, 409, "DuplicateSecurityGroupRuleInPost")
    assert error["message"] == "Duplicate Security Group Rule in POST."
    response = member.post(RULES, json={"security_group_rules": [rule, {**rule, "security_group_id": other["id"]}]})
    error = fault(response, 400, "SecurityGroupNotSingleGroupRules")
    assert error["message"] == "Only allowed to update rules for one security profile at a time"
    response = member.post(RULES, json={"security_group_rules": [rule, {**rule, "port_range_max": 52}]})
    fault(response, 400, "SecurityGroupInvalidPortRange")
    assert len(show_group(member, group["id"])["security_group_rules"]) == 2
    response = member.post(RULES, json={"security_group_rules": [rule, {**rule, "protocol": "tcp"}]})
    assert response.status_code == 201, response.text
    created = response.json()["security_group_rules"]
    assert [r["protocol"] for r in created] == ["udp", "tcp"]
    shown = show_group(member, group["id"])
    assert len(shown["security_group_rules"]) == 4 and shown["revision_number"] == group["revision_number"] + 1


def test_rule_filters(member: httpx.Client):
    group = create_group(member)
    ssh = add_rule(member, group["id"], protocol="tcp", port_range_min=22, port_range_max=22)
    dns = add_rule(member, group["id"], protocol="udp", port_range_min=53, port_range_max=53)
    assert {r["id"] for r in rules_of(member, security_group_id=group["id"], direction="ingress")} == {ssh["id"], dns["id"]}
    assert [r["id"] for r in rules_of(member, security_group_id=group["id"], protocol="udp")] == [dns["id"]]
    assert [r["id"] for r in rules_of(member, security_group_id=group["id"], port_range_min=22)] == [ssh["id"]]
    assert len(rules_of(member, security_group_id=group["id"], direction="egress")) == 2


def test_rules_cannot_be_updated(member: httpx.Client):
    group = create_group(member)
    rule = add_rule(member, group["id"], protocol="tcp")
    response = member.put(f"{RULES}/{rule['id']}", json={"security_group_rule": {"description": "x"}})
    fault(response, 405, "HTTPMethodNotAllowed")


def test_deleting_a_group_deletes_rules_that_name_it(member: httpx.Client):
    target, peer = create_group(member), create_group(member)
    rule = add_rule(member, peer["id"], remote_group_id=target["id"], protocol="tcp")
    before = show_group(member, peer["id"])
    assert member.delete(f"{GROUPS}/{target['id']}").status_code == 204
    after = show_group(member, peer["id"])
    assert rule["id"] not in {r["id"] for r in after["security_group_rules"]}
    assert after["revision_number"] == before["revision_number"] + 1
    fault(member.get(f"{RULES}/{rule['id']}"), 404, "SecurityGroupRuleNotFound")


# ---------------------------------------------------------------- the openstack CLI


def test_groups_and_rules_through_the_cli(baryon: BaryonServer):
    group_name = name("cli-sg")
    group = cli(baryon.endpoint, "security", "group", "create", "--description", "web tier", "--tag", "web",
                group_name, "-f", "json")
    assert (group["name"], group["description"], group["tags"], group["stateful"]) == (
        group_name, "web tier", ["web"], True)
    rule = cli(baryon.endpoint, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
               "--description", "ssh", group_name, "-f", "json")
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"], rule["direction"], rule["ether_type"]) == (
        "tcp", 22, 22, "ingress", "IPv4")
    assert (rule["remote_ip_prefix"], rule["security_group_id"], rule["description"]) == (
        "0.0.0.0/0", group["id"], "ssh")
    icmp = cli(baryon.endpoint, "security", "group", "rule", "create", "--protocol", "icmp", "--icmp-type", "8",
               "--icmp-code", "0", "--remote-ip", "198.51.100.0/24", group["id"], "-f", "json")
    assert (icmp["protocol"], icmp["port_range_min"], icmp["port_range_max"], icmp["remote_ip_prefix"]) == (
        "icmp", 8, 0, "198.51.100.0/24")
    v6 = cli(baryon.endpoint, "security", "group", "rule", "create", "--ethertype", "IPv6", "--protocol", "ipv6-icmp",
             "--egress", "--remote-group", group_name, group_name, "-f", "json")
    assert (v6["direction"], v6["ether_type"], v6["remote_group_id"], v6["remote_ip_prefix"]) == (
        "egress", "IPv6", group["id"], None)
    listed = cli(baryon.endpoint, "security", "group", "rule", "list", group_name, "-f", "json")
    assert {r["ID"] for r in listed} >= {rule["id"], icmp["id"], v6["id"]} and len(listed) == 5
    shown = cli(baryon.endpoint, "security", "group", "show", group_name, "-f", "json")
    assert len(shown["rules"]) == 5
    cli(baryon.endpoint, "security", "group", "set", "--name", group_name + "-b", "--description", "", "--stateless",
        group["id"])
    shown = cli(baryon.endpoint, "security", "group", "show", group["id"], "-f", "json")
    assert (shown["name"], shown["description"], shown["stateful"]) == (group_name + "-b", "", False)
    cli(baryon.endpoint, "security", "group", "rule", "delete", rule["id"])
    shown = cli(baryon.endpoint, "security", "group", "rule", "show", icmp["id"], "-f", "json")
    assert shown["id"] == icmp["id"]
    names = [g["Name"] for g in cli(baryon.endpoint, "security", "group", "list", "-f", "json")]
    assert group_name + "-b" in names
    cli(baryon.endpoint, "security", "group", "delete", group["id"])
    names = [g["Name"] for g in cli(baryon.endpoint, "security", "group", "list", "-f", "json")]
    assert group_name + "-b" not in names


# ---------------------------------------------------------------- ports and their groups


def test_ports_take_explicit_groups_and_null_clears_them(member: httpx.Client):
    group, other = create_group(member), create_group(member)
    network = member.post("/networks", json={"network": {"name": "n"}}).json()["network"]
    # As Neutron (``type:uuid_list``): a group listed twice is refused.
    fault(member.post("/ports", json={"port": {"network_id": network["id"],
                                               "security_groups": [group["id"], other["id"], group["id"]]}}),
          400, "HTTPBadRequest")
    response = member.post("/ports", json={"port": {"network_id": network["id"],
                                                    "security_groups": [group["id"], other["id"]]}})
    port = response.json()["port"]
    assert sorted(port["security_groups"]) == sorted([group["id"], other["id"]])
    default = member.post("/ports", json={"port": {"network_id": network["id"], "security_groups": None}})
    assert default.json()["port"]["security_groups"] == [default_group(member)["id"]]
    response = member.put(f"/ports/{port['id']}", json={"port": {"security_groups": None}})
    assert response.status_code == 200 and response.json()["port"]["security_groups"] == []
    # Port security off needs the groups gone first, and refuses new ones.
    response = member.put(f"/ports/{port['id']}", json={"port": {"port_security_enabled": False}})
    assert response.status_code == 200 and response.json()["port"]["port_security_enabled"] is False
    fault(member.put(f"/ports/{port['id']}", json={"port": {"security_groups": [group["id"]]}}),
          400, "PortSecurityAndIPRequiredForSecurityGroups")
    response = member.put(f"/ports/{port['id']}", json={"port": {"port_security_enabled": True,
                                                                  "security_groups": [group["id"]]}})
    assert response.status_code == 200 and response.json()["port"]["security_groups"] == [group["id"]]
    error = fault(member.put(f"/ports/{port['id']}", json={"port": {"port_security_enabled": False}}),
                  409, "PortSecurityPortHasSecurityGroup")
    assert error["message"] == ("Port has security group associated. Cannot disable port security or IP address "
                                "until security group is removed")


def test_port_cli_with_a_named_group(baryon: BaryonServer, admin: httpx.Client):
    group = create_group(admin)
    network = admin.post("/networks", json={"network": {"name": "n"}}).json()["network"]
    port = cli(baryon.endpoint, "port", "create", "--network", network["id"], "--security-group", group["name"],
               name("p"), "-f", "json")
    assert port["security_group_ids"] == [group["id"]]
    cli(baryon.endpoint, "port", "set", "--no-security-group", "--disable-port-security", port["id"])
    shown = cli(baryon.endpoint, "port", "show", port["id"], "-f", "json")
    assert (shown["security_group_ids"], shown["port_security_enabled"]) == ([], False)


# ---------------------------------------------------------------- quotas on groups and rules


def test_group_and_rule_quotas(baryon: BaryonServer, admin: httpx.Client, member: httpx.Client, project: str):
    default_group(member)  # 1 group, 4 rules
    response = admin.put(f"/quotas/{project}", json={"quota": {"security_group": 2, "security_group_rule": 9}})
    assert response.status_code == 200, response.text
    group = create_group(member)  # 2 groups, 6 rules
    error = fault(member.post(GROUPS, json={"security_group": {"name": "third"}}), 409, "OverQuota")
    assert error["message"] == "Quota exceeded for resources: ['security_group']."
    add_rule(member, group["id"], protocol="tcp")  # 7 rules
    response = member.post(RULES, json={"security_group_rules": [
        {"security_group_id": group["id"], "direction": "ingress", "protocol": p} for p in ("udp", "sctp", "gre")]})
    error = fault(response, 409, "OverQuota")
    assert error["message"] == "Quota exceeded for resources: ['security_group_rule']."
    assert len(show_group(member, group["id"])["security_group_rules"]) == 3
    response = member.post(RULES, json={"security_group_rules": [
        {"security_group_id": group["id"], "direction": "ingress", "protocol": p} for p in ("udp", "sctp")]})
    assert response.status_code == 201
    fault(rule_post(member, group["id"], protocol="gre"), 409, "OverQuota")
    # A group comes with two rules: with room for groups but not rules, no group.
    assert admin.put(f"/quotas/{project}", json={"quota": {"security_group": 5}}).status_code == 200
    fault(member.post(GROUPS, json={"security_group": {"name": "x"}}), 409, "OverQuota")
    assert len(groups_of(member)) == 2


# ---------------------------------------------------------------- concurrency and the change log


def test_identical_rules_at_once_one_wins(baryon: BaryonServer, member: httpx.Client, project: str):
    group = create_group(member)
    clients = 8
    barrier = threading.Barrier(clients)

    def post(_: int) -> httpx.Response:
        with http(baryon.endpoint, project) as client:
            client.get("/networks")
            barrier.wait(timeout=30)
            return rule_post(client, group["id"], protocol="tcp", port_range_min=8080, port_range_max=8080)

    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(post, range(clients)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (clients - 1), [r.text for r in responses]
    winner = next(r.json()["security_group_rule"]["id"] for r in responses if r.status_code == 201)
    for response in responses:
        if response.status_code == 409:
            assert fault(response, 409, "SecurityGroupRuleExists")["message"].endswith(f"Rule id is {winner}.")
    shown = show_group(member, group["id"])
    assert [r["id"] for r in shown["security_group_rules"] if r["port_range_min"] == 8080] == [winner]
    assert shown["revision_number"] == group["revision_number"] + 1


def test_change_log_records_groups_and_rules(baryon: BaryonServer, member: httpx.Client):
    group = create_group(member)
    rule = add_rule(member, group["id"], protocol="udp")
    assert member.delete(f"{RULES}/{rule['id']}").status_code == 204
    assert member.delete(f"{GROUPS}/{group['id']}").status_code == 204
    log = change_log(baryon)
    mine = [(rtype, rid, action) for _, rtype, rid, action in log
            if rid == group["id"] or rid == rule["id"] or rid in {r["id"] for r in group["security_group_rules"]}]
    egress = sorted(r["id"] for r in group["security_group_rules"])
    assert mine[0] == ("security_group", group["id"], "create")
    assert sorted(rid for rtype, rid, action in mine[1:3]) == egress
    assert mine[3:] == [
        ("security_group_rule", rule["id"], "create"), ("security_group", group["id"], "update"),
        ("security_group_rule", rule["id"], "delete"), ("security_group", group["id"], "update"),
        *[(rtype, rid, action) for rtype, rid, action in mine[7:9]],
        ("security_group", group["id"], "delete"),
    ]
    assert {(rtype, action) for rtype, _, action in mine[7:9]} == {("security_group_rule", "delete")}


def test_bulk_rules_of_one_project_only(admin: httpx.Client, member: httpx.Client, project: str):
    group = create_group(member)
    rule = {"security_group_id": group["id"], "direction": "egress", "protocol": "tcp"}
    response = admin.post(RULES, json={"security_group_rules": [
        {**rule, "project_id": project}, {**rule, "protocol": "udp", "project_id": uuid.uuid4().hex}]})
    error = fault(response, 400, "SecurityGroupRulesNotSingleTenant")
    assert error["message"] == "Multiple tenant_ids in bulk security group rule create not allowed"
    response = admin.post(RULES, json={"security_group_rules": [{**rule, "project_id": project},
                                                                 {**rule, "protocol": "udp"}]})
    assert response.status_code == 201
    assert {r["project_id"] for r in response.json()["security_group_rules"]} == {project}
