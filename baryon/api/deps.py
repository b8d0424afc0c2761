"""Per-request inputs every route needs: who is asking, and the services.

keystone identity (``auth_strategy = keystone``): ``api.keystone`` has validated the token and
replaced every identity header by the token's (``X-Project-Id``, ``X-Roles``, ``X-User-Id``), and
marked the request ``AUTHENTICATED``. A request without that mark (no token, an invalid one let
through by ``delay_auth_decision``, or a path the token middleware does not guard) is a 401
``HTTPUnauthorized``: under keystone nothing ever falls back to the noauth admin. A token without
a user is a 401 too, as in Neutron's ``keystonecontext``; one without a project (domain- or
system-scoped) a 403: every Networking API policy rule wants a project scope.

noauth identity (``auth_strategy = noauth``): a request without ``X-Project-Id`` is an admin
request acting on ``NOAUTH_PROJECT_ID``, as Neutron's noauth treats every request as admin, so the
``openstack`` CLI with ``--os-auth-type none`` works unchanged. A request with ``X-Project-Id``
(and optionally ``X-Roles``, comma-separated) acts as that project with those roles — Neutron
ignores these headers without Keystone; Baryon honours them so isolation can be tested without
Keystone. Without ``X-Roles`` such a request has the ``member`` role.
"""

from __future__ import annotations

from starlette.requests import Request

from baryon.service import errors
from baryon.service.context import Context

# NOTE: a fixed, documented project for noauth admin requests (uuid5 of "baryon.noauth").
NOAUTH_PROJECT_ID = "4a5f2e7c9a0d5b1e8c3f6d2a7b9e0c14"

# The ASGI scope key an authenticating middleware sets once the request's identity headers are
# the ones it vouches for (``api.keystone``); ``context`` trusts the headers under keystone only then.
AUTHENTICATED = "baryon.authenticated"


class HTTPUnauthorized(errors.NeutronError):
    status = 401
    message = "The request you have made requires authentication."


def _roles(raw: str | None, default: frozenset[str]) -> frozenset[str]:
    return frozenset(r.strip().lower() for r in raw.split(",") if r.strip()) if raw else default


def keystone_context(request: Request) -> Context:
    headers = request.headers
    if not request.scope.get(AUTHENTICATED) or headers.get("x-identity-status") != "Confirmed":
        raise HTTPUnauthorized()
    if not headers.get("x-user-id"):
        raise HTTPUnauthorized()
    project = headers.get("x-project-id")
    if not project:
        raise errors.HTTPForbidden(msg="A project-scoped token is required for the Networking API")
    roles = _roles(headers.get("x-roles"), frozenset())
    return Context(project_id=project, is_admin="admin" in roles, roles=roles, user_id=headers["x-user-id"])


def context(request: Request) -> Context:
    if getattr(request.app.state, "auth_strategy", "noauth") == "keystone":
        return keystone_context(request)
    headers = request.headers
    project = headers.get("x-project-id") or headers.get("x-tenant-id")
    if not project:
        return Context.admin(NOAUTH_PROJECT_ID)
    roles = _roles(headers.get("x-roles"), frozenset({"member"}))
    return Context(project_id=project, is_admin="admin" in roles, roles=roles,
                   user_id=headers.get("x-user-id", ""))
