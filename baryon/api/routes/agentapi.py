"""The agent API: what Baryon's agents call (Baryon's own, under ``/agent/v1``; admin only).

- ``GET /agent/v1/hosts/{host}/{kind}?etag=E&wait=S[&seq=N]``: a view of ``host`` for one of its agents,
  as a long-poll: ``ovs``, for its Open vSwitch agent (``baryon.model.host.HostView``); ``dhcp``,
  for its DHCP agent (``baryon.model.dhcp.DhcpView``); ``l3``, for its L3 agent
  (``baryon.model.l3.L3View``). When the current view's etag differs from
  ``E`` (or ``E`` is absent): ``200 {"seq", "etag", "view": {...}}`` at once. Else the request
  waits, up to ``S`` seconds (default 0, at most 60), for a change of the view; if one comes, the
  same full answer; if not, ``200 {"seq": N, "etag": E}`` without ``view``: unchanged up to
  change-log sequence ``N``. Changes that leave the view as it was do not end the wait
  (``watch.until_changed``). ``seq`` (the sequence of the agent's previous answer) is accepted
  and checked, for the agents of earlier releases, and not used. Every kind takes the same path
  (``host_view``); another kind is a 404.
- ``POST /agent/v1/hosts/{host}/status`` with ``{"agent_type", "seq", "etag", "ports": {id: "ACTIVE" |
  "DOWN"}, "routers": {id: {"status": "ACTIVE" | "ERROR", "reason": text}}, "floatingips": {id:
  "ACTIVE" | "DOWN" | "ERROR"}}`` (``ports``, ``routers``, ``floatingips`` optional): the agent's
  report (``service.portstatus``; ``etag``, optional: that of the view realised at ``seq``, which
  lets the server count the agent current while its view keeps it) -> ``200 {"seq", "updated",
  "ignored"}``; 404
  ``AgentNotFoundByTypeHost`` when no such agent registered.
- ``GET /agent/v1/seq`` -> ``200 {"seq": N}``: the change log's current sequence.
- ``GET /agent/v1/changes?resource_id=ID`` -> ``200 {"changes": [{"seq", "resource", "action",
  "revision_number", "created_at", "changed"}]}``: the change log's entries for one resource,
  oldest first (``service.feed.changes_of``; ``created_at`` in whole seconds, UTC); 400 without
  ``resource_id``. Read by ``baryon debug port`` for a port's timeline.

- ``POST /agent/v1/report`` with ``{"agent": {...}}``: an agent's registration and heartbeat, the
  twin of ``POST /v2.0/agents/report`` (``routes.agents``: same body, same answer) on the agent
  API, so that it takes the agents' credential rather than the Networking API's.

Authentication (``AgentAuth``, the one place that decides): a request acts as the cloud's admin,
as Neutron's agents do over RPC, when it proves it comes from an agent with either credential:
- the agents' shared secret (``[baryon] agent_shared_secret``, when set) as ``Authorization:
  Bearer <secret>``, compared in constant time;
- under ``auth_strategy = keystone``, a Keystone token (``X-Auth-Token``) of a service user: one
  that keystonemiddleware confirmed (``api.keystone``, which runs ``AuthProtocol`` for agent-API
  requests carrying a token and marks the scope) and whose roles include ``admin`` or ``service``
  (Neutron's service role). A confirmed token without either role is a 403 ``PolicyNotAuthorized``;
  a token Keystone could not be asked about (unreachable) a 503 ``KeystoneUnavailable``.
Without a secret the agent API is open under ``auth_strategy = noauth`` (as before secrets existed;
a warning at start says so) and takes only service tokens under ``keystone``. A request that
proves nothing is a 401 ``HTTPUnauthorized``. Every refusal is answered before the request's query
or body is read: nothing is recorded.

Errors are Neutron's faults: 401 ``HTTPUnauthorized``, 403 ``PolicyNotAuthorized`` and 503
``KeystoneUnavailable`` (above), 400 ``HTTPBadRequest`` for a malformed query or body, 403
``PolicyNotAuthorized`` for a non-admin (before anything is read).
"""

