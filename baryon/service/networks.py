"""Networks: create (with an ML2 segment), show, list, update, delete.

Attributes arrive converted and policy-checked by the API (``baryon.api.schemas.network``);
this module applies the rules that need the database: segment allocation, MTU bounds,
visibility, sharing changes, and deletion guards (a network is in use while it has a port
that is not its own DHCP port).

Availability zones: ``availability_zone_hints`` must name zones DHCP agents report (404
``AvailabilityZoneNotFound``); ``availability_zones`` are those of the DHCP agents hosting the
network (``service.availabilityzones``). ``is_default`` (auto-allocated-topology) marks the
default external network: only an external network is one (turning ``router:external`` off
drops it), and at most one network is (409 ``DefaultExternalNetworkExists``), checked under a
lock row so that two concurrent requests cannot both pass the check.

Visibility and sharing are RBAC entries (``rbac``): a network is its owner's, and every project an
entry of either action targets (or all, for ``'*'``) sees it. ``shared: true`` is the wildcard
``access_as_shared`` entry and ``router:external: true`` a wildcard ``access_as_external`` one: the
attributes create and remove them (``router:external: false`` removes every external entry); the
``shared`` a caller sees is true when an entry shares the network with it (``rbac.per_caller``).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session, selectinload

from baryon.db import models as m
from baryon.service import availabilityzones, bindings, errors, feed, l3, ml2, query, quotas, rbac, render
from baryon.service import securitygroups, tags
from baryon.service.base import Env, bump, new_id, check_revision, require_write, stamp_new
from baryon.service.context import Context

AUTO_DELETE_OWNERS = ("network:dhcp",)
# Ports that use a network through its external access, not its sharing.
EXTERNAL_OWNERS = ("network:router_gateway", "network:floatingip")
# The smallest MTU an IPv4 (RFC 791) or IPv6 (RFC 8200) subnet can run on.
MIN_MTU = {4: 68, 6: 1280}


def check_mtu(network: m.Network, ip_version: int) -> None:
    """As Neutron: a network whose MTU is below what an IP version needs can't have (or keep) a subnet
    of that version: 409. (An MTU of 0 is one not known: not checked.)"""
    if 0 < network.mtu < MIN_MTU[ip_version]:
        raise errors.NetworkMTUSubnetConflict(
            msg=f"The MTU {network.mtu} of network {network.id} is below the minimum of {MIN_MTU[ip_version]} "
                f"for IPv{ip_version} subnets")

LISTING = query.Listing(
    model=m.Network,
    columns={
        "id": m.Network.id, "name": m.Network.name, "description": m.Network.description,
        "project_id": m.Network.project_id, "tenant_id": m.Network.project_id,
        "admin_state_up": m.Network.admin_state_up, "status": m.Network.status, "shared": m.Network.shared,
        "router:external": m.Network.router_external, "mtu": m.Network.mtu,
        "port_security_enabled": m.Network.port_security_enabled, "is_default": m.Network.is_default,
        "revision_number": m.Network.revision_number, "created_at": m.Network.created_at,
        "updated_at": m.Network.updated_at,
    },
    special={
        "provider:network_type": lambda v: m.Network.id.in_(
            select(m.NetworkSegment.network_id).where(m.NetworkSegment.network_type.in_(v))),
        "provider:physical_network": lambda v: m.Network.id.in_(
            select(m.NetworkSegment.network_id).where(m.NetworkSegment.physical_network.in_(v))),
        "provider:segmentation_id": lambda v: m.Network.id.in_(
            select(m.NetworkSegment.network_id).where(m.NetworkSegment.segmentation_id.in_(v))),
        "subnets": lambda v: m.Network.id.in_(select(m.Subnet.network_id).where(m.Subnet.id.in_(v))),
    },
    sortable=frozenset({"id", "name", "description", "project_id", "tenant_id", "admin_state_up", "status",
                        "shared", "mtu", "router:external", "revision_number", "created_at", "updated_at"}),
    options=(selectinload(m.Network.segments),),
)


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    """The networks the caller sees: its own, and those an RBAC entry (either action) grants it."""
    if ctx.is_admin:
        return None
    return or_(m.Network.project_id == ctx.project_id, m.Network.id.in_(rbac.granted_ids("network", ctx.project_id)))


def load_visible(session: Session, ctx: Context, network_id: str, *, for_update: bool = False) -> m.Network:
    stmt = select(m.Network).where(m.Network.id == network_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or not (ctx.is_admin or row.project_id == ctx.project_id
                           or rbac.granted(session, "network", row.id, ctx.project_id)):
        raise errors.NetworkNotFound(net_id=network_id)
    return row


def shared_with(session: Session, ctx: Context, row: m.Network) -> bool:
    """Whether the caller may use the network as a shared one (ports on it): owner, admin, or an
    ``access_as_shared`` entry for its project or all."""
    return (ctx.is_admin or row.project_id == ctx.project_id
            or rbac.granted(session, "network", row.id, ctx.project_id, (rbac.SHARED,)))


# ---------------------------------------------------------------- RBAC (the registry's network entry)


def rbac_users(session: Session, row: m.Network, action: str) -> set[str]:
    """The projects other than the owner using the network: through sharing, with ports (not its
    DHCP or external-access ports) or subnets on it; through external access, with router gateways
    or floating IPs on it."""
    if action == rbac.SHARED:
        ports = select(m.Port.project_id).where(m.Port.network_id == row.id,
                                                m.Port.device_owner.not_in(AUTO_DELETE_OWNERS + EXTERNAL_OWNERS))
        subnets = select(m.Subnet.project_id).where(m.Subnet.network_id == row.id)
        found = set(session.execute(ports.union(subnets)).scalars())
    else:
        routers = select(m.Router.project_id).join(m.Port, m.Port.id == m.Router.gw_port_id).where(
            m.Port.network_id == row.id)
        fips = select(m.FloatingIP.project_id).where(m.FloatingIP.floating_network_id == row.id)
        found = set(session.execute(routers.union(fips)).scalars())
    return found - {row.project_id, ""}


def rbac_sync(session: Session, row: m.Network) -> None:
    row.shared = rbac.exists(session, "network", row.id, rbac.SHARED, rbac.WILDCARD)
    row.router_external = rbac.exists(session, "network", row.id, rbac.EXTERNAL)


def rbac_check_removal(session: Session, row: m.Network, action: str, target: str, remaining: set[str]) -> None:
    """As Neutron: the default external network keeps its wildcard entry (auto-allocation), and
    the last external entry, which turns the network internal, not while router gateways use it."""
    if action != rbac.EXTERNAL:
        return
    if target == rbac.WILDCARD and row.is_default:
        raise errors.RbacPolicyInUse(object_id=row.id, details="the default external network must stay "
                                                               "external to every project")
    if not remaining:
        l3.check_unexternal(session, row.id)


def load_owned(session: Session, ctx: Context, network_id: str, action: str = "update_network") -> m.Network:
    """A network the caller may change: its own (or any, for an admin). Another project's network
    is a 404 when the caller cannot see it and a 403 when it can (shared, external), as in Neutron."""
    row = load_visible(session, ctx, network_id)
    if not (ctx.is_admin or row.project_id == ctx.project_id):
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")
    return row


# The lock row (``quota_locks``, project "") taken before the default external network is checked.
DEFAULT_LOCK = ("", "default_external_network")


def check_default(session: Session, network_id: str) -> None:
    """As Neutron: at most one default external network; another one already default is a 409."""
    if session.get(m.QuotaLock, DEFAULT_LOCK) is None:
        session.add(m.QuotaLock(project_id=DEFAULT_LOCK[0], resource=DEFAULT_LOCK[1]))  # a racing twin retries
        session.flush()
    session.execute(select(m.QuotaLock).where(m.QuotaLock.project_id == DEFAULT_LOCK[0],
                                              m.QuotaLock.resource == DEFAULT_LOCK[1]).with_for_update())
    other = session.execute(select(m.Network.id).where(
        m.Network.is_default.is_(True), m.Network.router_external.is_(True), m.Network.id != network_id)
        .order_by(m.Network.id).limit(1)).scalar_one_or_none()
    if other is not None:
        raise errors.DefaultExternalNetworkExists(net_id=other)


def default_external(session: Session) -> str | None:
    """The default external network's id (None: there is none)."""
    return session.execute(select(m.Network.id).where(
        m.Network.is_default.is_(True), m.Network.router_external.is_(True))
        .order_by(m.Network.id).limit(1)).scalar_one_or_none()


