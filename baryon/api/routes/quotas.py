"""``/v2.0/quotas``: list, show, update, reset, ``/default`` and ``/details`` (Neutron's quotas,
quota_details and quota-check-limit extensions), and ``/quotas/project`` (who am I).

Thin: policy and limits live in ``baryon.service.quotas``.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from baryon.api import deps, request as req
from baryon.api.routes.resources import json
from baryon.api.schemas import quota
from baryon.service import quotas as quotas_service
from baryon.service.services import Services


def routes(services: Services) -> list[Route]:
    service = services.quotas

    async def index(request: Request) -> Response:
        return json({"quotas": await run_in_threadpool(service.list, deps.context(request))})

    async def own_project(request: Request) -> Response:
        key = request.url.path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")  # project or tenant
        return json({key: {f"{key}_id": deps.context(request).project_id}})

    async def member(request: Request) -> Response:
        ctx = deps.context(request)
        project = request.path_params["project_id"]
        if request.method == "GET":
            return json({"quota": await run_in_threadpool(service.get, ctx, project)})
        if request.method == "DELETE":
            await run_in_threadpool(service.reset, ctx, project)
            return Response(status_code=204)
        quotas_service.check_update_allowed(ctx)
        attrs = req.parse_update(quota.ATTRS, "quota", await request.body(), ctx)
        force = bool(attrs.pop("force", False))
        attrs.pop("check_limit", None)  # checking is the default; only ``force`` skips it
        return json({"quota": await run_in_threadpool(service.update, ctx, project, attrs, force)})

    async def default(request: Request) -> Response:
        ctx = deps.context(request)
        return json({"quota": await run_in_threadpool(service.get_default, ctx, request.path_params["project_id"])})

    async def details(request: Request) -> Response:
        ctx = deps.context(request)
        return json({"quota": await run_in_threadpool(service.details, ctx, request.path_params["project_id"])})

    prefix = "/v2.0/quotas"
    return [
        Route(prefix, index, methods=["GET"]),
        Route(prefix + ".json", index, methods=["GET"]),
        *[Route(f"{prefix}/{who}{suffix}", own_project, methods=["GET"])
          for who in ("project", "tenant") for suffix in ("", ".json")],
        Route(prefix + "/{project_id}/default.json", default, methods=["GET"]),
        Route(prefix + "/{project_id}/default", default, methods=["GET"]),
        Route(prefix + "/{project_id}/details.json", details, methods=["GET"]),
        Route(prefix + "/{project_id}/details", details, methods=["GET"]),
        Route(prefix + "/{project_id}.json", member, methods=["GET", "PUT", "DELETE"]),
        Route(prefix + "/{project_id}", member, methods=["GET", "PUT", "DELETE"]),
    ]
