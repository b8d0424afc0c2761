"""Address groups (address-group): named sets of CIDRs that security group rules name as their
remote end (``remote_address_group_id``, security-groups-remote-address-group).

A group's addresses are CIDRs stored normalised (host bits cleared: ``192.168.0.10/24`` is
``192.168.0.0/24``), each once; both IP versions may mix in one group, and a rule of ethertype
IPv4 (IPv6) admits only the group's IPv4 (IPv6) addresses. As Neutron's ``address_group_db``:
``add_addresses`` refuses addresses the group already holds (400 ``AddressesAlreadyExist``),
``remove_addresses`` refuses ones it does not (404 ``AddressesNotFound``), both before changing
anything; a create with addresses merges duplicates. A group that a rule names cannot be deleted
(409 ``AddressGroupInUse``).

Visibility is ``visible_clause``: the owner's groups, and those an ``access_as_shared`` RBAC entry
(rbac-address-group, ``rbac``) shares with the caller's project or with every project; an admin
sees all. A project a group is shared with may name it in its rules; the entries it needs cannot go
while its rules do (``rbac_users``: Neutron's ``get_bound_project_ids``). Neutron's address group
has a ``shared`` attribute that it never shows (not visible, not a filter): neither does this one.
Changes are the owner's: a group seen but not owned answers 404 to a change, as Neutron's policy
does for a group shared with the caller. A group's entries go with it.

Concurrency: every change locks the group's row (``FOR UPDATE``); so does a rule naming the
group (``securitygroups``), so a delete and a new rule naming the group serialise, and the delete
either sees the rule (409) or the rule sees no group (404). The change log gets the group's
create, update (its addresses) and delete: a change of addresses reaches the agents whose rules
name the group (``model.scope``: key ``("ag", id)``).
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, query, rbac
from baryon.service.base import Env, check_revision, record_update, require_write, stamp_new
from baryon.service.context import Context
from baryon.service.render import ts

RBAC_TYPE = "address_group"  # the entries' object_type
LISTING = query.Listing(
    model=m.AddressGroup,
    columns={
        "id": m.AddressGroup.id, "name": m.AddressGroup.name, "description": m.AddressGroup.description,
        "project_id": m.AddressGroup.project_id, "tenant_id": m.AddressGroup.project_id,
        "revision_number": m.AddressGroup.revision_number,
        "created_at": m.AddressGroup.created_at, "updated_at": m.AddressGroup.updated_at,
    },
    sortable=frozenset({"id", "name", "description", "project_id", "tenant_id", "revision_number", "created_at",
                        "updated_at"}),
)


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    """The groups ``ctx`` may see (None: all of them), as a clause for lists; ``load_visible``
    decides the same for one row it has read (the owner, an admin, or an entry)."""
    if ctx.is_admin:
        return None
    return or_(m.AddressGroup.project_id == ctx.project_id,
               m.AddressGroup.id.in_(rbac.granted_ids(RBAC_TYPE, ctx.project_id, (rbac.SHARED,))))


def load_visible(session: Session, ctx: Context, group_id: str, *, for_update: bool = False) -> m.AddressGroup:
    """The group if ``ctx`` sees it (404 otherwise). NOTE: the row is read (and locked) before its
    entries, so that under the lock the entries read are those the last change of them left."""
    stmt = select(m.AddressGroup).where(m.AddressGroup.id == group_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None or not (ctx.is_admin or row.project_id == ctx.project_id
                           or rbac.granted(session, RBAC_TYPE, row.id, ctx.project_id, (rbac.SHARED,))):
        raise errors.AddressGroupNotFound(address_group_id=group_id)
    return row


def load_owned(session: Session, ctx: Context, group_id: str) -> m.AddressGroup:
    """The group, locked, for a change: the owner's (or an admin's); 404 for anybody else, even
    one who sees it."""
    row = load_visible(session, ctx, group_id, for_update=True)
    if not (ctx.is_admin or row.project_id == ctx.project_id):
        raise errors.AddressGroupNotFound(address_group_id=group_id)
    return row


def rbac_users(session: Session, row: m.AddressGroup, action: str) -> set[str]:
    """The projects other than the owner whose security group rules name the group (a rule's
    project, as Neutron's ``AddressGroup.get_bound_project_ids``)."""
    found = set(session.execute(select(m.SecurityGroupRule.project_id).where(
        m.SecurityGroupRule.remote_address_group_id == row.id)).scalars())
    return found - {row.project_id}


def normalize(address: str) -> str:
    """A CIDR (or a bare address: its full length) with the host bits cleared; the caller has
    checked that it parses (``ValueError`` otherwise)."""
    return str(ipaddress.ip_network(address, strict=False))


def body(row: m.AddressGroup) -> dict:
    return {
        "id": row.id, "name": row.name, "description": row.description, "project_id": row.project_id,
        "tenant_id": row.project_id, "addresses": [a.address for a in row.addresses],
        "created_at": ts(row.created_at), "updated_at": ts(row.updated_at), "revision_number": row.revision_number,
    }


def _split(row: m.AddressGroup, requested: list[str]) -> tuple[list[str], list[str]]:
    """The requested addresses, normalised and deduplicated, that the group holds and does not."""
    held = {a.address for a in row.addresses}
    wanted = sorted({normalize(a) for a in requested})
    return [a for a in wanted if a in held], [a for a in wanted if a not in held]


class AddressGroups:
    def __init__(self, env: Env):
        self.env = env

    def render(self, session: Session, rows: list[m.AddressGroup]) -> list[dict]:
        return [body(r) for r in rows]

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_address_group")

        def work(session: Session) -> list[dict]:
            rows = []
            for attrs in items:
                row = m.AddressGroup()
                stamp_new(row, ctx.project_id, attrs)
                row.addresses = [m.AddressAssociation(address=a)
                                 for a in sorted({normalize(a) for a in attrs.get("addresses") or ()})]
                session.add(row)
                rows.append(row)
            session.flush()
            result = self.render(session, rows)
            for item in result:
                feed.record(session, "address_group", "create", item)
            return result

        return self.env.write(work)

    def get(self, ctx: Context, group_id: str) -> dict:
        with self.env.db.read() as session:
            return body(load_visible(session, ctx, group_id))

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible_clause(ctx), q,
                               lambda marker: errors.AddressGroupNotFound(address_group_id=marker))
            return self.render(session, list(session.execute(stmt).scalars()))

    def update(self, ctx: Context, group_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_address_group")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, group_id)
            check_revision(row, if_match)
            before = body(row)
            for key in ("name", "description"):
                if key in attrs:
                    setattr(row, key, attrs[key])
            return record_update(session, "address_group", row, before, body)

        return self.env.write(work)

    def add_addresses(self, ctx: Context, group_id: str, addresses: list[str]) -> dict:
        require_write(ctx, "add_addresses")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, group_id)
            present, missing = _split(row, addresses)
            if present:
                raise errors.AddressesAlreadyExist(addresses=present, address_group_id=group_id)
            before = body(row)
            row.addresses = sorted([*row.addresses, *(m.AddressAssociation(address=a) for a in missing)],
                                   key=lambda a: a.address)
            return {"address_group": record_update(session, "address_group", row, before, body)}

        return self.env.write(work)

    def remove_addresses(self, ctx: Context, group_id: str, addresses: list[str]) -> dict:
        require_write(ctx, "remove_addresses")

        def work(session: Session) -> dict:
            row = load_owned(session, ctx, group_id)
            present, missing = _split(row, addresses)
            if missing:
                raise errors.AddressesNotFound(addresses=missing, address_group_id=group_id)
            before = body(row)
            gone = set(present)
            row.addresses = [a for a in row.addresses if a.address not in gone]
            return {"address_group": record_update(session, "address_group", row, before, body)}

        return self.env.write(work)

    def delete(self, ctx: Context, group_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_address_group")

        def work(session: Session) -> None:
            row = load_owned(session, ctx, group_id)
            check_revision(row, if_match)
            if session.execute(select(m.SecurityGroupRule.id).where(
                    m.SecurityGroupRule.remote_address_group_id == row.id).limit(1)).first():
                raise errors.AddressGroupInUse(address_group_id=row.id)
            item = body(row)
            rbac.remove(session, RBAC_TYPE, row.id)
            session.delete(row)
            feed.record(session, "address_group", "delete", item)

        self.env.write(work)


def check_usable(session: Session, ctx: Context, group_id: str) -> None:
    """A rule may name ``group_id`` as its remote address group: a group ``ctx`` sees (404
    otherwise). Its row is locked so that it cannot be deleted before the rule commits."""
    load_visible(session, ctx, group_id, for_update=True)
