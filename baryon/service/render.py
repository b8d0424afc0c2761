"""Rows -> the API's resource dicts, as an admin sees them (the API hides what a member may not see).

The same dicts go into the change log, so agents see what the API shows.
Related ids (a network's subnets, tags) are loaded for a whole page at once by the callers
(``related_*``), never one query per row.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple

import orjson
from sqlalchemy import CompoundSelect, Integer, String, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.orm import Session

from baryon.db import models as m

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit


def ts(value: dt.datetime | None) -> str | None:
    """``TIME_FORMAT`` (stored times are UTC, whole seconds); isoformat is several times faster."""
    if value is None:
        return None
    return value.replace(microsecond=0).isoformat() + "Z"


def tags_of(session: Session, ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(ids)
    result: dict[str, list[str]] = defaultdict(list)
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(select(m.Tag.resource_id, m.Tag.tag)
                               .where(m.Tag.resource_id.in_(ids[start:start + CHUNK])).order_by(m.Tag.tag))
        for rid, tag in rows:
            result[rid].append(tag)
    return result


def port_rows(session: Session, rows: list, port_security: bool) -> list[dict]:
    """Ports read as plain rows (a list of thousands, or the one a show reads): the same dicts as
    ``port``, without building an ORM object per port and per address (most of a large list's
    cost), their related rows read by ``port_related`` in one statement."""
    related = port_related(session, [r.id for r in rows])
    empty = _Related()
    result = []
    for r in rows:
        rel = related.get(r.id, empty)
        result.append(port(SimpleNamespace(**r._mapping, fixed_ips=rel.ips,  # type: ignore[arg-type]
                                           security_group_bindings=rel.groups,
                                           allowed_address_pairs=rel.pairs, extra_dhcp_opts=rel.opts),
                           rel.tags, port_security))
    return result


class _Ip(NamedTuple):
    subnet_id: str
    ip_address: str


class _Group(NamedTuple):
    security_group_id: str


class _Pair(NamedTuple):
    mac_address: str
    ip_address: str


class _Opt(NamedTuple):
    opt_name: str
    opt_value: str
    ip_version: int


@dataclass
class _Related:
    ips: list[_Ip] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=list)
    pairs: list[_Pair] = field(default_factory=list)
    opts: list[_Opt] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def _related_statement(one: bool) -> CompoundSelect:
    """One UNION ALL over the five tables a port's body needs, in one shape
    (kind, port_id, pos, a, b, c), every text column cast to text (PostgreSQL types a UNION's
    columns from its first branch), ordered by (kind, port_id, pos, a): addresses, pairs and
    options by position, tags by name. ``one``: for the port bound as ``id`` (a show), else for
    the ports of the expanding ``ids`` list. Built once per shape (``_RELATED``): building it
    and its cache key took as long as the database's answer."""
    ip, sg, pair, opt, tag = (m.IPAllocation.__table__, m.PortSecurityGroupBinding.__table__,
                              m.AllowedAddressPair.__table__, m.ExtraDhcpOpt.__table__, m.Tag.__table__)
    none = cast(null(), String)
    zero = literal_column("0", Integer)
    wanted = bindparam("id") if one else bindparam("ids", expanding=True)

    def kind(n: int):  # noqa: ANN202
        return literal_column(str(n), Integer).label("kind")

    def of(column):  # noqa: ANN001, ANN202
        return column == wanted if one else column.in_(wanted)

    return union_all(
        select(kind(0), ip.c.port_id.label("port_id"), ip.c.position.label("pos"),
               cast(ip.c.subnet_id, String).label("a"), cast(ip.c.ip_address, String).label("b"),
               none.label("c")).where(of(ip.c.port_id)),
        select(kind(1), sg.c.port_id, zero, cast(sg.c.security_group_id, String), none, none)
        .where(of(sg.c.port_id)),
        select(kind(2), pair.c.port_id, pair.c.position, cast(pair.c.mac_address, String),
               cast(pair.c.ip_address, String), none).where(of(pair.c.port_id)),
        select(kind(3), opt.c.port_id, opt.c.position, cast(opt.c.opt_name, String),
               cast(opt.c.opt_value, String), cast(opt.c.ip_version, String)).where(of(opt.c.port_id)),
        select(kind(4), tag.c.resource_id, zero, cast(tag.c.tag, String), none, none)
        .where(of(tag.c.resource_id)),
    ).order_by(literal_column("kind"), literal_column("port_id"), literal_column("pos"), literal_column("a"))


_RELATED = {True: _related_statement(True), False: _related_statement(False)}


def port_related(session: Session, ids: list[str]) -> dict[str, _Related]:
    """The fixed IPs, security groups, address pairs, DHCP options and tags of ports, by port id,
    each list in the API's order: one statement (per ``CHUNK`` ids) instead of one per table,
    which made a show port eight round trips to the database."""
    result: dict[str, _Related] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        params = {"id": chunk[0]} if len(chunk) == 1 else {"ids": chunk}
        for kind, port_id, _pos, a, b, c in session.execute(_RELATED[len(chunk) == 1], params):
            rel = result.get(port_id)
            if rel is None:
                rel = result[port_id] = _Related()
            if kind == 0:
                rel.ips.append(_Ip(a, b))
            elif kind == 1:
                rel.groups.append(_Group(a))
            elif kind == 2:
                rel.pairs.append(_Pair(a, b))
            elif kind == 3:
                rel.opts.append(_Opt(a, b, int(c)))
            else:
                rel.tags.append(a)
    return result


