"""Security group rules as Neutron validates them: pure functions, no I/O.

Input converters (what the API applies to one attribute) and ``validate`` (the checks across
attributes, in Neutron's order) raise the typed errors of ``baryon.service.errors``, with
neutron-lib's names and messages. ``key`` says when two rules are the same rule (409
``SecurityGroupRuleExists``): what a firewall would make of them, so ``tcp`` and ``6``,
``icmp`` and ``ipv6-icmp`` on IPv6, no prefix and ``0.0.0.0/0``, ``10.0.0.5/24`` and
``10.0.0.0/24`` all compare equal. A rule has one remote at most: a prefix, a remote group or a
remote address group (Neutron's ``SecurityGroupRemoteGroupAndRemoteIpPrefix``, then
``SecurityGroupMultipleRemoteEntites``).

Contract of a normalised rule (``validate``'s output): ``protocol`` is a lower-case name of
``PROTOCOLS`` or a decimal number 0-255 as a string, or None (any); IPv6 ICMP is spelt
``ipv6-icmp`` (or ``58``); ``remote_ip_prefix`` carries a prefix length and keeps the host bits
it was given (``normalized_cidr`` is its network), as Neutron stores it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from baryon.service import errors

# neutron-lib's IP_PROTOCOL_MAP: the names a rule's protocol may be given by.
PROTOCOLS: dict[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0,
    "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6,
    "udp": 17, "udplite": 136, "vrrp": 112,
}
ETHERTYPES = ("IPv4", "IPv6")
DIRECTIONS = ("ingress", "egress")

# Protocols whose rules may carry a port range (neutron's SG_PORT_PROTO_NUMS).
PORT_PROTOCOLS = {33: "dccp", 132: "sctp", 6: "tcp", 17: "udp", 136: "udplite"}
ICMP_PROTOCOLS = frozenset({1, 58})
# Protocols that only exist over IPv6: refused on an IPv4 rule.
IPV6_ONLY = frozenset({"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
                       "41", "44", "58", "59", "60", "43"})
# On an IPv6 rule these mean IPv6 ICMP and are stored as such (neutron's legacy spellings).
LEGACY_IPV6_ICMP = frozenset({"icmp", "icmpv6"})
PORT_MAX = 65535
ANY_PREFIXES = frozenset({"0.0.0.0/0", "::/0"})


def _supported() -> str:
    return str([None, *PROTOCOLS])


# ---------------------------------------------------------------- converters (one attribute)


def convert_protocol(value: Any) -> str | None:
    """A name (any case) of ``PROTOCOLS``, or a number 0-255 (int or digits), or None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise errors.SecurityGroupRuleInvalidProtocol(protocol=value, values=_supported())
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit() and value.isascii()):
        number = int(value)
        if 0 <= number <= 255:
            return str(number)
        raise errors.SecurityGroupRuleInvalidProtocol(protocol=value, values=_supported())
    if isinstance(value, str) and value.lower() in PROTOCOLS:
        return value.lower()
    raise errors.SecurityGroupRuleInvalidProtocol(protocol=value, values=_supported())


def convert_port(value: Any) -> int | None:
    """A port, an ICMP type or code: an integer 0-65535 (int or digits), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise errors.SecurityGroupInvalidPortValue(port=value)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise errors.SecurityGroupInvalidPortValue(port=value) from None
    if not 0 <= number <= PORT_MAX:
        raise errors.SecurityGroupInvalidPortValue(port=value)
    return number


def convert_ethertype(value: Any) -> str:
    """``IPv4``/``IPv6`` in any case."""
    if isinstance(value, str):
        for ethertype in ETHERTYPES:
            if ethertype.lower() == value.lower():
                return ethertype
    raise errors.SecurityGroupRuleInvalidEtherType(ethertype=value, values=str(list(ETHERTYPES)))


def convert_prefix(value: Any) -> str | None:
    """An address or a prefix; a bare address gets its full length (``10.0.0.1`` ->
    ``10.0.0.1/32``), host bits are kept (``10.0.0.5/24`` stays), IPv6 is compressed."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "%" in value or value != value.strip():
        raise errors.InvalidCIDR(input=value)
    try:
        return str(ipaddress.ip_interface(value))
    except ValueError:
        raise errors.InvalidCIDR(input=value) from None


