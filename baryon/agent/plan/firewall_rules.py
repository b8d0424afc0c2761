"""Security group rules as iptables matches, written as ``iptables-save`` prints them back (pure).

The hybrid firewall's planner (``baryon.agent.plan.firewall``) renders each rule of a port's
groups through this module; its conntrack planning compares rules in the normalised form
defined here. Nothing here does I/O.

- ``normalize(rule) -> SgMatch | None``: the rule in canonical form (family, direction, protocol
  as iptables prints it, port range or ICMP type/code, remote network or remote group), or None
  for a rule that no iptables rule can express (it would make the whole ``iptables-restore``
  fail, so it is left out rather than written).
- ``match_rule(match) -> str``: the rule's text, exactly as Neutron's
  ``IptablesFirewallDriver._convert_sg_rule_to_iptables_args`` builds it with ipset enabled,
  and in the form ``iptables-save`` 1.8.9 prints it (so that rendered and observed chains compare
  equal): ``[-s|-d PREFIX] [-p PROTO [-m MODULE]] [PORTS|ICMP TYPE] [-m set --match-set NAME
  src|dst] -j RETURN``.
- ``remote_members(view)``: the addresses behind each remote group or remote address group.
- ``set_name(group_id, family)``: Neutron's ipset name, ``NIPv4``/``NIPv6`` + the group id, cut
  to 29 characters (ipset's 31 less Neutron's swap suffix ``-n``).
- ``is_trusted(port)``, ``is_filtered(port)``, ``group_key(port)``, ``port_matches(port, groups)``
  (its groups' rules normalised, in Neutron's order, per family and direction) and
  ``port_stateful(port, groups)``: a port as both planners (rules, conntrack) see it.
- ``addresses(texts, family)``, ``network(text)``, ``link_local(mac)``: address helpers.
- ``set_members(addresses, family)``: a group's addresses of that family as ``ipset save``
  prints them back (a host without its full-length prefix, a network with its host bits cleared,
  a ``/0`` as its two halves, which ``hash:net`` cannot hold otherwise), sorted as text (as the
  driver's ``baryon.agent.drivers.ipset.parse_save`` sorts what it observes).

Protocols (Neutron's ``_iptables_protocol_name`` and ``IPTABLES_PROTOCOL_NAME_MAP``): a name
or a number is turned into its number, then into the name ``iptables-save`` prints for that
number (``6`` -> ``tcp``, ``pgm`` -> ``113``, ``ipv6-encap`` -> ``ipv6``, ``icmpv6`` ->
``ipv6-icmp``); protocol 0 (``0``, ``ip``, ``hopopt``), ``any`` and None mean any protocol and
write no ``-p``. On an IPv6 rule ``icmp`` (and ``1``) means ICMPv6, as Neutron's legacy spelling.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from baryon.model.host import HostView, Port, Rule, SecurityGroup

IPV4, IPV6 = "ipv4", "ipv6"
INGRESS, EGRESS = "ingress", "egress"
ETHERTYPE_FAMILY = {"IPv4": IPV4, "IPv6": IPV6}
SET_PREFIX = {IPV4: "NIPv4", IPV6: "NIPv6"}
SET_NAME_LEN = 29  # Neutron's IPSET_NAME_MAX_LENGTH: 31 - len("-n")
SET_DIRECTION = {INGRESS: "src", EGRESS: "dst"}  # the remote end of the packet
PREFIX_OPTION = {INGRESS: "-s", EGRESS: "-d"}
ICMP_ANY_TYPE = 255  # iptables prints ICMP (v4) type 255 as "any", whatever the code
MAX_PORT = 65535
MAX_ICMP = 255
IPV6_LLA_PREFIX = ipaddress.IPv6Network("fe80::/64")

# Names a rule's protocol may be given by (neutron-lib's IP_PROTOCOL_MAP).
PROTOCOL_NUMBERS: dict[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0,
    "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6,
    "udp": 17, "udplite": 136, "vrrp": 112,
}
# NOTE: what iptables-save / ip6tables-save 1.8.9 print for ``-p N`` on this machine (measured
# for 1..255 in a throwaway namespace; identical for both families). Numbers not listed print as
# themselves. It is neutron-lib's IPTABLES_PROTOCOL_NAME_MAP plus 143 "ethernet" (newer
# /etc/protocols): iptables names a protocol through /etc/protocols, so a host with another
# file prints other names and the driver would rewrite those chains on every apply.
IPTABLES_PROTOCOL_NAMES: dict[int, str] = {
    1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 5: "st", 6: "tcp", 8: "egp", 9: "igp", 12: "pup",
    17: "udp", 20: "hmp", 22: "xns-idp", 27: "rdp", 29: "iso-tp4", 33: "dccp", 36: "xtp", 37: "ddp",
    38: "idpr-cmtp", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag", 45: "idrp", 46: "rsvp", 47: "gre",
    50: "esp", 51: "ah", 57: "skip", 58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts", 73: "rspf",
    81: "vmtp", 88: "eigrp", 89: "ospf", 93: "ax.25", 94: "ipip", 97: "etherip", 98: "encap", 103: "pim",
    108: "ipcomp", 112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp", 133: "fc", 134: "mobility-header",
    136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip", 140: "shim6", 141: "wesp", 142: "rohc",
    143: "ethernet",
}
_PRINTED_NUMBERS = {name: number for number, name in IPTABLES_PROTOCOL_NAMES.items()}
ICMP, ICMPV6 = "icmp", "ipv6-icmp"
# The match module iptables adds after ``-p`` when ports are given (IPTABLES_PROTOCOL_MAP).
PROTOCOL_MODULES = {"dccp": "dccp", ICMP: "icmp", ICMPV6: "icmp6", "sctp": "sctp", "tcp": "tcp", "udp": "udp"}
# Protocols with ports (SG_PORT_PROTO_NAMES); udplite has no match of its own: multiport only.
PORT_PROTOCOLS = frozenset({"dccp", "sctp", "tcp", "udp", "udplite"})
MULTIPORT_ONLY = frozenset({"udplite"})
# conntrack-tools' own protocol names; any other protocol is given to ``conntrack -p`` by number.
CONNTRACK_PROTOCOLS = {"tcp": "tcp", "udp": "udp", "udplite": "udplite", "sctp": "sctp", "dccp": "dccp",
                       ICMP: "icmp", ICMPV6: "icmpv6", "gre": "gre"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


TRUSTED_OWNER_PREFIX = "network:"  # neutron_lib.utils.net.is_port_trusted


@dataclass(frozen=True)
class SgMatch:
    """A security group rule in canonical form: two rules that iptables would print the same way
    are equal. ``low``/``high``: the port range (``high`` set whenever ``low`` is), or the ICMP
    type and code (code None: any); ``remote_prefix``: a network, never a ``/0``."""

    family: str  # ipv4 | ipv6
    direction: str  # ingress | egress
    protocol: str | None  # as iptables-save prints it; None: any
    low: int | None = None
    high: int | None = None
    remote_prefix: str | None = None
    remote_group: str | None = None  # a remote security group's or address group's id: its set's


Matches = dict[tuple[str, str], tuple[SgMatch, ...]]  # (family, direction) -> the rules, in order


# ---------------------------------------------------------------- normalising a rule


def normalize(rule: Rule) -> SgMatch | None:
    """``rule`` as an ``SgMatch``; None when iptables cannot express it (unknown ethertype or
    direction, an ICMPv6 rule on IPv4, a prefix of the other family, ports out of range)."""
    family = ETHERTYPE_FAMILY.get(rule.ethertype)
    if family is None or rule.direction not in (INGRESS, EGRESS):
        return None
    known, protocol = iptables_protocol(rule.protocol, family)
    if not known:
        return None
    ports = _ports(protocol, family, rule.port_range_min, rule.port_range_max)
    if ports is None:
        return None
    prefix: str | None = None
    remote = rule.remote_group_id or rule.remote_address_group_id
    if remote is None and rule.remote_ip_prefix is not None:
        net = network(rule.remote_ip_prefix)
        if net is None or _family(net) != family:
            return None
        prefix = None if net.prefixlen == 0 else str(net)
    return SgMatch(family, rule.direction, protocol, *ports, remote_prefix=prefix, remote_group=remote)


def iptables_protocol(protocol: str | None, family: str) -> tuple[bool, str | None]:
    """(usable, the name iptables-save prints or None for any protocol)."""
    if protocol is None:
        return True, None
    text = protocol.strip().lower()
    if text in ("", "any"):
        return True, None
    if text.isdigit():
        number = int(text)
    elif text in PROTOCOL_NUMBERS:
        number = PROTOCOL_NUMBERS[text]
    else:
        # NOTE: a name neither Neutron's API nor /etc/protocols knows: iptables-restore would
        # refuse it and take the whole restore down with it.
        return False, None
    if family == IPV6 and number == PROTOCOL_NUMBERS[ICMP]:
        number = PROTOCOL_NUMBERS[ICMPV6]  # Neutron's legacy IPv6 spelling
    if number > 255 or (family == IPV4 and number == PROTOCOL_NUMBERS[ICMPV6]):
        return False, None  # ICMPv6 never matches IPv4 and -m icmp6 is refused there
    if number == 0:
        return True, None  # "protocol zero is a special case and requires no '-p'"
    return True, IPTABLES_PROTOCOL_NAMES.get(number, str(number))


def _ports(protocol: str | None, family: str, low: int | None,
           high: int | None) -> tuple[int | None, int | None] | None:
    """(low, high) kept for this protocol, (None, None) when it has no ports, None if invalid."""
    if low is None or protocol is None:
        return None, None
    if protocol in (ICMP, ICMPV6):
        if not 0 <= low <= MAX_ICMP or (high is not None and not 0 <= high <= MAX_ICMP):
            return None
        if family == IPV4 and low == ICMP_ANY_TYPE:
            return low, None  # printed "any": the code is dropped
        return low, high
    if protocol in PORT_PROTOCOLS:
        high = low if high is None else high
        if not 0 <= low <= high <= MAX_PORT:
            return None
        return low, high
    return None, None  # Neutron writes no port match for other protocols


# ---------------------------------------------------------------- rendering a rule


def match_rule(match: SgMatch) -> str:
    """The rule's text in the port's chain, as iptables-save prints it."""
    parts: list[str] = []
    if match.remote_prefix is not None:
        parts += [PREFIX_OPTION[match.direction], match.remote_prefix]
    if match.protocol is not None:
        parts += ["-p", match.protocol]
        if match.low is not None and match.protocol in PROTOCOL_MODULES:
            parts += ["-m", PROTOCOL_MODULES[match.protocol]]
    parts += _port_args(match)
    if match.remote_group is not None:
        parts += ["-m", "set", "--match-set", set_name(match.remote_group, match.family),
                  SET_DIRECTION[match.direction]]
    parts += ["-j", "RETURN"]
    return " ".join(parts)


def _port_args(match: SgMatch) -> list[str]:
    if match.low is None:
        return []
    if match.protocol in (ICMP, ICMPV6):
        option = "--icmp-type" if match.protocol == ICMP else "--icmpv6-type"
        if match.protocol == ICMP and match.low == ICMP_ANY_TYPE:
            return [option, "any"]
        value = str(match.low) if match.high is None else f"{match.low}/{match.high}"
        return [option, value]
    if match.low == match.high:
        if match.protocol in MULTIPORT_ONLY:
            return ["-m", "multiport", "--dports", str(match.low)]
        return ["--dport", str(match.low)]
    return ["-m", "multiport", "--dports", f"{match.low}:{match.high}"]


def conntrack_protocol(protocol: str | None) -> str | None:
    """The protocol as ``conntrack -p`` takes it: its own name when it has one, else the number."""
    if protocol is None:
        return None
    if protocol in CONNTRACK_PROTOCOLS:
        return CONNTRACK_PROTOCOLS[protocol]
    return str(_PRINTED_NUMBERS.get(protocol, protocol))


# ---------------------------------------------------------------- a port's groups


def is_trusted(port: Port) -> bool:
    """Neutron's ``is_port_trusted``: a ``network:*`` port (DHCP, router) is not filtered."""
    return port.device_owner.startswith(TRUSTED_OWNER_PREFIX)


