"""Subnet pools (subnet_allocation, default-subnetpools, subnetpool-prefix-ops) and the allocation
of subnets from them.

A pool holds prefixes of one IP version, stored compacted (``prefixes.compact``), and the bounds
``min_prefixlen <= default_prefixlen <= max_prefixlen`` (defaults: 8 or 64, 32 or 128, min), as
Neutron's ``SubnetPoolReader``. Prefixes may grow but never shrink through an update: removal is
``remove_prefixes``, refused for a prefix a subnet uses. A pool with subnets cannot be deleted. One
default pool per IP version (``is_default``, the admin's). A pool in an address scope must have the
scope's IP version, be accessible to the caller (owner, shared, or admin) and share no address with
the scope's other pools; re-scoping a pool may not leave a network's subnets in two scopes.

Visibility: a pool is the owner's, and the projects an RBAC entry (rbac-subnetpool) shares it with;
``shared: true`` is the wildcard entry (``rbac``), and the ``shared`` a caller sees is whether the
pool is shared with it. Changing a pool is the owner's (a shared pool seen by another project:
403), as in Neutron's policy. A pool in an address scope is shared only with projects the scope
is shared with (400).

Allocation (``allocate``, called by ``subnets`` inside the subnet's transaction): the pool row is
locked (``FOR UPDATE``) before the allocated prefixes are read, so two concurrent allocations from
one pool serialise and never overlap (Neutron takes the same lock with a compare-and-swap on a hash
column). Any-subnet requests take the first block of the smallest free space that fits
(``prefixes.allocate_any``); a given CIDR must lie in free space. The prefix length must be within
the pool's bounds, and the pool's ``default_quota`` (addresses for IPv4, /64s for IPv6, per project)
holds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, prefixes, query, quotas, rbac, render, tags
from baryon.service.base import Env, check_revision, new_id, record_update, require_write, stamp_new
from baryon.service.context import Context

LISTING = query.Listing(
    model=m.SubnetPool,
    columns={
        "id": m.SubnetPool.id, "name": m.SubnetPool.name, "description": m.SubnetPool.description,
        "project_id": m.SubnetPool.project_id, "tenant_id": m.SubnetPool.project_id,
        "ip_version": m.SubnetPool.ip_version, "default_prefixlen": m.SubnetPool.default_prefixlen,
        "min_prefixlen": m.SubnetPool.min_prefixlen, "max_prefixlen": m.SubnetPool.max_prefixlen,
        "shared": m.SubnetPool.shared, "is_default": m.SubnetPool.is_default,
        "default_quota": m.SubnetPool.default_quota, "address_scope_id": m.SubnetPool.address_scope_id,
        "revision_number": m.SubnetPool.revision_number,
        "created_at": m.SubnetPool.created_at, "updated_at": m.SubnetPool.updated_at,
    },
    sortable=frozenset({"id", "name", "description", "project_id", "tenant_id", "ip_version", "default_prefixlen",
                        "min_prefixlen", "max_prefixlen", "shared", "is_default", "default_quota",
                        "address_scope_id", "revision_number", "created_at", "updated_at"}),
)

NO_SHRINK = "Existing prefixes must be a subset of the new prefixes"
IN_USE = "One or more the prefixes to be removed is in use by a subnet."


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return or_(m.SubnetPool.project_id == ctx.project_id,
               m.SubnetPool.id.in_(rbac.granted_ids("subnetpool", ctx.project_id, (rbac.SHARED,))))


def _visible(session: Session, ctx: Context, row: m.SubnetPool) -> bool:
    return (ctx.is_admin or row.project_id == ctx.project_id
            or rbac.granted(session, "subnetpool", row.id, ctx.project_id, (rbac.SHARED,)))


def scope_usable(session: Session, scope_id: str, project_id: str) -> bool:
    """Whether ``project_id`` may use the address scope: owns it, or it is shared with the project
    ('*': with every project)."""
    owner = session.execute(select(m.AddressScope.project_id).where(m.AddressScope.id == scope_id)).scalar()
    if owner is None:
        return False
    if project_id == rbac.WILDCARD:
        return rbac.exists(session, "address_scope", scope_id, rbac.SHARED, rbac.WILDCARD)
    return owner == project_id or rbac.granted(session, "address_scope", scope_id, project_id, (rbac.SHARED,))


# ---------------------------------------------------------------- RBAC (the registry's subnetpool entry)


def rbac_users(session: Session, row: m.SubnetPool, action: str) -> set[str]:
    """The projects other than the owner with subnets from the pool."""
    found = set(session.execute(select(m.Subnet.project_id).where(m.Subnet.subnetpool_id == row.id)).scalars())
    return found - {row.project_id}


def rbac_sync(session: Session, row: m.SubnetPool) -> None:
    row.shared = rbac.exists(session, "subnetpool", row.id, rbac.SHARED, rbac.WILDCARD)


def rbac_check_target(session: Session, row: m.SubnetPool, action: str, target: str) -> None:
    """A pool in an address scope can be shared only with projects that may use the scope."""
    if row.address_scope_id and not scope_usable(session, row.address_scope_id, target):
        raise errors.InvalidInput(error_message=f"Subnet pool {row.id} is in address scope "
                                                f"{row.address_scope_id}, which is not shared with {target}")


def load_visible(session: Session, ctx: Context, pool_id: str, *, for_update: bool = False) -> m.SubnetPool:
    stmt = select(m.SubnetPool).where(m.SubnetPool.id == pool_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or not _visible(session, ctx, row):
        raise errors.SubnetPoolNotFound(subnetpool_id=pool_id)
    return row


def load_owned(session: Session, ctx: Context, pool_id: str, action: str = "update_subnetpool") -> m.SubnetPool:
    row = load_visible(session, ctx, pool_id, for_update=True)
    if not (ctx.is_admin or row.project_id == ctx.project_id):
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")
    return row


def body(row: m.SubnetPool, tag_list: list[str]) -> dict:
    """As Neutron shows a pool: the prefix lengths as strings (``_make_subnetpool_dict``)."""
    result = render._standard(row, tag_list)
    result.update({
        "ip_version": row.ip_version, "default_prefixlen": str(row.default_prefixlen),
        "min_prefixlen": str(row.min_prefixlen), "max_prefixlen": str(row.max_prefixlen),
        "is_default": row.is_default, "shared": row.shared, "prefixes": [p.cidr for p in row.prefixes],
        "default_quota": row.default_quota, "address_scope_id": row.address_scope_id,
    })
    return result


# ---------------------------------------------------------------- reading a pool's definition


@dataclass(frozen=True)
class Spec:
    """A pool's definition, checked (Neutron's ``SubnetPoolReader``)."""

    prefixes: list[prefixes.IPNetwork]
    ip_version: int
    min_prefixlen: int
    max_prefixlen: int
    default_prefixlen: int


def read_spec(raw_prefixes: list[str], attrs: dict) -> Spec:
    if not raw_prefixes:
        raise errors.EmptySubnetPoolPrefixList()
    nets = [ipaddress.ip_network(p, strict=False) for p in raw_prefixes]
    version = nets[0].version
    if any(n.version != version for n in nets):
        raise errors.PrefixVersionMismatch()
    low = attrs.get("min_prefixlen", prefixes.DEFAULT_MIN_PREFIXLEN[version])
    high = attrs.get("max_prefixlen", prefixes.MAX_PREFIXLEN[version])
    default = attrs.get("default_prefixlen", low)

    def bounds(kind: str, value: int, base_kind: str, base: int) -> errors.IllegalSubnetPoolPrefixBounds:
        return errors.IllegalSubnetPoolPrefixBounds(prefix_type=kind, prefixlen=value, base_prefix_type=base_kind,
                                                    base_prefixlen=base)

    if low > high:
        raise bounds("min_prefixlen", low, "max_prefixlen", high)
    if high > prefixes.MAX_PREFIXLEN[version]:
        raise bounds("max_prefixlen", high, "ip_version_max", prefixes.MAX_PREFIXLEN[version])
    if default < low:
        raise bounds("default_prefixlen", default, "min_prefixlen", low)
    if default > high:
        raise bounds("default_prefixlen", default, "max_prefixlen", high)
    return Spec(prefixes.compact(nets), version, low, high, default)


def _nets(row: m.SubnetPool) -> list[prefixes.IPNetwork]:
    return [ipaddress.ip_network(p.cidr) for p in row.prefixes]


def _allocated(session: Session, pool_id: str) -> list[prefixes.IPNetwork]:
    return [ipaddress.ip_network(c) for c in
            session.execute(select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool_id)).scalars()]


def _set_prefixes(row: m.SubnetPool, nets: list[prefixes.IPNetwork]) -> None:
    row.prefixes = [m.SubnetPoolPrefix(position=i, cidr=str(n)) for i, n in enumerate(nets)]


class SubnetPools:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.SubnetPool]) -> list[dict]:
        tag_map = render.tags_of(session, [r.id for r in rows])
        return [body(r, tag_map.get(r.id, [])) for r in rows]

    @staticmethod
    def shown(session: Session, ctx: Context, bodies: list[dict]) -> list[dict]:
        """Rendered pools as the caller sees them (``shared`` per caller)."""
        return rbac.per_caller(session, ctx, "subnetpool", bodies)

    # ---------------------------------------------------------------- checks

    @staticmethod
    def _check_default(session: Session, version: int, exclude: str | None) -> None:
        taken = session.execute(select(m.SubnetPool.id).where(
            m.SubnetPool.is_default.is_(True), m.SubnetPool.ip_version == version)).scalars().all()
        if any(pool_id != exclude for pool_id in taken):
            raise errors.InvalidInput(error_message="A default subnetpool for this IP family has already been set. "
                                                    "Only one default may exist per IP family")

    @staticmethod
    def _check_scope(session: Session, ctx: Context, scope_id: str | None, pool_id: str,
                     nets: list[prefixes.IPNetwork], version: int) -> None:
        """Neutron's ``_validate_address_scope_id``. The scope row is locked, so two pools joining
        one scope at once are checked one after the other."""
        if scope_id is None:
            return
        scope = session.execute(select(m.AddressScope).where(m.AddressScope.id == scope_id)
                                .with_for_update()).scalar_one_or_none()
        if scope is None or not (ctx.is_admin or scope_usable(session, scope.id, ctx.project_id)):
            raise errors.AddressScopeNotFound(address_scope_id=scope_id)
        if scope.ip_version != version:
            raise errors.IllegalSubnetPoolIpVersionAssociationToAddressScope(
                subnetpool_id=pool_id, address_scope_id=scope_id, ip_version=scope.ip_version)
        # Re-scoping the pool may not leave a network with subnets of this version in two scopes.
        networks = select(m.Subnet.network_id).where(m.Subnet.subnetpool_id == pool_id)
        strays = session.execute(select(m.Subnet.id).where(
            m.Subnet.network_id.in_(networks), m.Subnet.ip_version == version,
            or_(m.Subnet.subnetpool_id.is_(None), m.Subnet.subnetpool_id != pool_id)).limit(1)).first()
        if strays is not None:
            raise errors.NetworkAddressScopeAffinityError()
        others = session.execute(select(m.SubnetPool).where(
            m.SubnetPool.address_scope_id == scope_id, m.SubnetPool.id != pool_id)).scalars()
        if any(prefixes.overlaps(_nets(other), nets) for other in others):
            raise errors.AddressScopePrefixConflict()

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_subnetpool")

        def work(session: Session) -> list[dict]:
            quotas.check_items(session, self.env, ctx.project_id, items, "subnetpool")
            rows = [self._create_one(session, ctx, attrs) for attrs in items]
            session.flush()
            for row in rows:
                if row.shared:
                    rbac.add(session, row.project_id, "subnetpool", row.id, rbac.SHARED, rbac.WILDCARD, new_id())
            result = self.render(session, rows)
            for item in result:
                feed.record(session, "subnetpool", "create", item)
            return self.shown(session, ctx, result)

        return self.env.write(work)

    def _create_one(self, session: Session, ctx: Context, attrs: dict) -> m.SubnetPool:
        spec = read_spec(attrs["prefixes"], attrs)
        row = m.SubnetPool()
        stamp_new(row, ctx.project_id, attrs)
        if attrs.get("is_default"):
            self._check_default(session, spec.ip_version, None)
        self._check_scope(session, ctx, attrs.get("address_scope_id"), row.id, spec.prefixes, spec.ip_version)
        row.ip_version = spec.ip_version
        row.min_prefixlen, row.max_prefixlen = spec.min_prefixlen, spec.max_prefixlen
        row.default_prefixlen = spec.default_prefixlen
        row.shared = attrs.get("shared", False)
        row.is_default = attrs.get("is_default", False)
        row.default_quota = attrs.get("default_quota")
        row.address_scope_id = attrs.get("address_scope_id")
        _set_prefixes(row, spec.prefixes)
        session.add(row)
        session.flush()
        tags.set_initial(session, "subnetpools", row.id, attrs.get("tags", []))
        return row

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, pool_id: str) -> dict:
        with self.env.db.read() as session:
            return self.shown(session, ctx, self.render(session, [load_visible(session, ctx, pool_id)]))[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        q, visible = rbac.shared_filter(q, ctx, m.SubnetPool.id, "subnetpool", visible_clause(ctx))
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible, q,
                               lambda marker: errors.SubnetPoolNotFound(subnetpool_id=marker))
            return self.shown(session, ctx, self.render(session, list(session.execute(stmt).scalars())))

    # ---------------------------------------------------------------- update

    def update(self, ctx: Context, pool_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_subnetpool")
        if "is_default" in attrs and not ctx.is_admin:  # Neutron's policy: any value given is the admin's
            raise errors.PolicyNotAuthorized(rule="(rule:update_subnetpool and rule:update_subnetpool:is_default)")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, pool_id)
            check_revision(row, if_match)
            return self.shown(session, ctx, [self._update(session, ctx, row, attrs)])[0]

        return self.env.write(work)

    def _update(self, session: Session, ctx: Context, row: m.SubnetPool, attrs: dict) -> dict:
        before = self.render(session, [row])[0]
        current = _nets(row)
        raw = attrs.get("prefixes")
        if raw is not None:
            new = [ipaddress.ip_network(p, strict=False) for p in raw]
            if not prefixes.covers(new, current) or any(n.version != row.ip_version for n in new):
                raise errors.IllegalSubnetPoolPrefixUpdate(msg=NO_SHRINK)
        merged = {"min_prefixlen": row.min_prefixlen, "max_prefixlen": row.max_prefixlen,
                  "default_prefixlen": row.default_prefixlen}
        merged.update({k: attrs[k] for k in merged if k in attrs})
        spec = read_spec([str(n) for n in current] if raw is None else raw, merged)
        if attrs.get("is_default") and not row.is_default:
            self._check_default(session, row.ip_version, row.id)
        if row.address_scope_id and not ctx.is_admin:
            scope = session.get(m.AddressScope, row.address_scope_id)
            if scope is not None and scope.project_id != ctx.project_id:
                raise errors.IllegalSubnetPoolUpdate(
                    reason=f"subnetpool {row.id} cannot be updated when associated with shared address scope "
                           f"{row.address_scope_id}")
        scope_id = attrs["address_scope_id"] if "address_scope_id" in attrs else row.address_scope_id
        self._check_scope(session, ctx, scope_id, row.id, spec.prefixes, row.ip_version)
        for key in ("name", "description", "is_default", "default_quota"):
            if key in attrs:
                setattr(row, key, attrs[key])
        row.address_scope_id = scope_id
        row.min_prefixlen, row.max_prefixlen = spec.min_prefixlen, spec.max_prefixlen
        row.default_prefixlen = spec.default_prefixlen
        if [str(n) for n in spec.prefixes] != before["prefixes"]:
            _set_prefixes(row, spec.prefixes)
        return record_update(session, "subnetpool", row, before, lambda r: self.render(session, [r])[0])

    def add_prefixes(self, ctx: Context, pool_id: str, new: list[str]) -> dict:
        require_write(ctx, "add_prefixes")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, pool_id, "add_prefixes")
            if not new:
                return {"prefixes": [p.cidr for p in row.prefixes]}
            result = self._update(session, ctx, row, {"prefixes": [p.cidr for p in row.prefixes] + new})
            return {"prefixes": result["prefixes"]}

        return self.env.write(work)

    def remove_prefixes(self, ctx: Context, pool_id: str, removal: list[str]) -> dict:
        """Neutron's ``remove_prefixes``: prefixes no subnet uses leave the pool (a no-op for ones
        it does not hold)."""
        require_write(ctx, "remove_prefixes")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, pool_id, "remove_prefixes")
            current = _nets(row)
            gone = [ipaddress.ip_network(p, strict=False) for p in removal]
            gone = [n for n in gone if n.version == row.ip_version]
            if not gone or not prefixes.overlaps(current, gone):
                return {"prefixes": [p.cidr for p in row.prefixes]}
            if prefixes.overlaps(_allocated(session, row.id), gone):
                raise errors.IllegalSubnetPoolPrefixUpdate(msg=IN_USE)
            before = self.render(session, [row])[0]
            _set_prefixes(row, prefixes.compact(prefixes.available(current, gone)))
            result = record_update(session, "subnetpool", row, before, lambda r: self.render(session, [r])[0])
            return {"prefixes": result["prefixes"]}

        return self.env.write(work)

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, pool_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_subnetpool")

        def work(session: Session) -> None:
            row = load_owned(session, ctx, pool_id, "delete_subnetpool")
            check_revision(row, if_match)
            if session.execute(select(m.Subnet.id).where(m.Subnet.subnetpool_id == row.id).limit(1)).first():
                raise errors.SubnetPoolDeleteError(reason="Subnet pool has existing allocations")
            item = self.render(session, [row])[0]
            tags.clear_all(session, row.id)
            rbac.remove(session, "subnetpool", row.id)
            session.delete(row)
            feed.record(session, "subnetpool", "delete", item)

        self.env.write(work)


# ---------------------------------------------------------------- allocation (for subnets)


def pool_for(session: Session, ctx: Context, attrs: dict) -> m.SubnetPool | None:
    """The pool a subnet request names (``subnetpool_id``) or asks for (``use_default_subnetpool``:
    the default pool of its IP version), locked for the allocation; None when it uses none.
    Neutron's ``_get_subnetpool_id``."""
    pool_id = attrs.get("subnetpool_id")
    if attrs.get("use_default_subnetpool"):
        if pool_id:
            raise errors.BadRequest(resource="subnets",
                                    msg="subnetpool_id and use_default_subnetpool cannot both be specified")
        version = attrs["ip_version"]
        pool_id = session.execute(select(m.SubnetPool.id).where(
            m.SubnetPool.is_default.is_(True), m.SubnetPool.ip_version == version)).scalars().first()
        if pool_id is None:
            raise errors.BadRequest(resource="subnets", msg=f"No default subnetpool found for IPv{version}")
    if not pool_id:
        return None
    return load_visible(session, ctx, pool_id, for_update=True)


