"""baryon.service.sgrules: protocol, port, ethertype and prefix conversion; rule validation in
Neutron's order; when two rules are the same rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baryon.service import errors, sgrules


def rule(**attrs) -> dict:
    return {"direction": "ingress", "security_group_id": "g", **attrs}


def rejected(exc_type: type[errors.NeutronError], **attrs) -> errors.NeutronError:
    with pytest.raises(exc_type) as caught:
        sgrules.validate(rule(**attrs))
    return caught.value


# ---------------------------------------------------------------- protocol


@pytest.mark.parametrize(("raw", "expected"), [
    ("tcp", "tcp"), ("TCP", "tcp"), ("Udp", "udp"), ("icmp", "icmp"), ("icmpv6", "icmpv6"),
    ("ipv6-icmp", "ipv6-icmp"), ("sctp", "sctp"), ("udplite", "udplite"), ("dccp", "dccp"), ("gre", "gre"),
    ("vrrp", "vrrp"), ("ip", "ip"), ("hopopt", "hopopt"),
    (0, "0"), (6, "6"), (255, "255"), ("0", "0"), ("17", "17"), ("255", "255"), ("006", "6"), (None, None),
])
def test_protocol_names_and_numbers(raw, expected):
    assert sgrules.convert_protocol(raw) == expected


@pytest.mark.parametrize("raw", [256, -1, "256", "-1", "tcpx", "", " ", "any", True, False, 6.5, [], {}, "６"])
def test_unknown_protocols_are_refused(raw):
    with pytest.raises(errors.SecurityGroupRuleInvalidProtocol) as caught:
        sgrules.convert_protocol(raw)
    assert caught.value.status == 400
    message = str(caught.value)
    assert message.startswith(f"Security group rule protocol {raw} not supported. Only protocol values [None, 'ah',")
    assert message.endswith("and integer representations [0 to 255] are supported.")


def test_every_protocol_name_has_its_number():
    assert len(sgrules.PROTOCOLS) == 25
    assert sgrules.PROTOCOLS["tcp"] == 6 and sgrules.PROTOCOLS["icmpv6"] == sgrules.PROTOCOLS["ipv6-icmp"] == 58
    for name, number in sgrules.PROTOCOLS.items():
        assert sgrules.protocol_number(name) == number
        assert sgrules.protocol_number(sgrules.convert_protocol(str(number))) == number


# ---------------------------------------------------------------- ports


@pytest.mark.parametrize(("raw", "expected"), [(0, 0), (1, 1), (65535, 65535), ("22", 22), (80.0, 80), (None, None)])
def test_port_values(raw, expected):
    assert sgrules.convert_port(raw) == expected


@pytest.mark.parametrize("raw", [-1, 65536, "65536", "x", "", True, 1.5, [], "2 2"])
def test_bad_port_values(raw):
    with pytest.raises(errors.SecurityGroupInvalidPortValue) as caught:
        sgrules.convert_port(raw)
    assert str(caught.value) == f"Invalid value for port {raw}"


# ---------------------------------------------------------------- ethertype


@pytest.mark.parametrize(("raw", "expected"), [("IPv4", "IPv4"), ("ipv4", "IPv4"), ("IPV6", "IPv6"), ("ipV6", "IPv6")])
def test_ethertype_any_case(raw, expected):
    assert sgrules.convert_ethertype(raw) == expected


@pytest.mark.parametrize("raw", ["IPv5", "", "4", 4, None, "IPv4 "])
def test_bad_ethertype(raw):
    with pytest.raises(errors.SecurityGroupRuleInvalidEtherType) as caught:
        sgrules.convert_ethertype(raw)
    assert str(caught.value) == (f"Security group rule for ethertype '{raw}' not supported. "
                                 "Allowed values are ['IPv4', 'IPv6'].")


# ---------------------------------------------------------------- remote_ip_prefix


@pytest.mark.parametrize(("raw", "stored", "normalized"), [
    ("10.0.0.1", "10.0.0.1/32", "10.0.0.1/32"),
    ("10.0.0.0/24", "10.0.0.0/24", "10.0.0.0/24"),
    ("10.0.0.5/24", "10.0.0.5/24", "10.0.0.0/24"),
    ("0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0"),
    ("192.168.7.9/0", "192.168.7.9/0", "0.0.0.0/0"),
    ("2001:DB8::1/64", "2001:db8::1/64", "2001:db8::/64"),
    ("2001:db8:0:0::/48", "2001:db8::/48", "2001:db8::/48"),
    ("::", "::/128", "::/128"),
    ("::/0", "::/0", "::/0"),
])
def test_prefixes_get_a_length_and_a_normal_form(raw, stored, normalized):
    assert sgrules.convert_prefix(raw) == stored
    assert sgrules.normalized_cidr(stored) == normalized


@pytest.mark.parametrize("raw", ["10.0.0.0/33", "10.0.0", "abc", "fe80::1%eth0", " 10.0.0.1", "10.0.0.1/", "::/129",
                                 10, ["10.0.0.0/8"]])
def test_bad_prefixes(raw):
    with pytest.raises(errors.InvalidCIDR) as caught:
        sgrules.convert_prefix(raw)
    assert str(caught.value) == f"Invalid CIDR {raw} given as IP prefix."


def test_no_prefix():
    assert sgrules.convert_prefix(None) is None and sgrules.convert_prefix("") is None
    assert sgrules.normalized_cidr(None) is None


# ---------------------------------------------------------------- validate: defaults and ports


def test_defaults():
    assert sgrules.validate(rule()) == {
        "direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
        "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None, "remote_address_group_id": None,
        "security_group_id": "g",
    }


@pytest.mark.parametrize("protocol", ["tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"])
def test_port_protocols_take_a_range(protocol):
    assert sgrules.validate(rule(protocol=protocol, port_range_min=22, port_range_max=22))["port_range_max"] == 22
    assert sgrules.validate(rule(protocol=protocol, port_range_min=1, port_range_max=65535))["port_range_min"] == 1
    rejected(errors.SecurityGroupInvalidPortRange, protocol=protocol, port_range_min=100, port_range_max=99)
    rejected(errors.SecurityGroupInvalidPortRange, protocol=protocol, port_range_min=100)
    rejected(errors.SecurityGroupInvalidPortRange, protocol=protocol, port_range_max=100)
    error = rejected(errors.SecurityGroupInvalidPortValue, protocol=protocol, port_range_min=0, port_range_max=10)
    assert str(error) == "Invalid value for port 0"
    rejected(errors.SecurityGroupInvalidPortValue, protocol=protocol, port_range_min=10, port_range_max=0)


@given(st.integers(1, 65535), st.integers(1, 65535))
def test_any_tcp_range_with_min_at_most_max_is_valid(low, high):
    attrs = rule(protocol="tcp", port_range_min=low, port_range_max=high)
    if low <= high:
        assert sgrules.validate(attrs)["port_range_min"] == low
    else:
        with pytest.raises(errors.SecurityGroupInvalidPortRange):
            sgrules.validate(attrs)


def test_range_message():
    error = rejected(errors.SecurityGroupInvalidPortRange, protocol="udp", port_range_min=9, port_range_max=8)
    assert str(error) == "For TCP/UDP protocols, port_range_min must be <= port_range_max"


def test_ports_need_a_protocol():
    error = rejected(errors.SecurityGroupProtocolRequiredWithPorts, port_range_min=22, port_range_max=22)
    assert str(error) == "Must also specify protocol if port range is given."
    rejected(errors.SecurityGroupProtocolRequiredWithPorts, port_range_max=22)


@pytest.mark.parametrize(("protocol", "number"), [("gre", 47), ("47", 47), ("esp", 50), ("vrrp", 112), ("0", 0),
                                                  ("ip", 0), ("200", 200)])
def test_other_protocols_take_no_ports(protocol, number):
    error = rejected(errors.SecurityGroupInvalidProtocolForPort, protocol=protocol, port_range_min=1, port_range_max=2)
    assert str(error) == (f"Ports cannot be specified for protocol {number}. "
                          "Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.")
    assert sgrules.validate(rule(protocol=protocol))["protocol"] == protocol


# ---------------------------------------------------------------- validate: ICMP


@pytest.mark.parametrize(("ethertype", "protocol"), [("IPv4", "icmp"), ("IPv4", "1"), ("IPv6", "ipv6-icmp"),
                                                     ("IPv6", "58"), ("IPv6", "icmp"), ("IPv6", "icmpv6")])
def test_icmp_type_and_code(ethertype, protocol):
    base = {"ethertype": ethertype, "protocol": protocol}
    assert sgrules.validate(rule(**base, port_range_min=8, port_range_max=0))["port_range_min"] == 8
    assert sgrules.validate(rule(**base, port_range_min=0, port_range_max=255))["port_range_max"] == 255
    assert sgrules.validate(rule(**base, port_range_min=255))["port_range_max"] is None
    error = rejected(errors.SecurityGroupInvalidIcmpValue, **base, port_range_min=256, port_range_max=0)
    assert str(error) == "Invalid value for ICMP type (port_range_min) 256. It must be 0 to 255."
    error = rejected(errors.SecurityGroupInvalidIcmpValue, **base, port_range_min=3, port_range_max=300)
    assert str(error) == "Invalid value for ICMP code (port_range_max) 300. It must be 0 to 255."
    error = rejected(errors.SecurityGroupMissingIcmpType, **base, port_range_max=4)
    assert str(error) == "ICMP code (port-range-max) 4 is provided but ICMP type (port-range-min) is missing."


@pytest.mark.parametrize(("protocol", "stored"), [("icmp", "ipv6-icmp"), ("icmpv6", "ipv6-icmp"), ("1", "58"),
                                                  ("ipv6-icmp", "ipv6-icmp"), ("58", "58"), ("tcp", "tcp")])
def test_ipv6_icmp_is_stored_canonically(protocol, stored):
    assert sgrules.validate(rule(ethertype="IPv6", protocol=protocol))["protocol"] == stored


@pytest.mark.parametrize("protocol", ["icmp", "1", "tcp"])
def test_ipv4_icmp_is_kept(protocol):
    assert sgrules.validate(rule(ethertype="IPv4", protocol=protocol))["protocol"] == protocol


@pytest.mark.parametrize("protocol", ["ipv6-icmp", "icmpv6", "ipv6-encap", "ipv6-frag", "ipv6-nonxt", "ipv6-opts",
                                      "ipv6-route", "58", "41", "43", "44", "59", "60"])
def test_ipv6_only_protocols_refuse_ipv4(protocol):
    error = rejected(errors.SecurityGroupEthertypeConflictWithProtocol, ethertype="IPv4", protocol=protocol)
    assert str(error) == f"Invalid ethertype IPv4 for protocol {protocol}."
    assert sgrules.validate(rule(ethertype="IPv6", protocol=protocol))


# ---------------------------------------------------------------- validate: remote


@pytest.mark.parametrize(("ethertype", "prefix"), [("IPv4", "2001:db8::/64"), ("IPv6", "10.0.0.0/8"),
                                                   ("IPv4", "::/0"), ("IPv6", "0.0.0.0/0")])
def test_prefix_must_match_ethertype(ethertype, prefix):
    error = rejected(errors.SecurityGroupRuleParameterConflict, ethertype=ethertype, remote_ip_prefix=prefix)
    assert str(error) == f"Conflicting value ethertype {ethertype} for CIDR {prefix}"


def test_remote_group_or_prefix_not_both():
    error = rejected(errors.SecurityGroupRemoteGroupAndRemoteIpPrefix, remote_ip_prefix="10.0.0.0/8",
                     remote_group_id="other")
    assert str(error) == "Only remote_ip_prefix or remote_group_id may be provided."
    assert sgrules.validate(rule(remote_group_id="other"))["remote_group_id"] == "other"


@pytest.mark.parametrize("other", [{"remote_ip_prefix": "10.0.0.0/8"}, {"remote_group_id": "other"},
                                   {"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "other"}])
def test_remote_address_group_excludes_the_other_remotes(other):
    if len(other) == 2:  # Neutron checks the prefix and the group first
        rejected(errors.SecurityGroupRemoteGroupAndRemoteIpPrefix, remote_address_group_id="ag", **other)
        return
    error = rejected(errors.SecurityGroupMultipleRemoteEntites, remote_address_group_id="ag", **other)
    assert error.status == 400
    assert str(error) == "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided."
    assert sgrules.validate(rule(remote_address_group_id="ag"))["remote_address_group_id"] == "ag"


def test_ports_are_checked_before_prefixes():
    # Neutron's order: ICMP canonical form, ports, prefix, ethertype/protocol, remote.
    rejected(errors.SecurityGroupInvalidPortRange, protocol="tcp", port_range_min=5, port_range_max=4,
             remote_ip_prefix="::/0")


# ---------------------------------------------------------------- key: the same rule


def same(a: dict, b: dict) -> bool:
    return sgrules.key(sgrules.validate(rule(**a))) == sgrules.key(sgrules.validate(rule(**b)))


@pytest.mark.parametrize(("a", "b"), [
    ({"protocol": "tcp"}, {"protocol": "6"}),
    ({"protocol": "udp", "port_range_min": 53, "port_range_max": 53},
     {"protocol": "17", "port_range_min": 53, "port_range_max": 53}),
    ({"ethertype": "IPv6", "protocol": "icmp"}, {"ethertype": "IPv6", "protocol": "ipv6-icmp"}),
    ({"ethertype": "IPv6", "protocol": "icmpv6"}, {"ethertype": "IPv6", "protocol": "58"}),
    ({"ethertype": "IPv6", "protocol": "1"}, {"ethertype": "IPv6", "protocol": "58"}),
    ({}, {"remote_ip_prefix": "0.0.0.0/0"}),
    ({"ethertype": "IPv6"}, {"ethertype": "IPv6", "remote_ip_prefix": "::/0"}),
    ({"remote_ip_prefix": "10.0.0.5/24"}, {"remote_ip_prefix": "10.0.0.0/24"}),
    ({"remote_ip_prefix": "10.1.2.3/32"}, {"remote_ip_prefix": "10.1.2.3/32"}),
])
def test_same_rule(a, b):
    assert same(a, b)


@pytest.mark.parametrize(("a", "b"), [
    ({}, {"direction": "egress"}),
    ({}, {"ethertype": "IPv6"}),
    ({}, {"protocol": "tcp"}),
    ({"protocol": "0"}, {}),
    ({"protocol": "icmp"}, {"protocol": "icmp", "port_range_min": 8}),
    ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
     {"protocol": "tcp", "port_range_min": 22, "port_range_max": 23}),
    ({"remote_ip_prefix": "10.0.0.0/24"}, {"remote_ip_prefix": "10.0.0.0/25"}),
    ({}, {"remote_group_id": "x"}),
    ({"remote_ip_prefix": "10.0.0.0/8"}, {"remote_group_id": "x"}),
    ({}, {"remote_address_group_id": "x"}),
    ({"remote_address_group_id": "x"}, {"remote_address_group_id": "y"}),
    ({"remote_group_id": "x"}, {"remote_address_group_id": "x"}),
])
def test_different_rules(a, b):
    assert not same(a, b)


def test_rules_of_different_groups_differ():
    assert sgrules.key(sgrules.validate(rule())) != sgrules.key(sgrules.validate({**rule(), "security_group_id": "h"}))
