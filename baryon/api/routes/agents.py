"""Agent routes beyond the generic collection (``/v2.0/agents`` itself is a ``resources.Collection``).

- ``POST /v2.0/agents/report``: Baryon's registration and heartbeat (Neutron's agents use RPC):
  ``{"agent": {agent_type, host, binary?, topic?, configurations?, resource_versions?,
  availability_zone?, start_flag?}}`` -> 201 and the new agent, or 200 and the updated one. Admin only.
- The scheduler views of Neutron's dhcp_agent_scheduler and l3_agent_scheduler extensions:
  ``/v2.0/agents/{id}/dhcp-networks`` (GET, POST ``{"network_id"}``),
  ``/v2.0/agents/{id}/dhcp-networks/{network_id}`` (DELETE), ``/v2.0/networks/{id}/dhcp-agents``
  (GET); ``/v2.0/agents/{id}/l3-routers`` (GET, POST ``{"router_id"}``),
  ``/v2.0/agents/{id}/l3-routers/{router_id}`` (DELETE), ``/v2.0/routers/{id}/l3-agents`` (GET).
  As Neutron: a POST answers 201 with a ``null`` body, a DELETE 204; query strings are ignored.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.api.schemas.agent import REPORT
from baryon.service.services import Services


async def _target_id(request: Request, key: str) -> str:
    """``network_id`` / ``router_id`` of a scheduler POST body (other keys are ignored, as Neutron)."""
    body = req.decode(await request.body())
    if not isinstance(body, dict) or key not in body:
        raise req.bad(f"Failed to parse request. Required attribute '{key}' not specified")
    value = body[key]
    if not isinstance(value, str):
        raise req.bad(f"Invalid input for {key}. Reason: '{value}' is not a valid string.")
    return value


def routes(services: Services) -> list[Route]:
    agents, schedulers = services.agents, services.agentschedulers

    async def report(request: Request) -> Response:
        ctx = deps.context(request)
        [state], _bulk = req.parse_create(REPORT, "agent", "agents", await request.body(), ctx)
        body, created = await run_in_threadpool(agents.report_state, ctx, state)
        return json({"agent": body}, 201 if created else 200)

    async def dhcp_networks(request: Request) -> Response:
        ctx = deps.context(request)
        agent_id = request.path_params["id"]
        if request.method == "GET":
            return json({"networks": await run_in_threadpool(schedulers.networks_on_dhcp_agent, ctx, agent_id)})
        network_id = await _target_id(request, "network_id")
        await run_in_threadpool(schedulers.add_network_to_dhcp_agent, ctx, agent_id, network_id)
        return json(None, 201)

    async def dhcp_network(request: Request) -> Response:
        ctx = deps.context(request)
        await run_in_threadpool(schedulers.remove_network_from_dhcp_agent, ctx, request.path_params["id"],
                                request.path_params["network_id"])
        return Response(status_code=204)

    async def dhcp_agents(request: Request) -> Response:
        ctx = deps.context(request)
        found = await run_in_threadpool(schedulers.dhcp_agents_hosting_network, ctx, request.path_params["id"])
        return json({"agents": found})

    async def l3_routers(request: Request) -> Response:
        ctx = deps.context(request)
        agent_id = request.path_params["id"]
        if request.method == "GET":
            return json({"routers": await run_in_threadpool(schedulers.routers_on_l3_agent, ctx, agent_id)})
        router_id = await _target_id(request, "router_id")
        await run_in_threadpool(schedulers.add_router_to_l3_agent, ctx, agent_id, router_id)
        return json(None, 201)

    async def l3_router(request: Request) -> Response:
        ctx = deps.context(request)
        await run_in_threadpool(schedulers.remove_router_from_l3_agent, ctx, request.path_params["id"],
                                request.path_params["router_id"])
        return Response(status_code=204)

    async def l3_agents(request: Request) -> Response:
        ctx = deps.context(request)
        found = await run_in_threadpool(schedulers.l3_agents_hosting_router, ctx, request.path_params["id"])
        return json({"agents": found})

    return [
        Route("/v2.0/agents/report", report, methods=["POST"]),
        Route("/v2.0/agents/{id}/dhcp-networks", dhcp_networks, methods=["GET", "POST"]),
        Route("/v2.0/agents/{id}/dhcp-networks/{network_id}", dhcp_network, methods=["DELETE"]),
        Route("/v2.0/networks/{id}/dhcp-agents", dhcp_agents, methods=["GET"]),
        Route("/v2.0/agents/{id}/l3-routers", l3_routers, methods=["GET", "POST"]),
        Route("/v2.0/agents/{id}/l3-routers/{router_id}", l3_router, methods=["DELETE"]),
        Route("/v2.0/routers/{id}/l3-agents", l3_agents, methods=["GET"]),
    ]
