"""The hybrid iptables firewall's pure planner: for a host view and conntrack zones, the exact
chains, hooks and sets (as iptables-save / ipset save print them back), and the conntrack
entries a change no longer allows.

The expected text is written out here, not rebuilt from the module's constants, so that a drift
from Neutron's layout or from iptables-save's print form shows. That the rendered rules are
accepted by iptables-restore and printed back identically was checked on real netfilter in a
throwaway namespace (see the planner's report); ``test_the_driver_accepts_the_ruleset`` keeps
the contract with ``baryon.agent.drivers.netfilter``.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baryon.agent.drivers import netfilter
from baryon.agent.plan.firewall import Rendering, conntrack_deletes, device_name, port_chain, render, render_from
from baryon.agent.plan.firewall_rules import link_local, set_members, set_name
from baryon.model.firewall import MAX_CHAIN_LEN, MAX_SET_LEN, ConntrackDelete, Ruleset
from baryon.model.host import AddressGroup, AddressPair, GroupMembers, HostView, Port, Rule, SecurityGroup

NET = "aaaaaaaa-0000-4000-8000-00000000000a"
NET_UNWIRED = "bbbbbbbb-0000-4000-8000-00000000000b"
ZONE = 7
ZONES = {NET: ZONE}

DEFAULT = "d0000000-0000-4000-8000-0000000000d1"  # the project's default group
WEB = "e0000000-0000-4000-8000-0000000000e2"
OTHER = "f0000000-0000-4000-8000-0000000000f3"
SET4, SET6 = "NIPv4d0000000-0000-4000-8000-", "NIPv6d0000000-0000-4000-8000-"

VM1 = "a1000000-0000-4000-8000-000000000001"
VM2 = "a2000000-0000-4000-8000-000000000002"
MAC1, MAC2 = "fa:16:3e:00:00:a1", "fa:16:3e:00:00:a2"
IP1, IP1_V6, IP2 = "10.0.0.11", "fd00::11", "10.0.0.12"
I1, O1, S1 = "neutron-openvswi-ia1000000-0", "neutron-openvswi-oa1000000-0", "neutron-openvswi-sa1000000-0"
TAP1, QVB1 = "tapa1000000-00", "qvba1000000-00"


def rule(rule_id: str, direction: str, ethertype: str = "IPv4", protocol: str | None = None, low: int | None = None,
         high: int | None = None, prefix: str | None = None, group: str | None = None) -> Rule:
    return Rule(rule_id, direction, ethertype, protocol, low, high, prefix, group)


DEFAULT_GROUP = SecurityGroup(DEFAULT, (
    rule("r1", "ingress", "IPv4", group=DEFAULT), rule("r2", "ingress", "IPv6", group=DEFAULT),
    rule("r3", "egress", "IPv4"), rule("r4", "egress", "IPv6"),
))


def vm(port_id: str = VM1, ips: tuple[str, ...] = (IP1, IP1_V6), groups: tuple[str, ...] = (DEFAULT,), *,
       mac: str = MAC1, security: bool = True, owner: str = "compute:nova", pairs: tuple[AddressPair, ...] = (),
       network: str = NET) -> Port:
    return Port(port_id, network, mac, ips, owner, True, security, groups, pairs)


def view(*ports: Port, groups: tuple[SecurityGroup, ...] = (DEFAULT_GROUP,),
         members: dict[str, tuple[str, ...]] | None = None) -> HostView:
    members = {DEFAULT: (IP1, IP2, IP1_V6)} if members is None else members
    return HostView("compute1", ports=ports, security_groups=groups,
                    group_members=tuple(GroupMembers(g, tuple(sorted(a))) for g, a in sorted(members.items())))


def chain(rs: Ruleset, family: str, name: str, table: str = "filter") -> tuple[str, ...]:
    return rs.chains[(family, table)][name]


# What every filtered port's chains hold, verbatim.
EST = ('-m state --state RELATED,ESTABLISHED -m comment --comment "Direct packets associated with a known session '
       'to the RETURN chain." -j RETURN')
INVALID = ('-m state --state INVALID -m comment --comment "Drop packets that appear related to an existing '
           'connection (e.g. TCP ACK/FIN) but do not have an entry in conntrack." -j DROP')
FALLBACK = '-m comment --comment "Send unmatched traffic to the fallback chain." -j neutron-openvswi-sg-fallback'
ICMP6_IN = tuple(f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in (130, 135, 136))
DHCP4_IN = ("-d 10.0.0.11/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
            "-d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN")
DHCP6_IN = ("-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j RETURN",
            "-d fd00::11/128 -p udp -m udp --sport 547 --dport 546 -j RETURN",
            "-d fe80::/64 -p udp -m udp --sport 547 --dport 546 -j RETURN")
DHCP_CLIENT = '-m comment --comment "Allow DHCP client traffic." -j RETURN'
EGRESS4_HEAD = (
    f"-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 {DHCP_CLIENT}",
    f"-j {S1}",
    f"-p udp -m udp --sport 68 --dport 67 {DHCP_CLIENT}",
    '-p udp -m udp --sport 67 --dport 68 -m comment --comment "Prevent DHCP Spoofing by VM." -j DROP',
    EST,
)
ICMP6_ALLOW = '-m comment --comment "Allow IPv6 ICMP traffic." -j RETURN'
EGRESS6_HEAD = (
    *(f"-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type {t} {ICMP6_ALLOW}" for t in (131, 135, 143)),
    f"-j {S1}",
    '-p ipv6-icmp -m icmp6 --icmpv6-type 134 -m comment --comment "Drop IPv6 Router Advts from VM Instance." -j DROP',
    f"-p ipv6-icmp {ICMP6_ALLOW}",
    f"-p udp -m udp --sport 546 --dport 547 {DHCP_CLIENT}",
    '-p udp -m udp --sport 547 --dport 546 -m comment --comment "Prevent DHCP Spoofing by VM." -j DROP',
    EST,
)
PAIR = '-m comment --comment "Allow traffic from defined IP/MAC pairs." -j RETURN'
PAIR_DROP = '-m comment --comment "Drop traffic without an IP/MAC allow rule." -j DROP'
VM_TO_SG = '-m comment --comment "Direct traffic from the VM interface to the security group chain."'


def group_rules(rs: Ruleset, family: str, direction: str, port_id: str = VM1) -> tuple[str, ...]:
    """The rules a port's groups put in its chain: between RELATED,ESTABLISHED and INVALID,
    without the per-port DHCP/RA allowances of the ingress chain."""
    rules = chain(rs, family, port_chain(port_id, "i" if direction == "ingress" else "o"))
    body = rules[rules.index(EST) + 1:rules.index(INVALID)]
    provider = {*DHCP4_IN, *DHCP6_IN, "-d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
                "-d fe80::/64 -p udp -m udp --sport 547 --dport 546 -j RETURN"}
    return tuple(r for r in body if r not in provider)


def one_rule(*rules: Rule, ips: tuple[str, ...] = (IP1, IP1_V6)) -> Ruleset:
    return render(view(vm(ips=ips, groups=(WEB,)), groups=(SecurityGroup(WEB, rules),)), ZONES)


# ---------------------------------------------------------------- layout


def test_an_empty_node_has_neutrons_wrapped_chains_and_hooks() -> None:
    rs = render(view(), ZONES)
    filter_chains = {
        "neutron-openvswi-FORWARD": (), "neutron-openvswi-INPUT": (), "neutron-openvswi-OUTPUT": (),
        "neutron-openvswi-local": (), "neutron-openvswi-sg-chain": ("-j ACCEPT",),
        "neutron-openvswi-sg-fallback": ('-m comment --comment "Default drop rule for unmatched traffic." -j DROP',),
    }
    raw_chains = {"neutron-openvswi-OUTPUT": (), "neutron-openvswi-PREROUTING": ()}
    for family in ("ipv4", "ipv6"):
        assert rs.chains[(family, "filter")] == filter_chains
        assert rs.chains[(family, "raw")] == raw_chains
        assert rs.hooks[(family, "filter")] == (("INPUT", "-j neutron-openvswi-INPUT"),
                                                ("FORWARD", "-j neutron-openvswi-FORWARD"),
                                                ("OUTPUT", "-j neutron-openvswi-OUTPUT"))
        assert rs.hooks[(family, "raw")] == (("PREROUTING", "-j neutron-openvswi-PREROUTING"),
                                             ("OUTPUT", "-j neutron-openvswi-OUTPUT"))
    assert rs.sets == {}


def test_a_filtered_port_is_jumped_to_from_forward_input_and_the_sg_chain() -> None:
    rs = render(view(vm(), vm(VM2, (IP2,), mac=MAC2)), ZONES)
    for family in ("ipv4", "ipv6"):
        assert chain(rs, family, "neutron-openvswi-FORWARD") == (
            f"-m physdev --physdev-out {TAP1} --physdev-is-bridged {VM_TO_SG} -j neutron-openvswi-sg-chain",
            f"-m physdev --physdev-in {TAP1} --physdev-is-bridged {VM_TO_SG} -j neutron-openvswi-sg-chain",
            f"-m physdev --physdev-out tapa2000000-00 --physdev-is-bridged {VM_TO_SG} -j neutron-openvswi-sg-chain",
            f"-m physdev --physdev-in tapa2000000-00 --physdev-is-bridged {VM_TO_SG} -j neutron-openvswi-sg-chain",
        )
        to_sg = '-m comment --comment "Direct incoming traffic from VM to the security group chain."'
        assert chain(rs, family, "neutron-openvswi-INPUT") == (
            f"-m physdev --physdev-in {TAP1} --physdev-is-bridged {to_sg} -j {O1}",
            f"-m physdev --physdev-in tapa2000000-00 --physdev-is-bridged {to_sg} -j neutron-openvswi-oa2000000-0",
        )
        jump = '-m comment --comment "Jump to the VM specific chain."'
        assert chain(rs, family, "neutron-openvswi-sg-chain") == (
            f"-m physdev --physdev-out {TAP1} --physdev-is-bridged {jump} -j {I1}",
            f"-m physdev --physdev-in {TAP1} --physdev-is-bridged {jump} -j {O1}",
            f"-m physdev --physdev-out tapa2000000-00 --physdev-is-bridged {jump} -j neutron-openvswi-ia2000000-0",
            f"-m physdev --physdev-in tapa2000000-00 --physdev-is-bridged {jump} -j neutron-openvswi-oa2000000-0",
            "-j ACCEPT",
        )


def test_raw_prerouting_puts_each_filtered_port_in_its_networks_zone() -> None:
    rs = render(view(vm()), ZONES)
    comment = '-m comment --comment "Set zone for 0000-0000-4000-8000-000000000001"'
    expected = (
        f"-m physdev --physdev-in {QVB1} {comment} -j CT --zone 7",
        f"-i {QVB1} {comment} -j CT --zone 7",
        f"-m physdev --physdev-in {TAP1} {comment} -j CT --zone 7",
    )
    assert chain(rs, "ipv4", "neutron-openvswi-PREROUTING", "raw") == expected
    assert chain(rs, "ipv6", "neutron-openvswi-PREROUTING", "raw") == expected


def test_a_stateless_group_is_not_tracked() -> None:
    group = SecurityGroup(OTHER, (rule("s1", "ingress", "IPv4", "udp", 53, 53),), stateful=False)
    rs = render(view(vm(groups=(OTHER,)), groups=(group,)), ZONES)
    comment = '-m comment --comment "Make 0000-0000-4000-8000-000000000001 stateless"'
    assert chain(rs, "ipv4", "neutron-openvswi-PREROUTING", "raw") == (
        f"-m physdev --physdev-in {QVB1} {comment} -j CT --notrack",
        f"-i {QVB1} {comment} -j CT --notrack",
        f"-m physdev --physdev-in {TAP1} {comment} -j CT --notrack",
    )


# ---------------------------------------------------------------- a port's chains


def test_default_group_ipv4_chains() -> None:
    rs = render(view(vm()), ZONES)
    assert chain(rs, "ipv4", I1) == (EST, *DHCP4_IN, f"-m set --match-set {SET4} src -j RETURN", INVALID, FALLBACK)
    assert chain(rs, "ipv4", O1) == (*EGRESS4_HEAD, "-j RETURN", INVALID, FALLBACK)
    assert chain(rs, "ipv4", S1) == (f"-s 10.0.0.11/32 -m mac --mac-source {MAC1} {PAIR}", PAIR_DROP)
    assert rs.sets[SET4] == ("ipv4", ("10.0.0.11", "10.0.0.12"))


def test_default_group_ipv6_chains() -> None:
    rs = render(view(vm()), ZONES)
    assert chain(rs, "ipv6", I1) == (*ICMP6_IN, EST, *DHCP6_IN, f"-m set --match-set {SET6} src -j RETURN",
                                     INVALID, FALLBACK)
    assert chain(rs, "ipv6", O1) == (*EGRESS6_HEAD, "-j RETURN", INVALID, FALLBACK)
    assert chain(rs, "ipv6", S1) == (
        f"-s fd00::11/128 -m mac --mac-source {MAC1} {PAIR}",
        f"-s fe80::f816:3eff:fe00:a1/128 -m mac --mac-source {MAC1} {PAIR}",
        PAIR_DROP,
    )
    assert rs.sets[SET6] == ("ipv6", ("fd00::11",))


def test_a_port_without_groups_only_gets_anti_spoofing_and_the_default_drop() -> None:
    rs = render(view(vm(groups=())), ZONES)
    assert chain(rs, "ipv4", I1) == (EST, *DHCP4_IN, INVALID, FALLBACK)
    assert chain(rs, "ipv4", O1) == (*EGRESS4_HEAD, INVALID, FALLBACK)
    assert chain(rs, "ipv6", I1) == (*ICMP6_IN, EST, *DHCP6_IN, INVALID, FALLBACK)
    assert chain(rs, "ipv6", O1) == (*EGRESS6_HEAD, INVALID, FALLBACK)
    assert chain(rs, "ipv4", S1) == (f"-s 10.0.0.11/32 -m mac --mac-source {MAC1} {PAIR}", PAIR_DROP)
    assert rs.sets == {}


def test_dhcp_server_replies_from_the_vm_are_dropped_after_its_own_dhcp_requests() -> None:
    rs = render(view(vm()), ZONES)
    drop4 = '-p udp -m udp --sport 67 --dport 68 -m comment --comment "Prevent DHCP Spoofing by VM." -j DROP'
    drop6 = '-p udp -m udp --sport 547 --dport 546 -m comment --comment "Prevent DHCP Spoofing by VM." -j DROP'
    egress4, egress6 = chain(rs, "ipv4", O1), chain(rs, "ipv6", O1)
    assert egress4.index(f"-p udp -m udp --sport 68 --dport 67 {DHCP_CLIENT}") < egress4.index(drop4) < \
        egress4.index(EST)
    assert egress6.index(drop6) < egress6.index(EST)
    assert drop4 not in egress6 and drop6 not in egress4


def test_a_single_family_port_has_no_anti_spoofing_chain_for_the_other_family_as_neutron() -> None:
    rs = render(view(vm(ips=(IP1,))), ZONES)
    assert S1 in rs.chains[("ipv4", "filter")]
    assert S1 not in rs.chains[("ipv6", "filter")]
    assert f"-j {S1}" not in chain(rs, "ipv6", O1)
    assert "-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j RETURN" not in chain(rs, "ipv6", I1)  # no RA: no v6 address


def test_a_port_without_addresses_may_send_from_its_mac_only() -> None:
    rs = render(view(vm(ips=())), ZONES)
    for family in ("ipv4", "ipv6"):
        assert chain(rs, family, S1) == (f"-m mac --mac-source {MAC1} {PAIR}", PAIR_DROP)
    assert chain(rs, "ipv4", I1)[:2] == (EST, "-d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN")


def test_allowed_address_pairs_come_first_with_their_mac_and_ipv6_link_local() -> None:
    pairs = (AddressPair("10.0.0.100", MAC1), AddressPair("192.168.7.9/24", "FA:16:3E:AA:BB:CC"),
             AddressPair("fd00:7::/64", "fa:16:3e:aa:bb:cc"), AddressPair("fd00::200", ""))
    rs = render(view(vm(pairs=pairs)), ZONES)
    assert chain(rs, "ipv4", S1) == (
        f"-s 10.0.0.100/32 -m mac --mac-source {MAC1} {PAIR}",
        f"-s 192.168.7.0/24 -m mac --mac-source fa:16:3e:aa:bb:cc {PAIR}",
        f"-s 10.0.0.11/32 -m mac --mac-source {MAC1} {PAIR}",
        PAIR_DROP,
    )
    assert chain(rs, "ipv6", S1) == (
        f"-s fd00:7::/64 -m mac --mac-source fa:16:3e:aa:bb:cc {PAIR}",
        f"-s fe80::f816:3eff:feaa:bbcc/128 -m mac --mac-source fa:16:3e:aa:bb:cc {PAIR}",
        f"-s fd00::200/128 -m mac --mac-source {MAC1} {PAIR}",  # no MAC: the port's
        f"-s fe80::f816:3eff:fe00:a1/128 -m mac --mac-source {MAC1} {PAIR}",
        f"-s fd00::11/128 -m mac --mac-source {MAC1} {PAIR}",  # its link-local is already there
        PAIR_DROP,
    )


def test_an_any_address_pair_is_a_mac_only_rule() -> None:
    rs = render(view(vm(ips=(IP1,), pairs=(AddressPair("0.0.0.0/0", MAC1),))), ZONES)
    assert chain(rs, "ipv4", S1) == (f"-m mac --mac-source {MAC1} {PAIR}",
                                     f"-s 10.0.0.11/32 -m mac --mac-source {MAC1} {PAIR}", PAIR_DROP)


def test_a_malformed_mac_drops_its_pairs_but_not_the_anti_spoofing() -> None:
    rs = render(view(vm(ips=(IP1,), mac="fa:16:3e:zz:00:a1", pairs=(AddressPair("10.0.0.100", MAC2),))), ZONES)
    assert chain(rs, "ipv4", S1) == (f"-s 10.0.0.100/32 -m mac --mac-source {MAC2} {PAIR}", PAIR_DROP)
    rs = render(view(vm(ips=(IP1,), mac="not-a-mac")), ZONES)
    assert chain(rs, "ipv4", S1) == (PAIR_DROP,)
    assert f"-j {S1}" in chain(rs, "ipv4", O1)


def test_link_local_is_the_eui64_of_the_mac() -> None:
    assert str(link_local("fa:16:3e:00:00:a1")) == "fe80::f816:3eff:fe00:a1"
    assert str(link_local("00:00:00:00:00:01")) == "fe80::200:ff:fe00:1"
    assert link_local("not-a-mac") is None


# ---------------------------------------------------------------- every rule form


@pytest.mark.parametrize(("given", "family", "direction", "expected"), [
    # TCP: one port, a range, the whole range (Neutron's multiport), by number
    (rule("t", "ingress", "IPv4", "tcp", 22, 22), "ipv4", "ingress", "-p tcp -m tcp --dport 22 -j RETURN"),
    (rule("t", "ingress", "IPv4", "tcp", 1000, 2000), "ipv4", "ingress",
     "-p tcp -m tcp -m multiport --dports 1000:2000 -j RETURN"),
    (rule("t", "ingress", "IPv4", "tcp", 1, 65535), "ipv4", "ingress",
     "-p tcp -m tcp -m multiport --dports 1:65535 -j RETURN"),
    (rule("t", "ingress", "IPv4", "6", 80, 80), "ipv4", "ingress", "-p tcp -m tcp --dport 80 -j RETURN"),
    (rule("t", "ingress", "IPv4", "tcp"), "ipv4", "ingress", "-p tcp -j RETURN"),
    # UDP, SCTP, DCCP, UDP-Lite (multiport only)
    (rule("u", "ingress", "IPv4", "udp", 53, 53), "ipv4", "ingress", "-p udp -m udp --dport 53 -j RETURN"),
    (rule("u", "egress", "IPv4", "17", 5000, 5100), "ipv4", "egress",
     "-p udp -m udp -m multiport --dports 5000:5100 -j RETURN"),
    (rule("u", "ingress", "IPv4", "sctp", 9, 9), "ipv4", "ingress", "-p sctp -m sctp --dport 9 -j RETURN"),
    (rule("u", "ingress", "IPv4", "33", 9, 10), "ipv4", "ingress",
     "-p dccp -m dccp -m multiport --dports 9:10 -j RETURN"),
    (rule("u", "ingress", "IPv4", "udplite", 5, 5), "ipv4", "ingress", "-p udplite -m multiport --dports 5 -j RETURN"),
    (rule("u", "ingress", "IPv4", "136", 5, 9), "ipv4", "ingress", "-p udplite -m multiport --dports 5:9 -j RETURN"),
    # ICMP: type/code, type only, no type, code 0, type 255 ("any"), by number
    (rule("i", "ingress", "IPv4", "icmp", 8, 0), "ipv4", "ingress", "-p icmp -m icmp --icmp-type 8/0 -j RETURN"),
    (rule("i", "ingress", "IPv4", "icmp", 3, None), "ipv4", "ingress", "-p icmp -m icmp --icmp-type 3 -j RETURN"),
    (rule("i", "ingress", "IPv4", "icmp", 3, 4), "ipv4", "ingress", "-p icmp -m icmp --icmp-type 3/4 -j RETURN"),
    (rule("i", "ingress", "IPv4", "icmp"), "ipv4", "ingress", "-p icmp -j RETURN"),
    (rule("i", "ingress", "IPv4", "icmp", 255, 3), "ipv4", "ingress", "-p icmp -m icmp --icmp-type any -j RETURN"),
    (rule("i", "ingress", "IPv4", "1", 0, 0), "ipv4", "ingress", "-p icmp -m icmp --icmp-type 0/0 -j RETURN"),
    # ICMPv6, and Neutron's legacy spellings of it on an IPv6 rule
    (rule("i", "ingress", "IPv6", "ipv6-icmp", 128, 0), "ipv6", "ingress",
     "-p ipv6-icmp -m icmp6 --icmpv6-type 128/0 -j RETURN"),
    (rule("i", "ingress", "IPv6", "icmp", 128, None), "ipv6", "ingress",
     "-p ipv6-icmp -m icmp6 --icmpv6-type 128 -j RETURN"),
    (rule("i", "ingress", "IPv6", "icmpv6"), "ipv6", "ingress", "-p ipv6-icmp -j RETURN"),
    (rule("i", "ingress", "IPv6", "58", 255, None), "ipv6", "ingress",
     "-p ipv6-icmp -m icmp6 --icmpv6-type 255 -j RETURN"),
    (rule("i", "ingress", "IPv6", "1"), "ipv6", "ingress", "-p ipv6-icmp -j RETURN"),
    # other protocols by name or number, as iptables-save names them
    (rule("p", "ingress", "IPv4", "47"), "ipv4", "ingress", "-p gre -j RETURN"),
    (rule("p", "ingress", "IPv4", "vrrp"), "ipv4", "ingress", "-p vrrp -j RETURN"),
    (rule("p", "ingress", "IPv4", "pgm"), "ipv4", "ingress", "-p 113 -j RETURN"),
    (rule("p", "ingress", "IPv6", "ipv6-encap"), "ipv6", "ingress", "-p ipv6 -j RETURN"),
    (rule("p", "ingress", "IPv4", "143"), "ipv4", "ingress", "-p ethernet -j RETURN"),
    (rule("p", "ingress", "IPv4", "200"), "ipv4", "ingress", "-p 200 -j RETURN"),
    (rule("p", "ingress", "IPv4", "ESP"), "ipv4", "ingress", "-p esp -j RETURN"),
    # any protocol: None, "any", 0 and its names write no -p
    (rule("a", "ingress", "IPv4", None), "ipv4", "ingress", "-j RETURN"),
    (rule("a", "ingress", "IPv4", "any"), "ipv4", "ingress", "-j RETURN"),
    (rule("a", "ingress", "IPv4", "0"), "ipv4", "ingress", "-j RETURN"),
    (rule("a", "ingress", "IPv6", "hopopt"), "ipv6", "ingress", "-j RETURN"),
    # remote_ip_prefix: -s on ingress, -d on egress, as printed (host bits cleared, /32, no /0)
    (rule("r", "ingress", "IPv4", "tcp", 22, 22, "203.0.113.0/24"), "ipv4", "ingress",
     "-s 203.0.113.0/24 -p tcp -m tcp --dport 22 -j RETURN"),
    (rule("r", "ingress", "IPv4", "tcp", 22, 22, "10.1.2.3/8"), "ipv4", "ingress",
     "-s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j RETURN"),
    (rule("r", "ingress", "IPv4", None, None, None, "192.0.2.7"), "ipv4", "ingress", "-s 192.0.2.7/32 -j RETURN"),
    (rule("r", "ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0"), "ipv4", "ingress", "-p tcp -m tcp --dport 22 -j RETURN"),
    (rule("r", "egress", "IPv4", "udp", 53, 53, "198.51.100.53/32"), "ipv4", "egress",
     "-d 198.51.100.53/32 -p udp -m udp --dport 53 -j RETURN"),
    (rule("r", "ingress", "IPv6", "tcp", 443, 443, "2001:DB8:0:0::1/48"), "ipv6", "ingress",
     "-s 2001:db8::/48 -p tcp -m tcp --dport 443 -j RETURN"),
    (rule("r", "egress", "IPv6", None, None, None, "::/0"), "ipv6", "egress", "-j RETURN"),
    # remote_group_id: the group's set, src on ingress, dst on egress
    (rule("g", "ingress", "IPv4", "tcp", 22, 22, group=DEFAULT), "ipv4", "ingress",
     f"-p tcp -m tcp --dport 22 -m set --match-set {SET4} src -j RETURN"),
    (rule("g", "egress", "IPv6", "udp", 53, 53, group=DEFAULT), "ipv6", "egress",
     f"-p udp -m udp --dport 53 -m set --match-set {SET6} dst -j RETURN"),
    (rule("g", "ingress", "IPv4", "icmp", 8, None, group=DEFAULT), "ipv4", "ingress",
     f"-p icmp -m icmp --icmp-type 8 -m set --match-set {SET4} src -j RETURN"),
])
def test_rule_forms(given: Rule, family: str, direction: str, expected: str) -> None:
    rs = one_rule(given)
    assert group_rules(rs, family, direction) == (expected,)
    other = "ipv6" if family == "ipv4" else "ipv4"
    assert group_rules(rs, other, "ingress") == group_rules(rs, other, "egress") == ()
    assert group_rules(rs, family, "egress" if direction == "ingress" else "ingress") == ()


@pytest.mark.parametrize("given", [
    rule("x", "ingress", "IPv4", "ipv6-icmp"),  # never matches IPv4; -m icmp6 is refused there
    rule("x", "ingress", "IPv4", "58", 128, 0),
    rule("x", "ingress", "IPv4", None, None, None, "fd00::/64"),  # prefix of the other family
    rule("x", "ingress", "IPv4", "tcp", 2000, 1000),  # reversed range
    rule("x", "ingress", "IPv4", "tcp", 22, 70000),
    rule("x", "ingress", "IPv4", "icmp", 300, None),
    rule("x", "ingress", "IPv4", "no-such-protocol"),
    rule("x", "ingress", "IPv4", "256"),
    rule("x", "sideways", "IPv4", "tcp"),
    rule("x", "ingress", "IPX", "tcp"),
])
def test_rules_no_iptables_rule_can_express_are_left_out(given: Rule) -> None:
    rs = one_rule(given, rule("z", "ingress", "IPv4", "tcp", 22, 22))
    assert group_rules(rs, "ipv4", "ingress") == ("-p tcp -m tcp --dport 22 -j RETURN",)
    assert group_rules(rs, "ipv6", "ingress") == ()


def test_ipv6_rules_go_to_ip6tables_only_and_ipv4_rules_to_iptables_only() -> None:
    rs = one_rule(rule("a", "ingress", "IPv6", "tcp", 22, 22), rule("b", "egress", "IPv6", "icmp"),
                  rule("c", "ingress", "IPv4", "udp", 161, 161))
    assert group_rules(rs, "ipv6", "ingress") == ("-p tcp -m tcp --dport 22 -j RETURN",)
    assert group_rules(rs, "ipv6", "egress") == ("-p ipv6-icmp -j RETURN",)
    assert group_rules(rs, "ipv4", "ingress") == ("-p udp -m udp --dport 161 -j RETURN",)
    assert group_rules(rs, "ipv4", "egress") == ()


def test_several_groups_keep_the_ports_group_order_then_rule_order_and_drop_duplicates() -> None:
    web = SecurityGroup(WEB, (rule("w2", "ingress", "IPv4", "tcp", 443, 443),
                              rule("w1", "ingress", "IPv4", "tcp", 80, 80)))
    other = SecurityGroup(OTHER, (rule("o1", "ingress", "IPv4", "6", 80, 80),  # same as w1, by number
                                  rule("o2", "ingress", "IPv4", "tcp", 22, 22, "10.0.0.0/8")))
    rs = render(view(vm(groups=(DEFAULT, WEB, OTHER)), groups=(DEFAULT_GROUP, web, other)), ZONES)
    assert group_rules(rs, "ipv4", "ingress") == (
        f"-m set --match-set {SET4} src -j RETURN",
        "-p tcp -m tcp --dport 80 -j RETURN",
        "-p tcp -m tcp --dport 443 -j RETURN",
        "-s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j RETURN",
    )
    assert group_rules(rs, "ipv4", "egress") == ("-j RETURN",)
    assert group_rules(rs, "ipv6", "ingress") == (f"-m set --match-set {SET6} src -j RETURN",)


def test_a_rule_of_an_unknown_group_is_nothing_and_the_port_is_still_filtered() -> None:
    rs = render(view(vm(groups=(OTHER,))), ZONES)
    assert chain(rs, "ipv4", I1) == (EST, *DHCP4_IN, INVALID, FALLBACK)


# ---------------------------------------------------------------- other kinds of ports


def test_port_security_off_means_accept_and_no_chains() -> None:
    rs = render(view(vm(groups=(), security=False)), ZONES)
    accept = '-m comment --comment "Accept all packets when port security is disabled." -j ACCEPT'
    for family in ("ipv4", "ipv6"):
        assert chain(rs, family, "neutron-openvswi-FORWARD") == (
            f"-m physdev --physdev-out {TAP1} --physdev-is-bridged {accept}",
            f"-m physdev --physdev-in {TAP1} --physdev-is-bridged {accept}",
        )
        assert chain(rs, family, "neutron-openvswi-INPUT") == (f"-m physdev --physdev-in {TAP1} --physdev-is-bridged "
                                                               f"{accept}",)
        assert chain(rs, family, "neutron-openvswi-sg-chain") == ("-j ACCEPT",)
        assert not {I1, O1, S1} & set(rs.chains[(family, "filter")])
        assert chain(rs, family, "neutron-openvswi-PREROUTING", "raw") == ()
    assert rs.sets == {}


def test_network_owned_ports_are_trusted_as_neutron() -> None:
    dhcp = vm(VM2, (IP2,), (), mac=MAC2, owner="network:dhcp")
    open_port = vm("a3000000-0000-4000-8000-000000000003", ("10.0.0.13",), (), security=False)
    rs = render(view(open_port, dhcp, vm()), ZONES)
    trusted = '-m comment --comment "Accept all packets when port is trusted." -j ACCEPT'
    accept = '-m comment --comment "Accept all packets when port security is disabled." -j ACCEPT'
    assert chain(rs, "ipv4", "neutron-openvswi-FORWARD") == (  # filtered first, then trusted, then open
        f"-m physdev --physdev-out {TAP1} --physdev-is-bridged {VM_TO_SG} -j neutron-openvswi-sg-chain",
        f"-m physdev --physdev-in {TAP1} --physdev-is-bridged {VM_TO_SG} -j neutron-openvswi-sg-chain",
        f"-m physdev --physdev-out tapa2000000-00 --physdev-is-bridged {trusted}",
        f"-m physdev --physdev-in tapa2000000-00 --physdev-is-bridged {trusted}",
        f"-m physdev --physdev-out tapa3000000-00 --physdev-is-bridged {accept}",
        f"-m physdev --physdev-in tapa3000000-00 --physdev-is-bridged {accept}",
    )
    assert "tapa2000000-00" not in " ".join(chain(rs, "ipv4", "neutron-openvswi-INPUT"))
    assert "neutron-openvswi-ia2000000-0" not in rs.chains[("ipv4", "filter")]


def test_ports_whose_network_has_no_zone_are_not_wired_here() -> None:
    rs = render(view(vm(network=NET_UNWIRED), vm(VM2, (IP2,), (), security=False, network=NET_UNWIRED)), ZONES)
    assert rs == render(view(), ZONES)


# ---------------------------------------------------------------- names, sets, determinism


def test_names_are_neutrons_and_within_netfilters_limits() -> None:
    assert device_name(VM1) == "tapa1000000-00" and device_name(VM1, "qvb") == "qvba1000000-00"
    assert port_chain(VM1, "i") == "neutron-openvswi-ia1000000-0"
    assert set_name(DEFAULT, "ipv4") == SET4 and set_name(DEFAULT, "ipv6") == SET6
    rs = render(view(vm(), vm(VM2, (IP2,), (DEFAULT, WEB), mac=MAC2),
                     groups=(DEFAULT_GROUP, SecurityGroup(WEB, (rule("w", "egress", "IPv6", group=WEB),)))), ZONES)
    names = [name for chains in rs.chains.values() for name in chains]
    assert max(len(n) for n in names) == MAX_CHAIN_LEN == 28
    assert all(len(n) <= MAX_CHAIN_LEN for n in names)
    assert sorted(rs.sets) == [SET4, SET6, "NIPv6e0000000-0000-4000-8000-"]
    assert all(len(n) == 29 <= MAX_SET_LEN for n in rs.sets)


def test_sets_hold_the_members_of_their_family_as_ipset_prints_them() -> None:
    members = {DEFAULT: ("10.0.0.12", "10.0.0.11/32", "10.0.8.0/21", "10.9.9.9/16", "0.0.0.0/0", "fd00::11",
                         "FD00:0:0:0::12", "::/0", "not-an-address")}
    rs = render(view(vm(), members=members), ZONES)
    assert rs.sets == {
        SET4: ("ipv4", ("0.0.0.0/1", "10.0.0.11", "10.0.0.12", "10.0.8.0/21", "10.9.0.0/16", "128.0.0.0/1")),
        SET6: ("ipv6", ("8000::/1", "::/1", "fd00::11", "fd00::12")),
    }


def test_a_set_exists_even_empty_and_only_for_the_families_rules_name() -> None:
    group = SecurityGroup(WEB, (rule("w", "ingress", "IPv4", "tcp", 22, 22, group=OTHER),))
    rs = render(view(vm(groups=(WEB,)), groups=(group,), members={}), ZONES)
    assert rs.sets == {"NIPv4f0000000-0000-4000-8000-": ("ipv4", ())}
    assert group_rules(rs, "ipv4", "ingress") == (
        "-p tcp -m tcp --dport 22 -m set --match-set NIPv4f0000000-0000-4000-8000- src -j RETURN",)


def _spellings(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    text = str(address)
    return [text, text.upper(), address.exploded, f" {text} ", f"{text}/{address.max_prefixlen}", f"{text}/24"
            if address.version == 4 else f"{text}/64", f"::ffff:{text}" if address.version == 4 else text + "%eth0"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.ip_addresses(), max_size=12), st.lists(st.sampled_from(
    ["::ffff:1.2.3.4", "::1.2.3.4", "::ffff:102:304", "0.0.0.0/0", "::/0", "bogus", "", "010.0.0.1", "10.0.0.1/33",
     "fe80::1%eth0", "1.2.3"]), max_size=4))
def test_set_members_print_every_spelling_as_ipaddress_does(addresses: list, odd: list[str]) -> None:
    texts = [spelling for a in addresses for spelling in _spellings(a)] + odd
    for family, version in (("ipv4", 4), ("ipv6", 6)):
        expected: set[str] = set()
        for text in texts:
            try:
                net = ipaddress.ip_network(text.strip(), strict=False)
            except ValueError:
                continue
            if net.version != version:
                continue
            for part in (net.subnets(prefixlen_diff=1) if net.prefixlen == 0 else (net,)):
                expected.add(str(part.network_address) if part.prefixlen == part.max_prefixlen else str(part))
        assert set_members(texts, family) == tuple(sorted(expected))


def test_a_membership_change_changes_sets_only() -> None:
    ports = (vm(), vm(VM2, (IP2,), mac=MAC2))
    small = render(view(*ports, members={DEFAULT: (IP1,)}), ZONES)
    large = render(view(*ports, members={DEFAULT: tuple(f"10.1.{i // 250}.{i % 250 + 1}" for i in range(200))}),
                   ZONES)
    assert small.chains == large.chains and small.hooks == large.hooks
    assert len(small.sets[SET4][1]) == 1 and len(large.sets[SET4][1]) == 200
    assert small.sets[SET6] == large.sets[SET6] == ("ipv6", ())


def test_equal_inputs_give_equal_rulesets_whatever_their_order() -> None:
    web = SecurityGroup(WEB, (rule("w1", "ingress", "IPv4", "tcp", 22, 22), rule("w2", "ingress", "IPv6", "udp"),
                              rule("w3", "egress", "IPv4", "icmp", 8, 0, group=DEFAULT)))
    ports = [vm(), vm(VM2, (IP2,), (DEFAULT, WEB), mac=MAC2),
             vm("a3000000-0000-4000-8000-000000000003", ("10.0.0.13",), (), security=False),
             vm("a4000000-0000-4000-8000-000000000004", ("10.0.0.2",), (), owner="network:dhcp")]
    base = render(view(*ports, groups=(DEFAULT_GROUP, web)), ZONES)
    shuffler = random.Random(6)
    for _ in range(5):
        shuffler.shuffle(ports)
        ports = [replace(p, security_groups=tuple(shuffler.sample(p.security_groups, len(p.security_groups))))
                 for p in ports]
        groups = [replace(web, rules=tuple(shuffler.sample(web.rules, len(web.rules)))), DEFAULT_GROUP]
        shuffler.shuffle(groups)
        assert render(view(*ports, groups=tuple(groups)), dict(reversed(list(ZONES.items())))) == base
    reversed_groups = [replace(p, security_groups=p.security_groups[::-1]) for p in ports]
    assert render(view(*reversed_groups, groups=(DEFAULT_GROUP, web)), ZONES) == base


def test_the_driver_accepts_the_ruleset_and_finds_nothing_to_do_when_it_is_observed() -> None:
    web = SecurityGroup(WEB, (rule("w1", "ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0"),
                              rule("w2", "egress", "IPv6", "udp", 53, 53, group=WEB)))
    rs = render(view(vm(groups=(DEFAULT, WEB)), vm(VM2, (IP2,), (), security=False),
                     groups=(DEFAULT_GROUP, web)), ZONES)
    netfilter.check(rs)
    assert not netfilter.diff(rs, rs)


# ---------------------------------------------------------------- reusing the last rendering


VM3 = "a3000000-0000-4000-8000-000000000003"
OPEN = "a4000000-0000-4000-8000-000000000004"
DHCP = "a5000000-0000-4000-8000-000000000005"
WEB_GROUP = SecurityGroup(WEB, (rule("w1", "ingress", "IPv4", "tcp", 22, 22),
                                rule("w2", "egress", "IPv4", group=DEFAULT)))


def host(**kinds: object) -> HostView:
    """Three filtered ports (VM1 and VM2 in the default group, VM3 in WEB whose egress goes to the
    default group's members), an open port and a DHCP port; ``kinds`` replace some of them."""
    ports = {VM1: vm(), VM2: vm(VM2, (IP2,), mac=MAC2), VM3: vm(VM3, ("10.0.0.13",), (WEB,), mac="fa:16:3e:00:00:a3"),
             OPEN: vm(OPEN, ("10.0.0.14",), (), security=False),
             DHCP: vm(DHCP, ("10.0.0.2",), (), owner="network:dhcp")}
    ports.update(kinds.get("ports", {}))  # type: ignore[arg-type]
    members = kinds.get("members", {DEFAULT: (IP1, IP2, IP1_V6), WEB: ("10.0.0.13",)})
    return view(*(p for p in ports.values() if p is not None),
                groups=kinds.get("groups", (DEFAULT_GROUP, WEB_GROUP)), members=members)  # type: ignore[arg-type]


ALL = {VM1, VM2, VM3, OPEN, DHCP}


@pytest.mark.parametrize(("after", "zones", "rendered_again"), [
    (host(), ZONES, set()),  # nothing changed: every port's rules are reused
    (host(ports={VM1: vm(ips=(IP1,))}), ZONES, {VM1}),  # an address
    (host(ports={VM1: vm(mac="fa:16:3e:00:00:ff")}), ZONES, {VM1}),  # the MAC
    (host(ports={VM1: vm(pairs=(AddressPair("10.0.0.99", MAC1),))}), ZONES, {VM1}),  # an address pair
    (host(ports={VM1: vm(groups=(DEFAULT, WEB))}), ZONES, {VM1}),  # its groups
    (host(groups=(DEFAULT_GROUP, replace(WEB_GROUP, rules=WEB_GROUP.rules[:1]))), ZONES, {VM3}),  # a rule of its group
    (host(groups=(replace(DEFAULT_GROUP, stateful=False), WEB_GROUP)), ZONES, {VM1, VM2}),  # statefulness
    (host(members={DEFAULT: (IP1,), WEB: ()}), ZONES, set()),  # members: the sets change, no port's rules
    (host(), {NET: ZONE + 1}, {VM1, VM2, VM3}),  # its network's zone: the filtered ports (raw table)
    (host(ports={VM1: vm(security=False)}), ZONES, {VM1}),  # port security off: now an open port
    (host(ports={OPEN: vm(OPEN, ("10.0.0.14",), ())}), ZONES, {OPEN}),  # port security on: filtered
    (host(ports={VM1: vm(owner="network:router_interface")}), ZONES, {VM1}),  # now trusted
    (host(ports={DHCP: vm(DHCP, ("10.0.0.3",), (), owner="network:dhcp")}), ZONES, {DHCP}),  # a trusted port's address
    (host(ports={VM2: None}), ZONES, set()),  # a port gone
    (host(ports={"a0000000-0000-4000-8000-000000000000": vm("a0000000-0000-4000-8000-000000000000", ("10.0.0.10",))}),
     ZONES, {"a0000000-0000-4000-8000-000000000000"}),  # a port added (first in every shared chain)
    (host(ports={VM1: vm(network=NET_UNWIRED)}), ZONES, set()),  # a port moved to a network not wired here
])
def test_a_rendering_reuses_the_rules_of_the_ports_whose_inputs_did_not_change(
        after: HostView, zones: dict[str, int], rendered_again: set[str]) -> None:
    before = render_from(host(), ZONES, None)
    again = render_from(after, zones, before)
    assert again.ruleset == render(after, zones)  # the same ruleset as rendered from nothing
    assert again == render_from(after, zones, None)
    reused = {pid for pid, (_, rules) in again.ports.items() if before.ports.get(pid, (None, None))[1] is rules}
    assert reused == set(again.ports) - rendered_again
    assert set(again.ports) == {p.id for p in after.ports if p.network_id in zones}


def test_any_previous_rendering_gives_the_ruleset_rendered_from_nothing() -> None:
    views = [host(), host(ports={VM1: vm(security=False), VM2: None}), view(), host(members={}),
             host(ports={VM3: vm(VM3, ("10.0.0.13",), (DEFAULT,), mac="fa:16:3e:00:00:a3")}),
             host(groups=(DEFAULT_GROUP,)), host(ports={VM1: vm(VM1, (IP2,), mac=MAC2), VM2: vm(VM2, (IP1,))})]
    for zones in (ZONES, {NET: 3}, {}):
        for first in views:
            previous = render_from(first, ZONES, None)
            for then in views:
                assert render_from(then, zones, previous).ruleset == render(then, zones)
    assert render_from(view(), ZONES, None) == render_from(view(), ZONES, Rendering(render(host(), ZONES)))


@pytest.mark.parametrize(("after", "zones", "whole"), [
    (host(members={DEFAULT: (IP1,), WEB: ()}), ZONES, True),  # members left: the sets only
    (host(members={DEFAULT: (IP1, IP2, IP1_V6, "10.0.0.77", "2001:db8::77"), WEB: ("10.0.0.13",)}), ZONES, True),
    (host(members={}), ZONES, True),  # no member listed at all
    (replace(host(), address_groups=(AddressGroup(DEFAULT, ("192.0.2.0/24",)),)), ZONES, True),  # more addresses
    (host(ports={VM1: vm(ips=(IP1,))}), ZONES, False),  # a port's address: the ports' rules again
    (host(groups=(DEFAULT_GROUP, replace(WEB_GROUP, rules=WEB_GROUP.rules[:1]))), ZONES, False),  # a rule
    (host(), {NET: ZONE + 1}, False),  # a zone
    (host(ports={VM2: None}), ZONES, False),  # a port gone
])
def test_a_change_of_members_only_reuses_the_chains_whole(after: HostView, zones: dict[str, int], whole: bool) -> None:
    """Ports, groups and zones as before: the chains and hooks are the previous rendering's (the
    same objects), the sets made again; the result is the rendering made from nothing."""
    before = render_from(host(), ZONES, None)
    again = render_from(after, zones, before)
    assert again == render_from(after, zones, None)
    assert again.ruleset == render(after, zones)
    assert (again.ruleset.chains is before.ruleset.chains) == whole
    assert (again.ruleset.hooks is before.ruleset.hooks) == whole


def test_reused_rules_and_sets_are_the_same_objects() -> None:
    """What makes comparing with the last applied ruleset, and diffing it, cheap."""
    before = render_from(host(), ZONES, None)
    again = render_from(host(members={DEFAULT: (IP1, IP2, IP1_V6), WEB: ("10.0.0.13", "10.0.0.99")}), ZONES, before)
    family_chains = again.ruleset.chains[("ipv4", "filter")]
    assert family_chains[I1] is before.ruleset.chains[("ipv4", "filter")][I1]
    assert again.ruleset.sets[SET4][1] is before.ruleset.sets[SET4][1]  # the default group's members did not change
    assert again.matches[(DEFAULT,)] is before.matches[(DEFAULT,)]


# ---------------------------------------------------------------- conntrack


def ct(family: str, protocol: str | None, source: str | None, destination: str | None) -> ConntrackDelete:
    return ConntrackDelete(family, ZONE, protocol, source, destination)


WEB_RULES = (
    rule("w1", "ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0"),
    rule("w2", "ingress", "IPv4", "udp", 53, 53, "192.0.2.7"),
    rule("w3", "ingress", "IPv4", "tcp", 8000, 8080, "10.9.0.0/16"),
    rule("w4", "egress", "IPv4", "tcp", 5432, 5432, "198.51.100.10/32"),
    rule("w5", "ingress", "IPv6", "icmp", 128, None),
    rule("w6", "ingress", "IPv4", "47", group=WEB),
)


def web_view(*rules: Rule, groups: tuple[str, ...] = (WEB,),
             members: dict[str, tuple[str, ...]] | None = None) -> HostView:
    """VM1 in ``groups`` (WEB alone unless said otherwise: no default group "egress anywhere"
    that would cover the egress rules), VM2 in the default group."""
    members = {DEFAULT: (IP1, IP2, IP1_V6), WEB: (IP1, "10.0.0.20", "10.0.0.21")} if members is None else members
    return view(vm(groups=groups), vm(VM2, (IP2,), mac=MAC2),
                groups=(DEFAULT_GROUP, SecurityGroup(WEB, rules)), members=members)


BEFORE = web_view(*WEB_RULES)


def without(*rule_ids: str, groups: tuple[str, ...] = (WEB,)) -> HostView:
    return web_view(*(r for r in WEB_RULES if r.id not in rule_ids), groups=groups)


@pytest.mark.parametrize(("removed", "expected"), [
    # a rule from anywhere: the protocol's entries to each of the port's addresses
    (("w1",), [ct("ipv4", "tcp", None, IP1)]),
    # from one address: that address only
    (("w2",), [ct("ipv4", "udp", "192.0.2.7", IP1)]),
    # from a network: anywhere (conntrack cannot match a network), as Neutron
    (("w3",), [ct("ipv4", "tcp", None, IP1)]),
    # egress: from the port to the remote
    (("w4",), [ct("ipv4", "tcp", IP1, "198.51.100.10")]),
    # IPv6: the IPv6 addresses, conntrack's name for ICMPv6
    (("w5",), [ct("ipv6", "icmpv6", None, IP1_V6)]),
    # a remote group: each member of the rule's family (the port itself is one)
    (("w6",), [ct("ipv4", "gre", "10.0.0.11", IP1), ct("ipv4", "gre", "10.0.0.20", IP1),
               ct("ipv4", "gre", "10.0.0.21", IP1)]),
    # two rules: a broader delete makes a narrower one useless
    (("w1", "w3"), [ct("ipv4", "tcp", None, IP1)]),
])
def test_a_removed_rule_deletes_the_entries_it_allowed(removed: tuple[str, ...],
                                                        expected: list[ConntrackDelete]) -> None:
    assert conntrack_deletes(BEFORE, without(*removed), ZONES) == tuple(expected)


def test_past_max_remotes_a_port_loses_its_entries_from_anywhere_in_one_delete() -> None:
    def removing_w6(members: tuple[str, ...]) -> tuple[ConntrackDelete, ...]:
        groups = {DEFAULT: (IP1, IP2, IP1_V6), WEB: members}
        return conntrack_deletes(web_view(*WEB_RULES, members=groups),
                                 web_view(*(r for r in WEB_RULES if r.id != "w6"), members=groups), ZONES)

    many = tuple(f"10.5.0.{i}" for i in range(1, 34))  # 33 > MAX_REMOTES (32)
    assert removing_w6(many) == (ct("ipv4", "gre", None, IP1),)
    assert removing_w6(many[:32]) == tuple(ct("ipv4", "gre", a, IP1) for a in sorted(many[:32]))


def test_a_removed_rule_that_another_group_still_covers_deletes_nothing() -> None:
    both = (DEFAULT, WEB)  # the default group allows egress anywhere and anything from its members
    assert conntrack_deletes(web_view(*WEB_RULES, groups=both), without("w4", groups=both), ZONES) == ()
    assert conntrack_deletes(web_view(*WEB_RULES, groups=both), without("w6", groups=both), ZONES) == (
        ct("ipv4", "gre", "10.0.0.20", IP1), ct("ipv4", "gre", "10.0.0.21", IP1))  # IP1 is a DEFAULT member


def test_a_group_taken_off_a_port_deletes_what_only_that_group_allowed() -> None:
    before = web_view(*WEB_RULES, groups=(DEFAULT, WEB))
    assert conntrack_deletes(before, web_view(*WEB_RULES, groups=(DEFAULT,)), ZONES) == (
        ct("ipv4", "gre", "10.0.0.20", IP1), ct("ipv4", "gre", "10.0.0.21", IP1),
        ct("ipv4", "tcp", None, IP1),
        ct("ipv4", "udp", "192.0.2.7", IP1),
        ct("ipv6", "icmpv6", None, IP1_V6),
    )  # egress to 198.51.100.10 and gre from IP1 stay allowed by the default group
    assert conntrack_deletes(before, web_view(*WEB_RULES, groups=(WEB,)), ZONES) == (
        ct("ipv4", None, IP1, None),  # egress anywhere; it includes ingress from IP1 to IP1
        ct("ipv4", None, IP2, IP1),
        ct("ipv6", None, IP1_V6, None),
    )
    assert conntrack_deletes(before, web_view(*WEB_RULES, groups=()), ZONES)[:1] == (ct("ipv4", None, IP1, None),)


def test_a_member_leaving_a_group_deletes_its_entries_with_the_ports_using_the_group() -> None:
    both = (DEFAULT, WEB)
    after = web_view(*WEB_RULES, groups=both, members={DEFAULT: (IP1, IP1_V6), WEB: (IP1, "10.0.0.20", "10.0.0.21")})
    assert conntrack_deletes(web_view(*WEB_RULES, groups=both), after, ZONES) == (
        ct("ipv4", None, IP2, IP1), ct("ipv4", None, IP2, IP2),  # VM1 and VM2 both allow ingress from DEFAULT
    )
    after = web_view(*WEB_RULES, members={DEFAULT: (IP1, IP2, IP1_V6), WEB: (IP1, "10.0.0.21")})
    assert conntrack_deletes(BEFORE, after, ZONES) == (ct("ipv4", "gre", "10.0.0.20", IP1),)


def test_a_member_leaving_a_group_that_a_rule_names_deletes_with_ports_not_in_that_group() -> None:
    # VM1 is in WEB alone; WEB allows ingress from the default group's members; VM2 leaves it
    rules = (rule("w1", "ingress", "IPv4", "udp", group=DEFAULT),)
    before = web_view(*rules)
    after = web_view(*rules, members={DEFAULT: (IP1, IP1_V6), WEB: (IP1, "10.0.0.20", "10.0.0.21")})
    assert conntrack_deletes(before, after, ZONES) == (
        ct("ipv4", None, IP2, IP2),  # VM2 (in the default group) allowed itself
        ct("ipv4", "udp", IP2, IP1),  # VM1 allowed it by WEB's rule
    )
    # the port's groups, their rules and the members they name unchanged: nothing, whatever else changed
    elsewhere = web_view(*rules, members={DEFAULT: (IP1, IP2, IP1_V6), WEB: ()})
    assert conntrack_deletes(before, elsewhere, ZONES) == ()


def test_nothing_is_deleted_while_what_allowed_it_is_still_allowed() -> None:
    assert conntrack_deletes(BEFORE, BEFORE, ZONES) == ()
    # the same rule under another id (deleted and created again)
    renamed = web_view(*(replace(r, id=f"new-{r.id}") for r in WEB_RULES))
    assert conntrack_deletes(BEFORE, renamed, ZONES) == ()
    # a narrower rule removed while a broader one stays
    wide = (rule("w7", "ingress", "IPv4", "tcp", 1, 65535, "10.0.0.0/8"), rule("w8", "ingress", "IPv4", "udp"))
    broad = web_view(*WEB_RULES, *wide)
    narrower = web_view(*(r for r in WEB_RULES if r.id not in ("w2", "w3")), *wide)
    assert conntrack_deletes(broad, narrower, ZONES) == ()
    # a departed member still covered by an "anywhere" rule of the same protocol
    anywhere = web_view(*WEB_RULES, rule("w9", "ingress", "IPv4", "gre"))
    left = web_view(*WEB_RULES, rule("w9", "ingress", "IPv4", "gre"), members={DEFAULT: (IP1, IP2, IP1_V6), WEB: ()})
    assert conntrack_deletes(anywhere, left, ZONES) == ()
    # ICMP: another type is not covered
    icmp = web_view(rule("i1", "ingress", "IPv4", "icmp", 8, 0), rule("i2", "ingress", "IPv4", "icmp", 0, 0))
    assert conntrack_deletes(icmp, web_view(rule("i2", "ingress", "IPv4", "icmp", 0, 0)), ZONES) == (
        ct("ipv4", "icmp", None, IP1),)
    assert conntrack_deletes(icmp, web_view(*icmp.security_groups[1].rules, rule("i3", "ingress", "IPv4", "icmp")),
                             ZONES) == ()


def test_ports_that_turn_unfiltered_appear_or_are_not_wired_need_nothing() -> None:
    after = without("w1")
    assert conntrack_deletes(None, after, ZONES) == ()
    assert conntrack_deletes(BEFORE, after, {}) == ()  # no zone: not wired here
    open_after = replace(after, ports=(replace(after.ports[0], port_security_enabled=False), after.ports[1]))
    assert conntrack_deletes(BEFORE, open_after, ZONES) == ()  # everything is allowed now
    new = replace(BEFORE, ports=BEFORE.ports[1:])
    assert conntrack_deletes(new, after, ZONES) == ()


def test_a_port_gone_or_an_address_dropped_loses_every_entry_of_its_addresses() -> None:
    # the zone is the network's: a port given the address next must not inherit the entries
    gone = replace(BEFORE, ports=BEFORE.ports[1:])
    assert conntrack_deletes(BEFORE, gone, ZONES) == (
        ct("ipv4", None, None, IP1), ct("ipv4", None, IP1, None),
        ct("ipv6", None, None, IP1_V6), ct("ipv6", None, IP1_V6, None),
    )
    fewer = replace(BEFORE, ports=(replace(BEFORE.ports[0], fixed_ips=(IP1,)), BEFORE.ports[1]))
    assert conntrack_deletes(BEFORE, fewer, ZONES) == (ct("ipv6", None, None, IP1_V6), ct("ipv6", None, IP1_V6, None))
    assert conntrack_deletes(BEFORE, gone, {}) == ()  # NOTE: a zone already released cannot be named


def test_stateless_ports_have_no_entries_to_delete() -> None:
    stateless = replace(BEFORE, security_groups=tuple(replace(g, stateful=False) for g in BEFORE.security_groups))
    after = replace(without("w1"), security_groups=tuple(replace(g, stateful=False)
                                                         for g in without("w1").security_groups))
    assert conntrack_deletes(stateless, after, ZONES) == ()


def test_conntrack_deletes_are_sorted_unique_and_name_protocols_as_conntrack_does() -> None:
    rules = (rule("a", "ingress", "IPv4", "pgm"), rule("b", "ingress", "IPv4", "132", 7, 7),
             rule("c", "ingress", "IPv6", "58"), rule("d", "egress", "IPv4", "udplite", 5, 5),
             rule("e", "ingress", "IPv4", "ospf"), rule("f", "ingress", "IPv4", "89"))
    before = web_view(*rules)
    deletes = conntrack_deletes(before, web_view(), ZONES)
    assert deletes == (
        ct("ipv4", "113", None, IP1), ct("ipv4", "89", None, IP1), ct("ipv4", "sctp", None, IP1),
        ct("ipv4", "udplite", IP1, None), ct("ipv6", "icmpv6", None, IP1_V6),
    )
    assert conntrack_deletes(before, web_view(), dict(ZONES)) == deletes


# ---------------------------------------------------------------- remote address groups

AG = "c0000000-0000-4000-8000-0000000000c4"
AG_SET4, AG_SET6 = "NIPv4c0000000-0000-4000-8000-", "NIPv6c0000000-0000-4000-8000-"


def ag_view(addresses: tuple[str, ...], *rules: Rule) -> HostView:
    """VM1 in WEB alone, whose ``rules`` name address group AG (with ``addresses``)."""
    return replace(view(vm(groups=(WEB,)), groups=(SecurityGroup(WEB, rules),), members={}),
                   address_groups=(AddressGroup(AG, addresses),))


def ag_rule(rule_id: str, direction: str, ethertype: str = "IPv4", protocol: str | None = None,
            low: int | None = None, high: int | None = None) -> Rule:
    return Rule(rule_id, direction, ethertype, protocol, low, high, None, None, remote_address_group_id=AG)


def test_a_remote_address_group_admits_its_addresses_of_the_rules_family_through_its_set() -> None:
    rs = render(ag_view(("192.0.2.0/24", "198.51.100.7/32", "2001:db8::/64"),
                        ag_rule("a1", "ingress", "IPv4", "tcp", 22, 22), ag_rule("a2", "ingress", "IPv6"),
                        ag_rule("a3", "egress", "IPv4", "udp", 53, 53)), ZONES)
    assert group_rules(rs, "ipv4", "ingress") == (
        f"-p tcp -m tcp --dport 22 -m set --match-set {AG_SET4} src -j RETURN",)
    assert group_rules(rs, "ipv6", "ingress") == (f"-m set --match-set {AG_SET6} src -j RETURN",)
    assert group_rules(rs, "ipv4", "egress") == (
        f"-p udp -m udp --dport 53 -m set --match-set {AG_SET4} dst -j RETURN",)
    assert group_rules(rs, "ipv6", "egress") == ()
    assert rs.sets == {AG_SET4: ("ipv4", ("192.0.2.0/24", "198.51.100.7")), AG_SET6: ("ipv6", ("2001:db8::/64",))}


def test_an_address_group_change_changes_its_set_only_and_an_empty_group_matches_nothing() -> None:
    rules = (ag_rule("a1", "ingress", "IPv4", "icmp"),)
    full, empty = render(ag_view(("10.9.0.5/32",), *rules), ZONES), render(ag_view((), *rules), ZONES)
    assert full.chains == empty.chains and full.hooks == empty.hooks
    assert full.sets == {AG_SET4: ("ipv4", ("10.9.0.5",))} and empty.sets == {AG_SET4: ("ipv4", ())}
    assert render(ag_view(("::/0", "0.0.0.0/0"), *rules), ZONES).sets == {
        AG_SET4: ("ipv4", ("0.0.0.0/1", "128.0.0.0/1"))}  # hash:net holds no /0; the IPv6 one is no IPv4 member
    # A rule naming a group the view does not carry: its set exists, empty (as a remote group's).
    assert render(replace(ag_view((), *rules), address_groups=()), ZONES).sets == {AG_SET4: ("ipv4", ())}


def test_an_address_removed_from_a_group_deletes_the_entries_it_allowed() -> None:
    rules = (ag_rule("a1", "ingress", "IPv4", "tcp", 22, 22),)
    before = ag_view(("192.0.2.7/32", "198.51.100.0/24"), *rules)
    assert conntrack_deletes(before, ag_view(("198.51.100.0/24",), *rules), ZONES) == (
        ct("ipv4", "tcp", "192.0.2.7", IP1),)
    assert conntrack_deletes(before, ag_view(("192.0.2.7/32",), *rules), ZONES) == (
        ct("ipv4", "tcp", None, IP1),)  # a network: from anywhere (conntrack cannot match a network), as Neutron
    assert conntrack_deletes(before, ag_view(("192.0.2.7/32", "198.51.100.0/24", "203.0.113.1/32"), *rules),
                             ZONES) == ()


def test_members_that_only_joined_delete_nothing_and_the_shortcut_agrees_with_the_whole_computation() -> None:
    """``conntrack_deletes`` answers () without a pass over the ports when members only joined
    (same ports and groups, every address still there); the whole computation says the same
    then, and whatever the change, it is what ``conntrack_deletes`` answers."""
    from baryon.agent.plan import firewall_conntrack as fc

    pools = {DEFAULT: (IP1, IP2, IP1_V6, "10.0.0.30", "2001:db8::30"),
             WEB: (IP1, "10.0.0.20", "10.0.0.21", "10.0.0.22", *(f"10.5.0.{i}" for i in range(1, 40)))}
    rng = random.Random(7)
    shortcuts = left = 0
    for _ in range(300):
        before_members = {g: tuple(a for a in pool if rng.random() < 0.5) for g, pool in pools.items()}
        keep = 1.0 if rng.random() < 0.5 else 0.8  # half of the changes only add members
        after_members = {g: tuple(a for a in pool if rng.random() < 0.3 or (a in before_members[g]
                                                                              and rng.random() < keep))
                         for g, pool in pools.items()}
        before = web_view(*WEB_RULES, groups=(WEB, DEFAULT), members=before_members)
        after = web_view(*WEB_RULES, groups=(WEB, DEFAULT), members=after_members)
        if rng.random() < 0.2:  # an address group named by nobody's rule, and one named as WEB is
            after = replace(after, address_groups=(AddressGroup(WEB, ("10.7.0.0/24",)),))
        whole = fc._deletes(before, after, ZONES)  # noqa: SLF001 - the computation the shortcut skips
        grew = all(set(a) <= set(after_members[g]) for g, a in before_members.items())
        assert fc._only_grew(before, after) == grew  # noqa: SLF001
        assert conntrack_deletes(before, after, ZONES) == whole
        if grew:
            shortcuts += 1
            assert whole == ()
        else:
            left += bool(whole)  # a member left: mostly something to delete (unless still allowed)
    assert 100 < shortcuts < 250 and left > 50
    # the ports or groups differ: never the shortcut
    assert not fc._only_grew(BEFORE, without("w1"))  # noqa: SLF001
    assert not fc._only_grew(BEFORE, replace(BEFORE, ports=BEFORE.ports[:1]))  # noqa: SLF001
