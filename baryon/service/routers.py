"""Routers: create, show, list, update, delete; the external gateway (Neutron's ext-gw-mode), extra
routes (extraroute, extraroute-atomic) and the interface actions (``router_interfaces``).

Consistency: every write that depends on a router's ports or routes (gateway changes, interface
add/remove, routes, delete) first locks the router row (``SELECT ... FOR UPDATE``; SQLite
serialises writers anyway), so such writes apply one after the other and each sees what the
previous one committed. A floating IP association locks the router it goes through
(``floatingips``), so a gateway or an interface cannot disappear under a new association.

Gateway: ``external_gateway_info`` ``{"network_id", "enable_snat", "external_fixed_ips"}``; the
network must be ``router:external``; the gateway port (``network:router_gateway``, device_id the
router, no project) gets addresses on the external subnets (or those asked for, admin only), and
is replaced when the network changes, re-addressed when ``external_fixed_ips`` change, deleted
when the gateway is cleared (``{}`` or null) — not while floating IPs use the router (409).
``enable_snat`` (admin only) defaults to ``[DEFAULT] enable_snat_by_default``, also when a
gateway is set again without it, as in Neutron.

Routes: each nexthop must be on a subnet of one of the router's ports and not be one of the
router's own addresses (400 InvalidRoutes); at most ``[DEFAULT] max_routes``. An interface a
route's nexthop needs cannot be removed (409).

``ha`` and ``distributed`` are reported false to admins: Baryon's routers are legacy routers on
one L3 agent; asking for true is a 400.

``flavor_id`` (l3-flavors): a router may be made with an L3_ROUTER_NAT flavor (checked by
``flavors.router_flavor``), which it shows ever after; the flavor cannot be deleted meanwhile.

Scheduling (``l3scheduler``, given as ``scheduler``): a router is placed on an L3 agent when it is
created, and when it gets a gateway or an interface while no agent hosts it; its ports are
created on (or moved to) that agent's host.

Status: a router is ``ALLOCATING`` from its creation, and whenever it is (re)scheduled, left
without an agent, or set up again (``admin_state_up`` back to true), until its L3 agent reports it built: ``ACTIVE``, or ``ERROR``; ``status_reason``
says why it is not ACTIVE (no live L3 agent to host it, its agent has not built it yet, or the
agent's own error) and is null when it is. NOTE: this differs from Neutron on purpose: Neutron's
legacy routers are ACTIVE from the start whether or not any agent hosts them, so a router that
cannot work looks like one that does. Baryon's status says what the agent has realised, as a
port's does, and a client may wait for ACTIVE; ``status_reason`` is Baryon's own attribute.

Availability zones: ``availability_zone_hints`` (set at creation) must name zones L3 agents
report (404 ``AvailabilityZoneNotFound``); ``availability_zones`` are those of the L3 agent hosting
the router (``availabilityzones``). Scheduling ignores hints, as Neutron's default scheduler does.

Change log: router create/update/delete; the gateway and interface ports as port changes.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import (
    bindings, errors, feed, l3, l3ports, networks as networks_service, query, quotas, render, router_interfaces, tags,
)
from baryon.service import flavors
from baryon.service import availabilityzones
from baryon.service.base import Env, bump, check_revision, record_update, require_write, stamp_new
from baryon.service.context import Context

if TYPE_CHECKING:  # NOTE: l3scheduler renders routers with this module's ``bodies``
    from baryon.service.l3scheduler import L3Scheduler

ALLOCATING = "ALLOCATING"  # Neutron's constant for a router being set up
UNSCHEDULED = "no live L3 agent to host the router"
WAITING = "waiting for its L3 agent to build the router"

LISTING = query.Listing(
    model=m.Router,
    columns={
        "id": m.Router.id, "name": m.Router.name, "description": m.Router.description,
        "project_id": m.Router.project_id, "tenant_id": m.Router.project_id,
        "admin_state_up": m.Router.admin_state_up, "status": m.Router.status,
        "revision_number": m.Router.revision_number, "created_at": m.Router.created_at,
        "updated_at": m.Router.updated_at,
    },
    sortable=frozenset({"id", "name", "description", "project_id", "tenant_id", "admin_state_up", "status",
                        "revision_number", "created_at", "updated_at"}),
)


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else m.Router.project_id == ctx.project_id


def load_visible(session: Session, ctx: Context, router_id: str, *, for_update: bool = False) -> m.Router:
    """A router is seen (and changed) by its project and admins only; others get a 404."""
    stmt = select(m.Router).where(m.Router.id == router_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
        raise errors.RouterNotFound(router_id=router_id)
    return row


def bodies(session: Session, rows: list[m.Router]) -> list[dict]:
    tag_map = render.tags_of(session, [r.id for r in rows])
    zones = availabilityzones.of_routers(session, [r.id for r in rows])
    gw_ids = [r.gw_port_id for r in rows if r.gw_port_id]
    networks: dict[str, str] = {}
    addresses: dict[str, list[dict]] = defaultdict(list)
    if gw_ids:
        networks = dict(session.execute(select(m.Port.id, m.Port.network_id).where(m.Port.id.in_(gw_ids))).all())
        for port_id, subnet_id, ip in session.execute(
                select(m.IPAllocation.port_id, m.IPAllocation.subnet_id, m.IPAllocation.ip_address)
                .where(m.IPAllocation.port_id.in_(gw_ids)).order_by(m.IPAllocation.port_id, m.IPAllocation.position)):
            addresses[port_id].append({"subnet_id": subnet_id, "ip_address": ip})
    result = []
    for row in rows:
        gateway = None
        if row.gw_port_id and row.gw_port_id in networks:
            gateway = {"network_id": networks[row.gw_port_id], "enable_snat": row.enable_snat,
                       "external_fixed_ips": addresses.get(row.gw_port_id, [])}
        result.append({
            "id": row.id, "name": row.name, "description": row.description,
            "project_id": row.project_id, "tenant_id": row.project_id,
            "admin_state_up": row.admin_state_up, "status": row.status, "status_reason": row.status_reason,
            "external_gateway_info": gateway,
            "routes": [{"destination": r.destination, "nexthop": r.nexthop}
                       for r in sorted(row.routes, key=lambda r: (r.destination, r.nexthop))],
            "ha": False, "distributed": False, "tags": tag_map.get(row.id, []),
            "created_at": render.ts(row.created_at), "updated_at": render.ts(row.updated_at),
            "revision_number": row.revision_number, "flavor_id": row.flavor_id,
            "availability_zone_hints": availabilityzones.hints_of(row.availability_zone_hints),
            "availability_zones": zones.get(row.id, []),
        })
    return result


def _bad(msg: str) -> errors.BadRequest:
    return errors.BadRequest(resource="router", msg=msg)


def _check_flavor(attrs: dict) -> None:
    if attrs.get("ha"):
        raise _bad("HA routers are not supported: Baryon's routers are legacy routers on one L3 agent")
    if attrs.get("distributed"):
        raise _bad("Distributed routers are not supported: Baryon's routers are legacy routers on one L3 agent")


def _check_gateway_policy(ctx: Context, action: str, info: dict | None) -> None:
    """``enable_snat`` and ``external_fixed_ips`` are the admin's to set (Neutron's policy)."""
    if ctx.is_admin or not info:
        return
    for key in ("enable_snat", "external_fixed_ips"):
        if key in info:
            base = f"rule:{action}_router"
            raise errors.PolicyNotAuthorized(rule=f"({base} and {base}:external_gateway_info and "
                                                  f"{base}:external_gateway_info:{key})")


def _external_ips_changed(port: m.Port, wanted: list[dict]) -> bool:
    """Neutron's ``_check_for_external_ip_change``: asked-for subnets or addresses differ."""
    if {a.subnet_id for a in port.fixed_ips} != {f["subnet_id"] for f in wanted if f.get("subnet_id")}:
        return True
    return {a.ip_address for a in port.fixed_ips} != {f["ip_address"] for f in wanted if f.get("ip_address")}


