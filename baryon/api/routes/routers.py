"""The router actions: ``PUT /v2.0/routers/{id}/add_router_interface`` and
``remove_router_interface`` (router), ``add_extraroutes`` and ``remove_extraroutes``
(extraroute-atomic). CRUD on ``/v2.0/routers`` is the generic collection (``resources``).

Interface actions take ``{"subnet_id"}`` or ``{"port_id"}`` (unwrapped, as Neutron) and answer
with the interface info; route actions take ``{"router": {"routes": [...]}}`` and answer with the
router.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.api.schemas import router as schema
from baryon.service.services import Services


def routes(services: Services) -> list[Route]:
    def interface(action: Callable[..., dict], removal: bool) -> Callable:
        async def endpoint(request: Request) -> Response:
            ctx = deps.context(request)
            info = schema.interface_info(req.decode(await request.body()), removal=removal)
            return json(await run_in_threadpool(action, ctx, request.path_params["id"], info))

        return endpoint

    def extraroutes(action: Callable[..., dict]) -> Callable:
        async def endpoint(request: Request) -> Response:
            ctx = deps.context(request)
            attrs = req.parse_update(schema.ATTRS, "router", await request.body(), ctx)
            if set(attrs) != {"routes"}:
                raise req.bad("Only 'routes' may be given to add or remove extra routes")
            router = await run_in_threadpool(action, ctx, request.path_params["id"], attrs["routes"])
            return json({"router": req.present(schema.ATTRS, router, ctx)})

        return endpoint

    prefix = "/v2.0/routers/{id}"
    routers = services.routers
    return [
        Route(prefix + "/add_router_interface", interface(routers.add_interface, False), methods=["PUT"]),
        Route(prefix + "/remove_router_interface", interface(routers.remove_interface, True), methods=["PUT"]),
        Route(prefix + "/add_extraroutes", extraroutes(routers.add_extraroutes), methods=["PUT"]),
        Route(prefix + "/remove_extraroutes", extraroutes(routers.remove_extraroutes), methods=["PUT"]),
    ]
