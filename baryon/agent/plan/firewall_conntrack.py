"""The hybrid firewall's conntrack planner: which conntrack entries a change no longer allows (pure).

``conntrack_deletes(before, after, zones)`` (see its docstring) compares two host views as the
firewall planner (``baryon.agent.plan.firewall``) renders them: a rule removed, a group taken off
a port, a member gone from a remote group, a port or an address gone. The agent hands the result
to the netfilter driver (``Netfilter.delete_conntrack``) after the rules are applied, off its
loop. No I/O, no clock, no globals.

NOTE: a port whose groups and their rules are the same in both views is looked at through the
members that left its remote groups only (``_lost_members``), not by expanding every member of
both views: a port added to or removed from a group of 1,000 members was 1,000 allowances to
build and compare per view, per change, for each list of groups on the node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from baryon.agent.plan.firewall_rules import (INGRESS, Matches, Network, SgMatch, addresses, conntrack_protocol,
                                              group_key, is_filtered, network, port_matches, port_stateful,
                                              remote_members, set_member, set_members)
from baryon.model.firewall import FAMILIES, ConntrackDelete
from baryon.model.host import HostView, Port

# Past this many remote addresses whose entries a port loses for one (family, direction,
# protocol), one delete from/to anywhere instead (Neutron's).
MAX_REMOTES = 32


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
    if before is None or _only_grew(before, after):
        return ()
    return _deletes(before, after, zones)


def _only_grew(before: HostView, after: HostView) -> bool:
    """Whether ``after`` has the ports and groups of ``before`` and every address of its remote
    groups and address groups (a member joined, none left): then nothing ``before`` allowed is
    gone, and there is nothing to delete. NOTE: a join on a node of 1,000 ports costs no pass
    over them (8 ms of a join's run)."""
    if before.ports != after.ports or before.security_groups != after.security_groups:
        return False
    now = remote_members(after)
    return all(addresses <= now.get(group, set()) for group, addresses in remote_members(before).items())


def _deletes(before: HostView, after: HostView, zones: Mapping[str, int]) -> tuple[ConntrackDelete, ...]:
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
        dropped = [a for a in previous.fixed_ips if a not in kept]
        for family in FAMILIES if dropped else ():
            for address in addresses(dropped, family):
                deletes.update({ConntrackDelete(family, zone, None, address, None),
                                ConntrackDelete(family, zone, None, None, address)})
        if port is None or not is_filtered(port):
            continue
        change = (group_key(previous), group_key(port))
        if change not in lost:
            if change[0] == change[1] and old.same_rules(new, change[0]):
                lost[change] = _lost_members(port_matches(previous, old.groups), old, new)
            else:
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
    return _past_max_remotes(gone)


def _lost_members(matches: Matches, old: _Allowances, new: _Allowances) -> list[_Allowance]:
    """``_lost`` for a port whose groups and their rules are the same in both views, so that only
    the members of the remote groups they name may differ: the same result, computed from the
    members that left (``old``'s, not ``new``'s) instead of from every member of both views.

    NOTE: what ``_lost`` finds lost is an allowance of a departed member (the rest is in both
    views); it is covered by ``new``'s allowances from anywhere or from a network, or by one of
    ``new`` from that very member (in another remote group, or by a prefix rule): those are the
    ones looked at here. A port added to or removed from a group of 1,000 members cost 1,000
    allowances to build and compare per view, per change."""
    fixed = [a for ms in matches.values() for m in ms if m.remote_group is None for a in new.expand(m)]
    grouped = [m for ms in matches.values() for m in ms if m.remote_group is not None]
    departed = {_Allowance(m.family, m.direction, m.protocol, m.low, m.high, network(member))
                for m in grouped
                for member in old.members_of(m.remote_group, m.family) - new.members_of(m.remote_group, m.family)}
    if not departed:
        return []
    wide = [k for k in fixed if not _single(k.remote)]
    wide += [_Allowance(m.family, m.direction, m.protocol, m.low, m.high, network(member)) for m in grouped
             for member in new.members_of(m.remote_group, m.family) if "/" in member]  # a network: printed with it
    gone = []
    for a in sorted(departed, key=_allowance_key):
        member = set_member(a.remote)  # type: ignore[arg-type]  # a member: never None
        same_host = [k for k in fixed if k.remote == a.remote]
        same_host += [_Allowance(m.family, m.direction, m.protocol, m.low, m.high, a.remote) for m in grouped
                      if member in new.members_of(m.remote_group, m.family)]
        if not any(_covers(k, a) for k in (*wide, *same_host)):
            gone.append(a)
    return _past_max_remotes(gone)


def _past_max_remotes(gone: list[_Allowance]) -> list[_Allowance]:
    """``gone``, with more than ``MAX_REMOTES`` of one (family, direction, protocol) made one
    allowance from anywhere."""
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
        self.groups = {g.id: g for g in view.security_groups}
        self._members = remote_members(view)
        self._cache: dict[tuple[str, ...], frozenset[_Allowance]] = {}
        self._printed: dict[tuple[str, str], frozenset[str]] = {}
        self._networks: dict[tuple[str, str], list[Network | None]] = {}

    def stateful(self, port: Port) -> bool:
        return port_stateful(port, self.groups)

    def same_rules(self, other: _Allowances, groups: tuple[str, ...]) -> bool:
        """Whether each of ``groups`` has the same rules here and in ``other``."""
        return all(self.groups.get(group_id) == other.groups.get(group_id) for group_id in groups)

    def members_of(self, group_id: str, family: str) -> frozenset[str]:
        """The group's members of ``family`` as ``set_members`` prints them."""
        key = (group_id, family)
        if key not in self._printed:
            self._printed[key] = frozenset(set_members(self._members.get(group_id, ()), family))
        return self._printed[key]

    def of(self, port: Port) -> frozenset[_Allowance]:
        key = group_key(port)
        if key not in self._cache:
            found: set[_Allowance] = set()
            for matches in port_matches(port, self.groups).values():
                for m in matches:
                    found.update(self.expand(m))
            self._cache[key] = frozenset(found)
        return self._cache[key]

    def expand(self, m: SgMatch) -> list[_Allowance]:
        if m.remote_group is None:
            remotes = [network(m.remote_prefix) if m.remote_prefix else None]
        else:
            remotes = self._remotes(m.remote_group, m.family)
        return [_Allowance(m.family, m.direction, m.protocol, m.low, m.high, r) for r in remotes]

    def _remotes(self, group_id: str, family: str) -> list[Network | None]:
        key = (group_id, family)
        if key not in self._networks:
            self._networks[key] = [network(a) for a in sorted(self.members_of(group_id, family))]
        return self._networks[key]


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