class Routers:
    def __init__(self, env: Env, scheduler: L3Scheduler):
        self.env = env
        self.scheduler = scheduler

    def render(self, session: Session, rows: list[m.Router]) -> list[dict]:
        return bodies(session, rows)

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_router")

        def work(session: Session) -> list[dict]:
            quotas.check_items(session, self.env, ctx.project_id, items, "router")
            rows = [self._create_one(session, ctx, attrs) for attrs in items]
            session.flush()
            result = self.render(session, rows)
            for body in result:
                feed.record(session, "router", "create", body)
            return result

        return self.env.write(work)

    def _create_one(self, session: Session, ctx: Context, attrs: dict) -> m.Router:
        _check_flavor(attrs)
        gateway = attrs.get("external_gateway_info")
        _check_gateway_policy(ctx, "create", gateway)
        row = m.Router()
        stamp_new(row, ctx.project_id, attrs)
        row.admin_state_up = attrs.get("admin_state_up", True)
        row.status, row.status_reason = ALLOCATING, UNSCHEDULED
        row.enable_snat = self.env.settings.DEFAULT.enable_snat_by_default
        row.gw_port_id = None
        # l3-flavors: its profile's provider must be one Baryon has (single_node, what it builds)
        row.flavor_id = flavors.router_flavor(session, attrs["flavor_id"]).id if attrs.get("flavor_id") else None
        availabilityzones.validate(session, "router", attrs.get("availability_zone_hints", []))
        row.availability_zone_hints = ",".join(attrs.get("availability_zone_hints", []))
        row.ports, row.routes = [], []
        session.add(row)
        session.flush()
        tags.set_initial(session, "routers", row.id, attrs.get("tags", []))
        if gateway:
            self._set_gateway(session, ctx, row, gateway)
        self.scheduler.schedule(session, row)
        return row

    # ---------------------------------------------------------------- gateway

    def _set_gateway(self, session: Session, ctx: Context, row: m.Router, info: dict | None) -> None:
        network_id = info.get("network_id") if info else None
        wanted_ips = (info.get("external_fixed_ips") or []) if info else []
        row.enable_snat = (info["enable_snat"] if info and "enable_snat" in info
                           else self.env.settings.DEFAULT.enable_snat_by_default)
        network, subnets = None, []
        if network_id:
            # NOTE: locked, so that router:external cannot be turned off under a new gateway.
            network = networks_service.load_visible(session, ctx, network_id, for_update=True)
            if not network.router_external:
                raise _bad(f"Network {network_id} is not an external network")
            subnets = list(session.execute(select(m.Subnet).where(m.Subnet.network_id == network_id)
                                           .order_by(m.Subnet.created_at, m.Subnet.id)).scalars())
            gateways = {s.gateway_ip for s in subnets if s.gateway_ip}
            for wanted in wanted_ips:
                if wanted.get("ip_address") in gateways:
                    raise _bad(f"External IP {wanted['ip_address']} is the same as the gateway IP")
        current = session.get(m.Port, row.gw_port_id) if row.gw_port_id else None
        if current is not None and current.network_id == network_id:
            if wanted_ips and _external_ips_changed(current, wanted_ips):
                l3ports.readdress(self.env, session, current, wanted_ips)
            return
        if current is not None:
            self._drop_gateway(session, row, current)
        if network is None:
            return
        router_interfaces.check_subnets_free(session, router_interfaces.ports_of(session, row), subnets)
        port = l3ports.create(self.env, session, network_id=network.id, project_id="", device_id=row.id,
                              device_owner=l3.ROUTER_GATEWAY, fixed_ips=wanted_ips or None,
                              host=self.scheduler.host_of(session, row.id))
        row.ports.append(m.RouterPort(router_id=row.id, port_id=port.id, port_type=l3.ROUTER_GATEWAY))
        row.gw_port_id = port.id

    def _drop_gateway(self, session: Session, row: m.Router, port: m.Port) -> None:
        if session.execute(select(m.FloatingIP.id).where(m.FloatingIP.router_id == row.id).limit(1)).first():
            raise errors.RouterExternalGatewayInUseByFloatingIp(router_id=row.id, net_id=port.network_id)
        row.gw_port_id = None
        for rp in [rp for rp in row.ports if rp.port_id == port.id]:
            row.ports.remove(rp)
        session.flush()
        l3ports.delete(self.env, session, port)

    # ---------------------------------------------------------------- routes

    def _set_routes(self, session: Session, row: m.Router, routes: list[dict]) -> None:
        limit = self.env.settings.DEFAULT.max_routes
        if len(routes) > limit:
            raise errors.RoutesExhausted(router_id=row.id, quota=limit)
        wanted = list(dict.fromkeys((r["destination"], r["nexthop"]) for r in routes))
        for route in [r for r in row.routes if (r.destination, r.nexthop) not in wanted]:
            row.routes.remove(route)
        session.flush()
        have = {(r.destination, r.nexthop) for r in row.routes}
        row.routes.extend(m.RouterRoute(router_id=row.id, destination=d, nexthop=n)
                          for d, n in wanted if (d, n) not in have)

    def _check_routes(self, session: Session, row: m.Router, routes: list[dict]) -> None:
        """Neutron's ``_validate_routes``: each nexthop on a subnet of the router's ports (its
        gateway's included), and none of the router's own addresses."""
        cidrs, own = [], set()
        for port in router_interfaces.ports_of(session, row):
            for address in port.fixed_ips:
                subnet = session.get(m.Subnet, address.subnet_id)
                if subnet is not None:
                    cidrs.append(ipaddress.ip_network(subnet.cidr))
                own.add(ipaddress.ip_address(address.ip_address))
        for route in routes:
            nexthop = ipaddress.ip_address(route["nexthop"])
            if not any(nexthop in cidr for cidr in cidrs):
                raise errors.InvalidRoutes(routes=routes, reason="the nexthop is not connected with router")
            if nexthop in own:
                raise errors.InvalidRoutes(routes=routes, reason="the nexthop is used by router")

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, router_id: str) -> dict:
        with self.env.db.read() as session:
            return self.render(session, [load_visible(session, ctx, router_id)])[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible_clause(ctx), q,
                               lambda marker: errors.RouterNotFound(router_id=marker))
            return self.render(session, list(session.execute(stmt).scalars()))

    # ---------------------------------------------------------------- update

    def update(self, ctx: Context, router_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_router")
        return self._locked(ctx, router_id, lambda session, row: self._apply(session, ctx, row, attrs), if_match)

    def _locked(self, ctx: Context, router_id: str, change: Callable[[Session, m.Router], None],
                if_match: int | None = None) -> dict:
        """Lock the router, apply ``change``; a changed representation is a new revision, logged."""

        def work(session: Session) -> dict:
            row = load_visible(session, ctx, router_id, for_update=True)
            check_revision(row, if_match)
            before = self.render(session, [row])[0]
            change(session, row)
            return record_update(session, "router", row, before, lambda r: self.render(session, [r])[0])

        return self.env.write(work)

    def _apply(self, session: Session, ctx: Context, row: m.Router, attrs: dict) -> None:
        _check_flavor(attrs)
        if "routes" in attrs:
            self._set_routes(session, row, attrs["routes"] or [])
        if "external_gateway_info" in attrs:
            _check_gateway_policy(ctx, "update", attrs["external_gateway_info"])
            self._set_gateway(session, ctx, row, attrs["external_gateway_info"])
            if row.gw_port_id:
                self.scheduler.schedule(session, row)
        if "routes" in attrs or "external_gateway_info" in attrs:
            session.flush()
            self._check_routes(session, row, attrs.get("routes") or [
                {"destination": r.destination, "nexthop": r.nexthop} for r in row.routes])
        if attrs.get("admin_state_up") and not row.admin_state_up and self.scheduler.host_of(session, row.id):
            row.status, row.status_reason = ALLOCATING, WAITING  # back in its agent's view: built again
        for key in ("name", "description", "admin_state_up"):
            if key in attrs:
                setattr(row, key, attrs[key])

    def add_extraroutes(self, ctx: Context, router_id: str, routes: list[dict]) -> dict:
        """extraroute-atomic: the router's routes plus ``routes`` (an exact duplicate once)."""
        require_write(ctx, "add_extraroutes")

        def change(session: Session, row: m.Router) -> None:
            merged = [{"destination": r.destination, "nexthop": r.nexthop} for r in row.routes]
            merged += [r for r in routes if r not in merged]
            self._apply(session, ctx, row, {"routes": merged})

        return self._locked(ctx, router_id, change)

    def remove_extraroutes(self, ctx: Context, router_id: str, routes: list[dict]) -> dict:
        """extraroute-atomic: the router's routes minus ``routes`` (absent ones are no error)."""
        require_write(ctx, "remove_extraroutes")
        gone = {(r["destination"], r["nexthop"]) for r in routes}

        def change(session: Session, row: m.Router) -> None:
            kept = [{"destination": r.destination, "nexthop": r.nexthop} for r in row.routes
                    if (r.destination, r.nexthop) not in gone]
            self._apply(session, ctx, row, {"routes": kept})

        return self._locked(ctx, router_id, change)

    # ---------------------------------------------------------------- interfaces

    def add_interface(self, ctx: Context, router_id: str, info: dict) -> dict:
        require_write(ctx, "add_router_interface")

        def change(session: Session, row: m.Router) -> dict:
            host = self.scheduler.host_of(session, row.id)  # the router is locked: it stays so
            result = router_interfaces.add(self.env, session, ctx, row, info, host=host)
            self.scheduler.schedule(session, row, host=host)
            return result

        return self._interface(ctx, router_id, change)

    def remove_interface(self, ctx: Context, router_id: str, info: dict) -> dict:
        require_write(ctx, "remove_router_interface")
        return self._interface(ctx, router_id, lambda session, row: router_interfaces.remove(
            self.env, session, ctx, row, info))

    def _interface(self, ctx: Context, router_id: str, change: Callable[[Session, m.Router], dict]) -> dict:
        """An interface change is also a change of the router: new revision, logged (as Neutron
        bumps the router's revision when its ports change)."""

        def work(session: Session) -> dict:
            row = load_visible(session, ctx, router_id, for_update=True)
            result = change(session, row)
            bump(row)
            session.flush()
            feed.record(session, "router", "update", self.render(session, [row])[0])
            return result

        return self.env.write(work)

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, router_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_router")

        def work(session: Session) -> None:
            row = load_visible(session, ctx, router_id, for_update=True)
            check_revision(row, if_match)
            attached = [rp.port_id for rp in row.ports if rp.port_type != l3.ROUTER_GATEWAY]
            if attached:
                raise errors.RouterInUse(router_id=row.id, reason="has ports still attached: " + ", ".join(attached))
            body = self.render(session, [row])[0]
            if row.gw_port_id:
                gateway = session.get(m.Port, row.gw_port_id)
                if gateway is not None:
                    self._drop_gateway(session, row, gateway)
            tags.clear_all(session, row.id)
            bindings.unbind_router(session, row.id)
            session.delete(row)
            feed.record(session, "router", "delete", body)

        self.env.write(work)