def is_filtered(port: Port) -> bool:
    return port.port_security_enabled and not is_trusted(port)


def group_key(port: Port) -> tuple[str, ...]:
    """The port's groups, sorted: ports with the same key have the same matches."""
    return tuple(sorted(port.security_groups))


def port_matches(port: Port, groups: Mapping[str, SecurityGroup]) -> Matches:
    """The port's groups' rules in Neutron's order (its groups by id, each group's rules by id),
    normalised, per (family, direction); rules iptables cannot express are left out."""
    found: dict[tuple[str, str], list[SgMatch]] = {(f, d): [] for f in (IPV4, IPV6) for d in (INGRESS, EGRESS)}
    for group_id in group_key(port):
        group = groups.get(group_id)
        for rule in sorted(group.rules, key=lambda r: r.id) if group else ():
            match = normalize(rule)
            if match is not None:
                found[(match.family, match.direction)].append(match)
    return {key: tuple(matches) for key, matches in found.items()}


def port_stateful(port: Port, groups: Mapping[str, SecurityGroup]) -> bool:
    """Neutron's ``_are_sg_rules_stateful``: the port's first group decides, when it has rules.
    NOTE: Neutron's API refuses a port with both stateful and stateless groups."""
    first = groups.get(min(port.security_groups)) if port.security_groups else None
    return first.stateful if first is not None and first.rules else True


