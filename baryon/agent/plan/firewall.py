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
the members.

``conntrack_deletes(before, after, zones)``: the conntrack entries a change of rules or members
no longer allows (see its docstring).

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
from dataclasses import dataclass

from baryon.agent.plan.firewall_rules import (EGRESS, INGRESS, IPV4, IPV6, Network, SgMatch, addresses,
                                              conntrack_protocol, link_local, match_rule, network, normalize,
                                              set_members, set_name)
from baryon.model.firewall import CHAIN_PREFIX, FAMILIES, ConntrackDelete, Ruleset
from baryon.model.host import HostView, Port, SecurityGroup

FILTER, RAW = "filter", "raw"
TAP, QVB = "tap", "qvb"
DEVICE_ID_LEN = 11  # Neutron's LINUX_DEV_LEN (14) - len("tap")
CHAIN_ID_LEN = 10  # Neutron's MAX_IPTABLES_CHAIN_LEN_WRAP (11) - len("i")
TRUSTED_OWNER_PREFIX = "network:"  # neutron_lib.utils.net.is_port_trusted

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
# Past this many remote addresses whose entries a port loses for one (family, direction,
# protocol), one delete from/to anywhere instead (Neutron's): one ``conntrack -D`` each.
MAX_REMOTES = 32

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
    matches: dict[tuple[str, str], tuple[SgMatch, ...]]


@dataclass(frozen=True)
class _Host:
    filtered: tuple[_PortPlan, ...]  # by port id
    trusted: tuple[Port, ...]
    unfiltered: tuple[Port, ...]
    members: dict[str, tuple[str, ...]]  # group id -> addresses


def _index(view: HostView, zones: Mapping[str, int]) -> _Host:
    groups = {g.id: g for g in view.security_groups}
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
            filtered.append(_PortPlan(port, zone, _stateful(port, groups), _matches(port, groups)))
    members: dict[str, set[str]] = {}
    for entry in view.group_members:
        members.setdefault(entry.security_group_id, set()).update(entry.addresses)
    return _Host(tuple(filtered), tuple(trusted), tuple(unfiltered),
                 {gid: tuple(sorted(addresses)) for gid, addresses in sorted(members.items())})


def is_trusted(port: Port) -> bool:
    return port.device_owner.startswith(TRUSTED_OWNER_PREFIX)


def is_filtered(port: Port) -> bool:
    return port.port_security_enabled and not is_trusted(port)


def _matches(port: Port, groups: Mapping[str, SecurityGroup]) -> dict[tuple[str, str], tuple[SgMatch, ...]]:
    found: dict[tuple[str, str], list[SgMatch]] = {(f, d): [] for f in FAMILIES for d in (INGRESS, EGRESS)}
    for group_id in sorted(port.security_groups):
        group = groups.get(group_id)
        for rule in sorted(group.rules, key=lambda r: r.id) if group else ():
            match = normalize(rule)
            if match is not None:
                found[(match.family, match.direction)].append(match)
    return {key: tuple(matches) for key, matches in found.items()}


def _stateful(port: Port, groups: Mapping[str, SecurityGroup]) -> bool:
    """Neutron's ``_are_sg_rules_stateful``: the port's first group decides, when it has rules.
    NOTE: Neutron's API refuses a port with both stateful and stateless groups."""
    first = groups.get(min(port.security_groups)) if port.security_groups else None
    return first.stateful if first is not None and first.rules else True


# ---------------------------------------------------------------- the ruleset


def render(view: HostView, zones: Mapping[str, int]) -> Ruleset:
    """This node's desired netfilter state for ``view`` (see the module docstring)."""
    host = _index(view, zones)
    chains: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
    hooks: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for family in FAMILIES:
        chains[(family, FILTER)] = dict(sorted(_filter_chains(host, family).items()))
        chains[(family, RAW)] = dict(sorted(_raw_chains(host).items()))
        for table in (FILTER, RAW):
            hooks[(family, table)] = tuple((builtin, f"-j {wrapped(builtin)}") for builtin in WRAPPED[table])
    return Ruleset(chains=chains, hooks=hooks, sets=_sets(host))


