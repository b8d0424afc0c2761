"""The hybrid iptables firewall's planner: host view + conntrack zones -> ``Ruleset`` (pure).

Neutron's ``OVSHybridIptablesFirewallDriver`` layout, chain for chain and rule for rule, with
ipset enabled, written as ``iptables-save``/``ip6tables-save`` 1.8.9 print it back, so that the
driver (``baryon.agent.drivers.netfilter``) can compare desired with observed text and rewrite
only the chains that differ. No I/O, no clock, no globals: equal inputs give equal rulesets,
whatever the order of the tuples inside them.

``render(view, zones)``: ``zones`` maps a network id to its conntrack zone; a port whose network
has none is not wired on this node and gets nothing. Ports fall in three kinds, as in Neutron:

- trusted: ``device_owner`` ``network:*`` (DHCP, router ports: Neutron's server leaves them out
  of the security group info and the agent calls ``process_trusted_ports``): FORWARD ACCEPT;
- unfiltered: ``port_security_enabled`` false: FORWARD and INPUT ACCEPT, no chains, no zone;
- filtered: everything else, with or without groups (no group: nothing is allowed in, the VM may
  still send DHCP requests and ICMPv6, anti-spoofing applies).

For each family ("ipv4", "ipv6"), in tables "filter" and "raw" (``CHAIN_PREFIX`` = ``neutron-openvswi-``;
``tap``/``qvb`` + 11 characters of the port id; ``i``/``o``/``s`` + 10 of them):

- hooks: filter ``INPUT``/``FORWARD``/``OUTPUT`` -> ``-j neutron-openvswi-<same>``, raw
  ``PREROUTING``/``OUTPUT`` likewise (Neutron wraps exactly these built-in chains), in the order
  iptables-save prints them;
- ``FORWARD``: per filtered port (by id) ``--physdev-out tap`` then ``--physdev-in tap`` ->
  ``sg-chain``; then per trusted port, then per unfiltered port, the ACCEPT twins;
- ``INPUT``: per filtered port ``--physdev-in tap`` -> ``o<id>``; per unfiltered port ACCEPT;
- ``sg-chain``: per filtered port physdev-out -> ``i<id>``, physdev-in -> ``o<id>``; ``-j ACCEPT``;
- ``i<id>`` (to the VM): [IPv6: MLD query, NS, NA in], RELATED,ESTABLISHED, [IPv6 with a v6
  address: RA in], DHCP replies to each fixed IP and to broadcast (DHCPv6: to each v6 address and
  fe80::/64), the groups' ingress rules, INVALID drop, ``sg-fallback``;
- ``o<id>`` (from the VM): DHCP discover from 0.0.0.0 / ICMPv6 DAD from ``::``, ``-j s<id>``,
  DHCP client (and for IPv6: RA dropped, ICMPv6 allowed), DHCP server replies dropped,
  RELATED,ESTABLISHED, the groups' egress rules, INVALID drop, ``sg-fallback``;
- ``s<id>``: allowed address pairs then fixed IPs, ``-s IP -m mac --mac-source MAC -j RETURN``
  (IPv6: plus the MAC's EUI-64 link-local address), ``-j DROP``;
- ``sg-fallback``: ``-j DROP``; ``OUTPUT`` and ``local``: empty, as Neutron's;
- raw ``PREROUTING``: per filtered port ``--physdev-in qvb``, ``-i qvb``, ``--physdev-in tap``
  -> ``CT --zone <zone of its network>`` (a stateless port: ``CT --notrack``).

Sets: one per (remote group, family) that a rule of a filtered port names, even when empty, so
that a change of membership is a set update only: the rules, and their number, never depend on
the members. A remote address group is one such group: its set holds its CIDRs of the family, so
adding or removing an address changes the set and nothing else.

``render_from(view, zones, previous) -> Rendering``: the same ruleset, with what it was made of
(each port's rules under the inputs they came from, each set's members under its addresses):
given the previous ``Rendering``, only the ports whose inputs changed are rendered again. The
agent renders on every run; with 1,000 ports on a node a change costs a few milliseconds
instead of a quarter of a second, and the reused tuples make the comparison with what it last
applied, and the driver's diff, cheap.

``conntrack_deletes(before, after, zones)``: the conntrack entries a change of rules or members
no longer allows (``baryon.agent.plan.firewall_conntrack``, re-exported here).

NOTE: where Baryon departs from Neutron's layout, on purpose:
- ``neutron-filter-top`` (Neutron's unwrapped chain shared by its agents, hooked at the top of
  FORWARD and OUTPUT, that only jumps to the empty ``neutron-openvswi-local``) is left out: the
  model owns only ``CHAIN_PREFIX`` chains (the driver refuses others) and it decides no packet.
  ``neutron-openvswi-local`` is kept, empty, so that a node taken over from Neutron does not see
  Baryon try to delete a chain Neutron's ``neutron-filter-top`` still references.
- A remote group's set exists (and its rule is written) even with no member of that family;
  Neutron writes neither until a first member appears, which turns a membership change into a
  rule change. An empty set matches nothing: the packets' fate is the same.
- ``--mac-source`` is written in lower case: iptables-save 1.8.9 (nf_tables) prints it so
  (Neutron writes upper case, which legacy iptables printed).
- The sg-chain, sg-fallback and wrapped chains exist even with no port (Neutron adds sg-chain
  with its first port).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from baryon.agent.plan.firewall_conntrack import MAX_REMOTES, conntrack_deletes
from baryon.agent.plan.firewall_rules import (EGRESS, INGRESS, IPV4, IPV6, Matches, addresses, group_key, is_filtered,
                                              is_trusted, link_local, match_rule, network, port_matches, port_stateful,
                                              remote_members, set_members, set_name)
from baryon.model.firewall import CHAIN_PREFIX, FAMILIES, Ruleset
from baryon.model.host import HostView, Port

__all__ = ["MAX_REMOTES", "PortRules", "Rendering", "conntrack_deletes", "device_name", "is_filtered", "is_trusted",
           "port_chain", "render", "render_from", "wrapped"]

FILTER, RAW = "filter", "raw"
TAP, QVB = "tap", "qvb"
DEVICE_ID_LEN = 11  # Neutron's LINUX_DEV_LEN (14) - len("tap")
CHAIN_ID_LEN = 10  # Neutron's MAX_IPTABLES_CHAIN_LEN_WRAP (11) - len("i")

FORWARD, INPUT, OUTPUT, PREROUTING = "FORWARD", "INPUT", "OUTPUT", "PREROUTING"
LOCAL = "local"
SG_CHAIN = f"{CHAIN_PREFIX}sg-chain"
SG_FALLBACK = f"{CHAIN_PREFIX}sg-fallback"
# Neutron's wrapped built-in chains, in the order iptables-save prints the built-ins
WRAPPED = {FILTER: (INPUT, FORWARD, OUTPUT), RAW: (PREROUTING, OUTPUT)}
INGRESS_CHAIN, EGRESS_CHAIN, SPOOF_CHAIN = "i", "o", "s"
PHYSDEV = {INGRESS: "--physdev-out", EGRESS: "--physdev-in"}  # as seen from the VM's tap

# Neutron's comments (neutron/agent/linux/iptables_comments.py), verbatim.
VM_INT_SG = "Direct traffic from the VM interface to the security group chain."
SG_TO_VM_SG = "Jump to the VM specific chain."
INPUT_TO_SG = "Direct incoming traffic from VM to the security group chain."
PAIR_ALLOW = "Allow traffic from defined IP/MAC pairs."
PAIR_DROP = "Drop traffic without an IP/MAC allow rule."
DHCP_CLIENT = "Allow DHCP client traffic."
DHCP_SPOOF = "Prevent DHCP Spoofing by VM."
UNMATCHED = "Send unmatched traffic to the fallback chain."
UNMATCH_DROP = "Default drop rule for unmatched traffic."
INVALID_DROP = ("Drop packets that appear related to an existing connection "
                "(e.g. TCP ACK/FIN) but do not have an entry in conntrack.")
ALLOW_ASSOC = "Direct packets associated with a known session to the RETURN chain."
PORT_SEC_ACCEPT = "Accept all packets when port security is disabled."
TRUSTED_ACCEPT = "Accept all packets when port is trusted."
IPV6_RA_DROP = "Drop IPv6 Router Advts from VM Instance."
IPV6_ICMP_ALLOW = "Allow IPv6 ICMP traffic."

ICMPV6_ALLOWED_INGRESS_TYPES = (130, 135, 136)  # MLD query, neighbour solicitation, advertisement
ICMPV6_ALLOWED_UNSPEC_ADDR_TYPES = (131, 135, 143)  # MLD report, NS, MLDv2 report: DAD from ::
ICMPV6_TYPE_RA = 134
DHCP_PORTS = {IPV4: (67, 68), IPV6: (547, 546)}  # (server, client)
DHCP_EXTRA_DESTINATION = {IPV4: "255.255.255.255/32", IPV6: "fe80::/64"}
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

ESTABLISHED = f'-m state --state RELATED,ESTABLISHED -m comment --comment "{ALLOW_ASSOC}" -j RETURN'
INVALID = f'-m state --state INVALID -m comment --comment "{INVALID_DROP}" -j DROP'
TO_FALLBACK = f'-m comment --comment "{UNMATCHED}" -j {SG_FALLBACK}'


# ---------------------------------------------------------------- names (Neutron's)


def device_name(port_id: str, prefix: str = TAP) -> str:
    """``tap``/``qvb``/``qvo`` + the first 11 characters of the port id (Neutron's hybrid names)."""
    return prefix + port_id[:DEVICE_ID_LEN]


def port_chain(port_id: str, kind: str) -> str:
    """``neutron-openvswi-`` + ``i``/``o``/``s`` + the first 10 characters of the port id."""
    return f"{CHAIN_PREFIX}{kind}{port_id[:CHAIN_ID_LEN]}"


def wrapped(chain: str) -> str:
    return CHAIN_PREFIX + chain


# ---------------------------------------------------------------- the inputs, indexed


@dataclass(frozen=True)
class _PortPlan:
    """A filtered port as the planner sees it: its zone, its statefulness and its groups' rules
    in Neutron's order (the port's groups, each group's rules; both by id), per (family, direction)."""

    port: Port
    zone: int
    stateful: bool
    matches: Matches


@dataclass(frozen=True)
class _Host:
    filtered: tuple[_PortPlan, ...]  # by port id
    trusted: tuple[Port, ...]
    unfiltered: tuple[Port, ...]
    members: dict[str, tuple[str, ...]]  # group id (or address group id) -> addresses
    matches: dict[tuple[str, ...], Matches]  # the filtered ports' lists of groups -> their matches


def _index(view: HostView, zones: Mapping[str, int], known: Mapping[tuple[str, ...], Matches]) -> _Host:
    """The view's ports by kind. A list of groups is normalised once, and where ``known`` holds
    equal matches for it, those are used (the same object: comparing them later is immediate)."""
    groups = {g.id: g for g in view.security_groups}
    by_groups: dict[tuple[str, ...], Matches] = {}
    filtered, trusted, unfiltered = [], [], []
    for port in sorted(view.ports, key=lambda p: p.id):
        zone = zones.get(port.network_id)
        if zone is None:
            continue
        if is_trusted(port):
            trusted.append(port)
        elif not port.port_security_enabled:
            unfiltered.append(port)
        else:
            key = group_key(port)
            matches = by_groups.get(key)
            if matches is None:
                matches = port_matches(port, groups)
                if known.get(key) == matches:
                    matches = known[key]
                by_groups[key] = matches
            filtered.append(_PortPlan(port, zone, port_stateful(port, groups), matches))
    return _Host(tuple(filtered), tuple(trusted), tuple(unfiltered), _remote_addresses(view), by_groups)


def _remote_addresses(view: HostView) -> dict[str, tuple[str, ...]]:
    return {gid: tuple(sorted(addresses)) for gid, addresses in sorted(remote_members(view).items())}


# ---------------------------------------------------------------- the ruleset


FILTERED, TRUSTED, UNFILTERED = "filtered", "trusted", "unfiltered"
Members = Mapping[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]]  # (group, family) -> (addresses, members)