from __future__ import annotations

import hmac
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, faults, keystone, request as req
from baryon.api.routes.resources import json
from baryon.api.schemas.agent import REPORT
from baryon.api.watch import MAX_WAIT, SeqWatch, until_changed
from baryon.config import Settings
from baryon.service import errors, portstatus
from baryon.service.context import Context
from baryon.service.services import Services

LOG = logging.getLogger(__name__)
PREFIX = "/agent/v1"
REPORT_KEYS = ("agent_type", "seq", "etag", "ports", "routers", "floatingips")
SCHEME = "Bearer"  # Authorization: Bearer <secret> (RFC 6750's syntax; Keystone's X-Auth-Token stays free)
SERVICE_ROLES = frozenset({"admin", "service"})  # a token with one of these is an agent's (Neutron's service_api)
SERVICE_RULE = "(role:admin or role:service)"
TOKEN_WANTED = "a Keystone token (X-Auth-Token) of a user with the admin or service role"


class Unauthenticated(Exception):
    """The request did not prove it comes from an agent; the message says what to do."""


class KeystoneUnavailable(errors.ServiceUnavailable):
    message = "The agent's Keystone token could not be validated: Keystone did not answer. Retry later."


@dataclass(frozen=True)
class AgentAuth:
    """Who may use the agent API: ``authenticate(request)`` is the only decision.

    ``secret``: ``[baryon] agent_shared_secret`` (empty: none); ``strategy``: ``[DEFAULT]
    auth_strategy`` (``keystone``: service users' tokens are accepted too).
    """

    secret: str = ""
    strategy: str = "noauth"

    @classmethod
    def from_settings(cls, settings: Settings) -> "AgentAuth":
        return cls(settings.baryon.agent_shared_secret, settings.DEFAULT.auth_strategy)

    @property
    def open(self) -> bool:
        """No secret under noauth: every request is let in, as who its headers say (``deps.context``)."""
        return not self.secret and self.strategy == "noauth"

    @property
    def tokens(self) -> bool:
        """Keystone tokens of service users are a credential (``auth_strategy = keystone``)."""
        return self.strategy == "keystone"

    def authenticate(self, request: Request) -> Context:
        """The request's context; ``Unauthenticated`` (401), ``errors.PolicyNotAuthorized`` (403) or
        ``KeystoneUnavailable`` (503). Either credential is enough: a matching secret first, then a token."""
        if self.open:
            return deps.context(request)
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        bearer = given.strip() if scheme.lower() == SCHEME.lower() and given.strip() else None
        # NOTE: bytes, compared in constant time: a str with non-ASCII characters would raise.
        if self.secret and bearer is not None and hmac.compare_digest(bearer.encode("latin-1"), self.secret.encode()):
            return Context.admin()
        if self.tokens and keystone.carries_token(request.scope):
            return self.service_token(request)
        raise Unauthenticated(self.refusal(bearer))

    @staticmethod
    def service_token(request: Request) -> Context:
        """The context of a request whose token ``api.keystone`` has checked (and marked the scope)."""
        headers = request.headers
        if request.scope.get(deps.AUTHENTICATED) and headers.get("x-identity-status") == "Confirmed":
            roles = {r.strip().lower() for r in headers.get("x-roles", "").split(",")}
            if roles & SERVICE_ROLES:
                return Context.admin()
            raise errors.PolicyNotAuthorized(rule=SERVICE_RULE)
        if request.scope.get(keystone.REFUSED, 401) >= 500:
            raise KeystoneUnavailable()
        raise Unauthenticated("Authentication failed: Keystone refused the token (X-Auth-Token): it is "
                              "invalid, expired or revoked.")

    def refusal(self, bearer: str | None) -> str:
        """Why a request that proved nothing (``bearer``: the secret it sent, if any) is refused."""
        if not self.secret:
            return (f"Authentication required: with auth_strategy = keystone the agent API takes {TOKEN_WANTED}; "
                    "no [baryon] agent_shared_secret is configured on the server.")
        if bearer is not None:
            return "Authentication failed: the agents' shared secret does not match the server's [baryon] " \
                   "agent_shared_secret."
        also = f", or {TOKEN_WANTED}" if self.tokens else ""
        return (f"Authentication required: the agent API takes the agents' shared secret ([baryon] "
                f"agent_shared_secret) as 'Authorization: {SCHEME} <secret>'{also}.")

    def warn_at_start(self) -> None:
        if self.open:
            LOG.warning("the agent API (%s) is open to anyone who reaches this server: auth_strategy = noauth "
                        "and no [baryon] agent_shared_secret; set one here and on every agent", PREFIX)
        elif not self.secret:
            LOG.info("the agent API (%s) refuses every request without %s: no [baryon] agent_shared_secret",
                     PREFIX, TOKEN_WANTED)