def _standard(row: object, tags: list[str]) -> dict:
    return {
        "id": row.id, "name": row.name, "description": row.description,  # type: ignore[attr-defined]
        "project_id": row.project_id, "tenant_id": row.project_id,  # type: ignore[attr-defined]
        "created_at": ts(row.created_at), "updated_at": ts(row.updated_at),  # type: ignore[attr-defined]
        "revision_number": row.revision_number, "tags": tags,  # type: ignore[attr-defined]
    }


def subnets_of(session: Session, network_ids: Iterable[str]) -> tuple[dict[str, list[str]],
                                                                   dict[str, dict[int, str]]]:
    """For networks, in one statement: their subnet ids (in creation order), and
    {ip_version: address scope id}, the address-scope extension's ``ipv4_address_scope`` /
    ``ipv6_address_scope`` as Neutron computes them: the scope of the pools the network's subnets
    of that version come from, when they all come from pools of that one scope (a subnet outside
    any scoped pool, or two scopes: none)."""
    ids = list(network_ids)
    subnet_ids: dict[str, list[str]] = defaultdict(list)
    seen: dict[str, dict[int, set[str | None]]] = defaultdict(lambda: defaultdict(set))
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(m.Subnet.network_id, m.Subnet.id, m.Subnet.ip_version, m.SubnetPool.address_scope_id)
            .outerjoin(m.SubnetPool, m.SubnetPool.id == m.Subnet.subnetpool_id)
            .where(m.Subnet.network_id.in_(ids[start:start + CHUNK]))
            .order_by(m.Subnet.created_at, m.Subnet.id))
        for nid, sid, version, scope_id in rows:
            subnet_ids[nid].append(sid)
            seen[nid][version].add(scope_id)
    scopes = {nid: {v: next(iter(found)) for v, found in versions.items() if len(found) == 1 and None not in found}
              for nid, versions in seen.items()}
    return subnet_ids, scopes


def network(row: m.Network, subnet_ids: list[str], tags: list[str], port_security: bool,
            scopes: dict[int, str] | None = None, zones: list[str] | None = None) -> dict:
    segment = row.segments[0] if row.segments else None
    body = _standard(row, tags)
    body.update({
        "admin_state_up": row.admin_state_up, "status": row.status, "shared": row.shared,
        "subnets": subnet_ids, "mtu": row.mtu, "router:external": row.router_external,
        "is_default": row.is_default,
        "availability_zone_hints": [z for z in row.availability_zone_hints.split(",") if z],
        "availability_zones": zones or [],
        "ipv4_address_scope": (scopes or {}).get(4), "ipv6_address_scope": (scopes or {}).get(6),
        "l2_adjacency": True,
        "provider:network_type": segment.network_type if segment else None,
        "provider:physical_network": segment.physical_network if segment else None,
        "provider:segmentation_id": segment.segmentation_id if segment else None,
    })
    if port_security:
        body["port_security_enabled"] = row.port_security_enabled
    return body


def subnet(row: m.Subnet, tags: list[str]) -> dict:
    body = _standard(row, tags)
    body.update({
        "network_id": row.network_id, "ip_version": row.ip_version, "cidr": row.cidr,
        "gateway_ip": row.gateway_ip, "enable_dhcp": row.enable_dhcp,
        "allocation_pools": [{"start": p.first_ip, "end": p.last_ip} for p in row.allocation_pools],
        "dns_nameservers": [d.address for d in row.dns_nameservers],
        "host_routes": [{"destination": r.destination, "nexthop": r.nexthop} for r in row.host_routes],
        "ipv6_ra_mode": row.ipv6_ra_mode, "ipv6_address_mode": row.ipv6_address_mode,
        "subnetpool_id": row.subnetpool_id, "segment_id": None,
        "service_types": [t.service_type for t in row.service_type_rows],  # type: ignore[attr-defined]
    })
    return body


def port(row: m.Port, tags: list[str], port_security: bool) -> dict:
    body = _standard(row, tags)
    body.update({
        "network_id": row.network_id, "mac_address": row.mac_address, "admin_state_up": row.admin_state_up,
        "status": row.status, "device_id": row.device_id, "device_owner": row.device_owner,
        "fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in row.fixed_ips],
        "allowed_address_pairs": [{"ip_address": p.ip_address, "mac_address": p.mac_address}
                                  for p in row.allowed_address_pairs],
        "extra_dhcp_opts": [{"opt_name": o.opt_name, "opt_value": o.opt_value, "ip_version": o.ip_version}
                            for o in row.extra_dhcp_opts],
        "security_groups": sorted(b.security_group_id for b in row.security_group_bindings),
        "binding:host_id": row.binding_host_id, "binding:vif_type": row.binding_vif_type,
        "binding:vif_details": orjson.loads(row.binding_vif_details),
        "binding:vnic_type": row.binding_vnic_type, "binding:profile": orjson.loads(row.binding_profile),
        "ip_allocation": "immediate",
    })
    if port_security:
        body["port_security_enabled"] = row.port_security_enabled
    return body