@dataclass(frozen=True)
class PortRules:
    """One port's share of the ruleset: its own chains (per family) and its rules in the shared
    chains, which are the same text in both families."""

    chains: dict[str, dict[str, tuple[str, ...]]]  # family -> its chains (i/o/s<id>) -> rules
    forward: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    sg_chain: tuple[str, ...] = ()
    raw: tuple[str, ...] = ()  # raw PREROUTING


@dataclass(frozen=True)
class Rendering:
    """A ruleset and what it was assembled from, for ``render_from`` to reuse: each port's rules
    under the inputs they were rendered from (kind, port, zone, statefulness, matches), each
    list of groups' matches, each set's members under the addresses they were made from; and
    what its chains and hooks were made from (``source``: the view's ports and groups, the zones)."""

    ruleset: Ruleset
    ports: Mapping[str, tuple[tuple, PortRules]] = field(default_factory=dict)  # port id -> (inputs, rules)
    matches: Mapping[tuple[str, ...], Matches] = field(default_factory=dict)
    members: Members = field(default_factory=dict)
    source: tuple = ()


_NOTHING = Rendering(Ruleset())


def render(view: HostView, zones: Mapping[str, int]) -> Ruleset:
    """This node's desired netfilter state for ``view`` (see the module docstring)."""
    return render_from(view, zones, None).ruleset


