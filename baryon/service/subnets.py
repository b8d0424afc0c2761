"""Subnets: CIDR, gateway, allocation pools, DNS servers, host routes, IPv6 modes.

The pure rules live in ``ipam``; this module adds those that need the database: the network
must be the caller's, CIDRs may not overlap within a network (nor across networks when
``allow_overlapping_ips`` is off), and a subnet with addresses held by ports other than the
network's DHCP port cannot be deleted (an auto-address IPv6 subnet: only a router interface's
address keeps it; the other ports lose theirs, as in Neutron). Adding a subnet changes the
network's ``subnets``, so the network's revision is bumped and logged too. A DHCP subnet created
or deleted, or DHCP turned on or off, schedules or unschedules the network's DHCP agents and
re-addresses their DHCP ports (``dhcpscheduler.settle``), in the same transaction. A subnet
without a CIDR is allocated one from a subnet pool (``subnetpools``), in the same transaction.
Its ``service_types`` (subnet-service-types) say which ports take addresses from it (``servicetypes``);
changing them changes no port's addresses, as in Neutron.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, ipam, query, quotas, rbac, render, subnetpools, tags
from baryon.service.base import Env, bump, check_revision, require_write, stamp_new
from baryon.service.context import Context
from baryon.service.networks import AUTO_DELETE_OWNERS, Networks, check_mtu

LISTING = query.Listing(
    model=m.Subnet,
    columns={
        "id": m.Subnet.id, "name": m.Subnet.name, "description": m.Subnet.description,
        "project_id": m.Subnet.project_id, "tenant_id": m.Subnet.project_id,
        "network_id": m.Subnet.network_id, "ip_version": m.Subnet.ip_version, "cidr": m.Subnet.cidr,
        "gateway_ip": m.Subnet.gateway_ip, "enable_dhcp": m.Subnet.enable_dhcp,
        "ipv6_ra_mode": m.Subnet.ipv6_ra_mode, "ipv6_address_mode": m.Subnet.ipv6_address_mode,
        "subnetpool_id": m.Subnet.subnetpool_id, "revision_number": m.Subnet.revision_number,
        "created_at": m.Subnet.created_at, "updated_at": m.Subnet.updated_at,
    },
    special={
        "dns_nameservers": lambda v: m.Subnet.id.in_(
            select(m.DnsNameserver.subnet_id).where(m.DnsNameserver.address.in_(v))),
        # NOTE: shared with the caller, so taken out of the query by ``Subnets.list`` (``rbac.shared_filter``).
        "shared": lambda v: m.Subnet.network_id.in_(select(m.Network.id).where(m.Network.shared.in_(v))),
        "service_types": lambda v: m.Subnet.id.in_(
            select(m.SubnetServiceType.subnet_id).where(m.SubnetServiceType.service_type.in_(v))),
    },
    sortable=frozenset({"id", "name", "description", "project_id", "tenant_id", "network_id", "ip_version",
                        "cidr", "gateway_ip", "enable_dhcp", "revision_number", "created_at", "updated_at"}),
)


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    """The caller's subnets, and those of the networks shared with it (``access_as_shared``, as
    Neutron: external access alone shows the network, not its subnets)."""
    if ctx.is_admin:
        return None
    return or_(m.Subnet.project_id == ctx.project_id,
               m.Subnet.network_id.in_(rbac.granted_ids("network", ctx.project_id, (rbac.SHARED,))))


def load_visible(session: Session, ctx: Context, subnet_id: str) -> m.Subnet:
    row = session.get(m.Subnet, subnet_id)
    if row is None:
        raise errors.SubnetNotFound(subnet_id=subnet_id)
    if not (ctx.is_admin or row.project_id == ctx.project_id
            or rbac.granted(session, "network", row.network_id, ctx.project_id, (rbac.SHARED,))):
        raise errors.SubnetNotFound(subnet_id=subnet_id)
    return row


def load_owned(session: Session, ctx: Context, subnet_id: str, action: str = "update_subnet") -> m.Subnet:
    """A subnet the caller may change: 404 when it cannot see it, 403 when it only sees it (on a
    shared network), as in Neutron."""
    row = load_visible(session, ctx, subnet_id)
    if not (ctx.is_admin or row.project_id == ctx.project_id):
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")
    return row


def pools_of(row: m.Subnet) -> list[ipam.Range]:
    return [(ipaddress.ip_address(p.first_ip), ipaddress.ip_address(p.last_ip)) for p in row.allocation_pools]


def delete_row(session: Session, row: m.Subnet) -> None:
    body = render.subnet(row, render.tags_of(session, [row.id]).get(row.id, []))
    tags.clear_all(session, row.id)
    session.delete(row)
    feed.record(session, "subnet", "delete", body)


def _service_type_rows(service_types: list[str]) -> list[m.SubnetServiceType]:
    return [m.SubnetServiceType(service_type=t, position=i) for i, t in enumerate(service_types)]


def _invalid(msg: str) -> errors.InvalidInput:
    return errors.InvalidInput(error_message=msg)


class Subnets:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.Subnet]) -> list[dict]:
        tag_map = render.tags_of(session, [r.id for r in rows])
        return [render.subnet(r, tag_map.get(r.id, [])) for r in rows]

    # ---------------------------------------------------------------- validation

    def _dns(self, subnet_id: str, net: ipam.IPNetwork, servers: list[str]) -> list[str]:
        limit = self.env.settings.DEFAULT.max_dns_nameservers
        if len(servers) > limit:
            raise errors.DNSNameServersExhausted(subnet_id=subnet_id, quota=limit)
        seen = set()
        for server in servers:
            if server in seen:
                raise _invalid(f"Duplicate nameserver '{server}'")
            seen.add(server)
        return servers

    def _routes(self, subnet_id: str, net: ipam.IPNetwork, routes: list[dict]) -> list[tuple[str, str]]:
        limit = self.env.settings.DEFAULT.max_subnet_host_routes
        if len(routes) > limit:
            raise errors.HostRoutesExhausted(subnet_id=subnet_id, quota=limit)
        result: list[tuple[str, str]] = []
        for route in routes:
            destination = ipaddress.ip_network(route["destination"])
            nexthop = ipaddress.ip_address(route["nexthop"])
            ipam.validate_version("destination", destination, net.version)
            ipam.validate_version("nexthop", nexthop, net.version)
            pair = (str(destination), str(nexthop))
            if pair in result:
                raise _invalid(f"Duplicate hostroute '{{'destination': '{pair[0]}', 'nexthop': '{pair[1]}'}}'")
            result.append(pair)
        return result

    def _check_overlap(self, session: Session, network_id: str, net: ipam.IPNetwork, exclude: str | None) -> None:
        stmt = select(m.Subnet.id, m.Subnet.cidr, m.Subnet.network_id).where(m.Subnet.ip_version == net.version)
        if self.env.settings.DEFAULT.allow_overlapping_ips:
            stmt = stmt.where(m.Subnet.network_id == network_id)
        for sid, cidr, nid in session.execute(stmt):
            if sid != exclude and ipaddress.ip_network(cidr).overlaps(net):
                if nid == network_id:
                    raise _invalid(f"Requested subnet with cidr: {net} for network: {network_id} "
                                   f"overlaps with another subnet")
                raise _invalid(f"Requested subnet with cidr: {net} for network: {network_id} overlaps "
                               f"with subnet {sid}")

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_subnet")

        def work(session: Session) -> list[dict]:
            quotas.check_items(session, self.env, ctx.project_id, items, "subnet")
            rows = []
            networks: dict[str, m.Network] = {}
            for attrs in items:
                row = self._create_one(session, ctx, attrs)
                rows.append(row)
                networks[row.network_id] = row.network
                session.flush()
            result = self.render(session, rows)
            for body in result:
                feed.record(session, "subnet", "create", body)
            for network in networks.values():
                bump(network)
            session.flush()
            for body in Networks(self.env).render(session, list(networks.values())):
                feed.record(session, "network", "update", body)
            for network_id in sorted({row.network_id for row in rows if row.enable_dhcp}):
                _scheduler(self.env).settle(session, network_id)
            return result

        return self.env.write(work)

    def _create_one(self, session: Session, ctx: Context, attrs: dict) -> m.Subnet:
        network = load_owned_or_forbidden(session, ctx, attrs["network_id"], "subnet")
        check_mtu(network, attrs["ip_version"])
        net, pool = self._cidr(session, ctx, network.id, attrs)
        version = attrs["ip_version"]
        ra_mode, address_mode = attrs.get("ipv6_ra_mode"), attrs.get("ipv6_address_mode")
        ipam.validate_dhcp(net, attrs.get("enable_dhcp", True), ra_mode, address_mode)
        if version == 4 and (ra_mode or address_mode):
            attr = "ipv6_ra_mode" if ra_mode else "ipv6_address_mode"
            raise _invalid(f"{attr} is not valid when ip_version is 4")
        ipam.validate_ipv6_modes(ra_mode, address_mode)
        if ipam.is_auto_address_subnet(version, address_mode, ra_mode) and net.prefixlen != 64:
            raise _invalid(f"Invalid CIDR {net} for IPv6 address mode. OpenStack uses the EUI-64 address "
                           f"format, which requires the prefix to be /64")
        self._check_overlap(session, network.id, net, None)
        gateway = self._gateway(net, attrs)
        pools = self._pools(net, attrs.get("allocation_pools"), gateway)
        row = m.Subnet()
        stamp_new(row, ctx.project_id, attrs)
        row.network_id = network.id
        row.network = network
        row.ip_version = version
        row.cidr = str(net)
        row.gateway_ip = str(gateway) if gateway is not None else None
        row.enable_dhcp = attrs.get("enable_dhcp", True)
        row.ipv6_ra_mode, row.ipv6_address_mode = ra_mode, address_mode
        row.subnetpool_id = pool.id if pool is not None else None
        row.allocation_pools = [m.AllocationPool(position=i, first_ip=str(a), last_ip=str(b))
                                for i, (a, b) in enumerate(pools)]
        row.dns_nameservers = [m.DnsNameserver(position=i, address=a)
                               for i, a in enumerate(self._dns(row.id, net, attrs.get("dns_nameservers", [])))]
        row.host_routes = [m.HostRoute(position=i, destination=d, nexthop=n)
                           for i, (d, n) in enumerate(self._routes(row.id, net, attrs.get("host_routes", [])))]
        row.service_type_rows = _service_type_rows(attrs.get("service_types") or [])  # type: ignore[attr-defined]
        session.add(row)
        tags.set_initial(session, "subnets", row.id, attrs.get("tags", []))
        return row

    @staticmethod
    def _cidr(session: Session, ctx: Context, network_id: str,
              attrs: dict) -> tuple[ipam.IPNetwork, m.SubnetPool | None]:
        """The new subnet's CIDR: the one given, or one allocated from the subnet pool it names or
        the default pool it asks for (``subnetpools.allocate``, the pool locked), with Neutron's
        rules and messages; and the pool, if any."""
        if "cidr" in attrs and "prefixlen" in attrs:
            raise errors.BadRequest(resource="subnets", msg="cidr and prefixlen must not be supplied together")
        version = attrs["ip_version"]
        net = ipam.parse_cidr(attrs["cidr"]) if "cidr" in attrs else None
        if net is not None:
            ipam.validate_version("cidr", net, version)
        pool = subnetpools.pool_for(session, ctx, attrs)
        if pool is None:
            if net is None:
                raise errors.BadRequest(resource="subnets",
                                        msg="a subnetpool must be specified in the absence of a cidr")
            subnetpools.check_network_affinity(session, network_id, version, None)
            return net, None
        if net is None and attrs.get("allocation_pools") is not None:
            raise errors.BadRequest(resource="subnets",
                                    msg="allocation_pools allowed only for specific subnet requests.")
        if version != pool.ip_version:
            raise errors.BadRequest(resource="subnets",
                                    msg=f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} subnet pool")
        subnetpools.check_network_affinity(session, network_id, version, pool)
        project_id = attrs.get("project_id") or ctx.project_id
        return subnetpools.allocate(session, pool, project_id, net, attrs.get("prefixlen")), pool

    @staticmethod
    def _gateway(net: ipam.IPNetwork, attrs: dict) -> ipam.IPAddress | None:
        if "gateway_ip" not in attrs:
            return ipam.default_gateway(net)
        if attrs["gateway_ip"] is None:
            return None
        gateway = ipaddress.ip_address(attrs["gateway_ip"])
        ipam.validate_gateway(net, gateway)
        return gateway

    @staticmethod
    def _pools(net: ipam.IPNetwork, raw: list[dict] | None, gateway: ipam.IPAddress | None) -> list[ipam.Range]:
        if raw is None:
            return ipam.default_pools(net, gateway)
        pools = ipam.parse_pools(net, raw)
        ipam.validate_pools(net, pools, gateway)
        return pools

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, subnet_id: str) -> dict:
        with self.env.db.read() as session:
            return self.render(session, [load_visible(session, ctx, subnet_id)])[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        q, visible = rbac.shared_filter(q, ctx, m.Subnet.network_id, "network", visible_clause(ctx))
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible, q, lambda marker: errors.SubnetNotFound(subnet_id=marker))
            return self.render(session, list(session.execute(stmt).scalars()))

    # ---------------------------------------------------------------- update

    def update(self, ctx: Context, subnet_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_subnet")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, subnet_id)
            if "gateway_ip" in attrs:
                # NOTE: locked (as add_router_interface locks it) before the gateway is checked: a
                # concurrent interface then either holds the new gateway or makes this a 409.
                session.refresh(row, with_for_update=True)
            check_revision(row, if_match)
            net = ipaddress.ip_network(row.cidr)
            before = render.subnet(row, [])
            had_dhcp = row.enable_dhcp
            if attrs.get("enable_dhcp") and not row.enable_dhcp:
                ipam.validate_dhcp(net, True, None, None)
            if attrs.get("enable_dhcp") is False and (row.ipv6_ra_mode or row.ipv6_address_mode):
                raise _invalid("Cannot disable enable_dhcp with ipv6 attributes set")
            for key in ("name", "description", "enable_dhcp"):
                if key in attrs:
                    setattr(row, key, attrs[key])
            gateway = ipaddress.ip_address(row.gateway_ip) if row.gateway_ip else None
            if "gateway_ip" in attrs:
                gateway = self._gateway(net, attrs)
                if (str(gateway) if gateway is not None else None) != row.gateway_ip:
                    self._check_gateway_unrouted(session, row)
                if gateway is not None and str(gateway) != row.gateway_ip:
                    self._check_gateway_free(session, row, gateway)
                row.gateway_ip = str(gateway) if gateway is not None else None
            if "allocation_pools" in attrs or "gateway_ip" in attrs:
                pools = (ipam.parse_pools(net, attrs["allocation_pools"]) if "allocation_pools" in attrs
                         else pools_of(row))
                ipam.validate_pools(net, pools, gateway)
                if "allocation_pools" in attrs:
                    row.allocation_pools = [m.AllocationPool(position=i, first_ip=str(a), last_ip=str(b))
                                            for i, (a, b) in enumerate(pools)]
            if "dns_nameservers" in attrs:
                servers = self._dns(row.id, net, attrs["dns_nameservers"])
                row.dns_nameservers.clear()
                session.flush()
                row.dns_nameservers.extend(m.DnsNameserver(position=i, address=a) for i, a in enumerate(servers))
            if "host_routes" in attrs:
                routes = self._routes(row.id, net, attrs["host_routes"])
                row.host_routes.clear()
                session.flush()
                row.host_routes.extend(m.HostRoute(position=i, destination=d, nexthop=n)
                                       for i, (d, n) in enumerate(routes))
            if "service_types" in attrs:
                rows = row.service_type_rows  # type: ignore[attr-defined]
                rows.clear()
                session.flush()
                rows.extend(_service_type_rows(attrs["service_types"] or []))
            session.flush()
            changed = render.subnet(row, []) != before
            if changed:
                bump(row)
            body = self.render(session, [row])[0]
            if changed:
                feed.record(session, "subnet", "update", body)
            if row.enable_dhcp != had_dhcp:
                _scheduler(self.env).settle(session, row.network_id)
            return body

        return self.env.write(work)

    @staticmethod
    def _check_gateway_unrouted(session: Session, row: m.Subnet) -> None:
        """The current gateway may move (or go) only while no router port holds it: a 409
        ``GatewayIpInUse`` otherwise, as Neutron (the router would keep an address that is no
        longer the gateway). NOTE: Neutron refuses even a PUT of the same address; here only a change."""
        if row.gateway_ip is None:
            return
        holder = session.execute(select(m.Port.id).join(m.IPAllocation).where(
            m.IPAllocation.subnet_id == row.id, m.IPAllocation.ip_address == row.gateway_ip,
            m.Port.device_owner.in_(ROUTER_PORT_OWNERS))).first()
        if holder is not None:
            raise errors.GatewayIpInUse(ip_address=row.gateway_ip, port_id=holder[0])

    @staticmethod
    def _check_gateway_free(session: Session, row: m.Subnet, gateway: ipam.IPAddress) -> None:
        holder = session.execute(select(m.Port.device_owner).join(m.IPAllocation).where(
            m.IPAllocation.subnet_id == row.id, m.IPAllocation.ip_address == str(gateway))).first()
        if holder is not None and holder[0] != "network:router_interface":
            raise errors.IpAddressAlreadyAllocated(ip=str(gateway), subnet_id=row.id)

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, subnet_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_subnet")

        def work(session: Session) -> None:
            row = load_owned(session, ctx, subnet_id, "delete_subnet")
            check_revision(row, if_match)
            holders = session.execute(select(m.Port).join(m.IPAllocation).where(
                m.IPAllocation.subnet_id == row.id)).scalars().all()
            # NOTE: as Neutron, the addresses of an auto-address (SLAAC, DHCPv6-stateless) subnet
            # are taken back from the ports that hold them; only a router interface keeps it in use.
            auto = ipam.is_auto_address_subnet(row.ip_version, row.ipv6_address_mode, row.ipv6_ra_mode)
            if any(p.device_owner in ROUTER_INTERFACE_OWNERS if auto else p.device_owner not in AUTO_DELETE_OWNERS
                   for p in holders):
                raise errors.SubnetInUse(subnet_id=row.id)
            from baryon.service.ports import Ports  # NOTE: here, as ports imports this module

            ports = Ports(self.env)
            for port in holders:  # the network's own DHCP port (or any, on auto-address) just loses it here
                session.execute(delete(m.IPAllocation).where(
                    m.IPAllocation.port_id == port.id, m.IPAllocation.subnet_id == row.id))
                session.expire(port, ["fixed_ips"])
                bump(port)
                session.flush()
                feed.record(session, "port", "update", ports.render(session, [port])[0])
            network = session.get(m.Network, row.network_id)
            had_dhcp = row.enable_dhcp
            delete_row(session, row)
            session.flush()
            if network is not None:
                bump(network)
                session.flush()
                feed.record(session, "network", "update", Networks(self.env).render(session, [network])[0])
                if had_dhcp:
                    _scheduler(self.env).settle(session, network.id)

        self.env.write(work)


# Neutron's ``ROUTER_INTERFACE_OWNERS``: an auto-address subnet they hold stays in use.
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:ha_router_replicated_interface",
                           "network:router_interface_distributed")
# Neutron's ``ROUTER_PORT_OWNERS``: the ports whose hold on a subnet's gateway pins it.
ROUTER_PORT_OWNERS = (*ROUTER_INTERFACE_OWNERS, "network:router_gateway")


def _scheduler(env: Env):  # noqa: ANN202
    from baryon.service.dhcpscheduler import DhcpScheduler  # NOTE: here, as it imports ports, which imports this

    return DhcpScheduler(env)


def load_owned_or_forbidden(session: Session, ctx: Context, network_id: str, resource: str) -> m.Network:
    """The network a subnet is created on: another project's shared network is a 403, as in Neutron."""
    row = session.get(m.Network, network_id)
    if row is None:
        raise errors.NetworkNotFound(net_id=network_id)
    if ctx.is_admin or row.project_id == ctx.project_id:
        return row
    if rbac.granted(session, "network", row.id, ctx.project_id, (rbac.SHARED,)):
        # Neutron: its create_subnet policy (network owner) refuses
        raise errors.PolicyNotAuthorized(rule=f"rule:create_{resource}")
    if rbac.granted(session, "network", row.id, ctx.project_id):  # visible: Neutron's ownership check refuses
        raise errors.HTTPForbidden(msg=f"Tenant {ctx.project_id} not allowed to create {resource} on this network")
    raise errors.NetworkNotFound(net_id=network_id)
