"""Per-request inputs every route needs: who is asking, and the services.

noauth identity (``auth_strategy = noauth``): a request without ``X-Project-Id`` is an admin
request acting on ``NOAUTH_PROJECT_ID``, as Neutron's noauth treats every request as admin, so the
``openstack`` CLI with ``--os-auth-type none`` works unchanged. A request with ``X-Project-Id``
(and optionally ``X-Roles``, comma-separated) acts as that project with those roles — Neutron
ignores these headers without Keystone; Baryon honours them so isolation can be tested without
Keystone. Without ``X-Roles`` such a request has the ``member`` role.
"""

from __future__ import annotations

from starlette.requests import Request

from baryon.service.context import Context

# NOTE: a fixed, documented project for noauth admin requests (uuid5 of "baryon.noauth").
NOAUTH_PROJECT_ID = "4a5f2e7c9a0d5b1e8c3f6d2a7b9e0c14"


def context(request: Request) -> Context:
    headers = request.headers
    project = headers.get("x-project-id") or headers.get("x-tenant-id")
    if not project:
        return Context.admin(NOAUTH_PROJECT_ID)
    raw_roles = headers.get("x-roles")
    roles = frozenset(r.strip().lower() for r in raw_roles.split(",") if r.strip()) if raw_roles else frozenset({"member"})
    return Context(project_id=project, is_admin="admin" in roles, roles=roles,
                   user_id=headers.get("x-user-id", ""))