def _filter_chains(host: _Host, family: str) -> dict[str, tuple[str, ...]]:
    forward: list[str] = []
    inputs: list[str] = []
    sg_chain: list[str] = []
    chains: dict[str, tuple[str, ...]] = {}
    for plan in host.filtered:
        tap = device_name(plan.port.id)
        ingress, egress = port_chain(plan.port.id, INGRESS_CHAIN), port_chain(plan.port.id, EGRESS_CHAIN)
        forward += [_physdev(PHYSDEV[INGRESS], tap, VM_INT_SG, SG_CHAIN),
                    _physdev(PHYSDEV[EGRESS], tap, VM_INT_SG, SG_CHAIN)]
        inputs.append(_physdev(PHYSDEV[EGRESS], tap, INPUT_TO_SG, egress))
        sg_chain += [_physdev(PHYSDEV[INGRESS], tap, SG_TO_VM_SG, ingress),
                     _physdev(PHYSDEV[EGRESS], tap, SG_TO_VM_SG, egress)]
        spoof = _spoof_chain(plan.port, family)
        if spoof:
            chains[port_chain(plan.port.id, SPOOF_CHAIN)] = spoof
        chains[ingress] = _ingress_chain(plan, family)
        chains[egress] = _egress_chain(plan, family, has_spoof_chain=bool(spoof))
    for port in host.trusted:
        tap = device_name(port.id)
        forward += [_physdev(PHYSDEV[d], tap, TRUSTED_ACCEPT, "ACCEPT") for d in (INGRESS, EGRESS)]
    for port in host.unfiltered:
        tap = device_name(port.id)
        forward += [_physdev(PHYSDEV[d], tap, PORT_SEC_ACCEPT, "ACCEPT") for d in (INGRESS, EGRESS)]
        inputs.append(_physdev(PHYSDEV[EGRESS], tap, PORT_SEC_ACCEPT, "ACCEPT"))
    chains.update({
        wrapped(FORWARD): tuple(forward),
        wrapped(INPUT): tuple(inputs),
        wrapped(OUTPUT): (),
        wrapped(LOCAL): (),
        SG_CHAIN: (*sg_chain, "-j ACCEPT"),
        SG_FALLBACK: (f'-m comment --comment "{UNMATCH_DROP}" -j DROP',),
    })
    return chains


def _raw_chains(host: _Host) -> dict[str, tuple[str, ...]]:
    """Neutron's ``_get_jump_rules``: the port's zone is set on what comes in from the qvb veth
    (matched as a bridge port and as an interface) and on what comes out of the VM's tap."""
    rules: list[str] = []
    for plan in host.filtered:
        short = plan.port.id[4:]  # NOTE: Neutron cuts 4 characters ("tap_") of the device: here, the id
        comment, action = ((f"Set zone for {short}", f"CT --zone {plan.zone}") if plan.stateful
                           else (f"Make {short} stateless", "CT --notrack"))
        qvb, tap = device_name(plan.port.id, QVB), device_name(plan.port.id)
        for match in (f"-m physdev --physdev-in {qvb}", f"-i {qvb}", f"-m physdev --physdev-in {tap}"):
            rules.append(f'{match} -m comment --comment "{comment}" -j {action}')
    return {wrapped(OUTPUT): (), wrapped(PREROUTING): tuple(rules)}


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


def _sets(host: _Host) -> dict[str, tuple[str, tuple[str, ...]]]:
    named = {(match.remote_group, family) for plan in host.filtered for (family, _), matches in plan.matches.items()
             for match in matches if match.remote_group is not None}
    return {set_name(group, family): (family, set_members(host.members.get(group, ()), family))
            for group, family in sorted(named)}


# ---------------------------------------------------------------- conntrack


@dataclass(frozen=True)
class _Allowance:
    """What one rule lets through, with a remote group expanded to one allowance per member:
    ``remote`` is a network or None (anywhere)."""

    family: str
    direction: str
    protocol: str | None
    low: int | None
    high: int | None
    remote: Network | None


