"""RBAC entries: which projects may use another project's object, and how (Neutron's rbac_db_mixin).

An entry grants ``action`` on one object (``object_type``, ``object_id``) to ``target_project``,
``'*'`` meaning every project. This module is what the objects' services read and write entries
with; the API on the entries themselves is ``rbacpolicies``. Each object type is one
``ObjectType`` in the registry ``Services`` builds (``services.py``): adding a type (e.g. address
groups) is one entry there and, in its own service, one visibility function using ``granted_ids``
/ ``granted``.

Invariants, kept inside the transaction that changes an entry (the object's row locked first):
- the objects' ``shared`` columns (networks, subnet pools, address scopes) say that a ``'*'``
  ``access_as_shared`` entry exists; a network's ``router_external`` that at least one
  ``access_as_external`` entry exists (Neutron: such an entry makes the network external, the
  last one gone makes it internal again);
- ``shared`` as a caller sees it is true when a ``access_as_shared`` entry targets ``'*'`` or the
  caller's project (``per_caller``), as Neutron's ``_is_network_shared``;
- an entry cannot go (or be retargeted) while a project it lets use the object still does, unless
  another entry (or the ownership) still grants that project the access (``losing``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, or_, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import feed
from baryon.service.context import Context

SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
WILDCARD = "*"
P = m.RbacPolicy


def _no_check(session: Session, obj: Any, action: str, target: str) -> None:
    return None


def _no_removal_check(session: Session, obj: Any, action: str, target: str, remaining: set[str]) -> None:
    return None


def _no_sync(session: Session, obj: Any) -> None:
    return None


@dataclass(frozen=True)
class ObjectType:
    """How RBAC entries apply to one kind of object.

    ``load(session, ctx, object_id)``: the object as ``ctx`` sees it, row-locked (its 404 when not);
    ``render(session, obj)``: its body as logged (an entry change bumps its revision and logs it);
    ``users(session, obj, action)``: the projects other than the owner that use it under ``action``
    (ports on a network, routers on an external one, subnets from a pool, ...);
    ``sync(session, obj)``: mirror the entries on the object's own columns (``shared``, ...);
    ``check_target(session, obj, action, target)``: refuse a grant that cannot hold (raises);
    ``check_removal(session, obj, action, target, remaining)``: refuse removing the entry for
    ``target`` (``remaining``: the targets that stay) for a reason of the type's own (raises),
    beyond the projects that use it."""

    name: str
    resource: str  # its collection's name, as Neutron's policy messages say it: "networks"
    actions: tuple[str, ...]
    load: Callable[[Session, Context, str], Any]
    render: Callable[[Session, Any], dict]
    users: Callable[[Session, Any, str], set[str]]
    sync: Callable[[Session, Any], None] = _no_sync
    check_target: Callable[[Session, Any, str, str], None] = _no_check
    check_removal: Callable[[Session, Any, str, str, set[str]], None] = _no_removal_check


# ---------------------------------------------------------------- reading entries


def granted_ids(object_type: str, project_id: str, actions: Iterable[str] | None = None) -> Select:
    """The ids of the objects of ``object_type`` an entry grants ``project_id`` (one of ``actions``,
    any when None): a subquery for a visibility clause."""
    stmt = select(P.object_id).where(P.object_type == object_type, P.target_project.in_((WILDCARD, project_id)))
    if actions is not None:
        stmt = stmt.where(P.action.in_(tuple(actions)))
    return stmt


def granted(session: Session, object_type: str, object_id: str, project_id: str,
            actions: Iterable[str] | None = None) -> bool:
    stmt = granted_ids(object_type, project_id, actions).where(P.object_id == object_id).limit(1)
    return session.execute(stmt).first() is not None


def targets(session: Session, object_type: str, object_id: str, action: str) -> set[str]:
    return set(session.execute(select(P.target_project).where(
        P.object_type == object_type, P.object_id == object_id, P.action == action)).scalars())


def exists(session: Session, object_type: str, object_id: str, action: str, target: str | None = None) -> bool:
    stmt = select(P.id).where(P.object_type == object_type, P.object_id == object_id, P.action == action)
    if target is not None:
        stmt = stmt.where(P.target_project == target)
    return session.execute(stmt.limit(1)).first() is not None


def shared_clause(id_column: Any, object_type: str, ctx: Context, value: bool) -> ColumnElement[bool]:
    """Neutron's ``?shared=`` filter: objects shared (``access_as_shared``) with the caller's project
    or every project; ``False``: the others."""
    ids = select(P.object_id).where(P.object_type == object_type, P.action == SHARED,
                                    P.target_project.in_((WILDCARD, ctx.project_id)))
    return id_column.in_(ids) if value else id_column.not_in(ids)


def shared_filter(q: Any, ctx: Context, id_column: Any, object_type: str,
                  visible: ColumnElement[bool] | None) -> tuple[Any, ColumnElement[bool] | None]:
    """A list query's ``shared`` filter taken out of ``q`` (a ``query.ListQuery``) and joined to the
    ``visible`` clause as ``shared_clause``: what ``shared`` means depends on the caller."""
    if "shared" not in q.filters:
        return q, visible
    filters = dict(q.filters)
    clause = or_(*(shared_clause(id_column, object_type, ctx, bool(v)) for v in filters.pop("shared")))
    return dataclasses.replace(q, filters=filters), clause if visible is None else and_(visible, clause)


def per_caller(session: Session, ctx: Context, object_type: str, bodies: list[dict]) -> list[dict]:
    """``bodies`` (whose ``shared`` says: shared with every project) as the caller sees them: also
    shared when an entry shares the object with the caller's project. Copies what it changes (the
    logged bodies stay as they are)."""
    ids = [b["id"] for b in bodies if not b.get("shared")]
    if not ids:
        return bodies
    mine = set(session.execute(select(P.object_id).where(
        P.object_type == object_type, P.action == SHARED, P.target_project.in_((WILDCARD, ctx.project_id)),
        P.object_id.in_(ids))).scalars())
    return [{**b, "shared": True} if b["id"] in mine else b for b in bodies]


# ---------------------------------------------------------------- writing entries


def body(row: m.RbacPolicy) -> dict:
    """A policy as Neutron 29 shows it: the target as ``target_tenant`` only (``target_project`` is
    taken on input and as a filter, not shown: tempest compares bodies without it)."""
    return {"id": row.id, "project_id": row.project_id, "tenant_id": row.project_id,
            "object_type": row.object_type, "object_id": row.object_id, "action": row.action,
            "target_tenant": row.target_project}


def add(session: Session, project_id: str, object_type: str, object_id: str, action: str,
        target: str, policy_id: str) -> m.RbacPolicy | None:
    """The entry, created and logged; None when it exists already (the caller decides if that is a
    conflict). The caller holds the object's row lock."""
    if exists(session, object_type, object_id, action, target):
        return None
    row = m.RbacPolicy(id=policy_id, project_id=project_id, object_type=object_type, object_id=object_id,
                       action=action, target_project=target)
    session.add(row)
    session.flush()
    feed.record(session, "rbac_policy", "create", body(row))
    return row


def remove(session: Session, object_type: str, object_id: str, action: str | None = None,
           target: str | None = None) -> None:
    """Delete (and log) the object's entries: of ``action`` (all when None), for ``target`` (all
    when None)."""
    stmt = select(P).where(P.object_type == object_type, P.object_id == object_id)
    if action is not None:
        stmt = stmt.where(P.action == action)
    if target is not None:
        stmt = stmt.where(P.target_project == target)
    rows = list(session.execute(stmt).scalars())
    for row in rows:
        feed.record(session, "rbac_policy", "delete", body(row))
    if rows:
        session.execute(delete(P).where(P.id.in_([r.id for r in rows])))


def losing(users: set[str], owner: str, remaining: set[str], target: str) -> set[str]:
    """The projects that would lose their access to an object if its entry for ``target`` went,
    ``remaining`` being the targets of the entries (same action) that stay: none if one of those is
    the wildcard; else the users the entry covered that neither own it nor keep an entry."""
    if WILDCARD in remaining:
        return set()
    covered = users if target == WILDCARD else users & {target}
    return covered - remaining - {owner}