class Networks:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.Network]) -> list[dict]:
        ids = [r.id for r in rows]
        (subnet_ids, scopes), tag_map = render.subnets_of(session, ids), render.tags_of(session, ids)
        zones = availabilityzones.of_networks(session, ids)
        return [render.network(r, subnet_ids.get(r.id, []), tag_map.get(r.id, []), self.env.port_security,
                               scopes.get(r.id), zones.get(r.id, [])) for r in rows]

    def shown(self, session: Session, ctx: Context, bodies: list[dict]) -> list[dict]:
        """Rendered networks as the caller sees them (``shared`` per caller)."""
        return rbac.per_caller(session, ctx, "network", bodies)

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_network")

        def work(session: Session) -> list[dict]:
            quotas.check_items(session, self.env, ctx.project_id, items, "network")
            for project in sorted({attrs.get("project_id") or ctx.project_id for attrs in items}):
                securitygroups.ensure_default(session, project)  # as Neutron: a project's first network
            rows = [self._create_one(session, ctx, attrs) for attrs in items]
            session.flush()
            for row in rows:
                for flag, action in ((row.shared, rbac.SHARED), (row.router_external, rbac.EXTERNAL)):
                    if flag:
                        rbac.add(session, row.project_id, "network", row.id, action, rbac.WILDCARD, new_id())
            result = self.render(session, rows)
            for body in result:
                feed.record(session, "network", "create", body)
            return self.shown(session, ctx, result)

        return self.env.write(work)

    def _create_one(self, session: Session, ctx: Context, attrs: dict) -> m.Network:
        drivers = self.env.drivers
        requested = None
        if any(k in attrs for k in ("provider:network_type", "provider:physical_network", "provider:segmentation_id")):
            requested = drivers.validate_provider(attrs.get("provider:network_type"),
                                                  attrs.get("provider:physical_network"),
                                                  attrs.get("provider:segmentation_id"))
        row = m.Network()
        stamp_new(row, ctx.project_id, attrs)
        row.admin_state_up = attrs.get("admin_state_up", True)
        row.status = "ACTIVE"
        row.shared = attrs.get("shared", False)
        row.router_external = attrs.get("router:external", False)
        row.is_default = bool(attrs.get("is_default", False) and row.router_external)
        row.port_security_enabled = attrs.get("port_security_enabled", True)
        availabilityzones.validate(session, "network", attrs.get("availability_zone_hints", []))
        row.availability_zone_hints = ",".join(attrs.get("availability_zone_hints", []))
        row.dns_domain = attrs.get("dns_domain", "")
        row.mtu = 0
        row.segments = []
        session.add(row)
        session.flush()
        if row.is_default:
            check_default(session, row.id)
        segment = ml2.allocate(session, drivers, row.id, requested)
        row.segments.append(m.NetworkSegment(
            id=new_id(), network_id=row.id, network_type=segment.network_type,
            physical_network=segment.physical_network, segmentation_id=segment.segmentation_id, segment_index=0))
        row.mtu = self._mtu(segment, attrs.get("mtu"))
        tags.set_initial(session, "networks", row.id, attrs.get("tags", []))
        return row

    def _mtu(self, segment: ml2.Segment, requested: int | None) -> int:
        maximum = self.env.drivers.mtu(segment)
        if requested is None:
            return maximum
        if maximum and requested > maximum:
            raise errors.InvalidInput(error_message=f"Requested MTU is too big, maximum is {maximum}")
        return requested

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, network_id: str) -> dict:
        with self.env.db.read() as session:
            return self.shown(session, ctx, self.render(session, [load_visible(session, ctx, network_id)]))[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        q, visible = rbac.shared_filter(q, ctx, m.Network.id, "network", visible_clause(ctx))
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible, q, lambda marker: errors.NetworkNotFound(net_id=marker))
            return self.shown(session, ctx, self.render(session, list(session.execute(stmt).scalars())))

    # ---------------------------------------------------------------- update

    def update(self, ctx: Context, network_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_network")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, network_id)
            check_revision(row, if_match)
            changed = False
            for key, column in (("name", "name"), ("description", "description"),
                                ("admin_state_up", "admin_state_up"),
                                ("port_security_enabled", "port_security_enabled"),
                                ("dns_domain", "dns_domain")):
                if key in attrs and getattr(row, column) != attrs[key]:
                    setattr(row, column, attrs[key])
                    changed = True
            if "router:external" in attrs and attrs["router:external"] != row.router_external:
                if attrs["router:external"]:
                    rbac.add(session, row.project_id, "network", row.id, rbac.EXTERNAL, rbac.WILDCARD, new_id())
                else:
                    l3.check_unexternal(session, row.id)  # not while router gateways use it
                    rbac.remove(session, "network", row.id, rbac.EXTERNAL)
                changed = True
            external = attrs.get("router:external", row.router_external)
            default = bool(attrs.get("is_default", row.is_default) and external)
            if default and not row.is_default:
                check_default(session, row.id)
            if default != row.is_default:
                row.is_default = default
                changed = True
            if "shared" in attrs and attrs["shared"] != row.shared:
                if attrs["shared"]:
                    rbac.add(session, row.project_id, "network", row.id, rbac.SHARED, rbac.WILDCARD, new_id())
                else:
                    self._check_unshare(session, row)
                    rbac.remove(session, "network", row.id, rbac.SHARED, rbac.WILDCARD)
                changed = True
            if changed:
                rbac_sync(session, row)
            if "mtu" in attrs and attrs["mtu"] != row.mtu:
                segment = row.segments[0]
                row.mtu = self._mtu(ml2.Segment(segment.network_type, segment.physical_network,
                                                segment.segmentation_id), attrs["mtu"])
                for version in sorted(set(session.execute(
                        select(m.Subnet.ip_version).where(m.Subnet.network_id == row.id)).scalars())):
                    check_mtu(row, version)
                changed = True
            if changed:
                bump(row)
            session.flush()
            body = self.render(session, [row])[0]
            if changed:
                feed.record(session, "network", "update", body)
            return self.shown(session, ctx, [body])[0]

        return self.env.write(work)

    @staticmethod
    def _check_unshare(session: Session, row: m.Network) -> None:
        """Not while another project uses the network that no other entry shares it with."""
        remaining = rbac.targets(session, "network", row.id, rbac.SHARED) - {rbac.WILDCARD}
        if rbac.losing(rbac_users(session, row, rbac.SHARED), row.project_id, remaining, rbac.WILDCARD):
            raise errors.InvalidSharedSetting(network=row.id)

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, network_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_network")

        def work(session: Session) -> None:
            row = load_owned(session, ctx, network_id, "delete_network")
            check_revision(row, if_match)
            if row.router_external:  # as Neutron: unassociated floating IPs go with the network
                from baryon.service import floatingips  # NOTE: here, as floatingips imports this module

                floatingips.delete_unassociated(self.env, session, row.id)
            in_use = session.execute(select(m.Port.id).where(
                m.Port.network_id == row.id, m.Port.device_owner.not_in(AUTO_DELETE_OWNERS)).limit(1)).first()
            if in_use is not None:
                raise errors.NetworkInUse(net_id=row.id)
            body = self.render(session, [row])[0]
            # NOTE: imported here: ports and subnets import this module for visibility checks.
            from baryon.service import ports as ports_service, subnets as subnets_service

            for port in session.execute(select(m.Port).where(m.Port.network_id == row.id)).scalars().all():
                ports_service.delete_row(session, port, self.env.port_security)
            session.flush()  # addresses go before the subnets they reference
            for subnet in session.execute(select(m.Subnet).where(m.Subnet.network_id == row.id)).scalars().all():
                subnets_service.delete_row(session, subnet)
            session.flush()
            tags.clear_all(session, row.id)
            rbac.remove(session, "network", row.id)
            bindings.unbind_network(session, row.id)
            session.execute(delete(m.SegmentAllocation).where(m.SegmentAllocation.network_id == row.id))
            session.delete(row)
            feed.record(session, "network", "delete", body)

        self.env.write(work)