def conntrack_deletes(before: HostView | None, after: HostView,
                      zones: Mapping[str, int]) -> tuple[ConntrackDelete, ...]:
    """The conntrack entries to delete once ``after`` is applied, because what allowed them in
    ``before`` is gone (Neutron's ``_remove_conntrack_entries_from_sg_updates`` and
    ``_remove_conntrack_entries_from_port_deleted``), for ports filtered and stateful in
    ``before`` whose network has a zone in ``zones``:

    - a port still filtered in ``after``: its allowances (its groups' rules, a remote group
      expanded to its members of that family) in ``before`` that ``after`` no longer has and that
      no allowance of ``after`` covers (same family and direction, any or the same protocol, a port
      range or ICMP type/code that contains it, anywhere or a network containing its remote).
      That covers a removed rule, a group taken off the port and a member that left a remote group
      alike. Each deletes, in the port's zone, for each fixed IP of the port (``before``'s) of its
      family: ingress ``-s remote -d port IP``, egress ``-s port IP -d remote``, with its protocol;
      the remote is given when it is one address, else left out (any), as Neutron never narrows;
      past ``MAX_REMOTES`` remotes for one (family, direction, protocol) of a port, one delete
      with any remote instead (a remote-group rule of a 1,000-member group is one delete per
      port address, not 1,000).
    - a port gone from ``after``, or an address the port no longer has: every entry from or to
      that address in the zone (the zone is the network's: a new port given the address must not
      inherit them).

    NOTE: choices. Rules are compared by what iptables makes of them (``SgMatch``), not by id:
    a rule deleted and created again identical, or the same rule in another of the port's groups,
    cuts nothing. Ports are not narrowed (``ConntrackDelete`` has none, Neutron neither): removing
    TCP 22 also deletes the port's other TCP entries with that remote; stateful TCP picks them up
    again on their next packet when a rule still allows them. Neutron deletes everything of a port
    that lost a group; here only what that group allowed and nothing else allows. A port that turns
    port security off needs nothing (everything is allowed, outside the zone). Deletes are unique,
    sorted, and one that a broader delete of the result covers is left out.
    """
    if before is None:
        return ()
    old, new = _Allowances(before), _Allowances(after)
    current = {p.id: p for p in after.ports}
    deletes: set[ConntrackDelete] = set()
    lost: dict[tuple[tuple[str, ...], tuple[str, ...]], list[_Allowance]] = {}  # ports share their groups
    for previous in sorted(before.ports, key=lambda p: p.id):
        zone = zones.get(previous.network_id)
        if zone is None or not is_filtered(previous) or not old.stateful(previous):
            continue
        port = current.get(previous.id)
        kept = set(port.fixed_ips) if port is not None else set()
        for family in FAMILIES:
            for address in addresses((a for a in previous.fixed_ips if a not in kept), family):
                deletes.update({ConntrackDelete(family, zone, None, address, None),
                                ConntrackDelete(family, zone, None, None, address)})
        if port is None or not is_filtered(port):
            continue
        change = (_group_key(previous), _group_key(port))
        if change not in lost:
            lost[change] = _lost(old.of(previous), new.of(port))
        for allowance in lost[change]:
            deletes.update(_deletes_for(previous, zone, allowance))
    return tuple(sorted(_broadest(deletes), key=_delete_key))


def _lost(before: frozenset[_Allowance], after: frozenset[_Allowance]) -> list[_Allowance]:
    """The allowances of ``before`` that nothing in ``after`` covers; past ``MAX_REMOTES`` of
    them for one (family, direction, protocol), one allowance from anywhere instead."""
    # an allowance from one host is only covered by one from that host or from a wider remote
    by_remote: dict[Network | None, list[_Allowance]] = {}
    for kept in after:
        by_remote.setdefault(kept.remote if _single(kept.remote) else None, []).append(kept)
    wide = by_remote.get(None, [])
    gone = [a for a in sorted(before - after, key=_allowance_key)
            if not any(_covers(k, a) for k in (*wide, *(by_remote.get(a.remote, ()) if a.remote else ())))]
    by_kind: dict[tuple[str, str, str | None], list[_Allowance]] = {}
    for allowance in gone:
        by_kind.setdefault((allowance.family, allowance.direction, allowance.protocol), []).append(allowance)
    lost: list[_Allowance] = []
    for (family, direction, protocol), allowances in by_kind.items():
        if len(allowances) > MAX_REMOTES:
            lost.append(_Allowance(family, direction, protocol, None, None, None))
        else:
            lost += allowances
    return lost