# ---------------------------------------------------------------- sets and addresses


def remote_members(view: HostView) -> dict[str, set[str]]:
    """The addresses behind each id a rule's ``remote_group`` may name: a remote security group's
    members (fixed IPs, allowed address pairs), an address group's CIDRs. NOTE: one namespace, as
    Neutron's ipsets: the ids are UUIDs of two tables, and a set is named by the id alone."""
    members: dict[str, set[str]] = {}
    for entry in view.group_members:
        members.setdefault(entry.security_group_id, set()).update(entry.addresses)
    for group in view.address_groups:
        members.setdefault(group.id, set()).update(group.addresses)
    return members


def set_name(group_id: str, family: str) -> str:
    return (SET_PREFIX[family] + group_id)[:SET_NAME_LEN]


def set_members(addresses: Iterable[str], family: str) -> tuple[str, ...]:
    """The addresses of ``family`` as ipset prints them back, sorted, without duplicates."""
    printed: set[str] = set()
    for address in addresses:
        host = printed_host(address)
        if host is not None:
            if host[0] == family:
                printed.add(host[1])
            continue
        net = network(address)
        if net is None or _family(net) != family:
            continue
        if net.prefixlen == 0:
            printed.update(set_member(half) for half in net.subnets(prefixlen_diff=1))  # hash:net refuses /0
        else:
            printed.add(set_member(net))
    return tuple(sorted(printed))