def render_from(view: HostView, zones: Mapping[str, int], previous: Rendering | None) -> Rendering:
    """``render(view, zones)`` with what it was made of; the rules of a port whose inputs equal
    those it had in ``previous``, and the members of a set whose addresses do, are taken from
    ``previous`` rather than rendered again. The ruleset is equal to ``render(view, zones)``
    whatever ``previous`` is (an unrelated one only saves nothing).

    NOTE: the agent renders on every run, and a change concerns a few ports of the hundreds a node
    may have: re-rendering all of them was most of a change's cost at 1,000 ports (ipaddress
    parsing, string formatting). Reused rules are the same tuples, so that comparing the ruleset
    with the one last applied, and the driver's diff, find them equal by identity. When the
    view's ports and groups and the zones equal those ``previous`` was made from, its chains and
    hooks are taken whole and only the sets are made again: a change of members or of address
    groups, which needs a set swap only, costs no pass over the ports."""
    known = previous or _NOTHING
    source = (view.ports, view.security_groups, tuple(sorted(zones.items())))
    if previous is not None and previous.source == source:
        sets, members = _sets(previous.matches, _remote_addresses(view), previous.members)
        return replace(previous, ruleset=replace(previous.ruleset, sets=sets), members=members)
    host = _index(view, zones, known.matches)
    ports: dict[str, tuple[tuple, PortRules]] = {}

    def rules_of(kind: str, port: Port, plan: _PortPlan | None) -> PortRules:
        inputs = (kind, port, plan.zone, plan.stateful, plan.matches) if plan else (kind, port)
        cached = known.ports.get(port.id)
        if cached is not None and cached[0] == inputs:
            rules = cached[1]
        elif plan is not None:
            rules = _filtered_rules(plan)
        else:
            rules = _open_rules(port, trusted=kind == TRUSTED)
        ports[port.id] = (inputs, rules)
        return rules

    filtered = [rules_of(FILTERED, plan.port, plan) for plan in host.filtered]
    trusted = [rules_of(TRUSTED, port, None) for port in host.trusted]
    unfiltered = [rules_of(UNFILTERED, port, None) for port in host.unfiltered]
    shared = {
        wrapped(FORWARD): tuple(rule for rules in (*filtered, *trusted, *unfiltered) for rule in rules.forward),
        wrapped(INPUT): tuple(rule for rules in (*filtered, *unfiltered) for rule in rules.inputs),
        wrapped(OUTPUT): (),
        wrapped(LOCAL): (),
        SG_CHAIN: (*(rule for rules in filtered for rule in rules.sg_chain), "-j ACCEPT"),
        SG_FALLBACK: (f'-m comment --comment "{UNMATCH_DROP}" -j DROP',),
    }
    raw = {wrapped(OUTPUT): (), wrapped(PREROUTING): tuple(rule for rules in filtered for rule in rules.raw)}
    chains: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
    hooks: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for family in FAMILIES:
        own: dict[str, tuple[str, ...]] = {}
        for rules in filtered:
            own.update(rules.chains[family])
        own.update(shared)
        chains[(family, FILTER)] = dict(sorted(own.items()))
        chains[(family, RAW)] = dict(sorted(raw.items()))
        for table in (FILTER, RAW):
            hooks[(family, table)] = tuple((builtin, f"-j {wrapped(builtin)}") for builtin in WRAPPED[table])
    sets, members = _sets(host.matches, host.members, known.members)
    return Rendering(Ruleset(chains=chains, hooks=hooks, sets=sets), ports, host.matches, members, source)