class _Allowances:
    """A view's allowances per group list, computed once per distinct list of groups."""

    def __init__(self, view: HostView) -> None:
        self._groups = {g.id: g for g in view.security_groups}
        self._members: dict[str, set[str]] = {}
        for entry in view.group_members:
            self._members.setdefault(entry.security_group_id, set()).update(entry.addresses)
        self._cache: dict[tuple[str, ...], frozenset[_Allowance]] = {}
        self._networks: dict[tuple[str, str], list[Network | None]] = {}

    def stateful(self, port: Port) -> bool:
        return _stateful(port, self._groups)

    def of(self, port: Port) -> frozenset[_Allowance]:
        key = _group_key(port)
        if key not in self._cache:
            found: set[_Allowance] = set()
            for matches in _matches(port, self._groups).values():
                for m in matches:
                    found.update(self._expand(m))
            self._cache[key] = frozenset(found)
        return self._cache[key]

    def _expand(self, m: SgMatch) -> list[_Allowance]:
        if m.remote_group is None:
            remotes = [network(m.remote_prefix) if m.remote_prefix else None]
        else:
            remotes = self._remotes(m.remote_group, m.family)
        return [_Allowance(m.family, m.direction, m.protocol, m.low, m.high, r) for r in remotes]

    def _remotes(self, group_id: str, family: str) -> list[Network | None]:
        key = (group_id, family)
        if key not in self._networks:
            self._networks[key] = [network(a) for a in set_members(self._members.get(group_id, ()), family)]
        return self._networks[key]


def _group_key(port: Port) -> tuple[str, ...]:
    return tuple(sorted(port.security_groups))


def _covers(kept: _Allowance, gone: _Allowance) -> bool:
    if (kept.family, kept.direction) != (gone.family, gone.direction):
        return False
    if kept.protocol is not None and kept.protocol != gone.protocol:
        return False
    if kept.low is not None:
        if gone.low is None:
            return False
        if gone.protocol in ("icmp", "ipv6-icmp"):
            if kept.low != gone.low or (kept.high is not None and kept.high != gone.high):
                return False
        elif not (kept.low <= gone.low and gone.high is not None and kept.high is not None
                  and gone.high <= kept.high):
            return False
    if kept.remote is None:
        return True
    if gone.remote is None or gone.remote.version != kept.remote.version:
        return False
    return gone.remote.subnet_of(kept.remote)  # type: ignore[arg-type]  # same version checked


def _single(remote: Network | None) -> bool:
    return remote is not None and remote.prefixlen == remote.max_prefixlen


def _deletes_for(port: Port, zone: int, allowance: _Allowance) -> list[ConntrackDelete]:
    remote = allowance.remote
    address = str(remote.network_address) if remote is not None and _single(remote) else None
    protocol = conntrack_protocol(allowance.protocol)
    deletes = []
    for own in addresses(port.fixed_ips, allowance.family):
        source, destination = (address, own) if allowance.direction == INGRESS else (own, address)
        deletes.append(ConntrackDelete(allowance.family, zone, protocol, source, destination))
    return deletes


def _broadest(deletes: set[ConntrackDelete]) -> list[ConntrackDelete]:
    """The deletes that no other delete of the set includes (same family and zone, and each of
    protocol, source and destination either the same or any)."""
    def wider(d: ConntrackDelete) -> Iterable[ConntrackDelete]:
        for protocol in {d.protocol, None}:
            for source in {d.source, None}:
                for destination in {d.destination, None}:
                    candidate = ConntrackDelete(d.family, d.zone, protocol, source, destination)
                    if candidate != d:
                        yield candidate
    return [d for d in deletes if not any(w in deletes for w in wider(d))]


def _allowance_key(a: _Allowance) -> tuple:
    return (a.family, a.direction, a.protocol or "", a.low if a.low is not None else -1,
            a.high if a.high is not None else -1, str(a.remote or ""))


def _delete_key(d: ConntrackDelete) -> tuple:
    return (d.family, d.zone, d.protocol or "", d.source or "", d.destination or "")
