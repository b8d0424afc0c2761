"""Ports: MAC and fixed IP allocation, security groups, address pairs, DHCP options, binding.

Allocation is optimistic: the chosen MAC and addresses are checked against the database and
inserted; a concurrent worker that chose the same one loses on a unique key, and its whole
transaction is retried (``Database.write``), re-reading what is taken. So 8 (or 80) concurrent
creators never share an address or a MAC, and never see a 500.

Without ``fixed_ips``, a port gets one address from the first IPv4 subnet that has one free,
one from the first stateful IPv6 subnet, and its EUI-64 address on every SLAAC subnet — as
Neutron does. DHCP ports take the lowest free address; others a random one among the lowest
free ones (fewer collisions between concurrent creators). Only the subnets whose service types
admit the port's device owner are used, those reserved for it first (``servicetypes``); on a
network with subnets but none for it, the port is refused, as in Neutron.

Binding (``ml2.bind_port``): a port with ``binding:host_id`` binds (``binding:vif_type`` ovs, the
segment recorded in ``binding_segment_id``) when that host's Open vSwitch agent is alive and
reaches one of the network's segments; otherwise it is ``binding_failed``, the reason in
``binding:vif_details``. As in Neutron, the binding is evaluated when ``binding:host_id`` is
given (on create or update) and never retried on its own: setting the host again retries it.
A port whose binding changes goes DOWN until its (new) host reports it ACTIVE.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import orjson
from sqlalchemy import ColumnElement, bindparam, or_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.db.rows import insert_new
from baryon.service import agents, errors, feed, ipam, l3, ml2, query, quotas, render, securitygroups, tags
from baryon.service import servicetypes
from baryon.service.base import Env, check_revision, record_update, require_write, stamp_new
from baryon.service.context import Context
from baryon.service.networks import load_visible as load_visible_network, shared_with
from baryon.service.subnets import pools_of


@dataclass(frozen=True)
class AddressSource:
    """What IPAM reads of a subnet to give ports addresses on it: its columns, its pools (in order)
    and its service types (in order). Plain values, not ORM objects: a port create reads these
    for every subnet of its network, and building ORM objects (with their pools loaded by a
    second statement) was about a fifth of the server's CPU per create."""

    id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    enable_dhcp: bool
    ipv6_ra_mode: str | None
    ipv6_address_mode: str | None
    pools: tuple[ipam.Range, ...]
    service_types: tuple[str, ...]

    @classmethod
    def of(cls, row: m.Subnet) -> AddressSource:
        """The source of a subnet already loaded (with its pools and service types)."""
        return cls(row.id, row.ip_version, row.cidr, row.gateway_ip, row.enable_dhcp, row.ipv6_ra_mode,
                   row.ipv6_address_mode, tuple(pools_of(row)),
                   tuple(t.service_type for t in row.service_type_rows))  # type: ignore[attr-defined]


_S, _POOL, _TYPE = m.Subnet.__table__.c, m.AllocationPool.__table__, m.SubnetServiceType.__table__
_SOURCES = (select(_S.id, _S.ip_version, _S.cidr, _S.gateway_ip, _S.enable_dhcp, _S.ipv6_ra_mode,
                   _S.ipv6_address_mode, _POOL.c.first_ip, _POOL.c.last_ip, _TYPE.c.service_type)
            .select_from(m.Subnet.__table__.outerjoin(_POOL, _POOL.c.subnet_id == _S.id)
                         .outerjoin(_TYPE, _TYPE.c.subnet_id == _S.id))
            .where(_S.network_id == bindparam("network_id"))
            .order_by(_S.created_at, _S.id, _POOL.c.position, _TYPE.c.position))