def _filtered_rules(plan: _PortPlan) -> PortRules:
    port_id = plan.port.id
    tap = device_name(port_id)
    ingress, egress = port_chain(port_id, INGRESS_CHAIN), port_chain(port_id, EGRESS_CHAIN)
    chains: dict[str, dict[str, tuple[str, ...]]] = {}
    for family in FAMILIES:
        own: dict[str, tuple[str, ...]] = {}
        spoof = _spoof_chain(plan.port, family)
        if spoof:
            own[port_chain(port_id, SPOOF_CHAIN)] = spoof
        own[ingress] = _ingress_chain(plan, family)
        own[egress] = _egress_chain(plan, family, has_spoof_chain=bool(spoof))
        chains[family] = own
    return PortRules(
        chains,
        forward=(_physdev(PHYSDEV[INGRESS], tap, VM_INT_SG, SG_CHAIN),
                 _physdev(PHYSDEV[EGRESS], tap, VM_INT_SG, SG_CHAIN)),
        inputs=(_physdev(PHYSDEV[EGRESS], tap, INPUT_TO_SG, egress),),
        sg_chain=(_physdev(PHYSDEV[INGRESS], tap, SG_TO_VM_SG, ingress),
                  _physdev(PHYSDEV[EGRESS], tap, SG_TO_VM_SG, egress)),
        raw=_raw_rules(plan))


