"""Rows -> the API's resource dicts, as an admin sees them (the API hides what a member may not see).

The same dicts go into the change log, so agents see what the API shows.
Related ids (a network's subnets, tags) are loaded for a whole page at once by the callers
(``related_*``), never one query per row.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from types import SimpleNamespace

import orjson
from sqlalchemy import select
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


def subnet_ids_of(session: Session, network_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(network_ids)
    result: dict[str, list[str]] = defaultdict(list)
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(select(m.Subnet.network_id, m.Subnet.id)
                               .where(m.Subnet.network_id.in_(ids[start:start + CHUNK]))
                               .order_by(m.Subnet.created_at, m.Subnet.id))
        for nid, sid in rows:
            result[nid].append(sid)
    return result


def _by_port(session: Session, table, ids: list[str], order) -> dict[str, list]:  # noqa: ANN001
    result: dict[str, list] = defaultdict(list)
    for start in range(0, len(ids), CHUNK):
        for row in session.execute(select(table).where(table.c.port_id.in_(ids[start:start + CHUNK]))
                                   .order_by(table.c.port_id, order)):
            result[row.port_id].append(row)
    return result


def port_rows(session: Session, rows: list, port_security: bool) -> list[dict]:
    """Ports read as plain rows (a list of thousands): the same dicts as ``port``, without
    building an ORM object per port and per address (most of a large list's cost)."""
    ids = [r.id for r in rows]
    ips = _by_port(session, m.IPAllocation.__table__, ids, m.IPAllocation.__table__.c.position)
    groups = _by_port(session, m.PortSecurityGroupBinding.__table__, ids,
                      m.PortSecurityGroupBinding.__table__.c.security_group_id)
    pairs = _by_port(session, m.AllowedAddressPair.__table__, ids, m.AllowedAddressPair.__table__.c.position)
    opts = _by_port(session, m.ExtraDhcpOpt.__table__, ids, m.ExtraDhcpOpt.__table__.c.position)
    tag_map = tags_of(session, ids)
    empty: list = []
    return [port(SimpleNamespace(**r._mapping, fixed_ips=ips.get(r.id, empty),  # type: ignore[arg-type]
                                 security_group_bindings=groups.get(r.id, empty),
                                 allowed_address_pairs=pairs.get(r.id, empty),
                                 extra_dhcp_opts=opts.get(r.id, empty)),
                 tag_map.get(r.id, empty), port_security) for r in rows]


def _standard(row: object, tags: list[str]) -> dict:
    return {
        "id": row.id, "name": row.name, "description": row.description,  # type: ignore[attr-defined]
        "project_id": row.project_id, "tenant_id": row.project_id,  # type: ignore[attr-defined]
        "created_at": ts(row.created_at), "updated_at": ts(row.updated_at),  # type: ignore[attr-defined]
        "revision_number": row.revision_number, "tags": tags,  # type: ignore[attr-defined]
    }


def network(row: m.Network, subnet_ids: list[str], tags: list[str], port_security: bool) -> dict:
    segment = row.segments[0] if row.segments else None
    body = _standard(row, tags)
    body.update({
        "admin_state_up": row.admin_state_up, "status": row.status, "shared": row.shared,
        "subnets": subnet_ids, "mtu": row.mtu, "router:external": row.router_external,
        "is_default": row.is_default,
        "availability_zone_hints": [z for z in row.availability_zone_hints.split(",") if z],
        "availability_zones": [], "ipv4_address_scope": None, "ipv6_address_scope": None,
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
        "subnetpool_id": row.subnetpool_id, "service_types": [], "segment_id": None,
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