def address_sources(session: Session, network_id: str) -> list[AddressSource]:
    """The network's subnets as IPAM sees them, oldest first, in one statement (a row per pool and
    service type of each subnet, folded here)."""
    columns: dict[str, tuple] = {}
    pools: dict[str, list[ipam.Range]] = {}
    types: dict[str, list[str]] = {}
    for r in session.connection().execute(_SOURCES, {"network_id": network_id}):
        if r.id not in columns:
            columns[r.id], pools[r.id], types[r.id] = tuple(r[:7]), [], []
        if r.first_ip is not None:
            pool = (ipaddress.ip_address(r.first_ip), ipaddress.ip_address(r.last_ip))
            if pool not in pools[r.id]:
                pools[r.id].append(pool)
        if r.service_type is not None and r.service_type not in types[r.id]:
            types[r.id].append(r.service_type)
    return [AddressSource(*columns[sid], tuple(pools[sid]), tuple(types[sid])) for sid in columns]


# Pools larger than this are probed at random before being read whole (see Ports._pick).
PROBE_THRESHOLD = 1024
PROBE_SIZE = 16


def _fixed_ips_filter(values: list) -> ColumnElement[bool]:
    """``fixed_ips=ip_address=X``, ``fixed_ips=subnet_id=Y``, ``fixed_ips=ip_address_substr=Z``."""
    clauses = []
    for value in values:
        key, _, wanted = str(value).partition("=")
        if key == "ip_address":
            clauses.append(select(m.IPAllocation.port_id).where(m.IPAllocation.ip_address == wanted))
        elif key == "subnet_id":
            clauses.append(select(m.IPAllocation.port_id).where(m.IPAllocation.subnet_id == wanted))
        elif key == "ip_address_substr":
            clauses.append(select(m.IPAllocation.port_id).where(m.IPAllocation.ip_address.contains(wanted)))
        else:
            raise errors.HTTPBadRequest(msg=f"{key} is invalid attribute for filtering")
    return or_(*(m.Port.id.in_(c) for c in clauses))


LISTING = query.Listing(
    model=m.Port,
    columns={
        "id": m.Port.id, "name": m.Port.name, "description": m.Port.description,
        "project_id": m.Port.project_id, "tenant_id": m.Port.project_id, "network_id": m.Port.network_id,
        "mac_address": m.Port.mac_address, "admin_state_up": m.Port.admin_state_up, "status": m.Port.status,
        "device_id": m.Port.device_id, "device_owner": m.Port.device_owner,
        "port_security_enabled": m.Port.port_security_enabled, "binding:host_id": m.Port.binding_host_id,
        "binding:vif_type": m.Port.binding_vif_type, "binding:vnic_type": m.Port.binding_vnic_type,
        "revision_number": m.Port.revision_number, "created_at": m.Port.created_at,
        "updated_at": m.Port.updated_at,
    },
    special={
        "fixed_ips": _fixed_ips_filter,
        "security_groups": lambda v: m.Port.id.in_(select(m.PortSecurityGroupBinding.port_id).where(
            m.PortSecurityGroupBinding.security_group_id.in_(v))),
    },
    sortable=frozenset({"id", "name", "description", "project_id", "tenant_id", "network_id", "mac_address",
                        "admin_state_up", "status", "device_id", "device_owner", "revision_number",
                        "created_at", "updated_at", "binding:host_id"}),
)


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return or_(m.Port.project_id == ctx.project_id,
               m.Port.network_id.in_(select(m.Network.id).where(m.Network.project_id == ctx.project_id)))


_IPA = m.IPAllocation.__table__.c
# Which of a few addresses of a subnet are taken (``Ports._pick``), built once as ``_SHOW`` below.
_PROBE = select(_IPA.ip_address).where(_IPA.subnet_id == bindparam("subnet_id"),
                                       _IPA.ip_address.in_(bindparam("addresses", expanding=True)))

# A show's statement, built once: with its cache key memoised, SQLAlchemy skips rebuilding it per
# request. Table columns, not ORM attributes, so that the session executes it as Core.
_SHOW = select(m.Port.__table__).where(m.Port.__table__.c.id == bindparam("port_id"))


def load_visible(session: Session, ctx: Context, port_id: str) -> m.Port:
    row = session.get(m.Port, port_id)
    if row is None:
        raise errors.PortNotFound(port_id=port_id)
    if not (ctx.is_admin or row.project_id == ctx.project_id):
        owner = session.execute(select(m.Network.project_id).where(m.Network.id == row.network_id)).scalar()
        if owner != ctx.project_id:
            raise errors.PortNotFound(port_id=port_id)
    return row


