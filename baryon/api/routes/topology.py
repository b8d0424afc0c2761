"""The topology page (Baryon's own, not Neutron's): a live drawing of the networks, for a browser.

- ``GET /topology``: one HTML page (``topology.html`` beside this module: inline CSS, JS and SVG,
  no external asset). It reads the state once through the API, then follows the change log.
  Who it acts as comes from its own URL, as the noauth headers would say it (a browser cannot set
  headers on a link): ``?project_id=P&roles=R1,R2`` -> the page sends ``X-Project-Id: P`` and
  ``X-Roles`` with every API call; without ``project_id`` it is the noauth admin (as a request
  without ``X-Project-Id``). ``?project_id=P&admin=1`` is ``roles=admin``.
- ``GET /topology/events?since=SEQ`` (``text/event-stream``): the change log after ``SEQ`` (or
  after the ``Last-Event-ID`` header, which wins: EventSource's resume on reconnect; neither:
  from now). The caller is the headers' (``deps.context``) or, without ``X-Project-Id``, the query's
  ``project_id`` and ``roles`` (EventSource cannot set headers either; the same trust as noauth's
  headers). Events, each ``id: <seq>``:

  - ``event: hello``, first, ``{"seq": N, "admin": bool, "project_id": P}``: the stream continues
    after ``N`` (a ``since`` beyond the log's end is brought back to it);
  - ``event: change``, ``{"seq", "resource", "action", "id", "body"}`` per change-log entry of a
    network, subnet, port, router, floating IP or agent that the caller may see
    (``service.topology``), the body presented as a GET shows it to the caller (admin-only fields
    hidden from others); ``action`` is ``create``, ``update`` or ``delete`` (body before it);
  - ``event: seq``, ``{"seq": N}``: entries up to ``N`` were examined and none more is for this
    caller (so a resume starts after them);
  - a ``: keepalive`` comment every ``KEEPALIVE`` seconds without change.

  It wakes on the process's change bell (``watch.SeqWatch``, as the agent API's long-polls) and
  ends when the client goes or the server stops.
- ``GET /topology/debug/port/{id}`` (admin) -> ``{"debug_port": {"port_id", "command",
  "exit_status", "output"}}``: ``baryon debug port`` run by the server on its lab
  (``[baryon] lab_state_dir``); 404 ``LabNotConfigured`` without one, 404 ``PortNotFound``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import Collection, json
from baryon.api.schemas.types import Attr
from baryon.api.watch import CHECK_INTERVAL, SeqWatch
from baryon.service.context import Context
from baryon.service.services import Services
from baryon.service.topology import TopologyFeed

PAGE = Path(__file__).with_name("topology.html")
KEEPALIVE = 15.0  # seconds between two comments on an idle stream


def context(request: Request) -> Context:
    """``deps.context``, or, without ``X-Project-Id``, the query's ``project_id`` and ``roles``:
    under noauth only (its trust is noauth's). Under keystone, only the token's identity counts
    (``api.keystone`` guards ``/topology/...``); EventSource cannot send a token, so the live page
    is for noauth servers."""
    if (getattr(request.app.state, "auth_strategy", "noauth") == "keystone"
            or request.headers.get("x-project-id") or request.headers.get("x-tenant-id")):
        return deps.context(request)
    project = request.query_params.get("project_id")
    if not project:
        return deps.context(request)
    roles_raw = request.query_params.get("roles") or ("admin" if request.query_params.get("admin") else "member")
    roles = frozenset(r.strip().lower() for r in roles_raw.split(",") if r.strip()) or frozenset({"member"})
    return Context(project_id=project, is_admin="admin" in roles, roles=roles)


def parse_seq(raw: str | None, what: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit():
        raise req.bad(f"Invalid input for {what}. Reason: '{raw}' is not a non-negative integer.")
    return int(raw)


def sse(event: str, seq: int, data: dict) -> bytes:
    return b"event: " + event.encode() + b"\nid: " + str(seq).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def routes(services: Services, watch: SeqWatch, collections: Sequence[Collection]) -> list[Route]:
    topology = TopologyFeed(services.env)
    schemas: dict[str, dict[str, Attr]] = {c.resource: dict(c.schema) for c in collections}
    if not services.env.port_security:  # as the collections' routes present them
        for schema in schemas.values():
            schema.pop("port_security_enabled", None)

    async def page(_request: Request) -> Response:
        return Response(PAGE.read_bytes(), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        ctx = context(request)
        since = parse_seq(request.headers.get("last-event-id"), "Last-Event-ID")
        if since is None:
            since = parse_seq(request.query_params.get("since"), "since")
        last = await run_in_threadpool(topology.last_seq)
        start = last if since is None else min(since, last)

        async def stream() -> AsyncIterator[bytes]:
            seq = start
            yield b"retry: 1000\n" + sse("hello", seq, {"seq": seq, "admin": ctx.is_admin,
                                                        "project_id": ctx.project_id})
            idle = 0.0
            while not watch.bell.closed:
                batch = await run_in_threadpool(topology.changes, ctx, seq)
                for entry in batch.entries:
                    body = req.present(schemas.get(entry["resource"], {}), entry["body"], ctx)
                    yield sse("change", entry["seq"], {**entry, "body": body})
                if batch.seq > seq:
                    if not batch.entries or batch.entries[-1]["seq"] < batch.seq:
                        yield sse("seq", batch.seq, {"seq": batch.seq})
                    seq, idle = batch.seq, 0.0
                    continue  # read on until the log has nothing more
                heard = await watch.wait_past(seq, CHECK_INTERVAL)
                if await request.is_disconnected():
                    return
                if heard <= seq:
                    idle += CHECK_INTERVAL
                    if idle >= KEEPALIVE:
                        idle = 0.0
                        yield b": keepalive\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def debug_port(request: Request) -> Response:
        ctx = context(request)
        result = await run_in_threadpool(topology.debug_port, ctx, request.path_params["id"])
        return json({"debug_port": dataclasses.asdict(result)})

    return [
        Route("/topology", page, methods=["GET"]),
        Route("/topology/events", events, methods=["GET"]),
        Route("/topology/debug/port/{id}", debug_port, methods=["GET"]),
    ]
