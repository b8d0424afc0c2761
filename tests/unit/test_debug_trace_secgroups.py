"""The security group evaluator of ``baryon debug trace`` (``baryon.debug.secgroups``): which rule of
a port's groups lets a new connection through, as the hybrid firewall's chains decide it."""

from __future__ import annotations

import pytest

from baryon.debug.secgroups import EGRESS, INGRESS, Packet, describe_rule, evaluate

G1, G2, G3 = "11111111-0000-4000-8000-000000000001", "22222222-0000-4000-8000-000000000002", "33333333-0000-4000-8000-000000000003"
VM, PEER = "10.0.0.5", "10.0.0.7"


def rule(rid: str, direction: str = INGRESS, group: str = G1, **fields: object) -> dict:
    return {"id": rid, "security_group_id": group, "direction": direction, "ethertype": "IPv4", "protocol": None,
            "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None,
            **fields}


def inbound(protocol: str = "icmp", dport: int | None = None, src: str = PEER, **kw: object) -> Packet:
    return Packet(src, VM, protocol, dport, **kw)


def allowed_by(rules: list[dict], packet: Packet, direction: str = INGRESS, members: dict | None = None) -> str | None:
    decision = evaluate(rules, direction, packet, members or {})
    return decision.rule["id"] if decision.allowed else None


@pytest.mark.parametrize(("fields", "packet", "expected"), [
    ({"protocol": "icmp"}, inbound("icmp"), True),
    ({"protocol": "icmp"}, inbound("tcp", 22), False),
    ({"protocol": "1"}, inbound("icmp"), True),  # by number
    ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, inbound("tcp", 22), True),
    ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, inbound("tcp", 23), False),
    ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}, inbound("udp", 22), False),
    ({"protocol": "6", "port_range_min": 8000, "port_range_max": 8080}, inbound("tcp", 8080), True),
    ({"protocol": "tcp", "port_range_min": 8000, "port_range_max": 8080}, inbound("tcp", 8081), False),
    ({"protocol": "tcp", "port_range_min": 8000, "port_range_max": 8080}, inbound("tcp", 7999), False),
    ({"protocol": "tcp"}, inbound("tcp", 1), True),  # no range: every port
    ({"protocol": "udp", "port_range_min": 53, "port_range_max": None}, inbound("udp", 53), True),
    ({"protocol": None}, inbound("udp", 9), True),  # any protocol
    ({"protocol": "any"}, inbound("icmp"), True),
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0}, inbound("icmp"), True),  # echo request
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": None}, inbound("icmp"), True),
    ({"protocol": "icmp", "port_range_min": 0, "port_range_max": None}, inbound("icmp"), False),  # echo reply only
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 3}, inbound("icmp"), False),
    ({"protocol": "icmp", "port_range_min": 255}, inbound("icmp"), True),  # "any" type
    ({"protocol": "icmp", "port_range_min": 3}, inbound("icmp", icmp_type=3, icmp_code=1), True),
    ({"protocol": "tcp", "remote_ip_prefix": "10.0.0.0/24"}, inbound("tcp", 22), True),
    ({"protocol": "tcp", "remote_ip_prefix": "10.0.0.7"}, inbound("tcp", 22), True),  # a host
    ({"protocol": "tcp", "remote_ip_prefix": "10.0.1.0/24"}, inbound("tcp", 22), False),
    ({"protocol": "tcp", "remote_ip_prefix": "0.0.0.0/0"}, inbound("tcp", 22, src="198.51.100.1"), True),
    ({"protocol": "tcp", "remote_ip_prefix": "::/0"}, inbound("tcp", 22), False),  # other family: never written
    ({"ethertype": "IPv6", "protocol": "tcp"}, inbound("tcp", 22), False),
    ({"protocol": "tcp", "direction": EGRESS}, inbound("tcp", 22), False),  # the other direction
    ({"protocol": "bogus"}, inbound("tcp", 22), False),  # inexpressible: the agent writes nothing
    ({"protocol": "tcp", "port_range_min": 70000}, inbound("tcp", 22), False),
])
def test_one_rule_shapes(fields: dict, packet: Packet, expected: bool) -> None:
    assert (allowed_by([rule("r1", **fields)], packet) == "r1") is expected


def test_ipv6() -> None:
    packet = Packet("2001:db8::7", "2001:db8::5", "icmp")
    assert allowed_by([rule("v4", protocol="icmp")], packet) is None
    assert allowed_by([rule("v6", ethertype="IPv6", protocol="icmp")], packet) == "v6"  # legacy spelling
    assert allowed_by([rule("v6", ethertype="IPv6", protocol="ipv6-icmp", port_range_min=128)],
                      Packet("2001:db8::7", "2001:db8::5", "ipv6-icmp", icmp_type=128)) == "v6"