def delete_row(session: Session, row: m.Port, port_security: bool) -> None:
    body = render.port(row, render.tags_of(session, [row.id]).get(row.id, []), port_security)
    tags.clear_all(session, row.id)
    session.delete(row)
    feed.record(session, "port", "delete", body)


def random_mac(base_mac: str, rng) -> str:  # noqa: ANN001
    """Neutron's rule: the first three octets of ``base_mac`` are kept, and the fourth when it is
    not 00; the rest are random."""
    base = [int(part, 16) for part in base_mac.split(":")]
    octets = base[:3] + [rng.getrandbits(8) for _ in range(3)]
    if base[3] != 0:
        octets[3] = base[3]
    return ":".join(f"{o:02x}" for o in octets)


# Attributes that Neutron's default policy lets only an admin or the network's owner set on a port
# (``create_port:<attr>``/``update_port:<attr>``: ADMIN_OR_NET_OWNER): not a member on another
# project's shared network. Any value given counts, as Neutron's ``_is_attribute_explicitly_set``.
NET_OWNER_ATTRS = ("mac_address", "port_security_enabled", "allowed_address_pairs")


def _check_owner_attrs(ctx: Context, network_owner: str | None, action: str, attrs: dict) -> None:
    if ctx.is_admin or network_owner == ctx.project_id:
        return
    named = [a for a in NET_OWNER_ATTRS if a in attrs]
    if named:
        raise errors.PolicyNotAuthorized(rule=f"(rule:{action} and " + " and ".join(
            f"rule:{action}:{a}" for a in named) + ")")