def unauthorized(exc: Unauthenticated) -> Response:
    response = faults.fault(401, "HTTPUnauthorized", str(exc))
    response.headers["WWW-Authenticate"] = f'{SCHEME} realm="baryon-agent-api"'
    return response


def parse_wait(raw: str | None) -> float:
    """``wait``: seconds, a non-negative number; more than ``MAX_WAIT`` is ``MAX_WAIT``."""
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise req.bad(f"Invalid input for wait. Reason: '{raw}' is not a number of seconds.") from None
    if not math.isfinite(value) or value < 0:
        raise req.bad(f"Invalid input for wait. Reason: '{raw}' is not a number of seconds.")
    return min(value, MAX_WAIT)


def _statuses(body: dict, key: str, allowed: tuple[str, ...], what: str) -> dict[str, str]:
    value = body.get(key, {})
    if not isinstance(value, dict):
        raise req.bad(f"Invalid input for {key}. Reason: '{value}' is not a dictionary.")
    for item_id, status in value.items():
        if status not in allowed:
            raise req.bad(f"Invalid input for {key}. Reason: status '{status}' of {what} {item_id} is not one of "
                          f"{', '.join(allowed)}.")
    return value


def _router_statuses(body: dict) -> dict[str, portstatus.RouterStatus]:
    value = body.get("routers", {})
    if not isinstance(value, dict):
        raise req.bad(f"Invalid input for routers. Reason: '{value}' is not a dictionary.")
    result = {}
    for router_id, entry in value.items():
        if not isinstance(entry, dict) or set(entry) - {"status", "reason"}:
            raise req.bad(f"Invalid input for routers. Reason: '{entry}' of router {router_id} is not a "
                          f"dictionary of status and reason.")
        status, reason = entry.get("status"), entry.get("reason")
        if status not in portstatus.ROUTER_STATUSES:
            raise req.bad(f"Invalid input for routers. Reason: status '{status}' of router {router_id} is not one "
                          f"of {', '.join(portstatus.ROUTER_STATUSES)}.")
        if reason is not None and not isinstance(reason, str):
            raise req.bad(f"Invalid input for routers. Reason: reason '{reason}' of router {router_id} is not a "
                          f"string.")
        result[router_id] = portstatus.RouterStatus(status, reason or None)
    return result