def normalized_cidr(prefix: str | None) -> str | None:
    """The network a prefix stands for (``10.0.0.5/24`` -> ``10.0.0.0/24``)."""
    if prefix is None:
        return None
    return str(ipaddress.ip_interface(prefix).network)


def protocol_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    return PROTOCOLS[protocol] if protocol in PROTOCOLS else int(protocol)


# ---------------------------------------------------------------- validation (across attributes)


def _canonical_ipv6_icmp(rule: dict) -> None:
    if rule.get("ethertype") == "IPv6":
        if rule.get("protocol") in LEGACY_IPV6_ICMP:
            rule["protocol"] = "ipv6-icmp"
        elif rule.get("protocol") == "1":
            rule["protocol"] = "58"


def _check_ports(rule: dict) -> None:
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if low is None and high is None:
        return
    if rule.get("protocol") is None:
        raise errors.SecurityGroupProtocolRequiredWithPorts()
    number = protocol_number(rule["protocol"])
    if number in PORT_PROTOCOLS:
        if low == 0 or high == 0:
            raise errors.SecurityGroupInvalidPortValue(port=0)
        if low is None or high is None or low > high:
            raise errors.SecurityGroupInvalidPortRange()
    elif number in ICMP_PROTOCOLS:
        for attr, field, value in (("port_range_min", "type", low), ("port_range_max", "code", high)):
            if value is not None and not 0 <= value <= 255:
                raise errors.SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=value)
        if low is None:
            raise errors.SecurityGroupMissingIcmpType(value=high)
    else:
        raise errors.SecurityGroupInvalidProtocolForPort(
            protocol=number, valid_port_protocols=", ".join(sorted(p.upper() for p in PORT_PROTOCOLS.values())))


def _check_prefix(rule: dict) -> None:
    prefix = rule.get("remote_ip_prefix")
    if prefix is None:
        return
    version = ipaddress.ip_interface(prefix).version
    if rule["ethertype"] != f"IPv{version}":
        raise errors.SecurityGroupRuleParameterConflict(ethertype=rule["ethertype"], cidr=prefix)


def validate(attrs: dict) -> dict:
    """The rule with Neutron's defaults and canonical spellings, or the first problem Neutron
    would report. ``attrs`` hold converted attributes (``direction`` required)."""
    rule = {
        "direction": attrs["direction"],
        "ethertype": attrs.get("ethertype", "IPv4"),
        "protocol": attrs.get("protocol"),
        "port_range_min": attrs.get("port_range_min"),
        "port_range_max": attrs.get("port_range_max"),
        "remote_ip_prefix": attrs.get("remote_ip_prefix"),
        "remote_group_id": attrs.get("remote_group_id"),
        "remote_address_group_id": attrs.get("remote_address_group_id"),
        "security_group_id": attrs.get("security_group_id"),
    }
    _canonical_ipv6_icmp(rule)
    _check_ports(rule)
    _check_prefix(rule)
    if rule["ethertype"] == "IPv4" and rule["protocol"] in IPV6_ONLY:
        raise errors.SecurityGroupEthertypeConflictWithProtocol(ethertype="IPv4", protocol=rule["protocol"])
    if rule["remote_ip_prefix"] is not None and rule["remote_group_id"] is not None:
        raise errors.SecurityGroupRemoteGroupAndRemoteIpPrefix()
    if rule["remote_address_group_id"] is not None and (rule["remote_ip_prefix"] is not None
                                                        or rule["remote_group_id"] is not None):
        raise errors.SecurityGroupMultipleRemoteEntites()
    return rule


def key(rule: dict) -> tuple:
    """What makes two rules the same rule (within one group)."""
    prefix = normalized_cidr(rule.get("remote_ip_prefix"))
    return (
        rule["security_group_id"], rule["direction"], rule["ethertype"],
        protocol_number(rule.get("protocol")), rule.get("port_range_min"), rule.get("port_range_max"),
        rule.get("remote_group_id"), None if prefix in ANY_PREFIXES else prefix,
        rule.get("remote_address_group_id"),
    )
