"""Address scopes (address-scope): a named space of one IP version whose subnet pools never overlap
(the pools' side of it is in ``subnetpools``).

Visibility: the owner's, and the projects an RBAC entry (rbac-address-scope) shares it with;
``shared: true`` is the wildcard entry (``rbac``), and the ``shared`` a caller sees is whether the
scope is shared with it. Changes are the owner's (a shared scope seen by another project: 403).
``shared`` is the admin's to set, on create and on update (any value given on update, as Neutron's
policy), and a shared scope cannot be unshared. A scope that pools
use cannot be deleted (409).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, query, rbac
from baryon.service.base import Env, check_revision, new_id, record_update, require_write, stamp_new
from baryon.service.context import Context

LISTING = query.Listing(
    model=m.AddressScope,
    columns={
        "id": m.AddressScope.id, "name": m.AddressScope.name,
        "project_id": m.AddressScope.project_id, "tenant_id": m.AddressScope.project_id,
        "ip_version": m.AddressScope.ip_version, "shared": m.AddressScope.shared,
    },
    sortable=frozenset({"id", "name", "project_id", "tenant_id", "ip_version", "shared"}),
)


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return or_(m.AddressScope.project_id == ctx.project_id,
               m.AddressScope.id.in_(rbac.granted_ids("address_scope", ctx.project_id, (rbac.SHARED,))))


def load_visible(session: Session, ctx: Context, scope_id: str, *, for_update: bool = False) -> m.AddressScope:
    stmt = select(m.AddressScope).where(m.AddressScope.id == scope_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or not (ctx.is_admin or row.project_id == ctx.project_id
                           or rbac.granted(session, "address_scope", row.id, ctx.project_id, (rbac.SHARED,))):
        raise errors.AddressScopeNotFound(address_scope_id=scope_id)
    return row


def load_owned(session: Session, ctx: Context, scope_id: str, action: str = "update_address_scope") -> m.AddressScope:
    row = load_visible(session, ctx, scope_id, for_update=True)
    if not (ctx.is_admin or row.project_id == ctx.project_id):
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")
    return row


# ---------------------------------------------------------------- RBAC (the registry's address_scope entry)


def rbac_users(session: Session, row: m.AddressScope, action: str) -> set[str]:
    """The projects other than the owner with subnet pools in the scope."""
    found = set(session.execute(select(m.SubnetPool.project_id).where(
        m.SubnetPool.address_scope_id == row.id)).scalars())
    return found - {row.project_id}


def rbac_sync(session: Session, row: m.AddressScope) -> None:
    row.shared = rbac.exists(session, "address_scope", row.id, rbac.SHARED, rbac.WILDCARD)


def body(row: m.AddressScope) -> dict:
    """NOTE: an address scope has no standard attributes in Neutron (no description, timestamps,
    revision or tags): the row keeps them for the change log, the API shows only these."""
    return {"id": row.id, "name": row.name, "project_id": row.project_id, "tenant_id": row.project_id,
            "shared": row.shared, "ip_version": row.ip_version}


class AddressScopes:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.AddressScope]) -> list[dict]:
        return [body(r) for r in rows]

    @staticmethod
    def shown(session: Session, ctx: Context, bodies: list[dict]) -> list[dict]:
        """Rendered scopes as the caller sees them (``shared`` per caller)."""
        return rbac.per_caller(session, ctx, "address_scope", bodies)

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_address_scope")

        def work(session: Session) -> list[dict]:
            rows = []
            for attrs in items:
                row = m.AddressScope()
                stamp_new(row, ctx.project_id, attrs)
                row.ip_version = attrs["ip_version"]
                row.shared = attrs.get("shared", False)
                session.add(row)
                rows.append(row)
            session.flush()
            for row in rows:
                if row.shared:
                    rbac.add(session, row.project_id, "address_scope", row.id, rbac.SHARED, rbac.WILDCARD, new_id())
            result = self.render(session, rows)
            for item in result:
                feed.record(session, "address_scope", "create", item)
            return self.shown(session, ctx, result)

        return self.env.write(work)

    def get(self, ctx: Context, scope_id: str) -> dict:
        with self.env.db.read() as session:
            return self.shown(session, ctx, self.render(session, [load_visible(session, ctx, scope_id)]))[0]

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        q, visible = rbac.shared_filter(q, ctx, m.AddressScope.id, "address_scope", visible_clause(ctx))
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible, q,
                               lambda marker: errors.AddressScopeNotFound(address_scope_id=marker))
            return self.shown(session, ctx, self.render(session, list(session.execute(stmt).scalars())))

    def update(self, ctx: Context, scope_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_address_scope")
        if "shared" in attrs and not ctx.is_admin:
            raise errors.PolicyNotAuthorized(rule="(rule:update_address_scope and rule:update_address_scope:shared)")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, scope_id)
            check_revision(row, if_match)
            if row.shared and attrs.get("shared") is False:
                raise errors.AddressScopeUpdateError(address_scope_id=row.id,
                                                     reason="Shared address scope can't be unshared")
            before = self.render(session, [row])[0]
            if attrs.get("shared") and not row.shared:
                rbac.add(session, row.project_id, "address_scope", row.id, rbac.SHARED, rbac.WILDCARD, new_id())
            for key in ("name", "shared"):
                if key in attrs:
                    setattr(row, key, attrs[key])
            body = record_update(session, "address_scope", row, before, lambda r: self.render(session, [r])[0])
            return self.shown(session, ctx, [body])[0]

        return self.env.write(work)

    def delete(self, ctx: Context, scope_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_address_scope")

        def work(session: Session) -> None:
            row = load_owned(session, ctx, scope_id, "delete_address_scope")
            check_revision(row, if_match)
            if session.execute(select(m.SubnetPool.id).where(
                    m.SubnetPool.address_scope_id == row.id).limit(1)).first():
                raise errors.AddressScopeInUse(address_scope_id=row.id)
            item = self.render(session, [row])[0]
            rbac.remove(session, "address_scope", row.id)
            session.delete(row)
            feed.record(session, "address_scope", "delete", item)

        self.env.write(work)
