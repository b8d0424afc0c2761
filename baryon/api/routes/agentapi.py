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

Errors are Neutron's faults: 400 ``HTTPBadRequest`` for a malformed query or body, 403
``PolicyNotAuthorized`` for a non-admin (before anything is read).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.api.watch import MAX_WAIT, SeqWatch, until_changed
from baryon.service import portstatus
from baryon.service.services import Services

PREFIX = "/agent/v1"
REPORT_KEYS = ("agent_type", "seq", "etag", "ports", "routers", "floatingips")


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


def routes(services: Services, watch: SeqWatch) -> list[Route]:
    views, reports = services.hostviews, services.status_reports

    def host_view(kind: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ctx = deps.context(request)
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

    async def status(request: Request) -> Response:
        ctx = deps.context(request)
        views.check(ctx, "report_port_status")
        report = parse_report(await request.body())
        return json(await run_in_threadpool(reports.report, ctx, request.path_params["host"], report))

    async def current_seq(request: Request) -> Response:
        ctx = deps.context(request)
        return json({"seq": await run_in_threadpool(views.seq, ctx)})

    async def changes(request: Request) -> Response:
        ctx = deps.context(request)
        views.check(ctx, "get_changes")
        resource_id = request.query_params.get("resource_id")
        if not resource_id:
            raise req.bad("Failed to parse request. Required query parameter 'resource_id' not specified")
        return json({"changes": await run_in_threadpool(views.changes, ctx, resource_id)})

    return [
        *(Route(PREFIX + "/hosts/{host}/" + kind, host_view(kind), methods=["GET"]) for kind in sorted(views.kinds)),
        Route(PREFIX + "/hosts/{host}/status", status, methods=["POST"]),
        Route(PREFIX + "/seq", current_seq, methods=["GET"]),
        Route(PREFIX + "/changes", changes, methods=["GET"]),
    ]
