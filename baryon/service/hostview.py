"""Host views: what one host's Open vSwitch agent needs, computed from the database.

``compute(session, host)`` builds the ``baryon.model.host.HostView`` of
``host`` exactly as that module documents it (its contents, their order), with ``etag`` set:

- ``ports``: ports with ``binding:host_id`` == host and ``binding:vif_type`` ovs;
- ``networks``: their networks, each with the segment its ports are bound to
  (``ports.binding_segment_id``) and its MTU;
- ``remote_ports``: for each vxlan network of the host, the ports of that network bound (ovs) to
  another host whose Open vSwitch agent has reported a ``tunneling_ip``, with that address;
- ``security_groups``: the groups of the host's ports, with their rules;
- ``group_members``: for every group a rule of those names as ``remote_group_id``, the fixed IPs
  and allowed-address-pair addresses of the ports in that group (on any host);
- ``address_groups``: for every address group a rule of those names as
  ``remote_address_group_id``, its CIDRs.

A constant number of queries (13; 14 when a rule names an address group), whatever the number of
ports: related rows are selected by joining on the host's ports or by the ids of a few networks
and groups, never one query per row.

``refresh(session, view, keys)``: ``view`` with only the parts that ``keys`` (the keys of its scope
that changes since it was computed touched, ``model.scope``) cover read again, when those are
group members (``("members", G)``: G's ``group_members`` entry) and address groups' addresses
(``("ag", A)``: A's ``address_groups`` entry) only; else None (compute it whole). The scope rules
make the rest of the view the same: its ports, networks and groups change only with a change
touching ``("host", H)``, ``("net", N)``, ``("sg", G)``; its remote ports with ``("l2", N)`` or
``("agents",)``; and which groups and address groups it lists, with its groups' rules. A change of
a group's membership on another host (a port joining or leaving it) is such a change: it costs
two queries for that group instead of the whole view (~190 ms with 1,000 ports on the host).

Consistency: ``seq`` (``feed.last_seq``) is read first, in the same read transaction. Every
change up to ``seq`` has committed (sequences commit in order, see ``feed``), so the view
reflects at least ``seq``: under READ COMMITTED it may also reflect later changes, which only
means a watcher recomputes once more for nothing, never that it misses a change.
NOTE: a remote host's agent need not be alive for its ports to stay in its peers' views: an agent
being restarted (or dead) leaves its host's switch forwarding, and its VMs must stay reachable,
as Neutron's l2population keeps the forwarding entries of a silent agent's ports.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.model import host as hm
from baryon.model import scope
from baryon.service import agents, feed, ml2
from baryon.service.base import Env
from baryon.service.context import Context
from baryon.service.digest import ChangeDigest
from baryon.service.errors import PolicyNotAuthorized
from baryon.service.viewcache import ViewCache

_P, _IP, _SG, _PAIR = m.Port, m.IPAllocation, m.PortSecurityGroupBinding, m.AllowedAddressPair


def _bound_to(host: str):  # noqa: ANN202
    return and_(_P.binding_host_id == host, _P.binding_vif_type == ml2.VIF_TYPE_OVS)


def _tunnel_ip(configurations: str | None) -> str | None:
    try:
        value = orjson.loads(configurations) if configurations else {}
    except orjson.JSONDecodeError:
        return None
    ip = value.get("tunneling_ip") if isinstance(value, dict) else None
    return ip if isinstance(ip, str) and ip else None


def compute(session: Session, host: str) -> hm.HostView:
    seq = feed.last_seq(session)  # NOTE: first (see the module doc)
    bound = _bound_to(host)
    port_rows = session.execute(select(
        _P.id, _P.network_id, _P.mac_address, _P.device_owner, _P.admin_state_up,
        _P.port_security_enabled, _P.binding_segment_id).where(bound)).all()
    ips: dict[str, list[str]] = defaultdict(list)
    for port_id, address in session.execute(select(_IP.port_id, _IP.ip_address).join(_P, _P.id == _IP.port_id)
                                            .where(bound)):
        ips[port_id].append(address)
    groups: dict[str, list[str]] = defaultdict(list)
    for port_id, group_id in session.execute(select(_SG.port_id, _SG.security_group_id)
                                             .join(_P, _P.id == _SG.port_id).where(bound)):
        groups[port_id].append(group_id)
    pairs: dict[str, list[hm.AddressPair]] = defaultdict(list)
    for port_id, address, mac in session.execute(select(_PAIR.port_id, _PAIR.ip_address, _PAIR.mac_address)
                                                 .join(_P, _P.id == _PAIR.port_id).where(bound)):
        pairs[port_id].append(hm.AddressPair(address, mac))

    networks = _networks(session, {r.binding_segment_id for r in port_rows if r.binding_segment_id})
    ports = tuple(sorted(
        hm.Port(id=r.id, network_id=r.network_id, mac_address=r.mac_address,
                fixed_ips=tuple(sorted(ips.get(r.id, ()))), device_owner=r.device_owner,
                admin_state_up=r.admin_state_up, port_security_enabled=r.port_security_enabled,
                security_groups=tuple(sorted(groups.get(r.id, ()))),
                allowed_address_pairs=tuple(sorted(pairs.get(r.id, ()))))
        # NOTE: a port whose bound segment is gone (ON DELETE SET NULL) cannot be wired: left out.
        for r in port_rows if r.network_id in networks))
    tunnelled = sorted(n.id for n in networks.values() if n.segment.network_type in hm.TUNNEL_TYPES)
    group_ids = sorted({g for p in ports for g in p.security_groups})
    security_groups = _security_groups(session, group_ids)
    remote_groups = sorted({r.remote_group_id for g in security_groups for r in g.rules if r.remote_group_id})
    address_groups = sorted({r.remote_address_group_id for g in security_groups for r in g.rules
                             if r.remote_address_group_id})
    return hm.HostView(
        host=host, seq=seq, ports=ports, networks=tuple(sorted(networks.values(), key=lambda n: n.id)),
        remote_ports=_remote_ports(session, host, tunnelled),
        security_groups=security_groups, group_members=_members(session, remote_groups),
        address_groups=_address_groups(session, address_groups),
    ).with_etag()


# The keys ``refresh`` reads the parts of again; any other touched key needs the whole view.
REFRESHED = frozenset({"members", "ag"})


def refresh(session: Session, view: hm.HostView, keys: frozenset[scope.Key]) -> hm.HostView | None:
    """``view`` with the members of the groups and the addresses of the address groups that
    ``keys`` name read again; None when ``keys`` hold any other kind of key (see the module doc).
    The caller sets ``seq``: a sequence read before this call (``service.viewcache``)."""
    if any(key[0] not in REFRESHED for key in keys):
        return None
    stale = {key[1] for key in keys if key[0] == "members"}
    members = view.group_members
    if any(g.security_group_id in stale for g in members):
        fresh = {g.security_group_id: g for g in _members(session, sorted(
            g.security_group_id for g in members if g.security_group_id in stale))}
        members = tuple(fresh.get(g.security_group_id, g) for g in members)
    stale = {key[1] for key in keys if key[0] == "ag"}
    address_groups = view.address_groups
    if any(a.id in stale for a in address_groups):
        fresh_ag = {a.id: a for a in _address_groups(session, sorted(a.id for a in address_groups if a.id in stale))}
        address_groups = tuple(fresh_ag.get(a.id, a) for a in address_groups)
    return replace(view, group_members=members, address_groups=address_groups).with_etag()


def _networks(session: Session, segment_ids: set[str]) -> dict[str, hm.Network]:
    if not segment_ids:
        return {}
    seg = m.NetworkSegment
    rows = session.execute(select(seg.id, seg.network_id, seg.network_type, seg.segmentation_id,
                                  seg.physical_network, m.Network.mtu)
                           .join(m.Network, m.Network.id == seg.network_id)
                           .where(seg.id.in_(sorted(segment_ids))).order_by(seg.network_id, seg.segment_index))
    result: dict[str, hm.Network] = {}
    for r in rows:  # NOTE: one segment per network and host; with several, the first in order
        segment = hm.Segment(r.network_type, r.segmentation_id, r.physical_network)
        result.setdefault(r.network_id, hm.Network(r.network_id, segment, r.mtu))
    return result


def _remote_ports(session: Session, host: str, network_ids: list[str]) -> tuple[hm.RemotePort, ...]:
    if not network_ids:
        return ()
    remote = and_(_P.network_id.in_(network_ids), _P.binding_vif_type == ml2.VIF_TYPE_OVS,
                  _P.binding_host_id != host)
    rows = session.execute(select(_P.id, _P.network_id, _P.binding_host_id, _P.mac_address).where(remote)).all()
    hosts = sorted({r.binding_host_id for r in rows})
    if not hosts:
        return ()
    endpoints: dict[str, str] = {}
    for agent_host, configurations in session.execute(
            select(m.Agent.host, m.Agent.configurations)
            .where(m.Agent.agent_type == agents.AGENT_TYPE_OVS, m.Agent.host.in_(hosts))):
        ip = _tunnel_ip(configurations)
        if ip:
            endpoints[agent_host] = ip
    ips: dict[str, list[str]] = defaultdict(list)
    for port_id, address in session.execute(select(_IP.port_id, _IP.ip_address)
                                            .join(_P, _P.id == _IP.port_id).where(remote)):
        ips[port_id].append(address)
    return tuple(sorted(
        hm.RemotePort(network_id=r.network_id, host=r.binding_host_id, tunnel_ip=endpoints[r.binding_host_id],
                      mac_address=r.mac_address, fixed_ips=tuple(sorted(ips.get(r.id, ()))))
        for r in rows if r.binding_host_id in endpoints))


def _security_groups(session: Session, group_ids: list[str]) -> tuple[hm.SecurityGroup, ...]:
    if not group_ids:
        return ()
    rules: dict[str, list[hm.Rule]] = defaultdict(list)
    r_ = m.SecurityGroupRule
    for row in session.execute(select(r_.id, r_.security_group_id, r_.direction, r_.ethertype, r_.protocol,
                                      r_.port_range_min, r_.port_range_max, r_.remote_ip_prefix,
                                      r_.remote_group_id, r_.remote_address_group_id)
                           .where(r_.security_group_id.in_(group_ids))):
        rules[row.security_group_id].append(hm.Rule(
            id=row.id, direction=row.direction, ethertype=row.ethertype, protocol=row.protocol,
            port_range_min=row.port_range_min, port_range_max=row.port_range_max,
            remote_ip_prefix=row.remote_ip_prefix, remote_group_id=row.remote_group_id,
            remote_address_group_id=row.remote_address_group_id))
    rows = session.execute(select(m.SecurityGroup.id, m.SecurityGroup.stateful)
                           .where(m.SecurityGroup.id.in_(group_ids)).order_by(m.SecurityGroup.id))
    return tuple(hm.SecurityGroup(id=gid, rules=tuple(sorted(rules.get(gid, ()), key=lambda r: r.id)),
                                  stateful=stateful) for gid, stateful in rows)


def _members(session: Session, group_ids: list[str]) -> tuple[hm.GroupMembers, ...]:
    if not group_ids:
        return ()
    addresses: dict[str, set[str]] = {g: set() for g in group_ids}
    for group_id, address in session.execute(select(_SG.security_group_id, _IP.ip_address)
                                             .join(_IP, _IP.port_id == _SG.port_id)
                                             .where(_SG.security_group_id.in_(group_ids))):
        addresses[group_id].add(address)
    for group_id, address in session.execute(select(_SG.security_group_id, _PAIR.ip_address)
                                             .join(_PAIR, _PAIR.port_id == _SG.port_id)
                                             .where(_SG.security_group_id.in_(group_ids))):
        addresses[group_id].add(address)
    return tuple(hm.GroupMembers(g, tuple(sorted(addresses[g]))) for g in group_ids)


def _address_groups(session: Session, group_ids: list[str]) -> tuple[hm.AddressGroup, ...]:
    """Each group with its CIDRs; a group named by a rule but gone (none can be: a group in use
    cannot be deleted) is shown empty, so that the rule's set exists and matches nothing."""
    if not group_ids:
        return ()
    addresses: dict[str, list[str]] = {g: [] for g in group_ids}
    a_ = m.AddressAssociation
    for group_id, address in session.execute(select(a_.address_group_id, a_.address)
                                             .where(a_.address_group_id.in_(group_ids))):
        addresses[group_id].append(address)
    return tuple(hm.AddressGroup(g, tuple(sorted(addresses[g]))) for g in group_ids)