def test_remote_groups_match_their_members_addresses_and_pairs() -> None:
    rules = [rule("rg", protocol="tcp", remote_group_id=G2)]
    assert allowed_by(rules, inbound("tcp", 22), members={G2: [PEER]}) == "rg"
    assert allowed_by(rules, inbound("tcp", 22), members={G2: ["10.0.0.8"]}) is None
    assert allowed_by(rules, inbound("tcp", 22), members={}) is None  # an empty group matches nothing
    assert allowed_by(rules, inbound("tcp", 22), members={G2: ["10.0.0.0/28"]}) == "rg"  # an address pair CIDR
    assert allowed_by(rules, inbound("tcp", 22), members={G2: ["2001:db8::7", "junk"]}) is None
    # remote_group_id wins over remote_ip_prefix (as the agent writes it)
    both = [rule("rg", protocol="tcp", remote_group_id=G2, remote_ip_prefix="0.0.0.0/0")]
    assert allowed_by(both, inbound("tcp", 22), members={G2: []}) is None


def test_egress_looks_at_the_destination() -> None:
    rules = [rule("e", direction=EGRESS, protocol="tcp", port_range_min=443, port_range_max=443,
                  remote_ip_prefix="203.0.113.0/24")]
    assert allowed_by(rules, Packet(VM, "203.0.113.1", "tcp", 443), EGRESS) == "e"
    assert allowed_by(rules, Packet(VM, "198.51.100.1", "tcp", 443), EGRESS) is None
    default = [rule("any", direction=EGRESS)]
    assert allowed_by(default, Packet(VM, "8.8.8.8", "udp", 53), EGRESS) == "any"


def test_the_first_rule_in_the_agents_order_decides_and_is_named() -> None:
    rules = [rule("b", group=G2, protocol="tcp"), rule("z", protocol="tcp", port_range_min=22, port_range_max=22),
             rule("a", group=G2, protocol=None)]
    decision = evaluate(rules, INGRESS, inbound("tcp", 22), {})
    assert decision.allowed and decision.rule["id"] == "z"  # G1 < G2
    assert decision.iptables == "-p tcp -m tcp --dport 22 -j RETURN"
    assert decision.groups == (G1, G2)
    assert decision.reason == f"ingress rule z of group {G1} allows tcp/22 from {PEER}"


def test_a_refusal_names_the_groups_the_protocol_and_the_remote() -> None:
    rules = [rule("i", protocol="icmp"), rule("s", group=G2, protocol="tcp", port_range_min=22, port_range_max=22)]
    decision = evaluate(rules, INGRESS, inbound("tcp", 8080), {}, groups=[G3])
    assert not decision.allowed and decision.rule is None and decision.iptables is None
    assert decision.reason == f"no ingress rule of groups {G1}, {G2}, {G3} allows tcp/8080 from {PEER}"
    none = evaluate([], EGRESS, Packet(VM, PEER, "udp", 53), {}, groups=[G1])
    assert none.reason == f"no egress rule of group {G1} allows udp/53 to {PEER}"
    assert evaluate([], INGRESS, inbound(), {}).reason == f"no ingress rule of groups (none) allows icmp from {PEER}"


def test_iptables_text_is_the_agents() -> None:
    cases = {
        "-p icmp -j RETURN": {"protocol": "icmp"},
        "-s 10.0.0.0/24 -p tcp -m tcp --dport 22 -j RETURN": {"protocol": "tcp", "port_range_min": 22,
                                                             "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/24"},
        "-p udp -m udp -m multiport --dports 1000:2000 -j RETURN": {"protocol": "udp", "port_range_min": 1000,
                                                             "port_range_max": 2000},
        "-j RETURN": {},
    }
    for text, fields in cases.items():
        packet = inbound("udp", 1500, src="10.0.0.7") if fields.get("protocol") == "udp" else inbound(
            fields.get("protocol") or "icmp", 22)
        assert evaluate([rule("r", **fields)], INGRESS, packet, {}).iptables == text


def test_describe() -> None:
    assert describe_rule(rule("r", protocol="tcp", port_range_min=22, port_range_max=22,
                              remote_ip_prefix="0.0.0.0/0")) == "ingress IPv4 tcp 22:22 from 0.0.0.0/0"
    assert describe_rule(rule("r", direction=EGRESS)) == "egress IPv4 any to any"
    assert describe_rule(rule("r", protocol="icmp", port_range_min=8, port_range_max=0)) == \
        "ingress IPv4 icmp type 8 code 0 from any"
    assert describe_rule(rule("r", remote_group_id=G2)) == f"ingress IPv4 any from group {G2}"
    assert inbound("icmp", icmp_type=3).describe() == "icmp type 3"
    assert inbound("47").describe() == "gre"


def test_a_remote_address_group_admits_its_cidrs_only() -> None:
    ag = "44444444-0000-4000-8000-000000000004"
    rules = [rule("r1", protocol="tcp", remote_address_group_id=ag)]
    members = {ag: ["10.0.0.0/29", "2001:db8::/64"]}
    assert allowed_by(rules, inbound("tcp", 22), members=members) == "r1"  # 10.0.0.7 is in 10.0.0.0/29
    assert allowed_by(rules, inbound("tcp", 22, src="10.0.0.9"), members=members) is None
    assert allowed_by(rules, inbound("tcp", 22), members={ag: []}) is None  # an empty group admits nobody
    assert describe_rule(rules[0]) == f"ingress IPv4 tcp from address group {ag}"