def _open_rules(port: Port, *, trusted: bool) -> PortRules:
    """A trusted port: FORWARD ACCEPT; an unfiltered one: FORWARD and INPUT ACCEPT."""
    tap = device_name(port.id)
    comment = TRUSTED_ACCEPT if trusted else PORT_SEC_ACCEPT
    forward = tuple(_physdev(PHYSDEV[d], tap, comment, "ACCEPT") for d in (INGRESS, EGRESS))
    inputs = () if trusted else (_physdev(PHYSDEV[EGRESS], tap, PORT_SEC_ACCEPT, "ACCEPT"),)
    return PortRules({family: {} for family in FAMILIES}, forward=forward, inputs=inputs)


def _raw_rules(plan: _PortPlan) -> tuple[str, ...]:
    """Neutron's ``_get_jump_rules``: the port's zone is set on what comes in from the qvb veth
    (matched as a bridge port and as an interface) and on what comes out of the VM's tap."""
    short = plan.port.id[4:]  # NOTE: Neutron cuts 4 characters ("tap_") of the device: here, the id
    comment, action = ((f"Set zone for {short}", f"CT --zone {plan.zone}") if plan.stateful
                       else (f"Make {short} stateless", "CT --notrack"))
    qvb, tap = device_name(plan.port.id, QVB), device_name(plan.port.id)
    return tuple(f'{match} -m comment --comment "{comment}" -j {action}'
                 for match in (f"-m physdev --physdev-in {qvb}", f"-i {qvb}", f"-m physdev --physdev-in {tap}"))


def _physdev(option: str, tap: str, comment: str, target: str) -> str:
    return f'-m physdev {option} {tap} --physdev-is-bridged -m comment --comment "{comment}" -j {target}'


def _commented(rule: str, comment: str) -> str:
    """Neutron's ``comment_rule``: the comment goes before the target, where iptables-save prints it."""
    matches, _, target = rule.rpartition("-j ")
    return f'{matches}-m comment --comment "{comment}" -j {target}'


# ---------------------------------------------------------------- a port's chains


def _ingress_chain(plan: _PortPlan, family: str) -> tuple[str, ...]:
    rules: list[str] = []
    if family == IPV6:
        rules += [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in ICMPV6_ALLOWED_INGRESS_TYPES]
    rules.append(ESTABLISHED)
    rules += _unique([*_provider_rules(plan.port, family),
                      *(match_rule(m) for m in plan.matches[(family, INGRESS)])])
    return (*rules, INVALID, TO_FALLBACK)


def _provider_rules(port: Port, family: str) -> list[str]:
    """The server's per-port ingress rules (``_apply_provider_rule``): router advertisements to
    a port with an IPv6 address, DHCP replies to each of its addresses and to broadcast/link-local."""
    own = addresses(port.fixed_ips, family)
    rules = []
    if family == IPV6 and own:
        rules.append(f"-p ipv6-icmp -m icmp6 --icmpv6-type {ICMPV6_TYPE_RA} -j RETURN")
    server, client = DHCP_PORTS[family]
    for destination in [str(ipaddress.ip_network(a)) for a in own] + [DHCP_EXTRA_DESTINATION[family]]:
        rules.append(f"-d {destination} -p udp -m udp --sport {server} --dport {client} -j RETURN")
    return rules


