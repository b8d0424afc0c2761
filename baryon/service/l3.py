"""What routers and floating IPs demand of the core resources, and how a floating IP renders.

The core services call these guards inside their own transactions (Neutron's L3 callbacks):
- ``before_port_delete(session, ctx, port)``: the port row is locked first (``FOR UPDATE``), so
  a floating IP association racing the delete either committed before (and is undone here) or
  waits and then finds no port. A router's or a floating IP's own port (``network:router_*``,
  ``network:floatingip``) holding addresses cannot go through ``DELETE /ports`` while its router
  or floating IP exists: 409 ``ServicePortInUse`` (``prevent_l3_port_deletion``). Floating IPs
  associated with the port are disassociated, each logged as a floating IP update.
- ``check_port_addresses(session, port)``: a port keeps the fixed IP a floating IP uses (400).
- ``check_unexternal(session, network_id)``: a network with router gateways stays external (409).

Nothing here imports the port, network or router services: they import this module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, render
from baryon.service.base import bump
from baryon.service.context import Context

ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
FLOATINGIP = "network:floatingip"
HA_REPLICATED_INTERFACE = "network:ha_router_replicated_interface"
# Ports that only the L3 API may delete (Neutron's ``router_device_owners``).
L3_OWNERS = (HA_REPLICATED_INTERFACE, ROUTER_INTERFACE, ROUTER_GATEWAY, FLOATINGIP)


# ---------------------------------------------------------------- floating IP bodies


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), render.CHUNK):
        yield ids[start:start + render.CHUNK]


def port_details(session: Session, port_ids: Iterable[str]) -> dict[str, dict]:
    """fip-port-details: what a floating IP shows of the port it is associated with."""
    ids = list(dict.fromkeys(port_ids))
    result: dict[str, dict] = {}
    for chunk in _chunks(ids):
        for p in session.execute(select(
                m.Port.id, m.Port.name, m.Port.network_id, m.Port.mac_address, m.Port.admin_state_up,
                m.Port.status, m.Port.device_id, m.Port.device_owner).where(m.Port.id.in_(chunk))):
            result[p.id] = {"name": p.name, "network_id": p.network_id, "mac_address": p.mac_address,
                            "admin_state_up": p.admin_state_up, "status": p.status, "device_id": p.device_id,
                            "device_owner": p.device_owner}
    return result


def floatingip(row: m.FloatingIP, tags: list[str], details: dict | None) -> dict:
    return {
        "id": row.id, "project_id": row.project_id, "tenant_id": row.project_id,
        "floating_ip_address": row.floating_ip_address, "floating_network_id": row.floating_network_id,
        "router_id": row.router_id, "port_id": row.fixed_port_id, "fixed_ip_address": row.fixed_ip_address,
        "status": row.status, "description": row.description, "port_details": details, "tags": tags,
        "created_at": render.ts(row.created_at), "updated_at": render.ts(row.updated_at),
        "revision_number": row.revision_number,
    }


def floatingip_bodies(session: Session, rows: list[m.FloatingIP]) -> list[dict]:
    tag_map = render.tags_of(session, [r.id for r in rows])
    details = port_details(session, (r.fixed_port_id for r in rows if r.fixed_port_id))
    return [floatingip(r, tag_map.get(r.id, []), details.get(r.fixed_port_id) if r.fixed_port_id else None)
            for r in rows]


# ---------------------------------------------------------------- guards for the core resources


def before_port_delete(session: Session, ctx: Context, port: m.Port) -> None:
    locked = session.execute(select(m.Port).where(m.Port.id == port.id).with_for_update()
                             .execution_options(populate_existing=True)).scalar_one_or_none()
    if locked is None:
        raise errors.PortNotFound(port_id=port.id)
    if locked.device_owner in L3_OWNERS and locked.fixed_ips:
        model = m.FloatingIP if locked.device_owner == FLOATINGIP else m.Router
        if session.execute(select(model.id).where(model.id == locked.device_id)).first() is not None:
            raise errors.ServicePortInUse(port_id=locked.id, reason=f"has device owner {locked.device_owner}")
    disassociate_port(session, ctx, locked.id)


def disassociate_port(session: Session, ctx: Context, port_id: str) -> None:
    """Every floating IP associated with the port loses its association (Neutron's
    ``disassociate_floatingips``); a member may not undo an association made for another project."""
    fips = list(session.execute(select(m.FloatingIP).where(m.FloatingIP.fixed_port_id == port_id)
                                .order_by(m.FloatingIP.id).with_for_update()).scalars())
    if not fips:
        return
    if not ctx.is_admin and any(f.project_id != ctx.project_id for f in fips):
        raise errors.FipAssociated(port_id=port_id)
    for fip in fips:
        fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
        fip.status = "DOWN"
        bump(fip)
    session.flush()
    for body in floatingip_bodies(session, fips):
        feed.record(session, "floatingip", "update", body)


def check_port_addresses(session: Session, port: m.Port) -> None:
    """After a change of ``fixed_ips``: the addresses floating IPs use must still be there. The
    port row is locked first, as an association locks it: one of the two waits for the other."""
    session.execute(select(m.Port.id).where(m.Port.id == port.id).with_for_update())
    used = session.execute(select(m.FloatingIP.fixed_ip_address).where(
        m.FloatingIP.fixed_port_id == port.id, m.FloatingIP.fixed_ip_address.is_not(None))).scalars().all()
    held = {str(ipaddress.ip_address(a.ip_address)) for a in port.fixed_ips}
    if any(address not in held for address in used):
        raise errors.BadRequest(resource="port", msg=f"Cannot update the fixed_ips of the port {port.id}, because "
                                                     f"its original fixed_ip has been associated to a floating ip")


def check_unexternal(session: Session, network_id: str) -> None:
    """Before ``router:external`` is turned off. The network row is locked first: a gateway being
    set at the same time (which locks it too) either committed before, and is seen, or waits."""
    session.execute(select(m.Network.id).where(m.Network.id == network_id).with_for_update())
    gateway = session.execute(select(m.Port.id).where(
        m.Port.network_id == network_id, m.Port.device_owner == ROUTER_GATEWAY).limit(1)).first()
    if gateway is not None:
        raise errors.ExternalNetworkInUse(net_id=network_id)