def parse_seq(raw: str | None) -> int | None:
    """``seq``: the sequence the agent last heard of, a non-negative integer (absent: unknown)."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise req.bad(f"Invalid input for seq. Reason: '{raw}' is not a non-negative integer.")
    return int(raw)


def parse_report(raw: bytes) -> portstatus.Report:
    """A status report body -> ``portstatus.Report``."""
    body = req.decode(raw)
    if not isinstance(body, dict):
        raise req.bad("Invalid input for status report. Reason: the body is not a JSON object.")
    unknown = sorted(k for k in body if k not in REPORT_KEYS)
    if unknown:
        raise req.bad(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    for key in ("agent_type", "seq"):
        if key not in body:
            raise req.bad(f"Failed to parse request. Required attribute '{key}' not specified")
    agent_type, seq = body["agent_type"], body["seq"]
    if not isinstance(agent_type, str) or not agent_type.strip():
        raise req.bad(f"Invalid input for agent_type. Reason: '{agent_type}' is not a valid agent type.")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise req.bad(f"Invalid input for seq. Reason: '{seq}' is not a non-negative integer.")
    etag = body.get("etag")
    if etag is not None and (not isinstance(etag, str) or not 0 < len(etag) <= 64):
        raise req.bad(f"Invalid input for etag. Reason: '{etag}' is not an etag.")
    return portstatus.Report(
        agent_type=agent_type, seq=seq, etag=etag, ports=_statuses(body, "ports", portstatus.STATUSES, "port"),
        routers=_router_statuses(body),
        floatingips=_statuses(body, "floatingips", portstatus.FLOATINGIP_STATUSES, "floating IP"))


Endpoint = Callable[[Request, Context], Awaitable[Response]]


def routes(services: Services, watch: SeqWatch) -> list[Route]:
    views, reports, agents = services.hostviews, services.status_reports, services.agents
    auth = AgentAuth.from_settings(services.env.settings)
    auth.warn_at_start()

    def authenticated(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        """``endpoint`` called with the request's context once ``auth`` let it in; else 401, nothing read."""
        async def guarded(request: Request) -> Response:
            try:
                ctx = auth.authenticate(request)
            except Unauthenticated as exc:
                return unauthorized(exc)
            return await endpoint(request, ctx)

        return guarded

    def host_view(kind: str) -> Endpoint:
        async def endpoint(request: Request, ctx: Context) -> Response:
            views.check(ctx)
            host = request.path_params["host"]
            etag = request.query_params.get("etag") or None
            wait = parse_wait(request.query_params.get("wait"))
            parse_seq(request.query_params.get("seq"))  # NOTE: checked, no longer used (see the module doc)
            view = await until_changed(lambda latest: views.watched(ctx, host, kind, latest), etag, wait, watch,
                                       request.is_disconnected)
            body: dict[str, Any] = {"seq": view.seq, "etag": view.etag}
            if view.etag != etag:
                # NOTE: the view itself: orjson encodes a dataclass as asdict() would, 20x faster.
                body["view"] = view
            return json(body)

        return endpoint

    async def status(request: Request, ctx: Context) -> Response:
        views.check(ctx, "report_port_status")
        report = parse_report(await request.body())
        return json(await run_in_threadpool(reports.report, ctx, request.path_params["host"], report))

    async def current_seq(request: Request, ctx: Context) -> Response:
        return json({"seq": await run_in_threadpool(views.seq, ctx)})

    async def report_state(request: Request, ctx: Context) -> Response:
        [state], _bulk = req.parse_create(REPORT, "agent", "agents", await request.body(), ctx)
        body, created = await run_in_threadpool(agents.report_state, ctx, state)
        return json({"agent": body}, 201 if created else 200)

    async def changes(request: Request, ctx: Context) -> Response:
        views.check(ctx, "get_changes")
        resource_id = request.query_params.get("resource_id")
        if not resource_id:
            raise req.bad("Failed to parse request. Required query parameter 'resource_id' not specified")
        return json({"changes": await run_in_threadpool(views.changes, ctx, resource_id)})

    return [
        *(Route(PREFIX + "/hosts/{host}/" + kind, authenticated(host_view(kind)), methods=["GET"])
          for kind in sorted(views.kinds)),
        Route(PREFIX + "/hosts/{host}/status", authenticated(status), methods=["POST"]),
        Route(PREFIX + "/seq", authenticated(current_seq), methods=["GET"]),
        Route(PREFIX + "/report", authenticated(report_state), methods=["POST"]),
        Route(PREFIX + "/changes", authenticated(changes), methods=["GET"]),
    ]