class Ports:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.Port]) -> list[dict]:
        tag_map = render.tags_of(session, [r.id for r in rows])
        return [render.port(r, tag_map.get(r.id, []), self.env.port_security) for r in rows]

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_port")

        def work(session: Session) -> list[dict]:
            quotas.check_items(session, self.env, ctx.project_id, items, "port")
            rows = []
            for attrs in items:
                row = self._create_one(session, ctx, attrs)
                # NOTE: inserted one by one: the next port of a bulk request must see this one's
                # addresses and MAC when it picks its own. What the ORM holds (a default security
                # group made just now, tags) goes first: the port's rows refer to it.
                session.flush()
                insert_new(session, row)
                rows.append(row)
            result = [render.port(row, sorted(dict.fromkeys(attrs.get("tags", []))), self.env.port_security)
                      for row, attrs in zip(rows, items)]
            for body in result:
                feed.record(session, "port", "create", body)
            return result

        return self.env.write(work)

    def create_row(self, session: Session, ctx: Context, attrs: dict) -> m.Port:
        """One port in the caller's transaction, without quota check nor change log entry: for
        the ports routers and floating IPs own (``l3ports``), which log it themselves. Added to the
        session (they may change it again before the commit)."""
        row = self._create_one(session, ctx, attrs)
        session.add(row)
        return row

    def readdress(self, session: Session, ctx: Context, row: m.Port, fixed_ips: list[dict]) -> None:
        """Give ``row`` exactly ``fixed_ips``, keeping the addresses it holds (``l3ports``)."""
        self._reallocate(session, ctx, row, fixed_ips)

    def _create_one(self, session: Session, ctx: Context, attrs: dict) -> m.Port:
        """A new port with its addresses, groups, pairs and options, not in the session: the
        caller inserts it (``insert_new``) or adds it."""
        network = load_visible_network(session, ctx, attrs["network_id"])
        if not (ctx.is_admin or network.project_id == ctx.project_id):
            # NOTE: used through an RBAC entry: the network's row is held FOR SHARE before the entry
            # is checked, so a removal of the entry (which locks the row FOR UPDATE, then looks for
            # the target's ports) cannot pass between this check and the port's commit.
            session.execute(select(m.Network.id).where(m.Network.id == network.id).with_for_update(read=True))
        if not shared_with(session, ctx, network):
            raise errors.NetworkNotFound(net_id=network.id)
        _check_owner_attrs(ctx, network.project_id, "create_port", attrs)
        row = m.Port()
        stamp_new(row, ctx.project_id, attrs)
        row.network_id = network.id
        row.admin_state_up = attrs.get("admin_state_up", True)
        row.status = "DOWN"
        row.device_id = attrs.get("device_id", "")
        row.device_owner = attrs.get("device_owner", "")
        row.port_security_enabled = (attrs["port_security_enabled"] if "port_security_enabled" in attrs
                                     else network.port_security_enabled)
        row.mac_address = self._mac(session, network.id, attrs.get("mac_address"))
        row.binding_vnic_type = attrs.get("binding:vnic_type", "normal")
        row.binding_profile = orjson.dumps(attrs.get("binding:profile") or {}).decode()
        self._bind(session, row, attrs.get("binding:host_id") or "", network)
        # NOTE: collections set before the row is flushed, so they never lazy-load afterwards.
        row.fixed_ips, row.security_group_bindings = [], []
        row.allowed_address_pairs, row.extra_dhcp_opts = [], []
        requested = attrs.get("fixed_ips")
        self._allocate(session, row, network, requested)
        self._security(session, ctx, row, attrs.get("security_groups"), creating=True)
        self._address_pairs(row, attrs.get("allowed_address_pairs", []))
        row.extra_dhcp_opts = [m.ExtraDhcpOpt(position=i, **opt)
                               for i, opt in enumerate(self._dhcp_opts([], attrs.get("extra_dhcp_opts", [])))]
        tags.set_initial(session, "ports", row.id, attrs.get("tags", []))
        return row

    # ---------------------------------------------------------------- MAC

    def _mac(self, session: Session, network_id: str, requested: str | None) -> str:
        def taken(mac: str) -> bool:
            return session.execute(select(m.Port.id).where(
                m.Port.network_id == network_id, m.Port.mac_address == mac)).first() is not None

        if requested is not None:
            if taken(requested):
                raise errors.MacAddressInUse(net_id=network_id, mac=requested)
            return requested
        # NOTE: a generated MAC is not looked up first: a clash (rare: 24 random bits) fails on
        # the (network_id, mac_address) unique key and the write is retried with a new MAC.
        return random_mac(self.env.settings.DEFAULT.base_mac, self.env.rng)

    # ---------------------------------------------------------------- binding

    def _bind(self, session: Session, row: m.Port, host: str, network: m.Network | None = None) -> None:
        """Bind ``row`` to ``host`` (see the module doc); ``network``: the port's, when loaded."""
        binding = ml2.Binding(ml2.VIF_TYPE_UNBOUND)
        if host:
            if network is not None:
                segments = list(network.segments)
            else:
                segments = list(session.execute(select(m.NetworkSegment).where(
                    m.NetworkSegment.network_id == row.network_id).order_by(m.NetworkSegment.segment_index)).scalars())
            agent = agents.ovs_agent(session, host, self.env.settings.DEFAULT.agent_down_time)
            binding = ml2.bind_port(host, agent, [
                (s.id, ml2.Segment(s.network_type, s.physical_network, s.segmentation_id)) for s in segments])
        before = (row.binding_host_id, row.binding_vif_type, row.binding_segment_id)
        row.binding_host_id = host
        row.binding_vif_type = binding.vif_type
        row.binding_vif_details = orjson.dumps(binding.vif_details).decode()
        row.binding_segment_id = binding.segment_id
        if before != (host, binding.vif_type, binding.segment_id):
            row.status = "DOWN"  # as Neutron: wired nowhere until its host reports it

    def rehost(self, session: Session, row: m.Port, host: str) -> bool:
        """Give ``row`` the ``binding:host_id`` ``host`` ("" unbinds it) and bind it there, as an update
        of the host would (the L3 scheduler moving a router's ports); True if that changed it."""
        before = (row.binding_host_id, row.binding_vif_type, row.binding_vif_details, row.binding_segment_id)
        self._bind(session, row, host)
        return before != (row.binding_host_id, row.binding_vif_type, row.binding_vif_details, row.binding_segment_id)

    def rebind(self, session: Session, row: m.Port) -> bool:
        """Bind ``row`` to its host again (its host's agent may have come up); True if that changed it."""
        before = (row.binding_vif_type, row.binding_vif_details, row.binding_segment_id)
        self._bind(session, row, row.binding_host_id)
        return before != (row.binding_vif_type, row.binding_vif_details, row.binding_segment_id)

    # ---------------------------------------------------------------- addresses

    def _allocate(self, session: Session, row: m.Port, network: m.Network, requested: list[dict] | None,
                  keep: set[tuple[str, str]] = frozenset()) -> None:  # type: ignore[assignment]
        """Give ``row`` the addresses ``requested`` (or the defaults when None). ``keep`` holds the
        (subnet_id, ip) pairs the port already has and may keep, on update."""
        on_network = address_sources(session, network.id)
        # subnet-service-types: only the subnets the port's device owner may use, its own first.
        subnets = servicetypes.candidates(on_network, row.device_owner, lambda s: s.service_types,
                                          lambda s: s.enable_dhcp)
        if on_network and not subnets and requested != []:
            raise errors.IpAddressGenerationFailureNoMatchingSubnet(network_id=network.id,
                                                                    service_type=row.device_owner)
        if requested is None:
            wanted = self._default_targets(subnets, row)
        else:
            limit = self.env.settings.DEFAULT.max_fixed_ips_per_port
            if len(requested) > limit:
                raise errors.InvalidInput(error_message="Exceeded maximum amount of fixed ips per port.")
            by_id = {s.id: s for s in subnets}
            for item in requested:  # NOTE: as Neutron: a subnet that does not exist at all is a 404
                sid = item.get("subnet_id")
                if sid is not None and sid not in by_id and session.get(m.Subnet, sid) is None:
                    raise errors.SubnetNotFound(subnet_id=sid)
            wanted = [self._target(network.id, by_id, subnets, item, row) for item in requested]
        seen: set[tuple[str, str]] = set()
        # NOTE: what this request names or has already picked is not in the database yet (no
        # autoflush): a picked address avoids it, so two entries on one subnet get two addresses.
        named = {(c[0].id, str(ipaddress.ip_address(a))) for c, a in wanted if a is not None}
        for position, (candidates, address) in enumerate(wanted):
            if address is None:
                subnet, address = self._pick(session, candidates, row, network.id, named | seen)
            else:
                subnet, address = candidates[0], str(ipaddress.ip_address(address))
                if (subnet.id, address) not in keep:
                    self._check_free(session, subnet, address)
            if (subnet.id, address) in seen:
                raise errors.InvalidInput(error_message=f"Duplicate IP address '{address}'")
            seen.add((subnet.id, address))
            row.fixed_ips.append(m.IPAllocation(subnet_id=subnet.id, ip_address=address, port_id=row.id,
                                                network_id=network.id, position=position))

    @staticmethod
    def _default_targets(subnets: list[AddressSource], row: m.Port) -> list[tuple[list[AddressSource], str | None]]:
        """One address from the IPv4 subnets (the first with room), one from the stateful IPv6
        subnets, and the EUI-64 address on each SLAAC subnet (not for router ports)."""
        def auto(s: AddressSource) -> bool:
            return ipam.is_auto_address_subnet(s.ip_version, s.ipv6_address_mode, s.ipv6_ra_mode)

        targets: list[tuple[list[AddressSource], str | None]] = []
        v4 = [s for s in subnets if s.ip_version == 4]
        v6_stateful = [s for s in subnets if s.ip_version == 6 and not auto(s)]
        if v4:
            targets.append((v4, None))
        if v6_stateful:
            targets.append((v6_stateful, None))
        if not row.device_owner.startswith("network:router"):
            for subnet in subnets:
                if subnet.ip_version == 6 and auto(subnet):
                    targets.append(([subnet], str(ipam.eui64(ipaddress.IPv6Network(subnet.cidr), row.mac_address))))
        return targets

    @staticmethod
    def _target(network_id: str, by_id: dict[str, AddressSource], subnets: list[AddressSource], item: dict,
                row: m.Port) -> tuple[list[AddressSource], str | None]:
        subnet_id, address = item.get("subnet_id"), item.get("ip_address")
        if subnet_id is not None:
            subnet = by_id.get(subnet_id)
            if subnet is None:
                raise errors.InvalidInput(
                    error_message=f"Failed to create port on network {network_id}, because fixed_ips "
                                  f"included invalid subnet {subnet_id}")
            if address is not None and ipaddress.ip_address(address) not in ipaddress.ip_network(subnet.cidr):
                raise errors.InvalidIpForSubnet(ip_address=address)
        elif address is not None:
            ip = ipaddress.ip_address(address)
            matches = [s for s in subnets if ip in ipaddress.ip_network(s.cidr)]
            if not matches:
                raise errors.InvalidIpForNetwork(ip_address=address)
            subnet = matches[0]
        else:
            raise errors.InvalidInput(error_message="IP allocation requires subnet_id or ip_address")
        net = ipaddress.ip_network(subnet.cidr)
        auto = ipam.is_auto_address_subnet(subnet.ip_version, subnet.ipv6_address_mode, subnet.ipv6_ra_mode)
        if auto and not row.device_owner.startswith("network:router"):
            eui64 = str(ipam.eui64(net, row.mac_address))  # type: ignore[arg-type]
            if address is not None and str(ipaddress.ip_address(address)) != eui64:  # its own: kept on update
                raise errors.InvalidInput(
                    error_message=f"IPv6 address {address} cannot be directly assigned to a port on subnet "
                                  f"{subnet.id} since the subnet is configured for automatic addresses")
            return [subnet], eui64
        if address is not None:
            first, last = ipam.usable_bounds(net)
            if not first <= ipaddress.ip_address(address) <= last:
                raise errors.InvalidIpForSubnet(ip_address=address)
        return [subnet], address

    @staticmethod
    def _check_free(session: Session, subnet: AddressSource, address: str) -> None:
        if session.get(m.IPAllocation, (subnet.id, address)) is not None:
            raise errors.IpAddressAlreadyAllocated(ip=address, subnet_id=subnet.id)

    def _pick(self, session: Session, candidates: list[AddressSource], row: m.Port, network_id: str,
              exclude: set[tuple[str, str]] = frozenset()) -> tuple[AddressSource, str]:  # type: ignore[assignment]
        """A free address from the first candidate subnet that has one, not one of the (subnet_id, ip)
        pairs of ``exclude``. A large pool is probed with a few random addresses first (one small
        query, whatever the number of ports); a small or nearly full one is read whole."""
        prefer_first = row.device_owner == "network:dhcp"
        for subnet in candidates:
            pools = subnet.pools
            gateway = int(ipaddress.ip_address(subnet.gateway_ip)) if subnet.gateway_ip else None
            if not prefer_first and ipam.pool_size(pools) > PROBE_THRESHOLD:
                probe = [a for a in ipam.sample(pools, self.env.rng, PROBE_SIZE) if a != gateway]
                texts = {str(ipam.to_address(a, subnet.ip_version)): a for a in probe}
                taken_texts = set(session.execute(_PROBE, {"subnet_id": subnet.id, "addresses": list(texts)}).scalars())
                free = [text for text in texts if text not in taken_texts and (subnet.id, text) not in exclude]
                if free:
                    return subnet, self.env.rng.choice(free)
            address = self._free(session, subnet, prefer_first, {ip for sid, ip in exclude if sid == subnet.id})
            if address is not None:
                return subnet, address
        raise errors.IpAddressGenerationFailure(net_id=network_id)

    def lowest_free(self, session: Session, subnet: m.Subnet) -> str | None:
        """The address a DHCP port takes on ``subnet``: its pools' lowest free one (None: full)."""
        return self._free(session, AddressSource.of(subnet), prefer_first=True)

    def _free(self, session: Session, subnet: AddressSource, prefer_first: bool,
              exclude: set[str] = frozenset()) -> str | None:  # type: ignore[assignment]
        """A free address of ``subnet``'s pools, read whole (the gateway and ``exclude`` are never free)."""
        taken = {int(ipaddress.ip_address(a)) for a in session.execute(
            select(m.IPAllocation.ip_address).where(m.IPAllocation.subnet_id == subnet.id)).scalars()}
        taken.update(int(ipaddress.ip_address(a)) for a in exclude)
        if subnet.gateway_ip:
            taken.add(int(ipaddress.ip_address(subnet.gateway_ip)))
        choice = ipam.choose(subnet.pools, taken, prefer_first=prefer_first, rng=self.env.rng)
        return None if choice is None else str(ipam.to_address(choice, subnet.ip_version))

    # ---------------------------------------------------------------- security

    def _security(self, session: Session, ctx: Context, row: m.Port, requested: list[str] | None,
                  creating: bool) -> None:
        """Security groups: the default group of the port's project when none are asked for
        (not for the network's own ports, ``network:*``, nor without port security)."""
        if not self.env.port_security:
            row.port_security_enabled = True
        if requested is None:
            if not creating:
                return
            if not row.port_security_enabled or row.device_owner.startswith("network:"):
                groups: list[str] = []
            else:
                groups = [securitygroups.ensure_default(session, row.project_id)]
        else:
            groups = list(dict.fromkeys(requested))
            if groups and not row.port_security_enabled:
                raise errors.PortSecurityAndIPRequiredForSecurityGroups()
            securitygroups.check_usable(session, ctx, row.project_id, groups)
        current = {b.security_group_id for b in row.security_group_bindings}
        if set(groups) != current or creating:
            row.security_group_bindings = [m.PortSecurityGroupBinding(port_id=row.id, security_group_id=g)
                                           for g in groups]

    def _address_pairs(self, row: m.Port, pairs: list[dict]) -> None:
        limit = self.env.settings.DEFAULT.max_allowed_address_pair
        if len(pairs) > limit:
            raise errors.AllowedAddressPairExhausted(quota=limit)
        if pairs and not row.port_security_enabled:
            raise errors.AddressPairAndPortSecurityRequired()
        seen: set[tuple[str, str]] = set()
        result = []
        for i, pair in enumerate(pairs):
            mac = pair.get("mac_address") or row.mac_address
            key = (mac, pair["ip_address"])
            if key in seen:
                raise errors.DuplicateAddressPairInRequest(mac_address=mac, ip_address=pair["ip_address"])
            seen.add(key)
            result.append(m.AllowedAddressPair(position=i, mac_address=mac, ip_address=pair["ip_address"]))
        row.allowed_address_pairs = result

    @staticmethod
    def _dhcp_opts(current: list[dict], changes: list[dict]) -> list[dict]:
        """Neutron's merge: an option is keyed by (opt_name, ip_version); a null value removes it."""
        merged = {(o["opt_name"], o["ip_version"]): o for o in current}
        for opt in changes:
            key = (opt["opt_name"], opt.get("ip_version", 4))
            if opt.get("opt_value") is None:
                merged.pop(key, None)
            else:
                merged[key] = {"opt_name": key[0], "opt_value": opt["opt_value"], "ip_version": key[1]}
        return list(merged.values())

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, port_id: str) -> dict:
        """Read as a plain row, like a list (two statements: the port, then its related rows)."""
        visible = visible_clause(ctx)
        stmt = _SHOW if visible is None else _SHOW.where(visible)
        with self.env.db.read() as session:
            rows = list(session.execute(stmt, {"port_id": port_id}))
            if not rows:
                raise errors.PortNotFound(port_id=port_id)
            return render.port_rows(session, rows, self.env.port_security)[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible_clause(ctx), q,
                               lambda marker: errors.PortNotFound(port_id=marker), entity=m.Port.__table__)
            return render.port_rows(session, list(session.execute(stmt)), self.env.port_security)

    # ---------------------------------------------------------------- update

    def update(self, ctx: Context, port_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_port")

        def work(session: Session) -> dict:
            row = load_visible(session, ctx, port_id)
            check_revision(row, if_match)
            before = self.render(session, [row])[0]
            for key in ("name", "description", "admin_state_up", "device_id", "device_owner"):
                if key in attrs:
                    setattr(row, key, attrs[key])
            if "binding:vnic_type" in attrs:
                row.binding_vnic_type = attrs["binding:vnic_type"]
            if "binding:profile" in attrs:
                row.binding_profile = orjson.dumps(attrs["binding:profile"] or {}).decode()
            if "binding:host_id" in attrs:
                self._bind(session, row, attrs["binding:host_id"] or "")
            if "mac_address" in attrs and not ctx.is_admin:
                raise errors.PolicyNotAuthorized(rule="(rule:update_port and rule:update_port:mac_address)")
            if not ctx.is_admin and any(a in attrs for a in NET_OWNER_ATTRS):
                owner = session.execute(select(m.Network.project_id).where(m.Network.id == row.network_id)).scalar()
                _check_owner_attrs(ctx, owner, "update_port", attrs)
            if "mac_address" in attrs and attrs["mac_address"] != row.mac_address:
                if row.binding_vif_type not in ("unbound", "binding_failed"):
                    raise errors.PortBound(port_id=row.id)
                row.mac_address = self._mac(session, row.network_id, attrs["mac_address"])
            if "port_security_enabled" in attrs:
                row.port_security_enabled = attrs["port_security_enabled"]
            if "security_groups" in attrs:  # NOTE: null removes them all, as Neutron
                self._security(session, ctx, row, attrs["security_groups"] or [], creating=False)
            if not row.port_security_enabled and self.env.port_security:
                if row.security_group_bindings:
                    raise errors.PortSecurityPortHasSecurityGroup()
                if row.allowed_address_pairs and "allowed_address_pairs" not in attrs:
                    raise errors.AddressPairAndPortSecurityRequired()
            if "allowed_address_pairs" in attrs:
                row.allowed_address_pairs.clear()
                session.flush()
                self._address_pairs(row, attrs["allowed_address_pairs"] or [])
            if "extra_dhcp_opts" in attrs:
                merged = self._dhcp_opts(before["extra_dhcp_opts"], attrs["extra_dhcp_opts"] or [])
                row.extra_dhcp_opts.clear()
                session.flush()
                row.extra_dhcp_opts.extend(m.ExtraDhcpOpt(position=i, **o) for i, o in enumerate(merged))
            if "fixed_ips" in attrs:
                self._reallocate(session, ctx, row, attrs["fixed_ips"])
                l3.check_port_addresses(session, row)  # a floating IP's fixed address stays
            return record_update(session, "port", row, before, lambda r: self.render(session, [r])[0])

        return self.env.write(work)

    def _reallocate(self, session: Session, ctx: Context, row: m.Port, requested: list[dict]) -> None:
        network = session.get(m.Network, row.network_id)
        assert network is not None
        keep = {(a.subnet_id, a.ip_address) for a in row.fixed_ips}
        # As Neutron (``_get_changed_ips_for_port``): an entry naming only a subnet keeps one of the
        # port's addresses there that no entry names explicitly; once none is left, it gets a new one.
        named = {str(ipaddress.ip_address(i["ip_address"])) for i in requested if i.get("ip_address") is not None}
        held: dict[str, list[str]] = {}
        for a in row.fixed_ips:
            if a.ip_address not in named:
                held.setdefault(a.subnet_id, []).append(a.ip_address)
        resolved = []
        for item in requested:
            spare = held.get(item.get("subnet_id")) if item.get("ip_address") is None else None
            if spare:
                resolved.append({"subnet_id": item["subnet_id"], "ip_address": spare.pop(0)})
            else:
                resolved.append(item)
        row.fixed_ips.clear()
        session.flush()
        self._allocate(session, row, network, resolved, keep=keep)

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, port_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_port")

        def work(session: Session) -> None:
            row = load_visible(session, ctx, port_id)
            check_revision(row, if_match)
            l3.before_port_delete(session, ctx, row)  # L3 ports refused; floating IPs disassociated
            delete_row(session, row, self.env.port_security)

        self.env.write(work)