def printed_host(text: str) -> tuple[str, str] | None:
    """(family, the address as ``set_member`` prints it) for a plain address in its usual form;
    None for anything else (a network, a scope, an IPv4-mapped IPv6 address...), which
    ``network`` parses.

    NOTE: ``socket.inet_pton``/``inet_ntop`` print a host as ``ipaddress`` does (RFC 5952 for
    IPv6) except IPv6 addresses holding an IPv4 one (printed dotted), left to ``ipaddress``: ~50
    times faster, and a group's members are parsed on every change of a group of 1,000."""
    text = text.strip()
    if "/" in text or "%" in text:
        return None
    for family, af in ((IPV4, socket.AF_INET), (IPV6, socket.AF_INET6)):
        try:
            printed = socket.inet_ntop(af, socket.inet_pton(af, text))
        except (OSError, ValueError):
            continue
        return (family, printed) if family == IPV4 or "." not in printed else None
    return None


def set_member(net: Network) -> str:
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def network(text: str) -> Network | None:
    """An address (full-length prefix) or a prefix (host bits cleared); None if unparsable."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def link_local(mac: str) -> ipaddress.IPv6Address | None:
    """The EUI-64 address of ``mac`` in fe80::/64 (Neutron's ``get_ipv6_addr_by_EUI64``)."""
    try:
        octets = [int(part, 16) for part in mac.split(":")]
    except ValueError:
        return None
    if len(octets) != 6 or not all(0 <= o <= 255 for o in octets):
        return None
    eui = [octets[0] ^ 0x02, *octets[1:3], 0xFF, 0xFE, *octets[3:]]
    return IPV6_LLA_PREFIX.network_address + int.from_bytes(bytes(eui), "big")


def addresses(texts: Iterable[str], family: str) -> list[str]:
    """The addresses of ``family`` among ``texts``, compressed; unparsable ones skipped."""
    version = 4 if family == IPV4 else 6
    found = []
    for text in texts:
        try:
            address = ipaddress.ip_address(text.strip())
        except ValueError:
            continue
        if address.version == version:
            found.append(str(address))
    return found


def _family(net: Network) -> str:
    return IPV4 if net.version == 4 else IPV6