def check(ctx: Context, action: str) -> None:
    """The agent API is admin only (agents act as the cloud's admin, as Neutron's over RPC)."""
    if not ctx.is_admin:
        raise PolicyNotAuthorized(rule=f"rule:{action}")


# The view each kind of agent watches.
VIEW_KINDS = {agents.AGENT_TYPE_OVS: "ovs", agents.AGENT_TYPE_DHCP: "dhcp", agents.AGENT_TYPE_L3: "l3"}

ViewCompute = Callable[[Session, str], Any]  # (session, host) -> a view with seq, etag and to_json()
# (session, kept view, the keys of its scope touched since) -> the view refreshed, or None: compute it
ViewRefresh = Callable[[Session, Any, frozenset[scope.Key]], Any]


class HostViews:
    """The agent API's reads: a host's view of one kind, the change log's sequence. Admin only.

    ``kinds``: the views agents watch, by name: ``ovs`` (``compute`` here: the Open vSwitch
    agent's ``HostView``) and whatever ``Services`` adds (``dhcp``: ``dhcpview.compute``; ``l3``:
    ``l3view.compute``). ``refreshes``: for the kinds that have one, how a kept view is brought up
    to date when only some of its parts changed (``Services`` gives ``ovs`` ``refresh`` here; a kind
    without one is computed whole on every change that concerns it)."""

    def __init__(self, env: Env, kinds: dict[str, ViewCompute] | None = None,
                 refreshes: dict[str, ViewRefresh] | None = None):
        self.env = env
        self.kinds: dict[str, ViewCompute] = kinds if kinds is not None else {"ovs": compute}
        self.refreshes: dict[str, ViewRefresh] = refreshes or {}
        self.cache = ViewCache(self.compute, ChangeDigest(env.db.read), refresh=self.refresh)

    @staticmethod
    def check(ctx: Context, action: str = "get_host_view") -> None:
        check(ctx, action)

    def view(self, ctx: Context, host: str, kind: str = "ovs") -> Any:
        """The view computed now (no cache)."""
        self.check(ctx)
        return self.compute(kind, host)

    def compute(self, kind: str, host: str) -> Any:
        with self.env.db.read() as session:
            return self.kinds[kind](session, host)

    def refresh(self, kind: str, host: str, view: Any, keys: frozenset[scope.Key]) -> Any:  # noqa: ANN401
        """``view`` with what ``keys`` cover read again, or None (``ViewCache``'s refresh)."""
        how = self.refreshes.get(kind)
        if how is None:
            return None
        with self.env.db.read() as session:
            return how(session, view, keys)

    def watched(self, ctx: Context, host: str, kind: str, latest: int) -> Any:
        """The view as of sequence ``latest`` at least, from this process's cache while no change
        concerns it (``ViewCache``): what the long-polls answer."""
        self.check(ctx)
        return self.cache.view(kind, host, latest)

    def realised(self, rows: list[m.Agent]) -> dict[str, int]:
        """For each agent (rows of ``agents``) whose view still has the etag it reported realised
        with its ``realised_seq``, that view's sequence: every change since left the agent
        current. The others (behind, no etag reported, a kind without views) are left out."""
        wanted = [r for r in rows if r.realised_etag and VIEW_KINDS.get(r.agent_type) in self.kinds]
        if not wanted:
            return {}
        latest = self.last_seq()
        result = {}
        for row in wanted:
            if row.realised_seq >= latest:
                continue
            view = self.cache.view(VIEW_KINDS[row.agent_type], row.host, latest)
            if view.etag == row.realised_etag:
                result[row.id] = view.seq
        return result

    def seq(self, ctx: Context) -> int:
        self.check(ctx, "get_change_seq")
        return self.last_seq()

    def last_seq(self) -> int:
        with self.env.db.read() as session:
            return feed.last_seq(session)

    def changes(self, ctx: Context, resource_id: str) -> list[dict]:
        """The change log's entries for one resource (``feed.changes_of``): what ``baryon debug
        port`` builds a port's timeline from."""
        self.check(ctx, "get_changes")
        with self.env.db.read() as session:
            return feed.changes_of(session, resource_id)
