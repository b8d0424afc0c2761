"""RBAC policies (rbac-policies): ``/v2.0/rbac-policies`` list, show, create, retarget, delete.

What an entry means and the invariants it keeps are in ``rbac``; the object types are the registry
``Services`` gives (``rbac.ObjectType`` per type). Rules, as Neutron's rbac_db_mixin and its
callbacks:
- a policy is seen (and changed) by its owner and the admin only; others get a 404;
- only the object's owner (or the admin) grants on it: an object the caller cannot see is its
  404, one it sees but does not own a 400 (Neutron's callbacks answer ``InvalidInput``);
- the wildcard target is the admin's (``create_rbac_policy:target_tenant``, on update too): 403;
- one entry per (object, action, target): 409 ``DuplicateRbacPolicy``;
- an entry cannot go, nor change target, while a project it lets use the object does, unless
  another entry still grants that project the access: 409 ``RbacPolicyInUse``;
- every change bumps the object's revision and logs it (its ``shared`` may change), and counts
  against the ``rbac_policy`` quota of the policy's project on create.

Concurrency: the object's row is locked (``FOR UPDATE``) before its entries are read or written,
so two changes of one object's entries serialise and the checks see each other's result.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors, feed, query, quotas, rbac
from baryon.service.base import Env, bump, new_id, require_write
from baryon.service.context import Context

P = m.RbacPolicy
LISTING = query.Listing(
    model=P,
    columns={
        "id": P.id, "project_id": P.project_id, "tenant_id": P.project_id, "object_type": P.object_type,
        "object_id": P.object_id, "action": P.action, "target_tenant": P.target_project,
        "target_project": P.target_project,
    },
    sortable=frozenset({"id", "project_id", "tenant_id", "object_type", "object_id", "action", "target_tenant",
                        "target_project"}),
)


def visible_clause(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else P.project_id == ctx.project_id


def _target(attrs: dict) -> str | None:
    """``target_project`` or its older name ``target_tenant`` (both given: they must agree)."""
    given = {attrs[k] for k in ("target_tenant", "target_project") if k in attrs}
    if len(given) > 1:
        raise errors.HTTPBadRequest(msg="'target_tenant' and 'target_project' do not match")
    return next(iter(given), None)


def _not_found(policy_id: str) -> errors.RbacPolicyNotFound:
    return errors.RbacPolicyNotFound(id=policy_id, object_type="rbac_policy")


class RbacPolicies:
    def __init__(self, env: Env, types: dict[str, rbac.ObjectType]):
        self.env = env
        self.types = types

    def render(self, session: Session, rows: list[m.RbacPolicy]) -> list[dict]:
        return [rbac.body(r) for r in rows]

    def _type(self, name: str, action: str) -> rbac.ObjectType:
        kind = self.types.get(name)
        if kind is None:
            raise errors.InvalidInput(error_message=f"'{name}' is not in {sorted(self.types)}")
        if action not in kind.actions:
            raise errors.InvalidActionForType(action=action, object_type=name, valid_actions=list(kind.actions))
        return kind

    def _touch(self, session: Session, kind: rbac.ObjectType, obj: Any) -> None:
        """The object after a change of its entries: columns mirrored, revision bumped, logged."""
        kind.sync(session, obj)
        bump(obj)
        session.flush()
        feed.record(session, kind.name, "update", kind.render(session, obj))

    @staticmethod
    def _check_wildcard(ctx: Context, target: str, action: str) -> None:
        if target == rbac.WILDCARD and not ctx.is_admin:
            raise errors.PolicyNotAuthorized(rule=f"(rule:{action}_rbac_policy and "
                                                  f"rule:{action}_rbac_policy:target_tenant)")

    # ---------------------------------------------------------------- create

    def create(self, ctx: Context, items: list[dict]) -> list[dict]:
        require_write(ctx, "create_rbac_policy")
        checked = []
        for attrs in items:
            target = _target(attrs)
            if target is None:
                raise errors.HTTPBadRequest(msg="Failed to parse request. Required attribute 'target_tenant' "
                                                "not specified")
            kind = self._type(attrs["object_type"], attrs["action"])
            self._check_wildcard(ctx, target, "create")
            checked.append((attrs, kind, target))

        def work(session: Session) -> list[dict]:
            quotas.check_items(session, self.env, ctx.project_id, items, "rbac_policy")
            result = []
            for attrs, kind, target in checked:
                obj = kind.load(session, ctx, attrs["object_id"])
                if not (ctx.is_admin or obj.project_id == ctx.project_id):
                    raise errors.InvalidInput(error_message=f"Only admins can manipulate policies on {kind.resource} "
                                                            "they do not own")
                kind.check_target(session, obj, attrs["action"], target)
                row = rbac.add(session, attrs.get("project_id") or ctx.project_id, kind.name, obj.id,
                               attrs["action"], target, new_id())
                if row is None:
                    raise errors.DuplicateRbacPolicy()
                self._touch(session, kind, obj)
                result.append(rbac.body(row))
            return result

        return self.env.write(work)

    # ---------------------------------------------------------------- read

    def get(self, ctx: Context, policy_id: str) -> dict:
        with self.env.db.read() as session:
            return rbac.body(self._load(session, ctx, policy_id))

    def list(self, ctx: Context, q: query.ListQuery) -> list[dict]:
        with self.env.db.read() as session:
            stmt = query.build(session, LISTING, visible_clause(ctx), q, _not_found)
            return self.render(session, list(session.execute(stmt).scalars()))

    @staticmethod
    def _load(session: Session, ctx: Context, policy_id: str, *, for_update: bool = False) -> m.RbacPolicy:
        stmt = select(P).where(P.id == policy_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = session.execute(stmt).scalar_one_or_none()
        if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
            raise _not_found(policy_id)
        return row

    def _locked(self, session: Session, ctx: Context, policy_id: str) -> tuple[m.RbacPolicy, rbac.ObjectType, Any]:
        """The policy and its object, the object's row locked first (as every change of its entries
        does), then the policy's, read again under the lock."""
        first = self._load(session, ctx, policy_id)
        kind = self.types[first.object_type]
        obj = kind.load(session, Context.admin(), first.object_id)
        return self._load(session, ctx, policy_id, for_update=True), kind, obj

    def _check_losing(self, session: Session, kind: rbac.ObjectType, obj: Any, row: m.RbacPolicy,
                      new_target: str | None) -> None:
        remaining = rbac.targets(session, kind.name, obj.id, row.action) - {row.target_project}
        if new_target is not None:
            remaining.add(new_target)
        lost = rbac.losing(kind.users(session, obj, row.action), obj.project_id, remaining, row.target_project)
        if lost:
            raise errors.RbacPolicyInUse(object_id=obj.id, details=f"{kind.resource} in use by project(s) "
                                                                   f"{', '.join(sorted(lost))}")
        kind.check_removal(session, obj, row.action, row.target_project, remaining)

    # ---------------------------------------------------------------- update

    def update(self, ctx: Context, policy_id: str, attrs: dict, if_match: int | None = None) -> dict:
        require_write(ctx, "update_rbac_policy")
        target = _target(attrs)
        if target is not None:
            self._check_wildcard(ctx, target, "update")

        def work(session: Session) -> dict:
            row, kind, obj = self._locked(session, ctx, policy_id)
            if target is None or target == row.target_project:
                return rbac.body(row)
            if rbac.exists(session, kind.name, obj.id, row.action, target):
                raise errors.DuplicateRbacPolicy()
            self._check_losing(session, kind, obj, row, target)
            kind.check_target(session, obj, row.action, target)
            row.target_project = target
            session.flush()
            feed.record(session, "rbac_policy", "update", rbac.body(row))
            self._touch(session, kind, obj)
            return rbac.body(row)

        return self.env.write(work)

    # ---------------------------------------------------------------- delete

    def delete(self, ctx: Context, policy_id: str, if_match: int | None = None) -> None:
        require_write(ctx, "delete_rbac_policy")

        def work(session: Session) -> None:
            row, kind, obj = self._locked(session, ctx, policy_id)
            self._check_losing(session, kind, obj, row, None)
            rbac.remove(session, kind.name, obj.id, row.action, row.target_project)
            self._touch(session, kind, obj)

        self.env.write(work)
