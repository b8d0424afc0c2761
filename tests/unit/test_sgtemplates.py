"""The default security group rules template, pure: validation, duplicates per kind of group, and
the rules a new group gets from it (``baryon.service.sgtemplates``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import baryon

from baryon.service import errors, sgtemplates

GROUP = "6a0c3b5e-2f0e-4f4e-9a43-0f7a5d1c2b11"
OTHER = "0b1d0f4e-7c55-4f2a-8d1e-5a3c9e2f7b20"


def rule(**attrs) -> dict:
    return sgtemplates.validate({"direction": "ingress", **attrs})


def test_validate_fills_neutrons_defaults_and_canonical_spellings():
    assert rule() == {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
                      "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None,
                      "remote_address_group_id": None, "description": "", "used_in_default_sg": True, "used_in_non_default_sg": False}
    assert rule(ethertype="IPv6", protocol="icmp")["protocol"] == "ipv6-icmp"


@pytest.mark.parametrize("attrs, error", [
    ({"protocol": None, "port_range_min": 22, "port_range_max": 22}, errors.SecurityGroupProtocolRequiredWithPorts),
    ({"protocol": "tcp", "port_range_min": 30, "port_range_max": 20}, errors.SecurityGroupInvalidPortRange),
    ({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "PARENT"},
     errors.SecurityGroupRemoteGroupAndRemoteIpPrefix),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}, errors.SecurityGroupRuleParameterConflict),
])
def test_validate_refuses_what_a_rule_refuses(attrs, error):
    with pytest.raises(error):
        rule(**attrs)


@pytest.mark.parametrize("value", ["parent", "not-a-uuid", 5, ""])
def test_remote_group_is_parent_or_a_uuid(value):
    assert sgtemplates.convert_remote_group("PARENT") == "PARENT"
    assert sgtemplates.convert_remote_group(GROUP) == GROUP
    with pytest.raises(errors.InvalidInput):
        sgtemplates.convert_remote_group(value)


def test_same_rule_is_a_duplicate_only_for_the_same_kind_of_group():
    tcp = {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80}
    both = rule(**tcp, used_in_default_sg=True, used_in_non_default_sg=True)
    only_default = rule(**tcp, used_in_default_sg=True, used_in_non_default_sg=False)
    only_other = rule(**tcp, used_in_default_sg=False, used_in_non_default_sg=True)
    sgtemplates.check_duplicates([only_other], [("t1", only_default)])  # one for each kind: fine
    for new in (only_default, only_other):
        with pytest.raises(errors.DefaultSecurityGroupRuleExists) as exc:
            sgtemplates.check_duplicates([new], [("t1", both)])
        assert "t1" in str(exc.value)
    # the same rule however spelt: protocol 6 is tcp, 0.0.0.0/0 is no prefix
    spelt = rule(protocol="6", port_range_min=80, port_range_max=80, remote_ip_prefix="0.0.0.0/0")
    with pytest.raises(errors.DefaultSecurityGroupRuleExists):
        sgtemplates.check_duplicates([spelt], [("t1", only_default)])
    with pytest.raises(errors.DuplicateDefaultSgRuleInPost):
        sgtemplates.check_duplicates([both, only_default], [])
    sgtemplates.check_duplicates([rule(**tcp, used_in_default_sg=False)], [("t1", rule(**tcp))])


def test_key_of_the_legacy_rules_is_what_the_migration_stores():
    path = next(Path(baryon.__file__).parent.glob("db/migrations/versions/*_default_sg_rules_*.py"))
    spec = importlib.util.spec_from_file_location("legacy_rules_migration", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    stored = migration._legacy_rules()
    assert len(stored) == 4
    for row in stored:
        fields = {k: row[k] for k in sgtemplates.RULE_FIELDS}
        template = rule(**fields, used_in_default_sg=row["used_in_default_sg"],
                        used_in_non_default_sg=row["used_in_non_default_sg"])
        assert sgtemplates.keys(template) == (row["default_key"], row["non_default_key"])
    assert sgtemplates.key(rule(direction="egress", ethertype="IPv6")) == "egress|IPv6||||||"
    assert sgtemplates.keys(rule(used_in_default_sg=False)) == (None, None)


def test_rules_for_a_group_take_parent_and_skip_missing_remote_groups():
    templates = [
        {**rule(remote_group_id="PARENT"), "id": "a"},
        {**rule(direction="egress", used_in_non_default_sg=True), "id": "b"},
        {**rule(remote_group_id=OTHER, used_in_non_default_sg=True), "id": "c"},
        {**rule(protocol="tcp", used_in_default_sg=False, used_in_non_default_sg=True), "id": "d"},
    ]
    default = sgtemplates.rules_for(templates, GROUP, default=True)
    assert [(r["direction"], r["remote_group_id"]) for r in default] == [("ingress", GROUP), ("egress", None)]
    other = sgtemplates.rules_for(templates, GROUP, default=False, existing_groups=frozenset({OTHER}))
    assert [(r["direction"], r["remote_group_id"], r["protocol"]) for r in other] == [
        ("egress", None, None), ("ingress", OTHER, None), ("ingress", None, "tcp")]
    assert len(sgtemplates.rules_for(templates, GROUP, default=False)) == 2  # OTHER is gone: left out
    assert set(default[0]) == set(sgtemplates.RULE_FIELDS)