def _egress_chain(plan: _PortPlan, family: str, *, has_spoof_chain: bool) -> tuple[str, ...]:
    """Neutron's ``_add_fixed_egress_rules`` then the group rules."""
    spoof = [f"-j {port_chain(plan.port.id, SPOOF_CHAIN)}"] if has_spoof_chain else []
    server, client = DHCP_PORTS[family]
    if family == IPV4:
        rules = [
            _commented(f"-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport {client} --dport {server} "
                       "-j RETURN", DHCP_CLIENT),
            *spoof,
            _commented(f"-p udp -m udp --sport {client} --dport {server} -j RETURN", DHCP_CLIENT),
        ]
    else:
        rules = [
            *(_commented(f"-s ::/128 -d ff02::/16 -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN",
                         IPV6_ICMP_ALLOW) for t in ICMPV6_ALLOWED_UNSPEC_ADDR_TYPES),
            *spoof,
            _commented(f"-p ipv6-icmp -m icmp6 --icmpv6-type {ICMPV6_TYPE_RA} -j DROP", IPV6_RA_DROP),
            _commented("-p ipv6-icmp -j RETURN", IPV6_ICMP_ALLOW),
            _commented(f"-p udp -m udp --sport {client} --dport {server} -j RETURN", DHCP_CLIENT),
        ]
    rules.append(_commented(f"-p udp -m udp --sport {server} --dport {client} -j DROP", DHCP_SPOOF))
    rules.append(ESTABLISHED)
    rules += _unique(match_rule(m) for m in plan.matches[(family, EGRESS)])
    return (*rules, INVALID, TO_FALLBACK)


def _spoof_chain(port: Port, family: str) -> tuple[str, ...]:
    """Neutron's ``_spoofing_rule``/``_setup_spoof_filter_chain``: one RETURN per (MAC, address)
    the port may send from, then DROP; no chain when the port has no pair of this family.

    NOTE: as Neutron, a port with addresses of one family only has no anti-spoofing chain for
    the other (its egress rules still apply to that family); a port with no address at all may
    send anything from its own MAC. Duplicate pairs are written once (the first).
    """
    pairs: list[tuple[str, str | None]] = []
    for pair in port.allowed_address_pairs:
        pairs += _pairs(pair.mac_address or port.mac_address, pair.ip_address, family)
    for address in port.fixed_ips:
        pairs += _pairs(port.mac_address, address, family)
    if not port.fixed_ips:
        pairs.append((port.mac_address, None))
    if not pairs:
        return ()
    rules = []
    for mac, source in _unique((mac.lower(), source) for mac, source in pairs):
        if not _MAC_RE.match(mac):
            continue  # NOTE: iptables-restore would refuse it (and the whole restore): the pair is dropped
        prefix = f"-s {source} " if source else ""
        rules.append(f'{prefix}-m mac --mac-source {mac} -m comment --comment "{PAIR_ALLOW}" -j RETURN')
    return (*rules, f'-m comment --comment "{PAIR_DROP}" -j DROP')


def _pairs(mac: str, address: str, family: str) -> list[tuple[str, str | None]]:
    """(MAC, source prefix) for one address; IPv6 also the MAC's link-local address. A ``/0``
    source is no constraint: iptables prints no ``-s``."""
    net = network(address)
    if net is None or (net.version == 4) != (family == IPV4):
        return []
    pairs: list[tuple[str, str | None]] = [(mac, None if net.prefixlen == 0 else str(net))]
    if family == IPV6:
        lla = link_local(mac)
        if lla is not None:
            pairs.append((mac, f"{lla}/128"))
    return pairs


def _unique(items: Iterable) -> list:
    return list(dict.fromkeys(items))


def _sets(by_groups: Mapping[tuple[str, ...], Matches], addresses_of: Mapping[str, tuple[str, ...]],
          known: Members) -> tuple[dict[str, tuple[str, tuple[str, ...]]], Members]:
    """The sets the filtered ports' rules name (``by_groups``: their lists of groups' matches),
    and (group, family) -> (addresses, members), the members taken from ``known`` when made from
    the same addresses."""
    named = {(match.remote_group, family) for matches in by_groups.values() for (family, _), found in matches.items()
             for match in found if match.remote_group is not None}
    sets: dict[str, tuple[str, tuple[str, ...]]] = {}
    made: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for group, family in sorted(named):
        addresses = addresses_of.get(group, ())
        cached = known.get((group, family))
        members = cached[1] if cached is not None and cached[0] == addresses else set_members(addresses, family)
        made[(group, family)] = (addresses, members)
        sets[set_name(group, family)] = (family, members)
    return sets, made
