"""Quotas: per-project limits checked inside the creating transaction.

``check(session, env, project_id, resource, adding)`` raises ``OverQuota`` (409) when creating
``adding`` more of ``resource`` would exceed the project's limit. To make the check hold under
concurrency, it first locks the project's ``quota_locks`` row for that resource
(``SELECT ... FOR UPDATE``; SQLite serialises writers anyway) and only then counts, so of two
concurrent creates that would together pass the limit, the second waits for the first to
commit and then counts its row. An unlimited resource (-1) takes no lock and counts nothing.

Limits: a ``quotas`` row for the project overrides the ``[quotas] quota_<resource>`` default.

``Quotas`` serves the quota API (``baryon.api.routes.quotas``): admins list, show, set and reset
any project's limits; a project reads its own. Setting a limit below the current usage is refused
unless ``force`` (Neutron's quota-check-limit-default). Quota changes are not in the change log:
they are not resources with ids and revisions, and no agent acts on them.
"""

from __future__ import annotations

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors
from baryon.service.base import Env
from baryon.service.context import Context

# resource name (as in Neutron's quota API) -> the model whose rows count against it
COUNTED: dict[str, type] = {
    "network": m.Network,
    "subnet": m.Subnet,
    "port": m.Port,
    "router": m.Router,
    "floatingip": m.FloatingIP,
    "security_group": m.SecurityGroup,
    "security_group_rule": m.SecurityGroupRule,
    "subnetpool": m.SubnetPool,  # as Neutron: counted, no option of its own (default_quota, -1)
    "rbac_policy": m.RbacPolicy,  # every policy of the project counts; only the API's creates are checked
}


def default_limit(env: Env, resource: str) -> int:
    return getattr(env.settings.quotas, f"quota_{resource}", env.settings.quotas.default_quota)


def limits(session: Session, env: Env, project_id: str) -> dict[str, int]:
    """Every resource's limit for the project, overrides applied."""
    result = {resource: default_limit(env, resource) for resource in COUNTED}
    for resource, limit in session.execute(
            select(m.Quota.resource, m.Quota.limit).where(m.Quota.project_id == project_id)):
        if resource in result:
            result[resource] = limit
    return result


def used(session: Session, project_id: str, resource: str) -> int:
    model = COUNTED[resource]
    return session.execute(select(func.count()).select_from(model)
                           .where(model.project_id == project_id)).scalar_one()  # type: ignore[attr-defined]


# A project's own limit for a resource, built once and run as Core (every create reads it).
_OVERRIDE = (select(m.Quota.__table__.c["limit"])
             .where(m.Quota.__table__.c.project_id == bindparam("project_id"),
                    m.Quota.__table__.c.resource == bindparam("resource")))


def check(session: Session, env: Env, project_id: str, resource: str, adding: int = 1) -> None:
    override = session.execute(_OVERRIDE, {"project_id": project_id, "resource": resource}).scalar()
    limit = override if override is not None else default_limit(env, resource)
    if limit < 0:
        return
    lock_key = (project_id, resource)
    if session.get(m.QuotaLock, lock_key) is None:
        # A concurrent first create of the same pair fails on the primary key and is retried.
        session.add(m.QuotaLock(project_id=project_id, resource=resource))
        session.flush()
    session.execute(select(m.QuotaLock).where(m.QuotaLock.project_id == project_id,
                                              m.QuotaLock.resource == resource).with_for_update())
    if used(session, project_id, resource) + adding > limit:
        raise errors.OverQuota(overs=[resource])


def check_items(session: Session, env: Env, ctx_project: str, items: list[dict], resource: str) -> None:
    """``check`` for a (bulk) create: each project's items count together."""
    per_project: dict[str, int] = {}
    for attrs in items:
        project = attrs.get("project_id") or ctx_project
        per_project[project] = per_project.get(project, 0) + 1
    for project, adding in sorted(per_project.items()):
        check(session, env, project, resource, adding)


# ---------------------------------------------------------------- the quota API

MAX_LIMIT = 2**31 - 1  # neutron's DB_INTEGER_MAX_VALUE


def _authorize(ctx: Context, project_id: str | None, action: str) -> None:
    """Admins manage every project's quotas; a project may read its own."""
    if not ctx.is_admin and (project_id is None or project_id != ctx.project_id or action != "get_quota"):
        raise errors.PolicyNotAuthorized(rule=f"rule:{action}")


def check_update_allowed(ctx: Context) -> None:
    """Before the body is parsed, as Neutron: a member's PUT is a 403 whatever it carries."""
    _authorize(ctx, None, "update_quota")


class Quotas:
    """``/v2.0/quotas``: Neutron's quotas, quota_details and default-quota views. A project's
    limits are stored only where they differ from the defaults that were set (``quotas`` rows)."""

    def __init__(self, env: Env):
        self.env = env

    def defaults(self) -> dict[str, int]:
        return {resource: default_limit(self.env, resource) for resource in COUNTED}

    def list(self, ctx: Context) -> list[dict]:
        _authorize(ctx, None, "get_quota")
        with self.env.db.read() as session:
            projects = sorted(set(session.execute(select(m.Quota.project_id)).scalars()))
            return [{**limits(session, self.env, p), "project_id": p, "tenant_id": p} for p in projects]

    def get(self, ctx: Context, project_id: str) -> dict:
        _authorize(ctx, project_id, "get_quota")
        with self.env.db.read() as session:
            return limits(session, self.env, project_id)

    def get_default(self, ctx: Context, project_id: str) -> dict:
        _authorize(ctx, project_id, "get_quota")
        return self.defaults()

    def details(self, ctx: Context, project_id: str) -> dict:
        if not ctx.is_admin and project_id != ctx.project_id:
            raise errors.AdminRequired(reason="Only admin is authorized to access quotas for another tenant")
        with self.env.db.read() as session:
            return {resource: {"limit": limit, "used": used(session, project_id, resource), "reserved": 0}
                    for resource, limit in limits(session, self.env, project_id).items()}

    def update(self, ctx: Context, project_id: str, values: dict[str, int], force: bool = False) -> dict:
        """Set limits; unless ``force``, a limit below what the project already uses is refused
        (Neutron's quota-check-limit, the default since quota-check-limit-default)."""
        _authorize(ctx, project_id, "update_quota")

        def work(session: Session) -> dict:
            for resource, limit in sorted(values.items()):
                if not force and limit >= 0:
                    in_use = used(session, project_id, resource)
                    if in_use > limit:
                        raise errors.HTTPBadRequest(
                            msg=f"Quota limit {limit} for {resource} must be greater than or equal to "
                                f"already used {in_use}")
                row = session.get(m.Quota, (project_id, resource))
                if row is None:
                    session.add(m.Quota(project_id=project_id, resource=resource, limit=limit))
                else:
                    row.limit = limit
                if limit >= 0 and session.get(m.QuotaLock, (project_id, resource)) is None:
                    # NOTE: made here, the lock row is not raced for by the project's first creates.
                    session.add(m.QuotaLock(project_id=project_id, resource=resource))
            session.flush()
            return limits(session, self.env, project_id)

        return self.env.write(work)

    def reset(self, ctx: Context, project_id: str) -> None:
        _authorize(ctx, project_id, "delete_quota")

        def work(session: Session) -> None:
            deleted = session.execute(delete(m.Quota).where(m.Quota.project_id == project_id)).rowcount
            if not deleted:
                raise errors.TenantQuotaNotFound(tenant_id=project_id)

        self.env.write(work)