def check_network_affinity(session: Session, network_id: str, version: int, pool: m.SubnetPool | None) -> None:
    """Neutron's ``_validate_network_subnetpools``: the subnets of one IP version on a network come
    from one pool, or from pools of one address scope."""
    existing = session.execute(select(m.Subnet.subnetpool_id).where(
        m.Subnet.network_id == network_id, m.Subnet.ip_version == version)).scalars().all()
    pool_ids = {p for p in existing if p}
    scopes = set(session.execute(select(m.SubnetPool.address_scope_id).where(
        m.SubnetPool.id.in_(pool_ids), m.SubnetPool.address_scope_id.is_not(None))).scalars()) if pool_ids else set()
    network_scope = min(scopes) if scopes else None
    if network_scope and pool is not None and pool.address_scope_id != network_scope:
        raise errors.NetworkAddressScopeAffinityError()
    for pool_id in existing:
        if pool is not None:
            if pool_id != pool.id and not network_scope:
                raise errors.NetworkSubnetPoolAffinityError()
        elif pool_id:
            raise errors.NetworkSubnetPoolAffinityError()


def allocate(session: Session, pool: m.SubnetPool, project_id: str, cidr: prefixes.IPNetwork | None,
             prefixlen: int | None) -> prefixes.IPNetwork:
    """A CIDR for a new subnet from ``pool`` (locked by the caller): ``cidr`` if it is free, else
    the best fit of ``prefixlen`` (the pool's default when None)."""
    length = cidr.prefixlen if cidr is not None else (pool.default_prefixlen if prefixlen is None else prefixlen)
    if length > pool.max_prefixlen:
        raise errors.MaxPrefixSubnetAllocationError(prefixlen=length, max_prefixlen=pool.max_prefixlen)
    if length < pool.min_prefixlen:
        raise errors.MinPrefixSubnetAllocationError(prefixlen=length, min_prefixlen=pool.min_prefixlen)
    allocated = _allocated(session, pool.id)
    if pool.default_quota:
        mine = session.execute(select(m.Subnet.cidr).where(
            m.Subnet.subnetpool_id == pool.id, m.Subnet.project_id == project_id)).scalars()
        used = sum(prefixes.quota_units(ipaddress.ip_network(c).prefixlen, pool.ip_version) for c in mine)
        if used + prefixes.quota_units(length, pool.ip_version) > pool.default_quota:
            raise errors.SubnetPoolQuotaExceeded()
    if cidr is not None:
        if not prefixes.allocate_specific(_nets(pool), allocated, cidr):
            raise errors.SubnetAllocationError(reason="Cannot allocate requested subnet from the available set of "
                                                      "prefixes")
        return cidr
    found = prefixes.allocate_any(_nets(pool), allocated, length)
    if found is None:
        raise errors.SubnetAllocationError(reason=f"Insufficient prefix space to allocate subnet size /{length}")
    return found
