"""Quotas: per-project limits checked inside the creating transaction.

``check(session, env, project_id, resource, adding)`` raises ``OverQuota`` (409) when creating
``adding`` more of ``resource`` would exceed the project's limit. To make the check hold under
concurrency, it first locks the project's ``quota_locks`` row for that resource
(``SELECT ... FOR UPDATE``; SQLite serialises writers anyway) and only then counts, so of two
concurrent creates that would together pass the limit, the second waits for the first to
commit and then counts its row. An unlimited resource (-1) takes no lock and counts nothing.

Limits: a ``quotas`` row for the project overrides the ``[quotas] quota_<resource>`` default.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from baryon.db import models as m
from baryon.service import errors
from baryon.service.base import Env

# resource name (as in Neutron's quota API) -> the model whose rows count against it
COUNTED: dict[str, type] = {
    "network": m.Network,
    "subnet": m.Subnet,
    "port": m.Port,
    "router": m.Router,
    "floatingip": m.FloatingIP,
    "security_group": m.SecurityGroup,
    "security_group_rule": m.SecurityGroupRule,
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


def check(session: Session, env: Env, project_id: str, resource: str, adding: int = 1) -> None:
    override = session.get(m.Quota, (project_id, resource))
    limit = override.limit if override is not None else default_limit(env, resource)
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
