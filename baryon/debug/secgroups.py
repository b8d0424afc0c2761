"""Which security group rule lets a packet through a port's firewall (pure).

The hybrid firewall (``baryon.agent.plan.firewall``) returns from a port's ``i``/``o`` chain on
the first rule of its groups that matches a new connection, and drops it otherwise
(``sg-fallback``). ``evaluate`` answers the same question from the API's rules, so that a trace
can name the rule by id; ``baryon.debug.trace`` then checks that the rule's iptables text
(``firewall_rules.match_rule``) is really in the chain on the node.

- ``Packet``: IPv4 or IPv6 source and destination, protocol (``icmp``/``tcp``/``udp`` or a
  number), destination port or ICMP type/code.
- ``evaluate(rules, direction, packet, members) -> Decision``: ``rules`` are the API bodies of the
  port's groups' rules (any order: they are taken as the agent writes them, by group id then rule
  id); ``direction`` ``ingress`` (the packet enters the VM: the remote end is its source) or
  ``egress`` (it leaves the VM: the remote end is its destination); ``members`` maps a remote
  group id to its members' addresses or networks (fixed IPs and allowed address pairs).
  A rule that iptables cannot express (``firewall_rules.normalize`` gives None) never matches, as
  the agent never writes it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from baryon.agent.plan.firewall_rules import (EGRESS, ICMP, ICMP_ANY_TYPE, ICMPV6, INGRESS, IPV4, IPV6,
                                              PORT_PROTOCOLS, SgMatch, iptables_protocol, match_rule, network,
                                              normalize)
from baryon.model.host import Rule


@dataclass(frozen=True)
class Packet:
    src: str
    dst: str
    protocol: str = "icmp"  # a name or a number
    dport: int | None = None  # tcp/udp... destination port
    icmp_type: int | None = 8  # echo request
    icmp_code: int | None = 0

    @property
    def family(self) -> str:
        return IPV4 if ipaddress.ip_address(self.src).version == 4 else IPV6

    @property
    def iptables_protocol(self) -> str | None:
        return iptables_protocol(self.protocol, self.family)[1]

    def describe(self) -> str:
        """``tcp/22``, ``udp/53``, ``icmp`` (echo request), ``icmp type 3``..."""
        proto = self.iptables_protocol or "any protocol"
        if proto in PORT_PROTOCOLS:
            return f"{proto}/{self.dport}" if self.dport is not None else proto
        if proto in (ICMP, ICMPV6) and self.icmp_type not in (None, 8, 128):
            return f"{proto} type {self.icmp_type}"
        return proto


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: dict | None  # the API body of the first rule that allows the packet
    iptables: str | None  # that rule as the port's chain holds it (``-p icmp -j RETURN``)
    groups: tuple[str, ...]  # the groups whose rules were looked at, sorted
    direction: str
    reason: str


def as_rule(body: Mapping) -> Rule:
    return Rule(id=body["id"], direction=body["direction"], ethertype=body.get("ethertype") or "IPv4",
                protocol=None if body.get("protocol") is None else str(body["protocol"]),
                port_range_min=body.get("port_range_min"), port_range_max=body.get("port_range_max"),
                remote_ip_prefix=body.get("remote_ip_prefix"), remote_group_id=body.get("remote_group_id"),
                remote_address_group_id=body.get("remote_address_group_id"))


def evaluate(rules: Iterable[Mapping], direction: str, packet: Packet,
             members: Mapping[str, Iterable[str]], groups: Iterable[str] = ()) -> Decision:
    """The first rule of ``rules`` that allows ``packet`` in ``direction`` (see the module docstring)."""
    ordered = sorted(rules, key=lambda r: (r.get("security_group_id") or "", r["id"]))
    names = tuple(sorted(set(groups) | {r["security_group_id"] for r in ordered if r.get("security_group_id")}))
    remote = packet.src if direction == INGRESS else packet.dst
    for body in ordered:
        match = normalize(as_rule(body))
        if match is None or match.direction != direction:
            continue
        if matches(match, packet, remote, members):
            return Decision(True, dict(body), match_rule(match), names, direction,
                            f"{direction} rule {body['id']} of group {body.get('security_group_id')} allows "
                            f"{packet.describe()} {'from' if direction == INGRESS else 'to'} {remote}")
    where = "from" if direction == INGRESS else "to"
    reason = (f"no {direction} rule of group{'s' if len(names) != 1 else ''} {', '.join(names) or '(none)'} "
              f"allows {packet.describe()} {where} {remote}")
    return Decision(False, None, None, names, direction, reason)


def matches(match: SgMatch, packet: Packet, remote: str, members: Mapping[str, Iterable[str]]) -> bool:
    if match.family != packet.family:
        return False
    proto = packet.iptables_protocol
    if match.protocol is not None and match.protocol != proto:
        return False
    if not _ports_match(match, packet):
        return False
    address = ipaddress.ip_address(remote)
    if match.remote_prefix is not None:
        net = network(match.remote_prefix)
        if net is None or address not in net:
            return False
    if match.remote_group is not None:
        return any(_contains(text, address) for text in members.get(match.remote_group, ()))
    return True


def _ports_match(match: SgMatch, packet: Packet) -> bool:
    if match.low is None:
        return True
    if match.protocol in (ICMP, ICMPV6):
        if match.protocol == ICMP and match.low == ICMP_ANY_TYPE:
            return True
        if packet.icmp_type != match.low:
            return False
        return match.high is None or packet.icmp_code == match.high
    if packet.dport is None:
        return False
    return match.low <= packet.dport <= (match.high if match.high is not None else match.low)


def _contains(text: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    net = network(text)
    return net is not None and net.version == address.version and address in net


def describe_rule(body: Mapping) -> str:
    """A rule the way ``openstack security group rule list`` reads: ``ingress IPv4 tcp 22:22 from 0.0.0.0/0``."""
    proto = body.get("protocol") or "any"
    low, high = body.get("port_range_min"), body.get("port_range_max")
    ports = "" if low is None else f" {low}:{high if high is not None else low}"
    if proto in ("icmp", "1", "ipv6-icmp", "icmpv6", "58") and low is not None:
        ports = f" type {low}" + (f" code {high}" if high is not None else "")
    where = "from" if body["direction"] == INGRESS else "to"
    remote = body.get("remote_ip_prefix") or (f"group {body['remote_group_id']}" if body.get("remote_group_id")
                                               else f"address group {body['remote_address_group_id']}"
                                               if body.get("remote_address_group_id") else "any")
    return f"{body['direction']} {body.get('ethertype') or 'IPv4'} {proto}{ports} {where} {remote}"


__all__ = ["EGRESS", "INGRESS", "Decision", "Packet", "as_rule", "describe_rule", "evaluate", "matches"]
