"""Floating IPs: create on a ``router:external`` network, associate with a port, disassociate, delete.

Create: the network must be external (400) and have an IPv4 subnet (400); a port of its own
(``network:floatingip``, device_id the floating IP, no project, status ``N/A``) takes an address
from it — any, or the ``subnet_id``/``floating_ip_address`` asked for (the address: admin only).
``status`` is DOWN while it is not associated (set here, at create and on disassociation), and
from each new association (a port, or another port or address) until the L3 agent hosting its
router reports it (``portstatus``: ACTIVE, or ERROR).

Association (``port_id``, optionally ``fixed_ip_address``; Neutron's rules and messages): the port
must be visible to the caller and, unless the caller is an admin, of the floating IP's project; it
must have exactly one IPv4 address unless ``fixed_ip_address`` names one; ``router_id`` is derived:
a router with a gateway on the floating IP's network and an interface on the port's subnet (the one
holding the subnet's gateway_ip first), else 404 ExternalGatewayForFloatingIPNotFound.

Consistency: one floating IP per fixed address — checked, and enforced by the unique key
``(fixed_port_id, fixed_ip_address)``: of two concurrent associations the loser's transaction fails
on the key, is retried, and then finds the winner's (409 FloatingIPPortAlreadyAssociated). The
internal port and then the router are locked (``FOR UPDATE``) before the association is written,
and the route to the router is re-checked once the router is locked, so a port deletion, a gateway
clear or an interface removal racing the association either commits first (and is seen) or waits
and then sees the association (and refuses, or disassociates).
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, l3, l3ports, networks as networks_service, ports as ports_service, query
from baryon.service import quotas, tags
from baryon.service.base import Env, check_revision, record_update, require_write, stamp_new
from baryon.service.context import Context

LISTING = query.Listing(
    model=m.FloatingIP,
    columns={
        "id": m.FloatingIP.id, "description": m.FloatingIP.description,
        "project_id": m.FloatingIP.project_id, "tenant_id": m.FloatingIP.project_id,
        "floating_ip_address": m.FloatingIP.floating_ip_address,
        "floating_network_id": m.FloatingIP.floating_network_id, "router_id": m.FloatingIP.router_id,
        "port_id": m.FloatingIP.fixed_port_id, "fixed_ip_address": m.FloatingIP.fixed_ip_address,
        "status": m.FloatingIP.status, "revision_number": m.FloatingIP.revision_number,
        "created_at": m.FloatingIP.created_at, "updated_at": m.FloatingIP.updated_at,
    },
    sortable=frozenset({"id", "description", "project_id", "tenant_id", "floating_ip_address",
                        "floating_network_id", "router_id", "fixed_ip_address", "status", "revision_number",
                        "created_at", "updated_at"}),
)

ROUTER_LOCK_ATTEMPTS = 3


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else m.FloatingIP.project_id == ctx.project_id


def load_visible(session: Session, ctx: Context, fip_id: str, *, for_update: bool = False) -> m.FloatingIP:
    stmt = select(m.FloatingIP).where(m.FloatingIP.id == fip_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
        raise errors.FloatingIPNotFound(floatingip_id=fip_id)
    return row


def _bad(msg: str) -> errors.BadRequest:
    return errors.BadRequest(resource="floatingip", msg=msg)


def delete_row(env: Env, session: Session, row: m.FloatingIP) -> None:
    body = l3.floatingip_bodies(session, [row])[0]
    port = session.get(m.Port, row.floating_port_id)
    tags.clear_all(session, row.id)
    session.delete(row)
    session.flush()
    feed.record(session, "floatingip", "delete", body)
    if port is not None:
        l3ports.delete(env, session, port)


def delete_unassociated(env: Env, session: Session, network_id: str) -> None:
    """Deleting an external network takes its unassociated floating IPs with it (Neutron's
    ``delete_disassociated_floatingips``); associated ones keep the network in use."""
    for row in session.execute(select(m.FloatingIP).where(
            m.FloatingIP.floating_network_id == network_id, m.FloatingIP.fixed_port_id.is_(None),
            m.FloatingIP.router_id.is_(None)).order_by(m.FloatingIP.id)).scalars().all():
        delete_row(env, session, row)


class FloatingIPs:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.FloatingIP]) -> list[dict]:
        return l3.floatingip_bodies(session, rows)

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_floatingip")

        def work(session: Session) -> list[dict]:
            quotas.check_items(session, self.env, ctx.project_id, items, "floatingip")
            rows = [self._create_one(session, ctx, attrs) for attrs in items]
            session.flush()
            result = self.render(session, rows)
            for body in result:
                feed.record(session, "floatingip", "create", body)
            return result

        return self.env.write(work)

    def _create_one(self, session: Session, ctx: Context, attrs: dict) -> m.FloatingIP:
        network_id = attrs["floating_network_id"]
        network = networks_service.load_visible(session, ctx, network_id)
        if not network.router_external:
            raise _bad(f"Network {network_id} is not a valid external network")
        if session.execute(select(m.Subnet.id).where(m.Subnet.network_id == network_id,
                                                     m.Subnet.ip_version == 4).limit(1)).first() is None:
            raise _bad(f"Network {network_id} does not contain any IPv4 subnet")
        wanted = {}
        if attrs.get("subnet_id"):
            wanted["subnet_id"] = attrs["subnet_id"]
        if attrs.get("floating_ip_address"):
            wanted["ip_address"] = attrs["floating_ip_address"]
        row = m.FloatingIP()
        stamp_new(row, ctx.project_id, attrs)
        port = l3ports.create(self.env, session, network_id=network_id, project_id="", device_id=row.id,
                              device_owner=l3.FLOATINGIP, fixed_ips=[wanted] if wanted else None, status="N/A")
        v4 = [a for a in port.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4]
        if not v4:
            raise errors.ExternalIpAddressExhausted(net_id=network_id)
        row.floating_network_id, row.floating_port_id = network_id, port.id
        row.floating_ip_address = v4[0].ip_address
        row.status = "DOWN"
        row.fixed_port_id = row.fixed_ip_address = row.router_id = None
        self._associate(session, ctx, row, attrs)
        session.add(row)
        session.flush()
        tags.set_initial(session, "floatingips", row.id, attrs.get("tags", []))
        return row

    # ---------------------------------------------------------------- association

    def _associate(self, session: Session, ctx: Context, row: m.FloatingIP, attrs: dict) -> None:
        """Apply ``port_id``/``fixed_ip_address`` from a create or update body."""
        if attrs.get("fixed_ip_address") and not attrs.get("port_id"):
            raise _bad("fixed_ip_address cannot be specified without a port_id")
        if "port_id" not in attrs:
            return
        before = (row.fixed_port_id, row.fixed_ip_address, row.router_id)
        self._point(session, ctx, row, attrs)
        if (row.fixed_port_id, row.fixed_ip_address, row.router_id) != before:
            row.status = "DOWN"  # wired nowhere (yet) for the new association

    def _point(self, session: Session, ctx: Context, row: m.FloatingIP, attrs: dict) -> None:
        if attrs["port_id"] is None:
            row.fixed_port_id = row.fixed_ip_address = row.router_id = None
            return
        ports_service.load_visible(session, ctx, attrs["port_id"])  # 404 for a port the caller cannot see
        port = session.execute(select(m.Port).where(m.Port.id == attrs["port_id"]).with_for_update()
                               .execution_options(populate_existing=True)).scalar_one_or_none()
        if port is None:  # deleted while we waited for its lock
            raise errors.PortNotFound(port_id=attrs["port_id"])
        if port.project_id != row.project_id and not ctx.is_admin:
            raise _bad(f"Cannot process floating IP association with Port {port.id}, since that port is owned "
                       f"by a different tenant")
        if port.device_owner == "network:dhcp":
            raise _bad(f"Port {port.id} is unable to be assigned a floating IP")
        address, subnet_id = self._internal_address(port, attrs.get("fixed_ip_address"))
        router_id = self._lock_router(session, port, subnet_id, row.floating_network_id)
        taken = session.execute(select(m.FloatingIP.id).where(
            m.FloatingIP.fixed_port_id == port.id, m.FloatingIP.fixed_ip_address == address,
            m.FloatingIP.id != row.id).limit(1)).first()
        if taken is not None:
            raise errors.FloatingIPPortAlreadyAssociated(
                port_id=port.id, fip_id=row.id, floating_ip_address=row.floating_ip_address, fixed_ip=address,
                net_id=row.floating_network_id)
        row.fixed_port_id, row.fixed_ip_address, row.router_id = port.id, address, router_id

    @staticmethod
    def _internal_address(port: m.Port, fixed_ip: str | None) -> tuple[str, str]:
        if fixed_ip:
            if ipaddress.ip_address(fixed_ip).version != 4:
                raise _bad(f"Cannot process floating IP association with {fixed_ip}, since that is not an IPv4 "
                           f"address")
            for address in port.fixed_ips:
                if address.ip_address == fixed_ip:
                    return fixed_ip, address.subnet_id
            raise _bad(f"Port {port.id} does not have fixed ip {fixed_ip}")
        v4 = [a for a in port.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4]
        if not v4:
            raise _bad(f"Cannot add floating IP to port {port.id} that has no fixed IPv4 addresses")
        if len(v4) > 1:
            raise _bad(f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 address "
                       f"when assigning a floating IP")
        return v4[0].ip_address, v4[0].subnet_id

    def _lock_router(self, session: Session, port: m.Port, subnet_id: str, external_network_id: str) -> str:
        """The router the association goes through, locked, and still a valid path once locked."""
        router_id = self._router_for(session, port, subnet_id, external_network_id)
        for _ in range(ROUTER_LOCK_ATTEMPTS):
            session.execute(select(m.Router.id).where(m.Router.id == router_id).with_for_update())
            now = self._router_for(session, port, subnet_id, external_network_id)
            if now == router_id:
                return router_id
            router_id = now
        raise errors.ConcurrentWriteConflict()

    @staticmethod
    def _router_for(session: Session, port: m.Port, subnet_id: str, external_network_id: str) -> str:
        """Neutron's ``get_router_for_floatingip``: routers with an interface on the port's subnet
        and their gateway on the external network; the one whose interface is the subnet's
        gateway_ip first."""
        interface = m.Port.__table__.alias("interface")
        gateway = m.Port.__table__.alias("gateway")
        candidates = session.execute(
            select(m.RouterPort.router_id, m.IPAllocation.ip_address)
            .join(interface, interface.c.id == m.RouterPort.port_id)
            .join(m.IPAllocation, m.IPAllocation.port_id == interface.c.id)
            .join(m.Router, m.Router.id == m.RouterPort.router_id)
            .join(gateway, gateway.c.id == m.Router.gw_port_id)
            .where(interface.c.network_id == port.network_id, m.RouterPort.port_type == l3.ROUTER_INTERFACE,
                   m.IPAllocation.subnet_id == subnet_id, gateway.c.network_id == external_network_id)
            .order_by(m.RouterPort.router_id)).all()
        gateway_ip = session.execute(select(m.Subnet.gateway_ip).where(m.Subnet.id == subnet_id)).scalar()
        for router_id, address in candidates:
            if address == gateway_ip:
                return router_id
        if candidates:
            return candidates[0][0]
        raise errors.ExternalGatewayForFloatingIPNotFound(subnet_id=subnet_id, external_network_id=external_network_id,
                                                          port_id=port.id)

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, fip_id: str) -> dict:
        with self.env.db.read() as session:
            return self.render(session, [load_visible(session, ctx, fip_id)])[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible_clause(ctx), q,
                               lambda marker: errors.FloatingIPNotFound(floatingip_id=marker))
            return self.render(session, list(session.execute(stmt).scalars()))

    # ---------------------------------------------------------------- update

    def update(self, ctx: Context, fip_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_floatingip")

        def work(session: Session) -> dict:
            row = load_visible(session, ctx, fip_id, for_update=True)
            check_revision(row, if_match)
            before = self.render(session, [row])[0]
            if "description" in attrs:
                row.description = attrs["description"]
            # NOTE: as Neutron: an empty body (``{"floatingip": {}}``) disassociates, as it did when
            # the association was a floating IP's only updatable attribute; one that only changes
            # other attributes (the description) keeps the association.
            self._associate(session, ctx, row, attrs if attrs else {"port_id": None})
            return record_update(session, "floatingip", row, before, lambda r: self.render(session, [r])[0])

        return self.env.write(work)

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, fip_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_floatingip")

        def work(session: Session) -> None:
            row = load_visible(session, ctx, fip_id, for_update=True)
            check_revision(row, if_match)
            delete_row(self.env, session, row)

        self.env.write(work)
